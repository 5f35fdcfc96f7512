//! A self-hosted proof-of-work CAPTCHA in ALTCHA's challenge format, so the ALTCHA widget can solve it: the
//! client finds `number` in `0..=maxnumber` with `SHA-256(salt ‖ number) = challenge` and returns a base64 JSON
//! payload. The challenge is signed with a keyed hash (HMAC-SHA-256 under a sub-key of the server key) and
//! carries its expiry in the salt (`?expires=<unix seconds>`, as ALTCHA does). The verifier only checks; that a
//! solution is used once is the store's job (`Store::spend_captcha`), so it holds across nodes.
//!
//! ALTCHA's official crate implements its newer proof-of-work v2; this is the v1 format (`algorithm`,
//! `challenge`, `salt`, `signature`, `maxnumber`), the one the widget solves with a plain SHA-256 loop. It is
//! written here because the v1 libraries draw time and randomness from ambient sources.

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE, URL_SAFE_NO_PAD};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::clock::Millis;
use crate::config::CaptchaConfig;
use crate::crypto::ServerKey;
use crate::random::{Random, random_below};

pub const ALGORITHM: &str = "SHA-256";
const SIGNATURE_PURPOSE: &str = "captcha";
/// A payload longer than this is not a solution.
const MAX_PAYLOAD: usize = 2048;

/// What the client solves (ALTCHA's field names).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Challenge {
    pub algorithm: String,
    pub challenge: String,
    pub maxnumber: u64,
    pub salt: String,
    pub signature: String,
}

/// What the client sends back, base64-encoded JSON (ALTCHA's payload).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Solution {
    pub algorithm: String,
    pub challenge: String,
    pub number: u64,
    pub salt: String,
    pub signature: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub took: Option<u64>,
}

/// Why a solution was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CaptchaError {
    #[error("not a CAPTCHA payload")]
    Malformed,
    #[error("the CAPTCHA is not solved, or not signed by this server")]
    Wrong,
    #[error("the CAPTCHA expired")]
    Expired,
}

/// A correctly solved, unexpired challenge: spend `challenge` once, keeping it until `expires_at`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    pub challenge: String,
    pub expires_at: Millis,
}

