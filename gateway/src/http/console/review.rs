//! The review queue in the console: the same store operations as
//! `gateway review` (`store::review_ops::ReviewOps`), run in a blocking
//! task: on SQLite on a connection of their own, as the CLI runs them
//! beside the service; on PostgreSQL on the service's pool (each decision
//! notifies every node). The audit log names the actor `console:<key name>`.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Form, Path, State};
use axum::response::{IntoResponse, Response};
use maud::Markup;

use super::auth::{Operator, see_other};
use super::pages::{self, SenderPage};
use super::{Console, failed};
use crate::core::error::Result;
use crate::store::review::{ListKind, QueueFilter};
use crate::store::review_ops::ReviewOps;

/// Runs `f` on the store's review operations, off the async threads.
async fn with_db<T: Send + 'static>(
    c: &Console,
    f: impl FnOnce(&mut dyn ReviewOps) -> Result<T> + Send + 'static,
) -> std::result::Result<T, Response> {
    let dir = c.api.data_dir.clone();
    let window = c.api.undo_window_secs;
    let pg = c
        .api
        .pipeline
        .store
        .pg_review(tokio::runtime::Handle::current(), window);
    tokio::task::spawn_blocking(move || match pg {
        Some(mut ops) => f(&mut ops),
        None => {
            let mut db = crate::store::open_for_cli(&dir)?;
            db.set_undo_window(window);
            f(&mut db)
        }
    })
    .await
    .map_err(|e| failed("review", e))?
    .map_err(|e| failed("review", e))
}

/// The queue, highest score first (the CLI's default order).
pub async fn queue(
    State(c): State<Arc<Console>>,
    op: Operator,
) -> std::result::Result<Markup, Response> {
    let (mut rows, pending) = with_db(&c, |db| {
        Ok((db.queue(&QueueFilter::default())?, db.pending(None)?))
    })
    .await?;
    rows.sort_by(|a, b| b.score.total_cmp(&a.score));
    Ok(pages::layout(
        "Review queue",
        &op.0.csrf,
        pages::review_queue(&rows, &pending),
    ))
}

/// Everything the sender's page shows, read in one go.
fn sender_page(db: &mut dyn ReviewOps, sender: &str) -> Result<SenderPage> {
    let row = db
        .queue(&QueueFilter::default())?
        .into_iter()
        .find(|r| r.sender == sender);
    let a = db.sender_activity(sender)?;
    let held = db.held_of(sender)?;
    let pending = db.pending(Some(sender))?;
    let mut targets: Vec<&str> = vec![sender];
    targets.extend(a.rows.iter().map(|m| m.id.as_str()));
    let audit = db
        .log(10_000)?
        .into_iter()
        .filter(|e| targets.contains(&e.target.as_str()))
        .collect();
    Ok(SenderPage {
        sender: sender.to_string(),
        row,
        counts: [
            ("messages", a.messages),
            ("held now", a.held),
            ("delivered", a.delivered),
            ("failed or dead", a.failed),
            ("distinct recipients", a.distinct_recipients),
        ],
        per_day: a.per_day,
        held,
        pending,
        audit,
        flash: None,
    })
}

async fn render(c: &Console, op: &Operator, sender: String, flash: Option<String>) -> Response {
    let s = sender.clone();
    match with_db(c, move |db| sender_page(db, &s)).await {
        Ok(mut p) => {
            p.flash = flash;
            let title = format!("Sender {}", p.sender);
            pages::layout(&title, &op.0.csrf, pages::sender(&p, &op.0.csrf)).into_response()
        }
        Err(r) => r,
    }
}

/// A sender's reasons, history, held messages and the decision forms,
/// with what the last action did (once).
pub async fn sender(
    State(c): State<Arc<Console>>,
    op: Operator,
    Path(sender): Path<String>,
) -> Response {
    let flash = c.sessions.take_flash(&op.1);
    render(&c, &op, sender, flash).await
}

