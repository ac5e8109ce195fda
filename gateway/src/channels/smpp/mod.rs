//! SMPP on both sides of the gateway.
//!
//! * [`client`]: ESME binds to carriers' SMSCs. Each `[[smpp.client]]`
//!   entry is a route `smpp:<name>` with one or more binds (TCP, optional
//!   TLS), each a supervised task that connects, binds, keeps the link
//!   alive with `enquire_link`, and reconnects with backoff. The route's
//!   `send` submits the parts of one message over a ready bind within its
//!   window and returns when every `submit_sm_resp` arrived (or timed out).
//!   `deliver_sm` brings inbound messages (reassembled, committed before
//!   `deliver_sm_resp`) and delivery receipts (mapped back to the message
//!   through the SMSC's ids of its parts).
//! * [`server`]: SMS applications bind to the gateway as if it were their
//!   SMSC (TCP or TLS). `submit_sm` goes through the same checks as
//!   `POST /v1/messages` (opt-out, spam gate, sealing, durable commit)
//!   before `submit_sm_resp`.
//! * [`outgoing`]: `deliver_sm` to server clients over a window: inbound
//!   messages to the numbers they own ([`owners`]), from the durable
//!   delivery queue (the clients are the route family
//!   `smpp-client:<system_id>`, so the delivery worker treats them like any
//!   route), and receipts once a submitted message's status is final (the
//!   status path tells the receipt sender).
//! * [`session`]: one async session engine for both sides (framing,
//!   sequence numbers, responses matched to requests, keep-alive).
//!
//! The PDU codec is the `rusmpp` crate's; the session engine is our own
//! (see the README's SMPP section for why). Text never reaches a log line:
//! rusmpp's own `tracing` feature, which logs whole PDUs, stays off, and
//! nothing here formats a PDU with `Debug`.

pub mod client;
pub mod config;
pub mod credentials;
mod outgoing;
pub mod owners;
mod parts;
mod references;
pub mod server;
pub mod session;
pub mod wire;

use std::sync::Arc;

use tokio_util::sync::CancellationToken;

pub use config::{BindType, SmppClientConfig, SmppConfig, SmppServerConfig, Version};

use super::{BuildContext, Built, ChannelConfig};
use crate::core::error::{Error, Result};
use crate::delivery::SMPP_CLIENTS;
use crate::delivery::route::{OutboundSms, Route, SendFuture, SendOutcome};
use crate::envelope::Content;
use crate::pipeline::Pipeline;
use crate::pipeline::inbound::OwnerLookup;

/// The SMPP side's health: per client route its binds (up or down, since
/// when, last error), and the server's clients (bound or not).
struct SmppHealth {
    clients: Vec<Arc<client::SmppRoute>>,
    server: Option<Arc<server::Server>>,
}

impl super::Health for SmppHealth {
    fn health_json(&self) -> serde_json::Value {
        let clients: serde_json::Map<String, serde_json::Value> = self
            .clients
            .iter()
            .map(|r| (r.name().to_string(), r.health_json()))
            .collect();
        serde_json::json!({
            "clients": clients,
            "server": self.server.as_ref().map(|s| s.health_json()),
        })
    }
}

/// The server's clients as a route family `smpp-client:<system_id>`: one
/// attempt of an inbound message to a client is `deliver_sm` per part over
/// one of its receiving binds (the opened text is encoded here and not
/// kept).
struct ServerClients {
    server: Arc<server::Server>,
    sms: adapters::sms::SmsOptions,
}

impl Route for ServerClients {
    fn send<'a>(&'a self, msg: OutboundSms<'a>) -> SendFuture<'a> {
        Box::pin(async move {
            let system_id = msg.route.strip_prefix(SMPP_CLIENTS).unwrap_or(msg.route);
            if let Some(Content::Data { .. }) = msg.content {
                // deliver_sm towards server clients carries text only.
                return SendOutcome::Permanent(
                    "8-bit data is not delivered to SMPP server clients".into(),
                );
            }
            outgoing::deliver_inbound(
                &self.sms,
                &self.server,
                system_id,
                msg.id,
                &msg.header.from,
                &msg.header.to,
                msg.text(),
            )
            .await
        })
    }
}

/// The server client that owns a recipient: inbound messages to it go to
/// that client as `deliver_sm`.
impl OwnerLookup for server::Server {
    fn owner_of(&self, to: &str) -> Option<String> {
        server::Server::owner_of(self, to)
    }
}

impl SmppClientConfig {
    /// The bind password, checked against SMPP's limits.
    fn password(&self) -> Result<String> {
        let env = self.password_env();
        let pw = self.password.resolve(&env)?.ok_or_else(|| {
            Error::Config(format!(
                "smpp client {:?} needs a password: set {env} or secret_env / secret_file",
                self.name
            ))
        })?;
        let pw = String::from_utf8(pw).map_err(|_| {
            Error::Config(format!("smpp client {:?} password is not text", self.name))
        })?;
        if pw.len() > 8 {
            return Err(Error::Config(format!(
                "smpp client {:?} password is longer than SMPP's 8 characters",
                self.name
            )));
        }
        Ok(pw)
    }
}

