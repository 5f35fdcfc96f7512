//! Acknowledge Message (next step `ACKNOWLEDGE_MESSAGE_REQUIRED`, attributes `messageId` / `serverMessage`;
//! `POST …/message/acknowledge/`): the flow waits until the user confirmed the message.

use crate::config::AcknowledgeMessageStep;
use crate::flow::FlowKind;
use crate::flow::codes::{NextStep, Outcome};
use crate::flow::engine::Ctx;

pub(crate) const KINDS: &[FlowKind] = &[FlowKind::PublicSelfService, FlowKind::SelfRegistration];

impl Ctx<'_> {
    pub(crate) fn show_message(&mut self, cfg: &AcknowledgeMessageStep) -> Outcome {
        if let Some(id) = &cfg.message_id {
            self.attributes.insert("messageId".into(), serde_json::json!(id));
        }
        if let Some(text) = &cfg.server_message {
            self.attributes.insert("serverMessage".into(), serde_json::json!(text));
        }
        Outcome::Continue(Some(NextStep::AcknowledgeMessageRequired))
    }
}
