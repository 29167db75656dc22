//! rclone's "obscure": reversible AES-256-CTR under a key built into rclone.
//!
//! rclone requires crypt passwords in its config to be obscured this way. It is not
//! encryption (the key is public); it only keeps passwords from being read at a glance.

use aes::cipher::{KeyIvInit, StreamCipher};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

type Aes256Ctr = ctr::Ctr128BE<aes::Aes256>;

/// The fixed key rclone uses for obscuring (rclone `fs/config/obscure`).
const RCLONE_OBSCURE_KEY: [u8; 32] = [
    0x9c, 0x93, 0x5b, 0x48, 0x73, 0x0a, 0x55, 0x4d, 0x6b, 0xfd, 0x7c, 0x63, 0xc8, 0x86, 0xa9, 0x2b,
    0xd3, 0x90, 0x19, 0x8e, 0xb8, 0x12, 0x8a, 0xfb, 0xf4, 0xde, 0x16, 0x2b, 0x8b, 0x95, 0xf6, 0x38,
];
const IV_LEN: usize = 16;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RevealError {
    #[error("not valid base64 (an rclone-obscured value is unpadded URL-safe base64)")]
    NotBase64,
    #[error("too short to hold rclone's 16-byte IV")]
    TooShort,
    #[error("does not reveal to UTF-8 text")]
    NotUtf8,
}

/// Obscure `plain` the way `rclone obscure` does, with a fresh random IV.
pub fn obscure(plain: &str) -> String {
    let iv: [u8; IV_LEN] = rand::random();
    obscure_with_iv(plain, iv)
}

fn obscure_with_iv(plain: &str, iv: [u8; IV_LEN]) -> String {
    let mut buffer = Vec::with_capacity(IV_LEN + plain.len());
    buffer.extend_from_slice(&iv);
    buffer.extend_from_slice(plain.as_bytes());
    apply_keystream(&iv, &mut buffer[IV_LEN..]);
    URL_SAFE_NO_PAD.encode(buffer)
}

/// Reveal a value obscured by rclone (or by [`obscure`]).
pub fn reveal(obscured: &str) -> Result<String, RevealError> {
    let mut buffer = URL_SAFE_NO_PAD
        .decode(obscured.trim())
        .map_err(|_| RevealError::NotBase64)?;
    if buffer.len() < IV_LEN {
        return Err(RevealError::TooShort);
    }
    let (iv, payload) = buffer.split_at_mut(IV_LEN);
    let iv: [u8; IV_LEN] = (*iv).try_into().map_err(|_| RevealError::TooShort)?;
    apply_keystream(&iv, payload);
    String::from_utf8(payload.to_vec()).map_err(|_| RevealError::NotUtf8)
}

fn apply_keystream(iv: &[u8; IV_LEN], data: &mut [u8]) {
    let mut cipher = Aes256Ctr::new(&RCLONE_OBSCURE_KEY.into(), iv.into());
    cipher.apply_keystream(data);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_through_reveal() {
        for plain in ["", "p", "correct horse battery staple", "zażółć gęślą jaźń"] {
            assert_eq!(reveal(&obscure(plain)).as_deref(), Ok(plain));
        }
    }

    #[test]
    fn each_call_uses_a_fresh_iv() {
        assert_ne!(obscure("same"), obscure("same"));
    }

    #[test]
    fn output_is_iv_then_ciphertext_in_unpadded_url_base64() {
        let out = obscure_with_iv("abc", [0u8; IV_LEN]);
        assert!(!out.contains('=') && !out.contains('+') && !out.contains('/'));
        let raw = URL_SAFE_NO_PAD.decode(&out).expect("base64");
        assert_eq!(raw.len(), IV_LEN + 3);
        assert_eq!(&raw[..IV_LEN], &[0u8; IV_LEN]);
        assert_ne!(&raw[IV_LEN..], b"abc");
    }

    #[test]
    fn reveals_a_value_obscured_by_rclone_itself() {
        // Produced by `rclone obscure 'correct horse battery staple'` (rclone v1.75.2).
        let by_rclone = "DnNzpe0EnIO4HoO2suin7PqHtPQdnwFwZGSfk8glRk-664WRtSepI3ACl2c";
        assert_eq!(
            reveal(by_rclone).as_deref(),
            Ok("correct horse battery staple")
        );
    }

    #[test]
    fn reveal_rejects_garbage_with_a_reason() {
        assert_eq!(reveal("not base64 !!"), Err(RevealError::NotBase64));
        assert_eq!(reveal("YWJj"), Err(RevealError::TooShort));
    }
}
