//! IMDN notifications (RFC 5438, `message/imdn+xml`): the delivery,
//! display and processing reports a recipient's client sends about a CPIM
//! message (the request rides in `imdn.Disposition-Notification`, see
//! [`super::cpim`]).
//!
//! ```xml
//! <?xml version="1.0" encoding="UTF-8"?>
//! <imdn xmlns="urn:ietf:params:xml:ns:imdn">
//!  <message-id>34jk324j</message-id>
//!  <datetime>2008-04-04T12:16:49-05:00</datetime>
//!  <delivery-notification><status><delivered/></status></delivery-notification>
//! </imdn>
//! ```
//!
//! Parsed with `quick-xml` (namespace-aware: an element in another
//! namespace is an extension and ignored, as RFC 5438 §8 requires).
//! Statuses are checked against their notification: `delivered` belongs to
//! delivery, `displayed` to display, `processed`/`stored` to processing;
//! `failed` to delivery; `forbidden` and `error` to all three.

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::xml::{self, esc};
use crate::Error;

/// MIME type of an IMDN document.
pub const CONTENT_TYPE: &str = "message/imdn+xml";
/// The XML namespace.
pub const NS: &str = "urn:ietf:params:xml:ns:imdn";

/// Which report this is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `<delivery-notification>`.
    Delivery,
    /// `<display-notification>`.
    Display,
    /// `<processing-notification>`.
    Processing,
}

impl Kind {
    fn element(self) -> &'static str {
        match self {
            Self::Delivery => "delivery-notification",
            Self::Display => "display-notification",
            Self::Processing => "processing-notification",
        }
    }
}

/// What happened to the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Delivered to the recipient's device.
    Delivered,
    /// Shown to the user.
    Displayed,
    /// Handled by an intermediary.
    Processed,
    /// Stored by an intermediary for later delivery.
    Stored,
    /// Delivery failed.
    Failed,
    /// The recipient's policy refused the notification or message.
    Forbidden,
    /// Something else went wrong.
    Error,
}

impl Status {
    fn element(self) -> &'static str {
        match self {
            Self::Delivered => "delivered",
            Self::Displayed => "displayed",
            Self::Processed => "processed",
            Self::Stored => "stored",
            Self::Failed => "failed",
            Self::Forbidden => "forbidden",
            Self::Error => "error",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "delivered" => Self::Delivered,
            "displayed" => Self::Displayed,
            "processed" => Self::Processed,
            "stored" => Self::Stored,
            "failed" => Self::Failed,
            "forbidden" => Self::Forbidden,
            "error" => Self::Error,
            _ => return None,
        })
    }

    fn fits(self, kind: Kind) -> bool {
        matches!(
            (kind, self),
            (_, Self::Forbidden | Self::Error)
                | (Kind::Delivery, Self::Delivered | Self::Failed)
                | (Kind::Display, Self::Displayed)
                | (Kind::Processing, Self::Processed | Self::Stored)
        )
    }

    /// The gateway's SMS-side status for this report: `delivered` (also
    /// for displayed, which implies it), `failed`, or `sent` for an
    /// intermediary's processing report.
    pub fn gateway_status(self) -> &'static str {
        match self {
            Self::Delivered | Self::Displayed => "delivered",
            Self::Failed | Self::Forbidden | Self::Error => "failed",
            Self::Processed | Self::Stored => "sent",
        }
    }
}

/// One IMDN document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Imdn {
    /// `imdn.Message-ID` of the message reported on.
    pub message_id: String,
    /// When that message was sent (its `DateTime`), as written.
    pub datetime: String,
    /// Who the report is from, when given.
    pub recipient_uri: Option<String>,
    /// Who the message was first addressed to, when given.
    pub original_recipient_uri: Option<String>,
    /// The report.
    pub kind: Kind,
    /// Its status.
    pub status: Status,
}

