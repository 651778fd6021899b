//! Server pushes end to end (contract §4, §5, §6.1): QR codes scanned by users, menu clicks and
//! unfollows pushed to a real HTTP receiver on 127.0.0.1:0 that plays the bridge's endpoint,
//! signed (and encrypted in safe mode), retried, replayed, replies read back; and the
//! customer-service messages the OA sends afterwards.

mod support;

use axum::http::StatusCode;
use serde_json::{json, Value};
use support::*;
use wechat_sim::crypto::{msg_signature, push_signature, MsgCrypt};
use wechat_sim::sim::xml_fields;

async fn scan(app: &axum::Router, user: &str, ticket: &str) -> Value {
    let r = post(app, &format!("/sim/users/{user}/scan"), json!({ "ticket": ticket })).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    r.json()
}

#[tokio::test]
async fn scanning_an_expired_or_unknown_code_pushes_nothing() {
    let rx = Receiver::start().await;
    let sim = demo_sim(Some(rx.base.clone()));
    let app = sim.router();
    let token = access_token(&app, &sim, PIVOT).await;
    let ticket = qr_ticket(&app, &token, "scene-1", 60).await;
    post(&app, "/sim/clock", json!({ "advance_seconds": 60 })).await;
    assert_eq!(scan(&app, "alice", &ticket).await, json!({ "status": "expired" }));
    assert_eq!(scan(&app, "alice", "no-such-ticket").await, json!({ "status": "expired" }));
    assert!(rx.received().is_empty());
    assert_eq!(get(&app, "/sim/pushes").await.json(), json!({ "pushes": [] }));
    let f = get(&app, &format!("/sim/users/alice/follow?appid={PIVOT}")).await.json();
    assert_eq!(f["following"], false, "an expired code does not make a follower");
    let r = post(&app, "/sim/users/alice/scan", json!({})).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn safe_mode_scan_subscribes_then_scans_signed_and_encrypted() {
    let rx = Receiver::start().await;
    let sim = demo_sim(Some(rx.base.clone()));
    let app = sim.router();
    let oa = sim.registry().app(PIVOT).expect("pivot").clone();
    assert!(oa.safe_mode);
    let token = oa.token.clone().expect("token");
    let truth = identity(&app, "bob", PIVOT).await;
    let openid = truth["openid"].as_str().expect("openid").to_owned();

    let access = access_token(&app, &sim, PIVOT).await;
    let ticket = qr_ticket(&app, &access, "site-42", 600).await;
    let r = scan(&app, "bob", &ticket).await;
    assert_eq!(r["status"], "pushed", "{r}");
    assert_eq!(r["event"], "subscribe");
    assert_eq!(r["http_status"], 200);
    assert_eq!(r["attempts"], 1);
    assert_eq!(r["openid"], openid.as_str());
    assert_eq!(r["reply"], "subscribe:qrscene_site-42", "the decrypted reply text: {r}");
    assert_eq!(r["reply_type"], "text");

    let got = rx.received();
    assert_eq!(got.len(), 1);
    let push = &got[0];
    assert_eq!(push.path, format!("/v1/wechat/push/{PIVOT}"));
    assert_eq!(push.content_type, "text/xml");
    // Verify independently: the plain signature, then msg_signature over the Encrypt element.
    let p = |k: &str| push.params.get(k).map(String::as_str).unwrap_or_else(|| panic!("no {k} in {}", push.query));
    assert_eq!(p("signature"), push_signature(&token, p("timestamp"), p("nonce")));
    assert_eq!(p("encrypt_type"), "aes");
    assert_eq!(p("openid"), openid);
    let envelope = xml_fields(&push.body).expect("envelope");
    assert_eq!(envelope.len(), 2, "{}", push.body);
    assert_eq!(envelope["ToUserName"], oa.original_id());
    assert!(oa.original_id().starts_with("gh_") && oa.original_id().len() == 15);
    let encrypt = &envelope["Encrypt"];
    assert_eq!(p("msg_signature"), msg_signature(&token, p("timestamp"), p("nonce"), encrypt));
    let crypt = MsgCrypt::new(oa.encoding_aes_key.as_deref().expect("key"), PIVOT).expect("crypt");
    let plain = crypt.decrypt(encrypt).expect("decrypts for the pivot's appid");
    let f = xml_fields(&plain).expect("event xml");
    assert_eq!(f["ToUserName"], oa.original_id());
    assert_eq!(f["FromUserName"], openid);
    assert_eq!(f["MsgType"], "event");
    assert_eq!(f["Event"], "subscribe");
    assert_eq!(f["EventKey"], "qrscene_site-42");
    assert_eq!(f["Ticket"], ticket);
    let created: i64 = f["CreateTime"].parse().expect("CreateTime");
    assert!((created - sim.now_seconds()).abs() <= 5);
    assert_eq!(p("timestamp"), f["CreateTime"]);
    assert!(plain.starts_with("<xml><ToUserName><![CDATA["), "{plain}");

    // Following authorized the Open Platform account: the MP now gets the unionid.
    let f = get(&app, &format!("/sim/users/bob/follow?appid={PIVOT}")).await.json();
    assert_eq!(f["following"], true);
    let code = post(&app, "/sim/users/bob/login", json!({ "appid": MP })).await.json()["code"].clone();
    let uri = format!(
        "/sns/jscode2session?appid={MP}&secret={}&js_code={}&grant_type=authorization_code",
        secret(&sim, MP),
        code.as_str().unwrap_or("")
    );
    assert_eq!(get(&app, &uri).await.json()["unionid"], truth["unionid"]);

    // A follower scans again: SCAN with the bare scene.
    let r = scan(&app, "bob", &ticket).await;
    assert_eq!((r["event"].as_str(), r["reply"].as_str()), (Some("SCAN"), Some("SCAN:site-42")), "{r}");
    let again = rx.received();
    let f = xml_fields(again[1].plain.as_deref().expect("decrypted")).expect("xml");
    assert_eq!(
        (f["Event"].as_str(), f["EventKey"].as_str(), f["Ticket"].as_str()),
        ("SCAN", "site-42", ticket.as_str())
    );
    assert!(again[1].signature_ok && again[1].msg_signature_ok);

    // The push log shows both, with what went over the wire.
    let log = get(&app, "/sim/pushes").await.json();
    let pushes = log["pushes"].as_array().expect("pushes");
    assert_eq!(pushes.len(), 2);
    assert_eq!(pushes[0]["event"], "subscribe");
    assert_eq!(pushes[0]["body"], push.body.as_str());
    assert_eq!(pushes[0]["status"], "pushed");
    assert_eq!(pushes[1]["safe_mode"], true);
}

#[tokio::test]
async fn plain_mode_scan_click_subscribe_and_unsubscribe() {
    let rx = Receiver::start().await;
    let sim = demo_sim(Some(rx.base.clone()));
    let app = sim.router();
    let access = access_token(&app, &sim, M1_OA).await;
    // QR_SCENE with an integer scene.
    let body = json!({"expire_seconds": 300, "action_name": "QR_SCENE", "action_info": {"scene": {"scene_id": 123}}});
    let r = post(&app, &format!("/cgi-bin/qrcode/create?access_token={access}"), body).await;
    let ticket = r.json()["ticket"].as_str().expect("ticket").to_owned();
    let r = scan(&app, "carol", &ticket).await;
    assert_eq!((r["event"].as_str(), r["reply"].as_str()), (Some("subscribe"), Some("subscribe:qrscene_123")), "{r}");
    let push = &rx.received()[0];
    assert!(push.signature_ok);
    assert!(!push.params.contains_key("encrypt_type") && !push.params.contains_key("msg_signature"));
    let f = xml_fields(&push.body).expect("plaintext event");
    assert_eq!(f["Event"], "subscribe");
    assert_eq!(f["Ticket"], ticket);

    let r = post(&app, "/sim/users/carol/click", json!({ "appid": M1_OA, "key": "MENU_LOGIN" })).await;
    let v = r.json();
    assert_eq!((v["event"].as_str(), v["reply"].as_str()), (Some("CLICK"), Some("CLICK:MENU_LOGIN")), "{}", r.text);
    let f = xml_fields(&rx.received()[1].body).expect("click xml");
    assert!(!f.contains_key("Ticket"));

    let r = post(&app, "/sim/users/carol/unsubscribe", json!({ "appid": M1_OA })).await.json();
    assert_eq!(r["event"], "unsubscribe");
    let f = xml_fields(&rx.received()[2].body).expect("unsubscribe xml");
    assert_eq!((f["Event"].as_str(), f["EventKey"].as_str()), ("unsubscribe", ""));
    assert_eq!(get(&app, &format!("/sim/users/carol/follow?appid={M1_OA}")).await.json()["following"], false);
    let r = post(&app, "/sim/users/carol/unsubscribe", json!({ "appid": M1_OA })).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "a non-follower cannot unfollow");
    // Scanning after unfollowing subscribes again; following without a scene too.
    assert_eq!(scan(&app, "carol", &ticket).await["event"], "subscribe");
    let r = post(&app, "/sim/users/dan/subscribe", json!({ "appid": M1_OA })).await.json();
    assert_eq!((r["event"].as_str(), r["reply"].as_str()), (Some("subscribe"), Some("subscribe:")), "{r}");
    assert_eq!(post(&app, "/sim/users/dan/subscribe", json!({ "appid": M1_OA })).await.status, StatusCode::BAD_REQUEST);
    // The follow helper pushes nothing.
    let before = rx.received().len();
    let r = post(&app, "/sim/users/erin/follow", json!({ "appid": M1_OA })).await.json();
    assert_eq!((r["following"].as_bool(), r["changed"].as_bool()), (Some(true), Some(true)));
    assert_eq!(rx.received().len(), before);
    // Only official accounts.
    for (uri, body) in [
        ("/sim/users/erin/follow", json!({ "appid": MP })),
        ("/sim/users/erin/click", json!({ "appid": MP, "key": "K" })),
        ("/sim/users/erin/click", json!({ "appid": M1_OA })),
    ] {
        assert_eq!(post(&app, uri, body).await.status, StatusCode::BAD_REQUEST, "{uri}");
    }
}

