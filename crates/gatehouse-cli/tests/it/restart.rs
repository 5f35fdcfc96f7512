//! Flow sessions live in the database: a restart in the middle of a flow loses nothing.

use gatehouse_core::clock::{Clock as _, SystemClock};

use crate::harness::{Backend, TestEnv, reset_until_otp};
use crate::on_both_backends;

on_both_backends!(a_flow_survives_a_restart);

async fn a_flow_survives_a_restart(backend: Backend) {
    let env = TestEnv::new(backend).await;
    let first = env.start(env.config()).await;
    env.add_user("sam", Some("sam@example.com"), Some("Old-Cobalt-Lantern-1")).await;
    let (c, otp) = reset_until_otp(&first, &env.outbox(), "sam", "sam@example.com").await;
    first.stop().await;
    // The stopped node gave its housekeeping leases up: another node may take every task at once, not a lease's
    // length later.
    let store = env.store().await;
    let now = SystemClock.now_ms();
    for task in gatehouse_server::housekeeping::tasks(&env.config(), now) {
        let taken = store.take_lease(task.name(), "another-node", now, now + 60_000).await.unwrap();
        assert!(taken, "{} is still leased by the stopped node", task.name());
    }
    assert!(store.release_leases("another-node").await.unwrap() > 0);

    let second = env.start(env.config()).await;
    let mut c = c.on(&second);
    assert_eq!(c.check_otp(&otp).await.expect(200).next_step(), Some("NEW_PASSWORD_REQUIRED"));
    second.stop().await;

    let third = env.start(env.config()).await;
    let mut c = c.on(&third);
    c.set_password("Fresh-Marble-Otter-42").await.expect(200);
    third.stop().await;
    env.cleanup().await;
}
