//! Builds the configured service from its configuration: every channel
//! (each by its one `build`), the routes and routing rules, the pipeline
//! handle the channels and the API share, and the delivery worker.
//!
//! The order is what breaks the circles of the old shared state: channels
//! are built first (routes, and the hooks the pipeline needs of them), the
//! pipeline next (it holds routes, never tasks), and only then the channels'
//! routers and tasks, each given the pipeline.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;

use super::config::Config;
use crate::channels::{
    self, BuildContext, Built, ChannelConfig, Health, RouterFactory, Task, generic, rbm, telnyx,
    twilio,
};
use crate::core::address;
use crate::core::error::{Error, Result};
use crate::core::metrics::Metrics;
use crate::delivery::callbacks::{CallbackWorker, Wake};
use crate::delivery::config::PRIVATE_SECRET_ENV;
use crate::delivery::interwork::Interwork;
use crate::delivery::private::PrivateRoute;
use crate::delivery::route::Routes;
use crate::delivery::{self, Dispatch, DispatchRx, Handoff};
use crate::envelope::keys::{KeyStore, Keyring};
use crate::pipeline::optout::OptOutFilter;
use crate::pipeline::spam::SpamGate;
use crate::pipeline::status::{StatusObserver, StatusPath};
use crate::pipeline::{Pipeline, hold_notify, inbound};
use crate::store::Store;

/// The built service, not yet running.
pub struct Service {
    /// What channels and the API share.
    pub pipeline: Arc<Pipeline>,
    /// The delivery worker's handles.
    pub worker: Arc<delivery::Worker>,
    /// The worker's end of the fast path.
    pub dispatch: DispatchRx,
    /// The channels' webhook routers, to make with the pipeline.
    pub routers: Vec<RouterFactory>,
    /// The channels' tasks, to start with the pipeline.
    pub tasks: Vec<Task>,
    /// What `/healthz` shows besides the store.
    pub health: Vec<(&'static str, Arc<dyn Health>)>,
    /// The status callback worker, when callbacks are on.
    pub callbacks: Option<Arc<CallbackWorker>>,
}

/// Builds every configured channel, in the order their routes become the
/// default (the first route is the default unless `[routing] default`
/// says otherwise). Webhook paths of absent channels answer 404 naming it.
fn channels(config: &Config, ctx: &BuildContext<'_>) -> Result<Built> {
    let mut built = Built::default();
    match &config.generic {
        Some(g) => built.merge(g.build(ctx)?),
        None => built.routers.push(absent(generic::PATHS, "generic")),
    }
    built.merge(config.modems.as_slice().build(ctx)?);
    match &config.twilio {
        Some(t) => built.merge(t.build(ctx)?),
        None => built.routers.push(absent(twilio::PATHS, "twilio")),
    }
    match &config.telnyx {
        Some(t) => built.merge(t.build(ctx)?),
        None => built.routers.push(absent(telnyx::PATHS, "telnyx")),
    }
    built.merge(config.android.as_slice().build(ctx)?);
    built.merge(config.smpp.build(ctx)?);
    match &config.rbm {
        Some(r) => built.merge(r.build(ctx)?),
        None => built.routers.push(absent(rbm::PATHS, "rbm")),
    }
    Ok(built)
}

fn absent(paths: &'static [&'static str], name: &'static str) -> RouterFactory {
    Box::new(move |_| channels::unconfigured(paths, name))
}

