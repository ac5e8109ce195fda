//! File transfer over HTTP (GSMA RCC.07 §3.2.5, `application/vnd.gsma.rcs-ft-http+xml`):
//! the XML a client sends in a chat message to point at a file uploaded to
//! the content server, with an optional thumbnail.
//!
//! ```xml
//! <file xmlns="urn:gsma:params:xml:ns:rcs:rcs:fthttp" xmlns:am="urn:gsma:params:xml:ns:rcs:rcs:rram">
//!  <file-info type="thumbnail">
//!   <file-size>7427</file-size><content-type>image/jpeg</content-type>
//!   <data url="https://ft.example/t/1" until="2026-12-08T12:00:00Z"/>
//!  </file-info>
//!  <file-info type="file" file-disposition="render">
//!   <file-size>183524</file-size><file-name>photo.jpg</file-name><content-type>image/jpeg</content-type>
//!   <am:playing-length>12</am:playing-length>  (audio messages only)
//!   <data url="https://ft.example/f/1" until="2026-12-08T12:00:00Z"/>
//!  </file-info>
//! </file>
//! ```
//!
//! Element names per rcsjta `FileTransferXmlParser`; converts to and from
//! the model's [`FileTransfer`].

use super::content::{FileTransfer, Thumbnail, check_url, parse_time};
use super::xml::{self, Element, esc};
use crate::Error;

/// MIME type of the document.
pub const CONTENT_TYPE: &str = "application/vnd.gsma.rcs-ft-http+xml";
/// Its XML namespace.
pub const NS: &str = "urn:gsma:params:xml:ns:rcs:rcs:fthttp";
/// The namespace of `am:playing-length` (audio messaging).
pub const AM_NS: &str = "urn:gsma:params:xml:ns:rcs:rcs:rram";

/// How the receiving client should present the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Disposition {
    /// Show inline (the default for images).
    #[default]
    Render,
    /// Offer as an attachment.
    Attach,
}

/// One `<file-info>`.
#[derive(Clone, PartialEq, Eq)]
pub struct FileInfo {
    /// Bytes.
    pub size: u64,
    /// Name (the file only; thumbnails have none).
    pub name: Option<String>,
    /// MIME type.
    pub content_type: String,
    /// Where to download it.
    pub url: String,
    /// Until when the URL works (RFC 3339), as written.
    pub until: String,
    /// File only: render or attach.
    pub disposition: Option<Disposition>,
    /// Audio only: length in seconds.
    pub playing_length: Option<u64>,
}

impl std::fmt::Debug for FileInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "FileInfo {{ {} bytes, {}, <redacted> }}",
            self.size, self.content_type
        )
    }
}

/// An FT-HTTP document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FtHttp {
    /// The preview, when sent.
    pub thumbnail: Option<FileInfo>,
    /// The file.
    pub file: FileInfo,
}

fn info(el: &Element, is_file: bool) -> Result<FileInfo, Error> {
    let at = if is_file {
        "ft-http file-info[type=file]"
    } else {
        "ft-http file-info[type=thumbnail]"
    };
    let field = |n: &str| format!("{at} {n}");
    let size = el
        .child_text(NS, "file-size")
        .ok_or_else(|| Error::rcs(field("file-size"), "is missing"))?
        .parse::<u64>()
        .map_err(|_| Error::rcs(field("file-size"), "is not a number"))?;
    if size > super::content::MAX_FILE_BYTES {
        return Err(Error::rcs(field("file-size"), "larger than 100 MiB"));
    }
    let content_type = el
        .child_text(NS, "content-type")
        .filter(|c| c.contains('/') && c.len() <= 255)
        .ok_or_else(|| Error::rcs(field("content-type"), "is missing or not a MIME type"))?
        .to_string();
    let data = el
        .child(NS, "data")
        .ok_or_else(|| Error::rcs(field("data"), "is missing"))?;
    let url = data
        .attr("url")
        .ok_or_else(|| Error::rcs(field("data url"), "is missing"))?
        .to_string();
    check_url(&field("data url"), &url)?;
    let until = data
        .attr("until")
        .ok_or_else(|| Error::rcs(field("data until"), "is missing"))?
        .to_string();
    parse_time(&field("data until"), &until)?;
    let name = match el.child_text(NS, "file-name") {
        Some(n) if n.is_empty() || n.chars().count() > super::content::MAX_FILE_NAME_CHARS => {
            return Err(Error::rcs(
                field("file-name"),
                "must be 1 to 255 characters",
            ));
        }
        Some(n) => Some(n.to_string()),
        None if is_file => return Err(Error::rcs(field("file-name"), "is missing")),
        None => None,
    };
    let disposition = match el.attr("file-disposition") {
        None => None,
        Some("render") => Some(Disposition::Render),
        Some("attach") => Some(Disposition::Attach),
        Some(_) => {
            return Err(Error::rcs(
                field("file-disposition"),
                "must be render or attach",
            ));
        }
    };
    let playing_length = el
        .child_text(AM_NS, "playing-length")
        .map(|p| {
            p.parse::<u64>()
                .map_err(|_| Error::rcs(field("am:playing-length"), "is not a number"))
        })
        .transpose()?;
    Ok(FileInfo {
        size,
        name,
        content_type,
        url,
        until,
        disposition: if is_file { disposition } else { None },
        playing_length,
    })
}

