//! Trains a model on trafficgen alone and evaluates it on trafficgen's
//! unseen seeds, and measures the live path's cost per message.
//!
//! The bundled model is no longer made here: `python3 bench/crossworld.py
//! --bundle` trains it on three independently built worlds with lines
//! chosen on cross-world figures. This example stays for the per-message
//! cost and as the within-one-world baseline those figures are compared to.
//!
//! ```text
//! cargo run -p classifier --release --example train_default -- [--eval-only] [--out DIR]
//! ```
//! Training traces: `trafficgen` seeds 1 to 6 with default parameters.
//! Evaluation traces (never seen in training): seed 101 with default
//! parameters and seeds 202 and 303 with the *shifted* preset (slower, smaller
//! spammers, cleaner lists, fewer complaints, bigger legitimate bulk).
//! `--eval-only` skips
//! training and evaluates the embedded default model; plots go to `--out`
//! (default `target/eval`).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::BufRead;
use std::path::PathBuf;
use std::time::Instant;

use classifier::labels::read_labels;
use classifier::trace::TraceReader;
use classifier::train::{TrainOptions, train};
use classifier::{Config, Engine, MetadataEvent, Model, eval, replay};
use trafficgen::{Params, generate_to_vecs};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let out = args
        .iter()
        .position(|a| a == "--out")
        .and_then(|i| args.get(i + 1))
        .map_or(PathBuf::from("target/eval"), PathBuf::from);
    let config = Config::default();
    if args.iter().any(|a| a == "--eval-only") {
        evaluate_all(&Model::default_model().unwrap(), &config, &out);
        return;
    }

    let train_seeds = [1u64, 2, 3, 4, 5, 6];
    let mut sets: Vec<(Box<dyn BufRead>, Vec<classifier::LabelRecord>)> = Vec::new();
    for seed in train_seeds {
        let (t, l, s) = generate_to_vecs(&Params::with_seed(seed)).unwrap();
        eprintln!(
            "train seed {seed}: {} events, {} senders ({} spam)",
            s.events, s.senders, s.spam_senders
        );
        sets.push((
            Box::new(std::io::Cursor::new(t)),
            read_labels(&l[..]).unwrap(),
        ));
    }
    let options = TrainOptions {
        provenance: format!(
            "trafficgen seeds {train_seeds:?}, default parameters, 3 days each; evaluated on seeds 101 (default) and 202, 303 (shifted)"
        ),
        ..TrainOptions::default()
    };
    let t0 = Instant::now();
    let (model, report) = train(sets, &[], &config, &options).unwrap();
    eprintln!("trained in {:.1}s", t0.elapsed().as_secs_f64());
    println!("{}", serde_json::to_string_pretty(&report).unwrap());
    evaluate_all(&model, &config, &out);
}

/// Steady-state cost of the live path per message: a warm `Engine` (first
/// half of a trace already observed) observing the second half's messages,
/// reasons and tags included. CPU time, best of three passes.
fn per_message_cost(model: &Model, config: &Config) {
    let (t, _, _) = generate_to_vecs(&Params::with_seed(101)).unwrap();
    let events: Vec<MetadataEvent> = TraceReader::new(&t[..]).collect::<Result<_, _>>().unwrap();
    let messages: Vec<&MetadataEvent> = events
        .iter()
        .filter(|e| matches!(e, MetadataEvent::Message(_)))
        .collect();
    let half = messages.len() / 2;
    let mut best = f64::MAX;
    for _ in 0..3 {
        let engine = Engine::new(model.clone(), config).unwrap();
        for ev in &messages[..half] {
            engine.observe(ev, ev.at());
        }
        let c0 = thread_cpu_seconds();
        let t0 = Instant::now();
        for ev in &messages[half..] {
            std::hint::black_box(engine.observe(ev, ev.at()));
        }
        let secs = match (c0, thread_cpu_seconds()) {
            (Some(a), Some(b)) => b - a,
            _ => t0.elapsed().as_secs_f64(),
        };
        best = best.min(secs);
    }
    let n = (messages.len() - half) as f64;
    println!(
        "live path (Engine::observe, warm, with reasons): {:.2} µs per message of CPU time over {n} messages",
        best / n * 1e6
    );
}

fn evaluate_all(model: &Model, config: &Config, out: &std::path::Path) {
    per_message_cost(model, config);
    for (name, params) in [
        ("seed101-default", Params::with_seed(101)),
        ("seed202-shifted", Params::shifted(202)),
        ("seed303-shifted", Params::shifted(303)),
    ] {
        let (t, l, s) = generate_to_vecs(&params).unwrap();
        let labels = read_labels(&l[..]).unwrap();
        let r = eval::evaluate(&t[..], &labels, model, config).unwrap();
        println!(
            "== {name} ({} events, {} senders, {} spam)\n{r}",
            s.events, s.senders, s.spam_senders
        );
        r.write_svgs(&out.join(name)).unwrap();
        // replay throughput on one core, best of three; CPU time too, since
        // wall time on a shared machine includes waiting for the core
        let (mut best, mut best_cpu) = (f64::MAX, f64::MAX);
        for _ in 0..3 {
            let (t0, c0) = (Instant::now(), thread_cpu_seconds());
            let v = replay::run(&t[..], model, config).unwrap();
            std::hint::black_box(v);
            best = best.min(t0.elapsed().as_secs_f64());
            if let (Some(c0), Some(c1)) = (c0, thread_cpu_seconds()) {
                best_cpu = best_cpu.min(c1 - c0);
            }
        }
        println!(
            "replay: {:.0} events/s wall, {:.0} events/s of CPU time ({} events; {:.3}s wall, {:.3}s CPU)\n",
            s.events as f64 / best,
            s.events as f64 / best_cpu,
            s.events,
            best,
            best_cpu
        );
    }
}

/// This thread's CPU time (Linux `schedstat`), `None` elsewhere.
fn thread_cpu_seconds() -> Option<f64> {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    let ns: f64 = text.split_whitespace().next()?.parse().ok()?;
    Some(ns / 1e9)
}
