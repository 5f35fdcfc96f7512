//! The flow engine: a flow is an ordered list of configured steps; each call is handled by the current step,
//! non-interactive steps run as soon as they are reached, and everything a call changes is returned as effects
//! that the store writes in one transaction with the session.

mod app_factor;
pub mod auth;
pub mod codes;
mod engine;
pub mod factor;
pub mod restrictions;
pub mod session;
mod steps;

pub use codes::{ErrorCode, FlowError, NextStep, Outcome};
pub use engine::{Action, EngineError, FlowDeps, Turn, handle, start};
