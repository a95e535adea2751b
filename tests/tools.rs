//! The operator tools against real servers: `import` (rejected lines reported, the rest stored,
//! `--resume`), `eval` end to end with MiniLM (a temporary server it starts itself; metrics
//! recomputed from its TREC run file), and `bench load` (its counts checked against the server).
mod common;

use std::collections::HashMap;
use std::path::Path;
use std::process::Command;

use common::*;
use hirevec::proto;
use hirevec::tools::metrics;

fn hirevec(args: &[&str]) -> std::process::Output {
    let out = Command::new(env!("CARGO_BIN_EXE_hirevec"))
        .args(args)
        .env("HIREVEC_LOG", "warn")
        .output()
        .expect("run hirevec");
    eprintln!("{}", String::from_utf8_lossy(&out.stderr));
    out
}

fn json(path: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_reports_bad_lines_stores_the_rest_and_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("data"));
    let mut c = server.clients().await;
    create(&mut c, "people", config(3)).await;
    let input = dir.path().join("people.jsonl");
    let lines = [
        r#"{"id": "a", "kind": "resume", "text": "nurse", "payload": {"v": 1}, "vector": [1, 0, 0]}"#,
        r#"{"id": "b", "kind": "jd", "text": "driver", "vector": [0, 1, 0]}"#,
        r#"{"id": "c", "vector": [1, 2]}"#, // wrong dimension: the server rejects it
        r#"{"id": "d", "kind": "boss", "vector": [1, 1, 1]}"#, // bad kind: rejected here
        "",
        r#"{"id": "e", "vector": [0, 0, 1]"#, // broken JSON
        r#"{"id": "a", "kind": "resume", "payload": {"v": 2}, "vector": [0, 0, 2]}"#, // overwrite
        r#"{"id": "f", "vector": [0, 0, 0]}"#, // all zero: the server rejects it
        r#"{"id": "g", "kind": "other", "vector": [1, 1, 0]}"#,
    ];
    std::fs::write(&input, lines.join("\n")).unwrap();
    let rejects = dir.path().join("rejects.txt");
    let report = dir.path().join("report.json");
    let out = hirevec(&[
        "import",
        "--addr",
        &server.addr,
        "--collection",
        "people",
        "--input",
        input.to_str().unwrap(),
        "--batch",
        "4",
        "--rejects",
        rejects.to_str().unwrap(),
        "--json",
        report.to_str().unwrap(),
    ]);
    assert!(out.status.success());
    let r = json(&report);
    assert_eq!((r["lines"].as_u64(), r["rejected"].as_u64()), (Some(8), Some(4)), "{r}");
    // a twice (both versions sent, the second wins), b, g.
    assert_eq!(r["upserted"].as_u64(), Some(4), "{r}");
    let rejected = std::fs::read_to_string(&rejects).unwrap();
    let mut got: Vec<&str> = rejected.lines().collect();
    got.sort();
    assert_eq!(got.len(), 4, "{rejected}");
    assert!(got[0].starts_with("line 3 (id \"c\"): ") && got[0].contains("vector"), "{rejected}");
    assert!(got[1].starts_with("line 4 (id \"d\"): kind"), "{rejected}");
    assert!(got[2].starts_with("line 6: bad JSON"), "{rejected}");
    assert!(got[3].starts_with("line 8 (id \"f\"): "), "{rejected}");

    assert_eq!(count(&mut c, "people", None).await, 3);
    let a = c
        .documents
        .get(proto::GetDocumentsRequest {
            collection: "people".into(),
            ids: vec!["a".into()],
            include: Some(proto::Include { payload: true, text: false, vector: true }),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(a.documents[0].payload["v"], int(2), "the later line wins");
    assert!((a.documents[0].vector[2] - 1.0).abs() < 1e-3);

    // Resume: new lines after the old ones; the stored ids are skipped, not sent again.
    let more = [
        lines[0],
        lines[1],
        r#"{"id": "h", "vector": [1, 0, 1]}"#,
        r#"{"id": "i", "vector": [0, 1, 1]}"#,
    ];
    std::fs::write(&input, more.join("\n")).unwrap();
    let out = hirevec(&[
        "import",
        "--addr",
        &server.addr,
        "--collection",
        "people",
        "--input",
        input.to_str().unwrap(),
        "--resume",
        "--json",
        report.to_str().unwrap(),
    ]);
    assert!(out.status.success());
    let r = json(&report);
    assert_eq!((r["skipped_existing"].as_u64(), r["upserted"].as_u64()), (Some(2), Some(2)), "{r}");
    assert_eq!(count(&mut c, "people", None).await, 5);
    // The skipped "a" kept its stored version (v 2), not line 1's v 1.
    let a = c
        .documents
        .get(proto::GetDocumentsRequest {
            collection: "people".into(),
            ids: vec!["a".into()],
            include: Some(proto::Include { payload: true, text: false, vector: false }),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(a.documents[0].payload["v"], int(2));
    server.stop();
}

/// Writes a BEIR folder.
fn write_beir(
    dir: &Path,
    corpus: &[(&str, &str, &str)],
    queries: &[(&str, &str)],
    qrels: &[(&str, &str, i32)],
) {
    std::fs::create_dir_all(dir.join("qrels")).unwrap();
    let c: Vec<String> = corpus
        .iter()
        .map(|(id, title, text)| {
            serde_json::json!({"_id": id, "title": title, "text": text}).to_string()
        })
        .collect();
    std::fs::write(dir.join("corpus.jsonl"), c.join("\n")).unwrap();
    let q: Vec<String> = queries
        .iter()
        .map(|(id, text)| serde_json::json!({"_id": id, "text": text}).to_string())
        .collect();
    std::fs::write(dir.join("queries.jsonl"), q.join("\n")).unwrap();
    let mut t = String::from("query-id\tcorpus-id\tscore\n");
    for (q, d, g) in qrels {
        t.push_str(&format!("{q}\t{d}\t{g}\n"));
    }
    std::fs::write(dir.join("qrels/test.tsv"), t).unwrap();
}

fn read_run(path: &Path) -> HashMap<String, Vec<(String, f32)>> {
    let mut run: HashMap<String, Vec<(String, f32)>> = HashMap::new();
    for line in std::fs::read_to_string(path).unwrap().lines() {
        let f: Vec<&str> = line.split(' ').collect();
        assert_eq!(f.len(), 6, "qid Q0 docid rank score tag: {line}");
        assert_eq!(f[1], "Q0");
        run.entry(f[0].into()).or_default().push((f[2].into(), f[4].parse().unwrap()));
    }
    run
}

#[test]
fn eval_end_to_end_with_minilm() {
    let model = minilm_dir();
    let dir = tempfile::tempdir().unwrap();
    let set = dir.path().join("jobs");
    write_beir(
        &set,
        &[
            ("nurse", "Registered Nurse", "Cares for patients in a hospital, gives medication."),
            ("dev", "Software Engineer", "Writes and tests computer programs and code."),
            ("driver", "Truck Driver", "Drives heavy trucks to deliver goods over long distances."),
            ("chef", "Chef", "Cooks meals and runs a restaurant kitchen."),
            ("teacher", "Teacher", "Teaches pupils in a primary school classroom."),
        ],
        &[
            ("q1", "hospital nursing job"),
            ("q2", "programmer"),
            ("q3", "lorry driving"),
            ("q4", "cook in a restaurant"),
            ("q5", "unjudged query"),
        ],
        &[
            ("q1", "nurse", 2),
            ("q2", "dev", 2),
            ("q2", "teacher", 0),
            ("q3", "driver", 1),
            ("q4", "chef", 3),
        ],
    );
    let report = dir.path().join("eval.json");
    let run = dir.path().join("run.trec");
    let plot = dir.path().join("eval.svg");
    let pairs = dir.path().join("pairs.jsonl");
    std::fs::write(
        &pairs,
        [
            r#"{"id1": "nurse", "text2": "a nurse in a clinic", "label": 3}"#,
            r#"{"id1": "nurse", "text2": "a doctor in a hospital", "label": 2}"#,
            r#"{"id1": "nurse", "text2": "software developer", "label": 0}"#,
            r#"{"text1": "truck driver", "text2": "delivery driver", "label": 3}"#,
            r#"{"text1": "truck driver", "text2": "pastry chef", "label": 0}"#,
        ]
        .join("\n"),
    )
    .unwrap();
    let out = hirevec(&[
        "eval",
        "--data",
        set.to_str().unwrap(),
        "--model",
        model.to_str().unwrap(),
        "--k",
        "3",
        "--instruction",
        "Find the job description for this job title",
        "--grid-instruction",
        "off,on",
        "--pairs",
        pairs.to_str().unwrap(),
        "--json",
        report.to_str().unwrap(),
        "--run",
        run.to_str().unwrap(),
        "--plot",
        plot.to_str().unwrap(),
    ]);
    assert!(out.status.success());
    let table = String::from_utf8_lossy(&out.stdout);
    println!("{table}");
    assert!(table.contains("| BM25 (k1 1.2, b 0.75) |"), "{table}");
    let r = json(&report);
    assert_eq!((r["corpus"].as_u64(), r["queries"].as_u64()), (Some(5), Some(4)), "{r}");
    assert_eq!(r["queries_without_qrels"].as_u64(), Some(1));
    let rows = r["rows"].as_array().unwrap();
    assert_eq!(
        rows.iter().map(|x| x["tag"].as_str().unwrap()).collect::<Vec<_>>(),
        ["hirevec", "hirevec-instr", "bm25"]
    );
    // The queries are easy for a sentence model: every right document comes first.
    assert_eq!(rows[0]["mrr"].as_f64(), Some(1.0), "{r}");
    assert_eq!(rows[0]["ndcg_exp"].as_f64(), Some(1.0), "{r}");
    // BM25 finds no word of "programmer" or "lorry driving" (driving != drives) in the corpus.
    assert!(rows[2]["recall"].as_f64().unwrap() < 1.0, "{r}");

    // The run files, read back and scored independently, give the reported figures.
    let qrels = hirevec::tools::beir::read_qrels(&set.join("qrels/test.tsv")).unwrap();
    for (file, row) in [
        (run.clone(), &rows[0]),
        (dir.path().join("run.hirevec-instr.trec"), &rows[1]),
        (dir.path().join("run.bm25.trec"), &rows[2]),
    ] {
        let run = read_run(&file);
        let s = metrics::evaluate(&run, &qrels, 3);
        for (name, v) in
            [("ndcg_exp", s.mean.ndcg_exp), ("map", s.mean.map), ("recall", s.mean.recall)]
        {
            assert!((row[name].as_f64().unwrap() - v).abs() < 1e-6, "{name} of {}", file.display());
        }
    }
    let p = &r["pairs"];
    assert_eq!(p["pairs"].as_u64(), Some(5));
    let rho = p["spearman_cosine"].as_f64().unwrap();
    assert!(rho > 0.5, "cosine should follow the labels: {p}");
    assert!(std::fs::read_to_string(&plot).unwrap().contains("BM25"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bench_load_against_a_live_server() {
    let seed = seed(20261201);
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("data"));
    let report = dir.path().join("load.json");
    let plot = dir.path().join("load.svg");
    let out = hirevec(&[
        "bench",
        "load",
        "--addr",
        &server.addr,
        "--collection",
        "load",
        "--dim",
        "16",
        "--preload",
        "500",
        "--clients",
        "4",
        "--requests",
        "400",
        "--upsert-ratio",
        "0.25",
        "--upsert-batch",
        "5",
        "--seed",
        &seed.to_string(),
        "--json",
        report.to_str().unwrap(),
        "--plot",
        plot.to_str().unwrap(),
    ]);
    assert!(out.status.success());
    let r = json(&report);
    assert_eq!((r["requests"].as_u64(), r["errors"].as_u64()), (Some(400), Some(0)), "{r}");
    let searches = r["search"]["ok"].as_u64().unwrap();
    let upserts = r["upsert"]["ok"].as_u64().unwrap();
    assert_eq!(searches + upserts, 400);
    assert!(searches > 0 && upserts > 0, "{r}");
    let p50 = r["search"]["p50_ms"].as_f64().unwrap();
    let p99 = r["search"]["p99_ms"].as_f64().unwrap();
    assert!(p50 > 0.0 && p50 <= p99 && p99 <= r["search"]["max_ms"].as_f64().unwrap());
    // Every acknowledged upsert is there: 500 preloaded + 5 new ids per upsert.
    let mut c = server.clients().await;
    assert_eq!(count(&mut c, "load", None).await, 500 + 5 * upserts);
    assert!(std::fs::read_to_string(&plot).unwrap().contains("search latency"));
    server.stop();
}
