//! Storage for Gatehouse: one implementation of [`gatehouse_core::ports::Store`] per backend (SQLite, the
//! embedded default, and PostgreSQL), written once. Both backends run the same SQL: timestamps are integer
//! milliseconds, JSON is text, placeholders are `$N` (which SQLite binds by number too), and every limit is
//! checked and updated in a single statement.

mod group_commit;
mod migrations;
mod open;
mod rows;
mod sql;
#[cfg(test)]
mod test_postgres;

pub use open::{Backend, MigrationStatus, OpenOptions, migration_status, open, redact_url, sqlite_build_costs};
