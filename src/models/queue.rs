//! A model's own OS thread and the queue that feeds it. Callers (async gRPC handlers, the CLI)
//! only enqueue and wait on a oneshot; tokenization and forward passes happen on the model
//! thread, never on the async runtime. Requests that arrive while one pass runs are drained
//! together and cut into forward passes by a token budget, so concurrent small requests share
//! batches. Past `max_pending_texts` a request is refused with [`ModelError::Overloaded`] at once
//! rather than queued without bound.
//!
//! The queue is the same for every model kind; what a round of requests turns into (vectors,
//! rerank scores) is the model's [`Batched`] implementation.
use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

use tokio::sync::oneshot;

use super::error::{ModelError, Result};
use super::{BatchLimits, EmbedKind, EmbedOutput, EmbeddingModel, ModelInfo};

/// Queue and batching settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EmbedderConfig {
    /// Forward-pass size limits.
    pub limits: BatchLimits,
    /// Texts queued or in flight beyond which new requests get [`ModelError::Overloaded`].
    pub max_pending_texts: usize,
    /// Texts one request may hold ([`ModelError::RequestTooLarge`] beyond).
    pub max_request_texts: usize,
}

impl Default for EmbedderConfig {
    fn default() -> Self {
        EmbedderConfig {
            limits: BatchLimits::default(),
            max_pending_texts: 8192,
            max_request_texts: 2048,
        }
    }
}

/// A model that serves requests in rounds: every request queued while the previous round ran is
/// handed over at once, so their texts can share forward passes.
pub(crate) trait Batched: Send + Sync + 'static {
    /// One caller's request.
    type Job: Send + 'static;
    /// What one request gets back.
    type Output: Send + 'static;
    /// The model thread's name.
    const THREAD: &'static str;
    /// Texts (or pairs) in a request: what the queue bounds.
    fn items(job: &Self::Job) -> usize;
    /// The answer to a request of no texts, given without a round trip to the thread.
    fn empty(&self) -> Self::Output;
    /// Facts about the model.
    fn info(&self) -> &ModelInfo;
    /// Serves one round: one result per job, in order. An error in one job's input (an
    /// instruction the model does not take) fails that job only.
    fn process(&self, jobs: &[Self::Job], limits: BatchLimits) -> Vec<Result<Self::Output>>;
}

struct Pending<J, O> {
    job: J,
    reply: oneshot::Sender<Result<O>>,
}

struct State<J, O> {
    jobs: VecDeque<Pending<J, O>>,
    /// Texts queued or being processed.
    pending_texts: usize,
    closed: bool,
}

struct Shared<J, O> {
    state: Mutex<State<J, O>>,
    wake: Condvar,
}

impl<J, O> Shared<J, O> {
    fn lock(&self) -> MutexGuard<'_, State<J, O>> {
        // A panic on the model thread while holding the lock leaves the queue itself consistent
        // (it only pushes and pops), so keep serving.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Closes the queue when the last handle clone goes away; the model thread then finishes the
/// queued jobs and exits. It is not joined, so dropping never blocks an async task.
struct Handle<J, O> {
    shared: Arc<Shared<J, O>>,
}

impl<J, O> Drop for Handle<J, O> {
    fn drop(&mut self) {
        self.shared.lock().closed = true;
        self.shared.wake.notify_all();
    }
}

/// A handle to a model running on its own thread. Cheap to clone; all clones share one queue.
pub(crate) struct Worker<M: Batched> {
    handle: Arc<Handle<M::Job, M::Output>>,
    model: Arc<M>,
    config: EmbedderConfig,
}

impl<M: Batched> Clone for Worker<M> {
    fn clone(&self) -> Self {
        Worker {
            handle: Arc::clone(&self.handle),
            model: Arc::clone(&self.model),
            config: self.config,
        }
    }
}

impl<M: Batched> Worker<M> {
    /// Starts the model thread.
    pub(crate) fn spawn(model: Arc<M>, config: EmbedderConfig) -> Result<Self> {
        let shared = Arc::new(Shared {
            state: Mutex::new(State { jobs: VecDeque::new(), pending_texts: 0, closed: false }),
            wake: Condvar::new(),
        });
        let worker = Arc::clone(&shared);
        let m = Arc::clone(&model);
        std::thread::Builder::new()
            .name(M::THREAD.to_owned())
            .spawn(move || run(&*m, &worker, config.limits))
            .map_err(|e| ModelError::Io {
                path: format!("thread {}", M::THREAD).into(),
                source: e,
            })?;
        Ok(Worker { handle: Arc::new(Handle { shared }), model, config })
    }

