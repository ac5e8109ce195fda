//! Outbound: `POST /v1/messages` and SMPP `submit_sm` to a committed,
//! sealed message queued on its route.

use uuid::Uuid;

use super::channel::{self, Decision, Requested, channel_name};
use super::{Pipeline, apply_gate, header, new_row, optout, plan, queue_item, spam};
use crate::core::address::Address;
use crate::core::clock;
use crate::core::error::{Error, Result};
use crate::core::tenants::Tenant;
use crate::delivery::interwork::RCS_ROUTE;
use crate::envelope::{Channel, Content, Direction, Envelope};
use crate::store::fallback::FallbackTimer;
use crate::store::{InsertOutcome, MessageStatus, Target};

/// Longest accepted TTL: a week; longer is retention policy, not ephemerality.
pub const MAX_TTL_SECS: u64 = 7 * 24 * 3600;

/// An outbound request after JSON parsing, before checks.
#[derive(Debug)]
pub struct OutboundRequest {
    /// Recipient as given.
    pub to: Option<String>,
    /// Sender as given.
    pub from: Option<String>,
    /// Text content.
    pub text: Option<String>,
    /// RCS content (the API shape of `adapters::rcs::RcsMessage`).
    pub rcs: Option<serde_json::Value>,
    /// A pre-sealed envelope (base64) addressed to the gateway's edge key.
    pub envelope: Option<String>,
    /// Requested channel.
    pub channel: Option<String>,
    /// Seconds until the body is erased.
    pub ttl_seconds: Option<u64>,
    /// The client's `Idempotency-Key`, scoped to its API key.
    pub idempotency: Option<crate::store::Idempotency>,
    /// Where status changes are POSTed (the request's, else its API key's
    /// default).
    pub status_callback: Option<String>,
    /// The API key's tenant (`None`: the implicit tenant).
    pub tenant: Option<Tenant>,
}

/// What the API answers with 202.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Accepted {
    /// Message id.
    pub id: String,
    /// `queued` (or the existing status for a repeated envelope).
    pub status: String,
    /// `sms` or `rcs`: the channel chosen for the first attempt.
    pub channel: &'static str,
    /// Segments the text needs (1 for RCS).
    pub segments: u32,
    /// `gsm7` / `ucs2` (`utf8` for RCS).
    pub encoding: String,
    /// True when smart encoding replaced look-alike characters (curly
    /// quotes, long dashes…) so the text fits GSM 7-bit: the recipient gets
    /// a changed text, and the caller should know. Absent when false.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub smart_encoded: bool,
}

/// When a message asking for `ttl_seconds` expires (Unix ms), after the
/// API's checks.
fn expiry(ttl_seconds: Option<u64>, now: i64) -> Result<Option<i64>> {
    match ttl_seconds {
        Some(0) => Err(Error::invalid("ttl_seconds", "must be at least 1")),
        Some(t) if t > MAX_TTL_SECS => Err(Error::invalid(
            "ttl_seconds",
            "must be at most 604800 (7 days)",
        )),
        t => Ok(t.map(|t| now + (t as i64) * 1000)),
    }
}

