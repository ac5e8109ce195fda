//! RCS: the content model, Google RCS Business Messaging (RBM), and the
//! carrier-level codecs (CPIM, IMDN, FT-HTTP, GSMA chatbot JSON), plus the
//! interworking rules between RCS and SMS.
//!
//! Everything here is sans-IO: JSON, XML and MIME text in, values out; the
//! caller passes `now` where time matters (JWT assertions, IMDN dates). The
//! gateway's `rcs` module does the HTTP (token endpoint, RBM REST API,
//! webhook) around these functions.
//!
//! * [`content`][]: [`RcsMessage`] (text, rich card, carousel, file,
//!   suggestions) with the standards' limits, and [`UserMessage`];
//! * [`rbm`][]: agentMessages bodies, capability / revoke URLs, the webhook
//!   (handshake, Pub/Sub push body, `X-Goog-Signature`), the OAuth2
//!   JWT-bearer assertion;
//! * [`cpim`][] (RFC 3862) and [`imdn`][] (RFC 5438): carrier interconnect;
//! * [`ft_http`][]: `application/vnd.gsma.rcs-ft-http+xml`;
//! * [`chatbot`][]: `application/vnd.gsma.botmessage.v1.0+json` and friends;
//! * [`render`][]: RCS → SMS within a segment budget, SMS → RCS.

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

/// Reads the file `fixtures/rcs/<rel>` (tests only).
#[cfg(test)]
#[allow(clippy::unwrap_used)]
pub(crate) fn fixture(rel: &str) -> Vec<u8> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fixtures/rcs")
        .join(rel);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Compares `actual` with the golden file `fixtures/rcs/<rel>`; with
/// `RCS_BLESS=1` in the environment, (re)writes the file instead.
#[cfg(test)]
#[allow(clippy::unwrap_used)]
pub(crate) fn golden(rel: &str, actual: &[u8]) {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fixtures/rcs")
        .join(rel);
    if std::env::var_os("RCS_BLESS").is_some() {
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let want = std::fs::read(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (run with RCS_BLESS=1 to create it)",
            path.display()
        )
    });
    assert_eq!(
        String::from_utf8_lossy(actual),
        String::from_utf8_lossy(&want),
        "golden file {rel} differs"
    );
}
