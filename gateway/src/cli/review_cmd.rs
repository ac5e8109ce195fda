//! `gateway review …`: the operators' spam-review command line. Everything it
//! shows is metadata; there is no text to show, by design. It writes to the
//! same database as the running service, which picks decisions up within
//! seconds (lists are re-read every 2 s, at once on every node of a
//! PostgreSQL cluster by notification; released messages are queued rows
//! the delivery worker polls).

use std::io::IsTerminal;
use std::time::Duration;

use clap::Subcommand;

use super::CliError;
use crate::app::config::Config;
use crate::store::review::{QueueFilter, QueueRow};
use crate::store::review_ops::ReviewOps;
use crate::store::undo;

/// `gateway review`.
#[derive(Debug, Subcommand)]
pub enum ReviewCommand {
    /// The queue of held senders: verdict, score, reasons, messages held,
    /// first and last seen, destination countries.
    List {
        /// Only `suspect` or `spam`.
        #[arg(long)]
        verdict: Option<String>,
        /// Score at least.
        #[arg(long)]
        min_score: Option<f64>,
        /// Score at most.
        #[arg(long)]
        max_score: Option<f64>,
        /// Last seen at or after (RFC 3339, or a duration back such as 2h or 3d).
        #[arg(long)]
        since: Option<String>,
        /// Only this adapter.
        #[arg(long)]
        adapter: Option<String>,
        /// Sort by `score` (default), `held` or `last_seen`.
        #[arg(long, default_value = "score")]
        sort: String,
        /// One line per 100-number block with its pattern for `review
        /// allow` / `review block` (a campaign or a passcode pool of
        /// consecutive numbers), most held first.
        #[arg(long)]
        by_block: bool,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// A sender's (or a message's sender's) metadata timeline, its features
    /// next to the training population, and the model's explanation.
    Show {
        /// Sender address or message id.
        target: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Decide about a sender: `spam` blocks it and drops its held messages
    /// (bodies erased when `[review] undo_window_secs` has passed; `review
    /// undo` until then); `ham` releases them and allow-lists it.
    Mark {
        /// The sender.
        sender: String,
        /// `spam` or `ham`.
        #[arg(value_parser = ["spam", "ham"])]
        decision: String,
        /// Why (kept in the audit log).
        #[arg(long)]
        note: Option<String>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Release one held message for delivery.
    Release {
        /// Message id.
        id: String,
        /// Why.
        #[arg(long)]
        note: Option<String>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Drop one held message (its sealed body is erased when `[review]
    /// undo_window_secs` has passed; `review undo SENDER` until then).
    Drop {
        /// Message id.
        id: String,
        /// Why.
        #[arg(long)]
        note: Option<String>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Put a number or prefix (`+1900*`) on the allow list; the matching
    /// senders' held messages are released (as `mark ham` does for one
    /// sender) and leave the queue.
    Allow(ListArgs),
    /// Put a number or prefix (`+1900*`) on the block list; the matching
    /// senders' held messages leave the queue (dropped, bodies erased,
    /// detail `sender_blocked`).
    Block(ListArgs),
    /// Take a number or prefix off a list.
    Unlist {
        /// `allow` or `block`.
        #[arg(value_parser = ["allow", "block"])]
        list: String,
        /// The number or prefix.
        pattern: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Undo a sender's drops still in their undo window (drop, mark spam,
    /// block): the messages are held again and the sender is back in the
    /// queue (a block list entry stays: `review unlist`). Without a sender,
    /// list the drops that can still be undone.
    Undo {
        /// The sender.
        sender: Option<String>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// The audit log: who decided what, when and why.
    Log {
        /// Entries (newest) to show.
        #[arg(long, default_value_t = 100)]
        limit: usize,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// How the model's verdicts compared with the operators' decisions.
    Stats {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

/// Arguments of `allow` / `block`.
#[derive(Debug, clap::Args)]
pub struct ListArgs {
    /// A number or a prefix ending in `*`.
    pub(super) pattern: String,
    /// Expire after this long (e.g. 30m, 12h, 7d).
    #[arg(long)]
    pub(super) expires: Option<String>,
    /// Why.
    #[arg(long)]
    pub(super) note: Option<String>,
    /// Print JSON.
    #[arg(long)]
    pub(super) json: bool,
}

/// Who is deciding: `GATEWAY_OPERATOR`, else `USER`.
pub fn actor() -> String {
    std::env::var("GATEWAY_OPERATOR")
        .or_else(|_| std::env::var("USER"))
        .unwrap_or_else(|_| "operator".into())
}

/// Parses `90s`, `30m`, `12h`, `7d`.
pub(super) fn duration(s: &str) -> Result<Duration, CliError> {
    let (num, unit) = s.split_at(s.len().saturating_sub(1));
    let n: u64 = num
        .parse()
        .map_err(|_| CliError::input(format!("bad duration {s:?} (use 90s, 30m, 12h, 7d)")))?;
    let secs = match unit {
        "s" => n,
        "m" => n * 60,
        "h" => n * 3600,
        "d" => n * 86_400,
        _ => {
            return Err(CliError::input(format!(
                "bad duration {s:?} (use 90s, 30m, 12h, 7d)"
            )));
        }
    };
    Ok(Duration::from_secs(secs))
}

fn since_ms(s: &str) -> Result<i64, CliError> {
    if let Ok(t) = time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339) {
        return Ok((t.unix_timestamp_nanos() / 1_000_000) as i64);
    }
    Ok(crate::core::clock::now_ms() - duration(s)?.as_millis() as i64)
}

pub(super) fn print_json(v: &impl serde::Serialize) -> Result<(), CliError> {
    let s = serde_json::to_string_pretty(v).map_err(|e| CliError {
        code: 1,
        message: e.to_string(),
    })?;
    println!("{s}");
    Ok(())
}

fn print_queue(rows: &[QueueRow]) {
    println!(
        "{:<16} {:<8} {:>5} {:>5} {:<20} {:<20} {:<10} TOP REASONS",
        "SENDER", "VERDICT", "SCORE", "HELD", "FIRST SEEN", "LAST SEEN", "COUNTRIES"
    );
    for r in rows {
        println!(
            "{:<16} {:<8} {:>5.2} {:>5} {:<20} {:<20} {:<10} {}",
            r.sender,
            r.verdict,
            r.score,
            r.held,
            r.first_seen.chars().take(19).collect::<String>(),
            r.last_seen.chars().take(19).collect::<String>(),
            r.countries.join(","),
            r.reasons
                .iter()
                .take(3)
                .cloned()
                .collect::<Vec<_>>()
                .join("; ")
        );
    }
}

/// Runs `gateway review` (interactive when no subcommand is given).
// Long on purpose: one arm per `review` subcommand, each a store call and a
// print; split, the command line's surface would be scattered over helpers.
pub fn run(cfg: &Config, cmd: Option<&ReviewCommand>) -> Result<(), CliError> {
    let mut db = crate::store::open_for_cli(&cfg.data_dir)?;
    db.set_undo_window(cfg.review.undo_window_secs);
    // Drops past their window are final even when no gateway is running.
    undo::finalize(&mut db)?;
    let Some(cmd) = cmd else {
        return interactive(cfg, &mut db);
    };
    run_on(cfg, &mut db, cmd)
}

/// Runs one `gateway review` subcommand on either store's review
/// operations (the SQLite file's `Db`, or PostgreSQL's `PgReview`).
pub(super) fn run_on(
    cfg: &Config,
    ops: &mut dyn ReviewOps,
    cmd: &ReviewCommand,
) -> Result<(), CliError> {
    match cmd {
        ReviewCommand::List {
            verdict,
            min_score,
            max_score,
            since,
            adapter,
            sort,
            by_block,
            json,
        } => {
            let filter = QueueFilter {
                verdict: verdict.clone(),
                min_score: *min_score,
                max_score: *max_score,
                since: since.as_deref().map(since_ms).transpose()?,
                adapter: adapter.clone(),
            };
            let mut rows = ops.queue(&filter)?;
            match sort.as_str() {
                "held" => rows.sort_by_key(|r| std::cmp::Reverse(r.held)),
                "last_seen" => rows.sort_by(|a, b| b.last_seen.cmp(&a.last_seen)),
                _ => rows.sort_by(|a, b| b.score.total_cmp(&a.score)),
            }
            match (*by_block, *json) {
                (true, true) => print_json(&super::review_blocks::by_block(&rows))?,
                (true, false) => {
                    super::review_blocks::print(&super::review_blocks::by_block(&rows))
                }
                (false, true) => print_json(&rows)?,
                (false, false) => print_queue(&rows),
            }
        }
        ReviewCommand::Show { target, json } => {
            let report = show_report(cfg, ops, target)?;
            if *json {
                print_json(&report)?;
            } else {
                print_show(&report);
            }
        }
        ReviewCommand::Mark { .. }
        | ReviewCommand::Release { .. }
        | ReviewCommand::Drop { .. }
        | ReviewCommand::Allow(_)
        | ReviewCommand::Block(_)
        | ReviewCommand::Unlist { .. }
        | ReviewCommand::Undo { .. }
        | ReviewCommand::Log { .. } => super::review_decide::run(cfg, ops, cmd)?,
        ReviewCommand::Stats { json } => {
            let s = ops.stats()?;
            if *json {
                print_json(&s)?;
            } else {
                println!("decisions: {}   pending: {}", s.decisions, s.pending);
                println!(
                    "model spam verdicts: {} confirmed, {} overturned",
                    s.spam_confirmed, s.spam_overturned
                );
                println!(
                    "model holds (suspect): {} confirmed spam, {} overturned (ham)",
                    s.holds_confirmed_spam, s.holds_overturned
                );
                if let Some(p) = s.spam_precision {
                    println!("operator-confirmed precision of spam verdicts: {p:.3}");
                }
                for (day, n, o) in &s.by_day {
                    println!("  {day}: {n} decisions, {o} overturned");
                }
                for r in &s.by_rule {
                    println!(
                        "  flagged by {}: {} marked spam, {} marked ham",
                        r.rule, r.spam, r.ham
                    );
                }
                let (hold, hold_senders) = s.shadow_would_hold;
                let (block, block_senders) = s.shadow_would_block;
                println!(
                    "shadow mode: would have held {hold} messages from {hold_senders} senders, \
                     blocked {block} from {block_senders} (delivered instead)"
                );
            }
        }
    }
    Ok(())
}

/// What `review show` prints.
#[derive(Debug, serde::Serialize)]
pub struct ShowReport {
    sender: String,
    flagged: Option<QueueRow>,
    messages: i64,
    held: i64,
    distinct_recipients: i64,
    delivered: i64,
    failed: i64,
    per_day: Vec<(String, i64)>,
    features: Vec<FeatureLine>,
    score: Option<f32>,
    verdict: Option<String>,
    explanation: Vec<String>,
}

/// One feature next to the training population's mean.
#[derive(Debug, serde::Serialize)]
pub struct FeatureLine {
    name: &'static str,
    words: &'static str,
    value: f32,
    training_mean: f32,
}

/// Builds the `show` report for a sender or message id.
// Long on purpose: one report, read from the store and explained by a
// replay of the sender's metadata, in the order `review show` prints it.
pub fn show_report(
    cfg: &Config,
    ops: &mut dyn ReviewOps,
    target: &str,
) -> Result<ShowReport, CliError> {
    let activity = ops.sender_activity(target)?;
    let sender = activity.sender.clone();
    if activity.messages == 0 {
        return Err(CliError::input(format!("no messages from {sender}")));
    }
    // Replay the sender's stored metadata through the model to explain it.
    let model = cfg.model.load(&cfg.data_dir)?;
    let means: Vec<f32> = model.file().features.iter().map(|c| c.mean).collect();
    let mut replay = classifier::replay::Replay::new(&model, &cfg.classifier)
        .map_err(|e| CliError::input(e.to_string()))?;
    let mut last = None;
    for m in &activity.rows {
        let ts = classifier::Timestamp::from(
            time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(m.created_at) * 1_000_000)
                .unwrap_or(time::OffsetDateTime::UNIX_EPOCH),
        );
        let ev = classifier::MetadataEvent::Message(classifier::MessageMeta {
            at: ts,
            id: m.id.clone(),
            from: sender.clone(),
            to: m.to.clone(),
            channel: classifier::Channel::Sms,
            segments: u16::try_from(m.segments).unwrap_or(u16::MAX),
            encoding: if m.encoding == "ucs2" {
                classifier::Encoding::Ucs2
            } else {
                classifier::Encoding::Gsm7
            },
            bytes: m.size_class,
            sender_type: None,
            route: None,
        });
        replay.feed(ev.view());
        last = Some(ts);
    }
    let (mut features, mut score, mut verdict, mut explanation) =
        (Vec::new(), None, None, Vec::new());
    if let Some(now) = last {
        if let Some(x) = replay.detector().sender_features(&sender, now) {
            for (i, spec) in classifier::features::FEATURES.iter().enumerate() {
                features.push(FeatureLine {
                    name: spec.name,
                    words: spec.words,
                    value: x[i],
                    training_mean: means.get(i).copied().unwrap_or(0.0),
                });
            }
            score = Some(model.score(&x));
            explanation = model
                .explain(&x, 5)
                .iter()
                .map(|r| {
                    format!(
                        "{} = {:.2} ({:+.2} toward spam)",
                        r.words, r.value, r.contribution
                    )
                })
                .collect();
        }
        verdict = replay
            .rows()
            .iter()
            .find(|r| r.sender == sender)
            .map(|r| r.verdict.as_str().to_string());
    }
    let flagged = ops
        .queue(&QueueFilter::default())?
        .into_iter()
        .find(|r| r.sender == sender);
    Ok(ShowReport {
        sender,
        flagged,
        messages: activity.messages,
        held: activity.held,
        distinct_recipients: activity.distinct_recipients,
        delivered: activity.delivered,
        failed: activity.failed,
        per_day: activity.per_day,
        features,
        score,
        verdict,
        explanation,
    })
}

fn print_show(r: &ShowReport) {
    for l in show_lines(r) {
        println!("{l}");
    }
}

/// The `show` report as text lines (also used by the interactive mode).
pub fn show_lines(r: &ShowReport) -> Vec<String> {
    let mut out = Vec::new();
    macro_rules! say { ($($t:tt)*) => { out.push(format!($($t)*)) } }
    say!("sender {}", r.sender);
    if let Some(f) = &r.flagged {
        say!(
            "  flagged {} (score {:.2}) since {}, {} held",
            f.verdict,
            f.score,
            f.first_seen,
            f.held
        );
    }
    say!(
        "  messages {}  held {}  distinct recipients {}  delivered {}  failed {}",
        r.messages,
        r.held,
        r.distinct_recipients,
        r.delivered,
        r.failed
    );
    for (day, n) in &r.per_day {
        say!("    {day}: {n}");
    }
    if let Some(s) = r.score {
        say!(
            "  model score now {s:.2} ({})",
            r.verdict.as_deref().unwrap_or("?")
        );
    }
    for e in &r.explanation {
        say!("    because {e}");
    }
    if !r.features.is_empty() {
        say!(
            "  {:<24} {:>10} {:>14}  meaning",
            "feature",
            "value",
            "training mean"
        );
        for f in &r.features {
            say!(
                "  {:<24} {:>10.3} {:>14.3}  {}",
                f.name,
                f.value,
                f.training_mean,
                f.words
            );
        }
    }
    out
}

/// The interactive walk through the queue: single keys, one item at a time.
/// Falls back to plain output when not in a terminal.
pub(super) fn interactive(cfg: &Config, db: &mut dyn ReviewOps) -> Result<(), CliError> {
    let mut rows = db.queue(&QueueFilter::default())?;
    rows.sort_by(|a, b| b.score.total_cmp(&a.score));
    if !std::io::stdin().is_terminal() || !std::io::stdout().is_terminal() {
        print_queue(&rows);
        return Ok(());
    }
    super::review_tui::run(cfg, db, rows)
}

/// What a drop's message adds: how long `review undo` can bring it back.
pub(super) fn undo_hint(cfg: &Config, dropped: bool, sender: &str) -> String {
    let secs = cfg.review.undo_window_secs;
    if !dropped || secs == 0 {
        return String::new();
    }
    format!(" (final in {secs} s; until then `gateway review undo {sender}` holds it again)")
}