impl FtHttp {
    /// Parses the XML.
    pub fn parse(bytes: &[u8]) -> Result<Self, Error> {
        let root = xml::parse(bytes, "ft-http")?;
        if root.ns != NS || root.name != "file" {
            return Err(Error::rcs(
                "ft-http",
                "root element must be <file> in urn:gsma:params:xml:ns:rcs:rcs:fthttp",
            ));
        }
        let mut thumbnail = None;
        let mut file = None;
        for el in root
            .children
            .iter()
            .filter(|c| c.ns == NS && c.name == "file-info")
        {
            match el.attr("type") {
                Some("thumbnail") if thumbnail.is_none() => thumbnail = Some(info(el, false)?),
                Some("file") if file.is_none() => file = Some(info(el, true)?),
                Some("thumbnail" | "file") => {
                    return Err(Error::rcs(
                        "ft-http file-info",
                        "appears twice for one type",
                    ));
                }
                _ => {
                    return Err(Error::rcs(
                        "ft-http file-info type",
                        "must be file or thumbnail",
                    ));
                }
            }
        }
        let file = file.ok_or_else(|| Error::rcs("ft-http file-info[type=file]", "is missing"))?;
        Ok(Self { thumbnail, file })
    }

    /// Writes the XML.
    pub fn to_xml(&self) -> Vec<u8> {
        let mut s = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
        let audio = self.file.playing_length.is_some()
            || self
                .thumbnail
                .as_ref()
                .is_some_and(|t| t.playing_length.is_some());
        if audio {
            s.push_str(&format!("<file xmlns=\"{NS}\" xmlns:am=\"{AM_NS}\">\n"));
        } else {
            s.push_str(&format!("<file xmlns=\"{NS}\">\n"));
        }
        let mut write = |i: &FileInfo, kind: &str| {
            s.push_str(&format!(" <file-info type=\"{kind}\""));
            if let Some(d) = i.disposition {
                s.push_str(match d {
                    Disposition::Render => " file-disposition=\"render\"",
                    Disposition::Attach => " file-disposition=\"attach\"",
                });
            }
            s.push_str(">\n");
            s.push_str(&format!("  <file-size>{}</file-size>\n", i.size));
            if let Some(n) = &i.name {
                s.push_str(&format!("  <file-name>{}</file-name>\n", esc(n)));
            }
            s.push_str(&format!(
                "  <content-type>{}</content-type>\n",
                esc(&i.content_type)
            ));
            if let Some(p) = i.playing_length {
                s.push_str(&format!("  <am:playing-length>{p}</am:playing-length>\n"));
            }
            s.push_str(&format!(
                "  <data url=\"{}\" until=\"{}\"/>\n </file-info>\n",
                esc(&i.url),
                esc(&i.until)
            ));
        };
        if let Some(t) = &self.thumbnail {
            write(t, "thumbnail");
        }
        write(&self.file, "file");
        s.push_str("</file>\n");
        s.into_bytes()
    }

