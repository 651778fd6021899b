//! In-process latency of the hot paths on the embedded store, WeChat answered in-process
//! (so no I/O is measured): `cargo bench -p wxbridge-shared --bench flows`.

use async_trait::async_trait;
use criterion::{criterion_group, criterion_main, Criterion};
use std::sync::Arc;

use shared::bridge::Bridge;
use shared::ids::{AppId, Code, OpenId, Secret, UnionId};
use shared::model::Via;
use shared::registry::{App, Registry};
use shared::wechat::{QrCode, Session, WeChat, WebGrant};
use shared::Error;

/// Answers every code with the same person, like WeChat would for one user.
struct OneUser;

#[async_trait]
impl WeChat for OneUser {
    async fn code2session(&self, _app: &App, _code: &Code) -> Result<Session, Error> {
        Ok(Session {
            openid: OpenId::parse("oGZUI0egBJY1zhBYw2KhdUfwVJJE")?,
            session_key: Secret::new("tiihtNczf5v6AKRyjwEUhQ=="),
            unionid: Some(UnionId::parse("ocMvos6NjeKLIBqg5Mr9QjxrP1FA")?),
        })
    }
    async fn web_grant(&self, _app: &App, _code: &Code) -> Result<WebGrant, Error> {
        Err(Error::WeChatCodeInvalid)
    }
    async fn web_unionid(&self, _grant: &WebGrant) -> Result<Option<UnionId>, Error> {
        Ok(None)
    }
    async fn stable_token(&self, _app: &App, _force: bool) -> Result<(Secret, i64), Error> {
        Ok((Secret::new("bench-token"), 7200))
    }
    async fn qrcode_create(&self, _token: &Secret, _scene: &str, _expire: i64) -> Result<QrCode, Error> {
        Err(Error::WeChatUnavailable)
    }
}

fn seed() -> Registry {
    Registry::from_json(include_str!("../../config/demo-apps.json")).unwrap()
}

/// The demo registry imported into the embedded store, read through the per-container cache
/// as a warm Lambda reads it.
fn bridge(rt: &tokio::runtime::Runtime) -> Bridge {
    let b = Bridge::builder().wechat(Arc::new(OneUser)).build().unwrap();
    rt.block_on(b.registrar().unwrap().import(&seed())).unwrap();
    b
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let bridge = bridge(&rt);
    let app = AppId::parse("wx1a2b3c4d5e6f7001").unwrap();
    let code = Code::parse("benchcode").unwrap();
    rt.block_on(bridge.login().mp_login(&app, &code)).unwrap();
    c.bench_function("returning mini-program login (memory store, in-process WeChat)", |b| {
        b.iter(|| rt.block_on(bridge.login().mp_login(&app, &code)).unwrap())
    });

    // The part of it that is RS256 signing (an RSA-2048 private-key operation): API Gateway's
    // JWT authorizer accepts only RSA-signed tokens.
    let person = shared::ids::PersonId::parse("01890a5d-ac96-774b-bcce-b302099a8057").unwrap();
    let openid = OpenId::parse("oGZUI0egBJY1zhBYw2KhdUfwVJJE").unwrap();
    c.bench_function("bridge token: RS256 sign (2048-bit)", |b| {
        b.iter(|| bridge.tokens().issue(&person, &app, &openid, 1_700_000_000).unwrap())
    });
    let token = bridge.tokens().issue(&person, &app, &openid, 1_700_000_000).unwrap();
    c.bench_function("bridge token: RS256 verify", |b| {
        b.iter(|| bridge.tokens().verify(&token, 1_700_000_100).unwrap())
    });

    // The same person seen by a merchant's mini program, then translation with a warm cache.
    let seed = seed();
    let merchant = seed.app(&AppId::parse("wx2b3c4d5e6f708101").unwrap()).unwrap().clone();
    let person = rt
        .block_on(bridge.assoc().login(
            &seed.app(&app).unwrap().clone(),
            &OpenId::parse("oGZUI0egBJY1zhBYw2KhdUfwVJJE").unwrap(),
            None,
            Via::Jscode2session,
        ))
        .unwrap()
        .view
        .person;
    let merchant_openid = OpenId::parse("oMerchantOpenid000000000000x").unwrap();
    rt.block_on(bridge.assoc().link(&merchant, &merchant_openid, None, &person, Via::WebAuth)).unwrap();
    let from = OpenId::parse("oGZUI0egBJY1zhBYw2KhdUfwVJJE").unwrap();
    let service = shared::registry::Holder::Service;
    let t = rt.block_on(bridge.translator().translate_for(&service, &app, &from, &merchant.appid)).unwrap();
    assert_eq!(t.openid, merchant_openid.as_str());
    c.bench_function("translate platform -> merchant openid (warm cache, memory store)", |b| {
        b.iter(|| rt.block_on(bridge.translator().translate_for(&service, &app, &from, &merchant.appid)).unwrap())
    });
}

