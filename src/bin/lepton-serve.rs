//! `lepton-serve`: the HTTP prediction server over a model registry.
//!
//! ```text
//! lepton-serve --registry DIR [--addr 127.0.0.1:8080] [--alias production]
//!              [--batch-window-us 500] [--batch-max-rows 64] [--batch-workers N]
//!              [--max-concurrency 512] [--max-rows 1024] [--max-body-bytes 8388608]
//!              [--memory-budget-mib 1024] [--max-connections 4096] [--header-timeout-ms 10000]
//!              [--timeout-ms 10000] [--poll-ms 1000]
//!              [--learn] [--learn-interval-s 30] [--learn-min-feedback 200] [--learn-margin 0.01]
//!              [--learn-epochs 3] [--learn-rate 0.001] [--learn-promotion-interval-s 600]
//!              [--learn-keep 5]
//!              [--studies URL] [--log-format pretty|json]
//! ```
//!
//! With `--studies URL`, `/studies` lists the studies of that storage and `/studies/{name}`
//! shows a study's report (`lepton study report`'s page), reloading itself as trials finish.
//!
//! With `--learn`, `POST /v1/models/{name}/feedback` takes labelled rows, with
//! `Authorization: Bearer $LEPTON_FEEDBACK_TOKEN` (required: it does not start without one);
//! every interval a model with enough of them gets a fine-tuned candidate, which becomes a new
//! registry version (promoted, with its parent recorded) only if it does significantly better
//! on held-out feedback and no worse than the margin, against the version an operator
//! promoted, on the held-out replay rows of its artifact. A model whose artifact has no replay
//! sample does not learn.
//!
//! Serves the version each model's alias points at and follows promotions and rollbacks.
//! With `LEPTON_API_TOKEN` set, `/v1` and `/studies` ask for
//! `Authorization: Bearer $LEPTON_API_TOKEN`; without it, binding a non-loopback address is
//! warned about. `docs/reliability.md` lists every limit and its default.
//! Ctrl-C or SIGTERM stops it after answering the requests in flight. Logs go to stderr
//! (`RUST_LOG` filters them; `info` by default), as text or, with `--log-format json`, JSON.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use lepton::ArtifactLoader;
use lepton::deploy::server::{Pages, shutdown_signal};
use lepton::deploy::{
    Batching, LocalRegistry, OnlineLearning, PRODUCTION, Server, ServerConfig, Tuning,
};
use lepton::logging::LogFormat;

#[derive(Parser)]
#[command(
    name = "lepton-serve",
    version,
    about = "Serve a Lepton model registry over HTTP"
)]
struct Args {
    /// The registry's root directory.
    #[arg(long)]
    registry: PathBuf,
    /// Also serve the studies of this storage (memory:, sqlite://PATH, postgres://...) as live
    /// report pages under /studies, refreshing as trials finish. The pages only read the
    /// studies (though opening a SQLite path that does not exist creates an empty database)
    /// and are not behind the API token: bind to a private address if the studies are private.
    #[arg(long, value_name = "URL")]
    studies: Option<String>,
    /// How log lines on stderr look (RUST_LOG filters them; info by default).
    #[arg(long, value_enum, default_value_t = LogFormat::Pretty)]
    log_format: LogFormat,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8080")]
    addr: SocketAddr,
    /// The alias whose version of each model is served.
    #[arg(long, default_value = PRODUCTION)]
    alias: String,
    /// Dynamic batching window in microseconds; 0 runs each request alone.
    #[arg(long, default_value_t = 500)]
    batch_window_us: u64,
    /// The most rows in one batch.
    #[arg(long, default_value_t = 64)]
    batch_max_rows: usize,
    /// Batch worker threads (default: one per core).
    #[arg(long)]
    batch_workers: Option<usize>,
    /// The most requests in flight; more get 503 at once.
    #[arg(long, default_value_t = 512)]
    max_concurrency: usize,
    /// The most rows in one request.
    #[arg(long, default_value_t = 1024)]
    max_rows: usize,
    /// The largest request body in bytes.
    #[arg(long, default_value_t = 8 << 20)]
    max_body_bytes: usize,
    /// The memory request bodies in flight may take (20 times their size each), in MiB;
    /// more are refused with 503.
    #[arg(long, default_value_t = 1024)]
    memory_budget_mib: usize,
    /// The most open connections; more wait to be accepted.
    #[arg(long, default_value_t = 4096)]
    max_connections: usize,
    /// How long a client has to send a request's headers (also the keep-alive idle time),
    /// in milliseconds.
    #[arg(long, default_value_t = 10_000)]
    header_timeout_ms: u64,
    /// Request timeout in milliseconds.
    #[arg(long, default_value_t = 10_000)]
    timeout_ms: u64,
    /// How often to read the registry for promotions, in milliseconds.
    #[arg(long, default_value_t = 1000)]
    poll_ms: u64,
    /// Learn online from `POST /v1/models/{name}/feedback`.
    #[arg(long)]
    learn: bool,
    /// Seconds between learning rounds.
    #[arg(long, default_value_t = 30)]
    learn_interval_s: u64,
    /// The fewest buffered feedback rows worth a candidate.
    #[arg(long, default_value_t = 200)]
    learn_min_feedback: usize,
    /// How much worse a candidate may score on the replay guard.
    #[arg(long, default_value_t = 0.01)]
    learn_margin: f64,
    /// Fine-tuning epochs per candidate.
    #[arg(long, default_value_t = 3)]
    learn_epochs: usize,
    /// Fine-tuning learning rate.
    #[arg(long, default_value_t = 1e-3)]
    learn_rate: f64,
    /// The fewest seconds between two promotions of one model by learning.
    #[arg(long, default_value_t = 600)]
    learn_promotion_interval_s: u64,
    /// How many learned versions of each model the registry keeps.
    #[arg(long, default_value_t = 5)]
    learn_keep: usize,
}

