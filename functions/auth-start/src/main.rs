#[tokio::main]
async fn main() -> Result<(), shared::lambda::Error> {
    shared::lambda::run("auth-start", auth_start::handle).await
}
