//! Shared state of the running service: one `Clone` struct of `Arc`s handed
//! to every HTTP handler and background task.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use phonenumber::country::Id as Region;
use tokio::sync::Notify;

use crate::channels::generic::config::GENERIC_SECRET_ENV;
use crate::config::Config;
use crate::core::error::{Error, Result};
use crate::core::metrics::Metrics;
use crate::delivery::config::PRIVATE_SECRET_ENV;
use crate::envelope::keys::{EdgeKey, Keyring, PublicKey};
use crate::store::Store;

/// How long a validated API token is trusted without asking the database
/// again; also how long a revocation takes to bite.
const TOKEN_CACHE_TTL: Duration = Duration::from_secs(5);
const TOKEN_CACHE_MAX: usize = 10_000;

/// Token hash -> (API key name, when it was checked).
type TokenCache = HashMap<[u8; 32], (String, Instant)>;

/// Secrets resolved at start (never logged).
#[derive(Default)]
pub struct Secrets {
    /// HMAC secret of the generic adapter.
    pub generic: Option<Vec<u8>>,
    /// HMAC secret of the private-side webhook.
    pub private: Option<Vec<u8>>,
}

impl std::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secrets { <redacted> }")
    }
}

/// How long a looked-up identity is used without asking the database again:
/// a key registered or replaced with the CLI (another process) reaches
/// inbound sealing within this time; through the API it is at once.
pub const IDENTITY_CACHE_TTL: Duration = Duration::from_secs(5);
const IDENTITY_CACHE_MAX: usize = 65_536;

/// Internal recipients' registered keys (or their absence) as recently read.
/// Every inbound message is sealed to its recipient's key, and reading it
/// from SQLite on a blocking thread for each one was a visible share of the
/// inbound path; recipients repeat, so a short-lived cache answers most.
pub struct IdentityCache {
    entries: quick_cache::sync::Cache<String, (Option<PublicKey>, Instant)>,
}

impl IdentityCache {
    fn new() -> Self {
        Self {
            entries: quick_cache::sync::Cache::new(IDENTITY_CACHE_MAX),
        }
    }

    /// The key of `address` if read within [`IDENTITY_CACHE_TTL`];
    /// `Some(None)` means "known to have none".
    pub fn fresh(&self, address: &str) -> Option<Option<PublicKey>> {
        let (key, at) = self.entries.get(address)?;
        (at.elapsed() < IDENTITY_CACHE_TTL).then_some(key)
    }

    /// Remembers what the database said (or what was just written).
    pub fn remember(&self, address: &str, key: Option<PublicKey>) {
        self.entries
            .insert(address.to_string(), (key, Instant::now()));
    }
}

/// Everything a handler or task needs. Cloning is one reference-count bump
/// (axum clones the state for every request).
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

impl std::ops::Deref for AppState {
    type Target = Shared;
    fn deref(&self) -> &Shared {
        &self.0
    }
}

/// The fields behind [`AppState`].
pub struct Shared {
    /// The loaded configuration.
    pub config: Arc<Config>,
    /// Durable store.
    pub store: Store,
    /// Edge keys; reloaded from disk when an unknown kid shows up (rotation by the CLI).
    pub keys: Arc<RwLock<Keyring>>,
    /// Metrics.
    pub metrics: Arc<Metrics>,
    /// Resolved secrets.
    pub secrets: Arc<Secrets>,
    /// Region for national numbers.
    pub region: Region,
    /// The private side's service key, for recipients without an identity.
    pub service_key: Option<PublicKey>,
    /// Wakes the delivery worker when something was queued.
    pub queue_notify: Arc<Notify>,
    /// Export-mode sealer (one key agreement per epoch and recipient key).
    pub sealer: Arc<crate::envelope::epoch::Sealer>,
    /// Opener with cached epoch contexts.
    pub opener: Arc<crate::envelope::epoch::Opener>,
    /// Fast path from commit to the delivery worker.
    pub dispatch: crate::delivery::Dispatch,
    /// Outbound routes.
    pub routes: crate::delivery::route::Routes,
    /// Rate limits, classifier and operators' lists.
    pub spam: Arc<crate::spam::SpamGate>,
    /// The shared HTTP client (connection pools) for outgoing requests.
    pub http: reqwest::Client,
    /// GSM modems: tasks to start, and their health.
    pub modems: crate::modem::Modems,
    /// Carrier adapters' resolved settings (Twilio, Telnyx, Android relays).
    pub carriers: Arc<crate::carriers::Carriers>,
    /// Pairs that may have opted out (spares a read per outbound message).
    pub opt_outs: Arc<crate::optout::OptOutFilter>,
    /// Recently looked-up identities (spares a read per inbound message).
    pub identities: Arc<IdentityCache>,
    /// RCS Business Messaging, when `[rbm]` is configured.
    pub rcs: Option<Arc<crate::rcs::Rcs>>,
    /// SMPP client binds and server.
    pub smpp: Arc<crate::smpp::Smpp>,
    /// The one path every delivery status goes through.
    pub status: Arc<crate::pipeline::status::StatusPath>,
    token_cache: Arc<Mutex<TokenCache>>,
}

