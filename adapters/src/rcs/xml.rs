//! A small element tree over `quick-xml`'s namespace-aware reader, shared
//! by the IMDN and FT-HTTP codecs. Both documents are tiny and flat, so a
//! capped tree (depth, element count, text size) is simpler to read and
//! safer than an event-driven parser per format; XML comments, processing
//! instructions and the declaration are skipped, DOCTYPEs are refused (no
//! entity tricks), and only the five predefined entities and character
//! references are expanded.

use std::borrow::Cow;

use quick_xml::events::Event;
use quick_xml::name::ResolveResult;
use quick_xml::reader::NsReader;

use crate::Error;

/// Deepest nesting accepted.
const MAX_DEPTH: usize = 16;
/// Most elements in one document.
const MAX_ELEMENTS: usize = 256;
/// Most text in one document, in bytes.
const MAX_TEXT: usize = 64 * 1024;

/// One element.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct Element {
    /// Namespace URI, empty when unbound.
    pub ns: String,
    /// Local name.
    pub name: String,
    /// Attributes by local name (namespace prefixes dropped; `xmlns` skipped).
    pub attrs: Vec<(String, String)>,
    /// Child elements, in order.
    pub children: Vec<Element>,
    /// Text directly inside, trimmed.
    pub text: String,
}

impl Element {
    /// The first child named `name` in namespace `ns`.
    pub fn child(&self, ns: &str, name: &str) -> Option<&Element> {
        self.children.iter().find(|c| c.ns == ns && c.name == name)
    }

    /// The text of the first child `name` in `ns`.
    pub fn child_text(&self, ns: &str, name: &str) -> Option<&str> {
        self.child(ns, name).map(|c| c.text.as_str())
    }

    /// Attribute `name`.
    pub fn attr(&self, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

fn entity(name: &str) -> Option<char> {
    Some(match name {
        "amp" => '&',
        "lt" => '<',
        "gt" => '>',
        "quot" => '"',
        "apos" => '\'',
        _ => return None,
    })
}

/// Parses `bytes` into its root element; `what` names the document in errors.
pub(crate) fn parse(bytes: &[u8], what: &str) -> Result<Element, Error> {
    let bad = |why: &str| Error::rcs(what, why.to_string());
    let text = std::str::from_utf8(bytes).map_err(|_| bad("is not UTF-8"))?;
    let mut reader = NsReader::from_str(text);
    reader.config_mut().trim_text(false);
    let mut stack: Vec<Element> = Vec::new();
    let mut root: Option<Element> = None;
    let mut elements = 0usize;
    let mut text_bytes = 0usize;
    loop {
        let Ok((resolved, event)) = reader.read_resolved_event() else {
            return Err(bad("is not well-formed XML"));
        };
        let ns = match resolved {
            ResolveResult::Bound(n) => String::from_utf8_lossy(n.as_ref()).into_owned(),
            ResolveResult::Unbound => String::new(),
            ResolveResult::Unknown(_) => return Err(bad("uses an undeclared namespace prefix")),
        };
        match event {
            Event::Start(ref s) | Event::Empty(ref s) => {
                elements += 1;
                if elements > MAX_ELEMENTS {
                    return Err(bad("has too many elements"));
                }
                if root.is_some() {
                    return Err(bad("has content after the root element"));
                }
                let mut el = Element {
                    ns,
                    name: String::from_utf8_lossy(s.local_name().as_ref()).into_owned(),
                    ..Element::default()
                };
                for a in s.attributes() {
                    let a = a.map_err(|_| bad("has a malformed attribute"))?;
                    let key = a.key.as_ref();
                    if key == b"xmlns" || key.starts_with(b"xmlns:") {
                        continue;
                    }
                    let value = a
                        .normalized_value(quick_xml::XmlVersion::Implicit1_0)
                        .map_err(|_| bad("has an attribute with a bad entity"))?;
                    text_bytes += value.len();
                    el.attrs.push((
                        String::from_utf8_lossy(a.key.local_name().as_ref()).into_owned(),
                        value.into_owned(),
                    ));
                }
                if matches!(event, Event::Empty(_)) {
                    close(&mut stack, &mut root, el);
                } else {
                    if stack.len() >= MAX_DEPTH {
                        return Err(bad("is nested too deeply"));
                    }
                    stack.push(el);
                }
            }
            Event::End(_) => {
                let Some(mut el) = stack.pop() else {
                    return Err(bad("closes an element it never opened"));
                };
                el.text = el.text.trim().to_string();
                close(&mut stack, &mut root, el);
            }
            Event::Text(t) => {
                let s = t.xml10_content().map_err(|_| bad("has undecodable text"))?;
                push_text(&mut stack, &s, &mut text_bytes, what)?;
            }
            Event::CData(c) => {
                let s = c.decode().map_err(|_| bad("has undecodable text"))?;
                push_text(&mut stack, &s, &mut text_bytes, what)?;
            }
            Event::GeneralRef(r) => {
                let ch = match r.resolve_char_ref() {
                    Ok(Some(c)) => c,
                    Ok(None) => {
                        let name = r.decode().map_err(|_| bad("has a bad entity"))?;
                        entity(&name).ok_or_else(|| bad("uses an undefined entity"))?
                    }
                    Err(_) => return Err(bad("has a bad character reference")),
                };
                let mut buf = [0u8; 4];
                push_text(
                    &mut stack,
                    &Cow::Borrowed(&*ch.encode_utf8(&mut buf)),
                    &mut text_bytes,
                    what,
                )?;
            }
            Event::DocType(_) => return Err(bad("has a DOCTYPE, which is not allowed")),
            Event::Comment(_) | Event::Decl(_) | Event::PI(_) => {}
            Event::Eof => break,
        }
        if text_bytes > MAX_TEXT {
            return Err(bad("has too much text"));
        }
    }
    if !stack.is_empty() {
        return Err(bad("ends inside an element"));
    }
    root.ok_or_else(|| bad("has no root element"))
}

fn push_text(stack: &mut [Element], s: &str, total: &mut usize, what: &str) -> Result<(), Error> {
    *total += s.len();
    match stack.last_mut() {
        Some(top) => {
            top.text.push_str(s);
            Ok(())
        }
        None if s.trim().is_empty() => Ok(()),
        None => Err(Error::rcs(what, "has text outside the root element")),
    }
}

fn close(stack: &mut [Element], root: &mut Option<Element>, el: Element) {
    match stack.last_mut() {
        Some(parent) => parent.children.push(el),
        None => *root = Some(el),
    }
}

/// Escapes text or an attribute value for output.
pub(crate) fn esc(s: &str) -> Cow<'_, str> {
    quick_xml::escape::escape(s)
}
