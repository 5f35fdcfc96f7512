use std::borrow::Cow;

use sqlx::SqlSafeStr as _;
use sqlx::migrate::{Migrate, MigrateError, Migration, MigrationType, Migrator};

/// Migrations are embedded per backend (`migrations/<backend>/<NNNN>_<name>.sql`); they are applied on start
/// and by `gatehouse migrate`, each in a transaction of the migrator's unless it is listed with `own_tx`: such a
/// migration opens its own, because what it must set first (SQLite's `PRAGMA foreign_keys`) has no effect inside
/// one. It must be safe to run again: its changes commit before the migrator records it as applied.
macro_rules! migrations {
    ($backend:literal: $($version:literal $file:literal $name:literal $(own_tx $own:literal)?),+ $(,)?) => {
        vec![$(Migration::new(
            $version,
            Cow::Borrowed($name),
            MigrationType::Simple,
            include_str!(concat!("../migrations/", $backend, "/", $file, "_", $name, ".sql")).into_sql_str(),
            false $(|| $own)?,
        )),+]
    };
}

pub(crate) fn sqlite() -> Migrator {
    Migrator::with_migrations(
        migrations!("sqlite": 1 "0001" "init", 2 "0002" "authentication", 3 "0003" "authenticator", 4 "0004" "self_service", 5 "0005" "step_up", 6 "0006" "rate_limits", 7 "0007" "pending_attempts", 8 "0008" "public_throttle", 9 "0009" "housekeeping", 10 "0010" "key_fingerprint", 11 "0011" "self_registration", 12 "0012" "applications", 13 "0013" "application_details", 14 "0014" "login_lookups", 15 "0015" "logins_by_owner", 16 "0016" "users_by_name" own_tx true, 17 "0017" "names_know_their_neighbours"),
    )
}

pub(crate) fn postgres() -> Migrator {
    Migrator::with_migrations(
        migrations!("postgres": 1 "0001" "init", 2 "0002" "authentication", 3 "0003" "authenticator", 4 "0004" "self_service", 5 "0005" "step_up", 6 "0006" "rate_limits", 7 "0007" "pending_attempts", 8 "0008" "public_throttle", 9 "0009" "housekeeping", 10 "0010" "key_fingerprint", 11 "0011" "self_registration", 12 "0012" "applications", 13 "0013" "application_details", 14 "0014" "login_lookups", 15 "0015" "logins_by_owner", 16 "0016" "names_in_code_point_order", 17 "0017" "names_know_their_neighbours"),
    )
}

/// The migrator's bookkeeping table: sqlx's default name, which `Store::applied_migrations` reads too.
const TABLE: &str = "_sqlx_migrations";

/// Applies the pending migrations one at a time, each announced in the log before it starts and timed after. Some
/// rebuild a table or its indexes, which on a database of millions of users takes a minute or more with those
/// tables locked (docs/architecture.md); a node that says nothing meanwhile looks hung.
pub(crate) async fn apply<DB>(migrator: &Migrator, pool: &sqlx::Pool<DB>) -> Result<(), MigrateError>
where
    DB: sqlx::Database,
    DB::Connection: Migrate,
{
    let applied = {
        let mut conn = pool.acquire().await?;
        conn.ensure_migrations_table(TABLE).await?;
        conn.list_applied_migrations(TABLE).await?
    };
    for m in migrator.iter().filter(|m| applied.iter().all(|a| a.version != m.version)) {
        tracing::info!(version = m.version, name = %m.description, "applying migration");
        let started = std::time::Instant::now();
        // Another node may have applied it meanwhile: then this one waits for the migrator's lock and does nothing.
        migrator.run_to(m.version, pool).await?;
        tracing::info!(version = m.version, seconds = started.elapsed().as_secs_f64(), "migration applied");
    }
    // With nothing to apply, still the migrator's checks: a database migrated by a newer build (a migration this
    // one does not know), or a migration whose file changed after it was applied, stops the node here.
    migrator.run(pool).await
}

/// The migration versions this build knows, for the backend of `url`.
pub(crate) fn known(sqlite: bool) -> Vec<i64> {
    let migrator = if sqlite { self::sqlite() } else { self::postgres() };
    migrator.iter().map(|m| m.version).collect()
}

#[cfg(test)]
mod tests {
    use sqlx::{Connection as _, Executor as _, Row as _};

    /// Applying twice applies nothing the second time; a database that a newer build migrated further is refused,
    /// as `Migrator::run` refused it before migrations were applied one at a time.
    #[tokio::test]
    async fn an_older_build_refuses_a_database_a_newer_one_migrated() {
        let pool = sqlx::sqlite::SqlitePoolOptions::new().max_connections(1).connect("sqlite::memory:").await.unwrap();
        super::apply(&super::sqlite(), &pool).await.unwrap();
        super::apply(&super::sqlite(), &pool).await.unwrap();
        let applied: i64 = sqlx::query_scalar("SELECT count(*) FROM _sqlx_migrations").fetch_one(&pool).await.unwrap();
        assert_eq!(applied, i64::try_from(super::known(true).len()).unwrap());
        sqlx::query(
            "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
             VALUES (9999, 'from a newer build', 1, x'00', 0)",
        )
        .execute(&pool)
        .await
        .unwrap();
        let refused = super::apply(&super::sqlite(), &pool).await.unwrap_err();
        assert!(matches!(refused, sqlx::migrate::MigrateError::VersionMissing(9999)), "{refused}");
    }

