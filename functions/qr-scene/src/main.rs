#[tokio::main]
async fn main() -> Result<(), shared::lambda::Error> {
    shared::lambda::run("qr-scene", qr_scene::handle).await
}
