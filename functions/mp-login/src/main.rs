#[tokio::main]
async fn main() -> Result<(), shared::lambda::Error> {
    shared::lambda::run(mp_login::routes()).await
}
