//! The token broker on the embedded store with a scripted WeChat: how often WeChat is asked.
//! Tests that wait run on tokio's paused clock, so the broker's pauses take no real time.

use super::*;
use crate::store::{item, s, Attr, Item, Write};
use crate::testkit::{official_account, Call, Ports};

fn oa() -> App {
    official_account("wxoa00000000000001", Some("op_platform"))
}

async fn cache(p: &Ports, app: &App) -> Option<Item> {
    p.store.get(&token::key(&app.appid)).await.unwrap()
}

/// Puts the cache item as another instance left it.
async fn leave_cache(p: &Ports, app: &App, attrs: Vec<(&'static str, Attr)>) {
    p.store.write(Write::Put { item: item(&token::key(&app.appid), attrs), cond: vec![] }).await.unwrap();
}

/// Asks WeChat for a QR code with the token: the kind of call `with_token` wraps.
async fn qr(p: &Ports, token: Secret) -> Result<String, Error> {
    p.wechat.qrcode_create(&token, "scene", 60).await.map(|q| q.ticket)
}

#[tokio::test]
async fn a_cached_token_is_served_without_asking_wechat_again() {
    let p = Ports::new();
    let first = p.broker().access_token(&oa()).await.unwrap();
    p.clock.advance(Duration::from_secs(3600));
    let second = p.broker().access_token(&oa()).await.unwrap();
    assert_eq!(first, second);
    assert_eq!(p.wechat.counts().stable_token, 1);
    let cached = Cached::from_item(cache(&p, &oa()).await.as_ref());
    assert_eq!(cached.token, Some(first));
    assert_eq!(cached.version, Some(1));
    assert_eq!((cached.lease, cached.lease_until_millis), (None, None), "the lease was given back");
}

#[tokio::test]
async fn a_token_within_five_minutes_of_its_expiry_is_refreshed() {
    let p = Ports::new();
    let first = p.broker().access_token(&oa()).await.unwrap();
    p.clock.advance(Duration::from_secs(7200 - EARLY_SECS as u64));
    let second = p.broker().access_token(&oa()).await.unwrap();
    assert_ne!(first, second);
    assert_eq!(p.wechat.calls().len(), 2);
    assert_eq!(p.wechat.counts().forced_refreshes, 0, "an early refresh does not force");
    assert_eq!(Cached::from_item(cache(&p, &oa()).await.as_ref()).version, Some(2));
}

#[tokio::test(start_paused = true)]
async fn two_concurrent_callers_cause_one_wechat_fetch() {
    let p = Ports::new();
    // The first caller holds the lease while WeChat answers; the second waits for it.
    p.wechat.token_latency(Duration::from_millis(300));
    let (broker, app) = (p.broker(), oa());
    let (a, b) = tokio::join!(broker.access_token(&app), broker.access_token(&app));
    assert_eq!(a.unwrap(), b.unwrap());
    assert_eq!(p.wechat.counts().stable_token, 1);
}

#[tokio::test]
async fn a_lease_abandoned_by_a_dead_holder_is_taken_over() {
    let p = Ports::new();
    let now = p.clock.now_millis();
    leave_cache(
        &p,
        &oa(),
        vec![
            (token::TOKEN, s("expired")),
            (token::EXPIRES, Attr::N(now - 1)),
            (token::VERSION, Attr::N(3)),
            (token::LEASE, s("dead-holder")),
            (token::LEASE_UNTIL, Attr::N(now - 1)),
        ],
    )
    .await;

    let t = p.broker().access_token(&oa()).await.unwrap();

    assert_ne!(t.expose(), "expired");
    assert_eq!(p.wechat.counts().stable_token, 1);
    let cached = Cached::from_item(cache(&p, &oa()).await.as_ref());
    assert_eq!((cached.token, cached.version, cached.lease), (Some(t), Some(4), None));
}

#[tokio::test(start_paused = true)]
async fn a_live_lease_is_waited_for_and_its_holders_token_served() {
    let p = Ports::new();
    let now = p.clock.now_millis();
    leave_cache(&p, &oa(), vec![(token::LEASE, s("alive")), (token::LEASE_UNTIL, Attr::N(now + LEASE_MILLIS))]).await;
    let key = token::key(&oa().appid);
    let holder = async {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let w = token::store(&key, "alive", &Secret::new("holders-token"), now + 7_200_000, 1, None);
        p.store.write(w).await.unwrap();
    };

    let (broker, app) = (p.broker(), oa());
    let (t, ()) = tokio::join!(broker.access_token(&app), holder);

    assert_eq!(t.unwrap().expose(), "holders-token");
    assert_eq!(p.wechat.counts().stable_token, 0);
}

/// Now as tokio's clock has it: paused-time tests then move the broker's clock by sleeping.
fn tokio_clock() -> impl Fn() -> i64 + Send + Sync {
    let start = tokio::time::Instant::now();
    move || crate::testkit::EPOCH_MILLIS + start.elapsed().as_millis() as i64
}

#[tokio::test(start_paused = true)]
async fn a_caller_waiting_on_a_lease_whose_holder_died_takes_it_over_when_it_expires() {
    let p = Ports::new();
    let clock = tokio_clock();
    let broker = Broker { clock: &clock, ..p.broker() };
    // The holder took the lease just now, then died.
    let now = clock.now_millis();
    leave_cache(&p, &oa(), vec![(token::LEASE, s("dead-holder")), (token::LEASE_UNTIL, Attr::N(now + LEASE_MILLIS))])
        .await;

    let t = broker.access_token(&oa()).await;

    assert!(t.is_ok(), "{t:?} after waiting {} ms", clock.now_millis() - now);
    assert_eq!(p.wechat.counts().stable_token, 1);
}

#[tokio::test]
async fn a_failed_fetch_gives_the_lease_back_so_the_next_caller_fetches_at_once() {
    let p = Ports::new();
    p.wechat.stable_token(&oa().appid, Err(Error::WeChatUnavailable));
    assert!(matches!(p.broker().access_token(&oa()).await, Err(Error::WeChatUnavailable)));
    assert_eq!(Cached::from_item(cache(&p, &oa()).await.as_ref()).lease, None);
    assert!(p.broker().access_token(&oa()).await.is_ok());
    assert_eq!(p.wechat.counts().stable_token, 2);
}

#[tokio::test]
async fn a_token_wechat_refuses_is_refreshed_once_and_the_call_retried_once() {
    let p = Ports::new();
    let stale = p.broker().access_token(&oa()).await.unwrap();
    p.wechat.refuse_token(stale.expose());

    let ticket = p.broker().with_token(&oa(), |t| qr(&p, t)).await.unwrap();

    assert_eq!(ticket, "ticket-scene");
    let fresh = p.broker().access_token(&oa()).await.unwrap();
    assert_ne!(fresh, stale);
    let c = p.wechat.counts();
    assert_eq!((c.stable_token, c.forced_refreshes, c.qrcode_create), (2, 1, 2));
    assert_eq!(
        p.wechat.calls()[1..],
        [
            Call::QrCodeCreate { access_token: stale.expose().into(), scene: "scene".into() },
            Call::StableToken { appid: oa().appid, force_refresh: true },
            Call::QrCodeCreate { access_token: fresh.expose().into(), scene: "scene".into() },
        ]
    );
}

#[tokio::test]
async fn a_token_refused_again_after_the_refresh_is_not_retried_a_second_time() {
    let p = Ports::new();
    let app = oa();
    p.wechat.stable_token(&app.appid, Ok((Secret::new("bad-1"), 7200)));
    p.wechat.stable_token(&app.appid, Ok((Secret::new("bad-2"), 7200)));
    p.wechat.refuse_token("bad-1").refuse_token("bad-2");

    let e = p.broker().with_token(&app, |t| qr(&p, t)).await.unwrap_err();

    assert!(matches!(e, Error::WeChatError(40001)), "{e:?}");
    let c = p.wechat.counts();
    assert_eq!((c.stable_token, c.forced_refreshes, c.qrcode_create), (2, 1, 2));
}

#[tokio::test]
async fn an_error_that_is_not_about_the_token_is_not_retried() {
    let p = Ports::new();
    p.wechat.qrcode(Err(Error::WeChatRateLimited));
    let e = p.broker().with_token(&oa(), |t| qr(&p, t)).await.unwrap_err();
    assert!(matches!(e, Error::WeChatRateLimited), "{e:?}");
    let c = p.wechat.counts();
    assert_eq!((c.stable_token, c.qrcode_create), (1, 1));
}

#[tokio::test(start_paused = true)]
async fn two_callers_refused_the_same_token_force_one_refresh() {
    let p = Ports::new();
    let stale = p.broker().access_token(&oa()).await.unwrap();
    p.wechat.refuse_token(stale.expose()).token_latency(Duration::from_millis(300));

    let (broker, app) = (p.broker(), oa());
    let (a, b) = tokio::join!(broker.with_token(&app, |t| qr(&p, t)), broker.with_token(&app, |t| qr(&p, t)));

    assert!(a.is_ok() && b.is_ok(), "{a:?} {b:?}");
    let c = p.wechat.counts();
    assert_eq!((c.stable_token, c.forced_refreshes, c.qrcode_create), (2, 1, 4));
}