    /// Two users as 0014 stored them (login names by user id), with rows of other tables that refer to them.
    const USERS_OF_0014: &str = "\
        INSERT INTO users (id, username, password_hash, created_at, updated_at) VALUES ('u-ann', 'ann', 'h1', 1, 1), ('u-bob', 'bob', NULL, 2, 2); \
        INSERT INTO logins (login, user_id, kind) VALUES ('ann', 'u-ann', 'username'), ('ann@example.test', 'u-ann', 'alias'), \
          ('a@example.test', 'u-ann', 'alias'), ('bob', 'u-bob', 'username'); \
        INSERT INTO failed_attempts (user_id, method, count) VALUES ('u-ann', 'password', 2); \
        INSERT INTO secret_answers (user_id, question, answer_hash, created_at) VALUES ('u-bob', 'pet', 'h2', 3);";

    /// What an upgraded database must hold, on the connection `$conn`: every row kept, login names by owner, each with
    /// the owner's name before it, each user with its aliases, and
    /// deleting a user still takes the rows that refer to it (by username for login names, by id for the rest).
    macro_rules! check_upgraded {
        ($conn:expr) => {{
            let conn = $conn;
            let users: Vec<(String, String, Option<String>)> =
                sqlx::query_as("SELECT id, username, password_hash FROM users ORDER BY username")
                    .fetch_all(&mut *conn)
                    .await
                    .unwrap();
            assert_eq!(
                users,
                [("u-ann".into(), "ann".into(), Some("h1".into())), ("u-bob".into(), "bob".into(), None)]
            );
            let logins: Vec<(String, String, String)> =
                sqlx::query_as("SELECT login, owner, kind FROM logins ORDER BY login")
                    .fetch_all(&mut *conn)
                    .await
                    .unwrap();
            let expected = [
                ("a@example.test", "ann", "alias"),
                ("ann", "ann", "username"),
                ("ann@example.test", "ann", "alias"),
                ("bob", "bob", "username"),
            ];
            assert_eq!(logins, expected.map(|(l, o, k)| (l.to_owned(), o.to_owned(), k.to_owned())));
            let previous: Vec<(String, Option<String>)> =
                sqlx::query_as("SELECT login, previous FROM logins ORDER BY login")
                    .fetch_all(&mut *conn)
                    .await
                    .unwrap();
            let expected = [
                ("a@example.test", None),
                ("ann", Some("a@example.test")),
                ("ann@example.test", Some("ann")),
                ("bob", None),
            ];
            assert_eq!(
                previous,
                expected.map(|(l, p)| (l.to_owned(), p.map(str::to_owned))),
                "each name knows the one before it"
            );
            let aliases: Vec<(String, String)> =
                sqlx::query_as("SELECT username, aliases FROM users ORDER BY username")
                    .fetch_all(&mut *conn)
                    .await
                    .unwrap();
            let aliases: Vec<(String, Vec<String>)> =
                aliases.into_iter().map(|(u, a)| (u, serde_json::from_str(&a).unwrap())).collect();
            assert_eq!(
                aliases,
                [
                    ("ann".to_owned(), vec!["a@example.test".to_owned(), "ann@example.test".to_owned()]),
                    ("bob".to_owned(), vec![])
                ],
                "each user has its aliases in code point order"
            );
            let count = |table: &str| format!("SELECT count(*) FROM {table}");
            for (table, rows) in [("failed_attempts", 1), ("secret_answers", 1)] {
                let n: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(count(table))).fetch_one(&mut *conn).await.unwrap();
                assert_eq!(n, rows, "the rows of {table} survive the upgrade");
            }
            conn.execute("DELETE FROM users WHERE id = 'u-ann'").await.unwrap();
            for (table, rows) in [("logins", 1), ("failed_attempts", 0), ("secret_answers", 1)] {
                let n: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(count(table))).fetch_one(&mut *conn).await.unwrap();
                assert_eq!(n, rows, "{table} after a user is deleted");
            }
            let orphan =
                conn.execute("INSERT INTO logins (login, owner, kind) VALUES ('carl', 'carl', 'username')").await;
            assert!(orphan.is_err(), "a login name of no user is refused");
        }};
    }

    #[tokio::test]
    async fn a_sqlite_database_of_0014_keeps_its_users_and_their_rows() {
        let mut conn = sqlx::SqliteConnection::connect("sqlite::memory:").await.unwrap();
        conn.execute("PRAGMA foreign_keys = ON").await.unwrap();
        super::sqlite().run_to(14, &mut conn).await.unwrap();
        conn.execute(USERS_OF_0014).await.unwrap();
        super::sqlite().run(&mut conn).await.unwrap();
        let on: i64 = sqlx::query_scalar("PRAGMA foreign_keys").fetch_one(&mut conn).await.unwrap();
        assert_eq!(on, 1, "foreign keys are on again after the rebuild");
        let broken = sqlx::query("PRAGMA foreign_key_check").fetch_all(&mut conn).await.unwrap();
        assert!(broken.is_empty(), "{} rows refer to nothing", broken.len());
        let users =
            sqlx::query("SELECT sql FROM sqlite_master WHERE name = 'users'").fetch_one(&mut conn).await.unwrap();
        let users: String = users.get(0);
        assert!(users.ends_with("WITHOUT ROWID"), "{users}");
        check_upgraded!(&mut conn);
    }

    #[tokio::test]
    async fn a_postgres_database_of_0014_keeps_its_users_and_their_rows() {
        let (mut conn, _schema) = crate::test_postgres::fresh_schema("migration").await;
        super::postgres().run_to(14, &mut conn).await.unwrap();
        conn.execute(USERS_OF_0014).await.unwrap();
        super::postgres().run(&mut conn).await.unwrap();
        check_upgraded!(&mut conn);
    }
}
