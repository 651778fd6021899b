#[tokio::main]
async fn main() -> Result<(), shared::lambda::Error> {
    shared::lambda::run(wechat_push::routes()).await
}
