//! The outermost layer around every RPC: a tracing span per request, the client's deadline, the
//! request-memory budget, and the request metrics.
//!
//! Deadlines: gRPC clients send their deadline as the `grpc-timeout` header. tonic's own server
//! timeout answers CANCELLED when it fires; the protocol says DEADLINE_EXCEEDED, so the layer
//! enforces the header itself. When the deadline passes the client gets DEADLINE_EXCEEDED at once;
//! work already handed to a blocking thread (a search, a write) still runs to its end and keeps its
//! admission permit meanwhile, so expired requests cannot pile up unbounded work. As everywhere in
//! gRPC, DEADLINE_EXCEEDED on a write means "unknown outcome": the write may have been applied.
//!
//! Memory: the in-flight limit of the handlers (`--max-inflight`) admits requests only after
//! tonic has buffered and decoded them, so on its own it does not bound what a flood of large
//! messages costs. The edge therefore counts request body bytes as they arrive against one
//! server-wide [`Budget`] (`--max-request-memory`), before any decoding; a request that would go
//! over it fails at once with RESOURCE_EXHAUSTED, and a request gives its bytes back when its
//! answer is ready. A stream is charged at most one message's worth (`--max-message-bytes`):
//! tonic decodes and the handlers apply its messages one at a time.
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body::{Body, Frame};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tonic::Status;
use tracing::Instrument;

use super::metrics::Metrics;

/// Parses a `grpc-timeout` value: 1 to 8 digits and a unit (H, M, S, m, u, n).
pub fn parse_grpc_timeout(v: &str) -> Option<Duration> {
    let (digits, unit) = v.split_at(v.len().checked_sub(1)?);
    if digits.is_empty() || digits.len() > 8 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(n * 3600),
        "M" => Duration::from_secs(n * 60),
        "S" => Duration::from_secs(n),
        "m" => Duration::from_millis(n),
        "u" => Duration::from_micros(n),
        "n" => Duration::from_nanos(n),
        _ => return None,
    })
}

/// The status code of a response: from its headers (errors are trailers-only responses, whose
/// `grpc-status` is a header); a response without one is a success whose status is in trailers.
fn code_of(headers: &http::HeaderMap) -> tonic::Code {
    headers
        .get("grpc-status")
        .and_then(|v| v.to_str().ok())
        .and_then(|s| s.parse::<i32>().ok())
        .map(tonic::Code::from_i32)
        .unwrap_or(tonic::Code::Ok)
}

/// The bytes of request messages the server holds at once, shared by all connections.
#[derive(Debug, Clone)]
pub struct Budget {
    bytes: Arc<Semaphore>,
    total: usize,
    /// Most bytes one request is charged: one message and the frame that may follow it.
    per_request: usize,
}

/// Slack over one message for a stream's read-ahead: the next HTTP/2 DATA frame (16 KiB by
/// default) plus the 5-byte gRPC prefix, rounded up.
pub const READ_AHEAD: usize = 64 << 10;

impl Budget {
    /// `total` bytes for all requests together, with messages of at most `max_message` bytes.
    pub fn new(total: usize, max_message: usize) -> Self {
        let total = total.min(Semaphore::MAX_PERMITS);
        Budget {
            bytes: Arc::new(Semaphore::new(total)),
            total,
            per_request: max_message.saturating_add(READ_AHEAD),
        }
    }

    /// Bytes now held by requests in progress.
    pub fn in_use(&self) -> usize {
        self.total - self.bytes.available_permits()
    }
}

/// What one request holds of the [`Budget`] (its permit counts the bytes); given back when both
/// the request's body and its handler are done.
type Held = Arc<parking_lot::Mutex<Option<OwnedSemaphorePermit>>>;

/// A request body that charges its bytes to the budget as they arrive.
#[derive(Debug)]
struct Charged<B> {
    inner: B,
    budget: Budget,
    held: Held,
}

