//! Integration tests over the public API: dependency hygiene, evaluation on
//! an unseen generated population, training, and concurrent use.
//!
//! Kept fast in debug builds by using small populations. The full-size
//! cross-world evaluation is `python3 bench/crossworld.py`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use classifier::labels::read_labels;
use classifier::train::{TrainOptions, train};
use classifier::{
    Config, Engine, Label, MetadataEvent, Model, Timestamp, VerdictKind, eval, replay,
};
use trafficgen::{Params, generate_to_vecs};

/// `classifier` must never depend, even indirectly, on `gateway` or
/// `adapters`: that is what keeps message content out of its reach.
#[test]
fn dependency_closure_excludes_gateway_and_adapters() {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = std::process::Command::new(cargo)
        .args(["metadata", "--format-version", "1"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let meta: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let names: HashMap<&str, &str> = meta["packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["id"].as_str().unwrap(), p["name"].as_str().unwrap()))
        .collect();
    let nodes: HashMap<&str, Vec<&str>> = meta["resolve"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| {
            let deps = n["deps"]
                .as_array()
                .unwrap()
                .iter()
                .map(|d| d["pkg"].as_str().unwrap())
                .collect();
            (n["id"].as_str().unwrap(), deps)
        })
        .collect();
    let root = names
        .iter()
        .find(|(_, n)| **n == "classifier")
        .map(|(id, _)| *id)
        .unwrap();
    // every kind of dependency (normal, build, dev) counts
    let mut seen = BTreeSet::new();
    let mut stack = vec![root];
    while let Some(id) = stack.pop() {
        if seen.insert(id) {
            stack.extend(nodes.get(id).into_iter().flatten().copied());
        }
    }
    let closure: BTreeSet<&str> = seen.iter().map(|id| names[id]).collect();
    assert!(
        closure.len() > 10,
        "suspiciously small closure: {closure:?}"
    );
    assert!(closure.contains("governor") && closure.contains("linfa"));
    assert!(
        !closure.contains("gateway"),
        "classifier depends on gateway"
    );
    assert!(
        !closure.contains("adapters"),
        "classifier depends on adapters"
    );
}

fn small_unseen() -> Params {
    // Seed and parameters never used for the bundled model (trained on
    // seed 1 of each world): the shifted preset, scaled down.
    Params {
        days: 1.0,
        ..Params::shifted(4242).scaled(0.5)
    }
}

/// A small world from one of the independent Python generators
/// (`fixtures/world_b`, `fixtures/world_c`): (trace, labels).
fn python_world(world: &str, seed: u64) -> (Vec<u8>, Vec<u8>) {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let dir = std::env::temp_dir().join(format!("cw-{world}-{seed}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (trace, labels) = (dir.join("trace.jsonl"), dir.join("labels.jsonl"));
    let out = std::process::Command::new("python3")
        .arg(root.join(format!("fixtures/world_{world}/world_{world}.py")))
        .args([
            "--seed",
            &seed.to_string(),
            "--hours",
            "12",
            "--senders",
            "3000",
        ])
        .arg("--trace")
        .arg(&trace)
        .arg("--labels")
        .arg(&labels)
        .output()
        .expect("python3 runs the traffic worlds (CI installs it)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let read = |p: &std::path::Path| std::fs::read(p).unwrap();
    let got = (read(&trace), read(&labels));
    let _ = std::fs::remove_dir_all(&dir);
    got
}

/// The bundled model with the default policy on fresh seeds of all three
/// worlds: ordinary people keep flowing (at most 1 % held, no passcode or
/// reminder sender blocked, precision at `spam` >= 0.95), and some spam is
/// blocked. Recall and the share of messages after a flag are checked
/// against regression floors, not the goals, which are not met everywhere. The full-size
/// cross-world figures (each world left out of training in turn) are
/// `bench/crossworld.py`'s, in the README.
#[test]
fn bundled_model_keeps_ordinary_people_flowing_on_fresh_worlds() {
    let model = Model::default_model().unwrap();
    let (tg_trace, tg_labels, _) = generate_to_vecs(&small_unseen()).unwrap();
    let worlds = [
        ("trafficgen", tg_trace, tg_labels),
        {
            let (t, l) = python_world("b", 41);
            ("world_b", t, l)
        },
        {
            let (t, l) = python_world("c", 41);
            ("world_c", t, l)
        },
    ];
    for (name, trace, labels) in worlds {
        let labels = read_labels(&labels[..]).unwrap();
        let r = eval::evaluate(&trace[..], &labels, &model, &Config::default()).unwrap();
        eprintln!("{name}:\n{r}");
        assert!(r.precision >= 0.95, "{name}: precision {}", r.precision);
        assert!(
            r.legit_held_share() <= 0.01,
            "{name}: {:.2} % of legitimate senders held",
            100.0 * r.legit_held_share()
        );
        // the goal is 0.5 %; a few high-volume legitimate senders held as
        // `suspect` put some worlds above it (README): a regression floor
        assert!(
            r.legit_messages_after_flag_share() <= 0.03,
            "{name}: {:.2} % of legitimate messages after a flag",
            100.0 * r.legit_messages_after_flag_share()
        );
        for c in &r.legit {
            if c.category == "otp" || c.category == "reminder" {
                assert_eq!(c.spam, 0, "{name}: {} senders blocked", c.category);
            }
        }
        // far below the 0.90 goal (README, Judged across worlds): a floor
        // that catches a regression, not a target
        assert!(r.recall >= 0.15, "{name}: recall {}", r.recall);
        // the contract output agrees with the evaluation's view
        let verdicts = replay::run(&trace[..], &model, &Config::default()).unwrap();
        let flagged = verdicts
            .iter()
            .filter(|v| v.verdict == VerdictKind::Spam)
            .count();
        let report_flagged: usize = r.legit.iter().chain(&r.spam).map(|c| c.spam).sum();
        assert_eq!(flagged, report_flagged, "{name}");
    }
}

#[test]
fn training_learns_from_traces_and_review_labels() {
    let mut sets: Vec<(Box<dyn std::io::BufRead>, Vec<classifier::LabelRecord>)> = Vec::new();
    for seed in [11, 12] {
        let (t, l, _) = generate_to_vecs(&Params {
            days: 1.5,
            ..Params::with_seed(seed).scaled(0.25)
        })
        .unwrap();
        sets.push((
            Box::new(std::io::Cursor::new(t)),
            read_labels(&l[..]).unwrap(),
        ));
    }
    // an operator marked a sender that is not in the traces: harmless
    let extra = vec![("+19995550000".to_string(), Label::Spam)];
    let options = TrainOptions {
        forest_trees: 4,
        max_samples_per_sender: 10,
        ..TrainOptions::default()
    };
    let (model, report) = train(sets, &extra, &Config::default(), &options).unwrap();
    assert_eq!(report.candidates.len(), 3);
    assert!(report.candidates.iter().any(|c| c.name == report.chosen));
    // the saved form loads back and scores identically
    let reloaded = Model::from_json(&model.to_json().unwrap()).unwrap();
    let (trace, labels, _) = generate_to_vecs(&Params {
        days: 1.5,
        ..Params::with_seed(13).scaled(0.25)
    })
    .unwrap();
    let labels = read_labels(&labels[..]).unwrap();
    let a = eval::evaluate(&trace[..], &labels, &model, &Config::default()).unwrap();
    let b = eval::evaluate(&trace[..], &labels, &reloaded, &Config::default()).unwrap();
    assert_eq!(a.sender_scores, b.sender_scores);
    assert!(
        a.f1 > 0.6,
        "a model trained on two tiny traces should still find spam: {a}"
    );
}

/// The same traces and labels give the same model, byte for byte: linfa's
/// trees broke exact class-weight ties by a randomly seeded hash map's
/// order, so until 2026-12-07 two runs of `model train` could disagree.
#[test]
fn training_twice_gives_the_same_model() {
    let (trace, labels, _) = generate_to_vecs(&Params {
        days: 1.0,
        ..Params::with_seed(21).scaled(0.5)
    })
    .unwrap();
    let labels = read_labels(&labels[..]).unwrap();
    let options = TrainOptions::default();
    let fit = || {
        let sets: Vec<(Box<dyn std::io::BufRead>, Vec<classifier::LabelRecord>)> = vec![(
            Box::new(std::io::Cursor::new(trace.clone())),
            labels.clone(),
        )];
        let (model, _) = train(sets, &[], &Config::default(), &options).unwrap();
        model.to_json().unwrap()
    };
    let first = fit();
    for _ in 0..7 {
        assert!(fit() == first, "a second training gave another model");
    }
}

#[test]
fn training_without_both_classes_is_an_error() {
    let (t, l, _) = generate_to_vecs(&Params {
        days: 1.0,
        ..Params::with_seed(3).scaled(0.1)
    })
    .unwrap();
    let ham_only: Vec<_> = read_labels(&l[..])
        .unwrap()
        .into_iter()
        .filter(|r| r.label == Label::Ham)
        .collect();
    let sets: Vec<(Box<dyn std::io::BufRead>, _)> =
        vec![(Box::new(std::io::Cursor::new(t)), ham_only)];
    let err = train(sets, &[], &Config::default(), &TrainOptions::default()).unwrap_err();
    assert!(matches!(err, classifier::Error::Training(_)), "{err}");
}

/// A broken line in one of several traces is reported under that trace's
/// name: "line 101" alone does not say which file to open.
#[test]
fn a_broken_trace_line_names_its_trace() {
    let (t, l, _) = generate_to_vecs(&Params {
        days: 0.2,
        ..Params::with_seed(23).scaled(0.1)
    })
    .unwrap();
    let labels = read_labels(&l[..]).unwrap();
    let mut broken = br#"{"at":"noon","event":"message"}"#.to_vec();
    broken.push(b'\n');
    broken.extend_from_slice(&t);
    let sets: Vec<(Box<dyn std::io::BufRead>, _)> = vec![
        (Box::new(std::io::Cursor::new(t.clone())), labels.clone()),
        (Box::new(std::io::Cursor::new(broken)), labels),
    ];
    let err = train(sets, &[], &Config::default(), &TrainOptions::default()).unwrap_err();
    assert!(
        err.to_string().starts_with("trace 2 of 2: line 1:"),
        "{err}"
    );
}

#[test]
fn engine_is_shared_across_threads() {
    let (trace, _, _) = generate_to_vecs(&Params {
        days: 0.5,
        ..Params::with_seed(21).scaled(0.1)
    })
    .unwrap();
    let events: Vec<MetadataEvent> = classifier::trace::TraceReader::new(&trace[..])
        .collect::<Result<_, _>>()
        .unwrap();
    let engine =
        Arc::new(Engine::new(Model::default_model().unwrap(), &Config::default()).unwrap());
    let events = Arc::new(events);
    let handles: Vec<_> = (0..4)
        .map(|k| {
            let (engine, events) = (Arc::clone(&engine), Arc::clone(&events));
            std::thread::spawn(move || {
                let mut decided = 0;
                for ev in events.iter().skip(k).step_by(4) {
                    if let Some(d) = engine.observe(ev, ev.at()) {
                        assert!((0.0..=1.0).contains(&d.verdict.score));
                        decided += 1;
                    }
                }
                decided
            })
        })
        .collect();
    let total: usize = handles.into_iter().map(|h| h.join().unwrap()).sum();
    assert!(total > 0);
    assert!(engine.tracked_senders() > 0);
    let _ = Timestamp::now();
}
