//! API keys. `--api-key` grants everything, `--read-only-api-key` the calls that change nothing
//! (gets, counts, scrolls, searches, listing, embedding, reranking). A key comes as
//! `authorization: Bearer KEY` or `api-key: KEY`. Without a key configured the server is open.
//!
//! The check runs as a tower layer in front of every service, because the decision needs the
//! method (a read-only key may call `Collections/Get` but not `Collections/Delete`), which tonic
//! interceptors do not see. The health service stays open so load balancers can probe it.
//! Unknown methods count as writes: a method added later is closed until it is listed here.
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use tonic::Status;

/// Methods a read-only key may call. Everything else but health needs the full key.
const READ_METHODS: &[&str] = &[
    "/hirevec.v1.Collections/Get",
    "/hirevec.v1.Collections/List",
    "/hirevec.v1.Documents/Get",
    "/hirevec.v1.Documents/Count",
    "/hirevec.v1.Documents/Scroll",
    "/hirevec.v1.Search/Search",
    "/hirevec.v1.Search/SearchBatch",
    "/hirevec.v1.Models/List",
    "/hirevec.v1.Models/Embed",
    "/hirevec.v1.Models/Rerank",
];

/// Services anyone may call.
const OPEN_PREFIXES: &[&str] = &["/grpc.health.v1.Health/"];

/// Read-only reflection: it describes the API, and clients like grpcurl need it before calling.
const READ_PREFIXES: &[&str] = &["/grpc.reflection.v1.ServerReflection/"];

/// What a method needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// No key.
    Open,
    /// The read-only or the full key.
    Read,
    /// The full key.
    Write,
}

/// The access `path` (`/package.Service/Method`) needs.
pub fn access(path: &str) -> Access {
    if OPEN_PREFIXES.iter().any(|p| path.starts_with(p)) {
        Access::Open
    } else if READ_METHODS.contains(&path) || READ_PREFIXES.iter().any(|p| path.starts_with(p)) {
        Access::Read
    } else {
        Access::Write
    }
}

/// The configured keys, kept as BLAKE3 digests: comparing fixed-size digests in constant time
/// leaks neither the key's bytes nor its length through timing.
#[derive(Clone)]
pub struct Keys {
    full: [u8; 32],
    read_only: Option<[u8; 32]>,
}

impl std::fmt::Debug for Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Keys(..)")
    }
}

fn digest(key: &[u8]) -> [u8; 32] {
    *blake3::hash(key).as_bytes()
}

