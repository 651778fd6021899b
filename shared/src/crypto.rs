//! WeChat open-data decryption (WECHAT_CONTRACT.md §1.3): AES-128-CBC, key = session_key,
//! PKCS#7 with 16-byte blocks.

use aes::cipher::{block_padding::Pkcs7, BlockDecryptMut, KeyIvInit};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;

use crate::error::Error;
use crate::ids::Secret;

type Aes128CbcDec = cbc::Decryptor<aes::Aes128>;

/// Compares two secrets (keys, signatures) without leaking where they differ: both are hashed
/// first, so the timing of `==` says nothing an attacker can steer.
pub fn same_secret(a: &[u8], b: &[u8]) -> bool {
    use sha2::{Digest, Sha256};
    Sha256::digest(a) == Sha256::digest(b)
}

/// Upper bound on encryptedData we accept (WeChat's userinfo payloads are well under 2 KiB).
pub const MAX_ENCRYPTED_LEN: usize = 16 * 1024;

/// Opens `encryptedData`: any wrong key, IV, length or padding is `decrypt_failed`.
pub fn wxa_decrypt(session_key: &Secret, encrypted_b64: &str, iv_b64: &str) -> Result<Vec<u8>, Error> {
    if encrypted_b64.len() > MAX_ENCRYPTED_LEN {
        return Err(Error::DecryptFailed);
    }
    let key = B64.decode(session_key.expose()).map_err(|_| Error::DecryptFailed)?;
    let iv = B64.decode(iv_b64).map_err(|_| Error::DecryptFailed)?;
    let data = B64.decode(encrypted_b64).map_err(|_| Error::DecryptFailed)?;
    if key.len() != 16 || iv.len() != 16 || data.is_empty() || data.len() % 16 != 0 {
        return Err(Error::DecryptFailed);
    }
    let dec = Aes128CbcDec::new_from_slices(&key, &iv).map_err(|_| Error::DecryptFailed)?;
    dec.decrypt_padded_vec_mut::<Pkcs7>(&data).map_err(|_| Error::DecryptFailed)
}

#[derive(Debug, serde::Deserialize)]
pub struct Watermark {
    pub appid: String,
    #[serde(default)]
    pub timestamp: i64,
}

/// The fields of decrypted userinfo we use; everything else (nickname, avatar…) is ignored.
#[derive(Debug, serde::Deserialize)]
pub struct OpenUserInfo {
    #[serde(rename = "openId")]
    pub open_id: Option<String>,
    #[serde(rename = "unionId")]
    pub union_id: Option<String>,
    pub watermark: Watermark,
}

/// Decrypts and checks that the data was made for `appid`.
pub fn open_userinfo(
    session_key: &Secret,
    encrypted_b64: &str,
    iv_b64: &str,
    appid: &str,
) -> Result<OpenUserInfo, Error> {
    let plain = wxa_decrypt(session_key, encrypted_b64, iv_b64)?;
    let info: OpenUserInfo = serde_json::from_slice(&plain).map_err(|_| Error::DecryptFailed)?;
    if info.watermark.appid != appid {
        return Err(Error::WatermarkMismatch);
    }
    Ok(info)
}

#[cfg(test)]
mod tests {
    use super::*;

    // Official wxBizDataCrypt demo vector (WECHAT_CONTRACT.md §9 V1).
    const KEY: &str = "tiihtNczf5v6AKRyjwEUhQ==";
    const IV: &str = "r7BXXKkLb8qrSNn05n0qiA==";
    const DATA: &str = concat!(
        "CiyLU1Aw2KjvrjMdj8YKliAjtP4gsMZMQmRzooG2xrDcvSnxIMXFufNstNGTyaGS9uT5geRa0W4oTOb1WT7fJlAC",
        "+oNPdbB+3hVbJSRgv+4lGOETKUQz6OYStslQ142dNCuabNPGBzlooOmB231qMM85d2",
        "/fV6ChevvXvQP8Hkue1poOFtnEtpyxVLW1zAo6/1Xx1COxFvrc2d7UL/lmHInNlxuacJXwu0fjpXfz",
        "/YqYzBIBzD6WUfTIF9GRHpOn/Hz7saL8xz+W//FRAUid1OksQaQx4CMs8LOddcQhULW4ucetDf96JcR3g0gfRK4PC7E",
        "/r7Z6xNrXd2UIeorGj5Ef7b1pJAYB6Y5anaHqZ9J6nKEBvB4DnNLIVWSgARns",
        "/8wR2SiRS7MNACwTyrGvt9ts8p12PKFdlqYTopNHR1Vf7XjfhQlVsAJdNiKdYmYVoKlaRv85IfVunYzO0IKXsyl7JCUjCpoG",
        "20f0a04COwfneQAGGwd5oa+T8yO5hzuyDb/XcxxmK01EpqOyuxINew=="
    );
    const PLAIN: &str = concat!(
        r#"{"openId":"oGZUI0egBJY1zhBYw2KhdUfwVJJE","nickName":"Band","gender":1,"language":"zh_CN","#,
        r#""city":"Guangzhou","province":"Guangdong","country":"CN","#,
        r#""avatarUrl":"http://wx.qlogo.cn/mmopen/vi_32/aSKcBBPpibyKNicHNTMM0qJVh8Kjgiak2AHWr8MHM4WgMEm7GFhsf8OYrySdbvAMvTsw3mo8ibKicsnfN5pRjl1p8HQ/0","#,
        r#""unionId":"ocMvos6NjeKLIBqg5Mr9QjxrP1FA","watermark":{"timestamp":1477314187,"appid":"wx4f4bc4dec97d474b"}}"#
    );

    #[test]
    fn official_vector_decrypts_to_the_exact_bytes() {
        let out = wxa_decrypt(&Secret::new(KEY), DATA, IV).unwrap();
        assert_eq!(out.len(), 393);
        assert_eq!(std::str::from_utf8(&out).unwrap(), PLAIN);
        let info = open_userinfo(&Secret::new(KEY), DATA, IV, "wx4f4bc4dec97d474b").unwrap();
        assert_eq!(info.union_id.as_deref(), Some("ocMvos6NjeKLIBqg5Mr9QjxrP1FA"));
        assert_eq!(info.watermark.timestamp, 1477314187);
    }

    #[test]
    fn wrong_key_tampering_and_other_apps_are_refused() {
        assert!(matches!(wxa_decrypt(&Secret::new("AAAAAAAAAAAAAAAAAAAAAA=="), DATA, IV), Err(Error::DecryptFailed)));
        let mut bytes = B64.decode(DATA).unwrap();
        let n = bytes.len();
        bytes[n - 1] ^= 0x55;
        let tampered = B64.encode(bytes);
        assert!(matches!(wxa_decrypt(&Secret::new(KEY), &tampered, IV), Err(Error::DecryptFailed)));
        assert!(matches!(wxa_decrypt(&Secret::new(KEY), "not base64!", IV), Err(Error::DecryptFailed)));
        assert!(matches!(wxa_decrypt(&Secret::new(KEY), &DATA[..20], IV), Err(Error::DecryptFailed)));
        assert!(matches!(
            open_userinfo(&Secret::new(KEY), DATA, IV, "wx0000000000000000"),
            Err(Error::WatermarkMismatch)
        ));
    }
}
