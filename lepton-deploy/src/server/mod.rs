//! The HTTP prediction server (axum on tokio): serves the version each registry model's alias
//! points at, follows promotions and rollbacks without dropping a request, and groups
//! concurrent requests into batches.
//!
//! | endpoint | answer |
//! |---|---|
//! | `POST /v1/models/{name}/predict` | `{"rows": [{"col": 1.0, ...} or [1.0, ...], ...]}` → predictions |
//! | `POST /v1/models/{name}/feedback` | `{"rows": [...], "labels": [...]}` → buffered for online learning (202) |
//! | `GET /v1/models` | the models and the versions they serve |
//! | `GET /v1/models/{name}` | schema, version, metrics, lineage |
//! | `GET /healthz`, `GET /readyz` | liveness; readiness (a model is served) |
//! | `GET /metrics` | Prometheus (OpenMetrics) text |
//!
//! `/v1` asks for the bearer token when one is set (feedback for its own token), admits at
//! most [`ServerConfig::max_concurrency`] requests at once and as many bodies as fit the
//! [`ServerConfig::memory_budget_bytes`] (the rest get 503 at once), and gives each
//! [`ServerConfig::request_timeout`]. Connections are capped and must send their headers
//! within [`ServerConfig::header_read_timeout`]. Every error is JSON:
//! `{"error": {"code": "...", "message": "..."}}`. `docs/reliability.md` lists the security
//! defaults in one place.

mod api;
mod batcher;
mod learning;
mod listener;
mod live;
mod metrics;
mod rows;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use tokio::sync::{Semaphore, oneshot};
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::trace::{DefaultOnFailure, TraceLayer};

pub use batcher::Batching;
pub use learning::OnlineLearning;

use crate::error::{DeployError, Result};
use crate::registry::{PRODUCTION, Registry};
use crate::servable::ModelLoader;
use learning::Learner;
use listener::ConnectionLimits;
use live::Models;
use metrics::Metrics;

/// How the server runs.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// The alias whose version of each model is served.
    pub alias: String,
    /// How often the registry is read for promotions and rollbacks.
    pub poll_interval: Duration,
    /// The largest request body, in bytes (413 above it).
    pub max_body_bytes: usize,
    /// The most rows in one request (413 above it).
    pub max_rows: usize,
    /// The most `/v1` requests in flight; more are refused with 503 at once.
    pub max_concurrency: usize,
    /// The longest a `/v1` request may take (504 after it). A request that waits for the
    /// model longer than this is dropped from the model's queue unanswered by it.
    pub request_timeout: Duration,
    /// The memory the request bodies in flight, and what they are parsed into, may take
    /// together, in bytes: a request is charged a multiple of its body's size
    /// ([`BODY_MEMORY_FACTOR`]) while it runs, and refused with 503 when the budget is spent.
    pub memory_budget_bytes: usize,
    /// The most connections open at once; more wait to be accepted until one closes.
    pub max_connections: usize,
    /// How long a client has to send a request's headers, also the longest a kept-alive
    /// connection may idle between requests.
    pub header_read_timeout: Duration,
    /// The bearer token `/v1` asks for, if any (it does not open the feedback endpoint).
    pub token: Option<String>,
    /// The bearer token of the feedback endpoint, a role of its own: with online learning
    /// on, it is required (the server refuses to start without it), since feedback changes
    /// what production answers.
    pub feedback_token: Option<String>,
    /// Dynamic batching, or `None` to run each request alone.
    pub batching: Option<Batching>,
    /// Online learning from feedback, or `None` (feedback is refused with 409).
    pub learning: Option<OnlineLearning>,
    /// More routes served beside the API (the live study reports of `lepton-serve`), or
    /// `None`.
    pub pages: Option<Pages>,
}

/// Routes served beside the API (read-only pages for people, such as
/// `lepton::studies_view`): behind the same token as `/v1` when one is set, and within its
/// concurrency limit and timeout, but outside its metrics. Their paths must not clash with
/// the API's.
#[derive(Clone)]
pub struct Pages(pub Router);

impl std::fmt::Debug for Pages {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Pages(..)")
    }
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            alias: PRODUCTION.to_owned(),
            poll_interval: Duration::from_secs(1),
            max_body_bytes: 8 << 20,
            max_rows: 1024,
            max_concurrency: 512,
            request_timeout: Duration::from_secs(10),
            memory_budget_bytes: 1 << 30,
            max_connections: 4096,
            header_read_timeout: Duration::from_secs(10),
            token: None,
            feedback_token: None,
            batching: Some(Batching::default()),
            learning: None,
            pages: None,
        }
    }
}

/// A request in flight is charged this many times its body against
/// [`ServerConfig::memory_budget_bytes`]: the body itself, its cells while parsed (a two-byte
/// JSON number becomes a cell of at most 32 bytes: 16 times), and the encoded rows.
pub const BODY_MEMORY_FACTOR: usize = 20;

