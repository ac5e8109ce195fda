//! RCS: the content model, Google RCS Business Messaging (RBM), and the
//! carrier-level codecs (CPIM, IMDN, FT-HTTP, GSMA chatbot JSON), plus the
//! interworking rules between RCS and SMS.
//!
//! Everything here is sans-IO: JSON, XML and MIME text in, values out; the
//! caller passes `now` where time matters (JWT assertions, IMDN dates). The
//! gateway's `rcs` module does the HTTP (token endpoint, RBM REST API,
//! webhook) around these functions.
//!
//! * [`content`]: [`RcsMessage`] (text, rich card, carousel, file,
//!   suggestions) with the standards' limits, and [`UserMessage`];
//! * [`rbm`]: agentMessages bodies, capability / revoke URLs, the webhook
//!   (handshake, Pub/Sub push body, `X-Goog-Signature`), the OAuth2
//!   JWT-bearer assertion;
//! * [`cpim`] (RFC 3862) and [`imdn`] (RFC 5438): carrier interconnect;
//! * [`ft_http`]: `application/vnd.gsma.rcs-ft-http+xml`;
//! * [`chatbot`]: `application/vnd.gsma.botmessage.v1.0+json` and friends;
//! * [`render`]: RCS → SMS within a segment budget, SMS → RCS.

pub mod chatbot;
pub mod content;
pub mod cpim;
pub mod ft_http;
pub mod imdn;
pub mod rbm;
pub mod render;
mod xml;

pub use content::{
    Action, Body, Card, FileTransfer, Media, RcsMessage, RichCard, Suggestion, UserMessage,
};
