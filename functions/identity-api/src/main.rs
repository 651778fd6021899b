#[tokio::main]
async fn main() -> Result<(), shared::lambda::Error> {
    shared::lambda::run("identity-api", identity_api::handle).await
}
