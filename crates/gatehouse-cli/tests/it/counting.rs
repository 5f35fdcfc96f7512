//! A store that counts the calls made on it (and the kinds of messages queued), for tests that must show
//! equal work: the same calls for a real and an unknown user, not just the same answers.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use gatehouse_core::audit::AuditEvent;
use gatehouse_core::clock::Millis;
use gatehouse_core::config::{Config, Counter};
use gatehouse_core::flow::session::NewFlowSession;
use gatehouse_core::ports::*;
use gatehouse_core::user::{NewUser, User};
use tokio::sync::Semaphore;

use crate::harness::{TestEnv, TestServer};

/// Every call, by method name, in order; queued messages by channel.
pub struct CountingStore {
    inner: Arc<dyn Store>,
    calls: Mutex<Vec<String>>,
    /// A call that waits at its start until the test lets it on (see [`CountingStore::hold`]).
    held: Mutex<Option<(&'static str, Arc<Semaphore>)>>,
    /// Messages the delivery worker's claims took from the store.
    claimed: AtomicUsize,
}

impl CountingStore {
    /// A server on `config` whose store (`env`'s) counts, and can hold, its calls.
    pub async fn serve(env: &TestEnv, config: Config) -> (Arc<Self>, TestServer) {
        let store = Arc::new(Self::new(env.store().await));
        let dyn_store: Arc<dyn Store> = store.clone();
        (store, env.start_with(config, Some(dyn_store)).await)
    }

    pub fn new(inner: Arc<dyn Store>) -> Self {
        Self { inner, calls: Mutex::new(Vec::new()), held: Mutex::new(None), claimed: AtomicUsize::new(0) }
    }

    /// The next `call` (`apply` or `commit_flow_session`) waits at its start, already counted, until the returned
    /// gate gets a permit: a test can stand a request still half-way through its work.
    pub fn hold(&self, call: &'static str) -> Arc<Semaphore> {
        let gate = Arc::new(Semaphore::new(0));
        *self.held.lock().unwrap() = Some((call, gate.clone()));
        gate
    }

    /// How many messages claims took from the store so far.
    pub fn messages_claimed(&self) -> usize {
        self.claimed.load(Ordering::Relaxed)
    }

    /// Whether `call` was made since the last take (leaving the calls as they are).
    pub fn saw(&self, call: &str) -> bool {
        self.calls.lock().unwrap().iter().any(|c| c == call)
    }

    /// Runs `call`'s work, first waiting at the gate if the test holds `call` (then no longer); a held call notes
    /// `"{call} finished"` once its work is done.
    async fn pass<T>(&self, call: &str, work: impl Future<Output = T>) -> T {
        let gate = {
            let mut held = self.held.lock().unwrap();
            if held.as_ref().is_some_and(|(held, _)| *held == call) { held.take().map(|(_, gate)| gate) } else { None }
        };
        let Some(gate) = gate else { return work.await };
        gate.acquire().await.unwrap().forget();
        let done = work.await;
        self.note(&format!("{call} finished"));
        done
    }

    fn note(&self, call: &str) {
        self.calls.lock().unwrap().push(call.to_owned());
    }

    /// Each effect by its kind (`Enqueue`, `Audit`, …): a queued message counts the same whatever it carries.
    fn note_effects(&self, effects: &[Effect]) {
        for e in effects {
            let debug = format!("{e:?}");
            let kind = debug.split(['(', ' ', '{']).next().unwrap_or_default().to_owned();
            self.note(&format!("  effect {kind}"));
        }
    }

    /// The calls since the last take, leaving none.
    pub fn take(&self) -> Vec<String> {
        std::mem::take(&mut *self.calls.lock().unwrap())
    }

    /// The calls since the last take, less those of the server's background workers (delivery, housekeeping),
    /// which are no part of any answer's work.
    pub fn take_foreground(&self) -> Vec<String> {
        let background = [
            "claim_outbox",
            "mark_delivered",
            "mark_retry",
            "mark_abandoned",
            "pending_outbox",
            "purge",
            "take_lease",
            "release_leases",
        ];
        self.take().into_iter().filter(|c| !background.contains(&c.as_str())).collect()
    }
}

#[async_trait]
impl Store for CountingStore {
    async fn ping(&self) -> Result<(), StoreError> {
        self.note("ping");
        self.inner.ping().await
    }

    async fn create_user(&self, user: &NewUser, audit: &AuditEvent) -> Result<User, StoreError> {
        self.note("create_user");
        self.inner.create_user(user, audit).await
    }

    async fn find_user_by_login(&self, login: &str) -> Result<Option<User>, StoreError> {
        self.note("find_user_by_login");
        self.inner.find_user_by_login(login).await
    }

