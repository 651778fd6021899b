//! Passive replies: the XML a push may be answered with, plain or in safe mode's envelope.

use super::signature::sha1_sorted;
use crate::ids::Secret;

/// The safe-mode reply around `encrypt`, signed like a `msg_signature`, laid out as wechatpy writes it.
pub(super) fn envelope_xml(token: &Secret, encrypt: &str, timestamp: &str, nonce: &str) -> String {
    let signature = sha1_sorted(&[token.expose(), timestamp, nonce, encrypt]);
    format!(
        "<xml>\n<Encrypt>{}</Encrypt>\n<MsgSignature>{}</MsgSignature>\n<TimeStamp>{}</TimeStamp>\n<Nonce>{}</Nonce>\n</xml>",
        cdata(encrypt),
        cdata(&signature),
        escape_text(timestamp),
        cdata(nonce)
    )
}

/// A CDATA section holding `s` exactly: each `]]>` inside is split across two sections.
fn cdata(s: &str) -> String {
    format!("<![CDATA[{}]]>", s.replace("]]>", "]]]]><![CDATA[>"))
}

/// Escapes character data outside CDATA.
fn escape_text(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            c => out.push(c),
        }
    }
    out
}

/// A passive text reply. The caller swaps the ids: `to` is the user's openid (the push's
/// FromUserName), `from` the account's original id (the push's ToUserName).
pub fn text_reply(to: &str, from: &str, create_time: i64, content: &str) -> String {
    format!(
        "<xml><ToUserName>{}</ToUserName><FromUserName>{}</FromUserName><CreateTime>{}</CreateTime>\
         <MsgType><![CDATA[text]]></MsgType><Content>{}</Content></xml>",
        cdata(to),
        cdata(from),
        create_time,
        cdata(content)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wechat::push::parse;
    use proptest::prelude::*;

    #[test]
    fn text_reply_round_trips() {
        for content in
            ["你好", "a]]>b", "]]>", "]]]]>", "<b>&amp; & ]]&gt;</b>", "", "  spaced  ", "混合 <x> & ]]> 中文"]
        {
            let xml = text_reply("oUSER", "gh_account", 1700000000, content);
            let m = parse(xml.as_bytes()).unwrap();
            assert_eq!(m.content.as_deref(), Some(content), "{xml}");
            assert_eq!((m.to_user.as_str(), m.from_user.as_str()), ("oUSER", "gh_account"));
            assert_eq!((m.create_time, m.msg_type.as_str()), (1700000000, "text"));
        }
        assert_eq!(
            text_reply("toUser(openid)", "fromUser(gh_…)", 12345678, "你好"),
            "<xml><ToUserName><![CDATA[toUser(openid)]]></ToUserName><FromUserName><![CDATA[fromUser(gh_…)]]></FromUserName><CreateTime>12345678</CreateTime><MsgType><![CDATA[text]]></MsgType><Content><![CDATA[你好]]></Content></xml>"
        );
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn text_reply_round_trips_any_text(content in "[^\r\u{0}]{0,64}") {
            let m = parse(text_reply("o", "gh", 1, &content).as_bytes()).unwrap();
            prop_assert_eq!(m.content.as_deref(), Some(content.as_str()));
        }
    }
}