    pub(crate) fn info(&self) -> &ModelInfo {
        self.model.info()
    }

    pub(crate) fn config(&self) -> &EmbedderConfig {
        &self.config
    }

    /// Texts (or pairs) queued or in the forward pass now.
    pub(crate) fn depth(&self) -> usize {
        self.handle.shared.lock().pending_texts
    }

    pub(crate) async fn call(&self, job: M::Job) -> Result<M::Output> {
        match self.submit(job)? {
            Submitted::Done(out) => Ok(out),
            Submitted::Waiting(rx) => rx.await.map_err(|_| ModelError::WorkerGone)?,
        }
    }

    /// Panics if called on an async runtime thread (tokio forbids blocking there).
    pub(crate) fn call_blocking(&self, job: M::Job) -> Result<M::Output> {
        match self.submit(job)? {
            Submitted::Done(out) => Ok(out),
            Submitted::Waiting(rx) => rx.blocking_recv().map_err(|_| ModelError::WorkerGone)?,
        }
    }

    fn submit(&self, job: M::Job) -> Result<Submitted<M::Output>> {
        let n = M::items(&job);
        if n == 0 {
            return Ok(Submitted::Done(self.model.empty()));
        }
        if n > self.config.max_request_texts {
            return Err(ModelError::RequestTooLarge {
                texts: n,
                limit: self.config.max_request_texts,
            });
        }
        let (tx, rx) = oneshot::channel();
        let shared = &self.handle.shared;
        {
            let mut st = shared.lock();
            if st.closed {
                return Err(ModelError::WorkerGone);
            }
            if st.pending_texts + n > self.config.max_pending_texts {
                return Err(ModelError::Overloaded {
                    pending: st.pending_texts,
                    limit: self.config.max_pending_texts,
                });
            }
            st.pending_texts += n;
            st.jobs.push_back(Pending { job, reply: tx });
        }
        shared.wake.notify_one();
        Ok(Submitted::Waiting(rx))
    }
}

enum Submitted<O> {
    Done(O),
    Waiting(oneshot::Receiver<Result<O>>),
}

/// The model thread: take every queued job, serve them as one round, reply, repeat.
fn run<M: Batched>(model: &M, shared: &Shared<M::Job, M::Output>, limits: BatchLimits) {
    loop {
        let round: Vec<Pending<M::Job, M::Output>> = {
            let mut st = shared.lock();
            while st.jobs.is_empty() && !st.closed {
                st = shared.wake.wait(st).unwrap_or_else(|e| e.into_inner());
            }
            if st.jobs.is_empty() {
                return;
            }
            st.jobs.drain(..).collect()
        };
        let (jobs, replies): (Vec<M::Job>, Vec<_>) =
            round.into_iter().map(|p| (p.job, p.reply)).unzip();
        let sizes: Vec<usize> = jobs.iter().map(M::items).collect();
        // A panic inside candle must not leave callers waiting forever: catch it, fail this
        // round's jobs (their senders drop, which callers see as WorkerGone) and keep serving.
        let results =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| model.process(&jobs, limits)));
        match results {
            Ok(results) => {
                debug_assert_eq!(results.len(), replies.len());
                for ((result, reply), n) in results.into_iter().zip(replies).zip(sizes) {
                    // A job's texts leave the pending count before its reply is sent: a caller
                    // that gets its answer and submits again at once must not be refused on its
                    // own finished texts.
                    shared.lock().pending_texts -= n;
                    let _ = reply.send(result);
                }
            }
            Err(_) => {
                let n: usize = sizes.iter().sum();
                tracing::error!(model = %model.info().id, "model panicked; failed {n} texts");
                shared.lock().pending_texts -= n;
            }
        }
    }
}

