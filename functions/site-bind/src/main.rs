#[tokio::main]
async fn main() -> Result<(), shared::lambda::Error> {
    shared::lambda::run("site-bind", site_bind::handle).await
}
