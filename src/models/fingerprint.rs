//! The hash that binds a collection to the exact model that wrote its vectors. It covers every
//! file that changes what a text maps to: the weights, the architecture config, the tokenizer and
//! the sentence-transformers pooling/prompt configs. Two folders with the same files hash the
//! same wherever they live, so moving a model does not break the binding; a fine-tune with the
//! same layout but other weights does.
use std::path::{Path, PathBuf};

use super::error::{ModelError, Result};

/// `blake3:` and the hex digest of the named files, in the order given. Each file contributes
/// its name (not its directory), its length and its bytes, so renaming the folder is harmless
/// but swapping contents between two files is not.
pub fn hash_files(files: &[PathBuf]) -> Result<String> {
    let mut hasher = blake3::Hasher::new();
    for path in files {
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let len = std::fs::metadata(path).map_err(io(path))?.len();
        hasher.update(&(name.len() as u64).to_le_bytes());
        hasher.update(name.as_bytes());
        hasher.update(&len.to_le_bytes());
        // Weights run to gigabytes (16 GB for an 8B model in bf16): mmap them and hash on all
        // cores, a few seconds at start-up rather than a minute.
        hasher.update_mmap_rayon(path).map_err(io(path))?;
    }
    Ok(format!("blake3:{}", hasher.finalize().to_hex()))
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> ModelError + '_ {
    move |source| ModelError::Io { path: path.to_owned(), source }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_depends_on_contents_and_names_not_on_the_folder() {
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        for d in [a.path(), b.path()] {
            std::fs::write(d.join("config.json"), b"{\"x\":1}").unwrap();
            std::fs::write(d.join("model.safetensors"), b"weights").unwrap();
        }
        let files = |d: &Path| vec![d.join("config.json"), d.join("model.safetensors")];
        let ha = hash_files(&files(a.path())).unwrap();
        assert!(ha.starts_with("blake3:") && ha.len() == 7 + 64, "{ha}");
        assert_eq!(ha, hash_files(&files(b.path())).unwrap());
        std::fs::write(b.path().join("model.safetensors"), b"weightz").unwrap();
        assert_ne!(ha, hash_files(&files(b.path())).unwrap());
        // Contents moved from one file to the other must not hash the same.
        std::fs::write(b.path().join("config.json"), b"{\"x\":1}weights").unwrap();
        std::fs::write(b.path().join("model.safetensors"), b"").unwrap();
        assert_ne!(ha, hash_files(&files(b.path())).unwrap());
    }
}
