//! Logs for Lepton's binaries and examples: a `tracing` subscriber that writes human-readable
//! or JSON lines to stderr, filtered by `RUST_LOG`, and can keep one log file per trial.
//!
//! Every crate emits `tracing` spans and events: a `study` span (field `study`), a `trial` span
//! (its number) around each trial, and in them each epoch's metrics, each pruning decision
//! with its reason, and the trial's end with its state, value and parameters; storages log
//! their retries. A library installs no subscriber: the application chooses, here with
//! [`init`].

use std::collections::HashMap;
use std::fmt::Write as _;
use std::fs::{File, OpenOptions};
use std::io::{IsTerminal, Write as _};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id};
use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::time::{FormatTime, SystemTime};
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer, filter::LevelFilter};

/// How log lines on stderr look.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
pub enum LogFormat {
    /// One readable line per event, coloured on a terminal.
    #[default]
    Pretty,
    /// One JSON object per line (timestamp, level, target, fields, spans), for log shippers.
    Json,
}

impl std::str::FromStr for LogFormat {
    type Err = String;

    /// `pretty` or `json` (for programs that parse their arguments by hand).
    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "pretty" => Ok(LogFormat::Pretty),
            "json" => Ok(LogFormat::Json),
            _ => Err(format!("unknown log format `{s}`: pretty or json")),
        }
    }
}

/// Installs the process's `tracing` subscriber: events on stderr in `format`, filtered by
/// `RUST_LOG` (`default_filter` when it is unset, e.g. `"warn"` or `"info"`), and with
/// `trial_logs`, every `info` event inside a trial also appended to
/// `DIR/STUDY/trial-NUMBER.log` (see [`TrialFiles`]). Fails if a subscriber is installed
/// already.
pub fn init(
    format: LogFormat,
    default_filter: &str,
    trial_logs: Option<&Path>,
) -> Result<(), tracing_subscriber::util::TryInitError> {
    let filter =
        || EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_filter));
    let stderr = match format {
        LogFormat::Pretty => tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .with_ansi(std::io::stderr().is_terminal())
            .with_filter(filter())
            .boxed(),
        LogFormat::Json => tracing_subscriber::fmt::layer()
            .json()
            .with_writer(std::io::stderr)
            .with_filter(filter())
            .boxed(),
    };
    let files = trial_logs.map(|dir| TrialFiles::new(dir).with_filter(LevelFilter::INFO));
    tracing_subscriber::registry()
        .with(stderr)
        .with(files)
        .try_init()
}

/// A `tracing` layer that appends every event inside a `trial` span to that trial's own file,
/// `DIR/STUDY/trial-NUMBER.log` (`STUDY` is the `study` field of the enclosing `study` span,
/// `_` without one; characters other than letters, digits, `-`, `_` and `.` become `_`). A
/// line is the time, the level, the target, the message and the fields:
///
/// ```text
/// 2026-12-05T22:41:07.532144Z  INFO lepton_models::training: epoch done epoch=3 valid_score=0.981
/// ```
///
/// A file that cannot be written is reported once on stderr; the trial goes on.
#[derive(Debug)]
pub struct TrialFiles {
    dir: PathBuf,
    open: Mutex<HashMap<PathBuf, File>>,
    complained: AtomicBool,
}

/// The span extension that names a trial's file.
struct TrialFile(PathBuf);

/// The span extension of a study span: its name.
struct StudyName(String);

impl TrialFiles {
    /// Files under `dir` (created when the first trial logs).
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        TrialFiles {
            dir: dir.into(),
            open: Mutex::new(HashMap::new()),
            complained: AtomicBool::new(false),
        }
    }

    fn append(&self, path: &Path, line: &str) -> std::io::Result<()> {
        let mut open = self
            .open
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if !open.contains_key(path) {
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent)?;
            }
            let file = OpenOptions::new().create(true).append(true).open(path)?;
            open.insert(path.to_owned(), file);
        }
        match open.get_mut(path) {
            Some(file) => file.write_all(line.as_bytes()),
            None => Ok(()),
        }
    }
}

