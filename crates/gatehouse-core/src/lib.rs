//! Gatehouse domain: configuration, users, lockout, password policy, OTPs and the flow engine.
//!
//! Nothing in here knows about HTTP or SQL; the outside is reached through the traits in [`ports`],
//! time through [`clock::Clock`] and randomness through [`random::Random`].

pub mod admin;
pub mod applications;
pub mod audit;
pub mod authenticator;
pub mod authenticator_service;
pub mod clock;
pub mod config;
pub mod crypto;
pub mod flow;
pub mod messages;
pub mod outbox;
pub mod password_policy;
pub mod ports;
pub mod protected;
pub mod random;
pub mod registration;
pub mod secret_answers;
pub mod user;
