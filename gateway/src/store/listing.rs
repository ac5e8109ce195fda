//! `GET /v1/messages`: messages by filter, newest first, a page at a time.
//!
//! Paging is by key, not offset: a page ends at some `(created_at, id)`,
//! and the next starts strictly below it, so messages arriving meanwhile
//! neither shift a page nor appear twice, and a deep page costs what the
//! first does (the `messages_created` index is `(created_at, id)`).
//!
//! The filter is a struct so that a restriction of who may see what (an
//! owner or tenant of the API key) is one more field and one more
//! condition here, not another query.

use rusqlite::ToSql;
use serde::Serialize;

use super::Store;
use super::messages::parse_status;
use super::status::MessageStatus;
use crate::core::error::Result;

/// Which messages, from where on.
#[derive(Debug, Clone, Default)]
pub struct MessageFilter {
    /// Only this status.
    pub status: Option<MessageStatus>,
    /// Only `inbound` or `outbound`.
    pub direction: Option<&'static str>,
    /// Only to this address (as stored: E.164, short code, sender id).
    pub to: Option<String>,
    /// Only from this address.
    pub from: Option<String>,
    /// Accepted at or after (Unix ms).
    pub since: Option<i64>,
    /// Accepted before (Unix ms).
    pub until: Option<i64>,
    /// Only this tenant's messages (`None`: every message; the caller's
    /// tenant, by the rule of `core::tenants::may_see`).
    pub tenant: Option<String>,
    /// Strictly after this page end, in newest-first order.
    pub after: Option<PageEnd>,
    /// Most messages in the page.
    pub limit: usize,
}

/// Where a page ended: the last message's acceptance time and id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageEnd {
    /// Unix ms.
    pub created_at: i64,
    /// Message id.
    pub id: String,
}

/// One message in a list: metadata only (no body, no history).
#[derive(Debug, Clone, Serialize)]
pub struct MessageSummary {
    /// Id.
    pub id: String,
    /// `inbound` / `outbound`.
    pub direction: String,
    /// `sms` / `rcs`.
    pub channel: String,
    /// Adapter it came from or route it leaves by.
    pub adapter: Option<String>,
    /// Sender.
    pub from: String,
    /// Recipient.
    pub to: String,
    /// Current status.
    pub status: MessageStatus,
    /// Segments.
    pub segments: u32,
    /// Encoding.
    pub encoding: String,
    /// RFC 3339.
    pub created_at: String,
    /// RFC 3339 of the last change.
    pub updated_at: String,
    /// Last delivery error.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
}

/// A page and where the next one starts (`None`: this was the last).
pub type Page = (Vec<MessageSummary>, Option<PageEnd>);

/// The SQL conditions and their values of `f`.
fn conditions(f: &MessageFilter) -> (String, Vec<Box<dyn ToSql + Send>>) {
    let mut sql = Vec::new();
    let mut args: Vec<Box<dyn ToSql + Send>> = Vec::new();
    let mut add = |cond: &str, vals: Vec<Box<dyn ToSql + Send>>| {
        // Each `?` becomes the number of its value.
        let mut c = String::new();
        let mut vals = vals.into_iter();
        for (i, piece) in cond.split('?').enumerate() {
            if i > 0 {
                if let Some(v) = vals.next() {
                    args.push(v);
                }
                c.push_str(&format!("?{}", args.len()));
            }
            c.push_str(piece);
        }
        sql.push(c);
    };
    if let Some(s) = f.status {
        add("status = ?", vec![Box::new(s.as_str())]);
    }
    if let Some(d) = f.direction {
        add("direction = ?", vec![Box::new(d)]);
    }
    if let Some(to) = &f.to {
        add("recipient = ?", vec![Box::new(to.clone())]);
    }
    if let Some(from) = &f.from {
        add("sender = ?", vec![Box::new(from.clone())]);
    }
    if let Some(t) = &f.tenant {
        add("tenant = ?", vec![Box::new(t.clone())]);
    }
    if let Some(t) = f.since {
        add("created_at >= ?", vec![Box::new(t)]);
    }
    if let Some(t) = f.until {
        add("created_at < ?", vec![Box::new(t)]);
    }
    if let Some(end) = &f.after {
        add(
            "(created_at < ? OR (created_at = ? AND id < ?))",
            vec![
                Box::new(end.created_at),
                Box::new(end.created_at),
                Box::new(end.id.clone()),
            ],
        );
    }
    let clause = if sql.is_empty() {
        String::new()
    } else {
        format!("WHERE {}", sql.join(" AND "))
    };
    (clause, args)
}

impl Store {
    /// A page of messages matching `f`, newest first.
    pub async fn list_messages(&self, f: MessageFilter) -> Result<Page> {
        if let Some(pg) = self.pg() {
            return pg.list_messages(f).await;
        }
        use crate::core::clock::rfc3339_ms;
        self.read(move |c| {
            let (clause, args) = conditions(&f);
            let sql = format!(
                "SELECT id, direction, channel, adapter, sender, recipient, status, segments, encoding, \
                 created_at, updated_at, last_error FROM messages {clause} \
                 ORDER BY created_at DESC, id DESC LIMIT {}",
                f.limit + 1
            );
            let params: Vec<&dyn ToSql> = args.iter().map(|a| a.as_ref() as &dyn ToSql).collect();
            let rows: Vec<(String, MessageSummary, i64)> = c
                .prepare_cached(&sql)?
                .query_map(params.as_slice(), |r| {
                    let created: i64 = r.get(9)?;
                    Ok((
                        r.get::<_, String>(6)?,
                        MessageSummary {
                            id: r.get(0)?,
                            direction: r.get(1)?,
                            channel: r.get(2)?,
                            adapter: r.get(3)?,
                            from: r.get(4)?,
                            to: r.get(5)?,
                            // Parsed below, outside rusqlite's error type.
                            status: MessageStatus::Queued,
                            segments: r.get(7)?,
                            encoding: r.get(8)?,
                            created_at: rfc3339_ms(created),
                            updated_at: rfc3339_ms(r.get(10)?),
                            last_error: r.get(11)?,
                        },
                        created,
                    ))
                })?
                .collect::<rusqlite::Result<_>>()?;
            let more = rows.len() > f.limit;
            let mut page = Vec::with_capacity(rows.len().min(f.limit));
            let mut end = None;
            for (status, mut m, created) in rows.into_iter().take(f.limit) {
                m.status = parse_status(&status)?;
                end = Some(PageEnd {
                    created_at: created,
                    id: m.id.clone(),
                });
                page.push(m);
            }
            Ok((page, end.filter(|_| more)))
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_value_gets_its_own_number() {
        let f = MessageFilter {
            status: Some(MessageStatus::Sent),
            to: Some("+14155550101".into()),
            after: Some(PageEnd {
                created_at: 5,
                id: "x".into(),
            }),
            limit: 10,
            ..MessageFilter::default()
        };
        let (sql, args) = conditions(&f);
        assert_eq!(
            sql,
            "WHERE status = ?1 AND recipient = ?2 AND (created_at < ?3 OR (created_at = ?4 AND id < ?5))"
        );
        assert_eq!(args.len(), 5);
        assert_eq!(conditions(&MessageFilter::default()).0, "");
    }
}
