//! Shows why senders were misjudged on a generated trace: for each false
//! positive the reasons at its first `spam` verdict, for each missed spammer
//! the reasons at its highest score.
//!
//! ```text
//! cargo run -p classifier --release --example diagnose -- [SEED] [default|shifted]
//! ```

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;

use classifier::labels::read_labels;
use classifier::trace::TraceReader;
use classifier::{Config, Engine, Label, Model, VerdictKind};
use trafficgen::{Params, generate_to_vecs};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let seed: u64 = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(101);
    let params = if args.get(2).map(String::as_str) == Some("shifted") {
        Params::shifted(seed)
    } else {
        Params::with_seed(seed)
    };
    let (t, l, _) = generate_to_vecs(&params).unwrap();
    let labels = read_labels(&l[..]).unwrap();
    let by: HashMap<&str, (&Label, &str)> = labels
        .iter()
        .map(|r| (r.sender.as_str(), (&r.label, r.category.as_str())))
        .collect();
    let engine = Engine::new(Model::default_model().unwrap(), &Config::default()).unwrap();
    let mut first_spam: HashMap<String, String> = HashMap::new();
    let mut best: HashMap<String, (f32, String, u32)> = HashMap::new();
    let mut count: HashMap<String, u32> = HashMap::new();
    for ev in TraceReader::new(&t[..]) {
        let ev = ev.unwrap();
        let sender = match &ev {
            classifier::MetadataEvent::Message(m) => m.from.clone(),
            classifier::MetadataEvent::Report(r) => r.sender.clone(),
            classifier::MetadataEvent::Status(_) => String::new(),
        };
        let Some(d) = engine.observe(&ev, ev.at()) else {
            continue;
        };
        if sender.is_empty() {
            continue;
        }
        let n = count.entry(sender.clone()).or_default();
        if matches!(ev, classifier::MetadataEvent::Message(_)) {
            *n += 1;
        }
        let n = *n;
        let reasons = d
            .verdict
            .reasons
            .iter()
            .map(|r| format!("{}={:.2}({:+.2})", r.tag, r.value, r.contribution))
            .collect::<Vec<_>>()
            .join(" ");
        if d.verdict.verdict == VerdictKind::Spam && !first_spam.contains_key(&sender) {
            first_spam.insert(
                sender.clone(),
                format!("msg {n} score {:.3}: {reasons}", d.verdict.score),
            );
        }
        let b = best.entry(sender).or_insert((0.0, String::new(), 0));
        if d.verdict.score > b.0 {
            *b = (d.verdict.score, reasons, n);
        }
    }
    println!("false positives:");
    for (s, why) in &first_spam {
        if let Some((Label::Ham, cat)) = by.get(s.as_str()) {
            println!("  {s} [{cat}] {why}");
        }
    }
    println!("missed spam (best score):");
    for (s, (score, why, n)) in &best {
        if let Some((Label::Spam, cat)) = by.get(s.as_str()) {
            if !first_spam.contains_key(s) {
                println!(
                    "  {s} [{cat}] msgs {} best {score:.3} at msg {n}: {why}",
                    count.get(s).unwrap_or(&0)
                );
            }
        }
    }
}
