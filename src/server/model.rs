//! The engine's own types: what a request means once the gRPC edge has validated and converted it.
//! Nothing here knows about protobuf or RocksDB.
use std::collections::BTreeMap;

use hirevec_index::Dtype;
use serde::{Deserialize, Serialize};

/// Longest client id, in bytes.
pub const MAX_ID_BYTES: usize = 256;
/// Longest payload key, in bytes.
pub const MAX_KEY_BYTES: usize = 128;
/// Deepest nesting of all_of/any_of/none_of accepted in a filter.
pub const MAX_FILTER_DEPTH: usize = 32;
/// Largest `top_k`, scroll `limit`.
pub const MAX_TOP_K: usize = 10_000;
/// Largest dimension accepted.
pub const MAX_DIM: u32 = 8192;

/// What a document is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// A job description.
    Jd,
    /// A resume / CV.
    Resume,
    /// Anything else.
    Other,
}

impl Kind {
    /// All kinds, in the order of [`Kind::index`].
    pub const ALL: [Kind; 3] = [Kind::Jd, Kind::Resume, Kind::Other];

    /// Dense index 0..3, used for per-kind bitmaps and in the stored record.
    pub fn index(self) -> usize {
        match self {
            Kind::Jd => 0,
            Kind::Resume => 1,
            Kind::Other => 2,
        }
    }

    /// Inverse of [`Kind::index`].
    pub fn from_index(i: usize) -> Option<Kind> {
        Kind::ALL.get(i).copied()
    }
}

/// A typed payload value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// UTF-8 string.
    Str(String),
    /// Signed integer.
    Int(i64),
    /// Finite float.
    Float(f64),
    /// Boolean.
    Bool(bool),
    /// List of strings (a filter matches any element).
    StrList(Vec<String>),
}

/// A document's payload, ordered by key so stored records are deterministic.
pub type Payload = BTreeMap<String, Value>;

/// A document as an upsert brings it.
#[derive(Debug, Clone)]
pub struct NewDocument {
    /// Client id.
    pub id: String,
    /// Kind.
    pub kind: Kind,
    /// Free text (stored, returned on request).
    pub text: String,
    /// Typed payload.
    pub payload: Payload,
    /// The client's vector, `dim` values.
    pub vector: Vec<f32>,
}

/// A stored document's attributes, without text and vector (those are read only on request).
#[derive(Debug, Clone, PartialEq)]
pub struct DocMeta {
    /// Client id.
    pub id: String,
    /// Kind.
    pub kind: Kind,
    /// Typed payload.
    pub payload: Payload,
    /// Sequence number of the write that stored this version.
    pub seq: u64,
}

/// A stored document with whatever was asked for.
#[derive(Debug, Clone)]
pub struct StoredDocument {
    /// Attributes.
    pub meta: DocMeta,
    /// Text, if asked for.
    pub text: Option<String>,
    /// The stored vector (unit length, `stored_dim`), if asked for.
    pub vector: Option<Vec<f32>>,
}

/// Which optional parts of a document a read returns.
#[derive(Debug, Clone, Copy, Default)]
pub struct With {
    /// Return the payload.
    pub payload: bool,
    /// Return the text.
    pub text: bool,
    /// Return the stored vector.
    pub vector: bool,
}

/// A numeric interval; `None` bounds are open.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Range {
    /// Lower bound and whether it is included.
    pub lower: Option<(f64, bool)>,
    /// Upper bound and whether it is included.
    pub upper: Option<(f64, bool)>,
}

/// A condition on one payload field.
#[derive(Debug, Clone, PartialEq)]
pub enum FieldMatch {
    /// Equal to any of these scalar values (one value for `eq`).
    AnyOf(Vec<Value>),
    /// Numeric value inside the range.
    Range(Range),
    /// The field is present.
    Exists,
}

/// A validated filter.
#[derive(Debug, Clone, PartialEq)]
pub enum Filter {
    /// Kind is one of these.
    Kind(Vec<Kind>),
    /// Condition on a payload field.
    Field { key: String, matches: FieldMatch },
    /// Every sub-filter matches.
    AllOf(Vec<Filter>),
    /// At least one sub-filter matches.
    AnyOf(Vec<Filter>),
    /// No sub-filter matches.
    NoneOf(Vec<Filter>),
}

/// HNSW parameters of a collection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct HnswConfig {
    /// Links per node on upper layers.
    pub m: u32,
    /// Candidate list size at build.
    pub ef_construction: u32,
    /// Default candidate list size at search.
    pub ef: u32,
}

/// The embedding model a collection's text vectors come from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelBinding {
    /// The model id the server loaded it under (`--model`).
    pub model: String,
    /// The hash of its files when the collection was created
    /// ([`crate::models::fingerprint::hash_files`]).
    pub hash: String,
}

/// A collection's default instruction for text queries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum QueryInstruction {
    /// A sentence of the client's.
    Text(String),
    /// A built-in task by name ([`crate::models::instructions::TASKS`]), resolved at query time.
    Task(String),
}

impl QueryInstruction {
    /// The instruction sentence.
    pub fn text(&self) -> &str {
        match self {
            QueryInstruction::Text(t) => t,
            // Names are checked when set, and built-in names are never removed.
            QueryInstruction::Task(name) => crate::models::instructions::task(name).unwrap_or(""),
        }
    }
}

