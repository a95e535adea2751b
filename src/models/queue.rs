//! The model's own OS thread and the queue that feeds it. Callers (async gRPC handlers, the CLI)
//! only enqueue and wait on a oneshot; tokenization and forward passes happen on the model
//! thread, never on the async runtime. Requests that arrive while one pass runs are drained
//! together and cut into forward passes by a token budget, so concurrent small requests share
//! batches. Past `max_pending_texts` a request is refused with [`ModelError::Overloaded`] at once
//! rather than queued without bound.
use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

use tokio::sync::oneshot;

use super::error::{ModelError, Result};
use super::{BatchLimits, EmbedKind, EmbedOutput, EmbeddingModel, Encoded, ModelInfo};

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
        EmbedderConfig { limits: BatchLimits::default(), max_pending_texts: 8192, max_request_texts: 2048 }
    }
}

struct Job {
    texts: Vec<String>,
    kind: EmbedKind,
    reply: oneshot::Sender<Result<EmbedOutput>>,
}

#[derive(Default)]
struct State {
    jobs: VecDeque<Job>,
    /// Texts queued or being embedded.
    pending_texts: usize,
    closed: bool,
}

struct Shared {
    state: Mutex<State>,
    wake: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic on the model thread while holding the lock leaves the queue itself consistent
        // (it only pushes and pops), so keep serving.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Closes the queue when the last [`Embedder`] clone goes away; the model thread then finishes
/// the queued jobs and exits. It is not joined, so dropping never blocks an async task.
struct Handle {
    shared: Arc<Shared>,
}

impl Drop for Handle {
    fn drop(&mut self) {
        self.shared.lock().closed = true;
        self.shared.wake.notify_all();
    }
}

/// A handle to a model running on its own thread. Cheap to clone; all clones share one queue.
#[derive(Clone)]
pub struct Embedder {
    handle: Arc<Handle>,
    info: Arc<ModelInfo>,
    config: EmbedderConfig,
}

impl std::fmt::Debug for Embedder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Embedder").field("info", &self.info).field("config", &self.config).finish()
    }
}

impl Embedder {
    /// Starts the model thread.
    pub fn spawn(model: Arc<EmbeddingModel>, config: EmbedderConfig) -> Result<Self> {
        let shared = Arc::new(Shared { state: Mutex::new(State::default()), wake: Condvar::new() });
        let info = Arc::new(model.info().clone());
        let worker = Arc::clone(&shared);
        std::thread::Builder::new()
            .name("hirevec-embed".to_owned())
            .spawn(move || run(&model, &worker, config.limits))
            .map_err(|e| ModelError::Io { path: "thread hirevec-embed".into(), source: e })?;
        Ok(Embedder { handle: Arc::new(Handle { shared }), info, config })
    }

    /// Facts about the model.
    pub fn info(&self) -> &ModelInfo {
        &self.info
    }

    /// The queue settings.
    pub fn config(&self) -> &EmbedderConfig {
        &self.config
    }

    /// Embeds `texts`; row i of the output is text i. Waits without blocking the runtime.
    pub async fn embed(&self, texts: Vec<String>, kind: EmbedKind) -> Result<EmbedOutput> {
        match self.submit(texts, kind)? {
            Submitted::Done(out) => Ok(out),
            Submitted::Waiting(rx) => rx.await.map_err(|_| ModelError::WorkerGone)?,
        }
    }

    /// Like [`embed`](Self::embed), blocking the calling thread: for the CLI and benchmarks.
    /// Panics if called on an async runtime thread (tokio forbids blocking there).
    pub fn embed_blocking(&self, texts: Vec<String>, kind: EmbedKind) -> Result<EmbedOutput> {
        match self.submit(texts, kind)? {
            Submitted::Done(out) => Ok(out),
            Submitted::Waiting(rx) => rx.blocking_recv().map_err(|_| ModelError::WorkerGone)?,
        }
    }