impl<B> Body for Charged<B>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = Status;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Status>>> {
        let frame = match Pin::new(&mut self.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => frame,
            Poll::Ready(Some(Err(e))) => {
                return Poll::Ready(Some(Err(Status::from_error(e.into()))));
            }
            Poll::Ready(None) => return Poll::Ready(None),
            Poll::Pending => return Poll::Pending,
        };
        let Some(data) = frame.data_ref() else { return Poll::Ready(Some(Ok(frame))) };
        let mut held = self.held.lock();
        let charged = held.as_ref().map_or(0, OwnedSemaphorePermit::num_permits);
        let need = data.len().min(self.budget.per_request.saturating_sub(charged));
        if need > 0 {
            let got = u32::try_from(need)
                .ok()
                .and_then(|n| self.budget.bytes.clone().try_acquire_many_owned(n).ok());
            let Some(got) = got else {
                return Poll::Ready(Some(Err(Status::resource_exhausted(format!(
                    "request memory: requests in progress already hold {} of the {} bytes \
                     allowed (--max-request-memory); retry later",
                    self.budget.in_use(),
                    self.budget.total
                )))));
            };
            match held.as_mut() {
                Some(p) => p.merge(got),
                None => *held = Some(got),
            }
        }
        drop(held);
        Poll::Ready(Some(Ok(frame)))
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

/// Wraps the router with [`Edge`].
#[derive(Debug, Clone)]
pub struct EdgeLayer {
    metrics: Arc<Metrics>,
    budget: Budget,
}

impl EdgeLayer {
    pub fn new(metrics: Arc<Metrics>, budget: Budget) -> Self {
        EdgeLayer { metrics, budget }
    }
}

impl<S> tower::Layer<S> for EdgeLayer {
    type Service = Edge<S>;