#[tokio::test]
async fn replies_wechat_cannot_use_are_reported() {
    let rx = Receiver::start().await;
    let sim = demo_sim(Some(rx.base.clone()));
    let app = sim.router();
    let click = |user: &'static str, appid: &'static str| {
        let app = app.clone();
        async move { post(&app, &format!("/sim/users/{user}/click"), json!({ "appid": appid, "key": "K" })).await.json() }
    };
    // "success" and an empty body: no reply.
    rx.script([Answer::Raw("success".into()), Answer::Raw(String::new())]);
    for _ in 0..2 {
        let r = click("fay", PIVOT).await;
        assert_eq!((r["status"].as_str(), r["reply"].as_str()), (Some("pushed"), None), "{r}");
    }
    let openid = identity(&app, "fay", M1_OA).await["openid"].as_str().expect("openid").to_owned();
    let gh = sim.registry().app(M1_OA).expect("m1").original_id();
    let reply = |to: &str, from: &str| {
        format!("<xml><ToUserName><![CDATA[{to}]]></ToUserName><FromUserName><![CDATA[{from}]]></FromUserName><CreateTime>1</CreateTime><MsgType><![CDATA[text]]></MsgType><Content><![CDATA[hi & bye]]></Content></xml>")
    };
    // Plain mode: a good reply, then broken ones.
    rx.script([
        Answer::Raw(reply(&openid, &gh)),
        Answer::Raw(reply(&gh, &openid)),
        Answer::Raw("{\"json\":true}".into()),
    ]);
    let ok = click("fay", M1_OA).await;
    assert_eq!(ok["reply"], "hi & bye", "{ok}");
    let swapped = click("fay", M1_OA).await;
    assert_eq!(swapped["status"], "bad_reply", "{swapped}");
    assert!(swapped["error"].as_str().unwrap_or("").contains("ToUserName"), "{swapped}");
    assert_eq!(click("fay", M1_OA).await["status"], "bad_reply");

    // Safe mode: a plaintext reply, a bad MsgSignature, a reply sealed for another appid.
    let pivot = sim.registry().app(PIVOT).expect("pivot").clone();
    let key = pivot.encoding_aes_key.clone().expect("key");
    let token = pivot.token.clone().expect("token");
    let pivot_openid = identity(&app, "fay", PIVOT).await["openid"].as_str().expect("openid").to_owned();
    let good = reply(&pivot_openid, &pivot.original_id());
    let crypt = MsgCrypt::new(&key, PIVOT).expect("crypt");
    let forged = sealed(&crypt, "another-token", &good);
    let foreign = sealed(&MsgCrypt::new(&key, M1_OA).expect("crypt"), &token, &good);
    rx.script([
        Answer::Raw(good.clone()),
        Answer::Raw(forged),
        Answer::Raw(foreign),
        Answer::Raw(sealed(&crypt, &token, &good)),
    ]);
    for expect in ["no <Encrypt>", "MsgSignature", "decrypt"] {
        let r = click("fay", PIVOT).await;
        assert_eq!(r["status"], "bad_reply", "{r}");
        assert!(r["error"].as_str().unwrap_or("").contains(expect), "{expect}: {r}");
        assert!(r["reply"].is_null());
    }
    let r = click("fay", PIVOT).await;
    assert_eq!((r["status"].as_str(), r["reply"].as_str()), (Some("pushed"), Some("hi & bye")), "{r}");
    assert!(r["reply_xml"].as_str().unwrap_or("").contains(&pivot_openid));
}