    fn submit(&self, texts: Vec<String>, kind: EmbedKind) -> Result<Submitted> {
        if texts.is_empty() {
            return Ok(Submitted::Done(EmbedOutput { dim: self.info.dim, ..EmbedOutput::default() }));
        }
        if texts.len() > self.config.max_request_texts {
            return Err(ModelError::RequestTooLarge { texts: texts.len(), limit: self.config.max_request_texts });
        }
        let (tx, rx) = oneshot::channel();
        let shared = &self.handle.shared;
        {
            let mut st = shared.lock();
            if st.closed {
                return Err(ModelError::WorkerGone);
            }
            if st.pending_texts + texts.len() > self.config.max_pending_texts {
                return Err(ModelError::Overloaded { pending: st.pending_texts, limit: self.config.max_pending_texts });
            }
            st.pending_texts += texts.len();
            st.jobs.push_back(Job { texts, kind, reply: tx });
        }
        shared.wake.notify_one();
        Ok(Submitted::Waiting(rx))
    }
}

enum Submitted {
    Done(EmbedOutput),
    Waiting(oneshot::Receiver<Result<EmbedOutput>>),
}

/// The model thread: take every queued job, tokenize, embed them together, reply, repeat.
fn run(model: &EmbeddingModel, shared: &Shared, limits: BatchLimits) {
    loop {
        let jobs: Vec<Job> = {
            let mut st = shared.lock();
            while st.jobs.is_empty() && !st.closed {
                st = shared.wake.wait(st).unwrap_or_else(|e| e.into_inner());
            }
            if st.jobs.is_empty() {
                return;
            }
            st.jobs.drain(..).collect()
        };
        let texts: usize = jobs.iter().map(|j| j.texts.len()).sum();
        let released = std::cell::Cell::new(0usize);
        // A job's texts leave the pending count before its reply is sent: a caller that gets
        // its answer and submits again at once must not be refused on its own finished texts.
        let release = |n: usize| {
            shared.lock().pending_texts -= n;
            released.set(released.get() + n);
        };
        // A panic inside candle must not leave callers waiting forever: catch it, fail this
        // round's jobs (their senders drop, which callers see as WorkerGone) and keep serving.
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| process(model, jobs, limits, &release)));
        if result.is_err() {
            tracing::error!("embedding model panicked; failed {} texts", texts - released.get());
        }
        let rest = texts - released.get();
        if rest > 0 {
            shared.lock().pending_texts -= rest;
        }
    }
}

fn process(model: &EmbeddingModel, jobs: Vec<Job>, limits: BatchLimits, release: &dyn Fn(usize)) {
    // Tokenize per job, so one job's bad input (an instruction a BERT model does not take)
    // fails that job only.
    let mut live: Vec<(Job, Vec<Encoded>)> = Vec::with_capacity(jobs.len());
    for job in jobs {
        match model.tokenize(&job.texts, &job.kind) {
            Ok(enc) => live.push((job, enc)),
            Err(e) => {
                release(job.texts.len());
                let _ = job.reply.send(Err(e));
            }
        }
    }
    if live.is_empty() {
        return;
    }
    // One flat list over all jobs so texts of different requests share forward passes.
    let all: Vec<Encoded> = live.iter().flat_map(|(_, enc)| enc.iter().cloned()).collect();
    match model.embed_encoded(&all, limits) {
        Ok(out) => {
            let dim = out.dim;
            let mut start = 0;
            for (job, enc) in live {
                let n = enc.len();
                let part = EmbedOutput {
                    dim,
                    vectors: out.vectors[start * dim..(start + n) * dim].to_vec(),
                    truncated: out.truncated[start..start + n].to_vec(),
                    token_counts: out.token_counts[start..start + n].to_vec(),
                };
                start += n;
                release(n);
                let _ = job.reply.send(Ok(part));
            }
        }
        Err(e) => {
            // candle errors are not Clone; every job of the round gets the message.
            let reason = e.to_string();
            for (job, enc) in live {
                release(enc.len());
                let _ = job.reply.send(Err(ModelError::Candle {
                    model: model.info().id.clone(),
                    source: candle_core::Error::Msg(reason.clone()),
                }));
            }
        }
    }
}
