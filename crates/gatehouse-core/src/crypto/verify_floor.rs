//! One time for every password check. A user whose hash was imported (bcrypt, PBKDF2, an older argon2) is
//! verified at that hash's own cost, which may be far above the dummy check an unknown name gets; the time
//! would tell the two apart. So every check — real or dummy — is padded to the slowest kind of hash seen
//! lately (a moving average per scheme and parameters), up to a cap. The padding is a wait, not work.

use std::collections::HashMap;
use std::sync::Mutex;

/// Weight of a new sample in a scheme's moving average.
const WEIGHT: f64 = 0.2;

/// The scheme and parameters of a stored hash, without salt and digest: `$2b$12`, `$argon2id$v=19$m=19456,t=2,p=1`.
pub fn shape_of(stored: &str) -> String {
    let parts: Vec<&str> = stored.split('$').collect();
    // bcrypt (MCF): $2b$<cost>$<salt+digest>; PHC: $<alg>[$v=..][$params]$<salt>$<digest>.
    let keep = if stored.starts_with("$2") { 3 } else { parts.len().saturating_sub(2).max(2) };
    parts.into_iter().take(keep).collect::<Vec<_>>().join("$")
}

/// The moving average of check times per hash shape, and the time every check is padded to.
#[derive(Debug)]
pub struct VerifyFloor {
    cap_ms: f64,
    averages: Mutex<HashMap<String, f64>>,
}

impl VerifyFloor {
    /// `cap_ms` bounds the padding (0 turns it off), so one pathological imported hash cannot slow every login
    /// without limit.
    pub fn new(cap_ms: u64) -> Self {
        Self { cap_ms: cap_ms as f64, averages: Mutex::new(HashMap::new()) }
    }

    /// Records that a check of a hash of `shape` took `ms`, and returns how long to wait afterwards so that it
    /// takes as long as the slowest shape's average.
    pub fn record(&self, shape: &str, ms: f64) -> f64 {
        if self.cap_ms <= 0.0 {
            return 0.0;
        }
        let Ok(mut averages) = self.averages.lock() else { return 0.0 };
        let average = averages.entry(shape.to_owned()).or_insert(ms);
        *average += WEIGHT * (ms - *average);
        let slowest = averages.values().copied().fold(0.0, f64::max).min(self.cap_ms);
        (slowest - ms).max(0.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes_keep_scheme_and_parameters_only() {
        let argon = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$ZGlnZXN0ZGlnZXN0";
        assert_eq!(shape_of(argon), "$argon2id$v=19$m=19456,t=2,p=1");
        let bcrypt = "$2b$12$R9h/cIPz0gi.URNNX3kh2OPST9/PgBkqquzi.Ss7KIUgO2t0jWMUW";
        assert_eq!(shape_of(bcrypt), "$2b$12");
        assert_eq!(shape_of("$pbkdf2-sha256$i=600000,l=32$c2FsdA$ZGln"), "$pbkdf2-sha256$i=600000,l=32");
        assert_eq!(shape_of("garbage"), "garbage");
    }

    #[test]
    fn every_check_waits_for_the_slowest_shape_up_to_the_cap() {
        let floor = VerifyFloor::new(500);
        assert_eq!(floor.record("argon", 10.0), 0.0, "nothing slower seen yet");
        assert_eq!(floor.record("bcrypt", 100.0), 0.0);
        // An unknown name's dummy check (argon) now waits as long as a bcrypt user's check takes.
        assert_eq!(floor.record("argon", 10.0), 90.0);
        // Averages move slowly: one fast bcrypt check does not lower the floor much.
        floor.record("bcrypt", 50.0);
        assert_eq!(floor.record("argon", 10.0), 80.0);
        // A pathological hash is waited for only up to the cap.
        floor.record("pbkdf2-huge", 5000.0);
        assert_eq!(floor.record("argon", 10.0), 490.0);
        assert_eq!(VerifyFloor::new(0).record("argon", 10.0), 0.0, "0 turns padding off");
    }
}