#[tokio::test]
async fn unanswered_pushes_are_retried_unchanged() {
    let rx = Receiver::start().await;
    let sim = demo_sim(Some(rx.base.clone()));
    let app = sim.router();
    let r = post(&app, "/sim/config", json!({ "push_timeout_ms": 300 })).await.json();
    assert_eq!((r["push_retries"].as_u64(), r["push_timeout_ms"].as_u64()), (Some(3), Some(300)), "{r}");
    // A 500, then no answer in time, then the real answer: three attempts, one event.
    rx.script([Answer::Status(500), Answer::Sleep(1000)]);
    let r = post(&app, "/sim/users/gus/click", json!({ "appid": PIVOT, "key": "K1" })).await.json();
    assert_eq!((r["status"].as_str(), r["attempts"].as_u64()), (Some("pushed"), Some(3)), "{r}");
    assert_eq!(r["reply"], "CLICK:K1");
    let got = rx.received();
    assert_eq!(got.len(), 3);
    assert!(got.iter().all(|g| g.query == got[0].query && g.body == got[0].body), "retries are byte-identical");
    let log = get(&app, "/sim/pushes").await.json();
    let attempts = &log["pushes"][0]["attempts"];
    assert_eq!(attempts[0]["http_status"], 500);
    assert!(attempts[1]["http_status"].is_null());
    assert!(attempts[1]["error"].as_str().unwrap_or("").contains("300 ms"), "{attempts}");
    assert_eq!(attempts[2]["http_status"], 200);

    // With one retry and two failures the push fails.
    post(&app, "/sim/config", json!({ "push_retries": 1 })).await;
    rx.script([Answer::Status(503), Answer::Status(502)]);
    let r = post(&app, "/sim/users/gus/click", json!({ "appid": PIVOT, "key": "K2" })).await.json();
    assert_eq!(
        (r["status"].as_str(), r["attempts"].as_u64(), r["http_status"].as_u64()),
        (Some("failed"), Some(2), Some(502)),
        "{r}"
    );
    assert!(r["reply"].is_null());

    // No receiver at all.
    let dead = demo_sim(Some("http://127.0.0.1:9".into()));
    dead.set_push_retries(0).expect("knob");
    let r = post(&dead.router(), "/sim/users/gus/click", json!({ "appid": PIVOT, "key": "K" })).await.json();
    assert_eq!((r["status"].as_str(), r["attempts"].as_u64()), (Some("failed"), Some(1)), "{r}");
    assert!(r["http_status"].is_null());

    // Knob validation, and reset restores the defaults.
    for bad in [json!({ "push_retries": 11 }), json!({ "push_timeout_ms": 0 }), json!({ "push_retry": 1 })] {
        assert_eq!(post(&app, "/sim/config", bad).await.status, StatusCode::BAD_REQUEST);
    }
    post(&app, "/sim/reset", Value::Null).await;
    let r = get(&app, "/sim/config").await.json();
    assert_eq!((r["push_retries"].as_u64(), r["push_timeout_ms"].as_u64()), (Some(3), Some(5000)), "{r}");
    // Without a push URL nothing can be pushed.
    let nowhere = demo_sim(None).router();
    assert_eq!(
        post(&nowhere, "/sim/users/gus/click", json!({ "appid": PIVOT, "key": "K" })).await.status,
        StatusCode::BAD_REQUEST
    );
}

