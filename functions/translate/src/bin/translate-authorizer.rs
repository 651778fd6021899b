#[tokio::main]
async fn main() -> Result<(), shared::lambda::Error> {
    shared::lambda::run_events("translate-authorizer", translate::authorize).await
}
