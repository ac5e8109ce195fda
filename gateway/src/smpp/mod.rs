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
//!   delivery queue, and receipts once a submitted message's status is
//!   final.
//! * [`session`]: one async session engine for both sides (framing,
//!   sequence numbers, responses matched to requests, keep-alive).
//!
//! The PDU codec is the `rusmpp` crate's; the session engine is our own
//! (see the README's SMPP section for why). Text never reaches a log line:
//! rusmpp's own `tracing` feature, which logs whole PDUs, stays off, and
//! nothing here formats a PDU with `Debug`.

pub mod client;
pub mod credentials;
mod outgoing;
pub mod owners;
mod parts;
pub mod server;
pub mod session;
pub mod wire;

pub use crate::channels::smpp::config::{
    BindType, SmppClientConfig, SmppConfig, SmppServerConfig, Version,
};

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use crate::config::Config;

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

/// The configured SMPP side: client routes (added to the routing table at
/// start) and the server, with the tasks [`spawn_all`] starts.
#[derive(Default)]
pub struct Smpp {
    clients: Vec<(std::sync::Arc<client::SmppRoute>, String)>,
    server: Option<std::sync::Arc<server::Server>>,
}

impl Smpp {
    /// Resolves bind passwords, registers one route per `[[smpp.client]]`,
    /// and loads the server's TLS key pair and client table.
    pub fn new(
        config: &crate::config::Config,
        store: &crate::store::Store,
        routes: &mut crate::delivery::route::Routes,
        metrics: &std::sync::Arc<crate::core::metrics::Metrics>,
    ) -> crate::Result<Self> {
        let mut out = Self::default();
        for c in &config.smpp.client {
            let env = c.password_env();
            let pw = c.password.resolve(&env)?.ok_or_else(|| {
                crate::Error::Config(format!(
                    "smpp client {:?} needs a password: set {env} or secret_env / secret_file",
                    c.name
                ))
            })?;
            let pw = String::from_utf8(pw).map_err(|_| {
                crate::Error::Config(format!("smpp client {:?} password is not text", c.name))
            })?;
            if pw.len() > 8 {
                return Err(crate::Error::Config(format!(
                    "smpp client {:?} password is longer than SMPP's 8 characters",
                    c.name
                )));
            }
            let route = std::sync::Arc::new(client::SmppRoute::new(
                c,
                config.sms.clone(),
                store.clone(),
            )?);
            routes.add(&c.route_name(), route.clone());
            out.clients.push((route, pw));
        }
        out.server = match config.smpp.server.clone() {
            Some(s) => Some(std::sync::Arc::new(server::Server::new(
                s,
                store,
                crate::core::address::region(&config.default_region),
                metrics.clone(),
            )?)),
            None => None,
        };
        Ok(out)
    }

    /// The server client that owns `to` (a normalised recipient): inbound
    /// messages to it go to that client as `deliver_sm`. Always `None`
    /// without `[smpp.server]`: the numbers of the client table are then
    /// ignored and inbound goes to the private side.
    pub fn owner_of(&self, to: &str) -> Option<String> {
        self.server.as_ref()?.owner_of(to)
    }

    /// What the status path tells when a message's status moved, so that a
    /// receipt owed to a server client goes now rather than at the receipt
    /// sender's next pass; `None` without a server.
    pub fn receipt_observer(
        &self,
    ) -> Option<std::sync::Arc<dyn crate::pipeline::status::StatusObserver>> {
        let s = self.server.as_ref()?;
        Some(s.receipts.clone())
    }

    /// One delivery attempt of an inbound message to server client
    /// `system_id`: `deliver_sm` per part over one of its receiving binds.
    /// `text` is the opened body; it is encoded here and not kept.
    pub async fn deliver_to_client(
        &self,
        state: &crate::state::AppState,
        system_id: &str,
        msg_id: &str,
        header: &crate::envelope::Header,
        text: &str,
    ) -> crate::delivery::route::SendOutcome {
        let Some(server) = &self.server else {
            return crate::delivery::route::SendOutcome::Retry(
                "no SMPP server is configured ([smpp.server])".into(),
            );
        };
        outgoing::deliver_inbound(
            state,
            server,
            system_id,
            msg_id,
            &header.from,
            &header.to,
            text,
        )
        .await
    }

    /// Health: per client route its binds (up or down, since when, last
    /// error), and the server's clients (bound or not).
    pub fn health_json(&self) -> serde_json::Value {
        let clients: serde_json::Map<String, serde_json::Value> = self
            .clients
            .iter()
            .map(|(r, _)| (r.name().to_string(), r.health_json()))
            .collect();
        serde_json::json!({
            "clients": clients,
            "server": self.server.as_ref().map(|s| s.health_json()),
        })
    }
}

/// Starts every client bind and the server; the returned task ends when
/// all of them stopped after `shutdown`.
pub fn spawn_all(
    state: &crate::state::AppState,
    shutdown: tokio_util::sync::CancellationToken,
) -> tokio::task::JoinHandle<()> {
    let mut set = tokio::task::JoinSet::new();
    for (i, (route, pw)) in state.smpp.clients.iter().enumerate() {
        let Some(cfg) = state.config.smpp.client.get(i) else {
            continue;
        };
        let parts = std::sync::Arc::new(tokio::sync::Mutex::new(parts::Parts::new(
            state.clone(),
            route.name().to_string(),
            cfg.number.clone().unwrap_or_default(),
            cfg.reassembly_timeout_secs,
        )));
        {
            let (parts, route, state) = (parts.clone(), route.clone(), state.clone());
            set.spawn(async move { client::reload_parts(&state, &route, &parts).await });
        }
        for b in 0..cfg.binds as usize {
            set.spawn(client::run_bind(
                state.clone(),
                route.clone(),
                b,
                pw.clone(),
                parts.clone(),
                shutdown.clone(),
            ));
        }
    }
    if let Some(server) = &state.smpp.server {
        set.spawn(server::run(state.clone(), server.clone(), shutdown.clone()));
    }
    tokio::spawn(async move { while set.join_next().await.is_some() {} })
}
