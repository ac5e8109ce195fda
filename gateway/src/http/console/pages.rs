//! The console's HTML, server-rendered with maud (checked at compile time,
//! escaped by default). Metadata only: no page has a place for message
//! text, and the views it renders ([`MessageView`], [`MessageSummary`],
//! the review queue's rows) carry none.

use maud::{DOCTYPE, Markup, html};

use crate::store::activity::Activity;
use crate::store::listing::MessageSummary;
use crate::store::review::{AuditEntry, QueueRow};
use crate::store::undo::PendingDrop;
use crate::store::{MessageStatus, MessageView};

/// A little CSS, inline: no asset route, no build step.
const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:0;color:#222}\
nav{background:#1d3557;padding:.6em 1em}nav a{color:#fff;margin-right:1.2em;text-decoration:none}\
nav form{display:inline;float:right}main{padding:1em 1.5em}\
table{border-collapse:collapse;margin:.5em 0 1.2em}td,th{border:1px solid #ccc;padding:.25em .6em;text-align:left;font-size:.92em}\
th{background:#f1f3f5}.bad{color:#b00020}.ok{color:#1b7f3b}.note{color:#666;font-size:.9em}\
form.inline{display:inline;margin-right:.8em}label{margin:0 .4em 0 .3em}button.act-drop,button.act-block,button.act-spam{color:#b00020}input,select,button{margin:.15em .3em .15em 0}";

/// The frame of every page after login: navigation and a logout form.
pub fn layout(title: &str, csrf: &str, body: Markup) -> Markup {
    frame(title, csrf, body, None)
}

/// [`layout`] for a page that reloads itself every `secs` (health: live
/// without a script).
pub fn layout_refreshing(title: &str, csrf: &str, body: Markup, secs: u32) -> Markup {
    frame(title, csrf, body, Some(secs))
}

fn frame(title: &str, csrf: &str, body: Markup, refresh: Option<u32>) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                @if let Some(s) = refresh { meta http-equiv="refresh" content=(s); }
                title { (title) " · gateway console" }
                style { (maud::PreEscaped(STYLE)) }
            }
            body {
                nav {
                    a href="/console/messages" { "Messages" }
                    a href="/console/dead-letters" { "Dead letters" }
                    a href="/console/review" { "Review queue" }
                    a href="/console/health" { "Health" }
                    form method="post" action="/console/logout" {
                        input type="hidden" name="csrf" value=(csrf);
                        button type="submit" id="logout" { "Log out" }
                    }
                }
                main {
                    h1 { (title) }
                    (body)
                }
            }
        }
    }
}

/// The login form, with an error after a refused key.
pub fn login(error: Option<&str>) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head { meta charset="utf-8"; title { "Log in · gateway console" } style { (maud::PreEscaped(STYLE)) } }
            body { main {
                h1 { "Gateway console" }
                @if let Some(e) = error { p.bad #login-error { (e) } }
                form method="post" action="/console/login" {
                    label for="key" { "Admin API key " }
                    input type="password" id="key" name="key" autocomplete="off" size="50";
                    button type="submit" id="login" { "Log in" }
                }
                p.note { "An admin-scope key without a tenant (" code { "gateway keys api create NAME --scope admin" } "). The key is checked once; the browser keeps only a session id." }
            } }
        }
    }
}

/// The hidden CSRF field every form carries.
pub fn csrf_field(csrf: &str) -> Markup {
    html! { input type="hidden" name="csrf" value=(csrf); }
}

/// The search form's values, echoed back.
#[derive(Debug, Default, Clone, serde::Deserialize)]
pub struct Search {
    /// A message id (goes straight to its page).
    #[serde(default)]
    pub id: String,
    /// A number, sender or recipient.
    #[serde(default)]
    pub number: String,
    /// A status.
    #[serde(default)]
    pub status: String,
    /// From (RFC 3339 or the browser's `YYYY-MM-DDTHH:MM`, UTC).
    #[serde(default)]
    pub since: String,
    /// Until (same forms).
    #[serde(default)]
    pub until: String,
}