/// Every route: the channels', the private side's, and the routing rules.
fn routes(config: &Config, ctx: &BuildContext, built: &mut Built) -> Result<Routes> {
    let mut routes = Routes::default();
    for (name, r) in built.routes.drain(..) {
        routes.add(&name, r);
    }
    routes.set_rules(&config.routing)?;
    // After the rules: neither RBM nor the private side is ever a routing default.
    for (name, r) in built.unrouted.drain(..) {
        routes.add_unrouted(&name, r);
    }
    for (prefix, r) in built.families.drain(..) {
        routes.add_family(&prefix, r);
    }
    let private = &config.private_side;
    let secret = private.secret.resolve(PRIVATE_SECRET_ENV)?;
    if let Some(url) = &private.webhook_url {
        let secret = secret.ok_or_else(|| {
            Error::Config(format!(
                "[private_side] webhook_url needs a secret: set {PRIVATE_SECRET_ENV} or private_side.secret_env / secret_file"
            ))
        })?;
        routes.add_unrouted(
            delivery::private::ROUTE,
            Arc::new(
                PrivateRoute::new(ctx.http.clone(), ctx.lean, url.clone(), secret).batching(
                    delivery::batch::Batching::new(private.batch_max, private.batch_linger_ms),
                ),
            ),
        );
    }
    tenant_routes(config, ctx, &mut routes)?;
    if let Some(r) = config.rbm.as_ref().and_then(|r| r.sms_route.as_ref()) {
        if routes.get(r).is_none() {
            return Err(Error::Config(format!(
                "rbm.sms_route names {r}, which is not configured"
            )));
        }
    }
    Ok(routes)
}

/// Each tenant's private side: a route of its own (`private:<name>`), to
/// its webhook, signed with its own secret, which it must name.
fn tenant_routes(config: &Config, ctx: &BuildContext, routes: &mut Routes) -> Result<()> {
    for t in &config.tenants {
        let Some(url) = &t.webhook_url else { continue };
        if t.secret.secret_env.is_none() && t.secret.secret_file.is_none() {
            return Err(Error::Config(format!(
                "tenant {} has a webhook_url but no secret_env or secret_file",
                t.name
            )));
        }
        // No default variable: an empty name resolves only from the file.
        let secret = t.secret.resolve("")?.ok_or_else(|| {
            Error::Config(format!(
                "tenant {}'s webhook secret is not set (its secret_env is empty or unset)",
                t.name
            ))
        })?;
        routes.add_unrouted(
            &delivery::private::tenant_route(&t.name),
            Arc::new(PrivateRoute::new(
                ctx.http.clone(),
                ctx.lean,
                url.clone(),
                secret,
            )),
        );
    }
    Ok(())
}

/// Tenants' service keys, by tenant name.
fn tenant_keys(
    config: &Config,
) -> Result<std::collections::HashMap<String, crate::envelope::keys::PublicKey>> {
    config
        .tenants
        .iter()
        .filter_map(|t| {
            t.service_public_key
                .as_deref()
                .map(|k| Ok((t.name.clone(), crate::envelope::keys::parse_public_key(k)?)))
        })
        .collect()
}

/// Builds the service on an open store.
pub fn build(
    config: &Config,
    store: Store,
    keys: Keyring,
    metrics: Arc<Metrics>,
) -> Result<Service> {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(config.delivery.request_timeout_secs))
        .connect_timeout(Duration::from_secs(5))
        .pool_max_idle_per_host(config.delivery.concurrency)
        .build()
        .map_err(|e| Error::Config(format!("HTTP client: {e}")))?;
    let region = address::region(&config.default_region);
    let ctx = BuildContext {
        http: &http,
        lean: delivery::lean::LeanOptions::of(&config.delivery),
        sms: &config.sms,
        region,
        store: &store,
        metrics: &metrics,
        signature_window_secs: config.delivery.signature_window_secs,
    };
    let mut built = channels(config, &ctx)?;
    // Physical channels belong to one node at a time (PostgreSQL leases).
    store.set_physical(built.physical.clone());
    let routes = Arc::new(routes(config, &ctx, &mut built)?);
    let callbacks = callback_worker(config, &store, &http, &metrics, &mut built)?;
    let hold_notifier = hold_notifier(config, &http, &metrics, &mut built)?;
    let (pipeline, worker, dispatch) = wire(
        config,
        store,
        keys,
        metrics,
        routes,
        &mut built,
        Extras {
            status_callbacks: callbacks.is_some(),
            hold_notifier,
        },
    )?;
    Ok(Service {
        callbacks,
        pipeline,
        worker,
        dispatch,
        routers: built.routers,
        tasks: built.tasks,
        health: built.health,
    })
}