    /// The model's file transfer. FT-HTTP URLs always expire, so `expiry` is set.
    pub fn to_file_transfer(&self) -> Result<FileTransfer, Error> {
        let name =
            self.file.name.clone().ok_or_else(|| {
                Error::rcs("ft-http file-info[type=file] file-name", "is missing")
            })?;
        Ok(FileTransfer {
            url: self.file.url.clone(),
            name,
            content_type: self.file.content_type.clone(),
            size: self.file.size,
            expiry: Some(self.file.until.clone()),
            thumbnail: self.thumbnail.as_ref().map(|t| Thumbnail {
                url: t.url.clone(),
                content_type: Some(t.content_type.clone()),
                size: Some(t.size),
            }),
        })
    }

    /// The document for a model file transfer; `default_until` is used
    /// where the model has no expiry (FT-HTTP requires one).
    pub fn from_file_transfer(f: &FileTransfer, default_until: &str) -> Result<Self, Error> {
        let until = f
            .expiry
            .clone()
            .unwrap_or_else(|| default_until.to_string());
        parse_time("ft-http data until", &until)?;
        Ok(Self {
            thumbnail: f.thumbnail.as_ref().map(|t| FileInfo {
                size: t.size.unwrap_or(0),
                name: None,
                content_type: t
                    .content_type
                    .clone()
                    .unwrap_or_else(|| "image/jpeg".to_string()),
                url: t.url.clone(),
                until: until.clone(),
                disposition: None,
                playing_length: None,
            }),
            file: FileInfo {
                size: f.size,
                name: Some(f.name.clone()),
                content_type: f.content_type.clone(),
                url: f.url.clone(),
                until,
                disposition: Some(Disposition::Render),
                playing_length: None,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn fixture(name: &str) -> Vec<u8> {
        crate::rcs::fixture(&format!("ft_http/{name}"))
    }

    #[test]
    fn gsma_sample_parses_and_round_trips() {
        let d = FtHttp::parse(&fixture("image_with_thumbnail.xml")).unwrap();
        assert_eq!(d.file.size, 183524);
        assert_eq!(d.file.name.as_deref(), Some("DSC00064.JPG"));
        assert_eq!(d.file.disposition, Some(Disposition::Render));
        assert_eq!(d.thumbnail.as_ref().unwrap().size, 7427);
        assert_eq!(FtHttp::parse(&d.to_xml()).unwrap(), d);
        let audio = FtHttp::parse(&fixture("audio_message.xml")).unwrap();
        assert_eq!(audio.file.playing_length, Some(12));
        assert_eq!(FtHttp::parse(&audio.to_xml()).unwrap(), audio);
    }

    #[test]
    fn converts_to_the_model_and_back_to_the_golden_file() {
        let d = FtHttp::parse(&fixture("image_with_thumbnail.xml")).unwrap();
        let f = d.to_file_transfer().unwrap();
        assert_eq!(f.expiry.as_deref(), Some("2017-04-25T12:17:07Z"));
        let back = FtHttp::from_file_transfer(&f, "2030-01-01T00:00:00Z").unwrap();
        assert_eq!(back.file, d.file);
        let api: crate::rcs::RcsMessage =
            serde_json::from_slice(&crate::rcs::fixture("api/file.json")).unwrap();
        let crate::rcs::Body::File(f) = &api.body else {
            panic!("file expected")
        };
        let xml = FtHttp::from_file_transfer(f, "2030-01-01T00:00:00Z")
            .unwrap()
            .to_xml();
        crate::rcs::golden("ft_http/generated_from_api_file.xml", &xml);
    }

    #[test]
    fn incomplete_documents_are_refused() {
        let base = String::from_utf8(fixture("image_with_thumbnail.xml")).unwrap();
        for (from, to) in [
            ("<file-name>DSC00064.JPG</file-name>", ""),
            (
                "<file-size>183524</file-size>",
                "<file-size>big</file-size>",
            ),
            (
                "url=\"https://ftcontentserver.rcs/download?id=abcdefgh\"",
                "url=\"javascript:x\"",
            ),
            ("type=\"file\"", "type=\"other\""),
            ("until=\"2017-04-25T12:17:07Z\"", "until=\"soon\""),
        ] {
            let doc = base.replacen(from, to, 1);
            assert_ne!(doc, base, "{from}");
            assert!(FtHttp::parse(doc.as_bytes()).is_err(), "{from}");
        }
    }
}
