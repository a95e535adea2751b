//! Qwen3 embedding against the reference implementation's outputs for the tiny random Qwen3 in
//! ../shared/fixtures/tiny-qwen3 (transformers on PyTorch, f32 arithmetic on the bf16 weights).
use std::path::{Path, PathBuf};

use hirevec::models::{
    BatchLimits, Compute, EmbedKind, Embedder, EmbedderConfig, EmbeddingModel, LoadOptions,
    ModelError, instructions,
};
use serde_json::Value;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/fixtures/tiny-qwen3")
}

fn expected() -> Value {
    let text = std::fs::read_to_string(fixtures().join("expected.json"))
        .expect("tiny-qwen3/expected.json");
    serde_json::from_str(&text).unwrap()
}

fn matrix(v: &Value) -> Vec<Vec<f64>> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|r| r.as_array().unwrap().iter().map(|x| x.as_f64().unwrap()).collect())
        .collect()
}

fn ids(v: &Value) -> Vec<Vec<u32>> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|r| r.as_array().unwrap().iter().map(|x| x.as_u64().unwrap() as u32).collect())
        .collect()
}

fn load(dir: &Path, max_tokens: Option<usize>) -> EmbeddingModel {
    EmbeddingModel::load(
        dir.to_str().unwrap(),
        &LoadOptions { compute: Compute::cpu(), max_tokens },
    )
    .unwrap_or_else(|e| panic!("load {}: {e}", dir.display()))
}

/// Every folder holding the tiny model's backbone: the official key layout (no `model.` prefix,
/// tokenizer appends `<|endoftext|>`), the optional flat copy, and the reranker checkpoint
/// (`model.` prefix, tokenizer appends nothing, so our code must append the token itself).
fn model_dirs() -> Vec<PathBuf> {
    let mut dirs = vec![fixtures().join("embedding"), fixtures().join("reranker")];
    let flat = fixtures().join("embedding-flat");
    if flat.is_dir() {
        dirs.push(flat);
    }
    dirs
}

fn texts(exp: &Value) -> Vec<String> {
    exp["embedding"]["texts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap().to_owned())
        .collect()
}

fn max_abs(a: &[f32], b: &[f64]) -> f64 {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).map(|(&x, &y)| (f64::from(x) - y).abs()).fold(0.0, f64::max)
}

#[test]
fn query_format_matches_reference_text() {
    let exp = expected();
    let model = load(&fixtures().join("embedding"), None);
    let kind = EmbedKind::Query {
        instruction: Some("Given a job description, retrieve resumes that match it".into()),
    };
    let formatted = model.format("Senior Rust engineer, gRPC, vector search", &kind).unwrap();
    assert_eq!(formatted, texts(&exp)[0]);
    assert_eq!(model.format("a resume", &EmbedKind::Document).unwrap(), "a resume");
    assert_eq!(
        model.format("x", &EmbedKind::Query { instruction: None }).unwrap(),
        format!("Instruct: {}\nQuery:x", instructions::DEFAULT_TASK)
    );
}

#[test]
fn token_ids_equal_reference() {
    let exp = expected();
    let want = ids(&exp["embedding"]["input_ids_unpadded"]);
    for dir in model_dirs() {
        let model = load(&dir, None);
        let got = model.tokenize(&texts(&exp), &EmbedKind::Document).unwrap();
        for (i, (g, w)) in got.iter().zip(&want).enumerate() {
            assert_eq!(&g.ids, w, "{}: text {i}", dir.display());
            assert!(!g.truncated);
        }
    }
}