impl Imdn {
    /// A report of `kind`/`status` for `message_id` sent at `datetime`.
    pub fn new(
        message_id: &str,
        datetime: OffsetDateTime,
        kind: Kind,
        status: Status,
    ) -> Result<Self, Error> {
        let imdn = Self {
            message_id: message_id.to_string(),
            datetime: datetime
                .format(&Rfc3339)
                .map_err(|_| Error::rcs("imdn datetime", "cannot be written as RFC 3339"))?,
            recipient_uri: None,
            original_recipient_uri: None,
            kind,
            status,
        };
        imdn.check()?;
        Ok(imdn)
    }

    fn check(&self) -> Result<(), Error> {
        if self.message_id.is_empty() || self.message_id.len() > 128 {
            return Err(Error::rcs("imdn message-id", "must be 1 to 128 characters"));
        }
        OffsetDateTime::parse(&self.datetime, &Rfc3339)
            .map_err(|_| Error::rcs("imdn datetime", "must be an RFC 3339 timestamp"))?;
        if !self.status.fits(self.kind) {
            return Err(Error::rcs(
                "imdn status",
                format!(
                    "<{}/> does not belong in <{}>",
                    self.status.element(),
                    self.kind.element()
                ),
            ));
        }
        Ok(())
    }

    /// Parses an IMDN document.
    pub fn parse(bytes: &[u8]) -> Result<Self, Error> {
        let root = xml::parse(bytes, "imdn")?;
        if root.ns != NS || root.name != "imdn" {
            return Err(Error::rcs(
                "imdn",
                "root element must be <imdn> in urn:ietf:params:xml:ns:imdn",
            ));
        }
        let text = |name: &str| root.child_text(NS, name).map(str::to_string);
        let message_id =
            text("message-id").ok_or_else(|| Error::rcs("imdn message-id", "is missing"))?;
        let datetime = text("datetime").ok_or_else(|| Error::rcs("imdn datetime", "is missing"))?;
        let mut found = None;
        for kind in [Kind::Delivery, Kind::Display, Kind::Processing] {
            if let Some(n) = root.child(NS, kind.element()) {
                if found.is_some() {
                    return Err(Error::rcs("imdn", "holds more than one notification"));
                }
                let status = n.child(NS, "status").ok_or_else(|| {
                    Error::rcs(format!("imdn {}", kind.element()), "has no <status>")
                })?;
                let mut statuses = status
                    .children
                    .iter()
                    .filter(|c| c.ns == NS)
                    .filter_map(|c| Status::parse(&c.name));
                let s = statuses
                    .next()
                    .ok_or_else(|| Error::rcs("imdn status", "names no known status"))?;
                if statuses.next().is_some() {
                    return Err(Error::rcs("imdn status", "names more than one status"));
                }
                found = Some((kind, s));
            }
        }
        let (kind, status) = found.ok_or_else(|| {
            Error::rcs(
                "imdn",
                "has no delivery-, display- or processing-notification",
            )
        })?;
        let imdn = Self {
            message_id,
            datetime,
            recipient_uri: text("recipient-uri"),
            original_recipient_uri: text("original-recipient-uri"),
            kind,
            status,
        };
        imdn.check()?;
        Ok(imdn)
    }

