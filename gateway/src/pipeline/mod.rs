//! The flow of one message through the gateway, independent of the adapter
//! or HTTP shape it arrived in: normalise addresses, seal the content into an
//! envelope, commit durably, queue for delivery.
//!
//! Plaintext exists only inside these functions and the delivery senders;
//! what leaves here for the store is the header and the sealed body.

pub mod parts;
pub mod status;

use uuid::Uuid;

use crate::core::address::Address;
use crate::core::clock;
use crate::core::error::{Error, Result};
use crate::envelope::keys::PublicKey;
use crate::envelope::{Channel, Content, Direction, Envelope, Header};
use crate::state::AppState;
use crate::store::fallback::FallbackTimer;
use crate::store::{InsertOutcome, MessageStatus, NewMessage, QueueItem, Target};

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

fn header(
    id: String,
    now: i64,
    direction: Direction,
    from: &str,
    to: &str,
    (segments, encoding): (u32, &str),
    expires_at: Option<i64>,
) -> Header {
    Header {
        v: crate::envelope::VERSION,
        id,
        created_at: clock::rfc3339_ms(now),
        channel: Channel::Sms,
        direction,
        from: from.to_string(),
        to: to.to_string(),
        segments,
        encoding: encoding.to_string(),
        size_class: 0,
        expires_at: expires_at.map(clock::rfc3339_ms),
        kid: String::new(),
        carrier_ids: Default::default(),
        seal: Default::default(),
    }
}

fn new_row(
    env: &Envelope,
    now: i64,
    expires_at: Option<i64>,
    adapter: &str,
    status: MessageStatus,
) -> NewMessage {
    let h = &env.header;
    NewMessage {
        id: h.id.clone(),
        direction: h.direction.as_str(),
        channel: crate::rcs::channel_name(h.channel),
        adapter: Some(adapter.to_string()),
        sender: h.from.clone(),
        recipient: h.to.clone(),
        segments: h.segments,
        encoding: h.encoding.clone(),
        size_class: h.size_class,
        status,
        created_at: now,
        expires_at,
        kid: h.kid.clone(),
        header: env.header_bytes().to_vec(),
        sealed: env.sealed_bytes(),
        carrier_id: None,
        queue: None,
        deliver_to: None,
        verdict: None,
        flag_reasons: None,
    }
}

/// Applies the spam gate's decision to a row: status, queue, verdict, flag.
fn apply_gate(row: &mut NewMessage, gate: crate::spam::Gate, queue: Option<Target>) {
    use crate::spam::Gate;
    match gate {
        Gate::Deliver { score } => {
            row.verdict = Some(("ok", score));
            row.queue = queue;
        }
        // Shadow mode: delivered, and recorded as what enforce mode would
        // have done (no review entry: nothing waits for an operator).
        Gate::Shadow { verdict, score } => {
            let would = match verdict {
                classifier::VerdictKind::Spam => "would_block",
                _ => "would_hold",
            };
            row.verdict = Some((would, score));
            row.queue = queue;
        }
        Gate::Hold { score, reasons } => {
            row.verdict = Some(("suspect", score));
            row.status = MessageStatus::Held;
            row.flag_reasons = Some(reasons);
        }
        Gate::Block { score, reasons } => {
            row.verdict = Some(("spam", score));
            row.status = MessageStatus::Blocked;
            row.flag_reasons = Some(reasons);
        }
        Gate::RateLimited { .. } => {
            row.status = MessageStatus::Held;
            row.flag_reasons =
                Some("[{\"tag\":\"RATE_LIMITED\",\"words\":\"over a rate limit\"}]".into());
            row.verdict = Some(("suspect", 0.0));
        }
        // Callers handle refusals before building a row.
        Gate::Refused => row.status = MessageStatus::Refused,
    }
}

