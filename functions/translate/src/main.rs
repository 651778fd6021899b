#[tokio::main]
async fn main() -> Result<(), shared::lambda::Error> {
    shared::lambda::run(translate::routes()).await
}
