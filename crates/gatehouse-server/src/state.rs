use std::sync::Arc;

use gatehouse_core::clock::Clock;
use gatehouse_core::config::Config;
use gatehouse_core::crypto::ServerKey;
use gatehouse_core::flow::FlowDeps;
use gatehouse_core::messages::Templates;
use gatehouse_core::ports::Store;
use gatehouse_core::random::Random;

use crate::hashing::HashPool;

/// Everything a handler needs, cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub config: Arc<Config>,
    pub store: Arc<dyn Store>,
    pub hasher: HashPool,
    pub clock: Arc<dyn Clock>,
    pub random: Arc<dyn Random>,
    pub key: Arc<ServerKey>,
    /// Messages calls queued, handed to the delivery worker; wakes it.
    pub outbox: Arc<crate::messaging::hand_off::HandOff>,
    /// Message templates: built-ins with the operator's overrides.
    pub templates: Arc<Templates>,
    /// The web pages' templates and translations.
    pub ui: Arc<crate::ui::render::Ui>,
    /// The bearer token that opens `/metrics` on the public port (`metrics.bearer_token_file`).
    pub metrics_token: Option<Arc<str>>,
}

impl AppState {
    /// The services of a logged-in user's own account.
    pub fn protected(&self) -> gatehouse_core::protected::Protected<'_> {
        gatehouse_core::protected::Protected {
            config: &self.config,
            store: self.store.as_ref(),
            hasher: &self.hasher,
            clock: self.clock.as_ref(),
            random: self.random.as_ref(),
            key: &self.key,
        }
    }

    pub fn flow_deps(&self) -> FlowDeps<'_> {
        FlowDeps {
            config: &self.config,
            store: self.store.as_ref(),
            hasher: &self.hasher,
            clock: self.clock.as_ref(),
            random: self.random.as_ref(),
            key: &self.key,
            templates: &self.templates,
        }
    }
}