/// The delivery work a new row implies, built before the row moves into the store.
fn queue_item(row: &NewMessage) -> Option<QueueItem> {
    row.queue.as_ref().map(|target| QueueItem {
        message_id: row.id.clone(),
        target: target.clone(),
        attempts: 0,
        created_at: row.created_at,
        header: row.header.clone(),
        sealed: Some(row.sealed.clone()),
    })
}

/// Gives a committed entry to the delivery worker directly, or wakes its poller.
fn hand_to_delivery(state: &AppState, item: Option<QueueItem>) {
    if let Some(item) = item {
        if !state.dispatch.offer(item) {
            state.queue_notify.notify_one();
        }
    }
}

/// Checks, seals and durably commits an outbound message; returns only after
/// the commit, so the 202 that follows is a promise kept across a crash.
pub async fn accept_outbound(state: &AppState, req: OutboundRequest) -> Result<Accepted> {
    let requested = crate::rcs::Requested::parse(req.channel.as_deref())?;
    let now = clock::now_ms();
    let ttl = match req.ttl_seconds {
        Some(0) => return Err(Error::invalid("ttl_seconds", "must be at least 1")),
        Some(t) if t > MAX_TTL_SECS => {
            return Err(Error::invalid(
                "ttl_seconds",
                "must be at most 604800 (7 days)",
            ));
        }
        t => t,
    };
    let expires_at = ttl.map(|t| now + (t as i64) * 1000);

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
        (None, None, None) => {
            return Err(Error::invalid("text", "text, rcs or envelope is required"));
        }
        (Some(b64), _, _) => {
            let env = Envelope::from_base64(&b64)
                .map_err(|e| Error::invalid("envelope", e.to_string()))?;
            if env.header.direction != Direction::Outbound {
                return Err(Error::invalid(
                    "envelope",
                    "header direction must be outbound",
                ));
            }
            let key = state.edge_key(&env.header.kid).map_err(|_| {
                Error::invalid("envelope", "not sealed to one of this gateway's edge keys")
            })?;
            let content = env
                .open(&key.private)
                .map_err(|e| Error::invalid("envelope", e.to_string()))?;
            if matches!(content, Content::Data { .. } | Content::SmsPart { .. }) {
                // Inbound-only content types: no route sends 8-bit data.
                return Err(Error::invalid(
                    "envelope",
                    "content type cannot be sent (8-bit data and parts are inbound only)",
                ));
            }
            Address::phone(&env.header.to, state.region, "envelope.to")?;
            Address::sender(&env.header.from, state.region, "envelope.from")?;
            // A header sealed for RCS says 1 segment, utf8; one sealed for
            // SMS must match the SMS text (RCS content: its rendering).
            let (segments, encoding, smart) = match env.header.channel {
                Channel::Rcs => (1, "utf8", false),
                Channel::Sms => {
                    let text = crate::rcs::sms_text(state, &content);
                    let (segments, encoding) = crate::sms_plan::plan(&text, &state.config.sms);
                    let smart = crate::sms_plan::smart_encoded(&text, &state.config.sms);
                    (segments, encoding, smart)
                }
            };
            if env.header.segments != segments || env.header.encoding != encoding {
                return Err(Error::invalid(
                    "envelope",
                    format!(
                        "header says {} segments {}, content needs {segments} {encoding}",
                        env.header.segments, env.header.encoding
                    ),
                ));
            }
            if Uuid::parse_str(&env.header.id).is_err() {
                return Err(Error::invalid("envelope", "header id must be a UUID"));
            }
            let decision = match env.header.channel {
                Channel::Rcs => {
                    crate::rcs::decide(
                        state,
                        requested,
                        &content,
                        &env.header.from,
                        &env.header.to,
                        now,
                    )
                    .await?
                }
                Channel::Sms => crate::rcs::Decision {
                    channel: Channel::Sms,
                    fallback: None,
                },
            };
            let id = env.header.id.clone();
            (env, Some(("api".to_string(), id)), (decision, smart))
        }
        (None, text, rcs) => {
            let content = match (text, rcs) {
                (Some(text), _) => text_content(text)?,
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
                seal_outbound(state, msg, requested, now, expires_at).await?;
            (env, None, (decision, smart))
        }
    };
    commit_outbound(state, env, now, expires_at, dedup, None, decision).await
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
    state: &AppState,
    msg: OutboundContent<'_>,
    requested: crate::rcs::Requested,
    now: i64,
    expires_at: Option<i64>,
) -> Result<(Envelope, crate::rcs::Decision, bool)> {
    let to = Address::phone(msg.to, state.region, "to")?;
    let default_from = state
        .config
        .generic
        .as_ref()
        .and_then(|g| g.from.as_deref());
    let from = match msg.from.or(default_from) {
        Some(f) => Address::sender(f, state.region, "from")?.to_string(),
        None => String::new(),
    };
    let decision =
        crate::rcs::decide(state, requested, &msg.content, &from, to.as_str(), now).await?;
    let (segments, encoding, smart) = match decision.channel {
        Channel::Rcs => (1, "utf8", false),
        Channel::Sms => {
            let text = crate::rcs::sms_text(state, &msg.content);
            let (segments, encoding) = crate::sms_plan::plan(&text, &state.config.sms);
            let smart = crate::sms_plan::smart_encoded(&text, &state.config.sms);
            (segments, encoding, smart)
        }
    };
    let edge = state.current_edge_key()?;
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
    let env = state.sealer.seal(h, &msg.content, &edge.public)?;
    Ok((env, decision, smart))
}

