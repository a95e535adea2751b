//! What the gRPC tools (`import`, `eval`, `bench load`) share: a connection with the API key
//! attached, and a throw-away server started as a child process when no address is given.
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{Context, bail};
use clap::Args;
use tonic::metadata::{Ascii, MetadataValue};
use tonic::service::Interceptor;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Channel, Endpoint};

use crate::proto;
use crate::proto::collections_client::CollectionsClient;
use crate::proto::documents_client::DocumentsClient;
use crate::proto::models_client::ModelsClient;
use crate::proto::search_client::SearchClient;

/// Messages up to this size both ways: a batch of 1000 1024-d vectors with texts fits.
const MAX_MESSAGE: usize = 64 << 20;

/// Where the server is and how to get in.
#[derive(Debug, Clone, Args)]
pub struct ServerArgs {
    /// The server, as HOST:PORT or a URL.
    #[arg(long, default_value = "127.0.0.1:50051")]
    pub addr: String,
    /// API key sent as `authorization: Bearer KEY` (prefer the environment variable).
    #[arg(long, env = "HIREVEC_API_KEY", hide_env_values = true)]
    pub api_key: Option<String>,
}

/// Adds the bearer key to every request.
#[derive(Debug, Clone)]
pub struct Auth(Option<MetadataValue<Ascii>>);

impl Interceptor for Auth {
    fn call(&mut self, mut req: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        if let Some(v) = &self.0 {
            req.metadata_mut().insert("authorization", v.clone());
        }
        Ok(req)
    }
}

type Svc = InterceptedService<Channel, Auth>;

/// One client per service over one HTTP/2 connection.
#[derive(Debug, Clone)]
pub struct Clients {
    pub collections: CollectionsClient<Svc>,
    pub documents: DocumentsClient<Svc>,
    pub search: SearchClient<Svc>,
    pub models: ModelsClient<Svc>,
}

fn url(addr: &str) -> String {
    if addr.contains("://") { addr.to_string() } else { format!("http://{addr}") }
}

/// Connects to `addr`; fails fast when nothing listens there.
pub async fn connect(addr: &str, api_key: Option<&str>) -> anyhow::Result<Clients> {
    let channel = Endpoint::from_shared(url(addr))
        .with_context(|| format!("bad address {addr:?}"))?
        .connect_timeout(Duration::from_secs(10))
        .connect()
        .await
        .with_context(|| format!("connect to {addr}"))?;
    let auth = Auth(match api_key {
        Some(k) => Some(format!("Bearer {k}").parse().context("the API key is not ASCII")?),
        None => None,
    });
    let svc = || InterceptedService::new(channel.clone(), auth.clone());
    Ok(Clients {
        collections: CollectionsClient::new(svc()),
        documents: DocumentsClient::new(svc())
            .max_decoding_message_size(MAX_MESSAGE)
            .max_encoding_message_size(MAX_MESSAGE),
        search: SearchClient::new(svc())
            .max_decoding_message_size(MAX_MESSAGE)
            .max_encoding_message_size(MAX_MESSAGE),
        models: ModelsClient::new(svc())
            .max_decoding_message_size(MAX_MESSAGE)
            .max_encoding_message_size(MAX_MESSAGE),
    })
}

impl ServerArgs {
    pub async fn connect(&self) -> anyhow::Result<Clients> {
        connect(&self.addr, self.api_key.as_deref()).await
    }
}

/// A `hirevec serve` child process (eval's throw-away server, the crasher's victim), killed
/// with SIGKILL when dropped: nothing in a throw-away server is worth keeping, and the crasher
/// wants exactly that.
#[derive(Debug)]
pub struct ChildServer {
    child: Child,
    pub addr: String,
    _dir: Option<tempfile::TempDir>,
}

/// The `hirevec` binary to start: this one, unless the tool runs from somewhere else.
pub fn own_binary() -> anyhow::Result<PathBuf> {
    std::env::current_exe().context("locate the hirevec binary")
}

impl ChildServer {
    /// Starts `bin serve` on a temporary data directory (removed with the server).
    pub fn start(bin: &Path, args: &[String]) -> anyhow::Result<ChildServer> {
        let dir = tempfile::tempdir().context("temporary data directory")?;
        let mut server = Self::start_in(bin, dir.path(), args, &[])?;
        server._dir = Some(dir);
        Ok(server)
    }

    /// Starts `bin serve` on 127.0.0.1:0 over `data_dir` with `args` and `env` (HIREVEC_LOG
    /// defaults to `warn`) and waits for its `listening on` line (model loading included).
    pub fn start_in(
        bin: &Path,
        data_dir: &Path,
        args: &[String],
        env: &[(&str, String)],
    ) -> anyhow::Result<ChildServer> {
        let mut child = Command::new(bin)
            .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(data_dir)
            .args(args)
            .env("HIREVEC_LOG", std::env::var("HIREVEC_LOG").unwrap_or_else(|_| "warn".into()))
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .with_context(|| format!("start {}", bin.display()))?;
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut tx = Some(tx);
            // Keep draining stdout after the address so the child never blocks on a full pipe.
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(addr) = line.strip_prefix("listening on ")
                    && let Some(tx) = tx.take()
                {
                    let _ = tx.send(addr.trim().to_string());
                }
            }
        });
        match rx.recv_timeout(Duration::from_secs(600)) {
            Ok(addr) => Ok(ChildServer { child, addr, _dir: None }),
            Err(_) => {
                let _ = child.kill();
                let status = child.wait().ok();
                bail!("the server did not start (exit status {status:?}); its log is above")
            }
        }
    }

    /// SIGKILL and wait: the server gets no chance to flush or seal anything.
    pub fn kill9(mut self) -> anyhow::Result<()> {
        self.child.kill().context("kill the server")?;
        self.child.wait().context("wait for the killed server")?;
        Ok(())
    }
}

impl Drop for ChildServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Lowercase names accepted for a document kind in JSONL files.
pub fn parse_kind(s: &str) -> Option<proto::DocumentKind> {
    use proto::DocumentKind::*;
    Some(match s.to_ascii_lowercase().as_str() {
        "jd" | "job" | "job_description" => Jd,
        "resume" | "cv" => Resume,
        "other" | "" => Other,
        _ => return None,
    })
}

/// Creates a collection, or leaves an existing one alone when `exists_ok`.
pub async fn ensure_collection(
    c: &mut Clients,
    name: &str,
    config: proto::CollectionConfig,
    exists_ok: bool,
) -> anyhow::Result<proto::CollectionInfo> {
    match c
        .collections
        .create(proto::CreateCollectionRequest { name: name.into(), config: Some(config) })
        .await
    {
        Ok(r) => Ok(r.into_inner()),
        Err(s) if exists_ok && s.code() == tonic::Code::AlreadyExists => Ok(c
            .collections
            .get(proto::GetCollectionRequest { name: name.into() })
            .await
            .with_context(|| format!("get collection {name}"))?
            .into_inner()),
        Err(s) => Err(anyhow::anyhow!("create collection {name}: {}", s.message())),
    }
}
