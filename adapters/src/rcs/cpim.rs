//! CPIM messages (RFC 3862, `message/cpim`): how carriers interconnect RCS
//! chat over MSRP/SIP. Message headers (with namespaces, `NS: imdn
//! <urn:ietf:params:imdn>`), a blank line, the inner MIME part's headers, a
//! blank line, the body.
//!
//! The codec keeps headers in order and as written (a header may repeat,
//! e.g. `Subject` in two languages, and order can matter to signatures on
//! the far side), so `decode(encode(m)) == m`. Lines end with CRLF on
//! output; bare LF is accepted on input (some stacks write it). Header
//! names follow RFC 3862's `Name-char` set; a header may carry parameters
//! between the colon and the value (`Subject:;lang=fr …`). The inner part's
//! headers may be folded (RFC 5322); folds are joined with one space. When
//! the inner part names a `Content-Length`, the body is exactly that many
//! bytes and only line breaks may follow (MSRP stacks add one).
//!
//! Caps are enforced while parsing: at most [`MAX_HEADERS`] headers per
//! section, [`MAX_LINE`] bytes per line.

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::imdn::Imdn;
use crate::Error;

/// MIME type of a CPIM message.
pub const CONTENT_TYPE: &str = "message/cpim";
/// The IMDN header namespace (RFC 5438 §9.1).
pub const IMDN_NS: &str = "urn:ietf:params:imdn";
/// The namespace of unprefixed CPIM headers (RFC 3862 §3.3).
pub const CPIM_NS: &str = "urn:ietf:params:cpim-headers:";
/// Most headers in one section.
pub const MAX_HEADERS: usize = 64;
/// Longest header line, in bytes.
pub const MAX_LINE: usize = 4096;

/// One CPIM message header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// Namespace prefix (`imdn` in `imdn.Message-ID`), if any.
    pub prefix: Option<String>,
    /// Header name.
    pub name: String,
    /// Raw header parameters including the leading `;` (`;lang=fr`), or empty.
    pub params: String,
    /// The value, without surrounding whitespace.
    pub value: String,
}

/// A CPIM message. `Debug` shows header names only.
#[derive(Clone, PartialEq, Eq)]
pub struct CpimMessage {
    /// Message headers, in order.
    pub headers: Vec<Header>,
    /// Headers of the inner MIME part (name, value), in order.
    pub content_headers: Vec<(String, String)>,
    /// The inner part's body.
    pub body: Vec<u8>,
}

impl std::fmt::Debug for CpimMessage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<String> = self
            .headers
            .iter()
            .map(|h| match &h.prefix {
                Some(p) => format!("{p}.{}", h.name),
                None => h.name.clone(),
            })
            .collect();
        write!(
            f,
            "CpimMessage {{ headers: {names:?}, content_type: {:?}, body: {} bytes }}",
            self.content_type(),
            self.body.len()
        )
    }
}

/// An IMDN disposition a sender asks for (`imdn.Disposition-Notification`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Disposition {
    /// Report successful delivery.
    PositiveDelivery,
    /// Report failed delivery.
    NegativeDelivery,
    /// Report when it is displayed.
    Display,
    /// Report intermediate processing.
    Processing,
}

impl Disposition {
    /// The wire token.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::PositiveDelivery => "positive-delivery",
            Self::NegativeDelivery => "negative-delivery",
            Self::Display => "display",
            Self::Processing => "processing",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "positive-delivery" => Some(Self::PositiveDelivery),
            "negative-delivery" => Some(Self::NegativeDelivery),
            "display" => Some(Self::Display),
            "processing" => Some(Self::Processing),
            _ => None,
        }
    }
}

/// RFC 3862 `Name-char`: printable ASCII except `"`, `(`, `)`, `,`, `.`,
/// `/`, `:`, `;`, `<`, `=`, `>`, `?`, `@`, `[`, `\`, `]`, `{`, `}`.
fn is_name_char(b: u8) -> bool {
    matches!(b, 0x21 | 0x23..=0x27 | 0x2A..=0x2B | 0x2D | 0x5E..=0x60 | 0x7C | 0x7E)
        || b.is_ascii_alphanumeric()
}

fn is_name(s: &str) -> bool {
    !s.is_empty() && s.len() <= 128 && s.bytes().all(is_name_char)
}

fn is_value(s: &str) -> bool {
    !s.chars().any(|c| c.is_control() && c != '\t')
}

/// Splits `bytes` into lines (LF, optional CR before it), returning each
/// line and the offset after it.
struct Lines<'a> {
    bytes: &'a [u8],
    pos: usize,
    number: usize,
}

