//! Dynamic batching, the way Triton's dynamic batcher does it: rows of concurrent requests
//! wait in a queue; a worker takes the first request, waits up to a time window for more
//! (until the batch holds `max_rows`), runs them through the model as one batch, and answers
//! each request with its own rows.
//!
//! Unlike a fixed queue delay, a worker waits only while more requests are on their way: each
//! request announces itself on arrival ([`Batcher::arriving`]) before its body is parsed,
//! and the worker stops waiting as soon as the queue is empty and no announced request is
//! still being parsed. A lone request therefore never waits for the window.
//!
//! As Triton's queue policy does, a job whose requester has gone (it timed out) or that has
//! waited longer than the queue's deadline is dropped before it reaches the model, so an
//! overloaded server does not spend itself on answers nobody reads. A model that panics
//! fails the jobs of that call only: the panic is caught, counted, and the worker goes on.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{
    Receiver, RecvTimeoutError, SyncSender, TryRecvError, TrySendError, sync_channel,
};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

use lepton_core::Prediction;

use crate::servable::{Inputs, Servable};

/// How requests are grouped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Batching {
    /// The longest a request waits for others to join its batch.
    pub window: Duration,
    /// The most rows in one batch (a larger request runs alone).
    pub max_rows: usize,
    /// Worker threads, each running one batch at a time.
    pub workers: usize,
}

impl Default for Batching {
    /// A 0.5 ms window, 64 rows, one worker per core (the best of 0.2, 0.5, 1 and 2 ms for
    /// the MNIST MLP on 2 cores, `docs/benchmarks.md`).
    fn default() -> Self {
        Batching {
            window: Duration::from_micros(500),
            max_rows: 64,
            workers: std::thread::available_parallelism().map_or(1, |n| n.get()),
        }
    }
}

type Reply = oneshot::Sender<lepton_core::Result<Vec<Prediction>>>;

struct Job {
    inputs: Inputs,
    rows: usize,
    reply: Reply,
    queued: Instant,
}

impl Job {
    /// Whether anyone still waits for this job's answer, within the queue's deadline.
    fn wanted(&self, deadline: Duration) -> bool {
        !self.reply.is_closed() && self.queued.elapsed() <= deadline
    }
}

/// The queue in front of one model version and the workers draining it. Dropping the
/// batcher closes the queue; its workers answer what is queued, then stop.
/// Workers are detached: dropping a batcher on a hot swap never blocks a request.
pub(crate) struct Batcher {
    queue: SyncSender<Job>,
    /// Requests announced but not yet queued (their bodies are being parsed).
    arriving: Arc<AtomicUsize>,
    /// Worker threads still running (one that died would leave this below its count).
    alive: Arc<AtomicUsize>,
}

/// A request on its way to the queue, announced by [`Batcher::arriving`]: while it lives, a
/// worker forming a batch waits for it.
pub(crate) struct Arrival {
    queue: SyncSender<Job>,
    arriving: Arc<AtomicUsize>,
}

