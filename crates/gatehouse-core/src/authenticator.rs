//! The Gatehouse authenticator: a device holds an Ed25519 key pair (for push decisions) and a symmetric offline
//! key (for codes typed from a QR challenge). Every signed message is canonical and domain-separated, so a
//! signature made for one purpose can never be replayed as another.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ed25519_dalek::{Signature, Signer as _, SigningKey, VerifyingKey};
use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest as _, Sha256};

use crate::random::{Random, random_code};

const APPROVAL_DOMAIN: &[u8] = b"gatehouse/approval/v1";
const REQUEST_DOMAIN: &[u8] = b"gatehouse/device-request/v1";
const OFFLINE_DOMAIN: &[u8] = b"gatehouse/offline-code/v1";

/// How many digits an offline code has.
pub const OFFLINE_CODE_DIGITS: usize = 8;

fn canonical(domain: &[u8], parts: &[&[u8]]) -> Vec<u8> {
    let mut out = Vec::with_capacity(domain.len() + parts.iter().map(|p| p.len() + 8).sum::<usize>());
    out.extend_from_slice(domain);
    for part in parts {
        out.extend_from_slice(&(part.len() as u64).to_be_bytes());
        out.extend_from_slice(part);
    }
    out
}

/// What a device signs to approve or deny one request: the request's id and nonce, the decision and the
/// number the user picked.
pub fn approval_message(approval_id: &str, nonce: &str, decision: &str, number: u32) -> Vec<u8> {
    canonical(APPROVAL_DOMAIN, &[approval_id.as_bytes(), nonce.as_bytes(), decision.as_bytes(), &number.to_be_bytes()])
}

/// What a device signs to authenticate an API request (method, path with query, time, body hash).
pub fn request_message(method: &str, path: &str, timestamp_ms: i64, body: &[u8]) -> Vec<u8> {
    let digest = Sha256::digest(body);
    canonical(REQUEST_DOMAIN, &[method.as_bytes(), path.as_bytes(), &timestamp_ms.to_be_bytes(), &digest])
}

