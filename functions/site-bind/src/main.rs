#[tokio::main]
async fn main() -> Result<(), shared::lambda::Error> {
    shared::lambda::run(site_bind::routes()).await
}
