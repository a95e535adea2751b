//! Text to token ids, with the model's special tokens, no padding (the batcher pads, after sorting
//! by length) and truncation that is reported per text, never silent.
use std::path::Path;

use tokenizers::{Tokenizer, TruncationDirection};

use super::error::{ModelError, Result};

/// One tokenized text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Encoded {
    /// Token ids with the model's special tokens.
    pub ids: Vec<u32>,
    /// Whether the text was cut to fit the token limit.
    pub truncated: bool,
}

/// A tokenizer.json with this crate's policy applied.
#[derive(Debug, Clone)]
pub struct TextTokenizer {
    /// Loaded with padding and truncation off: we truncate ourselves so we know when we did.
    inner: Tokenizer,
    /// A token to append after each text because the post-processor does not (Qwen3-Embedding
    /// pools the hidden state of `<|endoftext|>`; a reranker-style tokenizer.json omits it).
    append: Option<u32>,
    /// Tokens of text allowed: the limit less the special tokens added around the text.
    max_content: usize,
}

fn tok_err(e: impl std::fmt::Display) -> ModelError {
    ModelError::Tokenizer { reason: e.to_string() }
}

impl TextTokenizer {
    /// Loads `path`, drops the padding and truncation it may configure (MiniLM's pads every text
    /// to 128) and truncates to `max_tokens` including special tokens. `ensure_last` is a token
    /// id every encoding must end with; it is appended when the post-processor does not.
    pub fn load(path: &Path, max_tokens: usize, ensure_last: Option<u32>) -> Result<Self> {
        let mut inner = Tokenizer::from_file(path)
            .map_err(|e| ModelError::Tokenizer { reason: format!("{}: {e}", path.display()) })?;
        inner.with_padding(None);
        inner.with_truncation(None).map_err(tok_err)?;
        let with = inner.encode_fast("a", true).map_err(tok_err)?;
        let without = inner.encode_fast("a", false).map_err(tok_err)?;
        let added = with.len().saturating_sub(without.len());
        let append = ensure_last.filter(|id| with.get_ids().last() != Some(id));
        let special = added + usize::from(append.is_some());
        let max_content = max_tokens.checked_sub(special).filter(|&m| m > 0).ok_or_else(|| ModelError::Tokenizer {
            reason: format!("token limit {max_tokens} leaves no room for text after {special} special tokens"),
        })?;
        Ok(TextTokenizer { inner, append, max_content })
    }

    /// The id of a token, if the vocabulary has it.
    pub fn token_to_id(&self, token: &str) -> Option<u32> {
        self.inner.token_to_id(token)
    }

    /// Tokenizes `texts` (in parallel inside tokenizers): the text's tokens, cut to the limit,
    /// then the special tokens, exactly as tokenizers' own truncation would place them.
    pub fn encode_batch(&self, texts: &[&str]) -> Result<Vec<Encoded>> {
        let encs = self.inner.encode_batch_fast(texts.to_vec(), false).map_err(tok_err)?;
        encs.into_iter()
            .map(|mut e| {
                let truncated = e.len() > self.max_content;
                if truncated {
                    e.truncate(self.max_content, 0, TruncationDirection::Right);
                }
                let e = self.inner.post_process(e, None, true).map_err(tok_err)?;
                let mut ids = e.get_ids().to_vec();
                if let Some(id) = self.append {
                    ids.push(id);
                }
                Ok(Encoded { ids, truncated })
            })
            .collect()
    }
}
