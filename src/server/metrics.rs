//! Prometheus metrics, served as text exposition format 0.0.4 on `--metrics-listen`.
//!
//! Request counts and latency histograms are recorded by the edge layer (src/server/edge.rs) for
//! every RPC; the gauges (model queue depths, segments and tombstones per collection) are read
//! from the engine and the models when scraped, so they cost nothing between scrapes. The label
//! sets are small and fixed (methods, status codes, collections, models), so a map under a mutex
//! is plenty: one short lock per request.
use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Arc;

use parking_lot::Mutex;

use super::engine::Engine;
use super::registry::Registry;

/// Upper bounds of the latency buckets, in seconds: 0.5 ms to 30 s, roughly x2.5 apart, which
/// covers a cached search and a long rerank alike.
const BUCKETS: [f64; 14] =
    [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0, 30.0];

#[derive(Debug, Default, Clone)]
struct Histogram {
    /// Observations at or below each bound (not cumulative here; summed when rendered).
    counts: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

impl Histogram {
    fn observe(&mut self, seconds: f64) {
        if let Some(i) = BUCKETS.iter().position(|&b| seconds <= b) {
            self.counts[i] += 1;
        }
        self.count += 1;
        self.sum += seconds;
    }
}

/// Reads one per-collection gauge from the collection's counts.
type Gauge = fn(&super::collection::CollectionStats) -> u64;

/// Request metrics, shared by the edge layer and the metrics endpoint.
#[derive(Debug, Default)]
pub struct Metrics {
    /// method -> gRPC code name -> requests.
    requests: Mutex<BTreeMap<String, BTreeMap<&'static str, u64>>>,
    /// method -> latency.
    latency: Mutex<BTreeMap<String, Histogram>>,
    /// The request-memory budget of the edge layer, once the server has made it.
    budget: std::sync::OnceLock<super::edge::Budget>,
}

/// The canonical upper-case name of a gRPC status code, as other servers label it.
pub fn code_name(code: tonic::Code) -> &'static str {
    use tonic::Code::*;
    match code {
        Ok => "OK",
        Cancelled => "CANCELLED",
        Unknown => "UNKNOWN",
        InvalidArgument => "INVALID_ARGUMENT",
        DeadlineExceeded => "DEADLINE_EXCEEDED",
        NotFound => "NOT_FOUND",
        AlreadyExists => "ALREADY_EXISTS",
        PermissionDenied => "PERMISSION_DENIED",
        ResourceExhausted => "RESOURCE_EXHAUSTED",
        FailedPrecondition => "FAILED_PRECONDITION",
        Aborted => "ABORTED",
        OutOfRange => "OUT_OF_RANGE",
        Unimplemented => "UNIMPLEMENTED",
        Internal => "INTERNAL",
        Unavailable => "UNAVAILABLE",
        DataLoss => "DATA_LOSS",
        Unauthenticated => "UNAUTHENTICATED",
    }
}

