use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use chacha20poly1305::aead::{Aead, Payload};
use chacha20poly1305::{Key, XChaCha20Poly1305, XNonce};
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

use crate::random::Random;

type HmacSha256 = Hmac<Sha256>;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum KeyError {
    #[error("the secret key must be base64 of at least 32 bytes")]
    BadKey,
    #[error("sealed data is damaged or was sealed with another key")]
    Unseal,
}

/// The server's secret, split into independent sub-keys by purpose so that a hash of one kind can never be
/// mistaken for another.
#[derive(Clone)]
pub struct ServerKey {
    hash_key: [u8; 32],
    seal_key: [u8; 32],
}

impl std::fmt::Debug for ServerKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ServerKey(…)")
    }
}

fn hmac(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    let mut mac = <HmacSha256 as KeyInit>::new_from_slice(key).unwrap_or_else(|_| unreachable_key());
    for part in parts {
        // Length-prefix every part so that ("ab","c") and ("a","bc") differ.
        mac.update(&(part.len() as u64).to_be_bytes());
        mac.update(part);
    }
    mac.finalize().into_bytes().into()
}

/// HMAC accepts keys of any length, so construction cannot fail.
fn unreachable_key() -> HmacSha256 {
    unreachable!("HMAC takes keys of any length")
}

impl ServerKey {
    pub fn from_bytes(master: &[u8]) -> Result<Self, KeyError> {
        if master.len() < 32 {
            return Err(KeyError::BadKey);
        }
        Ok(Self { hash_key: hmac(master, &[b"gatehouse/hash/v1"]), seal_key: hmac(master, &[b"gatehouse/seal/v1"]) })
    }

    pub fn from_base64(text: &str) -> Result<Self, KeyError> {
        let bytes = STANDARD
            .decode(text.trim())
            .or_else(|_| URL_SAFE_NO_PAD.decode(text.trim()))
            .map_err(|_| KeyError::BadKey)?;
        Self::from_bytes(&bytes)
    }

    /// A new random master key, base64.
    pub fn generate_base64(random: &dyn Random) -> String {
        let mut b = [0u8; 32];
        random.fill(&mut b);
        STANDARD.encode(b)
    }

    /// A keyed hash of a fixed text: the same for the same key, telling nothing about it. Nodes compare it to
    /// find out whether they hold the same key.
    pub fn fingerprint(&self) -> String {
        self.hash_secret("key-fingerprint", "gatehouse")[..32].to_owned()
    }

    /// Keyed hash of a secret (flow token, API key), hex; `purpose` separates domains.
    pub fn hash_secret(&self, purpose: &str, secret: &str) -> String {
        hex(&hmac(&self.hash_key, &[purpose.as_bytes(), secret.as_bytes()]))
    }

    /// Keyed hash of a one-time code, bound to the flow session it was issued in.
    pub fn hash_otp(&self, binding: &str, code: &str) -> String {
        self.hash_secret("otp", &format!("{binding}\u{0}{code}"))
    }

    /// Constant-time check of a code against its stored hash.
    pub fn verify_otp(&self, binding: &str, code: &str, expected_hash: &str) -> bool {
        let actual = self.hash_otp(binding, code);
        bool::from(actual.as_bytes().ct_eq(expected_hash.as_bytes()))
    }

    /// Encrypts and authenticates `plaintext` (XChaCha20-Poly1305, random nonce); `context` must match on open.
    pub fn seal(&self, random: &dyn Random, context: &str, plaintext: &[u8]) -> String {
        let cipher = XChaCha20Poly1305::new(&Key::from(self.seal_key));
        let mut nonce = [0u8; 24];
        random.fill(&mut nonce);
        // Encryption with a valid key and nonce only fails for plaintexts beyond 256 GiB.
        let ciphertext = cipher
            .encrypt(&XNonce::from(nonce), Payload { msg: plaintext, aad: context.as_bytes() })
            .unwrap_or_default();
        let mut out = nonce.to_vec();
        out.extend_from_slice(&ciphertext);
        URL_SAFE_NO_PAD.encode(out)
    }

    pub fn open(&self, context: &str, sealed: &str) -> Result<Vec<u8>, KeyError> {
        let raw = URL_SAFE_NO_PAD.decode(sealed).map_err(|_| KeyError::Unseal)?;
        if raw.len() < 24 + 16 {
            return Err(KeyError::Unseal);
        }
        let (nonce, ciphertext) = raw.split_at(24);
        let nonce = XNonce::try_from(nonce).map_err(|_| KeyError::Unseal)?;
        XChaCha20Poly1305::new(&Key::from(self.seal_key))
            .decrypt(&nonce, Payload { msg: ciphertext, aad: context.as_bytes() })
            .map_err(|_| KeyError::Unseal)
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;

    use super::*;
    use crate::random::SeededRandom;

    fn key() -> ServerKey {
        ServerKey::from_bytes(&[7u8; 32]).unwrap()
    }

    #[test]
    fn short_keys_are_refused() {
        assert_eq!(ServerKey::from_bytes(&[1u8; 31]).err(), Some(KeyError::BadKey));
        assert_eq!(ServerKey::from_base64("not base64!").err(), Some(KeyError::BadKey));
    }

    #[test]
    fn otp_hashes_are_bound_to_the_session_and_key() {
        let k = key();
        let h = k.hash_otp("s1", "12345678");
        assert!(k.verify_otp("s1", "12345678", &h));
        assert!(!k.verify_otp("s2", "12345678", &h));
        assert!(!k.verify_otp("s1", "12345679", &h));
        let other = ServerKey::from_bytes(&[8u8; 32]).unwrap();
        assert!(!other.verify_otp("s1", "12345678", &h));
        assert_ne!(k.hash_secret("flow", "x"), k.hash_secret("api", "x"));
    }

    #[test]
    fn sealed_data_round_trips_and_detects_tampering() {
        let k = key();
        let r = SeededRandom::new(rand_chacha::ChaCha20Rng::seed_from_u64(1));
        let sealed = k.seal(&r, "outbox", b"code 12345678");
        assert!(!sealed.contains("12345678"));
        assert_eq!(k.open("outbox", &sealed).unwrap(), b"code 12345678");
        assert_eq!(k.open("other", &sealed), Err(KeyError::Unseal));
        let mut bytes = URL_SAFE_NO_PAD.decode(&sealed).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        assert_eq!(k.open("outbox", &URL_SAFE_NO_PAD.encode(bytes)), Err(KeyError::Unseal));
    }
}