/// A secret from the environment, if set and not empty.
fn secret(variable: &str) -> Option<String> {
    std::env::var(variable).ok().filter(|t| !t.is_empty())
}

fn main() -> ExitCode {
    let args = Args::parse();
    if let Err(e) = lepton::logging::init(args.log_format, "info", None) {
        eprintln!("error: {e}");
        return ExitCode::FAILURE;
    }
    let default = Batching::default();
    let batching = (args.batch_window_us > 0).then(|| Batching {
        window: Duration::from_micros(args.batch_window_us),
        max_rows: args.batch_max_rows,
        workers: args.batch_workers.unwrap_or(default.workers),
    });
    let pages = match args.studies.as_deref().map(lepton::search::storage::open) {
        None => None,
        Some(Ok(storage)) => Some(Pages(lepton::studies_view(storage))),
        Some(Err(e)) => {
            eprintln!("error: --studies: {e}");
            return ExitCode::FAILURE;
        }
    };
    let config = ServerConfig {
        alias: args.alias,
        poll_interval: Duration::from_millis(args.poll_ms),
        max_body_bytes: args.max_body_bytes,
        max_rows: args.max_rows,
        max_concurrency: args.max_concurrency,
        request_timeout: Duration::from_millis(args.timeout_ms),
        memory_budget_bytes: args.memory_budget_mib.saturating_mul(1 << 20),
        max_connections: args.max_connections,
        header_read_timeout: Duration::from_millis(args.header_timeout_ms),
        token: secret("LEPTON_API_TOKEN"),
        feedback_token: secret("LEPTON_FEEDBACK_TOKEN"),
        batching,
        pages,
        learning: args.learn.then(|| OnlineLearning {
            interval: Duration::from_secs(args.learn_interval_s),
            min_feedback: args.learn_min_feedback,
            margin: args.learn_margin,
            min_promotion_interval: Duration::from_secs(args.learn_promotion_interval_s),
            keep_learned: args.learn_keep,
            tuning: Tuning {
                epochs: args.learn_epochs,
                learning_rate: args.learn_rate,
                ..Tuning::default()
            },
            ..OnlineLearning::default()
        }),
    };
    if !args.registry.is_dir() {
        tracing::warn!(
            registry = %args.registry.display(),
            "the registry directory does not exist (yet): nothing is served until a model is \
             deployed there"
        );
    }
    let served = Server::start_with_signal(
        args.addr,
        config,
        Arc::new(LocalRegistry::new(args.registry)),
        Arc::new(ArtifactLoader),
        shutdown_signal(),
    )
    .and_then(|server| {
        // The address on stdout, for scripts that start it on port 0.
        println!("listening on http://{}", server.local_addr());
        server.wait()
    });
    match served {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
