//! Which channel an outbound message leaves on, chosen once, when it is
//! accepted:
//! * `sms`: never RCS; RCS content goes out as its SMS rendering;
//! * `rcs`: RBM only, never SMS; refused at once (400) when the capability
//!   check says the recipient cannot receive it;
//! * `auto` (the default): RBM when the recipient is capable of what the
//!   message needs (the RBM channel's cached capability check), else SMS.
//!   An RCS message that is not DELIVERED within `fallback_secs` is revoked
//!   and its SMS rendering queued on the SMS route, exactly once (the RBM
//!   channel's fallback task; the timer is committed with the message).
//!
//! The pipeline knows RBM only through [`RcsAgent`], which the RBM channel
//! implements, so the flow of a message does not depend on a channel.

use crate::core::BoxFuture;

use super::Pipeline;
use crate::core::error::{Error, Result};
use crate::delivery::interwork::as_rcs;
use crate::envelope::{Channel, Content};

/// A capability answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Capable {
    /// RCS with every feature the message needs.
    Yes,
    /// Not an RCS user, or lacking a feature.
    No,
    /// The check failed (RBM down, timeout): nothing is known.
    Unknown,
}

/// What the pipeline needs of an RCS agent.
pub trait RcsAgent: Send + Sync {
    /// Whether `to` can receive a message needing `required` features.
    fn capable<'a>(&'a self, to: &'a str, required: &'a [&'a str]) -> BoxFuture<'a, Capable>;
    /// The SMS route of fallbacks; `None` means the routing rules decide.
    fn sms_route(&self) -> Option<&str>;
    /// How long an `auto` message may wait for DELIVERED before its SMS fallback.
    fn fallback_secs(&self) -> u64;
}

/// The channel a request asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Requested {
    /// RCS when capable, else SMS (with fallback).
    Auto,
    /// SMS only.
    Sms,
    /// RCS only.
    Rcs,
}

impl Requested {
    /// Parses the API's `channel`.
    pub fn parse(s: Option<&str>) -> Result<Self> {
        match s {
            None | Some("auto") => Ok(Self::Auto),
            Some("sms") => Ok(Self::Sms),
            Some("rcs") => Ok(Self::Rcs),
            Some(_) => Err(Error::invalid("channel", "must be auto, sms or rcs")),
        }
    }
}

/// The outcome of the channel choice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// The channel the message leaves on first.
    pub channel: Channel,
    /// For RCS under `auto`: the SMS route of the fallback and when it is
    /// due (Unix ms), if an SMS route exists.
    pub fallback: Option<(String, i64)>,
}

impl Decision {
    /// SMS, no fallback.
    pub const SMS: Self = Self {
        channel: Channel::Sms,
        fallback: None,
    };
}

/// The channel column value.
pub fn channel_name(c: Channel) -> &'static str {
    match c {
        Channel::Sms => "sms",
        Channel::Rcs => "rcs",
    }
}

/// Chooses the channel of an outbound message to `to` from `from`.
pub async fn decide(
    p: &Pipeline,
    requested: Requested,
    content: &Content,
    from: &str,
    to: &str,
    now: i64,
) -> Result<Decision> {
    let rcs = match (requested, &p.rcs) {
        (Requested::Sms, _) | (Requested::Auto, None) => return Ok(Decision::SMS),
        (Requested::Rcs, None) => {
            return Err(Error::invalid(
                "channel",
                "RCS (RBM) is not configured on this gateway",
            ));
        }
        (_, Some(r)) => r,
    };
    let message = match as_rcs(content) {
        Ok(m) => m,
        Err(why) if requested == Requested::Rcs => {
            return Err(Error::invalid(
                "channel",
                format!("cannot send over RCS: {why}"),
            ));
        }
        Err(_) => return Ok(Decision::SMS),
    };
    let required = message.required_features();
    let capable = rcs.capable(to, &required).await;
    match (requested, capable) {
        (Requested::Rcs, Capable::No) => Err(Error::invalid(
            "to",
            "the recipient cannot receive this over RCS (capability check); use channel auto or sms",
        )),
        // Unknown under `rcs`: try, delivery retries; nothing else was asked for.
        (Requested::Rcs, _) => Ok(Decision {
            channel: Channel::Rcs,
            fallback: None,
        }),
        (_, Capable::Yes) => {
            let route = rcs
                .sms_route()
                .map(str::to_string)
                .or_else(|| p.routes.choose(from, to).map(str::to_string));
            let due = now + (rcs.fallback_secs() as i64) * 1000;
            Ok(Decision {
                channel: Channel::Rcs,
                fallback: route.map(|r| (r, due)),
            })
        }
        _ => Ok(Decision::SMS),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn channels_parse() {
        assert_eq!(Requested::parse(None).unwrap(), Requested::Auto);
        assert_eq!(Requested::parse(Some("rcs")).unwrap(), Requested::Rcs);
        assert!(Requested::parse(Some("mms")).is_err());
    }
}