    async fn get_user(&self, id: &str) -> Result<Option<User>, StoreError> {
        self.note("get_user");
        self.inner.get_user(id).await
    }

    async fn create_application(&self, app: &Application, key_hash: &str) -> Result<bool, StoreError> {
        self.note("create_application");
        self.inner.create_application(app, key_hash).await
    }

    async fn application_by_key(&self, key_hash: &str) -> Result<Option<Application>, StoreError> {
        self.note("application_by_key");
        self.inner.application_by_key(key_hash).await
    }

    async fn application_by_name(&self, name: &str) -> Result<Option<Application>, StoreError> {
        self.note("application_by_name");
        self.inner.application_by_name(name).await
    }

    async fn application_by_id(&self, id: &str) -> Result<Option<Application>, StoreError> {
        self.note("application_by_id");
        self.inner.application_by_id(id).await
    }

    async fn list_applications(&self) -> Result<Vec<Application>, StoreError> {
        self.note("list_applications");
        self.inner.list_applications().await
    }

    async fn rotate_application_key(&self, name: &str, key_hash: &str, at: Millis) -> Result<bool, StoreError> {
        self.note("rotate_application_key");
        self.inner.rotate_application_key(name, key_hash, at).await
    }

    async fn revoke_application(&self, name: &str, at: Millis) -> Result<bool, StoreError> {
        self.note("revoke_application");
        self.inner.revoke_application(name, at).await
    }

    async fn enroll_app_user(
        &self,
        app_id: &str,
        user_id: &str,
        name: Option<&str>,
        at: Millis,
    ) -> Result<(), StoreError> {
        self.note("enroll_app_user");
        self.inner.enroll_app_user(app_id, user_id, name, at).await
    }

    async fn app_user_enrolled(&self, app_id: &str, user_id: &str) -> Result<bool, StoreError> {
        self.note("app_user_enrolled");
        self.inner.app_user_enrolled(app_id, user_id).await
    }

    async fn set_app_token_required(&self, app_id: &str, user_id: &str, required: bool) -> Result<(), StoreError> {
        self.note("set_app_token_required");
        self.inner.set_app_token_required(app_id, user_id, required).await
    }

    async fn app_enrollment(&self, app_id: &str, user_id: &str) -> Result<Option<AppEnrollment>, StoreError> {
        self.note("app_enrollment");
        self.inner.app_enrollment(app_id, user_id).await
    }

    async fn use_app_code_step(&self, app_id: &str, user_id: &str, step: i64) -> Result<bool, StoreError> {
        self.note("use_app_code_step");
        self.inner.use_app_code_step(app_id, user_id, step).await
    }

    async fn create_app_token(&self, token: &AppToken) -> Result<(), StoreError> {
        self.note("create_app_token");
        self.inner.create_app_token(token).await
    }

    async fn consume_app_token(
        &self,
        token_hash: &str,
        app_id: &str,
        sid: Option<&str>,
        now: Millis,
    ) -> Result<Option<AppToken>, StoreError> {
        self.note("consume_app_token");
        self.inner.consume_app_token(token_hash, app_id, sid, now).await
    }

    async fn record_app_approval(&self, app_id: &str, approval_id: &str, at: Millis) -> Result<(), StoreError> {
        self.note("record_app_approval");
        self.inner.record_app_approval(app_id, approval_id, at).await
    }

    async fn claim_app_approval_token(&self, app_id: &str, approval_id: &str, at: Millis) -> Result<bool, StoreError> {
        self.note("claim_app_approval_token");
        self.inner.claim_app_approval_token(app_id, approval_id, at).await
    }

    async fn app_approvals(&self, app_id: &str, offset: i64, limit: i64) -> Result<(Vec<Approval>, i64), StoreError> {
        self.note("app_approvals");
        self.inner.app_approvals(app_id, offset, limit).await
    }

    async fn app_approval(&self, app_id: &str, approval_id: &str) -> Result<Option<Approval>, StoreError> {
        self.note("app_approval");
        self.inner.app_approval(app_id, approval_id).await
    }

    async fn unenroll_app_user(&self, app_id: &str, user_id: &str) -> Result<bool, StoreError> {
        self.note("unenroll_app_user");
        self.inner.unenroll_app_user(app_id, user_id).await
    }

    async fn unique_item_owner(&self, item: &str, value: &str) -> Result<Option<String>, StoreError> {
        self.note("unique_item_owner");
        self.inner.unique_item_owner(item, value).await
    }

    async fn spend_captcha(&self, tag: &str, expires_at: gatehouse_core::clock::Millis) -> Result<bool, StoreError> {
        self.note("spend_captcha");
        self.inner.spend_captcha(tag, expires_at).await
    }

    async fn users_page(
        &self,
        page: &gatehouse_core::user::UserPage,
    ) -> Result<gatehouse_core::user::FoundUsers, StoreError> {
        self.note("users_page");
        self.inner.users_page(page).await
    }

