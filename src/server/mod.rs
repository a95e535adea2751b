//! The server: the gRPC edge (`grpc`, `convert`) over the engine (`engine`, `collection`,
//! `payload_index`), which reaches RocksDB only through `crate::storage` and vectors only through
//! `hirevec_index`.
pub mod auth;
pub mod bench_restart;
pub mod collection;
pub mod convert;
pub mod edge;
pub mod engine;
pub mod grpc;
pub mod metrics;
pub mod model;
mod payload_index;
pub mod registry;

use std::io::Write;
use std::sync::Arc;

pub use engine::{Engine, EngineOptions};

use crate::config::ServeConfig;
use crate::error::{Error, Result};
use crate::proto;

/// Runs `hirevec serve` until SIGINT or SIGTERM, then stops taking requests, lets running ones
/// finish, seals growing segments and closes RocksDB.
pub async fn serve(config: ServeConfig) -> Result<()> {
    config.validate()?;
    let opts = config.engine();
    let started = std::time::Instant::now();
    let engine = tokio::task::spawn_blocking(move || Engine::open(opts))
        .await
        .map_err(|e| Error::Internal { what: format!("open task failed: {e}") })??;
    let engine = Arc::new(engine);
    tracing::info!(data_dir = %config.data_dir.display(), collections = engine.list().len(),
        elapsed_ms = started.elapsed().as_millis() as u64, "data opened");
    let registry_opts = config.registry();
    let models = tokio::task::spawn_blocking(move || registry::Registry::load(&registry_opts))
        .await
        .map_err(|e| Error::Internal { what: format!("model load task failed: {e}") })??;
    let models = Arc::new(models);
    for c in engine.list() {
        // Say at start-up, not at the first request, that a collection's model is missing.
        let config = c.config();
        if let Some(b) = &config.model
            && let Err(e) = models.bound(c.name(), Some(b))
        {
            tracing::warn!(collection = c.name(), error = %e, "text requests will be refused");
        }
    }

    let listener = tokio::net::TcpListener::bind(config.listen).await.map_err(|source| {
        Error::Io { op: "listen on", path: config.listen.to_string().into(), source }
    })?;
    let addr = listener.local_addr().map_err(|source| Error::Io {
        op: "read address of",
        path: config.listen.to_string().into(),
        source,
    })?;

    if config.verify_interval > 0 {
        engine.start_verifier(std::time::Duration::from_secs(config.verify_interval));
    }
    let metrics = metrics::Metrics::new();
    let budget = edge::Budget::new(config.max_request_memory, config.max_message_bytes);
    metrics.watch_budget(budget.clone());
    if let Some(at) = config.metrics_listen {
        let listener = tokio::net::TcpListener::bind(at).await.map_err(|source| Error::Io {
            op: "listen (metrics) on",
            path: at.to_string().into(),
            source,
        })?;
        let bound = listener.local_addr().map_err(|source| Error::Io {
            op: "read address of",
            path: at.to_string().into(),
            source,
        })?;
        // Printed like the gRPC address, so tests and scripts can use port 0.
        println!("metrics on {bound}");
        tokio::spawn(metrics::serve(listener, metrics.clone(), engine.clone(), models.clone()));
    }
    let ctx = grpc::Ctx::new(engine.clone(), models, config.max_inflight, config.max_text_bytes);
    let max = config.max_message_bytes;
    let collections =
        proto::collections_server::CollectionsServer::new(grpc::CollectionsService(ctx.clone()))
            .max_decoding_message_size(max)
            .max_encoding_message_size(max);
    let documents =
        proto::documents_server::DocumentsServer::new(grpc::DocumentsService(ctx.clone()))
            .max_decoding_message_size(max)
            .max_encoding_message_size(max);
    let search = proto::search_server::SearchServer::new(grpc::SearchService(ctx.clone()))
        .max_decoding_message_size(max)
        .max_encoding_message_size(max);
    let models_service = proto::models_server::ModelsServer::new(grpc::ModelsService(ctx))
        .max_decoding_message_size(max)
        .max_encoding_message_size(max);
    let (health_reporter, health) = tonic_health::server::health_reporter();
    health_reporter
        .set_serving::<proto::collections_server::CollectionsServer<grpc::CollectionsService>>()
        .await;
    health_reporter
        .set_serving::<proto::documents_server::DocumentsServer<grpc::DocumentsService>>()
        .await;
    health_reporter.set_serving::<proto::search_server::SearchServer<grpc::SearchService>>().await;
    health_reporter.set_serving::<proto::models_server::ModelsServer<grpc::ModelsService>>().await;
    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()
        .map_err(|e| Error::Internal { what: format!("reflection service: {e}") })?;

    let keys = auth::Keys::new(config.api_key.as_deref(), config.read_only_api_key.as_deref());
    if keys.is_none() {
        tracing::warn!("no --api-key: anyone who can reach {addr} can read and write");
    }
    let mut builder = tonic::transport::Server::builder();
    if let (Some(cert), Some(key)) = (&config.tls_cert, &config.tls_key) {
        let read = |p: &std::path::PathBuf| {
            std::fs::read(p).map_err(|source| Error::Io { op: "read", path: p.clone(), source })
        };
        let identity = tonic::transport::Identity::from_pem(read(cert)?, read(key)?);
        builder = builder
            .tls_config(tonic::transport::ServerTlsConfig::new().identity(identity))
            .map_err(|e| {
            Error::invalid("--tls-cert", format!("unusable certificate or key: {e}"))
        })?;
        tracing::info!(cert = %cert.display(), "TLS on");
    }
    // Tests and scripts read this line to learn the port when listening on port 0.
    println!("listening on {addr}");
    let _ = std::io::stdout().flush();
    tracing::info!(%addr, "serving");

    let result = builder
        // Outermost first: the edge layer sees (and counts) requests the key check refuses.
        .layer(
            tower::ServiceBuilder::new()
                .layer(edge::EdgeLayer::new(metrics, budget))
                .layer(auth::AuthLayer::new(keys)),
        )
        .add_service(health)
        .add_service(reflection)
        .add_service(collections)
        .add_service(documents)
        .add_service(search)
        .add_service(models_service)
        .serve_with_incoming_shutdown(
            tokio_stream::wrappers::TcpListenerStream::new(listener),
            shutdown_signal(),
        )
        .await;
    tracing::info!("no longer serving; sealing segments and closing storage");
    let closing = engine.clone();
    tokio::task::spawn_blocking(move || closing.shutdown())
        .await
        .map_err(|e| Error::Internal { what: format!("shutdown task failed: {e}") })??;
    tracing::info!("shut down cleanly");
    result.map_err(|e| Error::Internal { what: format!("gRPC server: {e}") })
}

async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %e, "cannot listen for SIGINT");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => tracing::info!("SIGINT received"),
        _ = term => tracing::info!("SIGTERM received"),
    }
}
