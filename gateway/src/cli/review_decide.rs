//! The review decisions of `gateway review` (mark, release, drop, allow,
//! block, unlist, undo, log) on either store's `ReviewOps`: the SQLite
//! file through the CLI's `Db`, or PostgreSQL, where each decision also
//! notifies every running node (their spam gates re-read lists and
//! decisions at once).

use super::CliError;
use super::keys_cmd::emit;
use super::review_cmd::{ReviewCommand, actor, duration, print_json, undo_hint};
use crate::app::config::Config;
use crate::store::review::ListKind;
use crate::store::review_ops::ReviewOps;

/// Runs one decision subcommand of `gateway review` on `d`.
// Long on purpose: one arm per subcommand, each a store call and a print.
pub(super) fn run(
    cfg: &Config,
    d: &mut dyn ReviewOps,
    cmd: &ReviewCommand,
) -> std::result::Result<(), CliError> {
    match cmd {
        ReviewCommand::Mark {
            sender,
            decision,
            note,
            json,
        } => {
            let n = d.mark(&actor(), sender, decision == "spam", note.as_deref())?;
            let (moved, list) = if decision == "spam" {
                ("dropped", "blocked")
            } else {
                ("released", "allowed")
            };
            emit(
                *json,
                serde_json::json!({"sender": sender, "decision": decision, moved: n, "sender_now": list}),
                &format!(
                    "{sender} marked {decision}: {n} held message(s) {moved}; sender {list}{}",
                    undo_hint(cfg, decision == "spam" && n > 0, sender)
                ),
            )?;
        }
        ReviewCommand::Release { id, note, json } | ReviewCommand::Drop { id, note, json } => {
            let release = matches!(cmd, ReviewCommand::Release { .. });
            if !d.decide(&actor(), id, release, note.as_deref())? {
                return Err(CliError::input(format!("no held message with id {id}")));
            }
            let done = if release { "released" } else { "dropped" };
            let sender = d.sender_of(id)?.unwrap_or_default();
            emit(
                *json,
                serde_json::json!({"id": id, "action": done}),
                &format!("{done} {id}{}", undo_hint(cfg, !release, &sender)),
            )?;
        }
        ReviewCommand::Allow(a) | ReviewCommand::Block(a) => {
            let kind = if matches!(cmd, ReviewCommand::Allow(_)) {
                ListKind::Allow
            } else {
                ListKind::Block
            };
            let expires = a
                .expires
                .as_deref()
                .map(duration)
                .transpose()?
                .map(|d| crate::core::clock::now_ms() + d.as_millis() as i64);
            let n = d.list_add(&actor(), kind, &a.pattern, expires, a.note.as_deref())?;
            let (human, dropped, released) = if kind == ListKind::Block {
                let h = format!(
                    "block {}: {n} held message(s) dropped (sender_blocked){}",
                    a.pattern,
                    undo_hint(cfg, n > 0, "SENDER")
                );
                (h, n, 0)
            } else {
                (
                    format!("allow {}: {n} held message(s) released", a.pattern),
                    0,
                    n,
                )
            };
            emit(
                a.json,
                serde_json::json!({
                    "list": kind.as_str(), "pattern": a.pattern,
                    "expires_at": expires.map(crate::core::clock::rfc3339_ms),
                    "dropped": dropped, "released": released,
                }),
                &human,
            )?;
        }
        ReviewCommand::Unlist {
            list,
            pattern,
            json,
        } => {
            let kind = if list == "allow" {
                ListKind::Allow
            } else {
                ListKind::Block
            };
            if !d.list_remove(&actor(), kind, pattern)? {
                return Err(CliError::input(format!(
                    "{pattern} is not on the {list} list"
                )));
            }
            emit(
                *json,
                serde_json::json!({"list": list, "pattern": pattern, "removed": true}),
                &format!("removed {pattern} from the {list} list"),
            )?;
        }
        ReviewCommand::Undo { sender, json } => match sender {
            Some(sender) => {
                let n = d.undo(&actor(), sender)?;
                if n == 0 {
                    return Err(CliError::input(format!(
                        "no drop of {sender} is still in its undo window"
                    )));
                }
                emit(
                    *json,
                    serde_json::json!({"sender": sender, "held_again": n}),
                    &format!(
                        "{sender}: {n} message(s) held again; the sender is back in the queue"
                    ),
                )?;
            }
            None => {
                let rows = d.pending(None)?;
                if *json {
                    print_json(&rows)?;
                } else {
                    println!("{:<24} {:<20} {:<26} FINAL AT", "MESSAGE", "SENDER", "BY");
                    for r in &rows {
                        println!(
                            "{:<24} {:<20} {:<26} {}",
                            r.id,
                            r.sender,
                            r.actor,
                            crate::core::clock::rfc3339_ms(r.final_at)
                        );
                    }
                }
            }
        },
        ReviewCommand::Log { limit, json } => {
            let entries = d.log(*limit)?;
            if *json {
                print_json(&entries)?;
            } else {
                println!(
                    "{:<20} {:<12} {:<10} {:<38} {:<14} NOTE",
                    "AT", "ACTOR", "ACTION", "TARGET", "MODEL"
                );
                for e in entries {
                    println!(
                        "{:<20} {:<12} {:<10} {:<38} {:<14} {}",
                        e.at.chars().take(19).collect::<String>(),
                        e.actor,
                        e.action,
                        e.target,
                        match (&e.model_verdict, e.model_score) {
                            (Some(v), Some(s)) => format!("{v} {s:.2}"),
                            _ => String::new(),
                        },
                        e.note.unwrap_or_default()
                    );
                }
            }
        }
        ReviewCommand::List { .. } | ReviewCommand::Show { .. } | ReviewCommand::Stats { .. } => {
            return Err(CliError::input(
                "not a decision subcommand of `gateway review`".to_string(),
            ));
        }
    }
    Ok(())
}