    async fn list_users(&self) -> Result<Vec<User>, StoreError> {
        self.note("list_users");
        self.inner.list_users().await
    }

    async fn reserve_attempt(
        &self,
        user_id: &str,
        method_id: &str,
        max: u32,
        now: Millis,
    ) -> Result<Option<i64>, StoreError> {
        self.note("reserve_attempt");
        self.inner.reserve_attempt(user_id, method_id, max, now).await
    }

    async fn purge(&self, what: Spent, batch: i64) -> Result<u64, StoreError> {
        self.note("purge");
        self.inner.purge(what, batch).await
    }

    async fn take_lease(&self, task: &str, holder: &str, now: Millis, until: Millis) -> Result<bool, StoreError> {
        self.note("take_lease");
        self.inner.take_lease(task, holder, now, until).await
    }

    async fn release_leases(&self, holder: &str) -> Result<u64, StoreError> {
        self.note("release_leases");
        self.inner.release_leases(holder).await
    }

    async fn record_failure(&self, user_id: &str, counter: &Counter, now: Millis) -> Result<Failure, StoreError> {
        self.note("record_failure");
        self.inner.record_failure(user_id, counter, now).await
    }

    async fn hit_rate_limit(
        &self,
        key: &str,
        window_ms: i64,
        limit: u32,
        now: Millis,
    ) -> Result<Option<i64>, StoreError> {
        self.note("hit_rate_limit");
        self.inner.hit_rate_limit(key, window_ms, limit, now).await
    }

    async fn apply(&self, effects: &[Effect]) -> Result<(), StoreError> {
        self.note("apply");
        self.note_effects(effects);
        self.pass("apply", self.inner.apply(effects)).await
    }

    async fn create_flow_session(&self, session: &NewFlowSession, effects: &[Effect]) -> Result<bool, StoreError> {
        self.note("create_flow_session");
        self.note_effects(effects);
        self.inner.create_flow_session(session, effects).await
    }

    async fn acquire_flow_session(
        &self,
        token_hash: &str,
        now: Millis,
        lease_until: Millis,
    ) -> Result<Acquired, StoreError> {
        self.note("acquire_flow_session");
        self.inner.acquire_flow_session(token_hash, now, lease_until).await
    }

    async fn commit_flow_session(&self, update: &FlowSessionUpdate, effects: &[Effect]) -> Result<bool, StoreError> {
        self.note("commit_flow_session");
        self.note_effects(effects);
        self.pass("commit_flow_session", self.inner.commit_flow_session(update, effects)).await
    }

    async fn release_flow_session(&self, id: &str, version: i64) -> Result<(), StoreError> {
        self.note("release_flow_session");
        self.inner.release_flow_session(id, version).await
    }

    async fn claim_outbox(
        &self,
        now: Millis,
        claim_until: Millis,
        limit: i64,
    ) -> Result<Vec<ClaimedMessage>, StoreError> {
        self.note("claim_outbox");
        let claimed = self.inner.claim_outbox(now, claim_until, limit).await;
        if let Ok(messages) = &claimed {
            self.claimed.fetch_add(messages.len(), Ordering::Relaxed);
        }
        claimed
    }

    async fn mark_delivered(&self, ids: &[String], at: Millis) -> Result<(), StoreError> {
        self.note("mark_delivered");
        self.inner.mark_delivered(ids, at).await
    }

    async fn release_claims(&self, ids: &[String]) -> Result<(), StoreError> {
        self.note("release_claims");
        self.inner.release_claims(ids).await
    }

    async fn mark_retry(&self, id: &str, error: &str, next_attempt_at: Millis) -> Result<(), StoreError> {
        self.note("mark_retry");
        self.inner.mark_retry(id, error, next_attempt_at).await
    }

    async fn mark_abandoned(&self, id: &str, error: &str, at: Millis) -> Result<(), StoreError> {
        self.note("mark_abandoned");
        self.inner.mark_abandoned(id, error, at).await
    }

    async fn pending_outbox(&self) -> Result<i64, StoreError> {
        self.note("pending_outbox");
        self.inner.pending_outbox().await
    }

    async fn outbox_backlog(&self) -> Result<(i64, Option<Millis>), StoreError> {
        self.note("outbox_backlog");
        self.inner.outbox_backlog().await
    }

    fn pool_stats(&self) -> (u32, usize) {
        self.inner.pool_stats()
    }

    async fn database_time(&self) -> Result<Millis, StoreError> {
        self.note("database_time");
        self.inner.database_time().await
    }

    async fn register_key(&self, fingerprint: &str, now: Millis) -> Result<String, StoreError> {
        self.note("register_key");
        self.inner.register_key(fingerprint, now).await
    }