/// The status callback worker when its secret is set, woken by the status
/// path (an observer).
fn callback_worker(
    config: &Config,
    store: &Store,
    http: &reqwest::Client,
    metrics: &Arc<Metrics>,
    built: &mut Built,
) -> Result<Option<Arc<CallbackWorker>>> {
    let Some(secret) = config.callbacks.secret()? else {
        return Ok(None);
    };
    let wake = Arc::new(Wake::default());
    built.observers.push(wake.clone());
    Ok(Some(Arc::new(CallbackWorker {
        store: store.clone(),
        http: http.clone(),
        secret,
        max_attempts: config.callbacks.max_attempts,
        backoff: config.delivery.clone(),
        wake,
        metrics: metrics.clone(),
    })))
}

/// What the pipeline is wired with besides the channels' parts.
struct Extras {
    /// Whether status callbacks are on (the status path owes them).
    status_callbacks: bool,
    /// The operator's hold webhook, for the spam gate.
    hold_notifier: Option<hold_notify::HoldNotifier>,
}

/// The operator's hold webhook when `[review] notify_url` is set: the
/// notifier for the spam gate, its sending task among the service's tasks.
fn hold_notifier(
    config: &Config,
    http: &reqwest::Client,
    metrics: &Arc<Metrics>,
    built: &mut Built,
) -> Result<Option<hold_notify::HoldNotifier>> {
    let Some((url, secret)) = hold_notify::target(&config.review)? else {
        return Ok(None);
    };
    let (notifier, queue) = hold_notify::channel(metrics.clone());
    let (http, metrics) = (http.clone(), metrics.clone());
    built.tasks.push(Box::new(move |_pipeline, shutdown| {
        Box::pin(hold_notify::run(
            url, secret, http, metrics, queue, shutdown,
        ))
    }));
    Ok(Some(notifier))
}

/// The pipeline and the delivery worker over the built routes, with what
/// the channels gave them (the RCS agent, the owners of numbers, status
/// observers).
fn wire(
    config: &Config,
    store: Store,
    keys: Keyring,
    metrics: Arc<Metrics>,
    routes: Arc<Routes>,
    built: &mut Built,
    extras: Extras,
) -> Result<(Arc<Pipeline>, Arc<delivery::Worker>, DispatchRx)> {
    let Extras {
        status_callbacks,
        hold_notifier,
    } = extras;
    let interwork = Arc::new(Interwork::new(
        config.sms.clone(),
        config
            .rbm
            .as_ref()
            .map_or(channels::rbm::config::default_sms_segment_budget(), |r| {
                r.sms_segment_budget
            }),
        config
            .rbm
            .as_ref()
            .map(|r| Duration::from_secs(r.suggestion_ttl_secs)),
    ));
    let service_key = config
        .private_side
        .service_public_key
        .as_deref()
        .map(crate::envelope::keys::parse_public_key)
        .transpose()?;
    let mode = crate::pipeline::spam::ModeSwitch::for_data_dir(
        &config.classifier,
        &config.data_dir,
        store.scored_messages()?,
    );
    let spam = Arc::new(
        SpamGate::new(
            config.model.load(&config.data_dir)?,
            &config.classifier,
            store.clone(),
            metrics.clone(),
            mode,
        )?
        .with_hold_notifier(hold_notifier),
    );
    let mut observers: Vec<Arc<dyn StatusObserver>> = vec![spam.clone()];
    observers.append(&mut built.observers);
    let status = Arc::new(StatusPath::new(store.clone(), metrics.clone(), observers));
    let keys = Arc::new(KeyStore::new(&config.data_dir, keys));
    let (dispatch, dispatch_rx) = Dispatch::new();
    let notify = Arc::new(Notify::new());
    let pipeline = Arc::new(Pipeline {
        opt_outs: Arc::new(OptOutFilter::load(&store)?),
        store: store.clone(),
        keys: keys.clone(),
        sealer: Arc::default(),
        opener: Arc::default(),
        region: address::region(&config.default_region),
        default_from: config.generic.as_ref().and_then(|g| g.from.clone()),
        private_side: config.private_side.webhook_url.is_some(),
        service_key,
        routes: routes.clone(),
        spam,
        identities: inbound::IdentityCache::default(),
        owners: built.owners.take(),
        rcs: built.rcs.take(),
        interwork: interwork.clone(),
        handoff: Handoff::new(dispatch, notify.clone()),
        metrics: metrics.clone(),
        status: status.clone(),
        transit: Arc::new(crate::pipeline::privacy::Transit::new(&config.privacy)),
        status_callbacks,
        tenants: Arc::new(config.tenants()?),
        quotas: Default::default(),
        tenant_keys: tenant_keys(config)?,
    });
    let worker = Arc::new(delivery::Worker {
        store,
        keys,
        opener: pipeline.opener.clone(),
        routes,
        interwork,
        outcomes: status,
        metrics,
        config: config.delivery.clone(),
        notify,
    });
    Ok((pipeline, worker, dispatch_rx))
}

