//! Starts the real `hirevec` binary on 127.0.0.1:0 with a temporary data directory and connects
//! gRPC clients to it.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use hirevec::proto;
use hirevec::proto::collections_client::CollectionsClient;
use hirevec::proto::documents_client::DocumentsClient;
use hirevec::proto::models_client::ModelsClient;
use hirevec::proto::search_client::SearchClient;
use tonic::transport::Channel;

/// A running server process.
pub struct Server {
    child: Child,
    pub addr: String,
    pub data_dir: PathBuf,
    /// The Prometheus endpoint, when started with --metrics-listen.
    pub metrics_addr: Option<String>,
}

/// Generous bound on start-up, only so a broken build fails instead of hanging the suite.
const START_LIMIT: Duration = Duration::from_secs(300);

impl Server {
    pub fn start(data_dir: &Path) -> Server {
        Self::start_with(data_dir, &[])
    }

    pub fn start_with(data_dir: &Path, extra: &[&str]) -> Server {
        let mut child = Command::new(env!("CARGO_BIN_EXE_hirevec"))
            .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(data_dir)
            .args(extra)
            // No embedding model unless a test asks for one with --model (flags beat the
            // environment): loading one costs start-up time most tests do not need.
            .env("HIREVEC_MODEL", "none")
            .env("HIREVEC_LOG", std::env::var("HIREVEC_LOG").unwrap_or_else(|_| "warn".into()))
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start hirevec");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut sent = false;
            let mut metrics = None;
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                // The metrics address comes before the gRPC one.
                if let Some(addr) = line.strip_prefix("metrics on ") {
                    metrics = Some(addr.trim().to_string());
                }
                if !sent && let Some(addr) = line.strip_prefix("listening on ") {
                    let _ = tx.send((addr.trim().to_string(), metrics.take()));
                    sent = true;
                }
            }
        });
        let (addr, metrics_addr) = rx.recv_timeout(START_LIMIT).unwrap_or_else(|_| {
            let _ = child.kill();
            panic!("hirevec did not print its address; status {:?}", child.try_wait())
        });
        Server { child, addr, data_dir: data_dir.to_owned(), metrics_addr }
    }

    pub async fn channel(&self) -> Channel {
        Channel::from_shared(format!("http://{}", self.addr))
            .unwrap()
            .connect()
            .await
            .expect("connect")
    }

    pub async fn clients(&self) -> Clients {
        let ch = self.channel().await;
        Clients {
            collections: CollectionsClient::new(ch.clone()),
            documents: DocumentsClient::new(ch.clone())
                .max_decoding_message_size(64 << 20)
                .max_encoding_message_size(64 << 20),
            search: SearchClient::new(ch.clone()),
            models: ModelsClient::new(ch),
        }
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The server's peak resident memory so far (Linux `VmHWM`), in KiB.
    pub fn peak_rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap();
        let line = status.lines().find(|l| l.starts_with("VmHWM:")).expect("VmHWM in status");
        line.split_whitespace().nth(1).unwrap().parse().unwrap()
    }

    /// SIGTERM, then waits for a clean exit.
    pub fn stop(mut self) {
        let status =
            Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status().unwrap();
        assert!(status.success());
        let exit = self.child.wait().unwrap();
        assert!(exit.success(), "hirevec exited with {exit:?} after SIGTERM");
    }

    /// SIGKILL: no chance to flush anything.
    pub fn kill9(mut self) {
        self.child.kill().unwrap();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[derive(Clone)]
pub struct Clients {
    pub collections: CollectionsClient<Channel>,
    pub documents: DocumentsClient<Channel>,
    pub search: SearchClient<Channel>,
    pub models: ModelsClient<Channel>,
}

/// The package root.
pub fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// all-MiniLM-L6-v2, fetched with the set-up script when absent, so tests that need it fail
/// loudly (never skip) on a machine where the weights cannot be had.
pub fn minilm_dir() -> PathBuf {
    static ONCE: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    ONCE.get_or_init(|| {
        let dir = root().join("models/all-MiniLM-L6-v2");
        if !dir.join("model.safetensors").is_file() {
            let status = Command::new("bash")
                .arg(root().join("scripts/setup-models.sh"))
                .status()
                .expect("run scripts/setup-models.sh");
            assert!(status.success(), "scripts/setup-models.sh failed");
        }
        dir
    })
    .clone()
}

/// The tiny random Qwen3-Embedding of ../shared/fixtures (real tokenizer, random weights).
pub fn tiny_qwen3_dir() -> PathBuf {
    root().join("../shared/fixtures/tiny-qwen3/embedding")
}

/// The seed of a randomized test: `HIREVEC_TEST_SEED` or the given default, printed so a failure
/// can be replayed.
pub fn seed(default: u64) -> u64 {
    let s = std::env::var("HIREVEC_TEST_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(default);
    println!("seed {s} (set HIREVEC_TEST_SEED to replay)");
    s
}

pub fn config(dim: u32) -> proto::CollectionConfig {
    proto::CollectionConfig { dim, ..Default::default() }
}

pub async fn create(
    c: &mut Clients,
    name: &str,
    config: proto::CollectionConfig,
) -> proto::CollectionInfo {
    c.collections
        .create(proto::CreateCollectionRequest { name: name.into(), config: Some(config) })
        .await
        .expect("create collection")
        .into_inner()
}

pub fn random_vector(rng: &mut impl rand::Rng, dim: u32) -> Vec<f32> {
    (0..dim).map(|_| rng.random_range(-1.0f32..1.0)).collect()
}

pub fn s(v: &str) -> proto::Value {
    proto::Value { kind: Some(proto::value::Kind::StringValue(v.into())) }
}

pub fn int(v: i64) -> proto::Value {
    proto::Value { kind: Some(proto::value::Kind::IntValue(v)) }
}

pub fn doc(
    id: &str,
    kind: proto::DocumentKind,
    vector: Vec<f32>,
    payload: &[(&str, proto::Value)],
) -> proto::Document {
    proto::Document {
        id: id.into(),
        kind: kind as i32,
        text: format!("text of {id}"),
        payload: payload.iter().map(|(k, v)| (k.to_string(), v.clone())).collect(),
        vector,
        sequence: 0,
    }
}

pub fn eq(key: &str, v: proto::Value) -> proto::Filter {
    proto::Filter {
        condition: Some(proto::filter::Condition::Field(proto::FieldCondition {
            key: key.into(),
            condition: Some(proto::field_condition::Condition::Eq(v)),
        })),
    }
}

pub fn kind_filter(kinds: &[proto::DocumentKind]) -> proto::Filter {
    proto::Filter {
        condition: Some(proto::filter::Condition::Kind(proto::KindCondition {
            kinds: kinds.iter().map(|k| *k as i32).collect(),
        })),
    }
}

pub async fn upsert(
    c: &mut Clients,
    coll: &str,
    docs: Vec<proto::Document>,
) -> proto::UpsertResponse {
    c.documents
        .upsert(proto::UpsertRequest { collection: coll.into(), documents: docs })
        .await
        .expect("upsert")
        .into_inner()
}

pub async fn count(c: &mut Clients, coll: &str, filter: Option<proto::Filter>) -> u64 {
    c.documents
        .count(proto::CountRequest { collection: coll.into(), filter })
        .await
        .expect("count")
        .into_inner()
        .count
}

/// Every document matching the filter, page by page.
pub async fn scroll_all(
    c: &mut Clients,
    coll: &str,
    filter: Option<proto::Filter>,
    page: u32,
) -> Vec<proto::Document> {
    let mut out = Vec::new();
    let mut cursor = String::new();
    loop {
        let r = c
            .documents
            .scroll(proto::ScrollRequest {
                collection: coll.into(),
                filter: filter.clone(),
                limit: page,
                cursor: cursor.clone(),
                include: Some(proto::Include { payload: true, text: false, vector: false }),
            })
            .await
            .expect("scroll")
            .into_inner();
        out.extend(r.documents);
        if r.next_cursor.is_empty() {
            return out;
        }
        cursor = r.next_cursor;
    }
}

pub fn search_req(
    coll: &str,
    vector: Vec<f32>,
    top_k: u32,
    filter: Option<proto::Filter>,
) -> proto::SearchRequest {
    proto::SearchRequest { collection: coll.into(), vector, top_k, filter, ..Default::default() }
}

pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

pub fn normalized(v: &[f32]) -> Vec<f32> {
    let n = dot(v, v).sqrt();
    v.iter().map(|x| x / n).collect()
}
