//! The interactive review: one flagged sender at a time, single keys
//! (s = spam, h = ham, n = skip, m = more, q = quit), built on ratatui.
//! `s` is destructive (held messages dropped, bodies erased, sender
//! blocked), so it asks first: `y` confirms, any other key cancels. A
//! confirmation rather than an undo window because a drop erases the sealed
//! bodies in the same transaction; there is nothing left to undo into.

use ratatui::crossterm::event::{self, Event, KeyCode, KeyEventKind};
use ratatui::layout::{Constraint, Layout};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph, Wrap};

use super::CliError;
use crate::app::config::Config;
use crate::store::review::QueueRow;
use crate::store::review_ops::ReviewOps;

fn item_lines(r: &QueueRow, more: Option<&super::review_cmd::ShowReport>) -> Vec<Line<'static>> {
    let verdict_style = if r.verdict == "spam" {
        Style::default().fg(Color::Red).add_modifier(Modifier::BOLD)
    } else {
        Style::default()
            .fg(Color::Yellow)
            .add_modifier(Modifier::BOLD)
    };
    let mut lines = vec![
        Line::from(vec![
            Span::raw("sender  "),
            Span::styled(
                r.sender.clone(),
                Style::default().add_modifier(Modifier::BOLD),
            ),
            Span::raw("   verdict "),
            Span::styled(r.verdict.clone(), verdict_style),
            Span::raw(format!("   score {:.2}", r.score)),
        ]),
        Line::from(format!(
            "held    {} message(s)   via {}",
            r.held,
            r.adapter.clone().unwrap_or_default()
        )),
        Line::from(format!("seen    {} .. {}", r.first_seen, r.last_seen)),
        Line::from(format!("to      {}", r.countries.join(", "))),
        Line::from(""),
        Line::from("why:"),
    ];
    for reason in r.reasons.iter().take(5) {
        lines.push(Line::from(format!("  - {reason}")));
    }
    if let Some(m) = more {
        lines.push(Line::from(""));
        lines.extend(super::review_cmd::show_lines(m).into_iter().map(Line::from));
    }
    lines
}

/// Runs the interactive loop over `rows`.
pub fn run(cfg: &Config, db: &mut dyn ReviewOps, rows: Vec<QueueRow>) -> Result<(), CliError> {
    let mut terminal = ratatui::try_init().map_err(|e| CliError {
        code: 1,
        message: format!("terminal: {e}"),
    })?;
    let result = walk(cfg, db, rows, &mut terminal);
    ratatui::restore();
    let summary = result?;
    println!("{summary}");
    Ok(())
}

/// The keys, as the status line lists them.
const KEYS: &str = "s spam   h ham   n skip   m more   u undo last spam   q quit";

fn walk(
    cfg: &Config,
    db: &mut dyn ReviewOps,
    rows: Vec<QueueRow>,
    terminal: &mut ratatui::DefaultTerminal,
) -> Result<String, CliError> {
    let actor = super::review_cmd::actor();
    let (mut i, mut spam, mut ham, mut skipped) = (0usize, 0, 0, 0);
    let mut more = None;
    let mut status = String::from(KEYS);
    // The last sender marked spam in this walk (its row), for `u`.
    let mut last_spam: Option<usize> = None;
    // Set by `s`, cleared by the next key: `y` confirms the drop.
    let mut confirming = false;
    while i < rows.len() {
        let row = &rows[i];
        let body = item_lines(row, more.as_ref());
        let title = format!(" review {}/{} ", i + 1, rows.len());
        let footer = status.clone();
        terminal
            .draw(|f| {
                let [main, bar] =
                    Layout::vertical([Constraint::Min(3), Constraint::Length(1)]).areas(f.area());
                f.render_widget(
                    Paragraph::new(body)
                        .wrap(Wrap { trim: false })
                        .block(Block::default().borders(Borders::ALL).title(title)),
                    main,
                );
                f.render_widget(Paragraph::new(footer), bar);
            })
            .map_err(|e| CliError {
                code: 1,
                message: format!("terminal: {e}"),
            })?;
        let ev = event::read().map_err(|e| CliError {
            code: 1,
            message: format!("terminal: {e}"),
        })?;
        let Event::Key(key) = ev else { continue };
        if key.kind != KeyEventKind::Press {
            continue;
        }
        let confirmed = std::mem::take(&mut confirming);
        if confirmed && key.code != KeyCode::Char('y') {
            status = format!("cancelled: nothing dropped for {}", row.sender);
            continue;
        }
        match key.code {
            KeyCode::Char('s') => {
                confirming = true;
                status = format!(
                    "mark {} spam: drop its {} held message(s) (erased) and block it? y = yes, any other key = no",
                    row.sender, row.held
                );
            }
            KeyCode::Char('y') | KeyCode::Char('h')
                if confirmed || key.code == KeyCode::Char('h') =>
            {
                let is_spam = key.code == KeyCode::Char('y');
                let n = db.mark(&actor, &row.sender, is_spam, Some("interactive review"))?;
                status = format!(
                    "{} marked {}: {n} message(s) {}{}",
                    row.sender,
                    if is_spam { "spam" } else { "ham" },
                    if is_spam { "dropped" } else { "released" },
                    if is_spam && n > 0 {
                        format!(" (undo: gateway review undo {})", row.sender)
                    } else {
                        String::new()
                    }
                );
                if is_spam {
                    spam += 1;
                    last_spam = Some(i);
                } else {
                    ham += 1
                }
                i += 1;
                more = None;
            }
            KeyCode::Char('n') | KeyCode::Char(' ') => {
                skipped += 1;
                i += 1;
                more = None;
                status = "skipped".into();
            }
            KeyCode::Char('m') => {
                more = match more {
                    Some(_) => None,
                    None => super::review_cmd::show_report(cfg, db, &row.sender).ok(),
                };
            }
            KeyCode::Char('u') => match last_spam.take() {
                // Within the undo window: held again, and back to that sender.
                Some(at) => {
                    let sender = &rows[at].sender;
                    let n = db.undo(&actor, sender)?;
                    status = format!("undone: {n} message(s) of {sender} held again");
                    spam -= usize::from(n > 0);
                    i = at;
                    more = None;
                }
                None => status = "nothing to undo in this walk".into(),
            },
            KeyCode::Char('q') | KeyCode::Esc => break,
            _ => status = format!("keys: {KEYS}"),
        }
    }
    let undo = if spam > 0 && cfg.review.undo_window_secs > 0 {
        format!(
            " (within {} s, `gateway review undo SENDER` holds a spam mark's messages again)",
            cfg.review.undo_window_secs
        )
    } else {
        String::new()
    };
    Ok(format!(
        "review done: {spam} spam, {ham} ham, {skipped} skipped, {} left{undo}",
        rows.len().saturating_sub(i)
    ))
}
