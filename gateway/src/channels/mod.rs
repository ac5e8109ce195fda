//! One folder per channel to the phone network, each readable alone: its
//! own configuration section (`config.rs`), its route (`route.rs`), its
//! webhook router (`webhook.rs`) and its tasks. Every channel is built the
//! same way (vector's config-as-factory): `XConfig::build(&BuildContext)`
//! resolves its secrets, checks what its section alone cannot, and returns
//! a [`Built`]: the routes it adds, and the webhook routers and tasks that
//! start once the [`Pipeline`] exists, with the handles they need (never
//! the whole service). A channel's config never imports the aggregate
//! configuration; the aggregate (`app::config`) imports the channels'.

pub mod android;
pub mod generic;
pub mod modem;
pub mod rbm;
pub mod smpp;
pub mod telnyx;
pub mod twilio;

use std::sync::Arc;

use phonenumber::country::Id as Region;
use tokio_util::sync::CancellationToken;

use crate::core::BoxFuture;
use crate::core::error::Result;
use crate::core::metrics::Metrics;
use crate::delivery::route::Route;
pub use crate::http::Health;
use crate::pipeline::Pipeline;
use crate::pipeline::channel::RcsAgent;
use crate::pipeline::inbound::OwnerLookup;
use crate::pipeline::status::StatusObserver;
use crate::store::Store;

/// What every channel's build may use.
pub struct BuildContext<'a> {
    /// The shared HTTP client (connection pools) for outgoing requests.
    pub http: &'a reqwest::Client,
    /// The lean client's settings, for routes that POST per message.
    pub lean: crate::delivery::lean::LeanOptions,
    /// How text becomes SMS (`[sms]`).
    pub sms: &'a adapters::sms::SmsOptions,
    /// Region for national numbers.
    pub region: Region,
    /// Durable store (channels that keep tables of their own: SMPP).
    pub store: &'a Store,
    /// Metrics.
    pub metrics: &'a Arc<Metrics>,
    /// Accepted clock skew of signed webhooks, in seconds.
    pub signature_window_secs: i64,
}

/// A task a channel runs: started with the pipeline once everything is
/// built, it ends after `shutdown`.
pub type Task = Box<dyn FnOnce(Arc<Pipeline>, CancellationToken) -> BoxFuture<'static, ()> + Send>;

/// A channel's webhook router, made once the pipeline exists.
pub type RouterFactory = Box<dyn FnOnce(Arc<Pipeline>) -> axum::Router + Send>;

/// What building a channel gives.
#[derive(Default)]
pub struct Built {
    /// Routes that routing rules and the default may pick, by name.
    pub routes: Vec<(String, Arc<dyn Route>)>,
    /// Routes only a message's channel picks (RBM).
    pub unrouted: Vec<(String, Arc<dyn Route>)>,
    /// Routes for every name with a prefix (the SMPP server's clients).
    pub families: Vec<(String, Arc<dyn Route>)>,
    /// Webhook routers.
    pub routers: Vec<RouterFactory>,
    /// Tasks to start.
    pub tasks: Vec<Task>,
    /// Health sections of `/healthz`, by key.
    pub health: Vec<(&'static str, Arc<dyn Health>)>,
    /// The RCS agent the pipeline chooses channels with (RBM).
    pub rcs: Option<Arc<dyn RcsAgent>>,
    /// Who owns inbound recipients besides the private side (SMPP server).
    pub owners: Option<Arc<dyn OwnerLookup>>,
    /// What the status path tells when a status moves (SMPP receipts).
    pub observers: Vec<Arc<dyn StatusObserver>>,
    /// Route names of physical channels (a modem, a phone): on a cluster
    /// each runs on the node holding its lease (`pipeline::lease`).
    pub physical: Vec<String>,
}

impl Built {
    /// Adds everything `other` built.
    pub fn merge(&mut self, other: Built) {
        self.routes.extend(other.routes);
        self.unrouted.extend(other.unrouted);
        self.families.extend(other.families);
        self.routers.extend(other.routers);
        self.tasks.extend(other.tasks);
        self.health.extend(other.health);
        self.rcs = self.rcs.take().or(other.rcs);
        self.owners = self.owners.take().or(other.owners);
        self.observers.extend(other.observers);
        self.physical.extend(other.physical);
    }

    /// A task from an async function of the pipeline and the shutdown token.
    pub fn task<F, Fut>(&mut self, f: F)
    where
        F: FnOnce(Arc<Pipeline>, CancellationToken) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = ()> + Send + 'static,
    {
        self.tasks.push(Box::new(move |p, s| Box::pin(f(p, s))));
    }

    /// A webhook router made from the pipeline.
    pub fn router<F>(&mut self, f: F)
    where
        F: FnOnce(Arc<Pipeline>) -> axum::Router + Send + 'static,
    {
        self.routers.push(Box::new(f));
    }
}

/// The configured side of a channel: built into routes, routers and tasks.
pub trait ChannelConfig {
    /// Resolves secrets, checks what the section alone cannot, and builds.
    fn build(&self, ctx: &BuildContext<'_>) -> Result<Built>;
}

/// The answer of a webhook path whose channel is not configured.
pub fn unconfigured(paths: &[&'static str], name: &'static str) -> axum::Router {
    let mut r = axum::Router::new();
    for p in paths {
        r = r.route(
            p,
            axum::routing::post(move || async move {
                crate::http::error::ApiError::NotFound(format!(
                    "the {name} adapter is not configured"
                ))
            }),
        );
    }
    r
}

/// The concatenation reference a message id hashes to: the same in every
/// attempt of a message, so a resumed one continues with matching parts.
/// The SMPP client moves off it when another long message to the same
/// recipient holds it (`smpp/references.rs`).
pub(crate) fn concat_reference(id: &str) -> u16 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    id.hash(&mut h);
    h.finish() as u16
}