/// What an action did (`Ok`), or why it did nothing (`Err`, shown to
/// the operator); the store's failures are the outer error.
type Outcome = std::result::Result<String, String>;

/// Applies one review action about `sender` (or its held message `id`)
/// with the store operation `gateway review` uses for it.
fn apply(
    db: &mut dyn ReviewOps,
    secs: u64,
    actor: &str,
    action: &str,
    sender: &str,
    id: &str,
) -> Result<Outcome> {
    let note = Some("web console");
    let undoable = |n: usize| {
        if n == 0 || secs == 0 {
            String::new()
        } else {
            format!("; Undo (under \"Dropped, can still be undone\") holds it again for {secs} s")
        }
    };
    Ok(match action {
        "release" | "drop" => {
            let release = action == "release";
            if db.decide(actor, id, release, note)? {
                Ok(if release {
                    format!("released {id}")
                } else {
                    format!("dropped {id}{}", undoable(1))
                })
            } else {
                Err(format!("no held message with id {id}"))
            }
        }
        "release_all" => {
            let mut n = 0;
            for (mid, ..) in db.held_of(sender)? {
                n += usize::from(db.decide(actor, &mid, true, note)?);
            }
            Ok(format!("released {n} held message(s)"))
        }
        "spam" => {
            let n = db.mark(actor, sender, true, note)?;
            Ok(format!(
                "marked spam: {n} held message(s) dropped; sender blocked{}",
                undoable(n)
            ))
        }
        "ham" => {
            let n = db.mark(actor, sender, false, note)?;
            Ok(format!(
                "marked ham: {n} held message(s) released; sender allowed"
            ))
        }
        "allow" => {
            let n = db.list_add(actor, ListKind::Allow, sender, None, note)?;
            Ok(format!("allow-listed; {n} held message(s) released"))
        }
        "block" => {
            let n = db.list_add(actor, ListKind::Block, sender, None, note)?;
            Ok(format!(
                "block-listed; {n} held message(s) dropped{}",
                undoable(n)
            ))
        }
        "undo" => match db.undo(actor, sender)? {
            0 => Err("nothing to undo: no drop of this sender is still in its window".into()),
            n => Ok(format!(
                "undone: {n} message(s) held again; the sender is back in the queue"
            )),
        },
        other => Err(format!("unknown action {other:?}")),
    })
}

/// One decision, as `gateway review` makes it, answered with a redirect
/// to the sender's page (303) that shows what it did: a reload repeats
/// the page, not the decision. Destructive ones (drop, block, mark spam)
/// need the form's confirm box ticked, and can be undone for
/// `[review] undo_window_secs`.
pub async fn decide(
    State(c): State<Arc<Console>>,
    op: Operator,
    Path(sender): Path<String>,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    if let Err(r) = op.check_csrf(&form) {
        return r;
    }
    let action = form.get("action").cloned().unwrap_or_default();
    let id = form.get("id").cloned().unwrap_or_default();
    let confirmed = form.get("confirm").is_some_and(|v| v == "yes");
    let back = see_other(&pages::sender_href(&sender), None);
    if matches!(action.as_str(), "drop" | "block" | "spam") && !confirmed {
        let flash = format!("{action}: tick confirm first (it drops held messages, bodies erased)");
        c.sessions.set_flash(&op.1, flash);
        return back;
    }
    let actor = op.actor();
    let who = sender.clone();
    let secs = c.api.undo_window_secs;
    let done = with_db(&c, move |db| apply(db, secs, &actor, &action, &who, &id)).await;
    match done {
        Ok(Ok(flash)) => {
            // Released messages are queue rows: wake the worker now.
            c.api.pipeline.handoff.wake();
            tracing::info!(actor = %op.actor(), "console: review decision");
            c.sessions.set_flash(&op.1, flash);
            back
        }
        Ok(Err(why)) => {
            c.sessions.set_flash(&op.1, why);
            back
        }
        Err(r) => r,
    }
}
