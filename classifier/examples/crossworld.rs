//! Cross-world evaluation: train on some traffic worlds, judge on others.
//!
//! ```text
//! cargo run -p classifier --release --example crossworld -- eval [--model FILE] [-v] DIR...
//! cargo run -p classifier --release --example crossworld -- train --out FILE DIR...
//! ```
//! Each DIR holds `trace.jsonl` and `labels.jsonl` (as written by
//! `trafficgen`, `fixtures/world_b` or `fixtures/world_c`). `eval` prints one
//! line per world with the figures the spam-defense goals are stated in:
//! sender precision and recall at `spam`, the share of legitimate senders
//! held (`suspect` or `spam` at any time), the share of legitimate messages
//! sent after their sender was flagged, and how many one-time-passcode and
//! reminder senders were judged `spam`. `bench/crossworld.py` drives it over
//! several seeds in both directions.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};

use classifier::crossworld::Figures;
use classifier::labels::read_labels;
use classifier::train::{TrainOptions, train_files};
use classifier::{Config, Model, eval};

fn files(dir: &Path) -> (PathBuf, PathBuf) {
    (dir.join("trace.jsonl"), dir.join("labels.jsonl"))
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let verbose = args.iter().any(|a| a == "-v");
    let value = |flag: &str| {
        args.iter()
            .position(|a| a == flag)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    let config: Config = match value("--config") {
        Some(p) => serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap(),
        None => Config::default(),
    };
    let mut dirs = Vec::new();
    let mut skip = false;
    for a in args.iter().skip(1) {
        if skip {
            skip = false;
            continue;
        }
        if [
            "--model",
            "--out",
            "--config",
            "--suspect-line",
            "--spam-line",
            "--provenance",
            "--dump",
        ]
        .contains(&a.as_str())
        {
            skip = true;
            continue;
        }
        if a.starts_with('-') {
            continue;
        }
        dirs.push(PathBuf::from(a));
    }
    match args.first().map(String::as_str) {
        Some("train") => {
            let out = value("--out").expect("--out FILE");
            let sets: Vec<(PathBuf, PathBuf)> = dirs.iter().map(|d| files(d)).collect();
            let names: Vec<String> = dirs
                .iter()
                .map(|d| {
                    d.file_name()
                        .map_or(String::new(), |n| n.to_string_lossy().into_owned())
                })
                .collect();
            let mut options = TrainOptions {
                provenance: value("--provenance")
                    .unwrap_or_else(|| format!("crossworld train on {}", names.join(" + "))),
                ..TrainOptions::default()
            };
            if args.iter().any(|a| a == "--keep-all") {
                options.exclude.clear();
            }
            let (mut model, report) = train_files(&sets, &[], &config, &options).unwrap();
            // lines chosen on cross-world figures replace the ones tuned on
            // the training worlds' own held-out senders
            if let (Some(suspect), Some(spam)) = (value("--suspect-line"), value("--spam-line")) {
                let mut file = model.file().clone();
                file.thresholds = classifier::model::ModelThresholds {
                    suspect: suspect.parse().unwrap(),
                    spam: spam.parse().unwrap(),
                };
                model = Model::from_file(file).unwrap();
            }
            std::fs::write(&out, model.to_json().unwrap() + "\n").unwrap();
            eprintln!(
                "chosen {} thresholds {:?}",
                report.chosen,
                model.thresholds()
            );
        }
        Some("eval") => {
            let model = match value("--model") {
                Some(p) => Model::load(Path::new(&p)).unwrap(),
                None => Model::default_model().unwrap(),
            };
            println!(
                "{:<28} {:>6} {:>6} {:>8} {:>9} {:>5} {:>5} {:>7}  ham p50/p90/p99/p99.9  spam p10/p50",
                "world", "prec", "recall", "held%", "afterflg%", "otp", "remind", "auc"
            );
            for d in &dirs {
                let (t, l) = files(d);
                let labels = read_labels(BufReader::new(File::open(&l).unwrap())).unwrap();
                let r = eval::evaluate(
                    BufReader::new(File::open(&t).unwrap()),
                    &labels,
                    &model,
                    &config,
                )
                .unwrap();
                let fig = Figures::of(&r, "", &d.display().to_string());
                let (ham_q, spam_q) = quantiles(&r.sender_scores);
                if args.iter().any(|a| a == "--json") {
                    // the figures as the library names them, plus the spam categories
                    let mut line = serde_json::to_value(&fig).unwrap();
                    line["world"] = serde_json::json!(fig.judged_on);
                    line["spam"] = serde_json::json!(r.spam);
                    println!("{line}");
                    continue;
                }
                println!(
                    "{:<28} {:>6.3} {:>6.3} {:>8.2} {:>9.3} {:>5} {:>5} {:>7.4}  {:.2}/{:.2}/{:.2}/{:.2}  {:.2}/{:.2}",
                    fig.judged_on,
                    fig.precision,
                    fig.recall,
                    fig.legit_held_share * 100.0,
                    fig.legit_messages_after_flag_share * 100.0,
                    fig.otp_spam,
                    fig.reminder_spam,
                    fig.auc,
                    ham_q[0],
                    ham_q[1],
                    ham_q[2],
                    ham_q[3],
                    spam_q[0],
                    spam_q[1]
                );
                if verbose {
                    println!("{r}");
                }
            }
        }
        Some("why") => why(&dirs, &config, value("--model"), value("--dump")),
        _ => eprintln!("usage: crossworld eval|train|why ..."),
    }
}

/// For each world: the missed spammers and the held legitimate senders,
/// counted by category, peak score bucket and evidence at the end.
/// Prints a sender's features as of `at` on one indented line.
fn print_features(engine: &classifier::Engine, sender: &str, at: classifier::Timestamp) {
    if let Some(f) = engine.sender_features(sender, at) {
        let shown: Vec<String> = classifier::features::FEATURES
            .iter()
            .zip(f.iter())
            .map(|(n, x)| format!("{}={x:.2}", n.name))
            .collect();
        println!("    {}", shown.join(" "));
    }
}

fn why(dirs: &[PathBuf], config: &Config, model: Option<String>, dump: Option<String>) {
    use std::io::Write;
    let mut dump = dump.map(|p| std::io::BufWriter::new(File::create(p).unwrap()));
    if let Some(out) = dump.as_mut() {
        let names: Vec<&str> = classifier::features::FEATURES
            .iter()
            .map(|f| f.name)
            .collect();
        writeln!(
            out,
            "world,sender,spam,category,verdict,peak,final_score,final_tags,{}",
            names.join(",")
        )
        .unwrap();
    }
    use classifier::trace::TraceReader;
    use std::collections::BTreeMap;
    let model = match model {
        Some(p) => Model::load(Path::new(&p)).unwrap(),
        None => Model::default_model().unwrap(),
    };
    for d in dirs {
        let (t, l) = files(d);
        let labels = read_labels(BufReader::new(File::open(&l).unwrap())).unwrap();
        let by: std::collections::HashMap<&str, &classifier::LabelRecord> =
            labels.iter().map(|r| (r.sender.as_str(), r)).collect();
        let engine = classifier::Engine::new(model.clone(), config).unwrap();
        let mut last = None;
        let mut ids: std::collections::HashMap<String, String> = Default::default();
        let mut worst: std::collections::HashMap<String, (classifier::VerdictKind, f32)> =
            Default::default();
        for ev in TraceReader::new(BufReader::new(File::open(&t).unwrap())) {
            let ev = ev.unwrap();
            let at = ev.at();
            last = Some(at);
            // Whose event it is: statuses and complaints judge the sender
            // too, and a block that starts there is named by its trigger.
            let (from, trigger): (Option<String>, &str) = match &ev {
                classifier::MetadataEvent::Message(m) => {
                    ids.insert(m.id.clone(), m.from.clone());
                    (Some(m.from.clone()), "msg")
                }
                classifier::MetadataEvent::Status(s) => (ids.get(&s.id).cloned(), "status"),
                classifier::MetadataEvent::Report(r) => (Some(r.sender.clone()), "report"),
            };
            if let Some(dec) = engine.observe(&ev, at) {
                if let Some(from) = from {
                    if dec.verdict.verdict == classifier::VerdictKind::Spam
                        && worst
                            .get(&from)
                            .is_none_or(|w| w.0 != classifier::VerdictKind::Spam)
                        && by.get(from.as_str()).is_some_and(|l| {
                            l.label == classifier::Label::Ham
                                || std::env::var_os("WHY_TRUE").is_some()
                        })
                    {
                        let tags: Vec<&str> = dec.verdict.tags.iter().map(|t| t.as_str()).collect();
                        let kind = if by[from.as_str()].label == classifier::Label::Ham {
                            "false"
                        } else {
                            "true"
                        };
                        println!(
                            "{kind} block: {} {} at {trigger} {:?} score {:.2} tags {:?}",
                            by[from.as_str()].category,
                            from,
                            at,
                            dec.verdict.score,
                            tags
                        );
                        print_features(&engine, &from, at);
                    }
                    if dec.verdict.verdict != classifier::VerdictKind::Ok
                        && worst
                            .get(&from)
                            .is_none_or(|w| w.0 == classifier::VerdictKind::Ok)
                        && by
                            .get(from.as_str())
                            .is_some_and(|l| l.label == classifier::Label::Ham)
                    {
                        println!(
                            "first flag: {} {} {:?} at_ms {}",
                            by[from.as_str()].category,
                            from,
                            dec.verdict.verdict,
                            at.unix_millis()
                        );
                        print_features(&engine, &from, at);
                    }
                    let w = worst
                        .entry(from.clone())
                        .or_insert((classifier::VerdictKind::Ok, 0.0));
                    w.0 = w.0.max(dec.verdict.verdict);
                    w.1 = w.1.max(dec.verdict.score);
                }
            }
        }
        let now = last.unwrap();
        // The replay's worst verdicts (statuses and quiet rechecks count
        // there too) are what the evaluation counts; use them.
        let replayed =
            classifier::replay::run(BufReader::new(File::open(&t).unwrap()), &model, config)
                .unwrap();
        for r in &replayed {
            if let Some(w) = worst.get_mut(&r.sender) {
                w.0 = w.0.max(r.verdict);
            }
        }
        let mut rows: BTreeMap<String, usize> = BTreeMap::new();
        if let Some(out) = dump.as_mut() {
            for (sender, (verdict, peak)) in &worst {
                let (Some(lab), Some(f)) =
                    (by.get(sender.as_str()), engine.sender_features(sender, now))
                else {
                    continue;
                };
                let fs: Vec<String> = f.iter().map(|x| format!("{x:.4}")).collect();
                let fin = engine.sender_verdict(sender, now);
                let (fscore, ftags) = fin.map_or((0.0, String::new()), |v| {
                    let tags: Vec<&str> = v.tags.iter().map(|t| t.as_str()).collect();
                    (v.score, tags.join("|"))
                });
                writeln!(
                    out,
                    "{},{},{},{},{:?},{:.3},{:.3},{},{}",
                    d.display(),
                    sender,
                    lab.label == classifier::Label::Spam,
                    lab.category,
                    verdict,
                    peak,
                    fscore,
                    ftags,
                    fs.join(",")
                )
                .unwrap();
            }
        }
        for (sender, (verdict, peak)) in &worst {
            let Some(lab) = by.get(sender.as_str()) else {
                continue;
            };
            let spam = lab.label == classifier::Label::Spam;
            if !spam && *verdict == classifier::VerdictKind::Ok && *peak < 0.7 {
                continue;
            }
            if !spam && *verdict != classifier::VerdictKind::Ok {
                let v = engine.sender_verdict(sender, now).unwrap();
                println!(
                    "held ham: {} {} {:?} score {:.2} tags {:?}",
                    lab.category,
                    sender,
                    verdict,
                    v.score,
                    v.tags.iter().map(|t| t.as_str()).collect::<Vec<_>>()
                );
            }
            let v = engine.sender_verdict(sender, now).unwrap();
            use classifier::RuleTag as T;
            let strong = v.tags.iter().any(|t| {
                matches!(
                    t,
                    T::RecipientComplaints
                        | T::HighFailureRate
                        | T::SequentialRecipients
                        | T::PremiumDestinations
                        | T::OneWayBroadcast
                )
            });
            let class = if strong {
                "strong"
            } else if v
                .tags
                .iter()
                .any(|t| !matches!(t, T::AllowListed | T::BlockListed))
            {
                "weak"
            } else {
                "none"
            };
            let tagnames: Vec<&str> = if spam {
                vec![]
            } else {
                v.tags.iter().map(|t| t.as_str()).collect()
            };
            let key = format!(
                "{} {:<18} {:<8} {:<6} peak>={:.1} {}",
                if !spam && *verdict == classifier::VerdictKind::Ok {
                    "PASSED"
                } else if !spam {
                    "HELD  "
                } else if *verdict == classifier::VerdictKind::Spam {
                    "CAUGHT"
                } else {
                    "MISSED"
                },
                lab.category,
                format!("{verdict:?}"),
                class,
                (peak * 10.0).floor() / 10.0,
                tagnames.join(","),
            );
            *rows.entry(key).or_default() += 1;
        }
        println!("== {}", d.display());
        for (k, n) in rows {
            println!("{n:>5}  {k}");
        }
    }
}

/// Sender-level AUC of the peak scores, ham quantiles (50, 90, 99, 99.9)
/// and spam quantiles (10, 50).
/// Peak-score quantiles of legitimate senders (p50, p90, p99, p99.9) and
/// of spammers (p10, p50).
fn quantiles(scores: &[(bool, f32)]) -> ([f32; 4], [f32; 2]) {
    let mut ham: Vec<f32> = scores.iter().filter(|s| !s.0).map(|s| s.1).collect();
    let mut spam: Vec<f32> = scores.iter().filter(|s| s.0).map(|s| s.1).collect();
    ham.sort_by(f32::total_cmp);
    spam.sort_by(f32::total_cmp);
    let q = |v: &[f32], p: f64| {
        v.get(((v.len().max(1) - 1) as f64 * p).round() as usize)
            .copied()
            .unwrap_or(0.0)
    };
    (
        [q(&ham, 0.5), q(&ham, 0.9), q(&ham, 0.99), q(&ham, 0.999)],
        [q(&spam, 0.1), q(&spam, 0.5)],
    )
}