fn hash_hex(salt: &str, number: u64) -> String {
    let digest = Sha256::digest(format!("{salt}{number}").as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// A new challenge, valid for the configured time.
pub fn create(key: &ServerKey, random: &dyn Random, config: &CaptchaConfig, now: Millis) -> Challenge {
    let mut nonce = [0u8; 12];
    random.fill(&mut nonce);
    let nonce: String = nonce.iter().map(|b| format!("{b:02x}")).collect();
    let validity = i64::try_from(config.validity_seconds).unwrap_or(i64::MAX / 1000);
    let expires = now.div_euclid(1000).saturating_add(validity);
    let salt = format!("{nonce}?expires={expires}");
    let number = config.max_number.checked_add(1).map_or_else(|| random.next_u64(), |n| random_below(random, n));
    let challenge = hash_hex(&salt, number);
    let signature = key.hash_secret(SIGNATURE_PURPOSE, &challenge);
    Challenge { algorithm: ALGORITHM.into(), challenge, maxnumber: config.max_number, salt, signature }
}

/// The expiry a salt carries (`…?expires=<unix seconds>`), in milliseconds.
fn expiry_of(salt: &str) -> Option<Millis> {
    let (_, query) = salt.split_once('?')?;
    let seconds = query.split('&').find_map(|p| p.strip_prefix("expires="))?.parse::<i64>().ok()?;
    seconds.checked_mul(1000)
}

/// Decodes the widget's payload (base64 of JSON; standard or URL-safe alphabet).
pub fn decode(payload: &str) -> Result<Solution, CaptchaError> {
    let payload = payload.trim();
    if payload.is_empty() || payload.len() > MAX_PAYLOAD {
        return Err(CaptchaError::Malformed);
    }
    let bytes = STANDARD
        .decode(payload)
        .or_else(|_| URL_SAFE.decode(payload))
        .or_else(|_| URL_SAFE_NO_PAD.decode(payload))
        .map_err(|_| CaptchaError::Malformed)?;
    serde_json::from_slice(&bytes).map_err(|_| CaptchaError::Malformed)
}

/// Checks a payload: our signature, the proof of work, the expiry. Cheap: one SHA-256 and one HMAC.
pub fn verify(key: &ServerKey, payload: &str, now: Millis) -> Result<Verified, CaptchaError> {
    let s = decode(payload)?;
    if s.algorithm != ALGORITHM {
        return Err(CaptchaError::Wrong);
    }
    let expected = key.hash_secret(SIGNATURE_PURPOSE, &s.challenge);
    let signed = bool::from(expected.as_bytes().ct_eq(s.signature.as_bytes()));
    if !signed || hash_hex(&s.salt, s.number) != s.challenge {
        return Err(CaptchaError::Wrong);
    }
    let expires_at = expiry_of(&s.salt).ok_or(CaptchaError::Wrong)?;
    if now >= expires_at {
        return Err(CaptchaError::Expired);
    }
    Ok(Verified { challenge: s.challenge, expires_at })
}

/// Solves a challenge by trying every number, as the widget does; the payload to send, or `None` if no number
/// up to `maxnumber` fits (not our challenge).
pub fn solve(challenge: &Challenge) -> Option<String> {
    let number = (0..=challenge.maxnumber).find(|n| hash_hex(&challenge.salt, *n) == challenge.challenge)?;
    let solution = Solution {
        algorithm: challenge.algorithm.clone(),
        challenge: challenge.challenge.clone(),
        number,
        salt: challenge.salt.clone(),
        signature: challenge.signature.clone(),
        took: None,
    };
    serde_json::to_vec(&solution).ok().map(|json| STANDARD.encode(json))
}

#[cfg(test)]
mod tests {
    use rand_chacha::ChaCha20Rng;
    use rand_chacha::rand_core::SeedableRng;

    use super::*;
    use crate::random::SeededRandom;

    fn setup() -> (ServerKey, SeededRandom, CaptchaConfig) {
        let key = ServerKey::from_bytes(&[7u8; 32]).unwrap_or_else(|_| unreachable!());
        let random = SeededRandom::new(ChaCha20Rng::seed_from_u64(3));
        (key, random, CaptchaConfig { max_number: 2_000, validity_seconds: 60 })
    }

    #[test]
    fn a_solved_challenge_verifies_until_it_expires() {
        let (key, random, config) = setup();
        let now = 1_700_000_000_000;
        let challenge = create(&key, &random, &config, now);
        let payload = solve(&challenge).unwrap_or_default();
        let verified = verify(&key, &payload, now + 59_000);
        assert_eq!(verified, Ok(Verified { challenge: challenge.challenge.clone(), expires_at: now + 60_000 }));
        assert_eq!(verify(&key, &payload, now + 60_000), Err(CaptchaError::Expired));
    }

    #[test]
    fn wrong_numbers_foreign_signatures_and_garbage_are_refused() {
        let (key, random, config) = setup();
        let now = 1_700_000_000_000;
        let challenge = create(&key, &random, &config, now);
        let mut solution = decode(&solve(&challenge).unwrap_or_default()).unwrap_or_else(|_| unreachable!());
        solution.number += 1;
        let wrong = STANDARD.encode(serde_json::to_vec(&solution).unwrap_or_default());
        assert_eq!(verify(&key, &wrong, now), Err(CaptchaError::Wrong));

        let other = ServerKey::from_bytes(&[8u8; 32]).unwrap_or_else(|_| unreachable!());
        let foreign = create(&other, &random, &config, now);
        assert_eq!(verify(&key, &solve(&foreign).unwrap_or_default(), now), Err(CaptchaError::Wrong));

        assert_eq!(verify(&key, "not base64!", now), Err(CaptchaError::Malformed));
        assert_eq!(verify(&key, &STANDARD.encode(b"{}"), now), Err(CaptchaError::Malformed));
    }

    #[test]
    fn a_salt_without_an_expiry_is_not_ours() {
        let (key, _, _) = setup();
        let salt = "abc".to_owned();
        let challenge = hash_hex(&salt, 5);
        let signature = key.hash_secret(SIGNATURE_PURPOSE, &challenge);
        let c = Challenge { algorithm: ALGORITHM.into(), challenge, maxnumber: 10, salt, signature };
        assert_eq!(verify(&key, &solve(&c).unwrap_or_default(), 0), Err(CaptchaError::Wrong));
    }
}