/// An embedding model on its own thread.
#[derive(Clone)]
pub struct Embedder {
    worker: Worker<EmbeddingModel>,
}

impl std::fmt::Debug for Embedder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Embedder")
            .field("info", self.info())
            .field("config", self.config())
            .finish()
    }
}

impl Embedder {
    /// Starts the model thread.
    pub fn spawn(model: Arc<EmbeddingModel>, config: EmbedderConfig) -> Result<Self> {
        Ok(Embedder { worker: Worker::spawn(model, config)? })
    }

    /// Facts about the model.
    pub fn info(&self) -> &ModelInfo {
        self.worker.info()
    }

    /// The queue settings.
    pub fn config(&self) -> &EmbedderConfig {
        self.worker.config()
    }

    /// Texts queued or being embedded now (the metrics' queue depth).
    pub fn queue_depth(&self) -> usize {
        self.worker.depth()
    }

    /// Embeds `texts`; row i of the output is text i. Waits without blocking the runtime.
    pub async fn embed(&self, texts: Vec<String>, kind: EmbedKind) -> Result<EmbedOutput> {
        self.worker.call((texts, kind)).await
    }

    /// Like [`embed`](Self::embed), blocking the calling thread: for the CLI and benchmarks.
    /// Panics if called on an async runtime thread (tokio forbids blocking there).
    pub fn embed_blocking(&self, texts: Vec<String>, kind: EmbedKind) -> Result<EmbedOutput> {
        self.worker.call_blocking((texts, kind))
    }
}

impl Batched for EmbeddingModel {
    type Job = (Vec<String>, EmbedKind);
    type Output = EmbedOutput;
    const THREAD: &'static str = "hirevec-embed";

    fn items(job: &Self::Job) -> usize {
        job.0.len()
    }

    fn empty(&self) -> EmbedOutput {
        EmbedOutput { dim: self.info().dim, ..EmbedOutput::default() }
    }

    fn info(&self) -> &ModelInfo {
        EmbeddingModel::info(self)
    }

    fn process(&self, jobs: &[Self::Job], limits: BatchLimits) -> Vec<Result<EmbedOutput>> {
        // Tokenize per job, so one job's bad input fails that job only; then one flat list over
        // all jobs so texts of different requests share forward passes.
        let encoded: Vec<Result<Vec<super::Encoded>>> =
            jobs.iter().map(|(texts, kind)| self.tokenize(texts, kind)).collect();
        let all: Vec<super::Encoded> =
            encoded.iter().flatten().flat_map(|enc| enc.iter().cloned()).collect();
        let out = if all.is_empty() { Ok(self.empty()) } else { self.embed_encoded(&all, limits) };
        split_round(encoded, out, &self.info().id, |out, range| {
            let dim = out.dim;
            EmbedOutput {
                dim,
                vectors: out.vectors[range.start * dim..range.end * dim].to_vec(),
                truncated: out.truncated[range.clone()].to_vec(),
                token_counts: out.token_counts[range].to_vec(),
            }
        })
    }
}

/// Hands each job its rows of a round's combined output: jobs whose input failed get their own
/// error, the rest their slice, or all the round's error (candle errors are not Clone, so each
/// gets the message).
pub(crate) fn split_round<E, O>(
    encoded: Vec<Result<Vec<E>>>,
    out: Result<O>,
    model: &str,
    slice: impl Fn(&O, std::ops::Range<usize>) -> O,
) -> Vec<Result<O>> {
    let mut start = 0;
    encoded
        .into_iter()
        .map(|enc| {
            let enc = enc?;
            match &out {
                Ok(o) => {
                    let r = start..start + enc.len();
                    start = r.end;
                    Ok(slice(o, r))
                }
                Err(e) => Err(ModelError::Candle {
                    model: model.to_owned(),
                    source: candle_core::Error::Msg(e.to_string()),
                }),
            }
        })
        .collect()
}
