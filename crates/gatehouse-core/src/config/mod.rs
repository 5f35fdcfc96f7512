//! Typed configuration: one TOML file layered with `GATEHOUSE_…` environment variables.
//!
//! Every section rejects unknown keys; `Config::validate` checks cross-references and value ranges and reports
//! the key path of the first problem, `Config::security_findings` lists risky-but-valid choices.

mod findings;
mod load;
mod mask;
mod registration;
mod registration_checks;
mod sections;
mod steps;
mod validate;

pub use findings::{Finding, Severity};
pub use load::{ConfigError, ConfigSource, DEMO_CONFIG, Shown, load, show};
pub use mask::masked;
pub use registration::*;
pub use sections::*;
pub use steps::*;