#[test]
fn embeddings_match_reference_and_batching_changes_nothing() {
    let exp = expected();
    let e = &exp["embedding"];
    let pooled_ref = matrix(&e["pooled"]);
    let normed_ref = matrix(&e["normalized"]);
    let want_ids = ids(&e["input_ids_unpadded"]);
    for dir in model_dirs() {
        let model = load(&dir, None);
        let dim = model.info().dim;
        let seqs: Vec<&[u32]> = want_ids.iter().map(Vec::as_slice).collect();

        // The left-padded batch of all three, as the reference ran it.
        let pooled: Vec<Vec<f32>> = model.pooled(&seqs).unwrap().to_vec2().unwrap();
        for (i, (p, r)) in pooled.iter().zip(&pooled_ref).enumerate() {
            let scale = r.iter().fold(1.0f64, |m, x| m.max(x.abs()));
            let err = max_abs(p, r);
            assert!(err <= 1e-4 * scale, "{}: pooled row {i} differs by {err}", dir.display());
        }
        let batched = model.forward(&seqs).unwrap();
        for (i, r) in normed_ref.iter().enumerate() {
            let err = max_abs(&batched[i * dim..(i + 1) * dim], r);
            assert!(err <= 1e-4, "{}: normalised row {i} differs by {err}", dir.display());
        }
        // Each text alone must give the vector it got in the padded batch.
        for (i, s) in seqs.iter().enumerate() {
            let solo = model.forward(&[s]).unwrap();
            let diff = solo
                .iter()
                .zip(&batched[i * dim..])
                .map(|(a, b)| (a - b).abs())
                .fold(0f32, f32::max);
            assert!(diff <= 1e-5, "{}: text {i} alone vs batched differs by {diff}", dir.display());
        }
        // And through the text API with the sorting batcher, in batches of one and of all.
        let texts = texts(&exp);
        let one = model
            .embed(
                &texts,
                &EmbedKind::Document,
                BatchLimits { max_batch_tokens: 1 << 20, max_batch_texts: 1 },
            )
            .unwrap();
        let all = model.embed(&texts, &EmbedKind::Document, BatchLimits::default()).unwrap();
        for i in 0..texts.len() {
            let err = max_abs(one.vector(i), &normed_ref[i]);
            assert!(err <= 1e-4, "{}: text API row {i} differs by {err}", dir.display());
            let diff = one
                .vector(i)
                .iter()
                .zip(all.vector(i))
                .map(|(a, b)| (a - b).abs())
                .fold(0f32, f32::max);
            assert!(
                diff <= 1e-5,
                "{}: batch of 1 vs 3 differs by {diff} for text {i}",
                dir.display()
            );
            assert_eq!(all.token_counts[i] as usize, want_ids[i].len());
        }
    }
}

#[test]
fn truncation_is_reported_and_keeps_end_of_text_token() {
    let exp = expected();
    let eot = exp["eot_id"].as_u64().unwrap() as u32;
    for dir in model_dirs() {
        let model = load(&dir, Some(8));
        assert_eq!(model.info().max_tokens, 8);
        let enc = model
            .tokenize(
                &["a fairly long text that has more than eight tokens in it for sure", "short"],
                &EmbedKind::Document,
            )
            .unwrap();
        assert_eq!(enc[0].ids.len(), 8, "{}", dir.display());
        assert!(enc[0].truncated);
        assert_eq!(
            *enc[0].ids.last().unwrap(),
            eot,
            "{}: the pooled token must survive truncation",
            dir.display()
        );
        assert!(!enc[1].truncated);
        assert_eq!(*enc[1].ids.last().unwrap(), eot);
        let out = model
            .embed(
                &["a fairly long text that has more than eight tokens in it for sure"],
                &EmbedKind::Document,
                BatchLimits::default(),
            )
            .unwrap();
        assert_eq!(out.truncated, vec![true]);
        assert_eq!(out.token_counts, vec![8]);
    }
}

#[test]
fn matryoshka_cut_renormalises() {
    let model = load(&fixtures().join("embedding"), None);
    let out =
        model.embed(&["Rust engineer"], &EmbedKind::Document, BatchLimits::default()).unwrap();
    let cut = out.clone().cut(16).unwrap();
    assert_eq!(cut.dim, 16);
    let norm: f32 = cut.vector(0).iter().map(|x| x * x).sum::<f32>().sqrt();
    assert!((norm - 1.0).abs() < 1e-5, "norm {norm}");
    // Same direction as the prefix of the full vector.
    let head = &out.vector(0)[..16];
    let head_norm: f32 = head.iter().map(|x| x * x).sum::<f32>().sqrt();
    for (a, b) in cut.vector(0).iter().zip(head) {
        assert!((a - b / head_norm).abs() < 1e-6);
    }
    assert!(matches!(
        out.clone().cut(65),
        Err(ModelError::BadDimensions { model_dim: 64, requested: 65 })
    ));
    assert!(matches!(out.cut(0), Err(ModelError::BadDimensions { .. })));
}

