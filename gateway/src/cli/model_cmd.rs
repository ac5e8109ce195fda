//! `gateway replay` and `gateway model train|eval`: the metadata pipeline
//! offline, on recorded traces (format in DESIGN.md).

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::PathBuf;

use clap::Subcommand;

use super::CliError;
use crate::app::config::Config;
use crate::store::TraceRow;

/// Options of `gateway replay`.
#[derive(Debug, clap::Args)]
pub struct ReplayArgs {
    /// The metadata trace (JSON lines, time-ordered); `-` reads standard input.
    trace: PathBuf,
    /// Where to write one verdict line per sender (standard output when absent).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Model file instead of the configured or bundled one.
    #[arg(long)]
    model: Option<PathBuf>,
}

/// Options of `gateway export-trace`.
#[derive(Debug, clap::Args)]
pub struct ExportArgs {
    /// Where to write the trace (standard output when absent).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Only traffic at or after this time (RFC 3339).
    #[arg(long)]
    since: Option<String>,
    /// Write counterparties' numbers as stored instead of as keyed
    /// pseudonyms (an administrator's choice: the trace then says who
    /// talked to whom). The gateway's own numbers are always written as
    /// they are; numbers the store already pseudonymised stay pseudonyms.
    #[arg(long)]
    clear_numbers: bool,
}

