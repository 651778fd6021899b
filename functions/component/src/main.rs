#[tokio::main]
async fn main() -> Result<(), shared::lambda::Error> {
    shared::lambda::run(component::routes()).await
}
