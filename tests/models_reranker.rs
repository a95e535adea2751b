//! Qwen3-Reranker against the reference implementation's outputs for the tiny random Qwen3
//! CausalLM in ../shared/fixtures/tiny-qwen3/reranker: prompt token ids, yes/no logits and
//! P(yes), batched equal to single, and truncation that keeps the prompt's closing tokens.
use std::path::{Path, PathBuf};

use hirevec::models::reranker::{self, Pair};
use hirevec::models::{
    BatchLimits, Compute, EmbedderConfig, LoadOptions, ModelError, RerankModel, Reranker,
};
use serde_json::Value;

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/fixtures/tiny-qwen3/reranker")
}

fn expected() -> Value {
    let p =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/fixtures/tiny-qwen3/expected.json");
    serde_json::from_str(&std::fs::read_to_string(p).expect("expected.json")).unwrap()
}

fn load(max_tokens: Option<usize>) -> RerankModel {
    RerankModel::load(dir().to_str().unwrap(), &LoadOptions { compute: Compute::cpu(), max_tokens })
        .unwrap_or_else(|e| panic!("load {}: {e}", dir().display()))
}

/// The instruction the fixture's prompts were built with (read back from its token ids below:
/// the test fails if the prompt differs in any token).
const FIXTURE_INSTRUCTION: &str = "Given a job description, retrieve resumes that match it";

fn fixture_pairs(exp: &Value) -> Vec<(Pair, Vec<u32>, f64, f64, f64)> {
    exp["reranker"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let pair = Pair {
                query: r["query"].as_str().unwrap().into(),
                document: r["document"].as_str().unwrap().into(),
                instruction: Some(FIXTURE_INSTRUCTION.into()),
            };
            let ids = r["input_ids"].as_array().unwrap().iter().map(|x| x.as_u64().unwrap() as u32);
            let f = |k: &str| r[k].as_f64().unwrap();
            (pair, ids.collect(), f("logit_yes"), f("logit_no"), f("score"))
        })
        .collect()
}

#[test]
fn prompt_ids_logits_and_scores_match_the_reference() {
    let exp = expected();
    let model = load(None);
    let (yes, no) = model.answer_ids();
    assert_eq!(
        (u64::from(yes), u64::from(no)),
        (exp["yes_id"].as_u64().unwrap(), exp["no_id"].as_u64().unwrap())
    );
    let cases = fixture_pairs(&exp);
    assert!(!cases.is_empty());
    let pairs: Vec<Pair> = cases.iter().map(|c| c.0.clone()).collect();
    let prompts = model.tokenize(&pairs).unwrap();
    for (p, (pair, ids, logit_yes, logit_no, score)) in prompts.iter().zip(&cases) {
        assert_eq!(p.ids, *ids, "prompt token ids of {pair:?}");
        assert!(!p.truncated);
        let [y, n] = model.logits(&[p.ids.as_slice()]).unwrap()[0];
        assert!((f64::from(y) - logit_yes).abs() <= 1e-4, "logit_yes {y} vs {logit_yes}");
        assert!((f64::from(n) - logit_no).abs() <= 1e-4, "logit_no {n} vs {logit_no}");
        let s = model.score(std::slice::from_ref(pair), BatchLimits::default()).unwrap().scores[0];
        assert!((f64::from(s) - score).abs() <= 1e-4, "score {s} vs {score}");
    }
}

#[test]
fn the_prompt_is_the_official_template() {
    // The same prompt, built from the template's text with the real tokenizer in one piece,
    // must give the fixture's ids: checks the system turn, the user content and the think block.
    let exp = expected();
    let (pair, ids, ..) = fixture_pairs(&exp).remove(0);
    let (content, _) = reranker::user_content(&pair);
    let whole = format!("{}{content}{}", reranker::prefix(), reranker::SUFFIX);
    let tok = tokenizers::Tokenizer::from_file(dir().join("tokenizer.json")).unwrap();
    assert_eq!(tok.encode(whole.as_str(), false).unwrap().get_ids(), ids.as_slice());
    assert!(content.starts_with("<Instruct>: Given a job description"));
    assert!(content.contains("\n<Query>: Senior Rust engineer\n<Document>: "));
}

