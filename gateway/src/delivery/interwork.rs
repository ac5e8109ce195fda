//! RCS and SMS interworking at the moment of sending: RCS content that
//! leaves on an SMS route goes as its SMS rendering (computed from the
//! opened content, never stored), and the numbered suggestions of that
//! rendering stay open for the conversation, so that a reply "2" maps back
//! to the suggestion's postback (the inbound pipeline asks
//! [`Interwork::map_sms_reply`]).
//!
//! What is kept in memory only: the open suggestions (postback data is
//! content and must not sit in a clear column; a restart forgets them, and
//! a later "2" goes through as text).

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use adapters::rcs::RcsMessage;
use adapters::rcs::render::{Numbered, RenderOptions};

use crate::envelope::{Channel, Content, Header};

/// Name of the RBM route (and the adapter name of inbound RBM messages).
pub const RCS_ROUTE: &str = "rbm";
/// Conversations with open suggestions kept at most.
const OPEN_SUGGESTIONS_MAX: usize = 100_000;

/// (local, remote) → the open numbered suggestions and when they expire.
type OpenSuggestions = HashMap<(String, String), (Vec<Numbered>, Instant)>;

/// The rendering options, and the suggestions still open for a reply.
pub struct Interwork {
    options: RenderOptions,
    /// `None` without `[rbm]`: nothing to map a reply back to.
    suggestion_ttl: Option<Duration>,
    open: Mutex<OpenSuggestions>,
}

impl Interwork {
    /// RCS content goes out as SMS within `max_segments`; with `[rbm]`
    /// (`suggestion_ttl`), numbered suggestions stay open that long.
    pub fn new(
        sms: adapters::sms::SmsOptions,
        max_segments: usize,
        suggestion_ttl: Option<Duration>,
    ) -> Self {
        Self {
            options: RenderOptions { sms, max_segments },
            suggestion_ttl,
            open: Mutex::new(HashMap::new()),
        }
    }

    /// The SMS options text is planned and encoded with.
    pub fn sms(&self) -> &adapters::sms::SmsOptions {
        &self.options.sms
    }

    /// The text `content` goes out as over SMS: RCS content's rendering, or the text.
    pub fn sms_text<'a>(&self, content: &'a Content) -> Cow<'a, str> {
        match content {
            Content::Rcs { message } => {
                Cow::Owned(adapters::rcs::render::to_sms(message, &self.options).text)
            }
            other => Cow::Borrowed(other.as_text()),
        }
    }

    /// What a message looks like to the route `route`: unchanged for RBM;
    /// for an SMS route, RCS content becomes its SMS rendering and a header
    /// sealed for RCS gets the SMS segment count. The rendering's numbered
    /// suggestions are remembered for the conversation (its local side is
    /// the message's sender, else `default_from`, the route's).
    pub fn for_route<'a>(
        &self,
        route: &str,
        default_from: Option<&str>,
        header: &'a Header,
        content: Content,
    ) -> (Cow<'a, Header>, Content) {
        if route == RCS_ROUTE {
            return (Cow::Borrowed(header), content);
        }
        let (content, text_changed) = match content {
            Content::Rcs { message } => {
                let r = adapters::rcs::render::to_sms(&message, &self.options);
                let local = if header.from.is_empty() {
                    default_from.unwrap_or("")
                } else {
                    header.from.as_str()
                };
                self.remember(local, &header.to, r.suggestions);
                (Content::text(r.text), true)
            }
            other => (other, false),
        };
        if header.channel == Channel::Sms && !text_changed {
            return (Cow::Borrowed(header), content);
        }
        let mut h = header.clone();
        let plan = adapters::sms::plan(content.as_text(), &self.options.sms);
        h.channel = Channel::Sms;
        h.segments = u32::try_from(plan.segments).unwrap_or(u32::MAX);
        h.encoding = plan.encoding.as_str().to_string();
        (Cow::Owned(h), content)
    }

    /// An inbound SMS that is just the number of a suggestion still open in
    /// this conversation becomes that suggestion's response (with its
    /// postback); anything else is left alone.
    pub fn map_sms_reply(&self, adapter: &str, from: &str, to: &str, content: Content) -> Content {
        if self.suggestion_ttl.is_none() || adapter == RCS_ROUTE {
            return content;
        }
        let Content::Text { text, media } = content else {
            return content;
        };
        if !media.is_empty() || text.len() > 8 {
            return Content::Text { text, media };
        }
        match self.take_reply(to, from, &text) {
            Some(hit) => {
                tracing::debug!(
                    adapter,
                    number = hit.number,
                    "SMS reply mapped to an open suggestion"
                );
                Content::RcsUser {
                    message: adapters::rcs::UserMessage::SuggestionResponse {
                        text: hit.text,
                        postback: hit.postback,
                    },
                }
            }
            None => Content::Text { text, media },
        }
    }

    fn remember(&self, local: &str, remote: &str, open: Vec<Numbered>) {
        let Some(ttl) = self.suggestion_ttl else {
            return;
        };
        let Ok(mut m) = self.open.lock() else {
            return;
        };
        let key = (local.to_string(), remote.to_string());
        if open.is_empty() {
            m.remove(&key);
            return;
        }
        if m.len() >= OPEN_SUGGESTIONS_MAX {
            let now = Instant::now();
            m.retain(|_, (_, until)| *until > now);
            if m.len() >= OPEN_SUGGESTIONS_MAX {
                m.clear();
            }
        }
        m.insert(key, (open, Instant::now() + ttl));
    }

    /// Takes the open suggestion a reply names, closing the conversation's
    /// suggestions (RCS chips disappear once one is used, too).
    fn take_reply(&self, local: &str, remote: &str, reply: &str) -> Option<Numbered> {
        let mut m = self.open.lock().ok()?;
        let key = (local.to_string(), remote.to_string());
        let (list, until) = m.get(&key)?;
        if *until <= Instant::now() {
            m.remove(&key);
            return None;
        }
        let hit = adapters::rcs::render::reply_to_suggestion(reply, list)?.clone();
        m.remove(&key);
        Some(hit)
    }
}

/// The RBM message a content is sent as, or why it cannot go over RCS.
pub fn as_rcs(content: &Content) -> std::result::Result<Cow<'_, RcsMessage>, String> {
    match content {
        Content::Rcs { message } => Ok(Cow::Borrowed(message)),
        Content::Text { text, media } if media.is_empty() => RcsMessage::text(text.clone())
            .map(Cow::Owned)
            .map_err(|e| e.to_string()),
        Content::Text { .. } => Err("media references cannot go over RBM".into()),
        Content::SmsPart { .. } | Content::Data { .. } | Content::RcsUser { .. } => {
            Err("this content cannot be sent by an agent".into())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_text_cannot_go_as_one_rcs_text() {
        assert!(as_rcs(&Content::text("a".repeat(3073))).is_err());
        assert!(as_rcs(&Content::text("hi")).is_ok());
    }
}