/// A safe-mode push of a scan of a website user's scene (the demo pivot's keys): verify both
/// signatures, decrypt, parse, de-duplicate and check the replay pair, check the scene and both
/// parties, ask the scanner to confirm, reply sealed — everything but the network.
fn bench_push(c: &mut Criterion) {
    use shared::domain::push::{PushAnswer, PushQuery};
    use shared::ids::{SiteId, SiteUserId};
    use shared::items::scene::Scene;
    use shared::model::SceneStatus;
    use shared::wechat::push::{sha1_sorted, PushCrypto};

    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let bridge = bridge(&rt);
    let seed = seed();
    let pivot = seed.app(seed.platform.pivot.as_ref().unwrap()).unwrap().clone();
    let token = pivot.token.clone().unwrap();
    let crypto = PushCrypto::new(pivot.encoding_aes_key.as_ref().unwrap(), pivot.appid.as_str()).unwrap();
    let mut n = 0u64;
    c.bench_function("push: safe-mode scan asks a new follower to confirm (memory store)", |b| {
        b.iter_batched(
            || {
                n += 1;
                let scene = format!("{n:032x}");
                let pending = Scene {
                    scene: scene.clone(),
                    site: SiteId::parse("demo-site").unwrap(),
                    user: SiteUserId::parse(&format!("u{n}")).unwrap(),
                    appid: pivot.appid.clone(),
                    status: SceneStatus::Pending,
                    expires_at_secs: i64::MAX / 4,
                    label: Some("a***@example.com".into()),
                    openid: None,
                    confirm: None,
                    person: None,
                };
                rt.block_on(bridge.store().write(pending.create())).unwrap();
                let xml = format!(
                    "<xml><ToUserName><![CDATA[gh_1]]></ToUserName><FromUserName><![CDATA[oBench{n:022}]]></FromUserName>\
                     <CreateTime>1700000000</CreateTime><MsgType><![CDATA[event]]></MsgType><Event><![CDATA[SCAN]]></Event>\
                     <EventKey><![CDATA[{scene}]]></EventKey></xml>"
                );
                let enc = crypto.encrypt(&xml);
                let body = format!("<xml><ToUserName><![CDATA[gh_1]]></ToUserName><Encrypt><![CDATA[{enc}]]></Encrypt></xml>");
                let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
                let (ts, nonce) = (now.to_string(), format!("{n}"));
                let q = PushQuery {
                    signature: Some(sha1_sorted(&[token.expose(), &ts, &nonce])),
                    msg_signature: Some(sha1_sorted(&[token.expose(), &ts, &nonce, &enc])),
                    timestamp: Some(ts),
                    nonce: Some(nonce),
                    echostr: None,
                    encrypt_type: Some("aes".into()),
                };
                (q, body)
            },
            |(q, body)| {
                let answer = rt.block_on(bridge.pushes().handle(&pivot.appid, &q, body.as_bytes())).unwrap();
                assert!(matches!(answer, PushAnswer::Xml(_)));
            },
            criterion::BatchSize::SmallInput,
        )
    });
}

criterion_group!(benches, bench, bench_push);
criterion_main!(benches);