/// Checks, seals and durably commits an outbound text message from a
/// source other than the HTTP API (the SMPP server): the same opt-out,
/// spam gate, sealing and commit as `POST /v1/messages`, always as SMS (an
/// SMS application asked for SMS). `identity` is who the classifier judges
/// when the message names no sender.
pub async fn accept_outbound_text(
    state: &AppState,
    msg: OutboundText<'_>,
    ttl_seconds: Option<u64>,
    identity: Option<&str>,
) -> Result<Accepted> {
    let now = clock::now_ms();
    let expires_at = ttl_seconds.map(|t| now + (t.min(MAX_TTL_SECS) as i64) * 1000);
    let msg = OutboundContent {
        id: msg.id,
        to: msg.to,
        from: msg.from,
        content: text_content(msg.text)?,
    };
    let (env, decision, smart) =
        seal_outbound(state, msg, crate::rcs::Requested::Sms, now, expires_at).await?;
    commit_outbound(
        state,
        env,
        now,
        expires_at,
        None,
        identity,
        (decision, smart),
    )
    .await
}

/// The common tail of outbound acceptance: route, opt-out, spam gate,
/// durable commit, hand-off to delivery.
async fn commit_outbound(
    state: &AppState,
    env: Envelope,
    now: i64,
    expires_at: Option<i64>,
    dedup: Option<(String, String)>,
    identity: Option<&str>,
    (decision, smart_encoded): (crate::rcs::Decision, bool),
) -> Result<Accepted> {
    let expires_at = expires_at.or_else(|| {
        env.header
            .expires_at
            .as_deref()
            .and_then(|s| {
                time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).ok()
            })
            .map(|t| (t.unix_timestamp_nanos() / 1_000_000) as i64)
    });
    let route = match decision.channel {
        Channel::Rcs => crate::rcs::ROUTE.to_string(),
        Channel::Sms => state
            .routes
            .choose(&env.header.from, &env.header.to)
            .ok_or_else(|| Error::invalid("to", "no SMS route is configured on this gateway"))?
            .to_string(),
    };
    crate::optout::check_outbound(state, &route, &env.header.from, &env.header.to).await?;
    // The sending identity the classifier judges: the message's sender, or
    // the number the route sends from when the message names none.
    let route_from = state
        .routes
        .get(&route)
        .and_then(|r| r.default_from())
        .map(str::to_string);
    let identity = if env.header.from.is_empty() {
        identity.or(route_from.as_deref()).unwrap_or("")
    } else {
        env.header.from.as_str()
    };
    let gate = state
        .spam
        .check(crate::spam::MessageFacts {
            id: &env.header.id,
            from: identity,
            to: &env.header.to,
            segments: env.header.segments,
            encoding: &env.header.encoding,
            bytes: env.header.size_class as usize,
            route: &route,
            origin: crate::spam::Origin::Own,
            direction: "outbound",
        })
        .await?;
    match gate {
        crate::spam::Gate::Refused => return Err(Error::Refused("the sender is blocked".into())),
        crate::spam::Gate::RateLimited {
            retry_after_secs,
            limit,
        } => {
            return Err(Error::RateLimited {
                retry_after_secs,
                limit,
            });
        }
        _ => {}
    }
    let mut row = new_row(&env, now, expires_at, &route, MessageStatus::Queued);
    row.channel = crate::rcs::channel_name(decision.channel);
    row.carrier_id = dedup;
    apply_gate(&mut row, gate, Some(Target::Route(route)));
    let accepted = Accepted {
        id: row.id.clone(),
        status: row.status.as_str().to_string(),
        channel: row.channel,
        segments: row.segments,
        encoding: row.encoding.clone(),
        smart_encoded,
    };
    let item = queue_item(&row);
    let timer = decision
        .fallback
        .map(|(sms_route, due_at)| FallbackTimer { sms_route, due_at });
    match state.store.insert_with_fallback(row, timer).await? {
        InsertOutcome::Inserted => {
            state
                .metrics
                .message("outbound", accepted_status(&accepted));
            hand_to_delivery(state, item);
            Ok(accepted)
        }
        InsertOutcome::Duplicate { id } => {
            let status = state
                .store
                .message(id.clone())
                .await?
                .map(|v| v.status.as_str().to_string())
                .unwrap_or_default();
            Ok(Accepted {
                id,
                status,
                ..accepted
            })
        }
    }
}

