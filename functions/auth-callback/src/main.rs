#[tokio::main]
async fn main() -> Result<(), shared::lambda::Error> {
    shared::lambda::run("auth-callback", auth_callback::handle).await
}