/// `gateway model`.
#[derive(Debug, Subcommand)]
pub enum ModelCommand {
    /// Train a model from traces and their labels (and operators' review decisions).
    ///
    /// Examples: `gateway model train --trace t.jsonl --labels l.jsonl --out new.json`;
    /// `gateway model train --from-store --trace t.jsonl --labels l.jsonl` (adds this
    /// deployment's own traffic, labelled by its operators' decisions).
    Train {
        /// A trace; give one `--labels` per `--trace`, in the same order
        /// (one of all of them may be `-`, standard input).
        #[arg(long, required_unless_present = "from_store")]
        trace: Vec<PathBuf>,
        /// Labels for the trace at the same position (JSON lines: sender, label, category).
        #[arg(long, required_unless_present = "from_store")]
        labels: Vec<PathBuf>,
        /// Also train on this deployment's own traffic (`export-trace`),
        /// labelled by the operators' review decisions.
        #[arg(long)]
        from_store: bool,
        /// Where to write the model file.
        #[arg(long, default_value = "model.json")]
        out: PathBuf,
        /// Seed of the held-out split.
        #[arg(long)]
        seed: Option<u64>,
        /// Print the training report as JSON (default: a table, like `eval`).
        #[arg(long)]
        json: bool,
    },
    /// Evaluate a model on a labeled trace it never saw: precision, recall,
    /// F1, false positives per legitimate category, recall per spam category,
    /// detection delay; writes a precision/recall curve and a score histogram.
    ///
    /// With `--from-store`, the trace is this deployment's own recent traffic
    /// and the labels its operators' decisions, and the report compares
    /// `--model` (the candidate) with the running model, before `promote`.
    ///
    /// With `--world` (two worlds or more), across worlds: each world's own
    /// model, trained on its first directory with the lines of the model
    /// under test, is judged on every directory of every other world (both
    /// directions), then the model under test on every directory, with what
    /// it was trained on. A figure measured on the world a model was fitted
    /// to describes that world, not the defense.
    Eval {
        /// The trace (`-`: standard input).
        #[arg(long, required_unless_present_any = ["from_store", "worlds"])]
        trace: Option<PathBuf>,
        /// Its labels (`-`: standard input, when the trace is a file).
        #[arg(long, required_unless_present_any = ["from_store", "worlds"])]
        labels: Option<PathBuf>,
        /// Judge on this deployment's own traffic and decisions instead.
        #[arg(long, conflicts_with_all = ["trace", "labels"])]
        from_store: bool,
        /// A labelled world for the cross-world evaluation: a directory
        /// holding `trace.jsonl` and `labels.jsonl`, as `DIR` (its world is
        /// the directory's name without trailing digits: `b1`, `b2` are seeds
        /// of `b`) or `NAME=DIR`. Repeat it: two worlds at least.
        #[arg(long = "world", value_name = "[NAME=]DIR", conflicts_with_all = ["trace", "labels", "from_store"])]
        worlds: Vec<String>,
        /// Model file instead of the configured or bundled one.
        #[arg(long)]
        model: Option<PathBuf>,
        /// Directory for `pr_curve.svg` and `score_histogram.svg`.
        #[arg(long, default_value = ".")]
        svg_dir: PathBuf,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Install a model file as the one this deployment runs (checked, then
    /// copied into the data directory; the previous one is kept beside it as
    /// `previous.json`). `gateway serve` loads it at its next start, unless
    /// `[model] path` names another file.
    ///
    /// Example: `gateway model eval --model new.json --trace t.jsonl --labels l.jsonl`
    /// then `gateway model promote new.json`.
    Promote {
        /// The model file (from `gateway model train`); `-` reads standard input.
        file: PathBuf,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

fn model(cfg: &Config, over: &Option<PathBuf>) -> Result<classifier::Model, CliError> {
    match over {
        Some(p) => classifier::Model::load(p)
            .map_err(|e| CliError::input(format!("model {}: {e}", p.display()))),
        None => Ok(cfg.model.load(&cfg.data_dir)?),
    }
}

fn open(path: &std::path::Path) -> Result<Box<dyn std::io::BufRead>, CliError> {
    super::input::open(path)
}

/// Opens each (trace, labels) pair, each trace named by its path so that
/// an error in it says which one; at most one of all the files may be `-`
/// (standard input can be read once).
fn open_sets(
    sets: &[(PathBuf, PathBuf)],
) -> Result<Vec<classifier::train::NamedSet<'static>>, CliError> {
    let stdin_uses = sets
        .iter()
        .flat_map(|(t, l)| [t, l])
        .filter(|p| super::input::is_stdin(p))
        .count();
    if stdin_uses > 1 {
        return Err(CliError::input(
            "only one of the --trace and --labels files can be standard input (-)",
        ));
    }
    let mut out = Vec::new();
    for (trace, labels) in sets {
        let labels = classifier::labels::read_labels(open(labels)?)
            .map_err(|e| CliError::input(format!("{}: {e}", super::input::name(labels))))?;
        out.push((super::input::name(trace), open(trace)?, labels));
    }
    Ok(out)
}

/// The training report as a table: one line per candidate, the winner marked.
fn train_summary(r: &classifier::train::TrainReport) -> String {
    let mut out = format!(
        "trained on {} snapshots; senders spam/ham: train {}/{}, held out {}/{}\n\
         {:<10} {:>7} {:>7} {:>7} {:>9} {:>8} {:>8}\n",
        r.samples,
        r.train_senders.0,
        r.train_senders.1,
        r.holdout_senders.0,
        r.holdout_senders.1,
        "MODEL",
        "PREC",
        "RECALL",
        "F1",
        "LOG LOSS",
        "SPAM AT",
        "SUSPECT",
    );
    for c in &r.candidates {
        out.push_str(&format!(
            "{:<10} {:>7.3} {:>7.3} {:>7.3} {:>9.4} {:>8.3} {:>8.3}{}\n",
            c.name,
            c.precision,
            c.recall,
            c.f1,
            c.log_loss,
            c.spam_threshold,
            c.suspect_threshold,
            if c.name == r.chosen {
                "  <- chosen"
            } else {
                ""
            }
        ));
    }
    out
}

/// A reader that draws a progress bar on stderr (only when stderr is a
/// terminal) as a long trace is consumed.
struct Progress<R> {
    inner: R,
    label: String,
    total: u64,
    done: u64,
    last: std::time::Instant,
    enabled: bool,
}

impl<R> Progress<R> {
    fn new(inner: R, label: String, total: u64) -> Self {
        use std::io::IsTerminal;
        Self {
            inner,
            label,
            total: total.max(1),
            done: 0,
            last: std::time::Instant::now(),
            enabled: std::io::stderr().is_terminal(),
        }
    }

    fn draw(&mut self, force: bool) {
        if !self.enabled || (!force && self.last.elapsed() < std::time::Duration::from_millis(200))
        {
            return;
        }
        self.last = std::time::Instant::now();
        let frac = (self.done as f64 / self.total as f64).min(1.0);
        let filled = (frac * 30.0) as usize;
        eprint!(
            "\r{} [{}{}] {:>3.0}% of {:.1} MB",
            self.label,
            "#".repeat(filled),
            " ".repeat(30 - filled),
            frac * 100.0,
            self.total as f64 / 1e6
        );
        if force {
            eprintln!();
        }
    }
}

impl<R: std::io::BufRead> std::io::Read for Progress<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.done += n as u64;
        self.draw(n == 0);
        Ok(n)
    }
}

impl<R: std::io::BufRead> std::io::BufRead for Progress<R> {
    fn fill_buf(&mut self) -> std::io::Result<&[u8]> {
        self.inner.fill_buf()
    }
    fn consume(&mut self, amt: usize) {
        self.inner.consume(amt);
        self.done += amt as u64;
        let end = self.done >= self.total;
        self.draw(end);
    }
}

/// Opens a trace with a progress bar; standard input (`-`) has no size to
/// measure progress against, so it is read plain.
fn open_progress(
    path: &PathBuf,
    label: &str,
) -> Result<Progress<Box<dyn std::io::BufRead>>, CliError> {
    let mut progress = Progress::new(
        open(path)?,
        format!("{label} {}", super::input::name(path)),
        std::fs::metadata(path).map(|m| m.len()).unwrap_or(0),
    );
    if super::input::is_stdin(path) {
        progress.enabled = false;
    }
    Ok(progress)
}

fn failed(e: impl std::fmt::Display) -> CliError {
    CliError::input(e.to_string())
}

/// Runs `gateway replay`.
pub fn replay(cfg: &Config, args: &ReplayArgs) -> Result<(), CliError> {
    let model = model(cfg, &args.model)?;
    let verdicts = classifier::replay::run(
        open_progress(&args.trace, "replay")?,
        &model,
        &cfg.classifier,
    )
    .map_err(|e| CliError::input(format!("{}: {e}", super::input::name(&args.trace))))?;
    match &args.out {
        Some(path) => {
            let f = File::create(path)
                .map_err(|e| CliError::input(format!("{}: {e}", path.display())))?;
            classifier::replay::write_verdicts(BufWriter::new(f), &verdicts).map_err(failed)?;
        }
        None => {
            let stdout = std::io::stdout();
            classifier::replay::write_verdicts(stdout.lock(), &verdicts).map_err(failed)?;
        }
    }
    Ok(())
}

/// Runs `gateway model …`.
pub fn run(cfg: &Config, cmd: &ModelCommand) -> Result<(), CliError> {
    match cmd {
        ModelCommand::Train {
            trace,
            labels,
            from_store,
            out,
            seed,
            json,
        } => {
            if trace.len() != labels.len() {
                return Err(CliError::input("give one --labels for each --trace"));
            }
            let mut sets: Vec<(PathBuf, PathBuf)> =
                trace.iter().cloned().zip(labels.iter().cloned()).collect();
            let own = if *from_store {
                Some(StoreSet::export(cfg)?)
            } else {
                None
            };
            if let Some(own) = &own {
                sets.push((own.trace.clone(), own.labels.clone()));
            }
            let mut options = classifier::train::TrainOptions::default();
            if let Some(s) = seed {
                options.seed = *s;
            }
            let extra = match cfg.store.backend {
                // As before on SQLite: a data dir without a database has no decisions.
                crate::store::config::BackendKind::Sqlite => {
                    super::trace_source::decisions(cfg).unwrap_or_default()
                }
                crate::store::config::BackendKind::Postgres => super::trace_source::decisions(cfg)?,
            };
            if !extra.is_empty() {
                eprintln!("using {} operator decisions as labels", extra.len());
            }
            eprintln!("training on {} trace(s)…", sets.len());
            let (model, report) = classifier::train::train_named(
                open_sets(&sets)?,
                &extra,
                &cfg.classifier,
                &options,
            )
            .map_err(failed)?;
            let file = model.to_json().map_err(failed)?;
            std::fs::write(out, file)
                .map_err(|e| CliError::input(format!("{}: {e}", out.display())))?;
            if *json {
                let summary = serde_json::to_string_pretty(&report).map_err(failed)?;
                println!("{summary}");
            } else {
                print!("{}", train_summary(&report));
            }
            eprintln!("model written to {}", out.display());
        }
        ModelCommand::Promote { file, json } => promote(cfg, file, *json)?,
        ModelCommand::Eval {
            trace,
            labels,
            from_store,
            worlds,
            model: m,
            svg_dir,
            json,
        } => {
            if *from_store {
                return compare_on_store(cfg, m.as_ref(), *json);
            }
            if !worlds.is_empty() {
                return super::crossworld_cmd::run(&cfg.classifier, &model(cfg, m)?, worlds, *json);
            }
            let (Some(trace), Some(labels)) = (trace, labels) else {
                return Err(CliError::input(
                    "give --trace and --labels, or --from-store",
                ));
            };
            if super::input::is_stdin(trace) && super::input::is_stdin(labels) {
                return Err(CliError::input(
                    "only one of --trace and --labels can be standard input (-)",
                ));
            }
            let model = model(cfg, m)?;
            let labels = classifier::labels::read_labels(open(labels)?).map_err(failed)?;
            let report = classifier::eval::evaluate(open(trace)?, &labels, &model, &cfg.classifier)
                .map_err(failed)?;
            std::fs::create_dir_all(svg_dir)
                .map_err(|e| CliError::input(format!("{}: {e}", svg_dir.display())))?;
            let (pr, hist) = report.write_svgs(svg_dir).map_err(failed)?;
            if *json {
                let s = serde_json::to_string_pretty(&report).map_err(failed)?;
                println!("{s}");
            } else {
                let mut out = std::io::stdout().lock();
                let _ = writeln!(out, "{report}");
            }
            eprintln!("wrote {} and {}", pr.display(), hist.display());
        }
    }
    Ok(())
}

/// This deployment's own traffic as a labelled set: the trace
/// `export-trace` writes and the operators' latest decision per sender as
/// labels, in a scratch directory under the data directory (removed on drop).
struct StoreSet {
    dir: PathBuf,
    trace: PathBuf,
    labels: PathBuf,
}

impl StoreSet {
    fn export(cfg: &Config) -> Result<Self, CliError> {
        let dir = cfg
            .data_dir
            .join(format!("model-scratch-{}", std::process::id()));
        std::fs::create_dir_all(&dir).map_err(failed)?;
        let set = StoreSet {
            trace: dir.join("trace.jsonl"),
            labels: dir.join("labels.jsonl"),
            dir,
        };
        export_trace(
            cfg,
            &ExportArgs {
                out: Some(set.trace.clone()),
                since: None,
                // Labels name senders as the store keeps them; a scratch
                // file inside the data dir, removed after training.
                clear_numbers: true,
            },
        )?;
        let decisions = super::trace_source::decisions(cfg)?;
        let spam = decisions
            .iter()
            .filter(|d| d.1 == classifier::Label::Spam)
            .count();
        if spam == 0 || spam == decisions.len() {
            return Err(CliError::input(format!(
                "the review decisions hold {spam} spam and {} ham senders; judging or \
                 training on this deployment needs both (mark some with `gateway review mark`)",
                decisions.len() - spam
            )));
        }
        let records: Vec<classifier::LabelRecord> = decisions
            .into_iter()
            .map(|(sender, label)| classifier::LabelRecord {
                sender,
                label,
                category: "review".into(),
                spam_from: None,
            })
            .collect();
        let f = File::create(&set.labels).map_err(failed)?;
        classifier::labels::write_labels(BufWriter::new(f), &records).map_err(failed)?;
        eprintln!(
            "this deployment's traffic, labelled by {} review decisions",
            records.len()
        );
        Ok(set)
    }
}

impl Drop for StoreSet {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// `model eval --from-store [--model NEW]`: the running model and the
/// candidate side by side on this deployment's traffic and decisions.
fn compare_on_store(cfg: &Config, candidate: Option<&PathBuf>, json: bool) -> Result<(), CliError> {
    let set = StoreSet::export(cfg)?;
    let labels = classifier::labels::read_labels(open(&set.labels)?).map_err(failed)?;
    let mut reports = vec![("running", model(cfg, &None)?)];
    if let Some(p) = candidate {
        reports.push(("candidate", model(cfg, &Some(p.clone()))?));
    }
    let mut out = serde_json::Map::new();
    for (name, m) in reports {
        let r = classifier::eval::evaluate(open(&set.trace)?, &labels, &m, &cfg.classifier)
            .map_err(failed)?;
        if json {
            out.insert(name.into(), serde_json::to_value(&r).map_err(failed)?);
        } else {
            println!("== {name} model\n{r}");
        }
    }
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::Value::Object(out)).map_err(failed)?
        );
    }
    Ok(())
}