impl<'a> Lines<'a> {
    fn next_line(&mut self, section: &str) -> Result<Option<&'a str>, Error> {
        if self.pos >= self.bytes.len() {
            return Ok(None);
        }
        let rest = &self.bytes[self.pos..];
        let end = rest.iter().position(|&b| b == b'\n').ok_or_else(|| {
            Error::rcs(
                section,
                format!("line {} does not end with a line break", self.number + 1),
            )
        })?;
        self.number += 1;
        if end > MAX_LINE {
            return Err(Error::rcs(
                section,
                format!("line {} is longer than {MAX_LINE} bytes", self.number),
            ));
        }
        let line = &rest[..end];
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        self.pos += end + 1;
        std::str::from_utf8(line)
            .map(Some)
            .map_err(|_| Error::rcs(section, format!("line {} is not UTF-8", self.number)))
    }
}

fn trim_ws(s: &str) -> &str {
    s.trim_matches([' ', '\t'])
}

impl CpimMessage {
    /// Parses a CPIM message.
    pub fn decode(bytes: &[u8]) -> Result<Self, Error> {
        let mut lines = Lines {
            bytes,
            pos: 0,
            number: 0,
        };
        let mut headers = Vec::new();
        loop {
            let Some(line) = lines.next_line("cpim headers")? else {
                return Err(Error::rcs(
                    "cpim headers",
                    "end of input before the blank line",
                ));
            };
            if line.is_empty() {
                break;
            }
            if headers.len() >= MAX_HEADERS {
                return Err(Error::rcs(
                    "cpim headers",
                    format!("more than {MAX_HEADERS} headers"),
                ));
            }
            headers.push(parse_header(line, lines.number)?);
        }
        let mut content_headers: Vec<(String, String)> = Vec::new();
        loop {
            let Some(line) = lines.next_line("cpim content headers")? else {
                return Err(Error::rcs(
                    "cpim content headers",
                    "end of input before the blank line",
                ));
            };
            if line.is_empty() {
                break;
            }
            if line.starts_with([' ', '\t']) {
                let Some(last) = content_headers.last_mut() else {
                    return Err(Error::rcs(
                        "cpim content headers",
                        format!("line {} continues no header", lines.number),
                    ));
                };
                let more = trim_ws(line);
                if !is_value(more) {
                    return Err(Error::rcs(
                        "cpim content headers",
                        format!("line {} has control characters", lines.number),
                    ));
                }
                if !more.is_empty() {
                    if !last.1.is_empty() {
                        last.1.push(' ');
                    }
                    last.1.push_str(more);
                }
                if last.1.len() > MAX_LINE {
                    return Err(Error::rcs(
                        "cpim content headers",
                        format!("header at line {} is too long", lines.number),
                    ));
                }
                continue;
            }
            if content_headers.len() >= MAX_HEADERS {
                return Err(Error::rcs(
                    "cpim content headers",
                    format!("more than {MAX_HEADERS} headers"),
                ));
            }
            let (name, value) = line.split_once(':').ok_or_else(|| {
                Error::rcs(
                    "cpim content headers",
                    format!("line {} has no colon", lines.number),
                )
            })?;
            let valid = !name.is_empty()
                && name.len() <= 128
                && name.bytes().all(|b| b.is_ascii_graphic() && b != b':');
            let value = trim_ws(value);
            if !valid || !is_value(value) {
                return Err(Error::rcs(
                    "cpim content headers",
                    format!("line {} is not a MIME header", lines.number),
                ));
            }
            content_headers.push((name.to_string(), value.to_string()));
        }
        let rest = &bytes[lines.pos.min(bytes.len())..];
        let length = content_headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
            .map(|(_, v)| v.as_str());
        let body = match length {
            None => rest.to_vec(),
            Some(v) => {
                let n: usize = v
                    .parse()
                    .map_err(|_| Error::rcs("cpim Content-Length", "is not a number"))?;
                if n > rest.len() {
                    return Err(Error::rcs("cpim Content-Length", "is larger than the body"));
                }
                if !rest[n..]
                    .iter()
                    .all(|b| matches!(b, b'\r' | b'\n' | b' ' | b'\t'))
                {
                    return Err(Error::rcs(
                        "cpim Content-Length",
                        "is smaller than the body",
                    ));
                }
                rest[..n].to_vec()
            }
        };
        Ok(Self {
            headers,
            content_headers,
            body,
        })
    }

