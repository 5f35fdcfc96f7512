//! The flow engine: a flow is an id, a kind and an ordered list of configured steps; each call is handled by
//! the current step, non-interactive steps run as soon as they are reached, and everything a call changes is
//! returned as effects that the store writes in one transaction with the session. Every flow kind runs here.

mod app_factor;
pub mod codes;
mod completion;
pub mod continuation;
mod engine;
pub mod factor;
pub mod kind;
pub mod restrictions;
pub mod session;
mod steps;

pub use app_factor::OFFLINE_KEY_CONTEXT;
pub use codes::{ErrorCode, FlowError, NextStep, Outcome};
pub use completion::SESSION_TOKEN_PURPOSE;
pub use engine::{Action, EngineError, FlowDeps, Seed, Turn, fits, handle, start, start_seeded};
pub use kind::FlowKind;
pub use steps::{TOTP_SEAL_CONTEXT, allowed_kinds};