/// Longest instruction, in bytes.
pub const MAX_INSTRUCTION_BYTES: usize = 4096;

/// A collection's settings, with every default resolved.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CollectionConfig {
    /// Dimension of incoming vectors.
    pub dim: u32,
    /// Stored (Matryoshka-truncated) dimension.
    pub stored_dim: u32,
    /// Stored precision.
    #[serde(with = "dtype_serde")]
    pub dtype: Dtype,
    /// HNSW parameters.
    pub hnsw: HnswConfig,
    /// Vectors in the growing segment before it is sealed.
    pub seal_threshold: u32,
    /// Seed of the HNSW level assignment, fixed at creation so that replay rebuilds the same graph.
    pub seed: u64,
    /// The embedding model of text upserts and text queries; `None`: vectors only.
    #[serde(default)]
    pub model: Option<ModelBinding>,
    /// Default instruction of text queries (instruction-following models only).
    #[serde(default)]
    pub query_instruction: Option<QueryInstruction>,
}

/// Default HNSW `m`.
pub const DEFAULT_M: u32 = 16;
/// Default `ef_construction`.
pub const DEFAULT_EF_CONSTRUCTION: u32 = 200;
/// Default search `ef`.
pub const DEFAULT_EF: u32 = 64;
/// Default seal threshold.
pub const DEFAULT_SEAL_THRESHOLD: u32 = 100_000;
/// Smallest seal threshold: smaller segments would make searches fan out over too many files.
pub const MIN_SEAL_THRESHOLD: u32 = 1000;

impl CollectionConfig {
    /// Checks every field; the errors name the request field (`config.…`).
    pub fn validate(&self) -> crate::error::Result<()> {
        use crate::error::Error;
        if !(1..=MAX_DIM).contains(&self.dim) {
            return Err(Error::invalid("config.dim", format!("must be in 1..={MAX_DIM}")));
        }
        if !(1..=self.dim).contains(&self.stored_dim) {
            return Err(Error::invalid("config.stored_dim", "must be in 1..=dim"));
        }
        if !(2..=128).contains(&self.hnsw.m) {
            return Err(Error::invalid("config.hnsw.m", "must be in 2..=128"));
        }
        if !(1..=4096).contains(&self.hnsw.ef_construction) {
            return Err(Error::invalid("config.hnsw.ef_construction", "must be in 1..=4096"));
        }
        if !(1..=4096).contains(&self.hnsw.ef) {
            return Err(Error::invalid("config.hnsw.ef", "must be in 1..=4096"));
        }
        if self.seal_threshold < MIN_SEAL_THRESHOLD {
            return Err(Error::invalid(
                "config.seal_threshold",
                format!("must be at least {MIN_SEAL_THRESHOLD}"),
            ));
        }
        Ok(())
    }

    /// The index crate's view of this config.
    pub fn segment_config(&self) -> hirevec_index::SegmentConfig {
        let mut c = hirevec_index::SegmentConfig::new(self.dim as usize);
        c.stored_dim = self.stored_dim as usize;
        c.dtype = self.dtype;
        c.hnsw.m = self.hnsw.m as usize;
        c.hnsw.ef_construction = self.hnsw.ef_construction as usize;
        c.hnsw.seed = self.seed;
        c
    }
}

mod dtype_serde {
    use hirevec_index::Dtype;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Dtype, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(d.as_str())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Dtype, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(|_| serde::de::Error::custom(format!("unknown dtype {s:?}")))
    }
}

/// Encodes a prepared (unit, `stored_dim`) vector at the stored precision, little-endian.
pub fn encode_vector(dtype: Dtype, v: &[f32]) -> Vec<u8> {
    match dtype {
        Dtype::F32 => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
        Dtype::F16 => v.iter().flat_map(|x| half::f16::from_f32(*x).to_le_bytes()).collect(),
    }
}

/// Inverse of [`encode_vector`]; `None` if the length does not fit `stored_dim`.
pub fn decode_vector(dtype: Dtype, stored_dim: usize, bytes: &[u8]) -> Option<Vec<f32>> {
    match dtype {
        Dtype::F32 if bytes.len() == stored_dim * 4 => Some(
            bytes.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect(),
        ),
        Dtype::F16 if bytes.len() == stored_dim * 2 => Some(
            bytes
                .chunks_exact(2)
                .map(|c| half::f16::from_le_bytes([c[0], c[1]]).to_f32())
                .collect(),
        ),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vector_codec_round_trips_at_stored_precision() {
        let v = [0.6f32, -0.8, 0.0];
        assert_eq!(decode_vector(Dtype::F32, 3, &encode_vector(Dtype::F32, &v)).unwrap(), v);
        let h = decode_vector(Dtype::F16, 3, &encode_vector(Dtype::F16, &v)).unwrap();
        for (a, b) in h.iter().zip(v) {
            assert!((a - b).abs() < 1e-3);
        }
        // f16 -> f32 -> f16 is exact, which is what makes replay reproduce the stored vectors.
        assert_eq!(encode_vector(Dtype::F16, &h), encode_vector(Dtype::F16, &v));
        assert!(decode_vector(Dtype::F16, 4, &encode_vector(Dtype::F16, &v)).is_none());
    }
}