#[cfg(test)]
mod tests {
    //! The whole service's router, called without a socket (axum's testing
    //! example): the channels' webhook routers are merged in, absent
    //! channels answer 404 naming themselves, and the API asks for a key.
    #![allow(clippy::unwrap_used)]
    use axum::body::Body;
    use axum::http::{Request, StatusCode};
    use tower::ServiceExt;

    use super::*;
    use crate::http::ApiState;

    async fn call(app: &axum::Router, req: Request<Body>) -> (StatusCode, serde_json::Value) {
        let resp = app.clone().oneshot(req).await.unwrap();
        let status = resp.status();
        let body = axum::body::to_bytes(resp.into_body(), 1 << 20)
            .await
            .unwrap();
        (status, serde_json::from_slice(&body).unwrap_or_default())
    }

    #[tokio::test]
    async fn the_app_answers_without_a_socket() {
        let dir = crate::core::fs::test_dir("registry-app");
        let cfg = Config {
            data_dir: dir.clone(),
            ..Config::default()
        };
        let keys = Keyring::open_or_create(&dir).unwrap();
        let metrics = Arc::new(Metrics::new());
        let (store, _writer) = Store::open(
            &dir,
            cfg.store.synchronous,
            cfg.store.max_batch,
            1,
            metrics.clone(),
        )
        .unwrap();
        let service = build(&cfg, store, keys, metrics).unwrap();
        let p = service.pipeline.clone();
        let routers = service
            .routers
            .into_iter()
            .map(|make| make(p.clone()))
            .collect();
        let api = Arc::new(ApiState::new(
            p.clone(),
            service.health,
            cfg.data_dir.clone(),
        ));
        let app = crate::http::app(api.clone(), routers, &cfg.http);
        let admin = crate::http::admin::router(api);

        // The public listener: liveness only; the details are the admin plane's.
        let (status, health) =
            call(&app, Request::get("/healthz").body(Body::empty()).unwrap()).await;
        assert_eq!(
            (status, health),
            (StatusCode::OK, serde_json::json!({"status": "ok"}))
        );
        let (status, _) = call(&app, Request::get("/metrics").body(Body::empty()).unwrap()).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        let (status, health) = call(
            &admin,
            Request::get("/healthz").body(Body::empty()).unwrap(),
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(health["status"], "ok");
        assert!(
            health["modems"].is_object() && health["smpp"].is_object(),
            "{health}"
        );

        let (status, err) = call(
            &app,
            Request::post("/webhooks/twilio")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert_eq!(
            err["error"]["message"],
            "the twilio adapter is not configured"
        );

        let (status, _) = call(
            &app,
            Request::get("/v1/messages/x").body(Body::empty()).unwrap(),
        )
        .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        let (status, err) = call(&app, Request::get("/nowhere").body(Body::empty()).unwrap()).await;
        assert_eq!(
            (status, &err["error"]["message"]),
            (StatusCode::NOT_FOUND, &"no such route".into())
        );
        p.store.close();
    }
}