#[tokio::test]
async fn replay_sends_the_last_push_again_byte_for_byte() {
    let rx = Receiver::start().await;
    let sim = demo_sim(Some(rx.base.clone()));
    let app = sim.router();
    let r = post(&app, "/sim/pushes/replay", json!({ "times": 1 })).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "nothing pushed yet");
    let access = access_token(&app, &sim, PIVOT).await;
    let ticket = qr_ticket(&app, &access, "dup", 600).await;
    assert_eq!(scan(&app, "hal", &ticket).await["event"], "subscribe");
    let r = post(&app, "/sim/pushes/replay", json!({ "times": 2 })).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let results = r.json()["results"].as_array().expect("results").clone();
    assert_eq!(results.len(), 2);
    for res in &results {
        assert_eq!((res["event"].as_str(), res["http_status"].as_u64()), (Some("subscribe"), Some(200)), "{res}");
        assert_eq!(res["reply"], "subscribe:qrscene_dup");
    }
    let got = rx.received();
    assert_eq!(got.len(), 3);
    assert!(got.iter().all(|g| g.query == got[0].query && g.body == got[0].body));
    let log = get(&app, "/sim/pushes").await.json();
    assert_eq!(log["pushes"][2]["replay"], true);
    for bad in [json!({ "times": 0 }), json!({ "times": 21 })] {
        assert_eq!(post(&app, "/sim/pushes/replay", bad).await.status, StatusCode::BAD_REQUEST);
    }
}

