//! The `hirevec` command line: `hirevec serve` runs the server, `hirevec bench ...` the tools.
use clap::{Parser, Subcommand};

use hirevec::config::{LogFormat, ServeConfig};

#[derive(Debug, Parser)]
#[command(name = "hirevec", version, about = "A vector search database for recruiting")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the gRPC server.
    Serve(ServeConfig),
    /// Benchmarks.
    #[command(subcommand)]
    Bench(BenchCommand),
    /// Embed a JSONL file of texts into an f32 .npy of normalised vectors.
    Embed(hirevec::tools::embed::EmbedArgs),
    /// Score a JSONL file of (query, document) pairs with a reranker.
    Rerank(hirevec::tools::rerank::RerankArgs),
    /// Crash test: load a child server, kill -9 it at random moments, restart it and check that
    /// every acknowledged write survived and nothing else appeared.
    Crasher(hirevec::tools::crasher::CrasherArgs),
    /// Load a JSONL file or a BEIR corpus into a collection over gRPC (client streaming).
    Import(hirevec::tools::import::ImportArgs),
    /// Retrieval quality on a BEIR set (NDCG, MRR, MAP, P, R at k; BM25 reference; grid).
    Eval(hirevec::tools::eval::EvalArgs),
}

#[derive(Debug, Subcommand)]
enum BenchCommand {
    /// ANN recall and throughput of the index on a vector file set.
    Ann(hirevec::tools::bench_ann::BenchAnnArgs),
    /// Time a restart (opening sealed segments, replay, payload index) after loading N vectors.
    Restart(hirevec::server::bench_restart::RestartArgs),
    /// Embedding throughput (docs/s, tokens/s) of a model over a JSONL text file.
    Embed(hirevec::tools::bench_embed::BenchEmbedArgs),
    /// Reranking throughput (pairs/s) for batch sizes and prompt lengths.
    Rerank(hirevec::tools::bench_rerank::BenchRerankArgs),
    /// Concurrent gRPC clients against a server: searches and upserts, QPS and latency.
    Load(hirevec::tools::bench_load::BenchLoadArgs),
}

fn init_logging(format: LogFormat) {
    use tracing_subscriber::EnvFilter;
    // Logs go to stderr: stdout carries the `listening on ADDR` line and tool output.
    let filter = EnvFilter::try_from_env("HIREVEC_LOG")
        .or_else(|_| EnvFilter::try_from_default_env())
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve(config) => {
            init_logging(config.log_format);
            config.validate()?;
            let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
            rt.block_on(hirevec::server::serve(config))?;
        }
        Command::Bench(BenchCommand::Ann(args)) => {
            init_logging(LogFormat::Text);
            hirevec::tools::bench_ann::run(args)?;
        }
        Command::Bench(BenchCommand::Restart(args)) => {
            init_logging(LogFormat::Text);
            hirevec::server::bench_restart::run(args)?;
        }
        Command::Bench(BenchCommand::Embed(args)) => {
            init_logging(LogFormat::Text);
            hirevec::tools::bench_embed::run(args)?;
        }
        Command::Bench(BenchCommand::Rerank(args)) => {
            init_logging(LogFormat::Text);
            hirevec::tools::bench_rerank::run(args)?;
        }
        Command::Rerank(args) => {
            init_logging(LogFormat::Text);
            hirevec::tools::rerank::run(args)?;
        }
        Command::Bench(BenchCommand::Load(args)) => {
            init_logging(LogFormat::Text);
            hirevec::tools::bench_load::run(args)?;
        }
        Command::Import(args) => {
            init_logging(LogFormat::Text);
            hirevec::tools::import::run(args)?;
        }
        Command::Eval(args) => {
            init_logging(LogFormat::Text);
            hirevec::tools::eval::run(args)?;
        }
        Command::Embed(args) => {
            init_logging(LogFormat::Text);
            hirevec::tools::embed::run(args)?;
        }
        Command::Crasher(args) => {
            init_logging(LogFormat::Text);
            hirevec::tools::crasher::run(args)?;
        }
    }
    Ok(())
}
