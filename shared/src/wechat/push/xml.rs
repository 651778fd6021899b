//! The push XML, read defensively: limits on size, depth and element count, no DOCTYPE, no
//! entity beyond XML's five and character references, so a hostile body costs little.

use quick_xml::escape::resolve_xml_entity;
use quick_xml::events::{BytesStart, Event};
use quick_xml::Reader;

use super::MAX_PUSH_BODY;
use crate::error::Error;

/// Nesting allowed in a push: WeChat's deepest events (`pic_sysphoto`:
/// `xml/SendPicsInfo/PicList/item/PicMd5Sum`) go 5 levels down; anything deeper is not WeChat.
const MAX_DEPTH: usize = 6;
/// Elements allowed in a push, `<xml>` included.
const MAX_ELEMENTS: usize = 64;

/// The fields of a push the bridge reads; other elements are ignored.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct PushMessage {
    pub to_user: String,
    pub from_user: String,
    pub create_time: i64,
    pub msg_type: String,
    pub event: Option<String>,
    pub event_key: Option<String>,
    pub ticket: Option<String>,
    pub msg_id: Option<String>,
    pub content: Option<String>,
    /// Safe mode: the encrypted inner message.
    pub encrypt: Option<String>,
    /// A third-party platform's authorization events (WECHAT_CONTRACT.md §11).
    pub app_id: Option<String>,
    pub info_type: Option<String>,
    pub component_verify_ticket: Option<String>,
    pub authorizer_appid: Option<String>,
    pub authorization_code: Option<String>,
    pub pre_auth_code: Option<String>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Field {
    ToUser,
    FromUser,
    CreateTime,
    MsgType,
    Event,
    EventKey,
    Ticket,
    MsgId,
    Content,
    Encrypt,
    AppId,
    InfoType,
    ComponentVerifyTicket,
    AuthorizerAppid,
    AuthorizationCode,
    PreAuthCode,
}

impl Field {
    fn from_name(name: &[u8]) -> Option<Self> {
        Some(match name {
            b"ToUserName" => Field::ToUser,
            b"FromUserName" => Field::FromUser,
            b"CreateTime" => Field::CreateTime,
            b"MsgType" => Field::MsgType,
            b"Event" => Field::Event,
            b"EventKey" => Field::EventKey,
            b"Ticket" => Field::Ticket,
            b"MsgId" => Field::MsgId,
            b"Content" => Field::Content,
            b"Encrypt" => Field::Encrypt,
            b"AppId" => Field::AppId,
            b"InfoType" => Field::InfoType,
            b"ComponentVerifyTicket" => Field::ComponentVerifyTicket,
            b"AuthorizerAppid" => Field::AuthorizerAppid,
            b"AuthorizationCode" => Field::AuthorizationCode,
            b"PreAuthCode" => Field::PreAuthCode,
            _ => return None,
        })
    }
}

/// The value of one field being read: its text and CDATA pieces in order.
struct Pending {
    field: Option<Field>,
    pieces: Vec<(bool, String)>,
    has_child: bool,
}

impl Pending {
    /// Text and CDATA joined; when CDATA is used, whitespace-only text around it is layout.
    fn value(self) -> String {
        let any_cdata = self.pieces.iter().any(|(is_cdata, _)| *is_cdata);
        self.pieces
            .into_iter()
            .filter(|(is_cdata, s)| !any_cdata || *is_cdata || !s.trim().is_empty())
            .map(|(_, s)| s)
            .collect()
    }
}

#[derive(Default)]
struct Fields {
    to_user: Option<String>,
    from_user: Option<String>,
    create_time: Option<String>,
    msg_type: Option<String>,
    event: Option<String>,
    event_key: Option<String>,
    ticket: Option<String>,
    msg_id: Option<String>,
    content: Option<String>,
    encrypt: Option<String>,
    app_id: Option<String>,
    info_type: Option<String>,
    component_verify_ticket: Option<String>,
    authorizer_appid: Option<String>,
    authorization_code: Option<String>,
    pre_auth_code: Option<String>,
}