#[test]
fn queue_returns_what_the_model_returns_and_refuses_overload() {
    let exp = expected();
    let model = std::sync::Arc::new(load(&fixtures().join("embedding"), None));
    let texts = texts(&exp);
    let direct = model.embed(&texts, &EmbedKind::Document, BatchLimits::default()).unwrap();
    let config =
        EmbedderConfig { max_pending_texts: 64, max_request_texts: 8, ..EmbedderConfig::default() };
    let embedder = Embedder::spawn(model.clone(), config).unwrap();

    // Many concurrent callers: the queue merges their requests into shared batches; each caller
    // still gets exactly its own rows.
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..6)
            .map(|t| {
                let embedder = embedder.clone();
                let texts = texts.clone();
                let direct = &direct;
                s.spawn(move || {
                    let i = t % texts.len();
                    let out = embedder
                        .embed_blocking(vec![texts[i].clone()], EmbedKind::Document)
                        .unwrap();
                    let diff = out
                        .vector(0)
                        .iter()
                        .zip(direct.vector(i))
                        .map(|(a, b)| (a - b).abs())
                        .fold(0f32, f32::max);
                    assert!(diff <= 1e-5, "caller {t}: {diff}");
                    assert_eq!(out.token_counts[0], direct.token_counts[i]);
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
    });

    // The async API, on a runtime; the forward pass runs on the model thread.
    let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
    let out = rt.block_on(embedder.embed(texts.clone(), EmbedKind::Document)).unwrap();
    assert_eq!(out, direct);
    let empty = rt.block_on(embedder.embed(vec![], EmbedKind::Document)).unwrap();
    assert!(empty.is_empty());

    let too_many = vec!["x".to_owned(); 9];
    assert!(matches!(
        embedder.embed_blocking(too_many, EmbedKind::Document),
        Err(ModelError::RequestTooLarge { texts: 9, limit: 8 })
    ));

    // A queue bound of 2 texts refuses a request of 3 at once, whatever is in flight.
    let tight = Embedder::spawn(model, EmbedderConfig { max_pending_texts: 2, ..config }).unwrap();
    assert!(matches!(
        tight.embed_blocking(texts.clone(), EmbedKind::Document),
        Err(ModelError::Overloaded { limit: 2, .. })
    ));
    assert_eq!(tight.embed_blocking(vec!["ok".into()], EmbedKind::Document).unwrap().len(), 1);
    // A caller that resubmits as soon as it has its answer is never refused on its own
    // finished texts (they leave the pending count before the reply is sent).
    for round in 0..20 {
        let out = tight.embed_blocking(texts[..2].to_vec(), EmbedKind::Document);
        assert!(out.is_ok(), "round {round}: {out:?}");
    }
}

#[test]
fn missing_files_say_what_is_missing() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(fixtures().join("embedding/config.json"), dir.path().join("config.json"))
        .unwrap();
    let err = EmbeddingModel::load(
        dir.path().to_str().unwrap(),
        &LoadOptions { compute: Compute::cpu(), max_tokens: None },
    )
    .unwrap_err();
    match err {
        ModelError::MissingFile { file, .. } => assert_eq!(file, "tokenizer.json"),
        other => panic!("expected MissingFile, got {other}"),
    }
    let err = EmbeddingModel::load("./no/such/model-dir", &LoadOptions::default());
    assert!(matches!(err, Err(ModelError::NotFound { .. })), "{err:?}");
    assert!(matches!(instructions::task("nope"), Err(ModelError::UnknownTask { .. })));
    assert!(instructions::task("jd_to_resume").unwrap().starts_with("Given a job description"));
}
