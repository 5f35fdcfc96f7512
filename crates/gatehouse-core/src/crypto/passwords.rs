use argon2::password_hash::PasswordVerifier as _;
use argon2::password_hash::phc::{Output, ParamsString, PasswordHash, Salt};
use std::cell::RefCell;

use argon2::{Algorithm, Argon2, Block, Params, Version};
use async_trait::async_trait;
use subtle::ConstantTimeEq as _;

use crate::config::HashingConfig;

#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum HashError {
    /// Every hashing worker is busy and the queue is full: answer 503 and let the client retry.
    #[error("password hashing is overloaded")]
    Overloaded,
    #[error("stored password hash is not a supported PHC/MCF string: {0}")]
    UnsupportedHash(String),
    #[error("password hashing failed: {0}")]
    Internal(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HashParams {
    pub memory_kib: u32,
    pub iterations: u32,
    pub parallelism: u32,
}

impl From<&HashingConfig> for HashParams {
    fn from(c: &HashingConfig) -> Self {
        Self { memory_kib: c.memory_kib, iterations: c.iterations, parallelism: c.parallelism }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verification {
    pub matches: bool,
    /// The hash uses another scheme or other parameters than new hashes: store a fresh one.
    pub needs_rehash: bool,
}

/// Hashing as the flows see it. Implementations may run on a bounded pool and answer `Overloaded`.
#[async_trait]
pub trait PasswordHashing: Send + Sync {
    async fn hash(&self, password: String) -> Result<String, HashError>;
    async fn verify(&self, password: String, phc: String) -> Result<Verification, HashError>;
    /// Burns the time of one verification, for users that do not exist.
    async fn verify_dummy(&self, password: String) -> Result<(), HashError>;
}

/// Argon2id for new hashes; argon2 (any variant), PBKDF2 (PHC) and bcrypt (MCF) accepted for verification.
#[derive(Clone)]
pub struct Passwords {
    params: HashParams,
    argon2: Argon2<'static>,
    dummy: String,
}

impl Passwords {
    pub fn new(params: HashParams) -> Result<Self, HashError> {
        let p = Params::new(params.memory_kib, params.iterations, params.parallelism, None)
            .map_err(|e| HashError::Internal(e.to_string()))?;
        let argon2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, p);
        let mut this = Self { params, argon2, dummy: String::new() };
        // Built once, on whatever thread starts the server: working memory that thread did not hold before goes
        // back at once, or it would stay with a thread that never hashes again (19 MiB of an idle server's RSS).
        let held_before = holds_working_memory();
        this.dummy = this.hash("gatehouse dummy password")?;
        if !held_before {
            release_working_memory();
        }
        Ok(this)
    }

    /// The dummy hash unknown names are checked against (its shape is what they cost).
    pub fn dummy(&self) -> &str {
        &self.dummy
    }

    pub fn params(&self) -> HashParams {
        self.params
    }

    /// A new argon2id hash with the configured parameters and a fresh 16-byte salt, computed in this thread's
    /// reused working memory like every check.
    pub fn hash(&self, password: &str) -> Result<String, HashError> {
        let internal = |e: &dyn std::fmt::Display| HashError::Internal(e.to_string());
        let salt = argon2::password_hash::try_generate_salt().map_err(|e| internal(&e))?;
        let salt = Salt::new(&salt).map_err(|e| internal(&e))?;
        let mut out = [0u8; Params::DEFAULT_OUTPUT_LEN];
        let params = self.argon2.params();
        with_working_memory(params.block_count(), |blocks| {
            self.argon2.hash_password_into_with_memory(password.as_bytes(), &salt, &mut out, blocks)
        })
        .map_err(|e| internal(&e))?;
        let phc = PasswordHash {
            algorithm: Algorithm::Argon2id.ident(),
            version: Some(Version::V0x13.into()),
            params: ParamsString::try_from(params).map_err(|e| internal(&e))?,
            salt: Some(salt),
            hash: Some(Output::new(&out).map_err(|e| internal(&e))?),
        };
        Ok(phc.to_string())
    }

    pub fn verify(&self, password: &str, stored: &str) -> Result<Verification, HashError> {
        if stored.starts_with("$2a$")
            || stored.starts_with("$2b$")
            || stored.starts_with("$2y$")
            || stored.starts_with("$2x$")
        {
            let matches = bcrypt::verify(password, stored).map_err(|e| HashError::UnsupportedHash(e.to_string()))?;
            return Ok(Verification { matches, needs_rehash: true });
        }
        let parsed = PasswordHash::new(stored).map_err(|e| HashError::UnsupportedHash(e.to_string()))?;
        let algorithm = parsed.algorithm.as_str().to_owned();
        let matches = if algorithm.starts_with("argon2") {
            verify_argon2(password.as_bytes(), &parsed)?
        } else if algorithm.starts_with("pbkdf2") {
            pbkdf2::Pbkdf2::default().verify_password(password.as_bytes(), &parsed).is_ok()
        } else {
            return Err(HashError::UnsupportedHash(format!("algorithm `{algorithm}`")));
        };
        Ok(Verification { matches, needs_rehash: self.is_outdated(&parsed) })
    }

    pub fn verify_dummy(&self, password: &str) {
        let _ = self.verify(password, &self.dummy);
    }

    fn is_outdated(&self, parsed: &PasswordHash) -> bool {
        if parsed.algorithm.as_str() != "argon2id" || parsed.version != Some(0x13) {
            return true;
        }
        match Params::try_from(parsed) {
            Ok(p) => {
                p.m_cost() != self.params.memory_kib
                    || p.t_cost() != self.params.iterations
                    || p.p_cost() != self.params.parallelism
            }
            Err(_) => true,
        }
    }
}

thread_local! {
    /// This thread's argon2 working memory, kept from one check to the next (and only ever grown): a hashing
    /// thread allocates its 19 MiB once, instead of allocating, zeroing and freeing them for every login — work
    /// that costs time and leaves the allocator holding memory it never gives back.
    static BLOCKS: RefCell<Vec<Block>> = const { RefCell::new(Vec::new()) };
}

/// How many blocks a thread reserves at least: just over 32 MiB of address space, of which only the blocks a hash
/// needs are ever touched (and so resident). glibc serves an allocation that large from a mapping of its own and
/// unmaps it when freed; a 19 MiB one it would serve from its arenas once a freed block of that size had raised
/// its dynamic mmap threshold, and keep there after [`release_working_memory`].
const BLOCKS_RESERVED: usize = (32 << 20) / Block::SIZE + 64;

/// Frees this thread's argon2 working memory, if it holds any; the next check allocates it again. A hashing
/// thread calls this once it has been idle a while, so that memory taken by a burst of logins goes back to the
/// system instead of staying with an idle server. Returns whether there was anything to free.
pub fn release_working_memory() -> bool {
    BLOCKS.with(|cell| {
        let mut blocks = cell.borrow_mut();
        let held = blocks.capacity() > 0;
        *blocks = Vec::new();
        held
    })
}

/// Whether this thread holds argon2 working memory now.
fn holds_working_memory() -> bool {
    BLOCKS.with(|cell| cell.borrow().capacity() > 0)
}

/// Checks `password` against an argon2 PHC hash (any variant and version) in this thread's reused memory.
fn verify_argon2(password: &[u8], parsed: &PasswordHash) -> Result<bool, HashError> {
    let unsupported = |e: &dyn std::fmt::Display| HashError::UnsupportedHash(e.to_string());
    let algorithm = Algorithm::try_from(parsed.algorithm.as_str()).map_err(|e| unsupported(&e))?;
    let version = parsed.version.map(Version::try_from).transpose().map_err(|e| unsupported(&e))?.unwrap_or_default();
    let params = Params::try_from(parsed).map_err(|e| unsupported(&e))?;
    let (Some(salt), Some(expected)) = (&parsed.salt, &parsed.hash) else {
        return Err(HashError::UnsupportedHash("argon2 hash without salt or output".into()));
    };
    let expected = expected.as_bytes();
    let mut buffer = [0u8; 128];
    let out = buffer.get_mut(..expected.len()).ok_or_else(|| HashError::UnsupportedHash("output too long".into()))?;
    let argon2 = Argon2::new(algorithm, version, params.clone());
    with_working_memory(params.block_count(), |blocks| {
        argon2.hash_password_into_with_memory(password, salt, out, blocks)
    })
    .map_err(|e| unsupported(&e))?;
    Ok(bool::from(out.ct_eq(expected)))
}

/// Runs `f` on `needed` blocks of this thread's argon2 working memory, growing it first if it is smaller.
fn with_working_memory<T>(needed: usize, f: impl FnOnce(&mut [Block]) -> T) -> T {
    BLOCKS.with(|cell| {
        let mut blocks = cell.borrow_mut();
        if blocks.capacity() < needed {
            *blocks = Vec::with_capacity(needed.max(BLOCKS_RESERVED));
        }
        if blocks.len() < needed {
            blocks.resize(needed, Block::new());
        }
        f(&mut blocks[..needed])
    })
}

/// Runs inline on the calling task: for the CLI and tests, not for the server (which uses a pool).
#[async_trait]
impl PasswordHashing for Passwords {
    async fn hash(&self, password: String) -> Result<String, HashError> {
        Passwords::hash(self, &password)
    }

    async fn verify(&self, password: String, phc: String) -> Result<Verification, HashError> {
        Passwords::verify(self, &password, &phc)
    }

    async fn verify_dummy(&self, password: String) -> Result<(), HashError> {
        Passwords::verify_dummy(self, &password);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use argon2::password_hash::PasswordHasher as _;

    fn fast() -> Passwords {
        Passwords::new(HashParams { memory_kib: 1024, iterations: 1, parallelism: 1 }).unwrap()
    }

    #[test]
    fn building_the_dummy_hash_keeps_no_working_memory_on_the_building_thread() {
        let fresh = std::thread::spawn(|| {
            let _p = fast();
            holds_working_memory()
        });
        assert!(!fresh.join().unwrap(), "a thread that held no working memory holds none after new()");
        let hashing = std::thread::spawn(|| {
            let p = fast();
            p.hash("warm").unwrap();
            let _q = fast();
            holds_working_memory()
        });
        assert!(hashing.join().unwrap(), "a thread that hashes keeps its memory");
    }

    #[test]
    fn new_hashes_are_argon2id_with_the_configured_parameters() {
        let p = fast();
        let h = p.hash("s3cret pass").unwrap();
        assert!(h.starts_with("$argon2id$v=19$m=1024,t=1,p=1$"), "{h}");
        assert_eq!(p.verify("s3cret pass", &h).unwrap(), Verification { matches: true, needs_rehash: false });
        assert_eq!(p.verify("s3cret pasS", &h).unwrap(), Verification { matches: false, needs_rehash: false });
    }

    #[test]
    fn new_hashes_are_what_the_argon2_crate_computes_itself() {
        let p = fast();
        let h = p.hash("s3cret pass").unwrap();
        let parsed = PasswordHash::new(&h).unwrap();
        assert_eq!(parsed.salt.map(|s| s.len()), Some(16));
        assert!(Argon2::default().verify_password(b"s3cret pass", &parsed).is_ok());
        assert!(Argon2::default().verify_password(b"s3cret pasS", &parsed).is_err());
        assert_ne!(p.hash("s3cret pass").unwrap(), h, "every hash has its own salt");
    }

    #[test]
    fn released_working_memory_is_taken_again_by_the_next_check() {
        let p = fast();
        // Each test runs on a thread of its own: `new` hashed its dummy password here and gave the memory back.
        assert!(!release_working_memory(), "the dummy hash keeps no memory");
        let h = p.hash("pw").unwrap();
        assert!(release_working_memory(), "a new hash uses the same kept memory as a check");
        assert!(!release_working_memory());
        assert!(p.verify("pw", &h).unwrap().matches);
        assert!(release_working_memory(), "a check keeps its memory for the next one");
        assert!(!release_working_memory(), "released memory is gone");
        assert!(p.verify("pw", &h).unwrap().matches);
        assert!(!p.verify("px", &h).unwrap().matches);
        assert!(release_working_memory());
    }

    #[test]
    fn other_parameters_need_a_rehash() {
        let old = Passwords::new(HashParams { memory_kib: 2048, iterations: 1, parallelism: 1 }).unwrap();
        let h = old.hash("pw").unwrap();
        assert_eq!(fast().verify("pw", &h).unwrap(), Verification { matches: true, needs_rehash: true });
    }

    #[test]
    fn imported_bcrypt_and_pbkdf2_hashes_verify_and_need_a_rehash() {
        let b = bcrypt::hash("imported", 4).unwrap();
        assert_eq!(fast().verify("imported", &b).unwrap(), Verification { matches: true, needs_rehash: true });
        assert!(!fast().verify("wrong", &b).unwrap().matches);
        let k = pbkdf2::Pbkdf2::new(
            pbkdf2::Algorithm::Pbkdf2Sha256,
            pbkdf2::Params::new_with_output_len(1000, 32).unwrap(),
        )
        .hash_password_with_salt(b"imported", b"saltsaltsalt")
        .unwrap()
        .to_string();
        assert!(k.starts_with("$pbkdf2-sha256$"), "{k}");
        assert_eq!(fast().verify("imported", &k).unwrap(), Verification { matches: true, needs_rehash: true });
        assert!(!fast().verify("wrong", &k).unwrap().matches);
    }

    #[test]
    fn garbage_hashes_are_an_error_not_a_match() {
        assert!(matches!(fast().verify("pw", "plaintext"), Err(HashError::UnsupportedHash(_))));
        assert!(matches!(fast().verify("pw", "$md5$abc"), Err(HashError::UnsupportedHash(_))));
    }
}
