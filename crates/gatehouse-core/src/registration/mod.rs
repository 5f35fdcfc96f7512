//! Self-registration's pure parts: data item validation, the proof-of-work CAPTCHA and username generation.
//! The steps that use them live with the other steps (`flow::steps`).

pub mod captcha;
pub mod items;
pub mod username;