/// Escapes a label value: backslash, double quote and newline, as the format requires.
fn label(v: &str) -> String {
    v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

impl Metrics {
    pub fn new() -> Arc<Metrics> {
        Arc::new(Metrics::default())
    }

    /// Reports `budget`'s use as `hirevec_request_memory_bytes`.
    pub fn watch_budget(&self, budget: super::edge::Budget) {
        let _ = self.budget.set(budget);
    }

    /// Requests of `method` that finished with `code` so far.
    pub fn requests(&self, method: &str, code: tonic::Code) -> u64 {
        let requests = self.requests.lock();
        requests.get(method).and_then(|c| c.get(code_name(code))).copied().unwrap_or(0)
    }

    /// Records one finished request.
    pub fn observe(&self, method: &str, code: tonic::Code, seconds: f64) {
        // Look up before inserting: the method is already there on every request but the first,
        // and the hot path should not allocate its name each time.
        let code = code_name(code);
        let mut requests = self.requests.lock();
        match requests.get_mut(method) {
            Some(codes) => *codes.entry(code).or_default() += 1,
            None => {
                requests.insert(method.to_owned(), BTreeMap::from([(code, 1)]));
            }
        }
        drop(requests);
        let mut latency = self.latency.lock();
        match latency.get_mut(method) {
            Some(h) => h.observe(seconds),
            None => latency.entry(method.to_owned()).or_default().observe(seconds),
        }
    }

    /// The exposition text: request metrics, then gauges read from `engine` and `models` now.
    pub fn render(&self, engine: &Engine, models: &Registry) -> String {
        let mut out = String::new();
        let _ = self.render_into(&mut out, engine, models);
        out
    }

    fn render_into(
        &self,
        out: &mut String,
        engine: &Engine,
        models: &Registry,
    ) -> std::fmt::Result {
        writeln!(
            out,
            "# HELP hirevec_requests_total gRPC requests finished, by method and status code."
        )?;
        writeln!(out, "# TYPE hirevec_requests_total counter")?;
        for (method, codes) in self.requests.lock().iter() {
            for (code, n) in codes {
                writeln!(
                    out,
                    "hirevec_requests_total{{method=\"{}\",code=\"{code}\"}} {n}",
                    label(method)
                )?;
            }
        }
        writeln!(
            out,
            "# HELP hirevec_request_duration_seconds Time from request headers to response headers."
        )?;
        writeln!(out, "# TYPE hirevec_request_duration_seconds histogram")?;
        for (method, h) in self.latency.lock().iter() {
            let m = label(method);
            let mut cumulative = 0;
            for (bound, n) in BUCKETS.iter().zip(h.counts) {
                cumulative += n;
                writeln!(
                    out,
                    "hirevec_request_duration_seconds_bucket{{method=\"{m}\",le=\"{bound}\"}} {cumulative}"
                )?;
            }
            writeln!(
                out,
                "hirevec_request_duration_seconds_bucket{{method=\"{m}\",le=\"+Inf\"}} {}",
                h.count
            )?;
            writeln!(out, "hirevec_request_duration_seconds_sum{{method=\"{m}\"}} {}", h.sum)?;
            writeln!(out, "hirevec_request_duration_seconds_count{{method=\"{m}\"}} {}", h.count)?;
        }

        if let Some(b) = self.budget.get() {
            writeln!(
                out,
                "# HELP hirevec_request_memory_bytes Request message bytes held now (of --max-request-memory)."
            )?;
            writeln!(out, "# TYPE hirevec_request_memory_bytes gauge")?;
            writeln!(out, "hirevec_request_memory_bytes {}", b.in_use())?;
        }

        writeln!(
            out,
            "# HELP hirevec_model_queue_depth Texts (embedders) or pairs (rerankers) queued or in a forward pass."
        )?;
        writeln!(out, "# TYPE hirevec_model_queue_depth gauge")?;
        for (id, kind, depth) in models.queue_depths() {
            writeln!(
                out,
                "hirevec_model_queue_depth{{model=\"{}\",kind=\"{kind}\"}} {depth}",
                label(&id)
            )?;
        }

        let collections = engine.list();
        let gauges: [(&str, &str, Gauge); 5] = [
            ("hirevec_collection_documents", "Live documents.", |s| s.documents),
            ("hirevec_collection_sealed_segments", "Sealed segment files.", |s| {
                s.sealed_segments as u64
            }),
            (
                "hirevec_collection_growing_vectors",
                "Vectors in growing and frozen segments.",
                |s| s.growing_vectors,
            ),
            ("hirevec_collection_tombstones", "Deleted vectors still held by segments.", |s| {
                s.tombstones
            }),
            (
                "hirevec_collection_sequence",
                "Sequence number of the last acknowledged write.",
                |s| s.sequence,
            ),
        ];
        let stats: Vec<_> = collections.iter().map(|c| (c.name().to_owned(), c.stats())).collect();
        for (name, help, get) in gauges {
            writeln!(out, "# HELP {name} {help}")?;
            writeln!(out, "# TYPE {name} gauge")?;
            for (c, s) in &stats {
                writeln!(out, "{name}{{collection=\"{}\"}} {}", label(c), get(s))?;
            }
        }
        Ok(())
    }
}

/// Serves `GET /metrics` on `listener` until the process ends.
pub async fn serve(
    listener: tokio::net::TcpListener,
    metrics: Arc<Metrics>,
    engine: Arc<Engine>,
    models: Arc<Registry>,
) {
    use axum::routing::get;
    let app = axum::Router::new().route(
        "/metrics",
        get(move || {
            let (metrics, engine, models) = (metrics.clone(), engine.clone(), models.clone());
            async move {
                // Collection stats take segment locks: off the async workers, like other engine work.
                let body = tokio::task::spawn_blocking(move || metrics.render(&engine, &models))
                    .await
                    .unwrap_or_default();
                ([(http::header::CONTENT_TYPE, "text/plain; version=0.0.4")], body)
            }
        }),
    );
    if let Err(e) = axum::serve(listener, app).await {
        tracing::error!(error = %e, "metrics endpoint stopped");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_are_cumulative_when_rendered() {
        let m = Metrics::default();
        m.observe("/hirevec.v1.Search/Search", tonic::Code::Ok, 0.0007);
        m.observe("/hirevec.v1.Search/Search", tonic::Code::Ok, 0.02);
        m.observe("/hirevec.v1.Search/Search", tonic::Code::InvalidArgument, 100.0);
        let h = m.latency.lock()["/hirevec.v1.Search/Search"].clone();
        assert_eq!((h.count, h.counts[1], h.counts[5]), (3, 1, 1));
        assert_eq!(h.counts.iter().sum::<u64>(), 2, "100 s lands only in +Inf");
        let reqs = m.requests.lock().clone();
        assert_eq!(reqs["/hirevec.v1.Search/Search"]["OK"], 2);
        assert_eq!(reqs["/hirevec.v1.Search/Search"]["INVALID_ARGUMENT"], 1);
        assert_eq!(label("a\"b\\c\n"), "a\\\"b\\\\c\\n");
    }
}