    /// Writes the document (UTF-8, with the XML declaration).
    pub fn to_xml(&self) -> Result<Vec<u8>, Error> {
        self.check()?;
        let mut s = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
        s.push_str(&format!("<imdn xmlns=\"{NS}\">\n"));
        s.push_str(&format!(
            " <message-id>{}</message-id>\n",
            esc(&self.message_id)
        ));
        s.push_str(&format!(" <datetime>{}</datetime>\n", esc(&self.datetime)));
        if let Some(r) = &self.recipient_uri {
            s.push_str(&format!(" <recipient-uri>{}</recipient-uri>\n", esc(r)));
        }
        if let Some(r) = &self.original_recipient_uri {
            s.push_str(&format!(
                " <original-recipient-uri>{}</original-recipient-uri>\n",
                esc(r)
            ));
        }
        s.push_str(&format!(
            " <{k}><status><{st}/></status></{k}>\n</imdn>\n",
            k = self.kind.element(),
            st = self.status.element()
        ));
        Ok(s.into_bytes())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn fixture(name: &str) -> Vec<u8> {
        crate::rcs::fixture(&format!("imdn/{name}"))
    }

    #[test]
    fn rfc5438_examples_parse_and_round_trip() {
        for (name, kind, status) in [
            ("rfc5438_delivered.xml", Kind::Delivery, Status::Delivered),
            ("rfc5438_displayed.xml", Kind::Display, Status::Displayed),
            ("rfc5438_processed.xml", Kind::Processing, Status::Processed),
            ("rfc5438_failed.xml", Kind::Delivery, Status::Failed),
        ] {
            let i = Imdn::parse(&fixture(name)).unwrap();
            assert_eq!((i.kind, i.status), (kind, status), "{name}");
            assert_eq!(i.message_id, "34jk324j");
            assert_eq!(Imdn::parse(&i.to_xml().unwrap()).unwrap(), i, "{name}");
        }
        let i = Imdn::parse(&fixture("rfc5438_delivered.xml")).unwrap();
        assert_eq!(i.recipient_uri.as_deref(), Some("im:bob@example.com"));
        assert_eq!(i.status.gateway_status(), "delivered");
    }

    #[test]
    fn generated_notification_matches_the_golden_file() {
        let t = OffsetDateTime::parse("2024-06-22T08:46:11Z", &Rfc3339).unwrap();
        let i = Imdn::new("Msg-0001", t, Kind::Delivery, Status::Delivered).unwrap();
        assert_eq!(
            String::from_utf8(i.to_xml().unwrap()).unwrap(),
            String::from_utf8(fixture("generated_delivered.xml")).unwrap()
        );
        let cpim = super::super::cpim::CpimMessage::notification(
            "sip:+14155550101@ims.example",
            "sip:+14155550100@ims.example",
            "Imdn-0001",
            OffsetDateTime::parse("2024-06-22T08:46:12Z", &Rfc3339).unwrap(),
            &i,
        )
        .unwrap();
        let golden = crate::rcs::fixture("cpim/imdn_delivered_notification.txt");
        assert_eq!(
            String::from_utf8_lossy(&cpim.to_bytes()),
            String::from_utf8_lossy(&golden)
        );
        let back = super::super::cpim::CpimMessage::decode(&golden).unwrap();
        assert_eq!(back.content_type().as_deref(), Some(CONTENT_TYPE));
        assert_eq!(Imdn::parse(&back.body).unwrap(), i);
    }

    #[test]
    fn wrong_documents_are_refused() {
        let doc = |inner: &str| {
            format!(
                "<imdn xmlns=\"{NS}\"><message-id>a</message-id><datetime>2024-06-22T08:46:11Z</datetime>{inner}</imdn>"
            )
        };
        for bad in [
            doc("<display-notification><status><delivered/></status></display-notification>"),
            doc(""),
            doc("<delivery-notification><status></status></delivery-notification>"),
            doc(
                "<delivery-notification><status><delivered/><failed/></status></delivery-notification>",
            ),
            "<imdn><message-id>a</message-id></imdn>".into(),
            "<!DOCTYPE x [<!ENTITY a \"b\">]><imdn/>".into(),
            doc("<delivery-notification><status><delivered/></status>"),
            "not xml at all".into(),
        ] {
            assert!(Imdn::parse(bad.as_bytes()).is_err(), "{bad}");
        }
        // Extensions in other namespaces are ignored.
        let ok = doc(
            "<x:ext xmlns:x=\"urn:example\">1</x:ext><delivery-notification><status><delivered/></status></delivery-notification>",
        );
        assert!(Imdn::parse(ok.as_bytes()).is_ok());
        // Escaping survives the round trip.
        let mut i = Imdn::parse(ok.as_bytes()).unwrap();
        i.message_id = "a<&>\"'b".into();
        assert_eq!(Imdn::parse(&i.to_xml().unwrap()).unwrap(), i);
    }
}
