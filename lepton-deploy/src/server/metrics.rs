//! The server's Prometheus metrics, served as OpenMetrics text on `GET /metrics`.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// A model's label.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct ModelLabel {
    pub model: String,
}

/// A request's labels: the endpoint, the model (empty where none) and the status code.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct RequestLabels {
    pub endpoint: String,
    pub model: String,
    pub status: u16,
}

type Histograms<L> = Family<L, Histogram, fn() -> Histogram>;

/// Every metric the server keeps.
pub(crate) struct Metrics {
    registry: Registry,
    /// Requests by endpoint, model and status.
    pub requests: Family<RequestLabels, Counter>,
    /// Seconds from a prediction request's arrival to its answer.
    pub latency: Histograms<ModelLabel>,
    /// Rows predicted.
    pub rows: Family<ModelLabel, Counter>,
    /// Rows per batch the model ran (one request per batch without dynamic batching).
    pub batch_rows: Histograms<ModelLabel>,
    /// The version each model serves.
    pub version: Family<ModelLabel, Gauge>,
    /// Versions that failed to load (and were not served).
    pub load_failures: Family<ModelLabel, Counter>,
    /// Panics of a model while predicting, caught (the request failed, the worker lives on).
    pub panics: Family<ModelLabel, Counter>,
    /// Requests refused because the server was at its concurrency limit.
    pub shed: Counter,
    /// Labelled feedback rows received.
    pub feedback_rows: Family<ModelLabel, Counter>,
    /// Fine-tuned candidates, by outcome (`promoted` or `rejected`).
    pub candidates: Family<CandidateLabels, Counter>,
}

/// A candidate's labels: the model and what became of it.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct CandidateLabels {
    pub model: String,
    pub outcome: String,
}

fn latency_histogram() -> Histogram {
    // 50 µs to about 3 s.
    Histogram::new(exponential_buckets(5e-5, 2.0, 16))
}

fn batch_histogram() -> Histogram {
    Histogram::new(exponential_buckets(1.0, 2.0, 11))
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("lepton");
        let requests = Family::<RequestLabels, Counter>::default();
        let latency =
            Histograms::<ModelLabel>::new_with_constructor(latency_histogram as fn() -> _);
        let rows = Family::<ModelLabel, Counter>::default();
        let batch_rows =
            Histograms::<ModelLabel>::new_with_constructor(batch_histogram as fn() -> _);
        let version = Family::<ModelLabel, Gauge>::default();
        let load_failures = Family::<ModelLabel, Counter>::default();
        let panics = Family::<ModelLabel, Counter>::default();
        let shed = Counter::default();
        let feedback_rows = Family::<ModelLabel, Counter>::default();
        let candidates = Family::<CandidateLabels, Counter>::default();
        registry.register(
            "http_requests",
            "HTTP requests by endpoint, model and status",
            requests.clone(),
        );
        registry.register(
            "predict_latency_seconds",
            "Time to answer a prediction request",
            latency.clone(),
        );
        registry.register("predicted_rows", "Rows predicted", rows.clone());
        registry.register("batch_rows", "Rows per model batch", batch_rows.clone());
        registry.register(
            "model_version",
            "The registry version each model serves",
            version.clone(),
        );
        registry.register(
            "model_load_failures",
            "Versions that failed to load and were not served",
            load_failures.clone(),
        );
        registry.register(
            "model_panics",
            "Panics of a model while predicting, caught: the request failed, the server goes on",
            panics.clone(),
        );
        registry.register(
            "shed_requests",
            "Requests refused at the concurrency or memory limit (503)",
            shed.clone(),
        );
        registry.register(
            "feedback_rows",
            "Labelled feedback rows received",
            feedback_rows.clone(),
        );
        registry.register(
            "candidates",
            "Fine-tuned candidates, by outcome",
            candidates.clone(),
        );
        Metrics {
            registry,
            requests,
            latency,
            rows,
            batch_rows,
            version,
            load_failures,
            panics,
            shed,
            feedback_rows,
            candidates,
        }
    }

    /// The OpenMetrics text of every metric.
    pub fn encode(&self) -> String {
        let mut text = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut text, &self.registry);
        text
    }

    pub fn model(name: &str) -> ModelLabel {
        ModelLabel {
            model: name.to_owned(),
        }
    }
}
