//! `hirevec crasher` end to end: three kill -9 / restart / check cycles against the real binary,
//! with short run windows so the suite stays quick. The long runs are for humans (see
//! docs/reliability-crasher.md); this one keeps the tool itself from rotting.
mod common;

use std::process::Command;

use common::*;

#[test]
fn three_crash_cycles_lose_no_acknowledged_write() {
    let seed = seed(77);
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("crasher.json");
    let out = Command::new(env!("CARGO_BIN_EXE_hirevec"))
        .args(["crasher", "--cycles", "3", "--writers", "3", "--ids-per-writer", "1000"])
        .args(["--min-run-ms", "300", "--max-run-ms", "1500", "--seed", &seed.to_string()])
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .arg("--json")
        .arg(&report)
        .env("HIREVEC_LOG", std::env::var("HIREVEC_LOG").unwrap_or_else(|_| "warn".into()))
        .output()
        .expect("run hirevec crasher");
    let stdout = String::from_utf8_lossy(&out.stdout);
    println!("{stdout}");
    eprintln!("{}", String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "crasher failed: {:?}", out.status);

    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap();
    assert_eq!(report["cycles"], 3, "{report}");
    assert_eq!(report["seed"], seed, "{report}");
    assert_eq!(report["violations"], 0, "{report}");
    assert!(report["total_acked_ops"].as_u64().unwrap() > 0, "{report}");
    assert_eq!(report["per_cycle"].as_array().unwrap().len(), 3, "{report}");
    assert_eq!(stdout.matches(" ok\n").count(), 3, "one clean summary line per cycle");
}
