//! Safe mode (WXBizMsgCrypt): AES-256-CBC, IV = key[..16], PKCS#7 with 32-byte blocks, and a
//! frame `random16 + u32be(len) + msg + receive_id`.

use aes::cipher::{block_padding::NoPadding, BlockDecryptMut, BlockEncryptMut, KeyIvInit};
use base64::alphabet;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, STANDARD as B64};
use base64::engine::DecodePaddingMode;
use base64::Engine;
use rand::Rng;
use std::fmt;

use super::reply::envelope_xml;
use super::MAX_PUSH_BODY;
use crate::crypto::same_secret;
use crate::error::Error;
use crate::ids::Secret;

type Aes256CbcEnc = cbc::Encryptor<aes::Aes256>;
type Aes256CbcDec = cbc::Decryptor<aes::Aes256>;

/// Safe mode pads to multiples of 32 bytes, not AES's 16 (§5.5, §9 V8b).
const PAD_BLOCK: usize = 32;

/// Base64 as Python's and Java's decoders read it: padding optional, non-zero trailing bits
/// accepted (the 43rd character of an EncodingAESKey carries two spare bits).
const LENIENT_B64: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new()
        .with_decode_allow_trailing_bits(true)
        .with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Safe-mode crypto for one receiver: the AES key from the EncodingAESKey and the receive id
/// (the AppID for an official account or mini program, the CorpID for WeCom).
#[derive(Clone)]
pub struct PushCrypto {
    key: [u8; 32],
    appid: String,
}

impl fmt::Debug for PushCrypto {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PushCrypto").field("key", &"***").field("appid", &self.appid).finish()
    }
}

fn undecryptable() -> Error {
    Error::InvalidRequest("undecryptable push".into())
}

impl PushCrypto {
    /// `encoding_aes_key`: the 43 characters configured on the platform (base64 of 32 bytes
    /// without its `=`). A malformed key is a configuration fault: `Error::Internal`.
    pub fn new(encoding_aes_key: &Secret, appid: &str) -> Result<Self, Error> {
        let k = encoding_aes_key.expose();
        if k.len() != 43 || !k.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/') {
            return Err(Error::Internal("EncodingAESKey must be 43 base64 characters".into()));
        }
        let bytes = LENIENT_B64.decode(k).map_err(|_| Error::Internal("EncodingAESKey is not base64".into()))?;
        let key: [u8; 32] =
            bytes.try_into().map_err(|_| Error::Internal("EncodingAESKey does not decode to 32 bytes".into()))?;
        Ok(Self { key, appid: appid.to_owned() })
    }

    /// The receive id this crypto checks and writes.
    pub fn appid(&self) -> &str {
        &self.appid
    }

    /// Opens an `Encrypt` value: `random16 + u32be(len) + msg + receive_id`, which must end in
    /// our receive id. Any fault (base64, length, padding, length prefix, UTF-8, receive id) is
    /// the same `invalid_request`, so nothing distinguishes one from another.
    pub fn decrypt(&self, encrypt_b64: &str) -> Result<String, Error> {
        if encrypt_b64.is_empty() || encrypt_b64.len() > MAX_PUSH_BODY {
            return Err(undecryptable());
        }
        let data = LENIENT_B64.decode(encrypt_b64).map_err(|_| undecryptable())?;
        if data.is_empty() || data.len() % 16 != 0 {
            return Err(undecryptable());
        }
        let dec = Aes256CbcDec::new_from_slices(&self.key, &self.key[..16]).map_err(|_| undecryptable())?;
        let raw = dec.decrypt_padded_vec_mut::<NoPadding>(&data).map_err(|_| undecryptable())?;
        let body = pkcs7_unpad(&raw).ok_or_else(undecryptable)?;
        if body.len() < 20 {
            return Err(undecryptable());
        }
        let len = u32::from_be_bytes([body[16], body[17], body[18], body[19]]) as usize;
        let rest = &body[20..];
        if len > rest.len() {
            return Err(undecryptable());
        }
        let (msg, receive_id) = rest.split_at(len);
        if !same_secret(receive_id, self.appid.as_bytes()) {
            return Err(undecryptable());
        }
        String::from_utf8(msg.to_vec()).map_err(|_| undecryptable())
    }

    /// Encrypts `msg` with a given 16-byte prefix: deterministic, for vectors and simulators.
    pub fn encrypt_with_random(&self, msg: &str, random16: &[u8; 16]) -> String {
        let msg = msg.as_bytes();
        let mut plain = Vec::with_capacity(20 + msg.len() + self.appid.len() + PAD_BLOCK);
        plain.extend_from_slice(random16);
        // WeChat's length field is 32 bits; a longer message cannot be framed (nor sent).
        plain.extend_from_slice(&(msg.len() as u32).to_be_bytes());
        plain.extend_from_slice(msg);
        plain.extend_from_slice(self.appid.as_bytes());
        let pad = PAD_BLOCK - plain.len() % PAD_BLOCK;
        plain.resize(plain.len() + pad, pad as u8);
        let enc = Aes256CbcEnc::new(&self.key.into(), (&self.key[..16]).into());
        B64.encode(enc.encrypt_padded_vec_mut::<NoPadding>(&plain))
    }

    /// Encrypts `msg` with a fresh random prefix of 16 alphanumerics (as Tencent's samples do).
    pub fn encrypt(&self, msg: &str) -> String {
        let mut random16 = [0u8; 16];
        let mut rng = rand::thread_rng();
        for b in &mut random16 {
            *b = rng.sample(rand::distributions::Alphanumeric);
        }
        self.encrypt_with_random(msg, &random16)
    }

    /// The safe-mode reply body for `reply_xml` (a passive reply such as [`text_reply`](super::text_reply)).
    pub fn envelope(&self, token: &Secret, reply_xml: &str, timestamp: &str, nonce: &str) -> String {
        let encrypt = self.encrypt(reply_xml);
        envelope_xml(token, &encrypt, timestamp, nonce)
    }

    /// [`PushCrypto::envelope`] with a given random prefix: byte-exact, for vectors and simulators.
    pub fn envelope_with_random(
        &self,
        token: &Secret,
        reply_xml: &str,
        timestamp: &str,
        nonce: &str,
        random16: &[u8; 16],
    ) -> String {
        let encrypt = self.encrypt_with_random(reply_xml, random16);
        envelope_xml(token, &encrypt, timestamp, nonce)
    }
}