/// Checks, seals and durably commits an outbound message; returns only after
/// the commit, so the 202 that follows is a promise kept across a crash.
pub async fn accept_outbound(p: &Pipeline, req: OutboundRequest) -> Result<Accepted> {
    let requested = Requested::parse(req.channel.as_deref())?;
    let now = clock::now_ms();
    if let Some(i) = &req.idempotency {
        match p.store.idempotent(i.clone(), now).await? {
            Some(InsertOutcome::Duplicate { id }) => return first_answer(p, id).await,
            Some(_) => return Err(Error::IdempotencyConflict),
            None => {}
        }
    }
    let tenant = req.tenant.as_ref();
    // Taken before the checks, given back unless the message is stored.
    let slot = match tenant {
        Some(t) => p.quotas.take(&p.store, t, now).await?,
        None => None,
    };
    let expires_at = expiry(req.ttl_seconds, now)?;
    let status_callback = callback(p, req.status_callback)?;
    let given = [
        req.envelope.is_some(),
        req.text.is_some(),
        req.rcs.is_some(),
    ]
    .into_iter()
    .filter(|g| *g)
    .count();
    if given > 1 {
        return Err(Error::invalid(
            "envelope",
            "give one of text, rcs or envelope, not several",
        ));
    }
    let (env, dedup, decision) = match (req.envelope, req.text, req.rcs) {
        (Some(b64), _, _) => {
            let (env, decision) = presealed(p, &b64, requested, now).await?;
            check_sender(tenant, &env.header.from)?;
            let id = env.header.id.clone();
            (env, Some(("api".to_string(), id)), decision)
        }
        (None, text, rcs) => {
            let content = match (text, rcs) {
                (Some(text), _) => {
                    no_controls(&text)?;
                    text_content(text)?
                }
                (None, Some(v)) => Content::Rcs {
                    message: adapters::rcs::RcsMessage::from_value(v)
                        .map_err(|e| Error::invalid("rcs", e.to_string()))?,
                },
                (None, None) => {
                    return Err(Error::invalid("text", "text, rcs or envelope is required"));
                }
            };
            let msg = OutboundContent {
                id: None,
                to: req.to.as_deref().unwrap_or(""),
                from: req.from.as_deref(),
                content,
            };
            let (env, decision, smart) =
                seal_outbound(p, msg, tenant, requested, now, expires_at).await?;
            (env, None, (decision, smart))
        }
    };
    let origin = Origin {
        dedup,
        idempotency: req.idempotency,
        identity: None,
        tenant: tenant.map(|t| t.name.clone()),
        status_callback,
    };
    let (accepted, stored) = commit_outbound(p, env, now, expires_at, origin, decision).await?;
    if let (Some(slot), true) = (slot, stored) {
        slot.keep();
    }
    Ok(accepted)
}

/// Refuses a tenant's message from a sender outside its `senders`.
fn check_sender(tenant: Option<&Tenant>, from: &str) -> Result<()> {
    match tenant {
        Some(t) if !t.sender_allowed(from) => Err(Error::SenderNotAllowed),
        _ => Ok(()),
    }
}

/// Who a message comes from, as its row records it.
struct Origin {
    /// `(adapter, carrier id)` de-duplication of a pre-sealed envelope.
    dedup: Option<(String, String)>,
    /// The API request's `Idempotency-Key`.
    idempotency: Option<crate::store::Idempotency>,
    /// Who the classifier judges when the message names no sender.
    identity: Option<String>,
    /// The owning tenant.
    tenant: Option<String>,
    /// Where status changes are POSTed.
    status_callback: Option<String>,
}

/// A request's callback URL, checked; refused when callbacks are off (no
/// signing secret), rather than accepted and never called.
fn callback(p: &Pipeline, url: Option<String>) -> Result<Option<String>> {
    let Some(url) = url else {
        return Ok(None);
    };
    if !p.status_callbacks {
        return Err(Error::invalid(
            "status_callback",
            "status callbacks are not configured on this gateway",
        ));
    }
    crate::delivery::callbacks::check_url(&url)?;
    Ok(Some(url))
}

/// Segments, encoding and whether smart encoding changed the text, of
/// `content` on `channel` (RCS: one "segment" of UTF-8).
fn planned(p: &Pipeline, channel: Channel, content: &Content) -> (u32, &'static str, bool) {
    match channel {
        Channel::Rcs => (1, "utf8", false),
        Channel::Sms => {
            let text = p.interwork.sms_text(content);
            let (segments, encoding) = plan::plan(&text, p.sms());
            (segments, encoding, plan::smart_encoded(&text, p.sms()))
        }
    }
}

