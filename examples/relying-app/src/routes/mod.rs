//! The pages, one file per part of the application.

pub mod account;
pub mod home;
pub mod login;
pub mod signup;
pub mod two_step;