impl ServerConfig {
    /// Refuses limits of zero, a memory budget too small for one largest request, and
    /// learning settings out of range or without a feedback token.
    fn check(&self) -> Result<()> {
        let invalid = |m: String| DeployError::Core(lepton_core::Error::InvalidInput(m));
        if self.max_rows == 0
            || self.max_concurrency == 0
            || self.max_body_bytes == 0
            || self.max_connections == 0
            || self.header_read_timeout.is_zero()
        {
            return Err(invalid(
                "max_rows, max_concurrency, max_body_bytes, max_connections and \
                 header_read_timeout must be positive"
                    .into(),
            ));
        }
        let largest = self.max_body_bytes.saturating_mul(BODY_MEMORY_FACTOR);
        if self.memory_budget_bytes < largest || self.memory_budget_bytes / 1024 > u32::MAX as usize
        {
            return Err(invalid(format!(
                "the memory budget ({} bytes) must be at least {BODY_MEMORY_FACTOR} times \
                 max_body_bytes ({largest} bytes), so that the largest request can run, and \
                 at most 4 TiB",
                self.memory_budget_bytes
            )));
        }
        if self.learning.is_some() && self.feedback_token.as_deref().is_none_or(str::is_empty) {
            return Err(invalid(
                "online learning must be given a feedback token: feedback changes what \
                 production answers, so it is never open to anyone who can predict"
                    .into(),
            ));
        }
        if let Some(l) = &self.learning {
            let ok = !l.interval.is_zero()
                && l.guard_fraction > 0.0
                && l.guard_fraction < 1.0
                && l.replay_ratio >= 0.0
                && l.margin >= 0.0
                && l.gain_z >= 0.0
                && l.max_buffer >= l.min_feedback
                && l.tuning.epochs >= 1
                && l.tuning.batch_size >= 1;
            if !ok {
                return Err(DeployError::Core(lepton_core::Error::InvalidInput(
                    format!(
                        "online learning {l:?}: the interval, epochs and batch size must be \
                 positive, the guard fraction in (0, 1), the margin, gain_z and replay ratio \
                 at least 0, and the buffer at least min_feedback"
                    ),
                )));
            }
        }
        Ok(())
    }
}

/// What every handler shares.
#[derive(Clone)]
pub(crate) struct AppState {
    config: Arc<ServerConfig>,
    models: Arc<Models>,
    metrics: Arc<Metrics>,
    in_flight: Arc<Semaphore>,
    /// The memory budget left, in KiB.
    memory_kib: Arc<Semaphore>,
    learner: Option<Arc<Learner>>,
}

/// The routes, the pages beside them, and their limits. Loads nothing: see
/// [`Models::sync`].
fn router(state: AppState) -> Router {
    // The token check is the outermost layer: it runs before admission and the body.
    let limited = |routes: Router<AppState>| {
        routes
            .layer(DefaultBodyLimit::max(state.config.max_body_bytes))
            .route_layer(axum::middleware::from_fn_with_state(
                state.clone(),
                api::admit,
            ))
    };
    let v1 = limited(
        Router::new()
            .route("/v1/models", get(api::list_models))
            .route("/v1/models/{name}", get(api::describe_model))
            .route("/v1/models/{name}/predict", post(api::predict)),
    )
    .route_layer(axum::middleware::from_fn_with_state(
        state.clone(),
        api::authorize,
    ));
    let feedback = limited(Router::new().route("/v1/models/{name}/feedback", post(api::feedback)))
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            api::authorize_feedback,
        ));
    let app = Router::new()
        .route("/healthz", get(api::healthz))
        .route("/readyz", get(api::readyz))
        .route("/metrics", get(api::metrics))
        .merge(v1)
        .merge(feedback)
        .fallback(api::not_found)
        .layer(CatchPanicLayer::custom(|_| {
            axum::response::IntoResponse::into_response(api::ApiError::new(
                axum::http::StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "the server failed while answering",
            ))
        }))
        // Failed answers at debug, not error: an overloaded server sheds thousands of 503s a
        // second, and an error line for each would flood the log (they are counted in the
        // metrics instead).
        .layer(
            TraceLayer::new_for_http()
                .on_failure(DefaultOnFailure::new().level(tracing::Level::DEBUG)),
        )
        .with_state(state.clone());
    // The pages behind the same token and limits as /v1.
    match state.config.pages.clone() {
        Some(Pages(pages)) => app.merge(
            pages
                .layer(axum::middleware::from_fn_with_state(
                    state.clone(),
                    api::admit,
                ))
                .layer(axum::middleware::from_fn_with_state(state, api::authorize)),
        ),
        None => app,
    }
}

/// A running server: its own tokio runtime on a background thread. [`shutdown`](Self::shutdown)
/// stops it gracefully (no new connections; requests in flight are answered).
pub struct Server {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<std::io::Result<()>>>,
}

