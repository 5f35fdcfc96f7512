//! TOTP (RFC 6238) as authenticator apps implement it, with the step of a matching code so that the caller
//! can refuse a replay.

use subtle::ConstantTimeEq;
use totp_rs::{Algorithm, Builder, Totp};

use crate::clock::Millis;
use crate::config::{TotpAlgorithm, TotpConfig};
use crate::random::Random;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TotpError {
    #[error("invalid TOTP parameters: {0}")]
    Invalid(String),
    #[error("cannot draw the QR code: {0}")]
    Qr(String),
}

/// A new 160-bit secret (the size RFC 4226 recommends and every app accepts).
pub fn new_secret(random: &dyn Random) -> Vec<u8> {
    let mut s = vec![0u8; 20];
    random.fill(&mut s);
    s
}

fn totp(config: &TotpConfig, secret: &[u8], account: &str) -> Result<Totp, TotpError> {
    let algorithm = match config.algorithm {
        TotpAlgorithm::Sha1 => Algorithm::SHA1,
        TotpAlgorithm::Sha256 => Algorithm::SHA256,
        TotpAlgorithm::Sha512 => Algorithm::SHA512,
    };
    Builder::new()
        .with_algorithm(algorithm)
        .with_digits(u8::try_from(config.digits).map_err(|e| TotpError::Invalid(e.to_string()))?)
        .with_skew(u16::from(config.skew_steps))
        .with_step_duration(config.period_seconds)
        .with_secret(secret.to_vec())
        .with_issuer(Some(config.issuer.as_str()))
        .with_account_name(account)
        .build()
        .map_err(|e| TotpError::Invalid(e.to_string()))
}

/// `otpauth://totp/Issuer:account?secret=…&issuer=…` for enrollment.
pub fn otpauth_uri(config: &TotpConfig, secret: &[u8], account: &str) -> Result<String, TotpError> {
    totp(config, secret, account)?.to_url().map_err(|e| TotpError::Invalid(e.to_string()))
}

/// The secret as apps want it typed in.
pub fn base32_secret(secret: &[u8]) -> String {
    totp_rs::Secret::from(secret.to_vec()).to_base32()
}

/// The code for the time step containing `at`.
pub fn code_at(config: &TotpConfig, secret: &[u8], at: Millis) -> Result<String, TotpError> {
    let t = u64::try_from(at / 1000).unwrap_or(0);
    Ok(totp(config, secret, "x")?.generate(t).to_string())
}

/// The time step of `code` within the allowed skew around `now`, compared in constant time.
pub fn matching_step(config: &TotpConfig, secret: &[u8], code: &str, now: Millis) -> Result<Option<i64>, TotpError> {
    let t = totp(config, secret, "x")?;
    let period = i64::try_from(config.period_seconds).unwrap_or(30);
    let current = now.div_euclid(1000) / period;
    let skew = i64::from(config.skew_steps);
    let code = code.trim();
    let mut found = None;
    for step in (current - skew)..=(current + skew) {
        let Ok(time) = u64::try_from(step * period) else { continue };
        let expected = t.generate(time).to_string();
        if bool::from(expected.as_bytes().ct_eq(code.as_bytes())) {
            found = Some(step);
        }
    }
    Ok(found)
}

/// The URI as a QR code, SVG.
pub fn qr_svg(uri: &str) -> Result<String, TotpError> {
    let code = qrcode::QrCode::new(uri.as_bytes()).map_err(|e| TotpError::Qr(e.to_string()))?;
    Ok(code.render::<qrcode::render::svg::Color<'_>>().min_dimensions(200, 200).build())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(algorithm: TotpAlgorithm, digits: usize) -> TotpConfig {
        TotpConfig { algorithm, digits, ..TotpConfig::default() }
    }

    /// RFC 6238 appendix B, with the seeds of the RFC's reference implementation.
    #[test]
    fn rfc_6238_test_vectors() {
        let sha1 = b"12345678901234567890".to_vec();
        let sha256 = b"12345678901234567890123456789012".to_vec();
        let sha512 = b"1234567890123456789012345678901234567890123456789012345678901234".to_vec();
        let vectors: [(i64, &str, &str, &str); 6] = [
            (59, "94287082", "46119246", "90693936"),
            (1_111_111_109, "07081804", "68084774", "25091201"),
            (1_111_111_111, "14050471", "67062674", "99943326"),
            (1_234_567_890, "89005924", "91819424", "93441116"),
            (2_000_000_000, "69279037", "90698825", "38618901"),
            (20_000_000_000, "65353130", "77737706", "47863826"),
        ];
        for (t, c1, c256, c512) in vectors {
            let at = t * 1000;
            assert_eq!(code_at(&config(TotpAlgorithm::Sha1, 8), &sha1, at).unwrap(), c1, "SHA1 T={t}");
            assert_eq!(code_at(&config(TotpAlgorithm::Sha256, 8), &sha256, at).unwrap(), c256, "SHA256 T={t}");
            assert_eq!(code_at(&config(TotpAlgorithm::Sha512, 8), &sha512, at).unwrap(), c512, "SHA512 T={t}");
        }
    }

    #[test]
    fn matching_step_honours_the_skew_window() {
        let c = TotpConfig::default();
        let secret = b"12345678901234567890".to_vec();
        let now = 1_234_567_890_000;
        let step = now / 1000 / 30;
        for offset in [-1i64, 0, 1] {
            let code = code_at(&c, &secret, now + offset * 30_000).unwrap();
            assert_eq!(matching_step(&c, &secret, &code, now).unwrap(), Some(step + offset));
        }
        let far = code_at(&c, &secret, now + 90_000).unwrap();
        assert_eq!(matching_step(&c, &secret, &far, now).unwrap(), None);
        assert_eq!(matching_step(&c, &secret, "12345", now).unwrap(), None);
    }

    #[test]
    fn enrollment_uri_and_qr() {
        let c = TotpConfig::default();
        let secret = b"12345678901234567890".to_vec();
        let uri = otpauth_uri(&c, &secret, "jdoe").unwrap();
        assert!(uri.starts_with("otpauth://totp/Gatehouse:jdoe?"), "{uri}");
        assert!(uri.contains("secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"), "{uri}");
        let svg = qr_svg(&uri).unwrap();
        assert!(svg.starts_with("<?xml") && svg.contains("<svg"), "{}", &svg[..60]);
    }
}
