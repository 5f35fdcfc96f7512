//! The PostgreSQL server of this crate's tests (`GATEHOUSE_TEST_POSTGRES_URL`, else the CI cluster's `test`).

use sqlx::{Connection as _, Executor as _};

pub(crate) fn url() -> String {
    std::env::var("GATEHOUSE_TEST_POSTGRES_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

/// A connection whose search path is a new, empty schema `gh_{name}_{pid}` (one left by an earlier run is dropped);
/// returns it and the schema's name, for the test to drop.
pub(crate) async fn fresh_schema(name: &str) -> (sqlx::PgConnection, String) {
    let schema = format!("gh_{name}_{}", std::process::id());
    let mut conn = sqlx::PgConnection::connect(&url()).await.unwrap();
    let recreate =
        format!("DROP SCHEMA IF EXISTS {schema} CASCADE; CREATE SCHEMA {schema}; SET search_path TO {schema}");
    sqlx::raw_sql(sqlx::AssertSqlSafe(recreate)).execute(&mut conn).await.unwrap();
    (conn, schema)
}

/// Drops the schema of [`fresh_schema`].
pub(crate) async fn drop_schema(conn: &mut sqlx::PgConnection, schema: &str) {
    conn.execute(sqlx::AssertSqlSafe(format!("DROP SCHEMA {schema} CASCADE"))).await.unwrap();
}
