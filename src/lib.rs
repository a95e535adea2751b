//! hirevec: a vector search database for recruiting. One binary holds the gRPC server
//! (`hirevec serve`) and the operator tools (`hirevec bench ...`).
//!
//! Layers point one way: `server::grpc` (edge) -> `server::engine` / `server::collection` ->
//! {`hirevec_index`, `storage` (the only RocksDB user)}.
pub mod config;
pub mod error;
pub mod models;
pub mod server;
pub mod storage;
pub mod tools;

/// Generated gRPC types and services of `hirevec.v1`, and the descriptor set served by reflection.
#[allow(missing_docs, clippy::all, clippy::pedantic)]
pub mod proto {
    tonic::include_proto!("hirevec.v1");

    /// Encoded `FileDescriptorSet` of `proto/hirevec/v1`, for the reflection service.
    pub const FILE_DESCRIPTOR_SET: &[u8] =
        tonic::include_file_descriptor_set!("hirevec_descriptor");
}
