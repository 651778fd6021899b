#[tokio::main]
async fn main() -> Result<(), shared::lambda::Error> {
    if translate::authorizer_mode() {
        shared::lambda::run_events("translate-authorizer", translate::authorize).await
    } else {
        shared::lambda::run("translate", translate::handle).await
    }
}