    /// Writes the message with CRLF line ends.
    pub fn encode(&self, out: &mut Vec<u8>) {
        for h in &self.headers {
            if let Some(p) = &h.prefix {
                out.extend_from_slice(p.as_bytes());
                out.push(b'.');
            }
            out.extend_from_slice(h.name.as_bytes());
            out.push(b':');
            out.extend_from_slice(h.params.as_bytes());
            out.push(b' ');
            out.extend_from_slice(h.value.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b"\r\n");
        for (n, v) in &self.content_headers {
            out.extend_from_slice(n.as_bytes());
            out.extend_from_slice(b": ");
            out.extend_from_slice(v.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(&self.body);
    }

    /// The encoded message.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut v = Vec::new();
        self.encode(&mut v);
        v
    }

    /// The declared namespaces: (prefix, URN) from every `NS` header.
    pub fn namespaces(&self) -> Vec<(&str, &str)> {
        self.headers
            .iter()
            .filter(|h| h.prefix.is_none() && h.name.eq_ignore_ascii_case("NS"))
            .filter_map(|h| {
                let (prefix, rest) = h.value.split_once(' ')?;
                let urn = rest.trim().strip_prefix('<')?.strip_suffix('>')?;
                Some((prefix.trim(), urn))
            })
            .collect()
    }

    /// The first header `name` in namespace `ns` (`None` = the default CPIM
    /// namespace, i.e. unprefixed). Names compare case-insensitively.
    pub fn header(&self, ns: Option<&str>, name: &str) -> Option<&str> {
        let prefix = match ns {
            None => None,
            Some(urn) => Some(self.namespaces().into_iter().find(|(_, u)| *u == urn)?.0),
        };
        self.headers
            .iter()
            .find(|h| h.prefix.as_deref() == prefix && h.name.eq_ignore_ascii_case(name))
            .map(|h| h.value.as_str())
    }

    /// The inner part's header `name` (case-insensitive).
    pub fn content_header(&self, name: &str) -> Option<&str> {
        self.content_headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The inner part's MIME type without parameters, lower-cased.
    pub fn content_type(&self) -> Option<String> {
        self.content_header("content-type").map(|v| {
            v.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        })
    }

    /// The URI inside `From` (`Alice <im:alice@example.com>` → `im:alice@example.com`).
    pub fn from_uri(&self) -> Option<&str> {
        self.header(None, "From").and_then(angle_uri)
    }

    /// The URI inside `To`.
    pub fn to_uri(&self) -> Option<&str> {
        self.header(None, "To").and_then(angle_uri)
    }

    /// `DateTime`, parsed.
    pub fn datetime(&self) -> Option<OffsetDateTime> {
        self.header(None, "DateTime")
            .and_then(|v| OffsetDateTime::parse(v, &Rfc3339).ok())
    }

    /// `imdn.Message-ID`.
    pub fn imdn_message_id(&self) -> Option<&str> {
        self.header(Some(IMDN_NS), "Message-ID")
    }

    /// The notifications asked for with `imdn.Disposition-Notification`
    /// (unknown tokens are ignored, as RFC 5438 allows extensions).
    pub fn disposition_notification(&self) -> Vec<Disposition> {
        self.header(Some(IMDN_NS), "Disposition-Notification")
            .map(|v| v.split(',').filter_map(Disposition::parse).collect())
            .unwrap_or_default()
    }

    /// A chat message with an IMDN request (the shape of rcsjta
    /// `ChatUtils.buildCpimMessageWithImdn`).
    pub fn chat(c: &Chat<'_>) -> Result<Self, Error> {
        let mut headers = vec![
            hdr(None, "From", &format!("<{}>", uri("cpim From", c.from)?)),
            hdr(None, "To", &format!("<{}>", uri("cpim To", c.to)?)),
            hdr(None, "NS", &format!("imdn <{IMDN_NS}>")),
            hdr(
                Some("imdn"),
                "Message-ID",
                id("imdn.Message-ID", c.message_id)?,
            ),
            hdr(None, "DateTime", &rfc3339(c.datetime)?),
        ];
        if !c.dispositions.is_empty() {
            let list: Vec<&str> = c.dispositions.iter().map(|d| d.as_str()).collect();
            headers.push(hdr(
                Some("imdn"),
                "Disposition-Notification",
                &list.join(", "),
            ));
        }
        if c.content_type.is_empty() || !is_value(c.content_type) || c.content_type.len() > 255 {
            return Err(Error::rcs("cpim Content-Type", "must be a MIME type"));
        }
        Ok(Self {
            headers,
            content_headers: vec![
                ("Content-Type".into(), c.content_type.to_string()),
                ("Content-Length".into(), c.body.len().to_string()),
            ],
            body: c.body.to_vec(),
        })
    }

    /// A delivery or display notification for a received message: a CPIM
    /// message whose inner part is the IMDN XML (`message/imdn+xml`,
    /// `Content-Disposition: notification`), RFC 5438 §7.2.1.1.
    pub fn notification(
        from: &str,
        to: &str,
        message_id: &str,
        datetime: OffsetDateTime,
        imdn: &Imdn,
    ) -> Result<Self, Error> {
        let xml = imdn.to_xml()?;
        Ok(Self {
            headers: vec![
                hdr(None, "From", &format!("<{}>", uri("cpim From", from)?)),
                hdr(None, "To", &format!("<{}>", uri("cpim To", to)?)),
                hdr(None, "NS", &format!("imdn <{IMDN_NS}>")),
                hdr(
                    Some("imdn"),
                    "Message-ID",
                    id("imdn.Message-ID", message_id)?,
                ),
                hdr(None, "DateTime", &rfc3339(datetime)?),
            ],
            content_headers: vec![
                (
                    "Content-Type".into(),
                    format!("{}; charset=utf-8", super::imdn::CONTENT_TYPE),
                ),
                ("Content-Disposition".into(), "notification".into()),
                ("Content-Length".into(), xml.len().to_string()),
            ],
            body: xml,
        })
    }
}

/// What [`CpimMessage::chat`] needs.
pub struct Chat<'a> {
    /// Sender URI (`sip:+14155550100@ims.example` or `tel:+1…`).
    pub from: &'a str,
    /// Recipient URI.
    pub to: &'a str,
    /// `imdn.Message-ID`: unique per message, IMDNs refer to it.
    pub message_id: &'a str,
    /// `DateTime`.
    pub datetime: OffsetDateTime,
    /// Notifications asked for.
    pub dispositions: &'a [Disposition],
    /// Inner MIME type (`text/plain;charset=UTF-8`, a chatbot JSON type, FT-HTTP XML).
    pub content_type: &'a str,
    /// Inner body.
    pub body: &'a [u8],
}

fn hdr(prefix: Option<&str>, name: &str, value: &str) -> Header {
    Header {
        prefix: prefix.map(str::to_string),
        name: name.to_string(),
        params: String::new(),
        value: value.to_string(),
    }
}

fn uri<'a>(field: &str, u: &'a str) -> Result<&'a str, Error> {
    if u.is_empty()
        || u.len() > 512
        || !u.contains(':')
        || u.chars()
            .any(|c| c.is_whitespace() || c.is_control() || c == '<' || c == '>')
    {
        return Err(Error::rcs(
            field,
            "must be a URI like sip:+14155550100@ims.example",
        ));
    }
    Ok(u)
}

