//! The flow of one message through the gateway, independent of the channel
//! or HTTP shape it arrived in: normalise addresses, choose the channel,
//! seal the content into an envelope, opt-out and spam gate, commit
//! durably, hand to delivery; and the one path every status takes.
//!
//! Plaintext exists only inside these functions and the routes; what leaves
//! here for the store is the header and the sealed body.
//!
//! Channels and the HTTP API hold a [`Pipeline`]: the handles the flow
//! needs, and nothing that holds them back (no channel, no task), so that
//! dropping the service drops it.

pub mod channel;
pub mod hold_notify;
pub mod inbound;
pub mod lease;
pub mod optout;
pub mod outbound;
pub mod parts;
pub mod plan;
pub mod privacy;
pub mod quota;
pub mod spam;
pub mod spam_share;
pub mod status;

use std::sync::Arc;

use phonenumber::country::Id as Region;

pub use inbound::{InboundMessage, InboundOutcome, accept_inbound};
pub use outbound::{
    Accepted, OutboundRequest, OutboundText, accept_outbound, accept_outbound_text,
};

use crate::core::clock;
use crate::core::metrics::Metrics;
use crate::delivery::Handoff;
use crate::delivery::interwork::Interwork;
use crate::delivery::route::Routes;
use crate::envelope::epoch::{Opener, Sealer};
use crate::envelope::keys::{KeyStore, PublicKey};
use crate::envelope::{Channel, Direction, Envelope, Header};
use crate::store::{MessageStatus, NewMessage, QueueItem, Store, Target, Verdict};

/// What the flow of a message needs: handed to every channel and to the
/// HTTP API (cloning the `Arc` is one reference-count bump).
pub struct Pipeline {
    /// Durable store.
    pub store: Store,
    /// Edge keys (reloaded when an unknown key id shows up).
    pub keys: Arc<KeyStore>,
    /// Export-mode sealer (one key agreement per epoch and recipient key).
    pub sealer: Arc<Sealer>,
    /// Opener with cached epoch contexts.
    pub opener: Arc<Opener>,
    /// Region for national numbers.
    pub region: Region,
    /// The sender of outbound messages that name none (`[generic] from`).
    pub default_from: Option<String>,
    /// True when a private-side webhook is configured (inbound is queued
    /// for it, else stored).
    pub private_side: bool,
    /// The private side's service key, for recipients without an identity.
    pub service_key: Option<PublicKey>,
    /// Outbound routes and the rules that pick one.
    pub routes: Arc<Routes>,
    /// Rate limits, classifier and operators' lists.
    pub spam: Arc<spam::SpamGate>,
    /// Pairs that may have opted out (spares a read per outbound message).
    pub opt_outs: Arc<optout::OptOutFilter>,
    /// Recently looked-up identities (spares a read per inbound message).
    pub identities: inbound::IdentityCache,
    /// Who owns an inbound message's recipient besides the private side
    /// (SMPP server clients), when such a channel is configured.
    pub owners: Option<Arc<dyn inbound::OwnerLookup>>,
    /// The RCS agent, when `[rbm]` is configured.
    pub rcs: Option<Arc<dyn channel::RcsAgent>>,
    /// RCS content as SMS, and replies to numbered suggestions.
    pub interwork: Arc<Interwork>,
    /// Committed queue entries to the delivery worker.
    pub handoff: Handoff,
    /// Metrics.
    pub metrics: Arc<Metrics>,
    /// The one path every delivery status goes through.
    pub status: Arc<status::StatusPath>,
    /// Which messages have no content at rest (`[privacy]`).
    pub transit: Arc<privacy::Transit>,
    /// True when status callbacks are on (their signing secret is set):
    /// else a request naming a `status_callback` is refused.
    pub status_callbacks: bool,
    /// The configured tenants (none: the implicit tenant).
    pub tenants: Arc<crate::core::tenants::Tenants>,
    /// Tenants' accepted messages today, against their quotas.
    pub quotas: quota::Quotas,
    /// Tenants' service keys, for their recipients without an identity.
    pub tenant_keys: std::collections::HashMap<String, PublicKey>,
}

impl Pipeline {
    /// SMS encoding options (`[sms]`).
    pub fn sms(&self) -> &adapters::sms::SmsOptions {
        self.interwork.sms()
    }

    /// Claims a new row's delivery for the fast path before the row is
    /// committed; `hand()` it after the commit (see [`crate::delivery::Reserved`]).
    fn reserve(&self, item: Option<QueueItem>) -> Option<crate::delivery::Reserved> {
        // A physical channel another node holds: the entry waits for the
        // owner's poll (cluster leases), no fast path here.
        let item = item.filter(|i| match &i.target {
            crate::store::Target::Route(r) => self.store.owns_route(r),
            // An SMPP server client bound to another node only: its node
            // claims the entry.
            crate::store::Target::Smpp(c) => self.store.owns_smpp(c),
            _ => true,
        });
        item.map(|item| self.handoff.reserve(item))
    }
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
        channel: channel::channel_name(h.channel),
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
        idempotency: None,
        transit: false,
        status_callback: None,
        tenant: None,
    }
}

/// Applies the spam gate's decision to a row: status, queue, verdict, flag.
fn apply_gate(row: &mut NewMessage, gate: spam::Gate, queue: Option<Target>) {
    use spam::Gate;
    match gate {
        Gate::Deliver { score } => {
            row.verdict = Some((Verdict::Ok, score));
            row.queue = queue;
        }
        // Shadow mode: delivered, and recorded as what enforce mode would
        // have done (no review entry: nothing waits for an operator).
        Gate::Shadow { verdict, score } => {
            let would = match verdict {
                classifier::VerdictKind::Spam => Verdict::WouldBlock,
                _ => Verdict::WouldHold,
            };
            row.verdict = Some((would, score));
            row.queue = queue;
        }
        Gate::Hold { score, reasons } => {
            row.verdict = Some((Verdict::Suspect, score));
            row.status = MessageStatus::Held;
            row.flag_reasons = Some(reasons);
        }
        Gate::Block { score, reasons } => {
            row.verdict = Some((Verdict::Spam, score));
            row.status = MessageStatus::Blocked;
            row.flag_reasons = Some(reasons);
        }
        Gate::RateLimited { .. } => {
            row.status = MessageStatus::Held;
            row.flag_reasons =
                Some("[{\"tag\":\"RATE_LIMITED\",\"words\":\"over a rate limit\"}]".into());
            row.verdict = Some((Verdict::Suspect, 0.0));
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
