#[tokio::main]
async fn main() -> Result<(), shared::lambda::Error> {
    shared::lambda::run(identity_api::routes()).await
}