/// An envelope the private side sealed to the edge key itself: opened to
/// check that its header tells the truth about it, and its channel decided.
async fn presealed(
    p: &Pipeline,
    b64: &str,
    requested: Requested,
    now: i64,
) -> Result<(Envelope, (Decision, bool))> {
    let bad = |e: String| Error::invalid("envelope", e);
    let env = Envelope::from_base64(b64).map_err(|e| bad(e.to_string()))?;
    if env.header.direction != Direction::Outbound {
        return Err(bad("header direction must be outbound".into()));
    }
    let key = p
        .keys
        .get(&env.header.kid)
        .map_err(|_| bad("not sealed to one of this gateway's edge keys".into()))?;
    let content = env.open(&key.private).map_err(|e| bad(e.to_string()))?;
    if matches!(content, Content::Data { .. } | Content::SmsPart { .. }) {
        // Inbound-only content types: no route sends 8-bit data.
        return Err(bad(
            "content type cannot be sent (8-bit data and parts are inbound only)".into(),
        ));
    }
    Address::phone(&env.header.to, p.region, "envelope.to")?;
    Address::sender(&env.header.from, p.region, "envelope.from")?;
    // A header sealed for RCS says 1 segment, utf8; one sealed for SMS
    // must match the SMS text (RCS content: its rendering).
    let (segments, encoding, smart) = planned(p, env.header.channel, &content);
    if env.header.segments != segments || env.header.encoding != encoding {
        return Err(bad(format!(
            "header says {} segments {}, content needs {segments} {encoding}",
            env.header.segments, env.header.encoding
        )));
    }
    if Uuid::parse_str(&env.header.id).is_err() {
        return Err(bad("header id must be a UUID".into()));
    }
    let decision = match env.header.channel {
        Channel::Rcs => {
            let h = &env.header;
            channel::decide(p, requested, &content, &h.from, &h.to, now).await?
        }
        Channel::Sms => Decision::SMS,
    };
    Ok((env, (decision, smart)))
}

/// An outbound message as `POST /v1/messages` and an SMPP `submit_sm` give
/// it, before checks.
pub struct OutboundContent<'a> {
    /// The message id to use (an SMPP server announces it before the last
    /// part of a multipart message arrives); `None` makes a new UUIDv7.
    pub id: Option<String>,
    /// Recipient as given.
    pub to: &'a str,
    /// Sender as given; `None` means the default sender.
    pub from: Option<&'a str>,
    /// The content (text, or RCS rich content).
    pub content: Content,
}

/// The text form of an outbound message (SMPP), before checks.
pub struct OutboundText<'a> {
    /// The message id to use; `None` makes a new UUIDv7.
    pub id: Option<String>,
    /// Recipient as given.
    pub to: &'a str,
    /// Sender as given; `None` means the default sender.
    pub from: Option<&'a str>,
    /// The text.
    pub text: String,
}

/// Refuses control characters in an API client's text, except tab, line
/// feed and carriage return: a NUL or an escape has no place in an SMS
/// (GSM 7-bit cannot carry most of them, and a handset or a carrier's
/// system may cut the message at a NUL), and a client that sends one has a
/// bug the gateway should not hide by passing it on. The error names where,
/// never what the text says. Text from carriers and SMPP clients is not
/// checked: it is what the network carried.
fn no_controls(text: &str) -> Result<()> {
    match text
        .chars()
        .enumerate()
        .find(|(_, c)| c.is_control() && !matches!(c, '\t' | '\n' | '\r'))
    {
        Some((at, c)) => Err(Error::invalid(
            "text",
            format!(
                "control character U+{:04X} at character {at}: only tab, line feed and carriage return are allowed",
                u32::from(c)
            ),
        )),
        None => Ok(()),
    }
}

/// Checks a text's length and wraps it as content.
fn text_content(text: String) -> Result<Content> {
    if text.is_empty() {
        return Err(Error::invalid("text", "must not be empty"));
    }
    if text.chars().count() > adapters::generic::MAX_TEXT_CHARS {
        return Err(Error::invalid("text", "longer than 10000 characters"));
    }
    Ok(Content::text(text))
}

/// Normalises the addresses, picks the channel and seals the content to the
/// edge key.
async fn seal_outbound(
    p: &Pipeline,
    msg: OutboundContent<'_>,
    tenant: Option<&Tenant>,
    requested: Requested,
    now: i64,
    expires_at: Option<i64>,
) -> Result<(Envelope, Decision, bool)> {
    let to = Address::phone(msg.to, p.region, "to")?;
    // A tenant's message without `from` goes from its first sender.
    let default_from = tenant
        .and_then(|t| t.default_from.as_deref())
        .or(p.default_from.as_deref());
    let from = match msg.from.or(default_from) {
        Some(f) => Address::sender(f, p.region, "from")?.to_string(),
        None => String::new(),
    };
    check_sender(tenant, &from)?;
    let decision = channel::decide(p, requested, &msg.content, &from, to.as_str(), now).await?;
    let (segments, encoding, smart) = planned(p, decision.channel, &msg.content);
    let edge = p.keys.current()?;
    let mut h = header(
        msg.id.unwrap_or_else(|| Uuid::now_v7().to_string()),
        now,
        Direction::Outbound,
        &from,
        to.as_str(),
        (segments, encoding),
        expires_at,
    );
    h.channel = decision.channel;
    let env = p.sealer.seal(h, &msg.content, &edge.public)?;
    Ok((env, decision, smart))
}

