//! WeChat's cryptography, implemented independently of the bridge.
//!
//! * Mini-program open data (`encryptedData`): AES-128-CBC, key = base64-decoded session_key,
//!   PKCS#7 with the standard 16-byte block; `signature = sha1_hex(rawData + session_key)`.
//! * Server push "safe mode" (WXBizMsgCrypt): AES-256-CBC, key = base64(EncodingAESKey + "="),
//!   IV = key[..16], PKCS#7 padded to a multiple of **32** bytes, plaintext =
//!   random16 + u32be(len) + msg + appid; `msg_signature = sha1(sorted(token, ts, nonce, encrypt))`.

use aes::{Aes128, Aes256};
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, STANDARD};
use base64::engine::DecodePaddingMode;
use base64::{alphabet, Engine};
use cbc::cipher::block_padding::{NoPadding, Pkcs7};
use cbc::cipher::{BlockDecryptMut, BlockEncryptMut, KeyIvInit};
use rand::distributions::Alphanumeric;
use rand::Rng;
use sha1::{Digest, Sha1};

/// Why an encryption or decryption failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CryptoError {
    #[error("invalid base64 in {0}")]
    Base64(&'static str),
    #[error("{0} must be {1} bytes")]
    Length(&'static str, usize),
    #[error("ciphertext does not decrypt (bad key or padding)")]
    Decrypt,
    #[error("decrypted message is malformed")]
    Malformed,
    #[error("message belongs to appid {0}, not the expected one")]
    AppIdMismatch(String),
}

/// Standard-alphabet base64 decoding that, like Python's and Java's decoders, accepts non-zero
/// trailing bits and optional padding: an EncodingAESKey + "=" has 2 trailing bits that are
/// often non-zero (e.g. the official sample key ending in `G`).
const LENIENT: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new()
        .with_decode_allow_trailing_bits(true)
        .with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

fn b64(field: &'static str, s: &str) -> Result<Vec<u8>, CryptoError> {
    LENIENT.decode(s.trim()).map_err(|_| CryptoError::Base64(field))
}

fn session_key_bytes(session_key_b64: &str) -> Result<[u8; 16], CryptoError> {
    b64("session_key", session_key_b64)?.try_into().map_err(|_| CryptoError::Length("session_key", 16))
}

/// `sha1(s)` as lowercase hex.
pub fn sha1_hex(s: &[u8]) -> String {
    hex::encode(Sha1::digest(s))
}

// ---------------------------------------------------------------------------------------------
// Mini-program open data
// ---------------------------------------------------------------------------------------------

/// Encrypts open data as WeChat does for `wx.getUserInfo`; returns `encryptedData` (base64).
pub fn wxa_encrypt(session_key_b64: &str, iv: &[u8; 16], plaintext: &[u8]) -> Result<String, CryptoError> {
    let key = session_key_bytes(session_key_b64)?;
    let ct = cbc::Encryptor::<Aes128>::new(&key.into(), iv.into()).encrypt_padded_vec_mut::<Pkcs7>(plaintext);
    Ok(STANDARD.encode(ct))
}

/// Decrypts `encryptedData` with the session_key and the `iv` (all base64).
pub fn wxa_decrypt(session_key_b64: &str, encrypted_b64: &str, iv_b64: &str) -> Result<Vec<u8>, CryptoError> {
    let key = session_key_bytes(session_key_b64)?;
    let iv: [u8; 16] = b64("iv", iv_b64)?.try_into().map_err(|_| CryptoError::Length("iv", 16))?;
    let ct = b64("encryptedData", encrypted_b64)?;
    if ct.is_empty() || ct.len() % 16 != 0 {
        return Err(CryptoError::Decrypt);
    }
    cbc::Decryptor::<Aes128>::new(&key.into(), &iv.into())
        .decrypt_padded_vec_mut::<Pkcs7>(&ct)
        .map_err(|_| CryptoError::Decrypt)
}

/// The rawData signature: `sha1_hex(rawData + session_key)`.
pub fn rawdata_signature(raw_data: &str, session_key_b64: &str) -> String {
    let mut s = String::with_capacity(raw_data.len() + session_key_b64.len());
    s.push_str(raw_data);
    s.push_str(session_key_b64);
    sha1_hex(s.as_bytes())
}

// ---------------------------------------------------------------------------------------------
// Push signatures
// ---------------------------------------------------------------------------------------------

/// `sha1(concat(sorted(parts)))` as lowercase hex (byte-wise lexicographic sort).
pub fn sha1_sorted(parts: &[&str]) -> String {
    let mut v: Vec<&str> = parts.to_vec();
    v.sort_unstable();
    sha1_hex(v.concat().as_bytes())
}

/// The plain push signature `signature = sha1(sorted(token, timestamp, nonce))`.
pub fn push_signature(token: &str, timestamp: &str, nonce: &str) -> String {
    sha1_sorted(&[token, timestamp, nonce])
}

/// The safe-mode `msg_signature = sha1(sorted(token, timestamp, nonce, encrypt))`.
pub fn msg_signature(token: &str, timestamp: &str, nonce: &str, encrypt: &str) -> String {
    sha1_sorted(&[token, timestamp, nonce, encrypt])
}

// ---------------------------------------------------------------------------------------------
// Push safe mode (WXBizMsgCrypt)
// ---------------------------------------------------------------------------------------------

const PUSH_BLOCK: usize = 32;

/// WXBizMsgCrypt for one app: encrypts and decrypts push bodies and replies.
#[derive(Clone)]
pub struct MsgCrypt {
    key: [u8; 32],
    appid: String,
}

impl std::fmt::Debug for MsgCrypt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MsgCrypt").field("appid", &self.appid).finish_non_exhaustive()
    }
}

