#[tokio::main]
async fn main() -> Result<(), shared::lambda::Error> {
    shared::lambda::run(qr_scene::routes()).await
}