fn accepted_status(a: &Accepted) -> &'static str {
    match a.status.as_str() {
        "held" => "held",
        "blocked" => "blocked",
        _ => "queued",
    }
}

/// An inbound message from any adapter, already verified.
pub struct InboundMessage {
    /// Adapter name (`generic`, `twilio`, …).
    pub adapter: &'static str,
    /// The carrier's id, for de-duplication of retried webhooks.
    pub carrier_id: String,
    /// Sender as the carrier gave it.
    pub from: String,
    /// Recipient (an internal address) as the carrier gave it.
    pub to: String,
    /// The content, sealed before it is stored.
    pub content: Content,
}

/// What became of an inbound message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InboundOutcome {
    /// Message id.
    pub id: String,
    /// True when the carrier id was already stored (a retried webhook).
    pub duplicate: bool,
    /// The status it was stored with (`held` / `blocked` when the spam gate
    /// kept it for review); `None` for a duplicate.
    pub status: Option<&'static str>,
}

/// Picks the key an inbound message is sealed to: the recipient's registered
/// identity, else the private side's service key. `None` means nobody on the
/// private side can read it yet.
async fn recipient_key(state: &AppState, to: &str) -> Result<Option<PublicKey>> {
    let registered = match state.identities.fresh(to) {
        Some(known) => known,
        None => {
            let read = state.store.identity(to.to_string()).await?;
            state.identities.remember(to, read.clone());
            read
        }
    };
    Ok(registered.or_else(|| state.service_key.clone()))
}

