//! Twilio Programmable Messaging (`[twilio]`): the `twilio` route (REST
//! API), and the signed webhooks for inbound messages and status callbacks.
//! Wire formats are in `adapters::twilio`.

pub mod config;
pub mod route;
pub mod webhook;

use std::sync::Arc;

use super::{BuildContext, Built, ChannelConfig};
use crate::core::error::{Error, Result};
use config::{TWILIO_TOKEN_ENV, TwilioConfig};

/// The webhook paths, answered 404 when `[twilio]` is absent.
pub const PATHS: &[&str] = &["/webhooks/twilio", "/webhooks/twilio/status"];

impl ChannelConfig for TwilioConfig {
    fn build(&self, ctx: &BuildContext<'_>) -> Result<Built> {
        let token = self.auth_token.resolve(TWILIO_TOKEN_ENV)?.ok_or_else(|| {
            Error::Config(format!(
                "[twilio] needs an auth token: set {TWILIO_TOKEN_ENV} or twilio.secret_env / secret_file"
            ))
        })?;
        let public_url = self.public_url.trim_end_matches('/').to_string();
        let mut built = Built::default();
        built.routes.push((
            route::NAME.to_string(),
            Arc::new(route::TwilioRoute::new(
                ctx.http.clone(),
                self,
                token.clone(),
                &public_url,
                ctx.sms.clone(),
            )),
        ));
        built.router(move |pipeline| {
            webhook::router(Arc::new(webhook::Hook {
                pipeline,
                auth_token: token,
                public_url,
            }))
        });
        Ok(built)
    }
}