impl Server {
    /// Binds `addr` (port 0 picks a free one), loads the version each model's alias points
    /// at, and starts answering; returns once it listens. Models with no loadable version
    /// are reported by `/readyz` and `/v1/models`, not as an error here.
    pub fn start(
        addr: SocketAddr,
        config: ServerConfig,
        registry: Arc<dyn Registry>,
        loader: Arc<dyn ModelLoader>,
    ) -> Result<Server> {
        Self::start_with_signal(addr, config, registry, loader, std::future::pending())
    }

    /// As [`start`](Self::start), also stopping gracefully when `signal` completes (for a
    /// binary: Ctrl-C or SIGTERM).
    pub fn start_with_signal(
        addr: SocketAddr,
        config: ServerConfig,
        registry: Arc<dyn Registry>,
        loader: Arc<dyn ModelLoader>,
        signal: impl Future<Output = ()> + Send + 'static,
    ) -> Result<Server> {
        let io = |e: std::io::Error| DeployError::Io {
            path: addr.to_string(),
            source: e,
        };
        config.check()?;
        // Bound here, so that the caller learns of a taken port at once; handed to the
        // runtime on its own thread (this may be called from inside another runtime).
        let listener = std::net::TcpListener::bind(addr).map_err(io)?;
        listener.set_nonblocking(true).map_err(io)?;
        let addr = listener.local_addr().map_err(io)?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .thread_name("lepton-serve")
            .build()
            .map_err(io)?;
        let metrics = Arc::new(Metrics::new());
        let models = Arc::new(Models::new(
            registry,
            loader,
            config.alias.clone(),
            config.batching,
            config.request_timeout,
            metrics.clone(),
        ));
        if models.sync() == 0 {
            tracing::warn!(
                alias = %config.alias,
                "no model has a loadable version under the alias yet; /readyz says 503 until one has"
            );
        }
        if config.token.is_none() && !addr.ip().is_loopback() {
            tracing::warn!(%addr, "serving a non-loopback address without a token: anyone who \
                can reach it can predict (set a token to require one)");
        }
        let limits = ConnectionLimits {
            max_connections: config.max_connections,
            header_read_timeout: config.header_read_timeout,
            max_header_bytes: 64 << 10,
            drain_timeout: config.request_timeout + config.header_read_timeout,
        };
        let state = AppState {
            in_flight: Arc::new(Semaphore::new(config.max_concurrency)),
            memory_kib: Arc::new(Semaphore::new(config.memory_budget_bytes / 1024)),
            learner: config.learning.clone().map(|l| Arc::new(Learner::new(l))),
            config: Arc::new(config),
            models,
            metrics,
        };
        let (stop, stopped) = oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("lepton-serve".into())
            .spawn(move || {
                runtime.block_on(async move {
                    let listener = tokio::net::TcpListener::from_std(listener)?;
                    let poller = tokio::spawn(follow_registry(state.clone()));
                    let learning = state.learner.clone().map(|learner| {
                        tokio::spawn(learning::follow_feedback(
                            learner,
                            state.models.clone(),
                            state.metrics.clone(),
                        ))
                    });
                    let shutdown = async move {
                        tokio::select! {
                            _ = stopped => {}
                            () = signal => {}
                        }
                        tracing::info!("shutting down: answering the requests in flight");
                    };
                    let app = router(state);
                    let served = listener::serve(listener, app, limits, shutdown).await;
                    poller.abort();
                    if let Some(learning) = learning {
                        learning.abort();
                    }
                    served
                })
            })
            .map_err(io)?;
        tracing::info!(%addr, "listening");
        Ok(Server {
            addr,
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops accepting connections, answers the requests in flight, and returns.
    pub fn shutdown(mut self) -> Result<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        self.join()
    }

    /// Blocks until the server stops (its signal fired), then returns.
    pub fn wait(mut self) -> Result<()> {
        self.join()
    }

    fn join(&mut self) -> Result<()> {
        let Some(thread) = self.thread.take() else {
            return Ok(());
        };
        let addr = self.addr.to_string();
        match thread.join() {
            Ok(result) => result.map_err(|source| DeployError::Io { path: addr, source }),
            Err(_) => Err(DeployError::Io {
                path: addr,
                source: std::io::Error::other("the server thread panicked"),
            }),
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let _ = self.join();
    }
}

/// Reads the registry every poll interval and swaps in newly promoted versions.
async fn follow_registry(state: AppState) {
    let mut tick = tokio::time::interval(state.config.poll_interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let models = state.models.clone();
        if let Err(e) = tokio::task::spawn_blocking(move || models.sync()).await {
            tracing::error!(error = %e, "registry poll failed");
        }
    }
}

/// Completes on Ctrl-C or, on Unix, SIGTERM: the signal a binary passes to
/// [`Server::start_with_signal`].
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
}
