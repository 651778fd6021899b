#[tokio::main]
async fn main() -> Result<(), shared::lambda::Error> {
    shared::lambda::run("wechat-push", wechat_push::handle).await
}