    fn layer(&self, inner: S) -> Edge<S> {
        Edge { inner, metrics: self.metrics.clone(), budget: self.budget.clone() }
    }
}

/// See the module docs.
#[derive(Debug, Clone)]
pub struct Edge<S> {
    inner: S,
    metrics: Arc<Metrics>,
    budget: Budget,
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

type BoxFuture<T> = Pin<Box<dyn std::future::Future<Output = T> + Send + 'static>>;

/// Records a request in the metrics once: with its code when it ends, or as CANCELLED when the
/// client goes away first (the connection drops the future, and no code is ever produced).
struct Outcome {
    metrics: Arc<Metrics>,
    method: String,
    start: Instant,
    recorded: bool,
}

impl Outcome {
    fn record(&mut self, code: tonic::Code) -> f64 {
        let seconds = self.start.elapsed().as_secs_f64();
        self.metrics.observe(&self.method, code, seconds);
        self.recorded = true;
        seconds
    }
}

impl Drop for Outcome {
    fn drop(&mut self) {
        if !self.recorded {
            self.record(tonic::Code::Cancelled);
        }
    }
}

impl<S, B, R> tower::Service<http::Request<B>> for Edge<S>
where
    S: tower::Service<http::Request<tonic::body::Body>, Response = http::Response<R>>,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    B: Body<Data = Bytes> + Send + Unpin + 'static,
    B::Error: Into<BoxError>,
    R: Default + Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BoxFuture<Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        let method = req.uri().path().to_owned();
        let header =
            req.headers().get("grpc-timeout").map(|v| v.to_str().unwrap_or("?").to_owned());
        let request_id = req
            .headers()
            .get("x-request-id")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned();
        let span = tracing::info_span!("rpc", method = %method, request_id = %request_id);
        let mut outcome = Outcome {
            metrics: self.metrics.clone(),
            method,
            start: Instant::now(),
            recorded: false,
        };
        let deadline = match header.as_deref().map(|h| (h, parse_grpc_timeout(h))) {
            None => None,
            Some((_, Some(d))) => Some(d),
            Some((h, None)) => {
                let status = Status::invalid_argument(format!(
                    "grpc-timeout: {h:?} is not 1-8 digits followed by H, M, S, m, u or n"
                ));
                outcome.record(status.code());
                return Box::pin(std::future::ready(Ok(status.into_http())));
            }
        };
        let held = Held::default();
        let budget = self.budget.clone();
        let req =
            req.map(|inner| tonic::body::Body::new(Charged { inner, budget, held: held.clone() }));
        let fut = self.inner.call(req);
        Box::pin(
            async move {
                // Keeps the request's bytes charged until its answer is ready.
                let _held = held;
                let res = match deadline {
                    None => fut.await,
                    Some(d) => match tokio::time::timeout(d, fut).await {
                        Ok(r) => r,
                        Err(_) => Ok(Status::deadline_exceeded(format!(
                            "the client's deadline of {} ms passed before the answer was ready",
                            d.as_millis()
                        ))
                        .into_http()),
                    },
                };
                let code = match &res {
                    Ok(r) => code_of(r.headers()),
                    Err(_) => tonic::Code::Unknown,
                };
                let seconds = outcome.record(code);
                tracing::debug!(code = ?code, ms = seconds * 1000.0, "done");
                res
            }
            .instrument(span),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A request body of `chunks` data frames, each `size` bytes.
    #[derive(Debug)]
    struct Chunks {
        left: usize,
        size: usize,
    }

    impl Body for Chunks {
        type Data = Bytes;
        type Error = std::convert::Infallible;

        fn poll_frame(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
            if self.left == 0 {
                return Poll::Ready(None);
            }
            self.left -= 1;
            Poll::Ready(Some(Ok(Frame::data(Bytes::from(vec![0u8; self.size])))))
        }
    }

    fn request(chunks: usize, size: usize, timeout: Option<&str>) -> http::Request<Chunks> {
        let mut r = http::Request::builder().uri("/hirevec.v1.Test/Call");
        if let Some(t) = timeout {
            r = r.header("grpc-timeout", t);
        }
        r.body(Chunks { left: chunks, size }).unwrap()
    }

    /// The code and the (percent-decoded) message of a trailers-only response.
    fn status_of(r: &http::Response<tonic::body::Body>) -> (tonic::Code, String) {
        let raw = r.headers().get("grpc-message").map(|m| m.as_bytes()).unwrap_or_default();
        let mut msg = Vec::new();
        let mut i = 0;
        while i < raw.len() {
            let hex = raw.get(i + 1..i + 3).and_then(|h| std::str::from_utf8(h).ok());
            match (raw[i], hex.and_then(|h| u8::from_str_radix(h, 16).ok())) {
                (b'%', Some(b)) => {
                    msg.push(b);
                    i += 3;
                }
                (c, _) => {
                    msg.push(c);
                    i += 1;
                }
            }
        }
        (code_of(r.headers()), String::from_utf8(msg).unwrap())
    }

    /// An inner service that reads the whole body (as tonic's decoder does), then waits `delay`
    /// before answering OK; a body error becomes its status, as in tonic.
    fn reader(
        delay: Duration,
    ) -> impl tower::Service<
        http::Request<tonic::body::Body>,
        Response = http::Response<tonic::body::Body>,
        Error = std::convert::Infallible,
        Future = BoxFuture<Result<http::Response<tonic::body::Body>, std::convert::Infallible>>,
    > + Clone {
        tower::service_fn(move |req: http::Request<tonic::body::Body>| {
            Box::pin(async move {
                let mut body = req.into_body();
                while let Some(frame) =
                    std::future::poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await
                {
                    if let Err(status) = frame {
                        return Ok(status.into_http());
                    }
                }
                tokio::time::sleep(delay).await;
                Ok(http::Response::new(tonic::body::Body::empty()))
            }) as BoxFuture<_>
        })
    }

    fn edge<S>(inner: S, budget: Budget) -> (Edge<S>, Arc<Metrics>) {
        let metrics = Metrics::new();
        (tower::Layer::layer(&EdgeLayer::new(metrics.clone(), budget), inner), metrics)
    }

    #[tokio::test]
    async fn a_passed_deadline_is_answered_with_deadline_exceeded() {
        use tower::Service;
        let (mut svc, metrics) =
            edge(reader(Duration::from_secs(60)), Budget::new(1 << 20, 1 << 20));
        let started = Instant::now();
        let res = svc.call(request(1, 10, Some("50m"))).await.unwrap();
        let (code, msg) = status_of(&res);
        assert_eq!(code, tonic::Code::DeadlineExceeded, "{msg}");
        assert!(msg.contains("50 ms"), "{msg}");
        assert!(started.elapsed() < Duration::from_secs(30), "answered at the deadline");
        assert_eq!(metrics.requests("/hirevec.v1.Test/Call", tonic::Code::DeadlineExceeded), 1);
        // Without a deadline the same service answers OK.
        let (mut svc, metrics) = edge(reader(Duration::ZERO), Budget::new(1 << 20, 1 << 20));
        let res = svc.call(request(1, 10, None)).await.unwrap();
        assert_eq!(status_of(&res).0, tonic::Code::Ok);
        assert_eq!(metrics.requests("/hirevec.v1.Test/Call", tonic::Code::Ok), 1);
        let res = svc.call(request(1, 10, Some("1.5S"))).await.unwrap();
        assert_eq!(status_of(&res).0, tonic::Code::InvalidArgument);
    }

    #[tokio::test]
    async fn a_request_dropped_before_its_answer_counts_as_cancelled() {
        use tower::Service;
        let (mut svc, metrics) =
            edge(reader(Duration::from_secs(60)), Budget::new(1 << 20, 1 << 20));
        let fut = svc.call(request(1, 10, None));
        // The client goes away: the connection drops the future before it is ready.
        assert!(tokio::time::timeout(Duration::from_millis(20), fut).await.is_err());
        assert_eq!(metrics.requests("/hirevec.v1.Test/Call", tonic::Code::Cancelled), 1);
        assert_eq!(metrics.requests("/hirevec.v1.Test/Call", tonic::Code::Ok), 0);
    }

    #[tokio::test]
    async fn request_bytes_are_charged_to_the_budget_and_given_back() {
        use tower::Service;
        // 200 KiB for messages of at most 40 KiB: three requests of 64 KiB fit at once, a fourth
        // does not.
        let budget = Budget::new(200 << 10, 40 << 10);
        let (mut svc, metrics) = edge(reader(Duration::from_millis(200)), budget.clone());
        let calls: Vec<_> = (0..4).map(|_| svc.call(request(16, 4 << 10, None))).collect();
        let mut codes = Vec::new();
        for res in futures::future::join_all(calls).await {
            let (code, msg) = status_of(&res.unwrap());
            if code == tonic::Code::ResourceExhausted {
                assert!(msg.contains("--max-request-memory") && msg.contains("204800"), "{msg}");
            }
            codes.push(code);
        }
        let ok = codes.iter().filter(|c| **c == tonic::Code::Ok).count();
        let refused = codes.iter().filter(|c| **c == tonic::Code::ResourceExhausted).count();
        assert_eq!((ok, refused), (3, 1), "{codes:?}");
        assert_eq!(budget.in_use(), 0, "every byte is given back");
        assert_eq!(metrics.requests("/hirevec.v1.Test/Call", tonic::Code::ResourceExhausted), 1);

        // A stream is charged one message's worth however long it runs: 1 MiB in 4 KiB frames
        // passes a 200 KiB budget.
        let res = svc.call(request(256, 4 << 10, None)).await.unwrap();
        assert_eq!(status_of(&res).0, tonic::Code::Ok);
        assert_eq!(budget.in_use(), 0);
    }

    #[test]
    fn grpc_timeout_values() {
        assert_eq!(parse_grpc_timeout("100m"), Some(Duration::from_millis(100)));
        assert_eq!(parse_grpc_timeout("2S"), Some(Duration::from_secs(2)));
        assert_eq!(parse_grpc_timeout("1H"), Some(Duration::from_secs(3600)));
        assert_eq!(parse_grpc_timeout("99999999n"), Some(Duration::from_nanos(99_999_999)));
        assert_eq!(parse_grpc_timeout("123456789m"), None, "more than 8 digits");
        for bad in ["", "m", "10", "10x", "-1m", "1.5S"] {
            assert_eq!(parse_grpc_timeout(bad), None, "{bad:?}");
        }
    }
}
