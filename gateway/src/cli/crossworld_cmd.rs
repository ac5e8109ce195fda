//! `gateway model eval --world DIR --world DIR …`: the model under test's
//! lines judged across worlds, as the spam defense's figures are.
//!
//! A figure measured on the world a model was fitted to describes that
//! world. Here each world's own model (trained on its first directory,
//! with the lines of the model under test) is judged on every directory of
//! every other world, in both directions; then the model under test on
//! every directory, with what it was trained on printed beside it, so a
//! row where it judges its own training world can be read as such.

use std::io::Write;
use std::path::PathBuf;

use classifier::crossworld::{Figures, WorldSeed, cross_world, held_by_category, judge};

use super::CliError;

/// A `--world` value: `NAME=DIR` or `DIR`, whose world is then the
/// directory's name without trailing digits (`b1` and `b2` are seeds of `b`).
fn parse_world(arg: &str) -> Result<WorldSeed, CliError> {
    let (name, dir) = match arg.split_once('=') {
        Some((name, dir)) if !name.is_empty() => (Some(name.to_string()), PathBuf::from(dir)),
        _ => (None, PathBuf::from(arg)),
    };
    let label = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| dir.display().to_string());
    let world = name.unwrap_or_else(|| {
        label
            .trim_end_matches(|c: char| c.is_ascii_digit())
            .to_string()
    });
    let (trace, labels) = (dir.join("trace.jsonl"), dir.join("labels.jsonl"));
    for f in [&trace, &labels] {
        if !f.is_file() {
            return Err(CliError::input(format!(
                "--world {arg}: {} is missing (a world's directory holds trace.jsonl and labels.jsonl)",
                f.display()
            )));
        }
    }
    Ok(WorldSeed {
        world: if world.is_empty() {
            label.clone()
        } else {
            world
        },
        label,
        trace,
        labels,
    })
}

/// Runs the cross-world evaluation and prints it (a table, or JSON).
pub fn run(
    policy: &classifier::Config,
    under_test: &classifier::Model,
    worlds: &[String],
    json: bool,
) -> Result<(), CliError> {
    let seeds = worlds
        .iter()
        .map(|w| parse_world(w))
        .collect::<Result<Vec<_>, _>>()?;
    let lines = under_test.thresholds();
    let options = classifier::train::TrainOptions::default();
    let mut rows = cross_world(&seeds, lines, policy, &options, |step| eprintln!("{step}…"))
        .map_err(|e| CliError::input(e.to_string()))?;
    let mut own = Vec::new();
    for seed in &seeds {
        eprintln!("judging the model under test on {}…", seed.label);
        let report = judge(under_test, seed, policy).map_err(|e| CliError::input(e.to_string()))?;
        own.push(Figures::of(&report, "model under test", &seed.label));
    }
    let trained_on = under_test.file().trained_on.clone();
    if json {
        let out = serde_json::json!({
            "lines": {"suspect": rounded(lines.suspect), "spam": rounded(lines.spam)},
            "cross_world": rows,
            "model_under_test": {"trained_on": trained_on, "rows": own},
        });
        println!("{out}");
        return Ok(());
    }
    let world_of = |label: &str| {
        seeds
            .iter()
            .find(|s| s.label == label)
            .map_or_else(|| label.to_string(), |s| s.world.clone())
    };
    let by_category = held_by_category(&rows, world_of);
    rows.extend(own);
    let mut out = std::io::stdout().lock();
    let _ = writeln!(
        out,
        "lines of the model under test: suspect {:.2}, spam {:.2}; each world's model is trained on its first directory",
        lines.suspect, lines.spam
    );
    let _ = writeln!(
        out,
        "{:<18} {:<16} {:>9} {:>7} {:>10} {:>10} {:>9} {:>7}",
        "trained on", "judged on", "precision", "recall", "held", "after flag", "otp/rem", "AUC"
    );
    for r in &rows {
        let _ = writeln!(
            out,
            "{:<18} {:<16} {:>9.3} {:>7.3} {:>9.2}% {:>9.2}% {:>9} {:>7.4}",
            r.trained_on,
            r.judged_on,
            r.precision,
            r.recall,
            100.0 * r.legit_held_share,
            100.0 * r.legit_messages_after_flag_share,
            format!("{} / {}", r.otp_spam, r.reminder_spam),
            r.auc
        );
    }
    let _ = writeln!(
        out,
        "legitimate senders held or blocked by the other worlds' models, by category (held / senders):"
    );
    let mut none_held = 0;
    for (world, category, held, senders) in &by_category {
        if *held == 0 {
            none_held += 1;
            continue;
        }
        let _ = writeln!(out, "  {world:<16} {category:<30} {held} / {senders}");
    }
    let _ = writeln!(out, "  ({none_held} more categories: none held)");
    let _ = writeln!(
        out,
        "model under test: trained on {}",
        display_or_unknown(&trained_on)
    );
    let _ = writeln!(
        out,
        "goals (issue 14): precision >= 0.98, recall >= 0.90, held <= 1 %, after flag <= 0.5 %, otp/rem 0 / 0"
    );
    Ok(())
}

/// A line as configured (`0.7`, not its `f32` widened: `0.699999988`).
fn rounded(line: f32) -> f64 {
    (f64::from(line) * 1e4).round() / 1e4
}

fn display_or_unknown(s: &str) -> &str {
    if s.is_empty() { "(not recorded)" } else { s }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// `<tmp>/<unique>/<name>` holding the two (empty) files.
    fn world_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir()
            .join(format!("cw-cli-{}", uuid::Uuid::new_v4()))
            .join(name);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("trace.jsonl"), "").unwrap();
        std::fs::write(dir.join("labels.jsonl"), "").unwrap();
        dir
    }

    #[test]
    fn a_world_is_named_by_its_directory_without_the_seed_or_as_given() {
        let dir = world_dir("world_b12");
        let seed = parse_world(&dir.display().to_string()).unwrap();
        assert_eq!(
            (seed.world.as_str(), seed.label.as_str()),
            ("world_b", "world_b12")
        );
        let named = parse_world(&format!("south={}", dir.display())).unwrap();
        assert_eq!(
            (named.world.as_str(), named.label.as_str()),
            ("south", "world_b12")
        );
        let digits = world_dir("7");
        assert_eq!(
            parse_world(&digits.display().to_string()).unwrap().world,
            "7"
        );
        for d in [dir, digits] {
            let _ = std::fs::remove_dir_all(d.parent().unwrap());
        }
    }

    #[test]
    fn a_directory_without_its_two_files_is_refused_by_name() {
        let root = std::env::temp_dir();
        let err = parse_world(&root.join("no-such-world-here").display().to_string()).unwrap_err();
        assert_eq!(err.code, 2);
        assert!(err.message.contains("trace.jsonl"), "{}", err.message);
    }
}