impl AppState {
    /// Builds the state from a loaded config and an open store.
    pub fn new(
        config: Config,
        store: Store,
        keys: Keyring,
        metrics: Arc<Metrics>,
        dispatch: crate::delivery::Dispatch,
    ) -> Result<Self> {
        let secrets = Secrets {
            generic: match &config.generic {
                Some(g) => g.secret.resolve(GENERIC_SECRET_ENV)?,
                None => None,
            },
            private: config.private_side.secret.resolve(PRIVATE_SECRET_ENV)?,
        };
        if config.generic.is_some() && secrets.generic.is_none() {
            return Err(Error::Config(format!(
                "[generic] needs a secret: set {GENERIC_SECRET_ENV} or generic.secret_env / secret_file"
            )));
        }
        if config.private_side.webhook_url.is_some() && secrets.private.is_none() {
            return Err(Error::Config(format!(
                "[private_side] webhook_url needs a secret: set {PRIVATE_SECRET_ENV} or private_side.secret_env / secret_file"
            )));
        }
        let mut routes = crate::delivery::route::Routes::default();
        let http = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(
                config.delivery.request_timeout_secs,
            ))
            .connect_timeout(std::time::Duration::from_secs(5))
            .pool_max_idle_per_host(config.delivery.concurrency)
            .build()
            .map_err(|e| Error::Config(format!("HTTP client: {e}")))?;
        if let (Some(g), Some(secret)) = (&config.generic, &secrets.generic) {
            routes.add(
                crate::channels::generic::route::NAME,
                Arc::new(crate::channels::generic::route::GenericRoute::new(
                    http.clone(),
                    g.url.clone(),
                    secret.clone(),
                    config.sms.clone(),
                )),
            );
        }
        let modems = crate::modem::Modems::new(&config, &mut routes)?;
        let carriers = Arc::new(crate::carriers::Carriers::build(
            &config,
            &http,
            &mut routes,
        )?);
        let smpp = Arc::new(crate::smpp::Smpp::new(
            &config,
            &store,
            &mut routes,
            &metrics,
        )?);
        routes.set_rules(&config.routing)?;
        // After the rules: the rbm route is never a routing default.
        let rcs = crate::rcs::Rcs::build(&config, &http, &mut routes)?;
        let service_key = config
            .private_side
            .service_public_key
            .as_deref()
            .map(crate::envelope::keys::parse_public_key)
            .transpose()?;
        let mode = crate::spam::ModeSwitch::for_data_dir(
            &config.classifier,
            &config.data_dir,
            store.scored_messages()?,
        );
        let spam = Arc::new(crate::spam::SpamGate::new(
            config.model.load(&config.data_dir)?,
            &config.classifier,
            store.clone(),
            metrics.clone(),
            mode,
        )?);
        let opt_outs = Arc::new(crate::optout::OptOutFilter::load(&store)?);
        let mut observers: Vec<Arc<dyn crate::pipeline::status::StatusObserver>> =
            vec![spam.clone()];
        observers.extend(smpp.receipt_observer());
        let status = Arc::new(crate::pipeline::status::StatusPath::new(
            store.clone(),
            metrics.clone(),
            observers,
        ));
        Ok(Self(Arc::new(Shared {
            opt_outs,
            identities: Arc::new(IdentityCache::new()),
            spam,
            region: crate::core::address::region(&config.default_region),
            config: Arc::new(config),
            store,
            keys: Arc::new(RwLock::new(keys)),
            metrics,
            secrets: Arc::new(secrets),
            service_key,
            queue_notify: Arc::new(Notify::new()),
            sealer: Arc::default(),
            dispatch,
            routes,
            http,
            modems,
            carriers,
            rcs,
            smpp,
            status,
            opener: Arc::default(),
            token_cache: Arc::new(Mutex::new(HashMap::new())),
        })))
    }

    /// The edge key new outbound envelopes are sealed to.
    pub fn current_edge_key(&self) -> Result<EdgeKey> {
        let k = self
            .keys
            .read()
            .map_err(|_| Error::Keys("keyring lock poisoned".into()))?;
        Ok(k.current().clone())
    }

    /// The edge key with id `kid`, reloading the keyring from disk once if it
    /// is unknown (the CLI may have rotated keys while the service runs).
    pub fn edge_key(&self, kid: &str) -> Result<EdgeKey> {
        if let Some(k) = self.keys.read().ok().and_then(|k| k.get(kid).cloned()) {
            return Ok(k);
        }
        let fresh = Keyring::open(&self.config.data_dir)?;
        let found = fresh.get(kid).cloned();
        if let Ok(mut guard) = self.keys.write() {
            *guard = fresh;
        }
        found.ok_or_else(|| Error::Keys(format!("no edge key with id {kid}")))
    }

    /// Checks a bearer token, caching good answers briefly.
    pub async fn authenticate(&self, token: &str) -> Result<Option<String>> {
        let hash = crate::store::hash_token(token);
        if let Ok(cache) = self.token_cache.lock() {
            if let Some((name, at)) = cache.get(&hash) {
                if at.elapsed() < TOKEN_CACHE_TTL {
                    return Ok(Some(name.clone()));
                }
            }
        }
        let found = self.store.check_token(token.to_string()).await?;
        if let (Some(name), Ok(mut cache)) = (&found, self.token_cache.lock()) {
            if cache.len() >= TOKEN_CACHE_MAX {
                cache.clear();
            }
            cache.insert(hash, (name.clone(), Instant::now()));
        }
        Ok(found)
    }
}