impl<S: Subscriber + for<'a> LookupSpan<'a>> Layer<S> for TrialFiles {
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else { return };
        let mut fields = Fields::default();
        attrs.record(&mut fields);
        match attrs.metadata().name() {
            "study" => {
                if let Some(name) = fields.get("study") {
                    span.extensions_mut().insert(StudyName(name.to_owned()));
                }
            }
            "trial" => {
                let Some(number) = fields.get("number") else {
                    return;
                };
                let study = span
                    .scope()
                    .skip(1)
                    .find_map(|s| s.extensions().get::<StudyName>().map(|n| file_safe(&n.0)))
                    .unwrap_or_else(|| "_".into());
                let path = self
                    .dir
                    .join(study)
                    .join(format!("trial-{}.log", file_safe(number)));
                span.extensions_mut().insert(TrialFile(path));
            }
            _ => {}
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let Some(scope) = ctx.event_scope(event) else {
            return;
        };
        let Some(path) = scope
            .from_root()
            .find_map(|s| s.extensions().get::<TrialFile>().map(|f| f.0.clone()))
        else {
            return;
        };
        let mut fields = Fields::default();
        event.record(&mut fields);
        let meta = event.metadata();
        let mut line = String::new();
        let _ = SystemTime.format_time(&mut Writer::new(&mut line));
        let _ = write!(line, " {:>5} {}:", meta.level(), meta.target());
        if let Some(message) = fields.get("message") {
            let _ = write!(line, " {message}");
        }
        for (name, value) in fields.0.iter().filter(|(n, _)| n != "message") {
            let _ = write!(line, " {name}={value}");
        }
        line.push('\n');
        if let Err(e) = self.append(&path, &line)
            && !self.complained.swap(true, Ordering::Relaxed)
        {
            eprintln!(
                "warning: cannot write the trial log {}: {e}",
                path.display()
            );
        }
    }

    fn on_close(&self, id: Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(&id) else { return };
        if let Some(file) = span.extensions().get::<TrialFile>() {
            self.open
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .remove(&file.0);
        }
    }
}

/// An event's or span's fields, printed.
#[derive(Default)]
struct Fields(Vec<(String, String)>);

impl Fields {
    fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.push((field.name().to_owned(), value.to_owned()));
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0.push((field.name().to_owned(), format!("{value:?}")));
    }
}

/// `name` with every character but ASCII letters, digits, `-`, `_` and `.` replaced by `_`
/// (and a leading `.` too, so no name climbs out of the directory); a name that changed gets
/// a hash of itself appended, so that `exp/1` and `exp_1` keep files of their own.
fn file_safe(name: &str) -> String {
    let safe: String = name
        .chars()
        .enumerate()
        .map(|(i, c)| match c {
            '.' if i == 0 => '_',
            c if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') => c,
            _ => '_',
        })
        .collect();
    // `_` is the directory of trials outside any study.
    if safe == name && name != "_" {
        return safe;
    }
    // FNV-1a: the same on every run and platform.
    let hash = name.bytes().fold(0x811c_9dc5_u32, |h, b| {
        (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
    });
    format!("{safe}-{hash:08x}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_parse_by_name() {
        assert_eq!("json".parse::<LogFormat>(), Ok(LogFormat::Json));
        assert_eq!("Pretty".parse::<LogFormat>(), Ok(LogFormat::Pretty));
        assert!(
            "xml"
                .parse::<LogFormat>()
                .unwrap_err()
                .contains("pretty or json")
        );
    }

    #[test]
    fn file_names_stay_in_their_directory() {
        assert_eq!(file_safe("mnist-1"), "mnist-1");
        assert!(file_safe("../etc/passwd").starts_with("_._etc_passwd-"));
        assert!(file_safe("a b/c").starts_with("a_b_c-"));
        // Names that clean up alike keep their own files.
        assert_ne!(file_safe("exp/1"), file_safe("exp_1"));
        assert_ne!(file_safe("_"), "_");
    }

    #[test]
    fn each_trial_writes_its_own_file_under_its_study() {
        let dir = tempfile::tempdir().unwrap();
        let subscriber = tracing_subscriber::registry().with(TrialFiles::new(dir.path()));
        tracing::subscriber::with_default(subscriber, || {
            let study = tracing::info_span!("study", study = "demo");
            let _in_study = study.enter();
            tracing::info!("outside any trial");
            for number in 0..2u64 {
                let trial = tracing::info_span!("trial", number);
                let _in_trial = trial.enter();
                tracing::info!(epoch = 1, valid_score = 0.5 + number as f64, "epoch done");
                tracing::warn!(trial = number, "trial pruned");
            }
        });
        let read = |n: u64| {
            std::fs::read_to_string(dir.path().join(format!("demo/trial-{n}.log"))).unwrap()
        };
        let first = read(0);
        let lines: Vec<&str> = first.lines().collect();
        assert_eq!(lines.len(), 2, "{first}");
        assert!(
            lines[0].ends_with("INFO lepton::logging::tests: epoch done epoch=1 valid_score=0.5"),
            "{}",
            lines[0]
        );
        assert!(lines[1].contains("WARN") && lines[1].ends_with("trial pruned trial=0"));
        assert!(read(1).contains("valid_score=1.5"));
        // Events outside a trial go to no trial's file.
        assert!(!first.contains("outside"));
        assert_eq!(
            std::fs::read_dir(dir.path().join("demo")).unwrap().count(),
            2
        );
    }
}
