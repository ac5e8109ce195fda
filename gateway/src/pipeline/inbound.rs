//! Inbound: a verified message from any channel to a committed, sealed
//! message queued for whoever receives it (the private side, or an SMPP
//! server client that owns the recipient).

use std::time::{Duration, Instant};

use uuid::Uuid;

use super::{Pipeline, apply_gate, header, new_row, optout, plan, queue_item, spam};
use crate::core::address::Address;
use crate::core::clock;
use crate::core::error::{Error, Result};
use crate::core::tenants::Tenant;
use crate::delivery::interwork::RCS_ROUTE;
use crate::envelope::keys::PublicKey;
use crate::envelope::{Channel, Content, Direction};
use crate::store::{CacheKind, InsertOutcome, MessageStatus, Target};

/// Who, besides the private side, receives inbound messages to a number
/// (SMPP server clients own numbers and prefixes).
pub trait OwnerLookup: Send + Sync {
    /// The `system_id` of the client that owns `to` (normalised), if any.
    fn owner_of(&self, to: &str) -> Option<String>;
}

/// How long a looked-up identity is used without asking the database again:
/// a key registered or replaced with the CLI (another process) reaches
/// inbound sealing within this time; through the API it is at once. On
/// PostgreSQL another node's change reaches this cache by notification
/// (the store's cache generation) at once; this expiry is the fallback.
pub const IDENTITY_CACHE_TTL: Duration = Duration::from_secs(5);
const IDENTITY_CACHE_MAX: usize = 65_536;

/// Internal recipients' registered keys (or their absence) as recently read.
/// Every inbound message is sealed to its recipient's key, and reading it
/// from SQLite on a blocking thread for each one was a visible share of the
/// inbound path; recipients repeat, so a short-lived cache answers most.
pub struct IdentityCache {
    entries: quick_cache::sync::Cache<String, (Option<PublicKey>, Instant, u64)>,
}

impl Default for IdentityCache {
    fn default() -> Self {
        Self {
            entries: quick_cache::sync::Cache::new(IDENTITY_CACHE_MAX),
        }
    }
}

impl IdentityCache {
    /// The key of `address` if read within [`IDENTITY_CACHE_TTL`] under
    /// the store's current identity generation `generation`; `Some(None)`
    /// means "known to have none".
    pub fn fresh(&self, address: &str, generation: u64) -> Option<Option<PublicKey>> {
        let (key, at, read_under) = self.entries.get(address)?;
        (at.elapsed() < IDENTITY_CACHE_TTL && read_under == generation).then_some(key)
    }