/// The message search and its results.
pub fn messages(q: &Search, rows: &[MessageSummary], error: Option<&str>) -> Markup {
    html! {
        form method="get" action="/console/messages" #search {
            input name="id" placeholder="message id" value=(q.id) size="38";
            input name="number" id="number" placeholder="number (to or from)" value=(q.number);
            select name="status" {
                option value="" { "any status" }
                @for s in MessageStatus::ALL {
                    option value=(s.as_str()) selected[q.status == s.as_str()] { (s.as_str()) }
                }
            }
            input name="since" placeholder="since (UTC)" type="datetime-local" value=(q.since);
            input name="until" placeholder="until (UTC)" type="datetime-local" value=(q.until);
            button type="submit" id="find" { "Search" }
        }
        @if let Some(e) = error { p.bad { (e) } }
        p.note { (rows.len()) " message(s), newest first (at most 100). Times are UTC." }
        table #results {
            tr { th { "id" } th { "created" } th { "direction" } th { "channel" } th { "route" } th { "from" } th { "to" } th { "status" } th { "segments" } th { "last error" } }
            @for m in rows {
                tr {
                    td { a href={ "/console/messages/" (m.id) } { (m.id) } }
                    td { (m.created_at) } td { (m.direction) } td { (m.channel) }
                    td { (m.adapter.as_deref().unwrap_or("-")) }
                    td { (m.from) } td { (m.to) } td.status { (m.status) }
                    td { (m.segments) " (" (m.encoding) ")" }
                    td { (m.last_error.as_deref().unwrap_or("")) }
                }
            }
        }
    }
}

/// One message: its metadata and its timeline.
pub fn message(v: &MessageView, csrf: &str) -> Markup {
    // the status has its own row first (the browser test reads `#status`)
    let rows: Vec<(&str, String)> = v
        .detail_rows()
        .into_iter()
        .filter(|(k, _)| *k != "status")
        .collect();
    html! {
        table #meta {
            tr { th { "status" } td #status { (v.status) } }
            @for (k, val) in &rows { @if !val.is_empty() { tr { th { (k) } td { (val) } } } }
        }
        @if v.status.to_string() == "dead" {
            form method="post" action={ "/console/dead-letters/" (v.id) "/retry" } {
                (csrf_field(csrf))
                button type="submit" { "Retry" }
            }
        }
        h2 { "Timeline" }
        table #timeline {
            tr { th { "at" } th { "status" } th { "detail" } }
            @for e in &v.history {
                tr {
                    td { (e.at) } td { (e.status) @if e.late { " (late)" } }
                    td { (e.detail.as_deref().unwrap_or("")) }
                }
            }
        }
    }
}

/// Dead letters with a Retry button each.
pub fn dead_letters(rows: &[MessageView], csrf: &str) -> Markup {
    html! {
        p.note { (rows.len()) " dead-lettered message(s), newest first." }
        table #dead {
            tr { th { "id" } th { "updated" } th { "route" } th { "to" } th { "last error" } th {} }
            @for m in rows {
                tr {
                    td { a href={ "/console/messages/" (m.id) } { (m.id) } }
                    td { (m.updated_at) } td { (m.adapter.as_deref().unwrap_or("-")) }
                    td { (m.to) } td { (m.last_error.as_deref().unwrap_or("")) }
                    td { form.inline method="post" action={ "/console/dead-letters/" (m.id) "/retry" } {
                        (csrf_field(csrf)) button type="submit" { "Retry" }
                    } }
                }
            }
        }
    }
}

/// A path segment for a sender (numbers start with `+`, sender ids may
/// hold anything): percent-encoded.
pub fn sender_href(sender: &str) -> String {
    let mut out = String::from("/console/review/");
    for b in sender.bytes() {
        if b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.' {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The review queue.
pub fn review_queue(rows: &[QueueRow], pending: &[PendingDrop]) -> Markup {
    let mut undoable: Vec<(&str, usize)> = Vec::new();
    for d in pending {
        match undoable.iter_mut().find(|(s, _)| *s == d.sender) {
            Some((_, n)) => *n += 1,
            None => undoable.push((&d.sender, 1)),
        }
    }
    html! {
        @if !undoable.is_empty() {
            p #undoable {
                "Drops that can still be undone: "
                @for (s, n) in &undoable { a href=(sender_href(s)) { (s) } " (" (n) ") " }
            }
        }
        p.note { (rows.len()) " undecided sender(s), highest score first." }
        table #queue {
            tr { th { "sender" } th { "verdict" } th { "score" } th { "held" } th { "first seen" } th { "last seen" } th { "countries" } th { "reasons" } }
            @for r in rows {
                tr {
                    td { a href=(sender_href(&r.sender)) { (r.sender) } }
                    td { (r.verdict) } td { (format!("{:.2}", r.score)) } td { (r.held) }
                    td { (r.first_seen) } td { (r.last_seen) } td { (r.countries.join(",")) }
                    td { (r.reasons.iter().take(3).cloned().collect::<Vec<_>>().join("; ")) }
                }
            }
        }
    }
}

