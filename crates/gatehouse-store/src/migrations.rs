use std::borrow::Cow;

use sqlx::SqlSafeStr as _;
use sqlx::migrate::{Migration, MigrationType, Migrator};

/// Migrations are embedded per backend (`migrations/<backend>/<NNNN>_<name>.sql`); they are applied on start
/// and by `gatehouse migrate`.
macro_rules! migrations {
    ($backend:literal: $($version:literal $file:literal $name:literal),+ $(,)?) => {
        vec![$(Migration::new(
            $version,
            Cow::Borrowed($name),
            MigrationType::Simple,
            include_str!(concat!("../migrations/", $backend, "/", $file, "_", $name, ".sql")).into_sql_str(),
            false,
        )),+]
    };
}

pub(crate) fn sqlite() -> Migrator {
    Migrator::with_migrations(
        migrations!("sqlite": 1 "0001" "init", 2 "0002" "authentication", 3 "0003" "authenticator", 4 "0004" "self_service", 5 "0005" "step_up", 6 "0006" "rate_limits", 7 "0007" "pending_attempts", 8 "0008" "public_throttle", 9 "0009" "housekeeping", 10 "0010" "key_fingerprint", 11 "0011" "self_registration", 12 "0012" "applications", 13 "0013" "application_details", 14 "0014" "login_lookups"),
    )
}

pub(crate) fn postgres() -> Migrator {
    Migrator::with_migrations(
        migrations!("postgres": 1 "0001" "init", 2 "0002" "authentication", 3 "0003" "authenticator", 4 "0004" "self_service", 5 "0005" "step_up", 6 "0006" "rate_limits", 7 "0007" "pending_attempts", 8 "0008" "public_throttle", 9 "0009" "housekeeping", 10 "0010" "key_fingerprint", 11 "0011" "self_registration", 12 "0012" "applications", 13 "0013" "application_details", 14 "0014" "login_lookups"),
    )
}

/// The migration versions this build knows, for the backend of `url`.
pub(crate) fn known(sqlite: bool) -> Vec<i64> {
    let migrator = if sqlite { self::sqlite() } else { self::postgres() };
    migrator.iter().map(|m| m.version).collect()
}