impl Drop for Arrival {
    fn drop(&mut self) {
        self.arriving.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Arrival {
    /// Queues the request's `rows` encoded rows and returns where their predictions will
    /// arrive.
    pub fn submit(
        self,
        inputs: Inputs,
        rows: usize,
    ) -> Result<oneshot::Receiver<lepton_core::Result<Vec<Prediction>>>, QueueFull> {
        let (reply, answer) = oneshot::channel();
        let queued = self.queue.try_send(Job {
            inputs,
            rows,
            reply,
            queued: Instant::now(),
        });
        // Only once queued (by dropping `self`) is the request no longer awaited: a worker
        // that finds the queue empty and nothing arriving stops waiting.
        drop(self);
        match queued {
            Ok(()) => Ok(answer),
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => Err(QueueFull),
        }
    }
}

/// The queue is full: the server is overloaded.
pub(crate) struct QueueFull;

impl Batcher {
    /// Starts `batching.workers` workers for `model`. A job queued longer than `deadline`
    /// is dropped unanswered by the model; `observe` hears the size of each batch run, and
    /// `on_panic` each panic of the model.
    pub fn start(
        model: Arc<dyn Servable>,
        batching: Batching,
        deadline: Duration,
        observe: impl Fn(usize) + Send + Sync + 'static,
        on_panic: impl Fn() + Send + Sync + 'static,
    ) -> Self {
        // Enough room for every worker's next batch, several times over.
        let capacity = batching.max_rows.max(1) * batching.workers.max(1) * 8;
        let (queue, rx) = sync_channel::<Job>(capacity);
        let rx = Arc::new(Mutex::new(rx));
        let observe = Arc::new(observe);
        let on_panic: Arc<dyn Fn() + Send + Sync> = Arc::new(on_panic);
        let arriving = Arc::new(AtomicUsize::new(0));
        let alive = Arc::new(AtomicUsize::new(0));
        for _ in 0..batching.workers.max(1) {
            let (rx, model, observe) = (rx.clone(), model.clone(), observe.clone());
            let (arriving, on_panic) = (arriving.clone(), on_panic.clone());
            let running = Running::start(alive.clone());
            std::thread::spawn(move || {
                let _running = running;
                let mut carried = None;
                while let Some(batch) = next_batch(&rx, &mut carried, &arriving, batching) {
                    let batch: Vec<Job> =
                        batch.into_iter().filter(|j| j.wanted(deadline)).collect();
                    if batch.is_empty() {
                        continue;
                    }
                    observe(batch.iter().map(|j| j.rows).sum());
                    run(model.as_ref(), batch, on_panic.as_ref());
                }
            });
        }
        Batcher {
            queue,
            arriving,
            alive,
        }
    }

    /// How many of the workers are running.
    pub fn workers_alive(&self) -> usize {
        self.alive.load(Ordering::SeqCst)
    }

    /// Announces a request whose rows will be submitted (or dropped) soon.
    pub fn arriving(&self) -> Arrival {
        self.arriving.fetch_add(1, Ordering::SeqCst);
        Arrival {
            queue: self.queue.clone(),
            arriving: self.arriving.clone(),
        }
    }
}

/// The next batch: the first job to arrive (or the one carried over), then whatever arrives
/// within the window while the rows fit and more requests are on their way. `None` once the
/// queue is closed and drained.
fn next_batch(
    rx: &Mutex<Receiver<Job>>,
    carried: &mut Option<Job>,
    arriving: &AtomicUsize,
    batching: Batching,
) -> Option<Vec<Job>> {
    let rx = rx.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let first = match carried.take() {
        Some(job) => job,
        None => rx.recv().ok()?,
    };
    let mut rows = first.rows;
    let mut batch = vec![first];
    let deadline = Instant::now() + batching.window;
    // How long to wait at a time before looking again whether anything is still arriving.
    let glance = Duration::from_micros(50);
    while rows < batching.max_rows {
        let job = match rx.try_recv() {
            Ok(job) => job,
            Err(TryRecvError::Disconnected) => break,
            Err(TryRecvError::Empty) => {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() || arriving.load(Ordering::SeqCst) == 0 {
                    break;
                }
                match rx.recv_timeout(left.min(glance)) {
                    Ok(job) => job,
                    Err(RecvTimeoutError::Timeout) => continue,
                    Err(RecvTimeoutError::Disconnected) => break,
                }
            }
        };
        if rows + job.rows > batching.max_rows {
            *carried = Some(job);
            break;
        }
        rows += job.rows;
        batch.push(job);
    }
    Some(batch)
}

/// Counts a worker thread as running from its start until it ends, however it ends.
struct Running(Arc<AtomicUsize>);

impl Running {
    fn start(alive: Arc<AtomicUsize>) -> Self {
        alive.fetch_add(1, Ordering::SeqCst);
        Running(alive)
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Predicts, turning a panic of the model into an error (and telling `on_panic`), so that one
/// bad input costs its own answer and not the thread that runs the model.
pub(crate) fn predict_caught(
    model: &dyn Servable,
    inputs: &Inputs,
    on_panic: &dyn Fn(),
) -> lepton_core::Result<Vec<Prediction>> {
    catch_unwind(AssertUnwindSafe(|| inputs.predict(model))).unwrap_or_else(|panic| {
        on_panic();
        let what = panic
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "no message".into());
        tracing::error!(panic = %what, "the model panicked while predicting");
        Err(lepton_core::Error::InvalidInput(format!(
            "the model panicked while predicting: {what}"
        )))
    })
}

/// The inputs of a batch's jobs as one, or `None` when they are of different kinds.
fn joined(batch: &[Job]) -> Option<Inputs> {
    match batch.first().map(|j| &j.inputs)? {
        Inputs::Numbers(_) => {
            let mut all = Vec::new();
            for job in batch {
                let Inputs::Numbers(values) = &job.inputs else {
                    return None;
                };
                all.extend_from_slice(values);
            }
            Some(Inputs::Numbers(all))
        }
        Inputs::Texts(_) => {
            let mut all = Vec::new();
            for job in batch {
                let Inputs::Texts(texts) = &job.inputs else {
                    return None;
                };
                all.extend(texts.iter().cloned());
            }
            Some(Inputs::Texts(all))
        }
    }
}

/// Runs a batch and answers each job with its rows' predictions. Should the batch fail as a
/// whole, each job runs alone so that one job's error is not another's.
fn run(model: &dyn Servable, batch: Vec<Job>, on_panic: &dyn Fn()) {
    if batch.len() == 1 {
        return run_alone(model, batch, on_panic);
    }
    let Some(inputs) = joined(&batch) else {
        return run_alone(model, batch, on_panic);
    };
    let rows: usize = batch.iter().map(|j| j.rows).sum();
    match predict_caught(model, &inputs, on_panic) {
        Ok(mut predictions) if predictions.len() == rows => {
            // Split from the back so each job takes its own tail.
            for job in batch.into_iter().rev() {
                let own = predictions.split_off(predictions.len() - job.rows);
                // A requester that gave up (timed out) no longer listens.
                let _ = job.reply.send(Ok(own));
            }
        }
        _ => run_alone(model, batch, on_panic),
    }
}

fn run_alone(model: &dyn Servable, batch: Vec<Job>, on_panic: &dyn Fn()) {
    for job in batch {
        if job.reply.is_closed() {
            continue;
        }
        let answer = predict_caught(model, &job.inputs, on_panic);
        let _ = job.reply.send(answer);
    }
}