/// A decrypted push message and the receive id (appid) it carried.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Opened {
    pub msg: String,
    pub receive_id: String,
    pub random: [u8; 16],
}

impl MsgCrypt {
    /// `encoding_aes_key` is the 43-character EncodingAESKey; `appid` is the receive id.
    pub fn new(encoding_aes_key: &str, appid: &str) -> Result<Self, CryptoError> {
        if encoding_aes_key.len() != 43 {
            return Err(CryptoError::Length("EncodingAESKey (characters)", 43));
        }
        let key: [u8; 32] = b64("EncodingAESKey", &format!("{encoding_aes_key}="))?
            .try_into()
            .map_err(|_| CryptoError::Length("AES key", 32))?;
        Ok(MsgCrypt { key, appid: appid.to_owned() })
    }

    pub fn appid(&self) -> &str {
        &self.appid
    }

    fn iv(&self) -> [u8; 16] {
        let mut iv = [0u8; 16];
        iv.copy_from_slice(&self.key[..16]);
        iv
    }

    /// Encrypts `msg` with a fresh random 16-character alphanumeric prefix (as Tencent's sample).
    pub fn encrypt(&self, msg: &str) -> String {
        let mut random = [0u8; 16];
        for (slot, c) in random.iter_mut().zip(rand::thread_rng().sample_iter(&Alphanumeric)) {
            *slot = c;
        }
        self.encrypt_with_random(msg, &random)
    }

    /// Encrypts `msg` with the given random prefix (deterministic, for test vectors).
    pub fn encrypt_with_random(&self, msg: &str, random: &[u8; 16]) -> String {
        let msg = msg.as_bytes();
        let mut plain = Vec::with_capacity(20 + msg.len() + self.appid.len() + PUSH_BLOCK);
        plain.extend_from_slice(random);
        // u32 is WeChat's wire format; a push body never comes near 4 GiB.
        plain.extend_from_slice(&(msg.len() as u32).to_be_bytes());
        plain.extend_from_slice(msg);
        plain.extend_from_slice(self.appid.as_bytes());
        let pad = PUSH_BLOCK - plain.len() % PUSH_BLOCK;
        plain.resize(plain.len() + pad, pad as u8);
        let ct = cbc::Encryptor::<Aes256>::new(&self.key.into(), &self.iv().into())
            .encrypt_padded_vec_mut::<NoPadding>(&plain);
        STANDARD.encode(ct)
    }

