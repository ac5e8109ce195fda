//! Shared HTTP plumbing for routes and the private-side webhook: signed
//! POSTs and the mapping of HTTP answers to retry or give up.

use crate::core::clock;

/// The HTTP answer of a POST that reached the far end.
pub enum Answer {
    /// 2xx, with the (capped) body.
    Ok(Vec<u8>),
    /// Anything else, classified.
    Failed {
        /// True for 408, 425, 429 and 5xx: the far end's trouble, which passes.
        transient: bool,
        /// `HTTP <code>`.
        reason: String,
    },
}

/// The 2xx body of a signed POST, or what the attempt came to when there
/// was none: a retry for a transport failure or a passing refusal (408,
/// 425, 429, 5xx), given up for any other refusal.
pub fn accepted_body(answer: Result<Answer, String>) -> Result<Vec<u8>, super::route::SendOutcome> {
    use super::route::SendOutcome;
    match answer {
        Ok(Answer::Ok(body)) => Ok(body),
        Ok(Answer::Failed {
            transient: true,
            reason,
        })
        | Err(reason) => Err(SendOutcome::Retry(reason)),
        Ok(Answer::Failed {
            transient: false,
            reason,
        }) => Err(SendOutcome::Permanent(reason)),
    }
}

/// Largest answer body read from a far end; answers are metadata, at most
/// a result per message of a batch.
const MAX_ANSWER: usize = 1024 * 1024;

/// A route's far end: parsed once when the route is built instead of on
/// every POST (the parse was ~2 % of the CPU per message at high rates),
/// with the [lean client](super::lean) for a plain `http://` URL and the
/// shared reqwest client for anything else (https, credentials).
pub struct Endpoint {
    url: Result<reqwest::Url, String>,
    http: reqwest::Client,
    lean: Option<super::lean::LeanClient>,
}

impl Endpoint {
    /// Parses `url`; a bad one fails each send as a retry, as it did when
    /// every send parsed it (the config checks catch it before).
    pub fn new(http: reqwest::Client, url: &str, lean: super::lean::LeanOptions) -> Self {
        Self {
            url: reqwest::Url::parse(url).map_err(|_| "invalid URL".to_string()),
            http,
            lean: super::lean::LeanClient::new(url, MAX_ANSWER, lean),
        }
    }

    /// [`post_signed_keyed`] to this far end.
    pub async fn post_signed(
        &self,
        secret: &[u8],
        body: Vec<u8>,
        idempotency_key: Option<&str>,
    ) -> Result<Answer, String> {
        let Some(lean) = &self.lean else {
            let url = self.url.clone()?;
            return post_signed_keyed(&self.http, url, secret, body, idempotency_key).await;
        };
        let sig = adapters::signing::sign(secret, clock::now_secs(), &body);
        lean.post(&sig, idempotency_key, body).await
    }
}

/// POSTs a JSON body signed with [`adapters::signing`]. `Err` is a transport
/// failure (refused, timeout), always worth a retry.
pub async fn post_signed(
    http: &reqwest::Client,
    url: impl reqwest::IntoUrl,
    secret: &[u8],
    body: Vec<u8>,
    attempt_id: &str,
) -> Result<Answer, String> {
    post_signed_keyed(http, url, secret, body, Some(attempt_id)).await
}

/// [`post_signed`] with the `Idempotency-Key` header optional: a batch has
/// none of its own (each message in it carries its attempt id).
pub async fn post_signed_keyed(
    http: &reqwest::Client,
    url: impl reqwest::IntoUrl,
    secret: &[u8],
    body: Vec<u8>,
    idempotency_key: Option<&str>,
) -> Result<Answer, String> {
    let sig = adapters::signing::sign(secret, clock::now_secs(), &body);
    let mut req = http
        .post(url)
        .header("content-type", "application/json")
        .header(adapters::signing::SIGNATURE_HEADER, sig);
    if let Some(key) = idempotency_key {
        req = req.header("idempotency-key", key);
    }
    let resp = req.body(body).send().await.map_err(|e| describe(&e))?;
    Ok(classify(resp).await)
}

/// Whether an HTTP status code stands for a passing failure (408, 425,
/// 429, 5xx) rather than a refusal; the one rule for a whole answer and for
/// a batch's per-message codes.
pub fn is_transient(code: u16) -> bool {
    code >= 500 || matches!(code, 408 | 425 | 429)
}

/// Turns a response into an [`Answer`].
pub async fn classify(resp: reqwest::Response) -> Answer {
    let status = resp.status();
    if status.is_success() {
        let bytes = resp.bytes().await.map(|b| b.to_vec()).unwrap_or_default();
        return Answer::Ok(if bytes.len() > MAX_ANSWER {
            Vec::new()
        } else {
            bytes
        });
    }
    Answer::Failed {
        transient: is_transient(status.as_u16()),
        reason: format!("HTTP {}", status.as_u16()),
    }
}

/// A transport error without the URL or anything else reqwest may embed.
pub fn describe(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        "timeout".into()
    } else if e.is_connect() {
        "connection refused or unreachable".into()
    } else {
        "transport error".into()
    }
}

/// Reads a response's status and (capped) body.
pub async fn read_answer(resp: reqwest::Response) -> (u16, Vec<u8>) {
    const MAX: usize = 64 * 1024;
    let status = resp.status().as_u16();
    let body = resp.bytes().await.map(|b| b.to_vec()).unwrap_or_default();
    (status, if body.len() > MAX { Vec::new() } else { body })
}
