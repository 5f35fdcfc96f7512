//! Starting and stopping a server: store, key, hashing pool, HTTP listener and delivery worker.

use std::net::SocketAddr;
use std::sync::Arc;

use gatehouse_core::messages::Templates;
use std::time::Duration;

use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderValue, Request};
use gatehouse_core::clock::Clock;
use gatehouse_core::config::Config;
use gatehouse_core::crypto::HashParams;
use gatehouse_core::random::{Random, random_id};
use gatehouse_store::{OpenOptions, redact_url};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_util::task::TaskTracker;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{MakeRequestId, PropagateRequestIdLayer, RequestId, SetRequestIdLayer};
use tower_http::trace::TraceLayer;

use crate::errors::ApiError;
use crate::hashing::HashPool;
use crate::messaging::{delivery_from_config, run_worker};
use crate::secrets::{KeySource, load_server_key};
use crate::state::AppState;

pub struct StartOptions {
    pub config: Config,
    pub clock: Arc<dyn Clock>,
    pub random: Arc<dyn Random>,
    /// A store to use instead of opening `config`'s database (tests wrap the real one to count its calls).
    pub store: Option<Arc<dyn gatehouse_core::ports::Store>>,
}

/// A started server. Dropping it does not stop it; call [`RunningServer::shutdown`].
pub struct RunningServer {
    pub addr: SocketAddr,
    /// Where `/metrics` is served apart (`metrics.listen`).
    pub metrics_addr: Option<SocketAddr>,
    pub state: AppState,
    shutdown: watch::Sender<bool>,
    http: JoinHandle<std::io::Result<()>>,
    worker: JoinHandle<()>,
    housekeeping: JoinHandle<()>,
    metrics: Option<JoinHandle<()>>,
    /// Every request's task, also of those whose client hung up (see `completion`).
    requests: TaskTracker,
    grace: Duration,
}

impl RunningServer {
    /// Stops accepting connections, lets in-flight requests finish (up to the grace period; also those whose client
    /// hung up), stops the worker.
    pub async fn shutdown(self) -> anyhow::Result<()> {
        let _ = self.shutdown.send(true);
        self.finish().await
    }

    /// Waits until the server stops (after `shutdown_signal` fired).
    pub async fn wait_for(self, shutdown_signal: impl std::future::Future<Output = ()>) -> anyhow::Result<()> {
        shutdown_signal.await;
        tracing::info!("shutting down: finishing in-flight requests");
        self.shutdown().await
    }

    async fn finish(self) -> anyhow::Result<()> {
        let deadline = tokio::time::Instant::now() + self.grace;
        match tokio::time::timeout_at(deadline, self.http).await {
            Ok(joined) => joined??,
            Err(_) => tracing::warn!("grace period over, in-flight requests dropped"),
        }
        self.requests.close();
        if tokio::time::timeout_at(deadline, self.requests.wait()).await.is_err() {
            tracing::warn!(left = self.requests.len(), "grace period over, requests of clients that hung up dropped");
        }
        let _ = self.worker.await;
        let _ = self.housekeeping.await;
        if let Some(metrics) = self.metrics {
            let _ = metrics.await;
        }
        Ok(())
    }
}

#[derive(Clone)]
struct RandomRequestId(Arc<dyn Random>);

impl MakeRequestId for RandomRequestId {
    fn make_request_id<B>(&mut self, _: &Request<B>) -> Option<RequestId> {
        HeaderValue::from_str(&random_id(self.0.as_ref())).ok().map(RequestId::new)
    }
}

