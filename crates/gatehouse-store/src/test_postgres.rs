//! The PostgreSQL server of this crate's tests (`GATEHOUSE_TEST_POSTGRES_URL`, else the CI cluster's `test`).

use sqlx::Connection as _;

pub(crate) fn url() -> String {
    std::env::var("GATEHOUSE_TEST_POSTGRES_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

/// A connection whose search path is a new, empty schema `gh_{name}_{pid}` (one left by an earlier run is dropped),
/// and the guard that drops the schema.
pub(crate) async fn fresh_schema(name: &str) -> (sqlx::PgConnection, DropOnExit) {
    let schema = format!("gh_{name}_{}", std::process::id());
    let mut conn = sqlx::PgConnection::connect(&url()).await.unwrap();
    let recreate =
        format!("DROP SCHEMA IF EXISTS {schema} CASCADE; CREATE SCHEMA {schema}; SET search_path TO {schema}");
    sqlx::raw_sql(sqlx::AssertSqlSafe(recreate)).execute(&mut conn).await.unwrap();
    (conn, DropOnExit(format!("SET lock_timeout = '5s'; DROP SCHEMA IF EXISTS {schema} CASCADE")))
}

/// Runs its SQL on the test server when dropped, so that what a test made is gone also when the test panics (the
/// schemas of failed runs used to stay behind). It runs on a thread and a runtime of its own: the test's runtime may
/// be unwinding.
pub(crate) struct DropOnExit(pub(crate) String);

impl Drop for DropOnExit {
    fn drop(&mut self) {
        let sql = std::mem::take(&mut self.0);
        let done = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
            runtime
                .block_on(async {
                    let mut conn = sqlx::PgConnection::connect(&url()).await?;
                    sqlx::raw_sql(sqlx::AssertSqlSafe(sql)).execute(&mut conn).await?;
                    conn.close().await
                })
                .map_err(std::io::Error::other)
        })
        .join();
        if !matches!(done, Ok(Ok(()))) {
            eprintln!("could not clean up after a test: {done:?}");
        }
    }
}

#[cfg(test)]
mod tests {
    use sqlx::Connection as _;

    #[tokio::test]
    async fn a_test_that_panics_drops_its_schema() {
        let failed = tokio::spawn(async {
            let (_conn, _schema) = super::fresh_schema("panics").await;
            panic!("a failing test");
        })
        .await;
        assert!(failed.is_err_and(|e| e.is_panic()));
        let mut conn = sqlx::PgConnection::connect(&super::url()).await.unwrap();
        let left: i64 = sqlx::query_scalar("SELECT count(*) FROM pg_namespace WHERE nspname = $1")
            .bind(format!("gh_panics_{}", std::process::id()))
            .fetch_one(&mut conn)
            .await
            .unwrap();
        assert_eq!(left, 0, "the schema of the test that panicked is still there");
    }
}