impl Fields {
    fn slot(&mut self, f: Field) -> &mut Option<String> {
        match f {
            Field::ToUser => &mut self.to_user,
            Field::FromUser => &mut self.from_user,
            Field::CreateTime => &mut self.create_time,
            Field::MsgType => &mut self.msg_type,
            Field::Event => &mut self.event,
            Field::EventKey => &mut self.event_key,
            Field::Ticket => &mut self.ticket,
            Field::MsgId => &mut self.msg_id,
            Field::Content => &mut self.content,
            Field::Encrypt => &mut self.encrypt,
            Field::AppId => &mut self.app_id,
            Field::InfoType => &mut self.info_type,
            Field::ComponentVerifyTicket => &mut self.component_verify_ticket,
            Field::AuthorizerAppid => &mut self.authorizer_appid,
            Field::AuthorizationCode => &mut self.authorization_code,
            Field::PreAuthCode => &mut self.pre_auth_code,
        }
    }
}

/// Where the parser stands in the document.
#[derive(Default)]
struct ParseState {
    fields: Fields,
    depth: usize,
    elements: usize,
    root_done: bool,
    /// The direct child of `<xml>` being read.
    pending: Option<Pending>,
}

impl ParseState {
    fn open(&mut self, e: &BytesStart<'_>, is_empty: bool) -> Result<(), Error> {
        if self.root_done {
            return Err(bad("content after the root element"));
        }
        self.elements += 1;
        if self.elements > MAX_ELEMENTS {
            return Err(bad("too many elements"));
        }
        let level = self.depth + 1;
        if level > MAX_DEPTH {
            return Err(bad("nested too deeply"));
        }
        for attr in e.attributes() {
            attr.map_err(|_| bad("ill-formed attribute"))?;
        }
        let name = e.name();
        match level {
            1 => {
                if name.as_ref() != b"xml" {
                    return Err(bad("the root element must be <xml>"));
                }
                self.root_done = is_empty;
            }
            2 => {
                let p = Pending { field: Field::from_name(name.as_ref()), pieces: Vec::new(), has_child: false };
                if is_empty {
                    store(&mut self.fields, p)?;
                } else {
                    self.pending = Some(p);
                }
            }
            _ => {
                if let Some(p) = self.pending.as_mut() {
                    p.has_child = true;
                }
            }
        }
        if !is_empty {
            self.depth = level;
        }
        Ok(())
    }

    /// An end tag; quick-xml has checked that its name matches the open element.
    fn close(&mut self) -> Result<(), Error> {
        match self.depth {
            0 => return Err(bad("unmatched end tag")),
            1 => self.root_done = true,
            2 => {
                if let Some(p) = self.pending.take() {
                    store(&mut self.fields, p)?;
                }
            }
            _ => {}
        }
        self.depth -= 1;
        Ok(())
    }

    fn text(&mut self, is_cdata: bool, s: String) -> Result<(), Error> {
        match self.depth {
            2 => {
                if let Some(p) = self.pending.as_mut() {
                    p.pieces.push((is_cdata, s));
                }
                Ok(())
            }
            0 | 1 if is_cdata || !s.trim().is_empty() => Err(bad("stray text outside the fields")),
            _ => Ok(()),
        }
    }
}

fn bad(why: &str) -> Error {
    Error::InvalidRequest(format!("malformed push: {why}"))
}

/// Parses a push body: `<xml>` with flat fields, as text or CDATA.
///
/// Refused: a body over [`MAX_PUSH_BODY`] (`PayloadTooLarge`); a DOCTYPE (so no entity is ever
/// declared), a processing instruction other than a leading XML declaration, an entity
/// reference other than the five predefined ones and numeric character references, nesting
/// deeper than 6, more than 64 elements, a root other than `<xml>`, content after the root,
/// non-UTF-8 text, a repeated known field, and anything quick-xml finds ill-formed
/// (`InvalidRequest`). A plaintext push (no `Encrypt`) must carry ToUserName, FromUserName,
/// CreateTime and MsgType; a safe-mode envelope needs only `Encrypt`.
pub fn parse(body: &[u8]) -> Result<PushMessage, Error> {
    let m = read(body)?;
    if m.encrypt.is_none()
        && (m.to_user.is_empty() || m.from_user.is_empty() || m.msg_type.is_empty() || m.create_time == 0)
    {
        return Err(bad("ToUserName, FromUserName, CreateTime and MsgType are required"));
    }
    Ok(m)
}