/// Checks, seals and durably commits an outbound text message from a
/// source other than the HTTP API (the SMPP server): the same opt-out,
/// spam gate, sealing and commit as `POST /v1/messages`, always as SMS (an
/// SMS application asked for SMS). `identity` is who the classifier judges
/// when the message names no sender; `tenant` the one its account sends as.
pub async fn accept_outbound_text(
    p: &Pipeline,
    msg: OutboundText<'_>,
    ttl_seconds: Option<u64>,
    identity: Option<&str>,
    tenant: Option<&Tenant>,
) -> Result<Accepted> {
    let now = clock::now_ms();
    let slot = match tenant {
        Some(t) => p.quotas.take(&p.store, t, now).await?,
        None => None,
    };
    let expires_at = ttl_seconds.map(|t| now + (t.min(MAX_TTL_SECS) as i64) * 1000);
    let msg = OutboundContent {
        id: msg.id,
        to: msg.to,
        from: msg.from,
        content: text_content(msg.text)?,
    };
    let (env, decision, smart) =
        seal_outbound(p, msg, tenant, Requested::Sms, now, expires_at).await?;
    let origin = Origin {
        dedup: None,
        idempotency: None,
        identity: identity.map(str::to_string),
        tenant: tenant.map(|t| t.name.clone()),
        status_callback: None,
    };
    let (accepted, stored) =
        commit_outbound(p, env, now, expires_at, origin, (decision, smart)).await?;
    if let (Some(slot), true) = (slot, stored) {
        slot.keep();
    }
    Ok(accepted)
}

/// The route a message leaves by: RBM for RCS, else the routing rules.
fn route_of(p: &Pipeline, channel: Channel, env: &Envelope) -> Result<String> {
    match channel {
        Channel::Rcs => Ok(RCS_ROUTE.to_string()),
        Channel::Sms => p
            .routes
            .choose(&env.header.from, &env.header.to)
            .map(str::to_string)
            .ok_or_else(|| Error::NoRoute("no SMS route is configured on this gateway".into())),
    }
}

/// The spam gate's decision on a message leaving by `route`; refusals and
/// rate limits are errors the caller answers with.
async fn gate(
    p: &Pipeline,
    env: &Envelope,
    route: &str,
    identity: Option<&str>,
) -> Result<spam::Gate> {
    // The sending identity the classifier judges: the message's sender, or
    // the number the route sends from when the message names none.
    let route_from = p.routes.get(route).and_then(|r| r.default_from());
    let from = if env.header.from.is_empty() {
        identity.or(route_from).unwrap_or("")
    } else {
        env.header.from.as_str()
    };
    let h = &env.header;
    let gate = p
        .spam
        .check(spam::MessageFacts {
            id: &h.id,
            from,
            to: &h.to,
            segments: h.segments,
            encoding: &h.encoding,
            bytes: h.size_class as usize,
            route,
            // everything outbound is sent for the private side (an API
            // key, an SMPP client): the route's limit governs it
            origin: spam::Origin::Own,
            direction: "outbound",
        })
        .await?;
    match gate {
        spam::Gate::Refused => Err(Error::Refused("the sender is blocked".into())),
        spam::Gate::RateLimited {
            retry_after_secs,
            limit,
        } => Err(Error::RateLimited {
            retry_after_secs,
            limit,
        }),
        g => Ok(g),
    }
}

