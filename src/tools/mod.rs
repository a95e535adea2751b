//! Offline tools behind `hirevec <tool>` subcommands: benchmarks and the file formats they read.
//! They use the index crate's public API only, like any other client, and never the server's
//! storage, so a benchmark measures exactly what a caller of `hirevec-index` gets. The crasher
//! goes one step further out: it runs the server binary and speaks to it only over gRPC.

pub mod bench_ann;
pub mod bench_embed;
pub mod bench_rerank;
pub mod crasher;
pub mod embed;
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