/// Connects to the database (migrating it), binds the listener and starts serving.
pub async fn start(options: StartOptions) -> anyhow::Result<RunningServer> {
    let StartOptions { config, clock, random, store } = options;
    crate::install_crypto_provider();
    let url = config.database_url();
    let store = match store {
        Some(store) => store,
        None => gatehouse_store::open(&OpenOptions {
            url: url.clone(),
            schema: config.storage.schema.clone(),
            max_connections: config.storage.max_connections,
            migrate: true,
            lock_wait: std::time::Duration::from_millis(config.storage.lock_wait_ms),
        })
        .await
        .map_err(|e| anyhow::anyhow!("database {}: {e}", redact_url(&url)))?,
    };
    let (key, key_source) = load_server_key(&config, random.as_ref())?;
    if let KeySource::Generated(path) = &key_source {
        tracing::warn!(path = %path, "generated a new secret key; nodes sharing this database need the same key");
    }
    let hasher = HashPool::new(
        HashParams::from(&config.hashing),
        config.hashing.workers,
        config.hashing.queue_capacity,
        config.hashing.equalize_max_ms,
    )
    .map_err(|e| anyhow::anyhow!("hashing: {e}"))?;
    let delivery = delivery_from_config(&config)?;
    let templates = Templates::load(config.messaging.templates_dir.as_deref())?;
    if let Some(problem) = templates.check().into_iter().next() {
        anyhow::bail!("messaging.templates_dir: {problem}");
    }
    // Every node must hold the same key: the first one records its fingerprint, the others compare.
    let registered = store.register_key(&key.fingerprint(), clock.now_ms()).await?;
    if registered != key.fingerprint() {
        tracing::error!(
            "this node's secret key differs from the key of the node that first used this database: sealed data and \
             tokens of the other nodes will not open here (see `gatehouse doctor`)"
        );
    }
    let ui = crate::ui::render::Ui::load(config.ui.templates_dir.as_deref())?;
    ui.check()?;
    let metrics_token = match &config.metrics.bearer_token_file {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| anyhow::anyhow!("metrics.bearer_token_file {}: {e}", path.display()))?;
            let token = text.trim();
            if token.len() < 16 {
                anyhow::bail!("metrics.bearer_token_file {}: the token needs at least 16 characters", path.display());
            }
            Some(Arc::<str>::from(token))
        }
        None => None,
    };
    let grace = Duration::from_secs(config.server.shutdown_grace_seconds);
    let bind = config.server.bind.clone();
    let state = AppState {
        config: Arc::new(config),
        store,
        hasher,
        clock,
        random: random.clone(),
        key: Arc::new(key),
        outbox: Arc::default(),
        templates: Arc::new(templates),
        ui: Arc::new(ui),
        metrics_token,
    };
    crate::metrics::recorder();

    let requests = TaskTracker::new();
    let app = crate::api::router(state.clone())
        .layer(axum::middleware::from_fn(crate::metrics::track))
        .layer(axum::middleware::from_fn_with_state(state.clone(), crate::errors::clock_scope))
        .layer(axum::middleware::from_fn_with_state(state.clone(), crate::headers::security_headers))
        .layer(DefaultBodyLimit::max(state.config.server.max_body_bytes))
        .layer(CatchPanicLayer::custom(|_| {
            axum::response::IntoResponse::into_response(ApiError::Internal("handler panicked".into()))
        }))
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(TraceLayer::new_for_http().make_span_with(|req: &Request<_>| {
            let id = req.headers().get("x-request-id").and_then(|v| v.to_str().ok()).unwrap_or("-");
            tracing::info_span!("http", method = %req.method(), path = %req.uri().path(), request_id = %id)
        }))
        .layer(SetRequestIdLayer::x_request_id(RandomRequestId(random)))
        .layer(axum::middleware::from_fn_with_state(requests.clone(), crate::completion::run_to_the_end));

    let listener =
        tokio::net::TcpListener::bind(&bind).await.map_err(|e| anyhow::anyhow!("cannot listen on {bind}: {e}"))?;
    let addr = listener.local_addr()?;
    tracing::info!(
        "gatehouse listening on http://{addr}, database {}, {}, {} hashing workers",
        redact_url(&url),
        delivery.describe(),
        state.hasher.worker_count()
    );

    let (shutdown, rx) = watch::channel(false);
    let mut http_rx = rx.clone();
    let http = tokio::spawn(async move {
        axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>())
            .with_graceful_shutdown(async move {
                let _ = http_rx.wait_for(|stop| *stop).await;
            })
            .await
    });
    let node = gatehouse_core::random::random_id(state.random.as_ref());
    let housekeeping = tokio::spawn(crate::housekeeping::run(state.clone(), node, rx.clone()));
    let (metrics_addr, metrics) = match &state.config.metrics.listen {
        Some(listen) => {
            let listener = tokio::net::TcpListener::bind(listen)
                .await
                .map_err(|e| anyhow::anyhow!("metrics.listen {listen}: {e}"))?;
            let addr = listener.local_addr()?;
            tracing::info!("metrics on http://{addr}/metrics");
            let app = axum::Router::new()
                .route("/metrics", axum::routing::get(crate::metrics::private))
                .with_state(state.clone());
            let mut stop = rx.clone();
            let task = tokio::spawn(async move {
                let served = axum::serve(listener, app)
                    .with_graceful_shutdown(async move {
                        let _ = stop.wait_for(|stop| *stop).await;
                    })
                    .await;
                if let Err(e) = served {
                    tracing::warn!(error = %e, "metrics listener failed");
                }
            });
            (Some(addr), Some(task))
        }
        None => (None, None),
    };
    let worker = tokio::spawn(run_worker(state.clone(), delivery, rx));
    Ok(RunningServer { addr, metrics_addr, state, shutdown, http, worker, housekeeping, metrics, requests, grace })
}