    async fn applied_migrations(&self) -> Result<Vec<i64>, StoreError> {
        self.note("applied_migrations");
        self.inner.applied_migrations().await
    }

    async fn registered_key(&self) -> Result<Option<String>, StoreError> {
        self.note("registered_key");
        self.inner.registered_key().await
    }

    async fn query_audit(&self, query: &gatehouse_core::audit::AuditQuery) -> Result<Vec<AuditEvent>, StoreError> {
        self.note("query_audit");
        self.inner.query_audit(query).await
    }

    async fn touch_auth_session(
        &self,
        token_hash: &str,
        now: Millis,
        idle_before: Millis,
    ) -> Result<Option<AuthSessionRecord>, StoreError> {
        self.note("touch_auth_session");
        self.inner.touch_auth_session(token_hash, now, idle_before).await
    }

    async fn get_totp(&self, user_id: &str) -> Result<Option<TotpCredential>, StoreError> {
        self.note("get_totp");
        self.inner.get_totp(user_id).await
    }

    async fn enrolled(&self, user_id: &str) -> Result<gatehouse_core::ports::Enrolled, StoreError> {
        self.note("enrolled");
        self.inner.enrolled(user_id).await
    }

    async fn totp_states(&self, user_ids: &[String]) -> Result<std::collections::BTreeMap<String, bool>, StoreError> {
        self.note("totp_states");
        self.inner.totp_states(user_ids).await
    }

    async fn consume_totp_step(&self, user_id: &str, step: i64) -> Result<bool, StoreError> {
        self.note("consume_totp_step");
        self.inner.consume_totp_step(user_id, step).await
    }

    async fn get_secret_answers(&self, user_id: &str) -> Result<Vec<(String, String)>, StoreError> {
        self.note("get_secret_answers");
        self.inner.get_secret_answers(user_id).await
    }

    async fn consume_continuation_token(
        &self,
        token_hash: &str,
        flow_id: &str,
        now: Millis,
    ) -> Result<Option<String>, StoreError> {
        self.note("consume_continuation_token");
        self.inner.consume_continuation_token(token_hash, flow_id, now).await
    }

    async fn create_admin_token(&self, name: &str, token_hash: &str, at: Millis) -> Result<bool, StoreError> {
        self.note("create_admin_token");
        self.inner.create_admin_token(name, token_hash, at).await
    }

    async fn use_admin_token(&self, token_hash: &str, at: Millis) -> Result<Option<String>, StoreError> {
        self.note("use_admin_token");
        self.inner.use_admin_token(token_hash, at).await
    }

    async fn delete_admin_token(&self, name: &str) -> Result<bool, StoreError> {
        self.note("delete_admin_token");
        self.inner.delete_admin_token(name).await
    }

    async fn list_admin_tokens(&self) -> Result<Vec<(String, Millis, Option<Millis>)>, StoreError> {
        self.note("list_admin_tokens");
        self.inner.list_admin_tokens().await
    }

    async fn activate_device(
        &self,
        code_hash: &str,
        now: Millis,
        device: &Device,
    ) -> Result<Option<String>, StoreError> {
        self.note("activate_device");
        self.inner.activate_device(code_hash, now, device).await
    }

    async fn list_devices(&self, user_id: &str) -> Result<Vec<Device>, StoreError> {
        self.note("list_devices");
        self.inner.list_devices(user_id).await
    }

    async fn get_device(&self, id: &str) -> Result<Option<Device>, StoreError> {
        self.note("get_device");
        self.inner.get_device(id).await
    }

    async fn touch_device(&self, id: &str, now: Millis) -> Result<(), StoreError> {
        self.note("touch_device");
        self.inner.touch_device(id, now).await
    }

    async fn get_approval(&self, id: &str) -> Result<Option<Approval>, StoreError> {
        self.note("get_approval");
        self.inner.get_approval(id).await
    }

    async fn pending_approvals(&self, user_id: &str, now: Millis) -> Result<Vec<Approval>, StoreError> {
        self.note("pending_approvals");
        self.inner.pending_approvals(user_id, now).await
    }

    async fn self_unlock(
        &self,
        user_id: &str,
        allowed_reasons: &[String],
        max: Option<u32>,
        counters: &[String],
        at: Millis,
    ) -> Result<SelfUnlock, StoreError> {
        self.note("self_unlock");
        self.inner.self_unlock(user_id, allowed_reasons, max, counters, at).await
    }

    async fn decide_approval(&self, id: &str, device_id: &str, approve: bool, now: Millis) -> Result<bool, StoreError> {
        self.note("decide_approval");
        self.inner.decide_approval(id, device_id, approve, now).await
    }

    fn approval_events(&self) -> tokio::sync::broadcast::Receiver<String> {
        self.inner.approval_events()
    }
}