    /// Decrypts `encrypt` (base64) without checking the receive id.
    pub fn open(&self, encrypt_b64: &str) -> Result<Opened, CryptoError> {
        let ct = b64("Encrypt", encrypt_b64)?;
        if ct.is_empty() || ct.len() % 16 != 0 {
            return Err(CryptoError::Decrypt);
        }
        let raw = cbc::Decryptor::<Aes256>::new(&self.key.into(), &self.iv().into())
            .decrypt_padded_vec_mut::<NoPadding>(&ct)
            .map_err(|_| CryptoError::Decrypt)?;
        let pad = usize::from(*raw.last().ok_or(CryptoError::Decrypt)?);
        if pad == 0 || pad > PUSH_BLOCK || pad > raw.len() {
            return Err(CryptoError::Decrypt);
        }
        let (body, padding) = raw.split_at(raw.len() - pad);
        if padding.iter().any(|&b| usize::from(b) != pad) || body.len() < 20 {
            return Err(CryptoError::Decrypt);
        }
        let mut random = [0u8; 16];
        random.copy_from_slice(&body[..16]);
        let mut len = [0u8; 4];
        len.copy_from_slice(&body[16..20]);
        let len = usize::try_from(u32::from_be_bytes(len)).map_err(|_| CryptoError::Malformed)?;
        let rest = &body[20..];
        if len > rest.len() {
            return Err(CryptoError::Malformed);
        }
        let (msg, rid) = rest.split_at(len);
        Ok(Opened {
            msg: String::from_utf8(msg.to_vec()).map_err(|_| CryptoError::Malformed)?,
            receive_id: String::from_utf8(rid.to_vec()).map_err(|_| CryptoError::Malformed)?,
            random,
        })
    }