/// Normalises, seals and durably commits an inbound message, then queues it
/// for the private side. Returns after the commit: only then may the carrier
/// get its 2xx.
pub async fn accept_inbound(state: &AppState, msg: InboundMessage) -> Result<InboundOutcome> {
    let from = Address::sender(&msg.from, state.region, "from")?;
    let to = Address::sender(&msg.to, state.region, "to")?;
    if msg.carrier_id.is_empty() || msg.carrier_id.len() > 128 {
        return Err(Error::invalid(
            "id",
            "carrier message id must be 1 to 128 characters",
        ));
    }
    let now = clock::now_ms();
    // Compliance keywords are recognised here, before the text is sealed.
    let keyword = crate::optout::keyword(msg.content.as_text());
    let rbm = msg.adapter == crate::rcs::ROUTE;
    let (segments, encoding) = if rbm {
        (1, "utf8")
    } else {
        crate::sms_plan::plan_content(&msg.content, &state.config.sms)
    };
    // "2" in answer to an SMS rendering with numbered suggestions is that
    // suggestion's response (and postback).
    let content =
        crate::rcs::map_sms_reply(state, msg.adapter, from.as_str(), to.as_str(), msg.content);
    // A number an SMPP server client owns: the gateway itself turns the
    // message into deliver_sm, so it is sealed to the edge key, not to a
    // private-side key.
    let smpp_client = state.smpp.owner_of(to.as_str()).map(Target::Smpp);
    let (key, status, queue) = match &smpp_client {
        Some(t) => (
            state.current_edge_key()?.public,
            MessageStatus::Queued,
            Some(t.clone()),
        ),
        None => match recipient_key(state, to.as_str()).await? {
            Some(pk) if state.config.private_side.webhook_url.is_some() => {
                (pk, MessageStatus::Queued, Some(Target::Private))
            }
            Some(pk) => (pk, MessageStatus::Stored, None),
            // Nobody can read it yet: keep it sealed to the edge key and hold it.
            None => (
                state.current_edge_key()?.public,
                MessageStatus::WaitingKey,
                None,
            ),
        },
    };
    let mut h = header(
        Uuid::now_v7().to_string(),
        now,
        Direction::Inbound,
        from.as_str(),
        to.as_str(),
        (segments, encoding),
        None,
    );
    if rbm {
        h.channel = Channel::Rcs;
    }
    h.carrier_ids
        .insert(msg.adapter.to_string(), msg.carrier_id.clone());
    let env = state.sealer.seal(h, &content, &key)?;
    let gate = state
        .spam
        .check(crate::spam::MessageFacts {
            id: &env.header.id,
            from: &env.header.from,
            to: &env.header.to,
            segments: env.header.segments,
            encoding: &env.header.encoding,
            bytes: env.header.size_class as usize,
            route: msg.adapter,
            origin: crate::spam::Origin::Stranger,
            direction: "inbound",
        })
        .await?;
    if gate == crate::spam::Gate::Refused {
        state.metrics.message("inbound", "refused");
        return Err(Error::Refused("the sender is blocked".into()));
    }
    let mut row = new_row(&env, now, None, msg.adapter, status);
    row.carrier_id = Some((msg.adapter.to_string(), msg.carrier_id));
    row.deliver_to = smpp_client;
    // Inbound over a rate limit is held for review, never dropped.
    apply_gate(&mut row, gate, queue);
    let status = row.status;
    let id = row.id.clone();
    let item = queue_item(&row);
    match crate::optout::insert_inbound(state, row, keyword).await? {
        InsertOutcome::Inserted => {
            state.metrics.message("inbound", status.as_str());
            if status == MessageStatus::WaitingKey {
                tracing::warn!(msg_id = %id, adapter = msg.adapter, "inbound message waiting: recipient has no identity and no service key is configured");
            }
            hand_to_delivery(state, item);
            Ok(InboundOutcome {
                id,
                duplicate: false,
                status: Some(status.as_str()),
            })
        }
        InsertOutcome::Duplicate { id } => {
            state.metrics.message("inbound", "duplicate");
            Ok(InboundOutcome {
                id,
                duplicate: true,
                status: None,
            })
        }
    }
}