/// Strips PKCS#7 padding of 1..=32 bytes, every pad byte checked.
fn pkcs7_unpad(raw: &[u8]) -> Option<&[u8]> {
    let n = *raw.last()? as usize;
    if n == 0 || n > PAD_BLOCK || n > raw.len() {
        return None;
    }
    let (body, pad) = raw.split_at(raw.len() - n);
    pad.iter().all(|&b| b as usize == n).then_some(body)
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::wechat::push::{parse, sha1_sorted, verify_msg_signature};
    use proptest::prelude::*;

    fn s(x: &str) -> Secret {
        Secret::new(x)
    }

    // ---- V4: OA sample from Tencent's Java demo ----
    const MP_KEY: &str = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG";
    const MP_APPID: &str = "wxb11529c136998cb6";
    const MP_RANDOM: &[u8; 16] = b"aaaabbbbccccdddd";
    const MP_REPLY1: &str = "我是中文abcd123";
    const MP_CIPHER1: &str = "jn1L23DB+6ELqJ+6bruv21Y6MD7KeIfP82D6gU39rmkgczbWwt5+3bnyg5K55bgVtVzd832WzZGMhkP72vVOfg==";
    pub(in crate::wechat::push) const MP_REPLY2: &str = concat!(
        "<xml><ToUserName><![CDATA[oia2Tj我是中文jewbmiOUlr6X-1crbLOvLw]]></ToUserName><FromUserName><![CDATA[gh_7f083739789a]]></FromUserName>",
        "<CreateTime>1407743423</CreateTime><MsgType><![CDATA[video]]></MsgType><Video><MediaId><![CDATA[eYJ1MbwPRJtOvIEabaxHs7TX2D-HV71s79GUxqdUkjm6Gs2Ed1KF3ulAOA9H1xG0]]></MediaId>",
        "<Title><![CDATA[testCallBackReplyVideo]]></Title><Description><![CDATA[testCallBackReplyVideo]]></Description></Video></xml>"
    );
    const MP_CIPHER2: &str = "jn1L23DB+6ELqJ+6bruv23M2GmYfkv0xBh2h+XTBOKVKcgDFHle6gqcZ1cZrk3e1qjPQ1F4RsLWzQRG9udbKWesxlkupqcEcW7ZQweImX9+wLMa0GaUzpkycA8+IamDBxn5loLgZpnS7fVAbExOkK5DYHBmv5tptA9tklE/fTIILHR8HLXa5nQvFb3tYPKAlHF3rtTeayNf0QuM+UW/wM9enGIDIJHF7CLHiDNAYxr+r+OrJCmPQyTy8cVWlu9iSvOHPT/77bZqJucQHQ04sq7KZI27OcqpQNSto2OdHCoTccjggX5Z9Mma0nMJBU+jLKJ38YB1fBIz+vBzsYjrTmFQ44YfeEuZ+xRTQwr92vhA9OxchWVINGC50qE/6lmkwWTwGX9wtQpsJKhP+oS7rvTY8+VdzETdfakjkwQ5/Xka042OlUb1/slTwo4RscuQ+RdxSGvDahxAJ6+EAjLt9d8igHngxIbf6YyqqROxuxqIeIch3CssH/LqRs+iAcILvApYZckqmA7FNERspKA5f8GoJ9sv8xmGvZ9Yrf57cExWtnX8aCMMaBropU/1k+hKP5LVdzbWCG0hGwx/dQudYR/eXp3P0XxjlFiy+9DMlaFExWUZQDajPkdPrEeOwofJb";

    fn mp() -> PushCrypto {
        PushCrypto::new(&s(MP_KEY), MP_APPID).unwrap()
    }

    #[test]
    fn v4_java_sample_encrypts_byte_exact_and_decrypts_back() {
        let c = mp();
        assert_eq!(c.encrypt_with_random(MP_REPLY1, MP_RANDOM), MP_CIPHER1);
        assert_eq!(c.encrypt_with_random(MP_REPLY2, MP_RANDOM), MP_CIPHER2);
        assert_eq!(c.decrypt(MP_CIPHER1).unwrap(), MP_REPLY1);
        assert_eq!(c.decrypt(MP_CIPHER2).unwrap(), MP_REPLY2);
        // A reply with one nested level (<Video><MediaId>) is within the parser's limits.
        let m = parse(MP_REPLY2.as_bytes()).unwrap();
        assert_eq!(m.msg_type, "video");
        assert_eq!(m.to_user, "oia2Tj我是中文jewbmiOUlr6X-1crbLOvLw");
    }

    // ---- V5: EasyWeChat decrypt + msg_signature ----
    const EW_ENCRYPT: &str = "rTNFcsut4LfGuAFKEUVVpwcaCOTJzOd9twZdIW910jb3k+iicx2uvhttIZ3Qg9Qgty3BEF2xbOrz6boTfb30dMomcgrkTqdFPwnhqbk+kIQ7rZiwny9D7NUrTgA5kpX3KsZvrXzUZyP2x9YOlxbgm572lmxKvM7HAQQhIQ/p6HBmoY30bGXFK0BtIu1pW9TjhOYrLQoU18nWYjWqDA1ynkmOytpv7QRI1P1+0NoxL0q2zO1DgeSvnE8CZGo/o5Ap/WHK5W2RAsinpzN4/LjPnmB6U01I5XCoJoC0GK/yMZycd2Oh8Nq6+wBkC1U85oy0ktOY4nLvsQMLrourmMGdZHuTbqpeJ8Ao/5PRYJ+WBvRUwPfGKBL2+2IKZF49vAJqkcGWSHGE76ZN2erXeuNazf/o9o3lIE3q739o4c8t9QGPe31GT2Go/rOz1BsrASwvauNulCh+++yz+CQzBIuikA==";

    #[test]
    fn v5_easywechat_msg_signature_and_fields() {
        let tok = s("pamtest");
        assert_eq!(
            sha1_sorted(&["pamtest", "1458300676", "260774613", EW_ENCRYPT]),
            "4f3ad57b6989f09f4eb392acce4f9e93942ed890"
        );
        verify_msg_signature(&tok, "1458300676", "260774613", EW_ENCRYPT, "4f3ad57b6989f09f4eb392acce4f9e93942ed890")
            .unwrap();
        assert!(matches!(
            verify_msg_signature(
                &tok,
                "1458300677",
                "260774613",
                EW_ENCRYPT,
                "4f3ad57b6989f09f4eb392acce4f9e93942ed890"
            ),
            Err(Error::SignatureInvalid)
        ));
        let inner = mp().decrypt(EW_ENCRYPT).unwrap();
        let m = parse(inner.as_bytes()).unwrap();
        assert_eq!(m.to_user, "asdasdasd");
        assert_eq!(m.from_user, "asdasdasdsadasd");
        assert_eq!(m.create_time, 1234567898);
        assert_eq!(m.content.as_deref(), Some("hello"));
        // The same ciphertext for another receive id is refused.
        let other = PushCrypto::new(&s(MP_KEY), "wx0000000000000000").unwrap();
        assert!(matches!(other.decrypt(EW_ENCRYPT), Err(Error::InvalidRequest(_))));
    }

    // ---- V6: WeCom PHP sample (receive id = corpid) ----
    const QY_KEY: &str = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C";
    const QY_ID: &str = "wx5823bf96d3bd56c7";
    const QY_ECHO: &str = "P9nAzCzyDtyTWESHep1vC5X9xho/qYX3Zpb4yKa9SKld1DsH3Iyt3tP3zNdtp+4RPcs8TgAE7OaBO+FZXvnaqQ==";
    const QY_REQ_ENCRYPT: &str = "RypEvHKD8QQKFhvQ6QleEB4J58tiPdvo+rtK1I9qca6aM/wvqnLSV5zEPeusUiX5L5X/0lWfrf0QADHHhGd3QczcdCUpj911L3vg3W/sYYvuJTs3TUUkSUXxaccAS0qhxchrRYt66wiSpGLYL42aM6A8dTT+6k4aSknmPj48kzJs8qLjvd4Xgpue06DOdnLxAUHzM6+kDZ+HMZfJYuR+LtwGc2hgf5gsijff0ekUNXZiqATP7PF5mZxZ3Izoun1s4zG4LUMnvw2r+KqCKIw+3IQH03v+BCA9nMELNqbSf6tiWSrXJB3LAVGUcallcrw8V2t9EL4EhzJWrQUax5wLVMNS0+rUPA3k22Ncx4XXZS9o0MBH27Bo6BpNelZpS+/uh9KsNlY6bHCmJU9p8g7m3fVKn28H3KDYA5Pl/T8Z1ptDAVe0lXdQ2YoyyH2uyPIGHBZZIs2pDBS8R07+qN+E7Q==";

    #[test]
    fn v6_wecom_php_sample() {
        let tok = s("QDG6eK");
        let c = PushCrypto::new(&s(QY_KEY), QY_ID).unwrap();
        verify_msg_signature(&tok, "1409659589", "263014780", QY_ECHO, "5c45ff5e21c57e6ad56bac8758b79b1d9ac89fd3")
            .unwrap();
        assert_eq!(c.decrypt(QY_ECHO).unwrap(), "1616140317555161061");
        verify_msg_signature(
            &tok,
            "1409659813",
            "1372623149",
            QY_REQ_ENCRYPT,
            "477715d11cdb4164915debcba66cb864d751f3e6",
        )
        .unwrap();
        let m = parse(c.decrypt(QY_REQ_ENCRYPT).unwrap().as_bytes()).unwrap();
        assert_eq!(m.content.as_deref(), Some("hello"));
        assert_eq!(m.from_user, "mycreate");
        assert_eq!(m.msg_id.as_deref(), Some("4561255354251345929"));
        assert_eq!(m.msg_type, "text");
    }

    // ---- V7: WeCom python sample ----
    #[test]
    fn v7_wecom_python_sample() {
        let tok = s("hJqcu3uJ9Tn2gXPmxx2w9kkCkCE2EPYo");
        let cid = "ww1436e0e65a779aee";
        let c = PushCrypto::new(&s("6qkdMrq68nTKduznJYO1A37W2oEgpkMUvkttRToqhUt"), cid).unwrap();
        let echo = "fsi1xnbH4yQh0+PJxcOdhhK6TDXkjMyhEPA7xB2TGz6b+g7xyAbEkRxN/3cNXW9qdqjnoVzEtpbhnFyq6SVHyA==";
        verify_msg_signature(&tok, "1476416373", "47744683", echo, "012bc692d0a58dd4b10f8dfe5c4ac00ae211ebeb").unwrap();
        assert_eq!(c.decrypt(echo).unwrap(), "1288432023552776189");
        let enc = "Kl7kjoSf6DMD1zh7rtrHjFaDapSCkaOnwu3bqLc5tAybhhMl9pFeK8NslNPVdMwmBQTNoW4mY7AIjeLvEl3NyeTkAgGzBhzTtRLNshw2AEew+kkYcD+Fq72Kt00fT0WnN87hGrW8SqGc+NcT3mu87Ha3dz1pSDi6GaUA6A0sqfde0VJPQbZ9U+3JWcoD4Z5jaU0y9GSh010wsHF8KZD24YhmZH4ch4Ka7ilEbjbfvhKkNL65HHL0J6EYJIZUC2pFrdkJ7MhmEbU2qARR4iQHE7wy24qy0cRX3Mfp6iELcDNfSsPGjUQVDGxQDCWjayJOpcwocugux082f49HKYg84EpHSGXAyh+/oxwaWbvL6aSDPOYuPDGOCI8jmnKiypE+";
        verify_msg_signature(&tok, "1476422779", "1597212914", enc, "0c3914025cb4b4d68103f6bfc8db550f79dcf48e")
            .unwrap();
        let m = parse(c.decrypt(enc).unwrap().as_bytes()).unwrap();
        assert_eq!(m.to_user, cid);
        assert_eq!(m.msg_type, "text");
        assert_eq!(m.content.as_deref(), Some("你好"));
    }

    // ---- V8: wechatpy reply envelope and incoming push ----
    const WP_KEY: &str = "kWxPEV2UEDyxWpmPdKC3F4dgPDmOvfKX1HGnEUDS1aR";
    const WP_ID: &str = "wx49f0ab532d5d035a";
    const WP_ENCRYPT: &str = "9s4gMv99m88kKTh/H8IdkOiMg6bisoy3ypwy9H4hvSPe9nsGaqyw5hhSjdYbcrKk+j3nba4HMOTzHrluLBYqxgNcBqGsL8GqxlhZgURnAtObvesEl5nZ+uBE8bviY0LWke8Zy9V/QYKxNV2FqllNXcfmstttyIkMKCCmVbCFM2JTF5wY0nFhHZSjPUL2Q1qvSUCUld+/WIXrx0oyKQmpB6o8NRrrNrsDf03oxI1p9FxUgMnwKKZeOA/uu+2IEvEBtb7muXsVbwbgX05UPPJvFurDXafG0RQyPR+mf1nDnAtQmmNOuiR5MIkdQ39xn1vWwi1O5oazPoQJz0nTYjxxEE8kv3kFxtAGVRe3ypD3WeK2XeFYFMNMpatF9XiKzHo3";
    const WP_PUSH: &str = "RgqEoJj5A4EMYlLvWO1F86ioRjZfaex/gePD0gOXTxpsq5Yj4GNglrBb8I2BAJVODGajiFnXBu7mCPatfjsu6IHCrsTyeDXzF6Bv283dGymzxh6ydJRvZsryDyZbLTE7rhnus50qGPMfp2wASFlzEgMW9z1ef/RD8XzaFYgm7iTdaXpXaG4+BiYyolBug/gYNx410cvkKR2/nPwBiT+P4hIiOAQqGp/TywZBtDh1yCF2KOd0gpiMZ5jSw3e29mTvmUHzkVQiMS6td7vXUaWOMZnYZlF3So2SjHnwh4jYFxdgpkHHqIrH/54SNdshoQgWYEvccTKe7FS709/5t6NMxuGhcUGAPOQipvWTT4dShyqio7mlsl5noTrb++x6En749zCpQVhDpbV6GDnTbcX2e8K9QaNWHp91eBdCRxthuL0=";

    #[test]
    fn v8_envelope_byte_exact_and_incoming_push() {
        let tok = s("123456");
        let c = PushCrypto::new(&s(WP_KEY), WP_ID).unwrap();
        let reply = concat!(
            "<xml>\n<MsgType><![CDATA[text]]></MsgType>\n<Content><![CDATA[test]]></Content>\n",
            "<FromUserName><![CDATA[wx49f0ab532d5d035a]]></FromUserName>\n<ToUserName><![CDATA[messense]]></ToUserName>\n",
            "<AgentID>1</AgentID>\n<CreateTime>1411525903</CreateTime>\n</xml>"
        );
        let expected = format!(
            "<xml>\n<Encrypt><![CDATA[{WP_ENCRYPT}]]></Encrypt>\n\
             <MsgSignature><![CDATA[407518b7649e86ef23978113f92d27afa9296533]]></MsgSignature>\n\
             <TimeStamp>1411525903</TimeStamp>\n<Nonce><![CDATA[461056294]]></Nonce>\n</xml>"
        );
        assert_eq!(c.envelope_with_random(&tok, reply, "1411525903", "461056294", b"1234567890123456"), expected);

        // The random envelope has the same shape, parses, verifies and opens to the reply.
        let env = c.envelope(&tok, reply, "1411525903", "461056294");
        assert_ne!(env, expected);
        let outer = parse(env.as_bytes()).unwrap();
        let enc = outer.encrypt.unwrap();
        let sig = sha1_sorted(&["123456", "1411525903", "461056294", &enc]);
        assert!(env.contains(&format!("<MsgSignature><![CDATA[{sig}]]></MsgSignature>")));
        assert_eq!(c.decrypt(&enc).unwrap(), reply);

        // The incoming push.
        let body =
            format!("<xml><ToUserName><![CDATA[{WP_ID}]]></ToUserName><Encrypt><![CDATA[{WP_PUSH}]]></Encrypt></xml>");
        let outer = parse(body.as_bytes()).unwrap();
        assert_eq!(outer.to_user, WP_ID);
        let enc = outer.encrypt.unwrap();
        verify_msg_signature(&tok, "1411525903", "461056294", &enc, "74d92dfeb87ba7c714f89d98870ae5eb62dff26d")
            .unwrap();
        let inner = parse(c.decrypt(&enc).unwrap().as_bytes()).unwrap();
        assert_eq!(inner.content.as_deref(), Some("test"));
        assert_eq!(inner.from_user, "messense");
    }

    // ---- V8b: the pad byte is 32 - len % 32, and can exceed 16 ----
    #[test]
    fn v8b_padding_block_is_32() {
        let cases = [
            (MP_KEY, MP_APPID, MP_CIPHER1, 7u8),
            (MP_KEY, MP_APPID, MP_CIPHER2, 7),
            (MP_KEY, MP_APPID, EW_ENCRYPT, 21),
            (QY_KEY, QY_ID, QY_ECHO, 7),
            (QY_KEY, QY_ID, QY_REQ_ENCRYPT, 30),
            (WP_KEY, WP_ID, WP_ENCRYPT, 3),
        ];
        for (key, id, enc, pad) in cases {
            let c = PushCrypto::new(&s(key), id).unwrap();
            let data = B64.decode(enc).unwrap();
            let dec = Aes256CbcDec::new_from_slices(&c.key, &c.key[..16]).unwrap();
            let raw = dec.decrypt_padded_vec_mut::<NoPadding>(&data).unwrap();
            assert_eq!(*raw.last().unwrap(), pad, "{enc}");
            assert_eq!(pad as usize, 32 - (raw.len() - pad as usize) % 32);
            assert!(c.decrypt(enc).is_ok());
        }
    }

    #[test]
    fn keys_and_ciphertexts_that_do_not_fit_are_refused() {
        for bad_key in
            ["", "short", &MP_KEY[..42], &format!("{MP_KEY}="), "abcdefghijklmnopqrstuvwxyz0123456789ABCDEF!"]
        {
            assert!(matches!(PushCrypto::new(&s(bad_key), MP_APPID), Err(Error::Internal(_))), "{bad_key}");
        }
        let c = mp();
        assert!(!format!("{c:?}").contains(MP_KEY));
        let mut bytes = B64.decode(MP_CIPHER2).unwrap();
        let n = bytes.len();
        bytes[n - 1] ^= 0x55; // breaks the padding
        let tampered = B64.encode(&bytes);
        for junk in ["", "!!!!", "AAAA", &MP_CIPHER1[..40], &tampered, &"A".repeat(MAX_PUSH_BODY + 4)] {
            assert!(matches!(c.decrypt(junk), Err(Error::InvalidRequest(_))), "{junk}");
        }
        // A frame whose length prefix overruns the body.
        let mut plain = vec![b'a'; 16];
        plain.extend_from_slice(&1000u32.to_be_bytes());
        plain.extend_from_slice(b"hi");
        plain.resize(64, 32);
        let enc = Aes256CbcEnc::new(&c.key.into(), (&c.key[..16]).into());
        let forged = B64.encode(enc.encrypt_padded_vec_mut::<NoPadding>(&plain));
        assert!(matches!(c.decrypt(&forged), Err(Error::InvalidRequest(_))));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn decrypt_never_panics(s in ".{0,200}", b64 in "[A-Za-z0-9+/=]{0,200}") {
            let c = mp();
            let _ = c.decrypt(&s);
            let _ = c.decrypt(&b64);
        }

        #[test]
        fn encrypt_decrypt_round_trip(msg in any::<String>(), random in any::<[u8; 16]>()) {
            let c = mp();
            prop_assert_eq!(c.decrypt(&c.encrypt_with_random(&msg, &random)).unwrap(), msg.clone());
            prop_assert_eq!(c.decrypt(&c.encrypt(&msg)).unwrap(), msg);
        }
    }
}