    /// Decrypts `encrypt` (base64) and checks that it was meant for this appid.
    pub fn decrypt(&self, encrypt_b64: &str) -> Result<String, CryptoError> {
        let opened = self.open(encrypt_b64)?;
        if opened.receive_id != self.appid {
            return Err(CryptoError::AppIdMismatch(opened.receive_id));
        }
        Ok(opened.msg)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Vectors copied from shared/design/wechat_vectors.py (see WECHAT_CONTRACT.md §9).
    const V1_APPID: &str = "wx4f4bc4dec97d474b";
    const V1_SESSION_KEY: &str = "tiihtNczf5v6AKRyjwEUhQ==";
    const V1_IV: &str = "r7BXXKkLb8qrSNn05n0qiA==";
    const V1_ENCRYPTED: &str = "CiyLU1Aw2KjvrjMdj8YKliAjtP4gsMZMQmRzooG2xrDcvSnxIMXFufNstNGTyaGS9uT5geRa0W4oTOb1WT7fJlAC+oNPdbB+3hVbJSRgv+4lGOETKUQz6OYStslQ142dNCuabNPGBzlooOmB231qMM85d2/fV6ChevvXvQP8Hkue1poOFtnEtpyxVLW1zAo6/1Xx1COxFvrc2d7UL/lmHInNlxuacJXwu0fjpXfz/YqYzBIBzD6WUfTIF9GRHpOn/Hz7saL8xz+W//FRAUid1OksQaQx4CMs8LOddcQhULW4ucetDf96JcR3g0gfRK4PC7E/r7Z6xNrXd2UIeorGj5Ef7b1pJAYB6Y5anaHqZ9J6nKEBvB4DnNLIVWSgARns/8wR2SiRS7MNACwTyrGvt9ts8p12PKFdlqYTopNHR1Vf7XjfhQlVsAJdNiKdYmYVoKlaRv85IfVunYzO0IKXsyl7JCUjCpoG20f0a04COwfneQAGGwd5oa+T8yO5hzuyDb/XcxxmK01EpqOyuxINew==";
    const V1_PLAINTEXT: &str = "{\"openId\":\"oGZUI0egBJY1zhBYw2KhdUfwVJJE\",\"nickName\":\"Band\",\"gender\":1,\"language\":\"zh_CN\",\"city\":\"Guangzhou\",\"province\":\"Guangdong\",\"country\":\"CN\",\"avatarUrl\":\"http://wx.qlogo.cn/mmopen/vi_32/aSKcBBPpibyKNicHNTMM0qJVh8Kjgiak2AHWr8MHM4WgMEm7GFhsf8OYrySdbvAMvTsw3mo8ibKicsnfN5pRjl1p8HQ/0\",\"unionId\":\"ocMvos6NjeKLIBqg5Mr9QjxrP1FA\",\"watermark\":{\"timestamp\":1477314187,\"appid\":\"wx4f4bc4dec97d474b\"}}";
    const V2_RAW_DATA: &str = "{\"nickName\":\"Band\",\"gender\":1,\"language\":\"zh_CN\",\"city\":\"Guangzhou\",\"province\":\"Guangdong\",\"country\":\"CN\",\"avatarUrl\":\"http://wx.qlogo.cn/mmopen/vi_32/1vZvI39NWFQ9XM4LtQpFrQJ1xlgZxx3w7bQxKARol6503Iuswjjn6nIGBiaycAjAtpujxyzYsrztuuICqIM5ibXQ/0\"}";
    const MP_KEY: &str = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG";
    const MP_TOKEN: &str = "pamtest";
    const MP_APPID: &str = "wxb11529c136998cb6";
    const MP_RANDOM: &str = "aaaabbbbccccdddd";
    const V4_REPLY1: &str = "我是中文abcd123";
    const V4_CIPHER1: &str = "jn1L23DB+6ELqJ+6bruv21Y6MD7KeIfP82D6gU39rmkgczbWwt5+3bnyg5K55bgVtVzd832WzZGMhkP72vVOfg==";
    const V4_REPLY2: &str = "<xml><ToUserName><![CDATA[oia2Tj我是中文jewbmiOUlr6X-1crbLOvLw]]></ToUserName><FromUserName><![CDATA[gh_7f083739789a]]></FromUserName><CreateTime>1407743423</CreateTime><MsgType><![CDATA[video]]></MsgType><Video><MediaId><![CDATA[eYJ1MbwPRJtOvIEabaxHs7TX2D-HV71s79GUxqdUkjm6Gs2Ed1KF3ulAOA9H1xG0]]></MediaId><Title><![CDATA[testCallBackReplyVideo]]></Title><Description><![CDATA[testCallBackReplyVideo]]></Description></Video></xml>";
    const V4_CIPHER2: &str = "jn1L23DB+6ELqJ+6bruv23M2GmYfkv0xBh2h+XTBOKVKcgDFHle6gqcZ1cZrk3e1qjPQ1F4RsLWzQRG9udbKWesxlkupqcEcW7ZQweImX9+wLMa0GaUzpkycA8+IamDBxn5loLgZpnS7fVAbExOkK5DYHBmv5tptA9tklE/fTIILHR8HLXa5nQvFb3tYPKAlHF3rtTeayNf0QuM+UW/wM9enGIDIJHF7CLHiDNAYxr+r+OrJCmPQyTy8cVWlu9iSvOHPT/77bZqJucQHQ04sq7KZI27OcqpQNSto2OdHCoTccjggX5Z9Mma0nMJBU+jLKJ38YB1fBIz+vBzsYjrTmFQ44YfeEuZ+xRTQwr92vhA9OxchWVINGC50qE/6lmkwWTwGX9wtQpsJKhP+oS7rvTY8+VdzETdfakjkwQ5/Xka042OlUb1/slTwo4RscuQ+RdxSGvDahxAJ6+EAjLt9d8igHngxIbf6YyqqROxuxqIeIch3CssH/LqRs+iAcILvApYZckqmA7FNERspKA5f8GoJ9sv8xmGvZ9Yrf57cExWtnX8aCMMaBropU/1k+hKP5LVdzbWCG0hGwx/dQudYR/eXp3P0XxjlFiy+9DMlaFExWUZQDajPkdPrEeOwofJb";
    const V5_ENCRYPT: &str = "rTNFcsut4LfGuAFKEUVVpwcaCOTJzOd9twZdIW910jb3k+iicx2uvhttIZ3Qg9Qgty3BEF2xbOrz6boTfb30dMomcgrkTqdFPwnhqbk+kIQ7rZiwny9D7NUrTgA5kpX3KsZvrXzUZyP2x9YOlxbgm572lmxKvM7HAQQhIQ/p6HBmoY30bGXFK0BtIu1pW9TjhOYrLQoU18nWYjWqDA1ynkmOytpv7QRI1P1+0NoxL0q2zO1DgeSvnE8CZGo/o5Ap/WHK5W2RAsinpzN4/LjPnmB6U01I5XCoJoC0GK/yMZycd2Oh8Nq6+wBkC1U85oy0ktOY4nLvsQMLrourmMGdZHuTbqpeJ8Ao/5PRYJ+WBvRUwPfGKBL2+2IKZF49vAJqkcGWSHGE76ZN2erXeuNazf/o9o3lIE3q739o4c8t9QGPe31GT2Go/rOz1BsrASwvauNulCh+++yz+CQzBIuikA==";
    const V8_TOKEN: &str = "123456";
    const V8_KEY: &str = "kWxPEV2UEDyxWpmPdKC3F4dgPDmOvfKX1HGnEUDS1aR";
    const V8_APPID: &str = "wx49f0ab532d5d035a";
    const V8_REPLY: &str = "<xml>\n<MsgType><![CDATA[text]]></MsgType>\n<Content><![CDATA[test]]></Content>\n<FromUserName><![CDATA[wx49f0ab532d5d035a]]></FromUserName>\n<ToUserName><![CDATA[messense]]></ToUserName>\n<AgentID>1</AgentID>\n<CreateTime>1411525903</CreateTime>\n</xml>";
    const V8_ENCRYPT: &str = "9s4gMv99m88kKTh/H8IdkOiMg6bisoy3ypwy9H4hvSPe9nsGaqyw5hhSjdYbcrKk+j3nba4HMOTzHrluLBYqxgNcBqGsL8GqxlhZgURnAtObvesEl5nZ+uBE8bviY0LWke8Zy9V/QYKxNV2FqllNXcfmstttyIkMKCCmVbCFM2JTF5wY0nFhHZSjPUL2Q1qvSUCUld+/WIXrx0oyKQmpB6o8NRrrNrsDf03oxI1p9FxUgMnwKKZeOA/uu+2IEvEBtb7muXsVbwbgX05UPPJvFurDXafG0RQyPR+mf1nDnAtQmmNOuiR5MIkdQ39xn1vWwi1O5oazPoQJz0nTYjxxEE8kv3kFxtAGVRe3ypD3WeK2XeFYFMNMpatF9XiKzHo3";
    const V8_PUSH_ENCRYPT: &str = "RgqEoJj5A4EMYlLvWO1F86ioRjZfaex/gePD0gOXTxpsq5Yj4GNglrBb8I2BAJVODGajiFnXBu7mCPatfjsu6IHCrsTyeDXzF6Bv283dGymzxh6ydJRvZsryDyZbLTE7rhnus50qGPMfp2wASFlzEgMW9z1ef/RD8XzaFYgm7iTdaXpXaG4+BiYyolBug/gYNx410cvkKR2/nPwBiT+P4hIiOAQqGp/TywZBtDh1yCF2KOd0gpiMZ5jSw3e29mTvmUHzkVQiMS6td7vXUaWOMZnYZlF3So2SjHnwh4jYFxdgpkHHqIrH/54SNdshoQgWYEvccTKe7FS709/5t6NMxuGhcUGAPOQipvWTT4dShyqio7mlsl5noTrb++x6En749zCpQVhDpbV6GDnTbcX2e8K9QaNWHp91eBdCRxthuL0=";

    fn b64_16(s: &str) -> [u8; 16] {
        STANDARD.decode(s).expect("vector base64").try_into().expect("16 bytes")
    }

    fn random16(s: &str) -> [u8; 16] {
        s.as_bytes().try_into().expect("16 bytes")
    }

    /// The value of `<tag>` in a small XML document, with or without CDATA.
    fn xml_field<'a>(xml: &'a str, tag: &str) -> Option<&'a str> {
        let open = format!("<{tag}>");
        let close = format!("</{tag}>");
        let start = xml.find(&open)? + open.len();
        let end = start + xml[start..].find(&close)?;
        let v = xml[start..end].trim();
        Some(v.strip_prefix("<![CDATA[").and_then(|v| v.strip_suffix("]]>")).unwrap_or(v))
    }

    // V1: the official wxBizDataCrypt demo.
    #[test]
    fn v1_wxa_demo_decrypts_exactly() {
        let pt = wxa_decrypt(V1_SESSION_KEY, V1_ENCRYPTED, V1_IV).expect("decrypts");
        assert_eq!(pt.len(), 393);
        assert_eq!(std::str::from_utf8(&pt).expect("utf8"), V1_PLAINTEXT);
        let v: serde_json::Value = serde_json::from_slice(&pt).expect("json");
        assert_eq!(v["watermark"]["appid"], V1_APPID);
        assert_eq!(v["watermark"]["timestamp"], 1_477_314_187);
    }

    #[test]
    fn v1_wxa_demo_reencrypts_byte_for_byte() {
        let ct = wxa_encrypt(V1_SESSION_KEY, &b64_16(V1_IV), V1_PLAINTEXT.as_bytes()).expect("encrypts");
        assert_eq!(ct, V1_ENCRYPTED);
    }

    #[test]
    fn v1_wrong_key_is_rejected() {
        let res = wxa_decrypt("AAAAAAAAAAAAAAAAAAAAAA==", V1_ENCRYPTED, V1_IV);
        let ok_json = res.ok().and_then(|pt| serde_json::from_slice::<serde_json::Value>(&pt).ok());
        assert!(ok_json.is_none());
        assert_eq!(wxa_decrypt("AAAA", V1_ENCRYPTED, V1_IV), Err(CryptoError::Length("session_key", 16)));
        assert_eq!(wxa_decrypt(V1_SESSION_KEY, "!!", V1_IV), Err(CryptoError::Base64("encryptedData")));
    }

    // V2: rawData signature from the official signature.html.
    #[test]
    fn v2_rawdata_signature() {
        assert_eq!(
            rawdata_signature(V2_RAW_DATA, "HyVFkGl5F5OQWJZZaNzBBg=="),
            "75e81ceda165f4ffa64f4068af58c64b8f54b88c"
        );
    }

    // V3: plain push signatures, Token AAAAA.
    #[test]
    fn v3_plain_push_signature() {
        assert_eq!(push_signature("AAAAA", "1714036504", "1514711492"), "f464b24fc39322e44b38aa78f5edd27bd1441696");
        assert_eq!(push_signature("AAAAA", "1714037059", "486452656"), "899cf89e464efb63f54ddac96b0a0a235f53aa78");
    }

    // V4: Tencent's Java sample, both ciphertexts exactly.
    #[test]
    fn v4_safe_mode_encrypts_exactly() {
        let c = MsgCrypt::new(MP_KEY, MP_APPID).expect("key");
        let r = random16(MP_RANDOM);
        assert_eq!(c.encrypt_with_random(V4_REPLY1, &r), V4_CIPHER1);
        assert_eq!(c.encrypt_with_random(V4_REPLY2, &r), V4_CIPHER2);
        assert_eq!(c.decrypt(V4_CIPHER1).expect("opens"), V4_REPLY1);
        let opened = c.open(V4_CIPHER2).expect("opens");
        assert_eq!(opened.msg, V4_REPLY2);
        assert_eq!(opened.random, r);
        assert_eq!(opened.receive_id, MP_APPID);
    }

    // V5: EasyWeChat decrypt + msg_signature.
    #[test]
    fn v5_safe_mode_decrypt_and_msg_signature() {
        assert_eq!(
            msg_signature(MP_TOKEN, "1458300676", "260774613", V5_ENCRYPT),
            "4f3ad57b6989f09f4eb392acce4f9e93942ed890"
        );
        let msg = MsgCrypt::new(MP_KEY, MP_APPID).expect("key").decrypt(V5_ENCRYPT).expect("opens");
        assert_eq!(xml_field(&msg, "ToUserName"), Some("asdasdasd"));
        assert_eq!(xml_field(&msg, "FromUserName"), Some("asdasdasdsadasd"));
        assert_eq!(xml_field(&msg, "CreateTime"), Some("1234567898"));
        assert_eq!(xml_field(&msg, "Content"), Some("hello"));
    }

    // V8: wechatpy's encrypted reply envelope and incoming push.
    #[test]
    fn v8_reply_envelope_and_incoming_push() {
        let c = MsgCrypt::new(V8_KEY, V8_APPID).expect("key");
        let enc = c.encrypt_with_random(V8_REPLY, &random16("1234567890123456"));
        assert_eq!(enc, V8_ENCRYPT);
        assert_eq!(
            msg_signature(V8_TOKEN, "1411525903", "461056294", &enc),
            "407518b7649e86ef23978113f92d27afa9296533"
        );
        assert_eq!(
            msg_signature(V8_TOKEN, "1411525903", "461056294", V8_PUSH_ENCRYPT),
            "74d92dfeb87ba7c714f89d98870ae5eb62dff26d"
        );
        let msg = c.decrypt(V8_PUSH_ENCRYPT).expect("opens");
        assert_eq!(xml_field(&msg, "Content"), Some("test"));
        assert_eq!(xml_field(&msg, "FromUserName"), Some("messense"));
    }

    #[test]
    fn safe_mode_pads_to_32_bytes_and_round_trips() {
        let c = MsgCrypt::new(MP_KEY, MP_APPID).expect("key");
        for len in [0usize, 1, 11, 12, 13, 43, 44, 45, 100] {
            let msg = "x".repeat(len);
            let enc = c.encrypt(&msg);
            let ct = STANDARD.decode(&enc).expect("b64");
            assert_eq!(ct.len() % PUSH_BLOCK, 0);
            let opened = c.open(&enc).expect("opens");
            assert_eq!(opened.msg, msg);
            assert!(opened.random.iter().all(u8::is_ascii_alphanumeric));
        }
    }

    #[test]
    fn safe_mode_rejects_wrong_appid_and_garbage() {
        let c = MsgCrypt::new(MP_KEY, "wx0000000000000000").expect("key");
        assert_eq!(c.decrypt(V4_CIPHER1), Err(CryptoError::AppIdMismatch(MP_APPID.into())));
        assert!(c.decrypt("AAAA").is_err());
        assert!(c.decrypt("not base64!").is_err());
        assert!(MsgCrypt::new("short", MP_APPID).is_err());
    }
}
