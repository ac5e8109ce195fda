//! `gateway model eval --world …` from the real binary: each world's own
//! model judged on the other worlds (never on a seed of its own world), and
//! the model under test on every directory with what it was trained on.
//! Two small worlds written by different hands (`fixtures/world_b`,
//! `fixtures/world_c`; CI installs python3).

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::harness::*;

/// `fixtures/world_<name>` for 4 hours with about 1000 senders, into
/// `dir/<name><seed>`.
fn world(dir: &Path, name: &str, seed: u32) -> PathBuf {
    let out = dir.join(format!("{name}{seed}"));
    std::fs::create_dir_all(&out).unwrap();
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let made = Command::new("python3")
        .arg(root.join(format!("fixtures/world_{name}/world_{name}.py")))
        .args([
            "--seed",
            &seed.to_string(),
            "--hours",
            "6",
            "--senders",
            "1500",
        ])
        .arg("--trace")
        .arg(out.join("trace.jsonl"))
        .arg("--labels")
        .arg(out.join("labels.jsonl"))
        .output()
        .unwrap();
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    out
}

/// `gateway model eval [--json] --world DIR …` on `dirs`.
fn eval_worlds(cfg: &Path, json: bool, dirs: &[&Path]) -> std::process::Output {
    let mut args = vec!["model".to_string(), "eval".to_string()];
    if json {
        args.push("--json".into());
    }
    for d in dirs {
        args.push("--world".into());
        args.push(d.display().to_string());
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    cli(cfg, &args)
}

fn share(v: &serde_json::Value, key: &str) -> f64 {
    let x = v[key].as_f64().unwrap_or(-1.0);
    assert!((0.0..=1.0).contains(&x), "{key} = {x} in {v}");
    x
}

#[test]
fn model_eval_judges_each_world_by_the_model_of_another() {
    let dir = TempDir::new("crossworld");
    let cfg = write_config(&dir.0, None, "");
    let (b5, c5, c6) = (
        world(&dir.0, "b", 5),
        world(&dir.0, "c", 5),
        world(&dir.0, "c", 6),
    );
    let out = eval_worlds(&cfg, true, &[&b5, &c5, &c6]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    // The bundled model's lines are the lines under test.
    assert!((report["lines"]["suspect"].as_f64().unwrap() - 0.5).abs() < 1e-6);
    assert!((report["lines"]["spam"].as_f64().unwrap() - 0.7).abs() < 1e-6);
    let pairs: Vec<(String, String)> = report["cross_world"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            for key in ["precision", "recall", "legit_held_share", "auc"] {
                share(r, key);
            }
            // per legitimate category, as the README's table has them
            assert!(!r["legit"].as_array().unwrap().is_empty(), "{r}");
            (
                r["trained_on"].as_str().unwrap().to_string(),
                r["judged_on"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    // b's model on both seeds of c; c's model (trained on c5) on b5 only,
    // never on c6, a seed of its own world.
    assert_eq!(
        pairs,
        vec![
            ("b".into(), "c5".into()),
            ("b".into(), "c6".into()),
            ("c".into(), "b5".into()),
        ]
    );
    let under_test = &report["model_under_test"];
    assert!(
        under_test["trained_on"]
            .as_str()
            .unwrap()
            .contains("world_b"),
        "{under_test}"
    );
    let judged: Vec<&str> = under_test["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            share(r, "precision");
            r["judged_on"].as_str().unwrap()
        })
        .collect();
    assert_eq!(judged, ["b5", "c5", "c6"]);

    // The table shows the categories and names the goals; one world alone
    // is refused, by name.
    let text = eval_worlds(&cfg, false, &[&b5, &c5]);
    assert!(text.status.success());
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(
        text.contains("trained on")
            && text.contains("by category")
            && text.contains("goals (issue 14)"),
        "{text}"
    );
    let one = eval_worlds(&cfg, false, &[&c5, &c6]);
    assert_eq!(one.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&one.stderr).contains("two worlds"));

    // A broken line in one world's trace: exit 2, naming the file and the line.
    let bad = dir.0.join("broken");
    std::fs::create_dir_all(&bad).unwrap();
    std::fs::copy(c5.join("labels.jsonl"), bad.join("labels.jsonl")).unwrap();
    let mut trace = std::fs::read_to_string(c5.join("trace.jsonl")).unwrap();
    trace.insert_str(trace.find('\n').unwrap() + 1, "{\"at\": not json\n");
    std::fs::write(bad.join("trace.jsonl"), trace).unwrap();
    let broken = eval_worlds(&cfg, false, &[&b5, &bad]);
    assert_eq!(broken.status.code(), Some(2));
    let said = String::from_utf8_lossy(&broken.stderr);
    assert!(said.contains("broken/trace.jsonl: line 2:"), "{said}");
}