/// Documents of many lengths, scored in one batch (left-padded, masked) and one by one.
#[test]
fn a_batch_scores_each_pair_as_it_scores_alone() {
    let model = load(None);
    let seed = 20261201u64;
    println!("seed {seed}");
    let words = ["Rust", "Kubernetes", "nurse", "chef", "audit", "gRPC", "Python", "logistics"];
    let mut state = seed;
    let pairs: Vec<Pair> = (0..9)
        .map(|i| {
            let n = 1 + (i * 7) % 40;
            let doc: Vec<&str> = (0..n)
                .map(|_| {
                    state =
                        state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                    words[(state >> 33) as usize % words.len()]
                })
                .collect();
            Pair {
                query: "Backend engineer for a search team".into(),
                document: doc.join(" "),
                instruction: if i % 3 == 0 { None } else { Some(FIXTURE_INSTRUCTION.into()) },
            }
        })
        .collect();
    let batched = model.score(&pairs, BatchLimits::default()).unwrap();
    for (i, p) in pairs.iter().enumerate() {
        let alone = model.score(std::slice::from_ref(p), BatchLimits::default()).unwrap();
        assert!(
            (alone.scores[0] - batched.scores[i]).abs() <= 1e-5,
            "pair {i}: alone {} batched {}",
            alone.scores[0],
            batched.scores[i]
        );
        assert_eq!(alone.token_counts[0], batched.token_counts[i]);
    }
    // Through the queue, in one request and in many concurrent ones.
    let rr = Reranker::spawn(model.into(), EmbedderConfig::default()).unwrap();
    assert_eq!(rr.rerank_blocking(pairs.clone()).unwrap().scores, batched.scores);
}

#[test]
fn truncation_cuts_the_document_and_keeps_the_closing_tokens() {
    let limit = 128;
    let model = load(Some(limit));
    let short = Pair {
        query: "Senior Rust engineer".into(),
        document: "5 years of Rust".into(),
        instruction: None,
    };
    let long = Pair { document: "Rust, tokio and gRPC services. ".repeat(100), ..short.clone() };
    let prompts = model.tokenize(&[short.clone(), long.clone()]).unwrap();
    assert!(!prompts[0].truncated);
    assert!(prompts[1].truncated);
    assert_eq!(prompts[1].ids.len(), limit, "the cut prompt fills the limit exactly");
    // Both prompts end with the same closing tokens (end of turn, assistant, empty think).
    let tok = tokenizers::Tokenizer::from_file(dir().join("tokenizer.json")).unwrap();
    let suffix = tok.encode(reranker::SUFFIX, false).unwrap().get_ids().to_vec();
    assert!(prompts[1].ids.ends_with(&suffix));
    assert!(prompts[0].ids.ends_with(&suffix));
    // And the same beginning, through the query: only the document lost tokens.
    let head = tok
        .encode(
            format!(
                "{}{}",
                reranker::prefix(),
                reranker::user_content(&short).0.trim_end_matches("5 years of Rust")
            )
            .as_str(),
            false,
        )
        .unwrap()
        .get_ids()
        .len();
    assert_eq!(prompts[0].ids[..head - 1], prompts[1].ids[..head - 1]);
    let out = model.score(std::slice::from_ref(&long), BatchLimits::default()).unwrap();
    assert!(out.truncated[0] && out.scores[0] > 0.0 && out.scores[0] < 1.0);

    // A query that alone exceeds the limit is refused, not cut.
    let huge = Pair { query: "Rust ".repeat(400), ..short };
    match model.tokenize(&[huge]) {
        Err(ModelError::PromptTooLong { limit: l, tokens }) => {
            assert_eq!(l, limit);
            assert!(tokens > limit);
        }
        other => panic!("expected PromptTooLong, got {other:?}"),
    }
}

#[test]
fn no_instruction_leaves_the_instruct_line_out() {
    let pair = Pair { query: "q".into(), document: "d".into(), instruction: Some(String::new()) };
    assert_eq!(reranker::user_content(&pair).0, "<Query>: q\n<Document>: d");
    let default = Pair { instruction: None, ..pair };
    assert!(
        reranker::user_content(&default)
            .0
            .starts_with(&format!("<Instruct>: {}\n", hirevec::models::instructions::DEFAULT_TASK))
    );
}