/// Constant-time equality of two digests.
fn same(a: &[u8; 32], b: &[u8; 32]) -> bool {
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

impl Keys {
    /// Keys from the flags; `None` when no key is set (the server is open).
    pub fn new(full: Option<&str>, read_only: Option<&str>) -> Option<Keys> {
        let full = full?;
        Some(Keys {
            full: digest(full.as_bytes()),
            read_only: read_only.map(|k| digest(k.as_bytes())),
        })
    }

    /// Whether a request to `path` with these headers may go on.
    pub fn check(&self, path: &str, headers: &http::HeaderMap) -> Result<(), Status> {
        let need = access(path);
        if need == Access::Open {
            return Ok(());
        }
        let Some(given) = presented(headers) else {
            return Err(Status::unauthenticated(
                "missing API key: send `authorization: Bearer KEY` or `api-key: KEY`",
            ));
        };
        let given = digest(given);
        // Both comparisons always run, so timing does not tell which key matched.
        let is_full = same(&given, &self.full);
        let is_read = self.read_only.as_ref().is_some_and(|r| same(&given, r));
        match (is_full, is_read, need) {
            (true, _, _) => Ok(()),
            (false, true, Access::Read) => Ok(()),
            (false, true, _) => {
                Err(Status::permission_denied(format!("the read-only API key may not call {path}")))
            }
            (false, false, _) => Err(Status::unauthenticated("invalid API key")),
        }
    }
}

/// The key a request presents: `authorization: Bearer KEY` first, then `api-key: KEY`.
fn presented(headers: &http::HeaderMap) -> Option<&[u8]> {
    if let Some(v) = headers.get(http::header::AUTHORIZATION) {
        let v = v.as_bytes();
        let scheme = b"bearer ";
        if v.len() > scheme.len() && v[..scheme.len()].eq_ignore_ascii_case(scheme) {
            return Some(v[scheme.len()..].trim_ascii());
        }
        return None;
    }
    headers.get("api-key").map(|v| v.as_bytes().trim_ascii())
}

/// The tower layer checking keys before any service runs.
#[derive(Debug, Clone)]
pub struct AuthLayer {
    keys: Option<Arc<Keys>>,
}

impl AuthLayer {
    /// A layer enforcing `keys`, or letting everything through when `None`.
    pub fn new(keys: Option<Keys>) -> Self {
        AuthLayer { keys: keys.map(Arc::new) }
    }
}

impl<S> tower::Layer<S> for AuthLayer {
    type Service = Auth<S>;

    fn layer(&self, inner: S) -> Auth<S> {
        Auth { inner, keys: self.keys.clone() }
    }
}

/// The service [`AuthLayer`] wraps around the router.
#[derive(Debug, Clone)]
pub struct Auth<S> {
    inner: S,
    keys: Option<Arc<Keys>>,
}

type BoxFuture<T> = Pin<Box<dyn std::future::Future<Output = T> + Send + 'static>>;

impl<S, B, R> tower::Service<http::Request<B>> for Auth<S>
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
        if let Some(keys) = &self.keys
            && let Err(status) = keys.check(req.uri().path(), req.headers())
        {
            tracing::debug!(path = req.uri().path(), code = ?status.code(), "request refused");
            return Box::pin(std::future::ready(Ok(status.into_http())));
        }
        Box::pin(self.inner.call(req))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(name: &'static str, value: &str) -> http::HeaderMap {
        let mut h = http::HeaderMap::new();
        h.insert(name, value.parse().unwrap());
        h
    }

    #[test]
    fn keys_grant_what_they_should() {
        let keys = Keys::new(Some("full-secret"), Some("read-secret")).unwrap();
        let upsert = "/hirevec.v1.Documents/Upsert";
        let search = "/hirevec.v1.Search/Search";
        let code = |path: &str, h: &http::HeaderMap| keys.check(path, h).err().map(|s| s.code());
        let none = http::HeaderMap::new();
        assert_eq!(code(search, &none), Some(tonic::Code::Unauthenticated));
        assert_eq!(code("/grpc.health.v1.Health/Check", &none), None);
        let full = headers("authorization", "Bearer full-secret");
        assert_eq!(code(upsert, &full), None);
        assert_eq!(code(upsert, &headers("api-key", "full-secret")), None);
        assert_eq!(code(upsert, &headers("authorization", "bearer full-secret")), None);
        let read = headers("api-key", "read-secret");
        assert_eq!(code(search, &read), None);
        assert_eq!(code(upsert, &read), Some(tonic::Code::PermissionDenied));
        assert_eq!(
            code("/hirevec.v1.Collections/Delete", &read),
            Some(tonic::Code::PermissionDenied)
        );
        assert_eq!(code("/hirevec.v1.Unknown/Method", &read), Some(tonic::Code::PermissionDenied));
        assert_eq!(
            code(search, &headers("api-key", "full-secre")),
            Some(tonic::Code::Unauthenticated)
        );
        assert_eq!(
            code(search, &headers("authorization", "Basic full-secret")),
            Some(tonic::Code::Unauthenticated)
        );
    }

    #[test]
    fn every_read_method_exists_in_the_api() {
        // A renamed method must not silently fall out of the read-only list.
        let services = [
            crate::proto::collections_server::SERVICE_NAME,
            crate::proto::documents_server::SERVICE_NAME,
            crate::proto::search_server::SERVICE_NAME,
            crate::proto::models_server::SERVICE_NAME,
        ];
        for m in READ_METHODS {
            let service = m.trim_start_matches('/').split('/').next().unwrap();
            assert!(services.contains(&service), "{m}");
        }
    }
}