async fn custom_send(app: &axum::Router, token: &str, body: Value) -> Reply {
    post(app, &format!("/cgi-bin/message/custom/send?access_token={token}"), body).await
}

fn text(to: &str, content: &str) -> Value {
    json!({ "touser": to, "msgtype": "text", "text": { "content": content } })
}

#[tokio::test]
async fn customer_service_messages_follow_the_window() {
    let rx = Receiver::start().await;
    let sim = demo_sim(Some(rx.base.clone()));
    let app = sim.router();
    let token = access_token(&app, &sim, M1_OA).await;
    let openid = identity(&app, "ida", M1_OA).await["openid"].as_str().expect("openid").to_owned();
    // Nobody of that openid has been seen yet.
    assert_wx_error(&custom_send(&app, &token, text(&openid, "hi")).await, 40003, "invalid openid");
    post(&app, "/sim/users/ida/follow", json!({ "appid": M1_OA })).await;
    // Following opens no window: only an event does.
    assert_wx_error(
        &custom_send(&app, &token, text(&openid, "hi")).await,
        45015,
        "response out of time limit or subscription is canceled",
    );
    post(&app, "/sim/users/ida/click", json!({ "appid": M1_OA, "key": "K" })).await;
    for i in 0..3 {
        let r = custom_send(&app, &token, text(&openid, &format!("m{i}"))).await;
        assert_eq!(r.json(), json!({ "errcode": 0, "errmsg": "ok" }), "{}", r.text);
        assert_eq!(r.content_type, "application/json; encoding=utf-8");
    }
    assert_wx_error(&custom_send(&app, &token, text(&openid, "m3")).await, 45047, "out of response count limit");
    post(&app, "/sim/users/ida/click", json!({ "appid": M1_OA, "key": "K" })).await;
    post(&app, "/sim/clock", json!({ "advance_seconds": 61 })).await;
    assert_wx_error(
        &custom_send(&app, &token, text(&openid, "late")).await,
        45015,
        "response out of time limit or subscription is canceled",
    );

    let r = get(&app, &format!("/sim/users/ida/messages?appid={M1_OA}")).await.json();
    let msgs = r["messages"].as_array().expect("messages");
    let contents: Vec<&str> = msgs.iter().filter_map(|m| m["content"].as_str()).collect();
    assert_eq!(contents, ["m0", "m1", "m2"]);
    assert_eq!(msgs[0]["msgtype"], "text");
    assert_eq!(msgs[0]["body"]["touser"], openid.as_str());
    assert_eq!(get(&app, &format!("/sim/users/ida/messages?appid={PIVOT}")).await.json(), json!({ "messages": [] }));

    // With the window off, any follower of the app can be messaged; other media pass too.
    post(&app, "/sim/config", json!({ "cs_window": false })).await;
    let r =
        custom_send(&app, &token, json!({ "touser": openid, "msgtype": "image", "image": { "media_id": "M" } })).await;
    assert_eq!(r.json()["errcode"], 0, "{}", r.text);
    // Errors.
    assert_wx_error(
        &custom_send(&app, &token, json!({ "touser": openid, "msgtype": "fax" })).await,
        40008,
        "invalid message type",
    );
    assert_wx_error(&custom_send(&app, &token, text(&openid, "")).await, 44004, "empty content");
    assert_wx_error(
        &custom_send(&app, &token, text(&openid, &"x".repeat(2049))).await,
        45002,
        "content size out of limit",
    );
    assert_wx_error(&custom_send(&app, &token, text("oNobody", "hi")).await, 40003, "invalid openid");
    assert_wx_error(
        &custom_send(&app, "bogus", text(&openid, "hi")).await,
        40001,
        "invalid credential, access_token is invalid or not latest",
    );
    let r = post(&app, "/cgi-bin/message/custom/send", text(&openid, "hi")).await;
    assert_wx_error(&r, 41001, "access_token missing");
    let req = axum::http::Request::post(format!("/cgi-bin/message/custom/send?access_token={token}"))
        .body(axum::body::Body::from("not json"))
        .expect("request");
    assert_wx_error(&send(&app, req).await, 47001, "data format error");
    // An openid of another app is not this app's user.
    let other = identity(&app, "ida", PIVOT).await["openid"].as_str().expect("openid").to_owned();
    assert_wx_error(&custom_send(&app, &token, text(&other, "hi")).await, 40003, "invalid openid");
    assert_eq!(get(&app, "/sim/calls").await.json()["/cgi-bin/message/custom/send"], 16);
}
