//! Email Notification (non-interactive): tells the user what the flow did.

use std::collections::BTreeMap;

use crate::clock::format_timestamp;
use crate::config::EmailNotificationStep;
use crate::flow::FlowKind;
use crate::flow::engine::{Ctx, EngineError};

pub(crate) const KINDS: &[FlowKind] = &[FlowKind::PublicSelfService];

impl Ctx<'_> {
    /// Tells the user what the flow did (non-interactive). Users without an address are skipped.
    pub(crate) async fn send_notification(&mut self, cfg: &EmailNotificationStep) -> Result<(), EngineError> {
        let Some(user) = self.load_user().await? else {
            return Ok(());
        };
        let Some(to) = user.context_item(&cfg.email_item).map(str::to_owned) else {
            self.audit("notification.skipped", "no_address", serde_json::json!({ "template": cfg.template }));
            return Ok(());
        };
        let time = format_timestamp(self.now).replace('T', " ");
        self.queue_mail(&user, &to, &cfg.template, BTreeMap::from([("time", time)]))?;
        self.audit("notification.queued", "ok", serde_json::json!({ "template": cfg.template }));
        Ok(())
    }
}
