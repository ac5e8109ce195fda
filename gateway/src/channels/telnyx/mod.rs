//! Telnyx Messaging (`[telnyx]`): the `telnyx` route (REST API v2), and the
//! Ed25519-signed webhook for inbound messages and delivery status. Wire
//! formats are in `adapters::telnyx`.

pub mod config;
pub mod route;
pub mod webhook;

use std::sync::Arc;

use super::{BuildContext, Built, ChannelConfig};
use crate::core::error::{Error, Result};
use crate::core::secrets::text_secret;
use config::{TELNYX_KEY_ENV, TelnyxConfig};

/// The webhook path, answered 404 when `[telnyx]` is absent.
pub const PATHS: &[&str] = &["/webhooks/telnyx"];

impl ChannelConfig for TelnyxConfig {
    fn build(&self, ctx: &BuildContext<'_>) -> Result<Built> {
        let key = self.api_key.resolve(TELNYX_KEY_ENV)?.ok_or_else(|| {
            Error::Config(format!(
                "[telnyx] needs an API key: set {TELNYX_KEY_ENV} or telnyx.secret_env / secret_file"
            ))
        })?;
        let public = adapters::telnyx::public_key(&self.public_key).ok_or_else(|| {
            Error::Config("telnyx.public_key is not a base64 Ed25519 public key".into())
        })?;
        let mut built = Built::default();
        built.routes.push((
            route::NAME.to_string(),
            Arc::new(route::TelnyxRoute::new(
                ctx.http.clone(),
                self,
                text_secret(key, "the Telnyx API key")?,
                ctx.sms.clone(),
            )),
        ));
        let window = ctx.signature_window_secs;
        built.router(move |pipeline| {
            webhook::router(Arc::new(webhook::Hook {
                pipeline,
                key: public,
                window,
            }))
        });
        Ok(built)
    }
}