/// `[smpp]`: one route per `[[smpp.client]]` with its binds, and the server
/// (a route family for its clients, the owners of their numbers, their
/// receipts). Without either, it only reports its (empty) health.
impl ChannelConfig for SmppConfig {
    fn build(&self, ctx: &BuildContext<'_>) -> Result<Built> {
        let mut built = Built::default();
        let mut routes = Vec::new();
        for c in &self.client {
            let pw = c.password()?;
            let route = Arc::new(client::SmppRoute::new(
                c,
                ctx.sms.clone(),
                ctx.store.clone(),
            )?);
            built.routes.push((c.route_name(), route.clone()));
            routes.push(route.clone());
            let cfg = c.clone();
            // A client bind is a physical channel: on a cluster only the
            // node holding its lease (`smpp:<name>`) binds to the SMSC and
            // sends on its route; the server below runs on every node.
            built.physical.push(c.route_name());
            built.task(move |pipeline, shutdown| async move {
                let name = cfg.route_name();
                crate::pipeline::lease::while_held(&pipeline, &name, &shutdown, |token| {
                    run_client(
                        pipeline.clone(),
                        route.clone(),
                        cfg.clone(),
                        pw.clone(),
                        token,
                    )
                })
                .await
            });
        }
        let server = match self.server.clone() {
            Some(s) => Some(Arc::new(server::Server::new(
                s,
                ctx.store,
                ctx.region,
                ctx.metrics.clone(),
            )?)),
            None => None,
        };
        if let Some(server) = &server {
            built.families.push((
                SMPP_CLIENTS.to_string(),
                Arc::new(ServerClients {
                    server: server.clone(),
                    sms: ctx.sms.clone(),
                }),
            ));
            built.owners = Some(server.clone());
            built.observers.push(server.receipts.clone());
            let server = server.clone();
            built.task(move |pipeline, shutdown| server::run(pipeline, server, shutdown));
        }
        built.health.push((
            "smpp",
            Arc::new(SmppHealth {
                clients: routes,
                server,
            }),
        ));
        Ok(built)
    }
}

/// One client route's binds, and the reload of its waiting parts, until
/// `shutdown`.
async fn run_client(
    pipeline: Arc<Pipeline>,
    route: Arc<client::SmppRoute>,
    cfg: SmppClientConfig,
    pw: String,
    shutdown: CancellationToken,
) {
    let parts = Arc::new(tokio::sync::Mutex::new(parts::Parts::new(
        pipeline.clone(),
        route.name().to_string(),
        cfg.number.clone().unwrap_or_default(),
        cfg.reassembly_timeout_secs,
    )));
    let mut set = tokio::task::JoinSet::new();
    {
        let (parts, route, pipeline) = (parts.clone(), route.clone(), pipeline.clone());
        set.spawn(async move { client::reload_parts(&pipeline, &route, &parts).await });
    }
    for b in 0..cfg.binds as usize {
        set.spawn(client::run_bind(
            pipeline.clone(),
            route.clone(),
            b,
            pw.clone(),
            parts.clone(),
            shutdown.clone(),
        ));
    }
    while set.join_next().await.is_some() {}
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use crate::app::config::Config;

    #[test]
    fn client_and_server_config() {
        let c = Config::from_toml(
            r#"
            [[smpp.client]]
            name = "acme"
            host = "smsc.example:2775"
            system_id = "gw1"
            concatenation = "sar"
            binds = 2
            [smpp.server]
            listen = "127.0.0.1:2775"
            "#,
        )
        .unwrap();
        c.validate().unwrap();
        let cl = &c.smpp.client[0];
        assert_eq!(cl.route_name(), "smpp:acme");
        assert_eq!(cl.password_env(), "GATEWAY_SMPP_ACME_PASSWORD");
        assert_eq!((cl.window, cl.binds), (10, 2));
        assert_eq!(cl.concatenation, adapters::smpp::Concatenation::Sar);
        assert_eq!(c.smpp.server.as_ref().unwrap().throughput, 50.0);
        let bad = Config::from_toml(
            "[[smpp.client]]\nname = \"A\"\nhost = \"x\"\nsystem_id = \"much-too-long-system-id\"\nwindow = 0",
        )
        .unwrap();
        let e = bad.validate().unwrap_err().to_string();
        assert!(
            e.contains("name")
                && e.contains("host")
                && e.contains("system_id")
                && e.contains("window"),
            "{e}"
        );
        assert!(Config::from_toml("[smpp.server]\nlisten = \"127.0.0.1:1\"\nwindw = 3").is_err());
        let half_tls = Config::from_toml(
            "[smpp.server]\nlisten = \"127.0.0.1:1\"\ntls_cert = \"c.pem\"\n[[smpp.client]]\nname = \"a\"\nhost = \"h:1\"\nsystem_id = \"s\"\ntls_ca = \"ca.pem\"",
        )
        .unwrap();
        let e = half_tls.validate().unwrap_err().to_string();
        assert!(
            e.contains("tls_key") && e.contains("tls_ca needs tls"),
            "{e}"
        );
    }
}
