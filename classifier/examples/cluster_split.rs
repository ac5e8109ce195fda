//! Spam defense over two gateway nodes: does a sender spread over both
//! nodes meet the same defense as on one?
//!
//! ```text
//! cargo run -p classifier --release --example cluster_split -- [--seeds 1,2] [--scale 1] [--days 1] [--json]
//! ```
//! For each seed, a `trafficgen` world is replayed once through one engine,
//! then split over two engines (each sender's messages alternating between
//! them, statuses and complaints by a hash) where each engine sees its own
//! events at once and the other's after 200 ms and 1 s (the gateway's
//! exchange interval and a slow one), and once with no sharing at all (what
//! one node alone sees: each node a separate budget). Prints precision,
//! recall, legitimate senders held, and the spam senders' messages let
//! through the rate limits. No database: the exchange is the delay.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use classifier::cluster::{Split, SplitReport, evaluate_split};
use classifier::labels::read_labels;
use classifier::{Config, Model};
use trafficgen::{Params, generate_to_vecs};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let value = |flag: &str| {
        args.iter()
            .position(|a| a == flag)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    let seeds: Vec<u64> = value("--seeds")
        .unwrap_or_else(|| "1".into())
        .split(',')
        .map(|s| s.parse().unwrap())
        .collect();
    let scale: f64 = value("--scale").map_or(1.0, |s| s.parse().unwrap());
    let days: f64 = value("--days").map_or(1.0, |s| s.parse().unwrap());
    let json = args.iter().any(|a| a == "--json");
    let model = Model::default_model().unwrap();
    let config = Config::default();
    let setups: [(&str, Split); 4] = [
        (
            "one node",
            Split {
                nodes: 1,
                delay_ms: None,
            },
        ),
        (
            "two nodes, 200 ms",
            Split {
                nodes: 2,
                delay_ms: Some(200),
            },
        ),
        (
            "two nodes, 1 s",
            Split {
                nodes: 2,
                delay_ms: Some(1000),
            },
        ),
        (
            "two nodes, no sharing",
            Split {
                nodes: 2,
                delay_ms: None,
            },
        ),
    ];
    if !json {
        println!(
            "{:<6} {:<22} {:>7} {:>7} {:>9} {:>8} {:>12} {:>12}",
            "seed", "setup", "prec", "recall", "held", "held%", "spam msgs", "spam limited"
        );
    }
    for seed in seeds {
        let params = Params {
            days,
            ..Params::with_seed(seed).scaled(scale)
        };
        let (trace, labels, _) = generate_to_vecs(&params).unwrap();
        let labels = read_labels(&labels[..]).unwrap();
        for (name, split) in setups {
            let r: SplitReport =
                evaluate_split(&trace[..], &labels, &model, &config, split).unwrap();
            if json {
                println!(
                    "{}",
                    serde_json::json!({
                        "seed": seed, "setup": name, "precision": r.precision, "recall": r.recall,
                        "legit_held": r.legit_held, "legit_senders": r.legit_senders,
                        "spam_senders": r.spam_senders, "spam_messages": r.spam_messages,
                        "spam_rate_limited": r.spam_rate_limited,
                        "legit_messages": r.legit_messages, "legit_rate_limited": r.legit_rate_limited,
                    })
                );
                continue;
            }
            println!(
                "{:<6} {:<22} {:>7.3} {:>7.3} {:>4}/{:<4} {:>8.2} {:>12} {:>12}",
                seed,
                name,
                r.precision,
                r.recall,
                r.legit_held,
                r.legit_senders,
                r.legit_held_share() * 100.0,
                r.spam_messages,
                r.spam_rate_limited
            );
        }
    }
}
