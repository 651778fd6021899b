#[tokio::main]
async fn main() -> Result<(), shared::lambda::Error> {
    shared::lambda::run("mp-login", mp_login::handle).await
}