/// The common tail of outbound acceptance: route, opt-out, spam gate,
/// durable commit, hand-off to delivery. True with the answer when a new
/// row was stored (what a quota counts).
async fn commit_outbound(
    p: &Pipeline,
    env: Envelope,
    now: i64,
    expires_at: Option<i64>,
    origin: Origin,
    (decision, smart_encoded): (Decision, bool),
) -> Result<(Accepted, bool)> {
    let expires_at = expires_at.or_else(|| {
        env.header
            .expires_at
            .as_deref()
            .and_then(|s| {
                time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).ok()
            })
            .map(|t| (t.unix_timestamp_nanos() / 1_000_000) as i64)
    });
    let route = route_of(p, decision.channel, &env)?;
    optout::check_outbound(p, &route, &env.header.from, &env.header.to).await?;
    let gate = gate(p, &env, &route, origin.identity.as_deref()).await?;
    let mut row = new_row(&env, now, expires_at, &route, MessageStatus::Queued);
    row.channel = channel_name(decision.channel);
    row.carrier_id = origin.dedup;
    row.idempotency = origin.idempotency;
    row.status_callback = origin.status_callback;
    let tenant = origin.tenant.clone();
    row.tenant = origin.tenant;
    apply_gate(&mut row, gate, Some(Target::Route(route)));
    // No content at rest: metadata only in the store, the envelope carried
    // from memory (and no RCS fallback timer: the SMS would need the body
    // later).
    row.transit = p.transit.applies(&env.header.from, &env.header.to);
    let accepted = Accepted {
        id: row.id.clone(),
        status: row.status.as_str().to_string(),
        channel: row.channel,
        segments: row.segments,
        encoding: row.encoding.clone(),
        smart_encoded,
    };
    let (reserved, transit) = if row.transit {
        (None, queue_item(&row).inspect(|_| row.queue = None))
    } else {
        (p.reserve(queue_item(&row)), None)
    };
    let timer = decision
        .fallback
        .filter(|_| transit.is_none())
        .map(|(sms_route, due_at)| FallbackTimer { sms_route, due_at });
    match p.store.insert_with_fallback(row, timer).await? {
        InsertOutcome::Inserted => {
            p.metrics.message("outbound", accepted_status(&accepted));
            if let Some(r) = reserved {
                r.hand();
            }
            if let Some(item) = transit {
                super::privacy::carry(p, item, false).await?;
            }
            Ok((accepted, true))
        }
        InsertOutcome::Duplicate { id } => {
            let first = p.store.message(id.clone()).await?;
            // A pre-sealed envelope reusing the id of another tenant's
            // message: refused without that message's status.
            if first.as_ref().is_some_and(|v| {
                !crate::core::tenants::may_see(tenant.as_deref(), v.tenant.as_deref())
            }) {
                return Err(Error::invalid(
                    "envelope",
                    "an envelope with this header id was already submitted",
                ));
            }
            let status = first
                .map(|v| v.status.as_str().to_string())
                .unwrap_or_default();
            Ok((
                Accepted {
                    id,
                    status,
                    ..accepted
                },
                false,
            ))
        }
        InsertOutcome::IdempotencyConflict => Err(Error::IdempotencyConflict),
    }
}

/// The answer a repeated idempotent request gets: the first message as it
/// stands now.
async fn first_answer(p: &Pipeline, id: String) -> Result<Accepted> {
    let v = p
        .store
        .message(id.clone())
        .await?
        .ok_or_else(|| Error::NotFound("the message of this Idempotency-Key".into()))?;
    Ok(Accepted {
        id,
        status: v.status.as_str().to_string(),
        channel: if v.channel == "rcs" { "rcs" } else { "sms" },
        segments: v.segments,
        encoding: v.encoding.clone(),
        smart_encoded: false,
    })
}

fn accepted_status(a: &Accepted) -> &'static str {
    match a.status.as_str() {
        "held" => "held",
        "blocked" => "blocked",
        _ => "queued",
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn controls_other_than_tab_and_line_breaks_are_refused() {
        assert!(no_controls("line one\nline two\r\n\tindented").is_ok());
        assert!(no_controls("emoji 😀 and ünïcödé").is_ok());
        for bad in [
            "nul\0",
            "esc\u{1b}[31m",
            "bell\u{7}",
            "del\u{7f}",
            "c1\u{85}",
        ] {
            let e = no_controls(bad).unwrap_err().to_string();
            assert!(e.starts_with("invalid text: control character U+"), "{e}");
            assert!(!e.contains(bad), "the text is never quoted");
        }
    }
}
