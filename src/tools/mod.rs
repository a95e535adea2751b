//! Tools behind `hirevec <tool>` subcommands. The offline ones (bench ann/embed/rerank, embed,
//! rerank) use the index crate's or the models' public API directly and never the server's
//! storage, so a benchmark measures exactly what a caller of `hirevec-index` gets. The gRPC ones
//! (import, eval, bench load) talk to a server like any other client; so does the crasher,
//! which also starts, kills and restarts the server it tests.

pub mod beir;
pub mod bench_ann;
pub mod bench_embed;
pub mod bench_load;
pub mod bench_rerank;
pub mod bm25;
pub mod client;
pub mod crasher;
pub mod embed;
pub mod eval;
pub mod import;
pub mod metrics;
pub mod plot;
pub mod rerank;
pub mod vecio;

/// Prints a benchmark's JSON report on stdout and, when asked, writes it to `path` too.
pub(crate) fn print_report<T: serde::Serialize>(
    report: &T,
    path: Option<&std::path::Path>,
) -> anyhow::Result<()> {
    use anyhow::Context;
    let json = serde_json::to_string_pretty(report)?;
    println!("{json}");
    if let Some(path) = path {
        std::fs::write(path, &json).with_context(|| format!("write {}", path.display()))?;
    }
    Ok(())
}
