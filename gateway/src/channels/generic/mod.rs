//! The generic HTTP SMSC (`[generic]`): a signed JSON POST per outbound
//! SMS (the `generic` route), and signed webhooks for inbound SMS and
//! delivery status.

pub mod config;
pub mod route;
pub mod webhook;

use std::sync::Arc;

use super::{BuildContext, Built, ChannelConfig};
use crate::core::error::{Error, Result};
use config::{GENERIC_SECRET_ENV, GenericConfig};

impl ChannelConfig for GenericConfig {
    fn build(&self, ctx: &BuildContext<'_>) -> Result<Built> {
        let secret = self.secret.resolve(GENERIC_SECRET_ENV)?.ok_or_else(|| {
            Error::Config(format!(
                "[generic] needs a secret: set {GENERIC_SECRET_ENV} or generic.secret_env / secret_file"
            ))
        })?;
        let mut built = Built::default();
        built.routes.push((
            route::NAME.to_string(),
            Arc::new(
                route::GenericRoute::new(
                    ctx.http.clone(),
                    ctx.lean,
                    self.url.clone(),
                    secret.clone(),
                    ctx.sms.clone(),
                )
                .batching(crate::delivery::batch::Batching::new(
                    self.batch_max,
                    self.batch_linger_ms,
                )),
            ),
        ));
        let window = ctx.signature_window_secs;
        built.router(move |pipeline| {
            webhook::router(Arc::new(webhook::Hook {
                pipeline,
                secret,
                window,
            }))
        });
        Ok(built)
    }
}

/// The webhook paths, answered 404 when `[generic]` is absent.
pub const PATHS: &[&str] = &["/webhooks/generic", "/webhooks/generic/status"];