    /// Remembers what the database said (or what was just written), read
    /// under identity generation `generation` (taken before the read, so a
    /// change noticed during the read makes the entry stale).
    pub fn remember(&self, address: &str, key: Option<PublicKey>, generation: u64) {
        self.entries
            .insert(address.to_string(), (key, Instant::now(), generation));
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
async fn recipient_key(p: &Pipeline, to: &str) -> Result<Option<PublicKey>> {
    Ok(registered_key(p, to)
        .await?
        .or_else(|| p.service_key.clone()))
}

/// The identity registered for `to`, if any.
async fn registered_key(p: &Pipeline, to: &str) -> Result<Option<PublicKey>> {
    let generation = p.store.cache_generation(CacheKind::Identities);
    Ok(match p.identities.fresh(to, generation) {
        Some(known) => known,
        None => {
            let read = p.store.identity(to.to_string()).await?;
            p.identities.remember(to, read.clone(), generation);
            read
        }
    })
}

/// What [`receiver`] answers: the key, the first status, the queue entry
/// and where a released message goes.
type Receiver = (PublicKey, MessageStatus, Option<Target>, Option<Target>);

/// The receiver of a message to an address `tenant` owns: sealed to the
/// recipient's identity (else the tenant's service key) and queued for the
/// tenant's own webhook only; never the shared private side's.
async fn tenant_receiver(p: &Pipeline, tenant: &Tenant, to: &str) -> Result<Receiver> {
    let target = Target::Tenant(tenant.name.clone());
    let key = match registered_key(p, to).await? {
        Some(k) => Some(k),
        None => p.tenant_keys.get(&tenant.name).cloned(),
    };
    Ok(match key {
        Some(pk) if tenant.webhook_url.is_some() => (
            pk,
            MessageStatus::Queued,
            Some(target.clone()),
            Some(target),
        ),
        Some(pk) => (pk, MessageStatus::Stored, None, Some(target)),
        None => (
            p.keys.current()?.public,
            MessageStatus::WaitingKey,
            None,
            Some(target),
        ),
    })
}

/// Who gets a message to `to`: the key it is sealed to, its first status,
/// and its queue entry. A number an SMPP server client owns: the gateway
/// itself turns the message into deliver_sm, so it is sealed to the edge
/// key, not to a private-side key.
async fn receiver(p: &Pipeline, to: &str) -> Result<Receiver> {
    if let Some(sid) = p.owners.as_ref().and_then(|o| o.owner_of(to)) {
        let t = Target::Smpp(sid);
        return Ok((
            p.keys.current()?.public,
            MessageStatus::Queued,
            Some(t.clone()),
            Some(t),
        ));
    }
    if let Some(tenant) = p.tenants.owner_of(to) {
        return tenant_receiver(p, tenant, to).await;
    }
    Ok(match recipient_key(p, to).await? {
        Some(pk) if p.private_side => (pk, MessageStatus::Queued, Some(Target::Private), None),
        Some(pk) => (pk, MessageStatus::Stored, None, None),
        // Nobody can read it yet: keep it sealed to the edge key and hold it.
        None => (
            p.keys.current()?.public,
            MessageStatus::WaitingKey,
            None,
            None,
        ),
    })
}

/// The spam gate's decision on an inbound message; a blocked sender is an
/// error (the carrier is answered 403).
async fn gate(p: &Pipeline, env: &crate::envelope::Envelope, adapter: &str) -> Result<spam::Gate> {
    let h = &env.header;
    let gate = p
        .spam
        .check(spam::MessageFacts {
            id: &h.id,
            from: &h.from,
            to: &h.to,
            segments: h.segments,
            encoding: &h.encoding,
            bytes: h.size_class as usize,
            route: adapter,
            origin: spam::Origin::Stranger,
            direction: "inbound",
        })
        .await?;
    if gate == spam::Gate::Refused {
        p.metrics.message("inbound", "refused");
        return Err(Error::Refused("the sender is blocked".into()));
    }
    Ok(gate)
}

/// Normalises, seals and durably commits an inbound message, then queues it
/// for the private side. Returns after the commit: only then may the carrier
/// get its 2xx.
pub async fn accept_inbound(p: &Pipeline, msg: InboundMessage) -> Result<InboundOutcome> {
    let from = Address::sender(&msg.from, p.region, "from")?;
    let to = Address::sender(&msg.to, p.region, "to")?;
    if msg.carrier_id.is_empty() || msg.carrier_id.len() > 128 {
        return Err(Error::invalid(
            "id",
            "carrier message id must be 1 to 128 characters",
        ));
    }
    let now = clock::now_ms();
    // Compliance keywords are recognised here, before the text is sealed.
    let keyword = optout::keyword(msg.content.as_text());
    let rbm = msg.adapter == RCS_ROUTE;
    let (segments, encoding) = if rbm {
        (1, "utf8")
    } else {
        plan::plan_content(&msg.content, p.sms())
    };
    // "2" in answer to an SMS rendering with numbered suggestions is that
    // suggestion's response (and postback).
    let content = p
        .interwork
        .map_sms_reply(msg.adapter, from.as_str(), to.as_str(), msg.content);
    let (key, status, queue, deliver_to) = receiver(p, to.as_str()).await?;
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
    let env = p.sealer.seal(h, &content, &key)?;
    let gate = gate(p, &env, msg.adapter).await?;
    let mut row = new_row(&env, now, None, msg.adapter, status);
    row.carrier_id = Some((msg.adapter.to_string(), msg.carrier_id));
    row.deliver_to = deliver_to;
    row.tenant = p.tenants.owner_of(to.as_str()).map(|t| t.name.clone());
    // Inbound over a rate limit is held for review, never dropped.
    apply_gate(&mut row, gate, queue);
    let status = row.status;
    let id = row.id.clone();
    // No content at rest: the row keeps metadata only and the envelope
    // goes to the receiver from memory, before the carrier hears 2xx.
    row.transit = p.transit.applies(from.as_str(), to.as_str());
    if row.transit && matches!(status, MessageStatus::WaitingKey | MessageStatus::Stored) {
        // Nobody can take it now, and it may not wait on disk: the
        // carrier keeps it and retries.
        return Err(Error::NotRetained);
    }
    let (reserved, transit) = if row.transit {
        (None, queue_item(&row).inspect(|_| row.queue = None))
    } else {
        (p.reserve(queue_item(&row)), None)
    };
    match optout::insert_inbound(p, row, keyword).await? {
        InsertOutcome::Inserted => {
            p.metrics.message("inbound", status.as_str());
            if status == MessageStatus::WaitingKey {
                tracing::warn!(msg_id = %id, adapter = msg.adapter, "inbound message waiting: recipient has no identity and no service key is configured");
            }
            if let Some(r) = reserved {
                r.hand();
            }
            if let Some(item) = transit {
                if !super::privacy::carry(p, item, true).await? {
                    return Err(Error::NotRetained);
                }
            }
            Ok(InboundOutcome {
                id,
                duplicate: false,
                status: Some(status.as_str()),
            })
        }
        InsertOutcome::IdempotencyConflict => Err(Error::IdempotencyConflict),
        InsertOutcome::Duplicate { id } => {
            p.metrics.message("inbound", "duplicate");
            if transit.is_some() && !super::privacy::taken(p, &id).await? {
                // The first copy is still in flight (or was not taken):
                // only a message the receiver has is acknowledged.
                return Err(Error::NotRetained);
            }
            Ok(InboundOutcome {
                id,
                duplicate: true,
                status: None,
            })
        }
    }
}
