//! The outermost layer around every RPC: a tracing span per request, the client's deadline, and
//! the request metrics.
//!
//! Deadlines: gRPC clients send their deadline as the `grpc-timeout` header. tonic's own server
//! timeout answers CANCELLED when it fires; the protocol says DEADLINE_EXCEEDED, so the layer
//! enforces the header itself. When the deadline passes the client gets DEADLINE_EXCEEDED at once;
//! work already handed to a blocking thread (a search, a write) still runs to its end and keeps its
//! admission permit meanwhile, so expired requests cannot pile up unbounded work. As everywhere in
//! gRPC, DEADLINE_EXCEEDED on a write means "unknown outcome": the write may have been applied.
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

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

/// Wraps the router with [`Edge`].
#[derive(Debug, Clone)]
pub struct EdgeLayer {
    metrics: Arc<Metrics>,
}

impl EdgeLayer {
    pub fn new(metrics: Arc<Metrics>) -> Self {
        EdgeLayer { metrics }
    }
}

impl<S> tower::Layer<S> for EdgeLayer {
    type Service = Edge<S>;

    fn layer(&self, inner: S) -> Edge<S> {
        Edge { inner, metrics: self.metrics.clone() }
    }
}

/// See the module docs.
#[derive(Debug, Clone)]
pub struct Edge<S> {
    inner: S,
    metrics: Arc<Metrics>,
}

type BoxFuture<T> = Pin<Box<dyn std::future::Future<Output = T> + Send + 'static>>;

impl<S, B, R> tower::Service<http::Request<B>> for Edge<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<R>>,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    R: Default + Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BoxFuture<Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        let start = Instant::now();
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
        let metrics = self.metrics.clone();
        let deadline = match header.as_deref().map(|h| (h, parse_grpc_timeout(h))) {
            None => None,
            Some((_, Some(d))) => Some(d),
            Some((h, None)) => {
                let status = Status::invalid_argument(format!(
                    "grpc-timeout: {h:?} is not 1-8 digits followed by H, M, S, m, u or n"
                ));
                metrics.observe(&method, status.code(), start.elapsed().as_secs_f64());
                return Box::pin(std::future::ready(Ok(status.into_http())));
            }
        };
        let fut = self.inner.call(req);
        Box::pin(
            async move {
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
                let seconds = start.elapsed().as_secs_f64();
                metrics.observe(&method, code, seconds);
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