/// Parses a third-party platform's decrypted authorization event, read as [`parse`] reads a
/// push: it must carry AppId, CreateTime and InfoType.
pub fn parse_event(body: &[u8]) -> Result<PushMessage, Error> {
    let m = read(body)?;
    if m.app_id.is_none() || m.info_type.is_none() || m.create_time == 0 {
        return Err(bad("AppId, CreateTime and InfoType are required"));
    }
    Ok(m)
}

fn read(body: &[u8]) -> Result<PushMessage, Error> {
    if body.len() > MAX_PUSH_BODY {
        return Err(Error::PayloadTooLarge(MAX_PUSH_BODY));
    }
    let mut reader = Reader::from_reader(body);
    {
        let cfg = reader.config_mut();
        cfg.check_end_names = true;
        cfg.allow_unmatched_ends = false;
        cfg.check_comments = true;
        cfg.expand_empty_elements = false;
        cfg.trim_text(false);
    }

    let mut st = ParseState::default();
    let mut first_event = true;
    loop {
        let event = reader.read_event().map_err(|_| bad("ill-formed XML"))?;
        let was_first = std::mem::replace(&mut first_event, false);
        match event {
            Event::Decl(d) => {
                if !was_first {
                    return Err(bad("misplaced XML declaration"));
                }
                if let Some(enc) = d.encoding() {
                    let enc = enc.map_err(|_| bad("bad XML declaration"))?;
                    if !enc.eq_ignore_ascii_case(b"utf-8") && !enc.eq_ignore_ascii_case(b"utf8") {
                        return Err(bad("only UTF-8 is accepted"));
                    }
                }
            }
            Event::DocType(_) => return Err(bad("DOCTYPE is not accepted")),
            Event::PI(_) => return Err(bad("processing instructions are not accepted")),
            Event::Comment(_) => {}
            Event::Start(e) => st.open(&e, false)?,
            Event::Empty(e) => st.open(&e, true)?,
            Event::End(_) => st.close()?,
            Event::Text(t) => {
                let s = t.unescape_with(resolve_xml_entity).map_err(|_| bad("bad text or entity reference"))?;
                st.text(false, s.into_owned())?;
            }
            Event::CData(c) => {
                let s = c.decode().map_err(|_| bad("CDATA is not UTF-8"))?;
                st.text(true, s.into_owned())?;
            }
            Event::Eof => break,
        }
    }
    let ParseState { fields, depth, root_done, .. } = st;
    if depth != 0 || !root_done {
        return Err(bad("incomplete document"));
    }

    let create_time = match fields.create_time.as_deref() {
        Some(s) => Some(s.trim().parse::<i64>().map_err(|_| bad("CreateTime is not an integer"))?),
        None => None,
    };
    Ok(PushMessage {
        to_user: fields.to_user.unwrap_or_default(),
        from_user: fields.from_user.unwrap_or_default(),
        create_time: create_time.unwrap_or_default(),
        msg_type: fields.msg_type.unwrap_or_default(),
        event: fields.event,
        event_key: fields.event_key,
        ticket: fields.ticket,
        msg_id: fields.msg_id,
        content: fields.content,
        encrypt: fields.encrypt,
        app_id: fields.app_id,
        info_type: fields.info_type,
        component_verify_ticket: fields.component_verify_ticket,
        authorizer_appid: fields.authorizer_appid,
        authorization_code: fields.authorization_code,
        pre_auth_code: fields.pre_auth_code,
    })
}

