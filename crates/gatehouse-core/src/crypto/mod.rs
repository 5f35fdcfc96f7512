//! Secrets: the server key (keyed hashes, sealed envelopes) and password hashing.

mod key;
mod passwords;
pub mod totp;
mod verify_floor;

pub use key::{KeyError, ServerKey};
pub use passwords::{HashError, HashParams, PasswordHashing, Passwords, Verification, release_working_memory};
pub use verify_floor::{VerifyFloor, shape_of};
