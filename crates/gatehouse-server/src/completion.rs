//! Every request runs to its end in a task of its own, whether or not its client stays for the answer.
//!
//! hyper drops a request's future when its client hangs up. Dropped between two awaits, a handler would leave
//! its work half-done: a flow session held until its lease runs out, a statement cut off mid-way (which costs its
//! database connection: a client that opens requests and drops them would make PostgreSQL start new backends).
//! The exception is a long poll's wait, which holds nothing and tells news to nobody once its client has gone:
//! [`client_gone`] ends it. Shutdown waits for abandoned requests too, within its grace period: they are tracked.

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tokio::sync::watch;
use tokio_util::task::TaskTracker;

use crate::errors::ApiError;

tokio::task_local! {
    /// Closed when the client of the current request hangs up.
    static CLIENT: watch::Receiver<()>;
}

/// The outermost layer: runs the rest of the stack for `request` in a task of its own, tracked by `requests`.
pub(crate) async fn run_to_the_end(State(requests): State<TaskTracker>, request: Request, next: Next) -> Response {
    // Dropped with this future, that is when hyper gives up on the client.
    let (_client_waits, client) = watch::channel(());
    match requests.spawn(CLIENT.scope(client, next.run(request))).await {
        Ok(response) => response,
        Err(e) => ApiError::Internal(format!("request task failed: {e}")).into_response(),
    }
}

/// Resolves once the client of the current request has hung up; never outside a request.
pub(crate) async fn client_gone() {
    match CLIENT.try_with(watch::Receiver::clone) {
        // `changed` fails only once the sender is dropped: nothing is ever sent.
        Ok(mut client) => while client.changed().await.is_ok() {},
        Err(_) => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::{CLIENT, client_gone};

    #[tokio::test]
    async fn gone_when_the_sender_is_dropped_and_not_before() {
        let (present, client) = tokio::sync::watch::channel(());
        let waiting = tokio::spawn(CLIENT.scope(client, client_gone()));
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!waiting.is_finished());
        drop(present);
        tokio::time::timeout(Duration::from_secs(2), waiting).await.unwrap().unwrap();
    }

    #[tokio::test]
    async fn never_gone_outside_a_request() {
        assert!(tokio::time::timeout(Duration::from_millis(50), client_gone()).await.is_err());
    }
}
