//! Randomness is injected: production draws from the OS, tests from a seeded ChaCha generator.

use std::sync::Mutex;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::Rng;

pub trait Random: Send + Sync {
    fn fill(&self, buf: &mut [u8]);

    fn next_u64(&self) -> u64 {
        let mut b = [0u8; 8];
        self.fill(&mut b);
        u64::from_le_bytes(b)
    }
}

/// The operating system's generator.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemRandom;

impl Random for SystemRandom {
    fn fill(&self, buf: &mut [u8]) {
        #[expect(clippy::disallowed_methods, reason = "the one place that reaches the real generator")]
        rand::rng().fill_bytes(buf);
    }
}

/// A deterministic generator for tests.
pub struct SeededRandom(Mutex<Box<dyn Rng + Send>>);

impl SeededRandom {
    pub fn new(rng: impl Rng + Send + 'static) -> Self {
        Self(Mutex::new(Box::new(rng)))
    }
}

impl Random for SeededRandom {
    fn fill(&self, buf: &mut [u8]) {
        // A poisoned lock only means another test thread panicked; the generator itself is still usable.
        let mut rng = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        rng.fill_bytes(buf);
    }
}

/// 256-bit secret token, URL-safe base64 (cookies, links, API keys).
pub fn random_token(r: &dyn Random) -> String {
    let mut b = [0u8; 32];
    r.fill(&mut b);
    URL_SAFE_NO_PAD.encode(b)
}

/// 128-bit identifier in hex (rows that are not secret).
pub fn random_id(r: &dyn Random) -> String {
    let mut b = [0u8; 16];
    r.fill(&mut b);
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// A decimal flow-session id like the product's `703084279749574292`.
pub fn random_decimal_id(r: &dyn Random) -> String {
    (r.next_u64() >> 1).to_string()
}

/// A number drawn uniformly from `0..bound` (rejection sampling, no modulo bias); 0 for a bound of 0.
pub fn random_below(r: &dyn Random, bound: u64) -> u64 {
    if bound == 0 {
        return 0;
    }
    let zone = u64::MAX - (u64::MAX % bound);
    loop {
        let v = r.next_u64();
        if v < zone {
            return v % bound;
        }
    }
}

/// `length` characters drawn uniformly from `alphabet` (rejection sampling, no modulo bias).
pub fn random_code(r: &dyn Random, alphabet: &[char], length: usize) -> String {
    let n = alphabet.len().max(1);
    // Largest multiple of n that fits in a byte; bytes at or above it are drawn again.
    let limit = 256 - (256 % n);
    let mut out = String::with_capacity(length);
    let mut byte = [0u8; 1];
    while out.chars().count() < length {
        r.fill(&mut byte);
        let v = usize::from(byte[0]);
        if v < limit {
            out.push(alphabet[v % n]);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;

    use super::*;

    fn seeded() -> SeededRandom {
        SeededRandom::new(rand_chacha::ChaCha20Rng::seed_from_u64(7))
    }

    #[test]
    fn codes_use_only_the_alphabet_and_are_uniform() {
        let r = seeded();
        let digits: Vec<char> = "0123456789".chars().collect();
        let mut counts = [0usize; 10];
        for _ in 0..2000 {
            let code = random_code(&r, &digits, 8);
            assert_eq!(code.len(), 8);
            for c in code.chars() {
                counts[c.to_digit(10).map_or(0, |d| d as usize)] += 1;
            }
        }
        // 16000 draws, 1600 expected per digit; a biased sampler would skew the low digits by ~2.5%.
        assert!(counts.iter().all(|&c| (1450..1750).contains(&c)), "{counts:?}");
    }

    #[test]
    fn the_same_seed_gives_the_same_values() {
        assert_eq!(random_token(&seeded()), random_token(&seeded()));
        assert_ne!(random_token(&seeded()), random_token(&SystemRandom));
        assert_eq!(random_token(&seeded()).len(), 43);
        assert!(!random_decimal_id(&seeded()).starts_with('-'));
    }
}
