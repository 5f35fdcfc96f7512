//! Paths that used to end in a 500: each answers a clear 4xx now.

use serde_json::json;

use crate::harness::{Backend, TestEnv, postgres_url};
use crate::on_both_backends;
use crate::second_factor::{PW, add_phone_user};

on_both_backends!(a_user_deleted_mid_login, device_timestamps_at_the_edges, a_lock_held_too_long_answers_503);

async fn a_user_deleted_mid_login(backend: Backend) {
    let env = TestEnv::new(backend).await;
    let server = env.start(env.config()).await;
    add_phone_user(&env, "dora", "+41790000800").await;
    let mut c = server.client();
    assert_eq!(c.login("dora", PW).await.next_auth_step(), Some("MTAN_OTP_REQUIRED"));
    let user = env.user("dora").await;
    env.store().await.apply(&[gatehouse_core::ports::Effect::DeleteUser { user_id: user.id }]).await.unwrap();
    // Every later call on the flow answers like a wrong code of nobody, then ends; never a 500.
    let r = c.post("/rest/public/authentication/mtan/otp/check/", Some(json!({ "otp": "123456" }))).await;
    assert!(r.status == 400 || r.status == 403, "{}: {}", r.status, r.body);
    let r = c.post("/rest/public/authentication/mtan/otp/resend/", None).await;
    assert!(r.status < 500, "{}: {}", r.status, r.body);
    server.stop().await;
    env.cleanup().await;
}

async fn device_timestamps_at_the_edges(backend: Backend) {
    let env = TestEnv::new(backend).await;
    let server = env.start(env.config()).await;
    let mut c = server.client();
    for ts in ["-9223372036854775808", "9223372036854775807", "0", "1e3", "99999999999999999999"] {
        let req = c
            .http
            .get(format!("{}/rest/device/approvals", server.base))
            .header("x-device-id", "no-such-device")
            .header("x-device-timestamp", ts)
            .header("x-device-signature", "AAAA");
        let r = c.send(req).await;
        assert_eq!((r.status, r.error_codes()), (401, vec!["DEVICE_NOT_AUTHENTICATED".to_owned()]), "{ts}: {}", r.body);
    }
    server.stop().await;
    env.cleanup().await;
}

/// Another connection holds a lock the login needs (SQLite: the write lock; PostgreSQL: the user's row) for
/// longer than `storage.lock_wait_ms`: the login answers 503 + Retry-After, not 500, and no guess is evaluated
/// for free: afterwards failures and the lock agree and the right password works.
async fn a_lock_held_too_long_answers_503(backend: Backend) {
    use sqlx::Connection as _;
    let env = TestEnv::new(backend).await;
    let mut config = env.config();
    config.storage.lock_wait_ms = 200;
    let server = env.start(config).await;
    env.add_user("lena", None, Some(PW)).await;
    // One wrong password first, so that the counter row exists (PostgreSQL then reserves without waiting and
    // the failure's write is what waits).
    server.client().login("lena", "wrong-password").await.expect(400);

    let rollback = sqlx::AssertSqlSafe("ROLLBACK");
    match backend {
        Backend::Sqlite => {
            let mut conn = sqlx::SqliteConnection::connect(&env.db_url).await.unwrap();
            sqlx::raw_sql(sqlx::AssertSqlSafe("BEGIN IMMEDIATE")).execute(&mut conn).await.unwrap();
            logins_answer_503(&server).await;
            sqlx::raw_sql(rollback).execute(&mut conn).await.unwrap();
        }
        Backend::Postgres => {
            let mut conn = sqlx::PgConnection::connect(&postgres_url()).await.unwrap();
            let schema = env.schema.clone().unwrap();
            let hold =
                format!("SET search_path TO {schema}; BEGIN; SELECT id FROM users WHERE username = 'lena' FOR UPDATE");
            sqlx::raw_sql(sqlx::AssertSqlSafe(hold)).execute(&mut conn).await.unwrap();
            logins_answer_503(&server).await;
            sqlx::raw_sql(rollback).execute(&mut conn).await.unwrap();
        }
    }

    let lena = env.user("lena").await;
    let count = lena.failed_attempts.get("PASSWORD").copied().unwrap_or(0);
    assert!(count <= 2, "{count}");
    assert_eq!(lena.locked, count > 5);
    let r = server.client().login("lena", PW).await;
    assert_eq!(r.status, 200, "{}", r.body);
    server.stop().await;
    env.cleanup().await;
}

async fn logins_answer_503(server: &crate::harness::TestServer) {
    for password in ["wrong-password", PW] {
        let r = server.client().login("lena", password).await;
        assert_eq!(r.status, 503, "{}", r.body);
        assert_eq!(r.error_codes(), vec!["SERVICE_UNAVAILABLE"]);
        assert!(r.headers.get("retry-after").is_some(), "{:?}", r.headers);
    }
}
