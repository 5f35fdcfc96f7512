//! Group commit of started flows: the first write of every flow that starts while another batch is being
//! written goes into the next transaction together, instead of one transaction each.
//!
//! A burst of password-reset initiations is a burst of small transactions (the flow, its mail, its audit
//! events). On SQLite they queue for the one writer connection, and each pays BEGIN and COMMIT (a WAL append)
//! on its own; on PostgreSQL each commit waits for its WAL flush. Batching takes whatever is queued when the
//! writer is free, so a lone request waits for nobody (a batch of one) and a burst pays one commit per batch.

use gatehouse_core::flow::session::NewFlowSession;
use gatehouse_core::ports::{Effect, StoreError};
use std::future::Future;
use std::sync::Arc;
use tokio::sync::{Mutex, mpsc, oneshot};

/// The most flow starts one transaction takes: a batch stays a few ms of the writer's time.
pub(crate) const MAX_BATCH: usize = 64;

/// One flow's first write: its row and what goes with it.
pub(crate) struct FlowStart {
    pub session: NewFlowSession,
    pub effects: Vec<Effect>,
}

type Queued = (FlowStart, oneshot::Sender<Result<bool, StoreError>>);

/// The queue of flow starts in front of the task that writes them.
pub(crate) struct FlowStarts {
    queue: mpsc::UnboundedSender<Queued>,
}

impl FlowStarts {
    /// Starts `writers` writing tasks on the current runtime; each takes what is queued when it is free. `write`
    /// gets a batch and answers for each of its starts, in order (`true`: the flow was created; `false`: a flow
    /// of that id already existed). The tasks end when the store (the last sender) is dropped.
    pub(crate) fn start<W, F>(writers: usize, write: W) -> Self
    where
        W: Fn(Vec<FlowStart>) -> F + Clone + Send + 'static,
        F: Future<Output = Vec<Result<bool, StoreError>>> + Send,
    {
        let (queue, queued) = mpsc::unbounded_channel::<Queued>();
        let queued = Arc::new(Mutex::new(queued));
        for _ in 0..writers.max(1) {
            let (queued, write) = (queued.clone(), write.clone());
            tokio::spawn(async move {
                let mut batch = Vec::with_capacity(MAX_BATCH);
                loop {
                    // One writer waits for the queue at a time, and lets go of it before writing.
                    if queued.lock().await.recv_many(&mut batch, MAX_BATCH).await == 0 {
                        return;
                    }
                    let (starts, answers): (Vec<FlowStart>, Vec<_>) = batch.drain(..).unzip();
                    let results = write(starts).await;
                    for (answer, result) in answers.into_iter().zip(results) {
                        // The caller may have gone (its request was cancelled); the flow stays written.
                        let _ = answer.send(result);
                    }
                }
            });
        }
        Self { queue }
    }

    /// Queues `start` for the next batch and waits for it to be committed (or to fail).
    pub(crate) async fn submit(&self, start: FlowStart) -> Result<bool, StoreError> {
        let (answer, result) = oneshot::channel();
        self.queue.send((start, answer)).map_err(|_| StoreError::Unavailable("the flow writer stopped".into()))?;
        result.await.map_err(|_| StoreError::Unavailable("the flow writer dropped a flow start".into()))?
    }
}
