//! The integration tests: real servers on ephemeral loopback ports, driven over HTTP, on SQLite and on
//! PostgreSQL (`GATEHOUSE_TEST_POSTGRES_URL`, default `postgres://postgres@127.0.0.1:5432/test`; every test
//! runs in a schema of its own).
#![expect(clippy::unwrap_used, clippy::expect_used, clippy::panic, reason = "tests fail loudly")]

mod harness;

mod admin_api;
mod audit;
mod authenticator;
mod bad_input;
mod cli;
mod concurrency;
mod cookies;
mod counting;
mod engine;
mod enumeration;
mod failures;
mod flows;
mod hang_ups;
mod login;
mod messages;
mod metrics;
mod openapi;
mod password_policy;
mod rate_limits;
mod registration;
mod relying_app;
mod reset_flow;
mod restart;
mod second_factor;
mod secrets;
mod self_unlock;
mod smtp;
mod started_flows;
mod stealth;
mod store_conformance;
mod third_party;
mod ui;
