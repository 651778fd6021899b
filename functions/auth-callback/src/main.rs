#[tokio::main]
async fn main() -> Result<(), shared::lambda::Error> {
    shared::lambda::run(auth_callback::routes()).await
}