/// Records a finished field: unknown ones are dropped, a known one must be flat and single.
fn store(fields: &mut Fields, p: Pending) -> Result<(), Error> {
    let Some(field) = p.field else { return Ok(()) };
    if p.has_child {
        return Err(bad("a known field holds elements"));
    }
    let slot = fields.slot(field);
    if slot.is_some() {
        return Err(bad("a field is repeated"));
    }
    *slot = Some(p.value());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wechat::push::crypt::tests::MP_REPLY2;
    use proptest::prelude::*;

    fn refused(body: &[u8]) -> bool {
        matches!(parse(body), Err(Error::InvalidRequest(_)))
    }

    // ---- Event XML (§5.3) ----
    const SUBSCRIBE_QR: &str = "<xml><ToUserName><![CDATA[toUser]]></ToUserName><FromUserName><![CDATA[FromUser]]></FromUserName><CreateTime>123456789</CreateTime><MsgType><![CDATA[event]]></MsgType><Event><![CDATA[subscribe]]></Event><EventKey><![CDATA[qrscene_123123]]></EventKey><Ticket><![CDATA[TICKET]]></Ticket></xml>";
    const SCAN: &str = "<xml><ToUserName><![CDATA[toUser]]></ToUserName><FromUserName><![CDATA[FromUser]]></FromUserName><CreateTime>123456789</CreateTime><MsgType><![CDATA[event]]></MsgType><Event><![CDATA[SCAN]]></Event><EventKey><![CDATA[SCENE_VALUE]]></EventKey><Ticket><![CDATA[TICKET]]></Ticket></xml>";
    const SUBSCRIBE_PLAIN: &str = "<xml><ToUserName><![CDATA[gh_xxx]]></ToUserName><FromUserName><![CDATA[OPENID]]></FromUserName><CreateTime>1372307736</CreateTime><MsgType><![CDATA[event]]></MsgType><Event><![CDATA[subscribe]]></Event><EventKey><![CDATA[]]></EventKey></xml>";
    const UNSUBSCRIBE: &str = "<xml><ToUserName><![CDATA[toUser]]></ToUserName><FromUserName><![CDATA[FromUser]]></FromUserName><CreateTime>123456789</CreateTime><MsgType><![CDATA[event]]></MsgType><Event><![CDATA[unsubscribe]]></Event></xml>";
    const CLICK: &str = "<xml><ToUserName><![CDATA[toUser]]></ToUserName><FromUserName><![CDATA[FromUser]]></FromUserName><CreateTime>123456789</CreateTime><MsgType><![CDATA[event]]></MsgType><Event><![CDATA[CLICK]]></Event><EventKey><![CDATA[EVENTKEY]]></EventKey></xml>";
    const TEXT: &str = "<xml><ToUserName><![CDATA[toUser]]></ToUserName><FromUserName><![CDATA[fromUser]]></FromUserName><CreateTime>1348831860</CreateTime><MsgType><![CDATA[text]]></MsgType><Content><![CDATA[this is a test]]></Content><MsgId>1234567890123456</MsgId></xml>";

    #[test]
    fn official_event_samples_parse() {
        let m = parse(SUBSCRIBE_QR.as_bytes()).unwrap();
        assert_eq!(
            m,
            PushMessage {
                to_user: "toUser".into(),
                from_user: "FromUser".into(),
                create_time: 123456789,
                msg_type: "event".into(),
                event: Some("subscribe".into()),
                event_key: Some("qrscene_123123".into()),
                ticket: Some("TICKET".into()),
                ..Default::default()
            }
        );
        let m = parse(SCAN.as_bytes()).unwrap();
        assert_eq!((m.event.as_deref(), m.event_key.as_deref()), (Some("SCAN"), Some("SCENE_VALUE")));
        assert_eq!(m.ticket.as_deref(), Some("TICKET"));
        let m = parse(SUBSCRIBE_PLAIN.as_bytes()).unwrap();
        assert_eq!((m.to_user.as_str(), m.from_user.as_str(), m.create_time), ("gh_xxx", "OPENID", 1372307736));
        assert_eq!(m.event_key.as_deref(), Some(""));
        assert_eq!(m.ticket, None);
        let m = parse(UNSUBSCRIBE.as_bytes()).unwrap();
        assert_eq!(
            (m.event.as_deref(), m.event_key.as_deref(), m.ticket.as_deref()),
            (Some("unsubscribe"), None, None)
        );
        let m = parse(CLICK.as_bytes()).unwrap();
        assert_eq!((m.event.as_deref(), m.event_key.as_deref()), (Some("CLICK"), Some("EVENTKEY")));
        let m = parse(TEXT.as_bytes()).unwrap();
        assert_eq!(m.msg_type, "text");
        assert_eq!(m.content.as_deref(), Some("this is a test"));
        assert_eq!(m.msg_id.as_deref(), Some("1234567890123456"));
        assert_eq!(m.event, None);
        assert_eq!(m.encrypt, None);
    }

    #[test]
    fn layout_plain_text_declaration_comments_and_unknown_elements() {
        let body = "\u{feff}<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<!-- push -->\n<xml>\n  <ToUserName>gh_1</ToUserName>\n  \
                    <FromUserName>o&amp;1&#x4e2d;&#20013;</FromUserName>\n  <CreateTime> 42 </CreateTime>\n  \
                    <MsgType>\n    <![CDATA[event]]>\n  </MsgType>\n  <Unknown a=\"1\"><Inner>x</Inner></Unknown>\n  \
                    <AgentID>7</AgentID><Empty/>\n  <Event/>\n</xml>\n";
        let m = parse(body.as_bytes()).unwrap();
        assert_eq!(m.to_user, "gh_1");
        assert_eq!(m.from_user, "o&1中中");
        assert_eq!(m.create_time, 42);
        assert_eq!(m.msg_type, "event");
        assert_eq!(m.event.as_deref(), Some(""));
        // A safe-mode envelope needs only Encrypt.
        let m = parse(b"<xml><ToUserName>gh</ToUserName><Encrypt>QUJD</Encrypt></xml>").unwrap();
        assert_eq!((m.encrypt.as_deref(), m.msg_type.as_str(), m.create_time), (Some("QUJD"), "", 0));
    }

    #[test]
    fn hostile_xml_is_refused() {
        let xxe = "<?xml version=\"1.0\"?><!DOCTYPE xml [<!ENTITY x SYSTEM \"file:///etc/passwd\">]><xml><ToUserName>&x;</ToUserName><FromUserName>a</FromUserName><CreateTime>1</CreateTime><MsgType>text</MsgType><Content>&x;</Content></xml>";
        assert!(refused(xxe.as_bytes()));
        let laughs = concat!(
            "<?xml version=\"1.0\"?><!DOCTYPE lolz [<!ENTITY lol \"lol\">",
            "<!ENTITY lol1 \"&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;\">",
            "<!ENTITY lol2 \"&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;\">",
            "<!ENTITY lol3 \"&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;\">]>",
            "<xml><ToUserName>a</ToUserName><FromUserName>b</FromUserName><CreateTime>1</CreateTime>",
            "<MsgType>text</MsgType><Content>&lol3;</Content></xml>"
        );
        assert!(refused(laughs.as_bytes()));
        let ok_head = "<xml><ToUserName>a</ToUserName><FromUserName>b</FromUserName><CreateTime>1</CreateTime><MsgType>text</MsgType>";
        // Undeclared entities, even without a DOCTYPE; HTML entities are not XML's.
        assert!(refused(format!("{ok_head}<Content>&x;</Content></xml>").as_bytes()));
        assert!(refused(format!("{ok_head}<Content>&nbsp;</Content></xml>").as_bytes()));
        assert!(refused(format!("{ok_head}<Content>a & b</Content></xml>").as_bytes()));
        assert!(refused(format!("{ok_head}<Content>&#xD800;</Content></xml>").as_bytes()));
        // Processing instructions, late declarations, other encodings.
        assert!(refused(format!("<?xml-stylesheet href=\"a\"?>{ok_head}</xml>").as_bytes()));
        assert!(refused(format!("{ok_head}<?php echo 1; ?></xml>").as_bytes()));
        assert!(refused(format!("<!-- c --><?xml version=\"1.0\"?>{ok_head}</xml>").as_bytes()));
        assert!(refused(format!("<?xml version=\"1.0\" encoding=\"GBK\"?>{ok_head}</xml>").as_bytes()));
        // Depth, element count, root, trailing content.
        assert!(refused(format!("{ok_head}<A><B><C><D><E><F>x</F></E></D></C></B></A></xml>").as_bytes()));
        assert!(refused(format!("{ok_head}<A><B><C><D><E><F/></E></D></C></B></A></xml>").as_bytes()));
        let photo =
            "<SendPicsInfo><Count>1</Count><PicList><item><PicMd5Sum>x</PicMd5Sum></item></PicList></SendPicsInfo>";
        assert!(parse(format!("{ok_head}{photo}</xml>").as_bytes()).is_ok(), "WeChat's deepest events parse");
        let deep = format!("{}{}", "<xml>", "<a>".repeat(100_000));
        assert!(refused(&deep.as_bytes()[..MAX_PUSH_BODY]));
        assert!(refused(format!("{ok_head}{}</xml>", "<X/>".repeat(60)).as_bytes()));
        assert!(parse(format!("{ok_head}{}</xml>", "<X/>".repeat(59)).as_bytes()).is_ok(), "64 elements in all");
        assert!(refused(ok_head.replace("<xml>", "<root>").as_bytes()));
        assert!(refused(format!("{ok_head}</xml><xml></xml>").as_bytes()));
        assert!(refused(format!("{ok_head}</xml>junk").as_bytes()));
        // Repeated or structured known fields.
        assert!(refused(format!("{ok_head}<ToUserName>c</ToUserName></xml>").as_bytes()));
        assert!(refused(format!("{ok_head}<Content><b>x</b></Content></xml>").as_bytes()));
    }

    #[test]
    fn malformed_and_incomplete_xml_is_refused() {
        let cases: &[&[u8]] = &[
            b"",
            b"   ",
            b"not xml",
            b"<xml>",
            b"<xml><ToUserName>a</xml>",
            b"<xml><ToUserName>a</FromUserName></xml>",
            b"</xml>",
            b"<xml><ToUserName><![CDATA[a</ToUserName></xml>",
            b"<xml><!-- a -- b --></xml>",
            b"<xml a=b></xml>",
            b"<xml><ToUserName>\xff\xfe</ToUserName><FromUserName>b</FromUserName><CreateTime>1</CreateTime><MsgType>t</MsgType></xml>",
            b"<xml><ToUserName>a</ToUserName><FromUserName>b</FromUserName><CreateTime>soon</CreateTime><MsgType>t</MsgType></xml>",
            b"<xml><ToUserName>a</ToUserName><FromUserName>b</FromUserName><MsgType>t</MsgType></xml>",
            b"<xml/>",
        ];
        for body in cases {
            assert!(refused(body), "{}", String::from_utf8_lossy(body));
        }
    }

    #[test]
    fn oversized_bodies_are_refused_before_parsing() {
        let mut body = TEXT.as_bytes().to_vec();
        body.resize(MAX_PUSH_BODY + 1, b' ');
        assert!(matches!(parse(&body), Err(Error::PayloadTooLarge(MAX_PUSH_BODY))));
        body.truncate(MAX_PUSH_BODY);
        assert!(parse(&body).is_ok(), "trailing whitespace up to the limit is fine");
    }

    fn mutate(base: &[u8], edits: &[(usize, u8, u8)]) -> Vec<u8> {
        let mut v = base.to_vec();
        for &(at, byte, op) in edits {
            let i = if v.is_empty() { 0 } else { at % (v.len() + 1) };
            match op % 3 {
                0 if i < v.len() => v[i] = byte,
                1 => v.insert(i, byte),
                _ if i < v.len() => {
                    v.remove(i);
                }
                _ => v.push(byte),
            }
        }
        v
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn parse_never_panics_on_bytes(body in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = parse(&body);
        }

        #[test]
        fn parse_never_panics_on_mutated_xml(
            which in 0usize..6,
            edits in proptest::collection::vec((any::<usize>(), prop_oneof![Just(b'<'), Just(b'>'), Just(b'&'), Just(b';'), Just(b'/'), Just(b'!'), Just(b'?'), Just(b'['), Just(b']'), any::<u8>()], any::<u8>()), 1..8),
        ) {
            let samples = [SUBSCRIBE_QR, SCAN, UNSUBSCRIBE, CLICK, TEXT, MP_REPLY2];
            let body = mutate(samples[which].as_bytes(), &edits);
            let _ = parse(&body);
        }
    }
}