/// What a sender's review page shows.
pub struct SenderPage {
    /// The sender.
    pub sender: String,
    /// Its queue row, while undecided.
    pub row: Option<QueueRow>,
    /// Messages stored, held, delivered, failed, distinct recipients.
    pub counts: [(&'static str, i64); 5],
    /// Messages per day.
    pub per_day: Vec<(String, i64)>,
    /// Its held (or spam-blocked) messages: id, to, status, created.
    pub held: Vec<(String, String, String, String)>,
    /// Its drops still in their undo window.
    pub pending: Vec<PendingDrop>,
    /// Decisions about it or its messages.
    pub audit: Vec<AuditEntry>,
    /// A message after an action (done or refused).
    pub flash: Option<String>,
}

fn action_button(csrf: &str, action: &str, label: &str, id: Option<&str>, confirm: bool) -> Markup {
    html! {
        form.inline method="post" {
            (csrf_field(csrf))
            input type="hidden" name="action" value=(action);
            @if let Some(id) = id { input type="hidden" name="id" value=(id); }
            @if confirm { label { input type="checkbox" name="confirm" value="yes"; "confirm" } }
            button type="submit" name="do" value=(action) class={ "act-" (action) } { (label) }
        }
    }
}

/// A held sender: reasons, history, and every review action.
pub fn sender(p: &SenderPage, csrf: &str) -> Markup {
    html! {
        @if let Some(f) = &p.flash { p #flash { (f) } }
        @if let Some(r) = &p.row {
            table #verdict {
                tr { th { "verdict" } td { (r.verdict) } }
                tr { th { "score" } td { (format!("{:.2}", r.score)) } }
                tr { th { "route" } td { (r.adapter.as_deref().unwrap_or("-")) } }
                tr { th { "first seen" } td { (r.first_seen) } }
                tr { th { "last seen" } td { (r.last_seen) } }
                tr { th { "destination countries" } td { (r.countries.join(", ")) } }
            }
            h2 { "Reasons" }
            ul #reasons { @for w in &r.reasons { li { (w) } } }
        } @else {
            p.note { "Not in the review queue (decided, or never flagged)." }
        }
        h2 { "Decide" }
        p {
            (action_button(csrf, "release_all", "Release all held", None, false)) " "
            (action_button(csrf, "ham", "Mark ham (release and allow)", None, false)) " "
            (action_button(csrf, "allow", "Allow", None, false)) " "
            (action_button(csrf, "spam", "Mark spam (drop held, block)", None, true)) " "
            (action_button(csrf, "block", "Block", None, true))
        }
        p.note { "Drop, Mark spam and Block drop held messages: tick confirm first. Until the undo window ends they can be held again; then their bodies are erased." }
        @if !p.pending.is_empty() {
            h2 { "Dropped, can still be undone" }
            table #pending {
                tr { th { "id" } th { "dropped by" } th { "final at" } }
                @for d in &p.pending {
                    tr {
                        td { a href={ "/console/messages/" (d.id) } { (d.id) } }
                        td { (d.actor) } td { (crate::core::clock::rfc3339_ms(d.final_at)) }
                    }
                }
            }
            p { (action_button(csrf, "undo", "Undo these drops (hold them again)", None, false)) }
            p.note { "Bodies are erased when the window ends; until then nothing is lost." }
        }
        h2 { "Held messages" }
        table #held {
            tr { th { "id" } th { "to" } th { "status" } th { "created" } th {} }
            @for (id, to, status, at) in &p.held {
                tr {
                    td { a href={ "/console/messages/" (id) } { (id) } }
                    td { (to) } td { (status) } td { (at) }
                    td { (action_button(csrf, "release", "Release", Some(id), false)) " " (action_button(csrf, "drop", "Drop", Some(id), true)) }
                }
            }
        }
        h2 { "History" }
        table #activity {
            @for (k, n) in &p.counts { tr { th { (k) } td { (n) } } }
        }
        table #per-day {
            tr { th { "day" } th { "messages" } }
            @for (d, n) in &p.per_day { tr { td { (d) } td { (n) } } }
        }
        h2 { "Decisions" }
        table #audit {
            tr { th { "at" } th { "actor" } th { "action" } th { "target" } th { "model" } th { "note" } }
            @for e in &p.audit {
                tr {
                    td { (e.at) } td { (e.actor) } td { (e.action) } td { (e.target) }
                    td { @if let (Some(v), Some(s)) = (&e.model_verdict, e.model_score) { (v) " " (format!("{s:.2}")) } }
                    td { (e.note.as_deref().unwrap_or("")) }
                }
            }
        }
    }
}