/// `gateway model promote FILE`: validate, keep the previous, install.
fn promote(cfg: &Config, file: &std::path::Path, json: bool) -> Result<(), CliError> {
    let name = super::input::name(file);
    let model = classifier::Model::from_json(&super::input::read_to_string(file)?)
        .map_err(|e| CliError::input(format!("model {name}: {e}")))?;
    classifier::Engine::new(model.clone(), &cfg.classifier)
        .map_err(|e| CliError::input(format!("model {name}: {e}")))?;
    let target = cfg.data_dir.join(crate::app::config::PROMOTED_MODEL);
    let dir = target
        .parent()
        .ok_or_else(|| CliError::input("the data directory has no parent"))?;
    std::fs::create_dir_all(dir).map_err(failed)?;
    if target.exists() {
        std::fs::copy(&target, dir.join("previous.json")).map_err(failed)?;
    }
    // Written whole: a serve starting meanwhile reads the old or the new file, never half.
    crate::core::fs::write_private_file(&target, model.to_json().map_err(failed)?.as_bytes())
        .map_err(failed)?;
    let t = model.thresholds();
    super::keys_cmd::emit(
        json,
        serde_json::json!({
            "from": name, "to": target.display().to_string(),
            "suspect": t.suspect, "spam": t.spam,
        }),
        &format!(
            "promoted {} -> {} (suspect {:.3}, spam {:.3}); `gateway serve` loads it at its next start",
            name,
            target.display(),
            t.suspect,
            t.spam
        ),
    )?;
    if cfg.model.path.is_some() {
        eprintln!(
            "note: [model] path is set in the config and takes precedence over the promoted model"
        );
    }
    if cfg.store.backend == crate::store::config::BackendKind::Postgres {
        // The model lives in each node's data dir, like the keys.
        eprintln!("note: this node only; promote the same file on every node of the cluster");
    }
    Ok(())
}

