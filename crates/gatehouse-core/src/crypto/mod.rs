//! Secrets: the server key (keyed hashes, sealed envelopes) and password hashing.

mod key;
mod passwords;
pub mod totp;

pub use key::{KeyError, ServerKey};
pub use passwords::{HashError, HashParams, PasswordHashing, Passwords, Verification};
