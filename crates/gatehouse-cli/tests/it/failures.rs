//! Paths that used to end in a 500: each answers a clear 4xx now.

use serde_json::json;

use crate::harness::{Backend, TestEnv};
use crate::on_both_backends;
use crate::second_factor::{PW, add_phone_user};

on_both_backends!(a_user_deleted_mid_login, device_timestamps_at_the_edges);

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
