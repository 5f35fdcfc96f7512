//! Generated usernames: a UUID, or random characters from a small pattern language — literals, character
//! classes with ranges (`[A-Z0-9]`) and counts (`{6}`), `\` escaping a character.

use crate::config::UsernameGenerator;
use crate::random::{Random, random_below};

#[derive(Debug, Clone, PartialEq, Eq)]
struct Part {
    chars: Vec<char>,
    count: usize,
}

/// The longest name a pattern may produce.
const MAX_LENGTH: usize = 128;

/// Parses a pattern; the error says what is wrong.
fn parse(pattern: &str) -> Result<Vec<Part>, String> {
    let mut parts = Vec::new();
    let mut it = pattern.chars().peekable();
    while let Some(c) = it.next() {
        let chars = match c {
            '[' => {
                let mut set = Vec::new();
                loop {
                    let c = it.next().ok_or("unclosed `[`")?;
                    if c == ']' {
                        break;
                    }
                    let c = if c == '\\' { it.next().ok_or("`\\` at the end")? } else { c };
                    if it.peek() == Some(&'-') {
                        it.next();
                        let end = it.next().ok_or("unclosed range")?;
                        if end < c {
                            return Err(format!("range `{c}-{end}` is backwards"));
                        }
                        set.extend(c..=end);
                    } else {
                        set.push(c);
                    }
                }
                set.sort_unstable();
                set.dedup();
                if set.is_empty() {
                    return Err("empty class `[]`".into());
                }
                set
            }
            '\\' => vec![it.next().ok_or("`\\` at the end")?],
            '{' | '}' | ']' => return Err(format!("unexpected `{c}`")),
            c => vec![c],
        };
        let mut count = 1;
        if it.peek() == Some(&'{') {
            it.next();
            let digits: String = it.by_ref().take_while(|c| *c != '}').collect();
            count = digits.parse::<usize>().map_err(|_| format!("`{{{digits}}}` is not a count"))?;
        }
        parts.push(Part { chars, count });
    }
    let length: usize = parts.iter().map(|p| p.count).sum();
    if length == 0 || length > MAX_LENGTH {
        return Err(format!("must produce 1–{MAX_LENGTH} characters"));
    }
    Ok(parts)
}

/// Bits of randomness in a name the pattern produces (how hard generated names are to guess).
pub fn entropy_bits(generator: &UsernameGenerator) -> Result<f64, String> {
    match generator {
        UsernameGenerator::Uuid => Ok(122.0),
        UsernameGenerator::Pattern { pattern } => {
            let parts = parse(pattern)?;
            #[expect(clippy::cast_precision_loss, reason = "an estimate; classes hold far fewer than 2^52 characters")]
            Ok(parts.iter().map(|p| p.count as f64 * (p.chars.len() as f64).log2()).sum())
        }
    }
}

/// Checks a generator's pattern.
pub fn check(generator: &UsernameGenerator) -> Result<(), String> {
    entropy_bits(generator).map(|_| ())
}

/// A new name; `None` only for a pattern `check` refuses.
pub fn generate(generator: &UsernameGenerator, random: &dyn Random) -> Option<String> {
    match generator {
        UsernameGenerator::Uuid => {
            let mut bytes = [0u8; 16];
            random.fill(&mut bytes);
            Some(uuid::Builder::from_random_bytes(bytes).into_uuid().hyphenated().to_string())
        }
        UsernameGenerator::Pattern { pattern } => {
            let parts = parse(pattern).ok()?;
            let mut name = String::new();
            for part in &parts {
                for _ in 0..part.count {
                    let i = random_below(random, part.chars.len() as u64);
                    name.push(part.chars[usize::try_from(i).unwrap_or(0)]);
                }
            }
            Some(name)
        }
    }
}

#[cfg(test)]
mod tests {
    use rand_chacha::ChaCha20Rng;
    use rand_chacha::rand_core::SeedableRng;

    use super::*;
    use crate::random::SeededRandom;

    fn pattern(p: &str) -> UsernameGenerator {
        UsernameGenerator::Pattern { pattern: p.into() }
    }

    #[test]
    fn names_follow_the_pattern() {
        let random = SeededRandom::new(ChaCha20Rng::seed_from_u64(1));
        for _ in 0..50 {
            let name = generate(&pattern("[A-Z]{2}-[0-9]{6}"), &random).unwrap();
            let chars: Vec<char> = name.chars().collect();
            assert_eq!(chars.len(), 9, "{name}");
            assert!(chars[..2].iter().all(char::is_ascii_uppercase), "{name}");
            assert_eq!(chars[2], '-');
            assert!(chars[3..].iter().all(char::is_ascii_digit), "{name}");
        }
        let uuid = generate(&UsernameGenerator::Uuid, &random).unwrap();
        assert_eq!(uuid.len(), 36);
        assert_eq!(uuid.chars().nth(14), Some('4'), "version 4");
    }

    #[test]
    fn entropy_and_bad_patterns() {
        let bits = entropy_bits(&pattern("[A-Z]{2}[0-9]{6}")).unwrap();
        assert!((bits - (2.0 * 26f64.log2() + 6.0 * 10f64.log2())).abs() < 1e-9);
        assert_eq!(entropy_bits(&pattern("u\\[x")).unwrap(), 0.0);
        for bad in ["[A-Z", "[]", "[Z-A]", "x{a}", "}", "", "x{0}", "[a]{200}"] {
            assert!(check(&pattern(bad)).is_err(), "{bad}");
        }
    }
}