fn id<'a>(field: &str, s: &'a str) -> Result<&'a str, Error> {
    if s.is_empty() || s.len() > 128 || !s.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(Error::rcs(
            field,
            "must be 1 to 128 printable ASCII characters",
        ));
    }
    Ok(s)
}

fn rfc3339(t: OffsetDateTime) -> Result<String, Error> {
    t.format(&Rfc3339)
        .map_err(|_| Error::rcs("cpim DateTime", "cannot be written as RFC 3339"))
}

fn angle_uri(v: &str) -> Option<&str> {
    let start = v.find('<')?;
    let end = v[start..].find('>')? + start;
    Some(&v[start + 1..end])
}

fn parse_header(line: &str, number: usize) -> Result<Header, Error> {
    let bad = |why: &str| Error::rcs("cpim headers", format!("line {number}: {why}"));
    let (full_name, rest) = line.split_once(':').ok_or_else(|| bad("no colon"))?;
    let (prefix, name) = match full_name.split_once('.') {
        Some((p, n)) => (Some(p), n),
        None => (None, full_name),
    };
    if !is_name(name) || prefix.is_some_and(|p| !is_name(p)) {
        return Err(bad("not a header name"));
    }
    let (params, value) = if rest.starts_with(';') {
        match rest.find(' ') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, ""),
        }
    } else {
        ("", rest)
    };
    let value = trim_ws(value);
    if !is_value(value) || !is_value(params) || params.contains(' ') {
        return Err(bad("control characters in the value"));
    }
    Ok(Header {
        prefix: prefix.map(str::to_string),
        name: name.to_string(),
        params: params.to_string(),
        value: value.to_string(),
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn fixture(name: &str) -> Vec<u8> {
        crate::rcs::fixture(&format!("cpim/{name}"))
    }

    #[test]
    fn rfc3862_example_round_trips() {
        let raw = fixture("rfc3862_example.txt");
        let m = CpimMessage::decode(&raw).unwrap();
        assert_eq!(m.from_uri(), Some("im:piglet@100akerwood.com"));
        assert_eq!(m.to_uri(), Some("im:eeyore@100akerwood.com"));
        assert_eq!(
            m.namespaces(),
            [("MyFeatures", "mid:MessageFeatures@id.foo.com")]
        );
        assert_eq!(
            m.header(Some("mid:MessageFeatures@id.foo.com"), "VitalMessageOption"),
            Some("Confirmation-requested")
        );
        let subjects: Vec<_> = m.headers.iter().filter(|h| h.name == "Subject").collect();
        assert_eq!(subjects.len(), 2);
        assert_eq!(subjects[1].params, ";lang=fr");
        assert_eq!(m.content_type().as_deref(), Some("text/xml"));
        assert!(m.datetime().is_some());
        assert!(m.body.starts_with(b"<body>"));
        let again = CpimMessage::decode(&m.to_bytes()).unwrap();
        assert_eq!(again, m);
        // Written with CRLF, the fixture (LF) and ours parse the same.
        assert!(m.to_bytes().windows(2).any(|w| w == b"\r\n"));
    }

    #[test]
    fn rfc5438_chat_with_imdn_request() {
        let raw = fixture("rfc5438_chat.txt");
        let m = CpimMessage::decode(&raw).unwrap();
        assert_eq!(m.imdn_message_id(), Some("34jk324j"));
        assert_eq!(
            m.disposition_notification(),
            [Disposition::PositiveDelivery, Disposition::Display]
        );
        assert_eq!(m.body, b"Hello World");
        assert_eq!(CpimMessage::decode(&m.to_bytes()).unwrap(), m);
        assert!(!format!("{m:?}").contains("Hello"));
    }

    #[test]
    fn generated_chat_matches_the_golden_file() {
        let t = OffsetDateTime::parse("2024-06-22T08:46:11Z", &Rfc3339).unwrap();
        let m = CpimMessage::chat(&Chat {
            from: "sip:+14155550100@ims.example",
            to: "sip:+14155550101@ims.example",
            message_id: "Msg-0001",
            datetime: t,
            dispositions: &[Disposition::PositiveDelivery, Disposition::Display],
            content_type: "text/plain;charset=UTF-8",
            body: "Grüße".as_bytes(),
        })
        .unwrap();
        let golden = fixture("generated_chat.txt");
        assert_eq!(
            String::from_utf8_lossy(&m.to_bytes()),
            String::from_utf8_lossy(&golden)
        );
        assert_eq!(CpimMessage::decode(&golden).unwrap(), m);
        assert!(
            CpimMessage::chat(&Chat {
                from: "sip:a@b\r\nX: y",
                ..Chat {
                    from: "",
                    to: "sip:b@c",
                    message_id: "m",
                    datetime: t,
                    dispositions: &[],
                    content_type: "text/plain",
                    body: b"",
                }
            })
            .is_err()
        );
    }

    #[test]
    fn malformed_input_is_refused_with_a_reason() {
        for (raw, want) in [
            (&b"From: <a:b>\r\n"[..], "cpim headers"),
            (b"From <a:b>\r\n\r\n\r\n", "cpim headers"),
            (b"Fr om: <a:b>\r\n\r\n\r\n", "cpim headers"),
            (
                b"From: <a:b>\r\n\r\nContent-Length: 9\r\n\r\nshort",
                "cpim Content-Length",
            ),
            (
                b"From: <a:b>\r\n\r\nContent-Length: 1\r\n\r\nlonger",
                "cpim Content-Length",
            ),
            (
                b"From: <a:b>\r\n\r\n continued\r\n\r\n",
                "cpim content headers",
            ),
            (b"From: a\x01b\r\n\r\n\r\n", "cpim headers"),
            // Found by the fuzzer: a control character in a folded line.
            (
                b"From: <a:b>\r\n\r\nX: y\r\n z\x00\r\n\r\n",
                "cpim content headers",
            ),
        ] {
            match CpimMessage::decode(raw) {
                Err(Error::Rcs { field, .. }) => assert_eq!(field, want),
                other => panic!("{other:?}"),
            }
        }
        let many = "X: y\r\n".repeat(MAX_HEADERS + 1) + "\r\n\r\n";
        assert!(CpimMessage::decode(many.as_bytes()).is_err());
    }

    #[test]
    fn folded_content_headers_are_joined() {
        let m = CpimMessage::decode(
            b"From: <im:a@b>\n\nContent-Type: text/plain;\n charset=utf-8\n\nhi",
        )
        .unwrap();
        assert_eq!(
            m.content_header("content-type"),
            Some("text/plain; charset=utf-8")
        );
        assert_eq!(CpimMessage::decode(&m.to_bytes()).unwrap(), m);
    }
}