/// A JSON value as table cells: objects as nested rows, the rest compact.
fn value(v: &serde_json::Value) -> Markup {
    match v {
        serde_json::Value::Object(m) if !m.is_empty() => html! {
            table { @for (k, x) in m { tr { th { (k) } td { (value(x)) } } } }
        },
        serde_json::Value::Array(a) if a.iter().all(|x| x.is_object()) && !a.is_empty() => {
            let mut cols: Vec<&String> = Vec::new();
            for x in a {
                if let Some(m) = x.as_object() {
                    for k in m.keys() {
                        if !cols.contains(&k) {
                            cols.push(k);
                        }
                    }
                }
            }
            html! {
                table {
                    tr { @for c in &cols { th { (c) } } }
                    @for x in a { tr { @for c in &cols { td { (value(&x[c.as_str()])) } } } }
                }
            }
        }
        serde_json::Value::String(s) => html! { (s) },
        serde_json::Value::Null => html! {},
        serde_json::Value::Object(_) | serde_json::Value::Array(_) => {
            html! { span.note { "none" } }
        }
        other => html! { (other.to_string()) },
    }
}

const SERIES: [(&str, &str); 4] = [
    ("delivered or sent", "#2a9d8f"),
    ("held or blocked", "#e9c46a"),
    ("failed, dead, expired, dropped", "#e76f51"),
    ("on the way", "#8d99ae"),
];

/// One bar segment: x, y, width, height, series, count.
type Segment = (i64, i64, i64, i64, usize, i64);

/// The stacked bars' rectangles in a `w` x `h` box.
fn segments(a: &Activity, w: i64, h: i64) -> Vec<Segment> {
    let n = a.buckets.len().max(1) as i64;
    let bar = w / n;
    let max = a
        .buckets
        .iter()
        .map(|b| b.iter().sum::<i64>())
        .max()
        .unwrap_or(0)
        .max(1);
    let mut out = Vec::new();
    for (i, b) in a.buckets.iter().enumerate() {
        let mut y = h;
        for (k, &count) in b.iter().enumerate().filter(|(_, c)| **c > 0) {
            let height = (count * (h - 4) / max).max(1);
            y -= height;
            out.push((i as i64 * bar + 1, y, (bar - 2).max(1), height, k, count));
        }
    }
    out
}

/// Messages accepted per bucket as stacked bars (inline SVG, no script).
pub fn activity_chart(a: &Activity) -> Markup {
    const W: i64 = 720;
    const H: i64 = 120;
    let minutes = a.bucket_ms / 60_000;
    let hours = minutes * a.buckets.len() as i64 / 60;
    let total: i64 = a.buckets.iter().flatten().sum();
    html! {
        p #activity-summary {
            (total) " message(s) accepted in the last " (hours) " h (bars of " (minutes)
            " min); delivery queue now: " span #queue-depth { (a.queued) }
        }
        svg #activity width=(W) height=(H) viewBox={ "0 0 " (W) " " (H) } role="img" {
            title { "messages accepted per " (minutes) " minutes, by current status" }
            rect x="0" y="0" width=(W) height=(H) fill="#f8f9fa" {}
            @for (x, y, w, h, k, count) in segments(a, W, H) {
                rect x=(x) y=(y) width=(w) height=(h) fill=(SERIES[k].1) {
                    title { (count) " " (SERIES[k].0) }
                }
            }
        }
        p.note {
            @for (name, colour) in SERIES {
                span style={ "color:" (colour) } { "■ " } (name) "   "
            }
        }
    }
}

/// The detailed `/healthz` data as tables.
pub fn health(degraded: bool, report: &serde_json::Value, traffic: Markup) -> Markup {
    html! {
        p #health-status class=(if degraded { "bad" } else { "ok" }) {
            @if degraded { "degraded" } @else { "ok" }
        }
        @if let Some(reasons) = report["reasons"].as_array() {
            @if !reasons.is_empty() {
                h2 { "Reasons" }
                ul #health-reasons { @for r in reasons { li { (r.as_str().unwrap_or_default()) } } }
            }
        }
        h2 { "Traffic" }
        (traffic)
        @if let Some(m) = report.as_object() {
            @for (k, v) in m {
                @if k != "status" && k != "reasons" {
                    h2 { (k) }
                    (value(v))
                }
            }
        }
        p.note { "The same data as the admin listener's " code { "/healthz" } "." }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bars_stack_from_the_bottom_and_scale_to_the_tallest() {
        let a = Activity {
            start: 0,
            bucket_ms: 600_000,
            buckets: vec![[2, 2, 0, 0], [0, 0, 0, 0], [1, 0, 0, 0]],
            queued: 0,
        };
        let s = segments(&a, 30, 104);
        // The tallest bar (4) fills the box (less a 4 px margin), stacked.
        assert_eq!(s[0], (1, 54, 8, 50, 0, 2));
        assert_eq!(s[1], (1, 4, 8, 50, 1, 2));
        assert_eq!(s[2], (21, 79, 8, 25, 0, 1));
        assert_eq!(s.len(), 3);
    }
}