pub fn encode(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

pub fn decode(text: &str) -> Option<Vec<u8>> {
    URL_SAFE_NO_PAD.decode(text.trim()).ok()
}

/// A device key pair (the authenticator side).
pub struct DeviceKey(SigningKey);

impl DeviceKey {
    pub fn generate(random: &dyn Random) -> Self {
        let mut seed = [0u8; 32];
        random.fill(&mut seed);
        Self(SigningKey::from_bytes(&seed))
    }

    pub fn from_seed(seed: &str) -> Option<Self> {
        let bytes: [u8; 32] = decode(seed)?.try_into().ok()?;
        Some(Self(SigningKey::from_bytes(&bytes)))
    }

    pub fn seed(&self) -> String {
        encode(&self.0.to_bytes())
    }

    pub fn public_key(&self) -> String {
        encode(self.0.verifying_key().as_bytes())
    }

    pub fn sign(&self, message: &[u8]) -> String {
        encode(&self.0.sign(message).to_bytes())
    }
}

/// Checks `signature` (base64url) over `message` with `public_key` (base64url); strict verification.
pub fn verify(public_key: &str, message: &[u8], signature: &str) -> bool {
    let Some(key) = decode(public_key).and_then(|k| <[u8; 32]>::try_from(k).ok()) else { return false };
    let Ok(key) = VerifyingKey::from_bytes(&key) else { return false };
    let Some(sig) = decode(signature).and_then(|s| <[u8; 64]>::try_from(s).ok()) else { return false };
    key.verify_strict(message, &Signature::from_bytes(&sig)).is_ok()
}

/// Whether `text` is a well-formed public key.
pub fn is_public_key(text: &str) -> bool {
    decode(text).and_then(|k| <[u8; 32]>::try_from(k).ok()).is_some_and(|k| VerifyingKey::from_bytes(&k).is_ok())
}

/// The code a device shows for an offline challenge: HMAC of the challenge under the device's offline key,
/// truncated to 8 digits as HOTP does.
pub fn offline_code(offline_key: &[u8], challenge: &str) -> String {
    let mut mac =
        <Hmac<Sha256> as KeyInit>::new_from_slice(offline_key).unwrap_or_else(|_| unreachable!("HMAC takes any key"));
    mac.update(&canonical(OFFLINE_DOMAIN, &[challenge.as_bytes()]));
    let digest: [u8; 32] = mac.finalize().into_bytes().into();
    let offset = usize::from(digest[31] & 0x0f);
    let value = u32::from_be_bytes([digest[offset] & 0x7f, digest[offset + 1], digest[offset + 2], digest[offset + 3]]);
    format!("{:0width$}", value % 100_000_000, width = OFFLINE_CODE_DIGITS)
}

/// Seconds of one time step of [`time_code`].
pub const TIME_STEP_SECONDS: i64 = 30;

/// The code a device shows without any challenge (an application's `method: OTP`): the offline code of the
/// current 30-second time step.
pub fn time_code(offline_key: &[u8], step: i64) -> String {
    offline_code(offline_key, &format!("gatehouse-time:1:{step}"))
}

/// A 16-digit activation code, typed where a camera is missing.
pub fn activation_code(random: &dyn Random) -> String {
    let digits: Vec<char> = "0123456789".chars().collect();
    random_code(random, &digits, 16)
}

/// `gatehouse://activate?server=…&code=…`, shown as a QR code.
pub fn activation_uri(server_url: &str, code: &str) -> String {
    format!("gatehouse://activate?server={}&code={code}", percent_encode(server_url))
}

/// Parses an activation URI (or a bare code, then `server` must come from elsewhere).
pub fn parse_activation(text: &str) -> Option<(Option<String>, String)> {
    let text = text.trim();
    let Some(query) = text.strip_prefix("gatehouse://activate?") else {
        let code: String = text.chars().filter(|c| !matches!(c, ' ' | '-')).collect();
        return (code.len() == 16 && code.chars().all(|c| c.is_ascii_digit())).then_some((None, code));
    };
    let mut server = None;
    let mut code = None;
    for pair in query.split('&') {
        match pair.split_once('=') {
            Some(("server", v)) => server = Some(percent_decode(v)?),
            Some(("code", v)) => code = Some(v.to_owned()),
            _ => {}
        }
    }
    Some((server, code?))
}

/// Number matching: the browser shows `number`, the device offers it among two decoys.
pub fn number_choices(random: &dyn Random, number: u32) -> Vec<u32> {
    let mut choices = vec![number];
    while choices.len() < 3 {
        let n = 10 + u32::try_from(random.next_u64() % 90).unwrap_or(0);
        if !choices.contains(&n) {
            choices.push(n);
        }
    }
    // Fisher–Yates with the injected generator.
    for i in (1..choices.len()).rev() {
        let j = usize::try_from(random.next_u64() % (i as u64 + 1)).unwrap_or(0);
        choices.swap(i, j);
    }
    choices
}

/// A two-digit number for the browser.
pub fn new_number(random: &dyn Random) -> u32 {
    10 + u32::try_from(random.next_u64() % 90).unwrap_or(0)
}

fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;

    use super::*;
    use crate::random::SeededRandom;

    fn random() -> SeededRandom {
        SeededRandom::new(rand_chacha::ChaCha20Rng::seed_from_u64(11))
    }

    #[test]
    fn signatures_bind_every_field_and_the_purpose() {
        let key = DeviceKey::generate(&random());
        let msg = approval_message("a1", "n1", "approve", 42);
        let sig = key.sign(&msg);
        assert!(verify(&key.public_key(), &msg, &sig));
        for other in [
            approval_message("a2", "n1", "approve", 42),
            approval_message("a1", "n2", "approve", 42),
            approval_message("a1", "n1", "deny", 42),
            approval_message("a1", "n1", "approve", 43),
            request_message("POST", "/x", 1, b""),
        ] {
            assert!(!verify(&key.public_key(), &other, &sig));
        }
        let stranger = DeviceKey::generate(&SeededRandom::new(rand_chacha::ChaCha20Rng::seed_from_u64(12)));
        assert!(!verify(&stranger.public_key(), &msg, &sig));
        assert!(!verify("not-a-key", &msg, &sig));
        assert!(!verify(&key.public_key(), &msg, "AAAA"));
        let again = DeviceKey::from_seed(&key.seed()).unwrap();
        assert_eq!(again.public_key(), key.public_key());
    }

    #[test]
    fn offline_codes_depend_on_key_and_challenge() {
        let code = offline_code(b"key-one-key-one-key-one-key-one!", "challenge-1");
        assert_eq!(code.len(), 8);
        assert_eq!(code, offline_code(b"key-one-key-one-key-one-key-one!", "challenge-1"));
        assert_ne!(code, offline_code(b"key-two-key-two-key-two-key-two!", "challenge-1"));
        assert_ne!(code, offline_code(b"key-one-key-one-key-one-key-one!", "challenge-2"));
    }

    #[test]
    fn activation_uris_round_trip() {
        let code = activation_code(&random());
        assert_eq!(code.len(), 16);
        let uri = activation_uri("http://127.0.0.1:8080", &code);
        assert_eq!(parse_activation(&uri), Some((Some("http://127.0.0.1:8080".into()), code.clone())));
        let typed = format!("{}-{}-{}-{}", &code[..4], &code[4..8], &code[8..12], &code[12..]);
        assert_eq!(parse_activation(&typed), Some((None, code)));
        assert_eq!(parse_activation("12345"), None);
    }

    #[test]
    fn number_choices_hold_the_number_and_two_decoys() {
        let r = random();
        for _ in 0..50 {
            let n = new_number(&r);
            let c = number_choices(&r, n);
            assert_eq!(c.len(), 3);
            assert!(c.contains(&n));
            assert!(c.iter().all(|x| (10..100).contains(x)));
            assert!(c[0] != c[1] && c[1] != c[2] && c[0] != c[2]);
        }
    }
}