/// Runs `gateway export-trace`: the gateway's own traffic as a metadata
/// trace (messages and their final delivery statuses, time-ordered), for
/// backtesting with `replay` and training with `model train`.
// Long on purpose: it maps each stored trace row to the classifier's
// event type field by field; split, the mapping would lose its one view.
pub fn export_trace(cfg: &Config, args: &ExportArgs) -> Result<(), CliError> {
    let since = match &args.since {
        Some(s) => {
            let t = time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
                .map_err(|_| CliError::input(format!("--since {s:?} is not an RFC 3339 time")))?;
            (t.unix_timestamp_nanos() / 1_000_000) as i64
        }
        None => 0,
    };
    // The same key as the service's, so a trace's pseudonyms match the
    // ones the store made of older rows.
    let pseudonyms = crate::core::pseudonym::Pseudonyms::open_or_create(&cfg.data_dir)?;
    // The counterparty only, as the store does: the gateway's own numbers
    // stay, so a replay's verdicts still name the senders it runs.
    let number = |n: String, counterparty: bool| {
        if args.clear_numbers || !counterparty {
            n
        } else {
            pseudonyms.address(&n)
        }
    };
    let out: Box<dyn Write> = match &args.out {
        Some(p) => Box::new(BufWriter::new(
            File::create(p).map_err(|e| CliError::input(format!("{}: {e}", p.display())))?,
        )),
        None => Box::new(BufWriter::new(std::io::stdout())),
    };
    let mut writer = classifier::trace::TraceWriter::new(out);
    let ts = |ms: i64| {
        classifier::Timestamp::from(
            time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
                .unwrap_or(time::OffsetDateTime::UNIX_EPOCH),
        )
    };
    let mut n = 0u64;
    let mut write_failed = None;
    super::trace_source::each_trace_row(cfg, since, |row| {
        let event = match row {
            TraceRow::Message {
                at,
                id,
                from,
                to,
                channel,
                segments,
                encoding,
                size_class,
                inbound,
            } => classifier::MetadataEvent::Message(classifier::MessageMeta {
                at: ts(at),
                id,
                from: number(from, inbound),
                to: number(to, !inbound),
                channel: if channel == "rcs" {
                    classifier::Channel::Rcs
                } else {
                    classifier::Channel::Sms
                },
                segments: u16::try_from(segments).unwrap_or(u16::MAX),
                encoding: match encoding.as_str() {
                    "ucs2" => classifier::Encoding::Ucs2,
                    "8bit" => classifier::Encoding::Binary8,
                    _ => classifier::Encoding::Gsm7,
                },
                bytes: size_class,
                sender_type: None,
                route: None,
            }),
            TraceRow::Status { at, id, delivered } => {
                classifier::MetadataEvent::Status(classifier::StatusMeta {
                    at: ts(at),
                    id,
                    status: if delivered {
                        classifier::DeliveryStatus::Delivered
                    } else {
                        classifier::DeliveryStatus::Failed
                    },
                })
            }
        };
        if write_failed.is_none() {
            if let Err(e) = writer.write(&event) {
                write_failed = Some(e);
            }
            n += 1;
        }
        Ok(())
    })?;
    if let Some(e) = write_failed {
        return Err(failed(e));
    }
    writer.finish().map_err(failed)?;
    eprintln!("exported {n} events");
    Ok(())
}

#[cfg(test)]
mod stdin_tests {
    use super::*;

    #[test]
    fn standard_input_is_read_once_at_most() {
        let sets = vec![
            (PathBuf::from("-"), PathBuf::from("l1.jsonl")),
            (PathBuf::from("t2.jsonl"), PathBuf::from("-")),
        ];
        let err = open_sets(&sets)
            .err()
            .map(|e| e.message)
            .unwrap_or_default();
        assert!(err.contains("only one"), "{err}");
        let table = train_summary(&classifier::train::TrainReport {
            candidates: vec![],
            chosen: "forest".into(),
            train_senders: (3, 4),
            holdout_senders: (1, 2),
            samples: 10,
        });
        assert!(table.starts_with("trained on 10 snapshots"), "{table}");
    }
}
