//! Offline tools behind `hirevec <tool>` subcommands: benchmarks and the file formats they read.
//! They use the index crate's public API only, like any other client, and never the server's
//! storage, so a benchmark measures exactly what a caller of `hirevec-index` gets.

pub mod bench_ann;
pub mod bench_embed;
pub mod bench_rerank;
pub mod embed;
pub mod rerank;
pub mod vecio;
