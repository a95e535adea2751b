//! all-MiniLM-L6-v2 (weights from scripts/setup-models.sh) against the reference embeddings in
//! ../shared/fixtures/minilm and against the 384-d vectors shipped with the O*NET texts.
mod common;

use std::path::{Path, PathBuf};

use hirevec::models::{BatchLimits, Compute, EmbedKind, EmbeddingModel, LoadOptions, ModelError};
use serde_json::Value;

fn root() -> &'static Path {
    common::root()
}

fn model_dir() -> PathBuf {
    common::minilm_dir()
}

fn load(max_tokens: Option<usize>) -> EmbeddingModel {
    EmbeddingModel::load(
        model_dir().to_str().unwrap(),
        &LoadOptions { compute: Compute::cpu(), max_tokens },
    )
    .unwrap()
}

fn expected() -> Value {
    let text =
        std::fs::read_to_string(root().join("../shared/fixtures/minilm/expected.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

#[test]
fn minilm_matches_reference_ids_and_embeddings() {
    let exp = expected();
    let model = load(None);
    assert_eq!(model.info().dim, 384);
    assert_eq!(model.info().max_tokens, 256, "max_seq_length of sentence_bert_config.json");
    let texts: Vec<&str> =
        exp["texts"].as_array().unwrap().iter().map(|t| t.as_str().unwrap()).collect();
    let enc = model.tokenize(&texts, &EmbedKind::Document).unwrap();
    for (i, row) in exp["input_ids"].as_array().unwrap().iter().enumerate() {
        // The reference is a right-padded batch (pad id 0); ours is unpadded.
        let mut want: Vec<u32> =
            row.as_array().unwrap().iter().map(|x| x.as_u64().unwrap() as u32).collect();
        while want.last() == Some(&0) {
            want.pop();
        }
        assert_eq!(enc[i].ids, want, "text {i}");
    }
    let batched = model.embed(&texts, &EmbedKind::Document, BatchLimits::default()).unwrap();
    let single = model
        .embed(
            &texts,
            &EmbedKind::Document,
            BatchLimits { max_batch_tokens: 1 << 20, max_batch_texts: 1 },
        )
        .unwrap();
    for (i, row) in exp["embeddings"].as_array().unwrap().iter().enumerate() {
        let want: Vec<f64> = row.as_array().unwrap().iter().map(|x| x.as_f64().unwrap()).collect();
        let err = batched
            .vector(i)
            .iter()
            .zip(&want)
            .map(|(&a, &b)| (f64::from(a) - b).abs())
            .fold(0.0, f64::max);
        assert!(err <= 1e-4, "text {i}: max error {err}");
        let diff = batched
            .vector(i)
            .iter()
            .zip(single.vector(i))
            .map(|(a, b)| (a - b).abs())
            .fold(0f32, f32::max);
        assert!(diff <= 1e-5, "text {i}: batched vs alone {diff}");
    }
    // MiniLM takes no instruction: refusing one beats silently ignoring it.
    let err = model.embed(
        &texts,
        &EmbedKind::Query { instruction: Some("x".into()) },
        BatchLimits::default(),
    );
    assert!(matches!(err, Err(ModelError::InstructionNotSupported { .. })));
}

#[test]
fn minilm_truncates_at_max_seq_length_and_reports_it() {
    let model = load(None);
    let long = "recruiting ".repeat(400);
    let out = model
        .embed(&[long.as_str(), "short text"], &EmbedKind::Document, BatchLimits::default())
        .unwrap();
    assert_eq!(out.truncated, vec![true, false]);
    assert_eq!(out.token_counts[0], 256);
    // tokenizer.json pads to 128; we must not.
    assert_eq!(out.token_counts[1], 4);
}

/// The O*NET set ships 384-d vectors of the same model (sentence-transformers, stored as f16):
/// ours must round to them, component by component.
#[test]
fn minilm_reproduces_shipped_onet_vectors() {
    let data = root().join("../shared/data/onet-minilm-384");
    let n = 500;
    let texts: Vec<String> = std::fs::read_to_string(data.join("texts.jsonl"))
        .unwrap()
        .lines()
        .take(n)
        .map(|l| serde_json::from_str::<Value>(l).unwrap()["text"].as_str().unwrap().to_owned())
        .collect();
    let shipped = hirevec::tools::vecio::read_npy(&data.join("vectors_f16.npy")).unwrap();
    assert_eq!(shipped.dim, 384);
    let model = load(None);
    let out = model.embed(&texts, &EmbedKind::Document, BatchLimits::default()).unwrap();
    let (mut worst, mut worst_cos) = (0f32, 1f64);
    for i in 0..n {
        let want = shipped.row(i);
        for (&a, &b) in out.vector(i).iter().zip(want) {
            // Half a unit in the last place of f16 at b's magnitude, plus f32 noise.
            let half_ulp = half::f16::from_f32(b.abs()).to_f32().max(6.1e-5) * 2f32.powi(-11);
            let excess = (a - b).abs() - half_ulp;
            worst = worst.max(excess);
        }
        let cos: f64 =
            out.vector(i).iter().zip(want).map(|(&a, &b)| f64::from(a) * f64::from(b)).sum();
        worst_cos = worst_cos.min(cos);
    }
    println!("onet {n} texts: worst excess over f16 half-ulp {worst:e}, min cosine {worst_cos}");
    assert!(worst <= 2e-6, "a component differs by more than f16 rounding: excess {worst}");
    assert!(worst_cos > 0.9999, "min cosine {worst_cos}");
}
