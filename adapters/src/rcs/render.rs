//! Interworking: what an RCS message becomes as SMS, and what SMS becomes
//! as RCS, so a message keeps its meaning across the boundary (the SM↔IM
//! roles of 3GPP TS 29.311).
//!
//! RCS → SMS ([`to_sms`]):
//! * **text**: as is, never cut; message-level suggestions follow as
//!   numbered lines while they fit the budget (or the text's own length,
//!   whichever is larger);
//! * **rich card**: title, description, the media link, then the card's
//!   suggestions numbered `1) …`; actions show what they do (the URL, the
//!   number, the coordinates, the event);
//! * **carousel**: its cards in order, separated by a blank line, numbering
//!   running on across cards; then the message-level suggestions;
//! * **file**: `name (size): link`;
//! * the rendering stays within `max_segments` SMS segments (counted with
//!   [`crate::sms::plan`], so GSM-7 extension characters count double and a
//!   single non-GSM character switches the count to UCS-2). Over budget,
//!   descriptions are shortened first (last card first) and end in
//!   [`MARKER`]; if that is not enough the whole rendering is cut at the end
//!   with the marker. Cuts fall between characters and never inside a
//!   combining sequence, an emoji ZWJ sequence or before a variation
//!   selector or skin-tone modifier.
//!
//! SMS → RCS: a (reassembled) multipart SMS becomes one RCS chat message
//! ([`sms_to_cpim`]); a status report becomes an IMDN delivery notification
//! ([`status_report_to_imdn`]); a reply that is just a number (`"2"`) maps to
//! that numbered suggestion's postback ([`reply_to_suggestion`]). IMDN →
//! SMS status: [`super::imdn::Status::gateway_status`].

use time::OffsetDateTime;

use super::content::{Action, Body, Card, RcsMessage, Suggestion};
use super::cpim::{Chat, CpimMessage, Disposition};
use super::imdn::{Imdn, Kind, Status};
use crate::Error;
use crate::sms::{Encoding, SmsOptions, StatusCategory, StatusReport};

/// Appended where text was cut (GSM-7, so it never forces UCS-2).
pub const MARKER: &str = "...";

/// How to render.
#[derive(Debug, Clone)]
pub struct RenderOptions {
    /// SMS encoding options (national tables, smart encoding).
    pub sms: SmsOptions,
    /// Most SMS segments the rendering of rich content may take (≥ 1).
    pub max_segments: usize,
}

impl Default for RenderOptions {
    fn default() -> Self {
        Self {
            sms: SmsOptions::default(),
            max_segments: 4,
        }
    }
}

/// One numbered suggestion of a rendering.
#[derive(Clone, PartialEq, Eq)]
pub struct Numbered {
    /// The number shown (1-based).
    pub number: usize,
    /// The suggestion's text.
    pub text: String,
    /// Its postback data.
    pub postback: String,
}

impl std::fmt::Debug for Numbered {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Numbered {{ {}, <redacted> }}", self.number)
    }
}

/// An SMS rendering.
#[derive(Clone, PartialEq, Eq)]
pub struct Rendered {
    /// The SMS text.
    pub text: String,
    /// The suggestions whose numbered line is in `text`.
    pub suggestions: Vec<Numbered>,
    /// True when something was shortened or left out to fit the budget.
    pub truncated: bool,
    /// Segments the text needs.
    pub segments: usize,
    /// Its encoding.
    pub encoding: Encoding,
}

impl std::fmt::Debug for Rendered {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Rendered {{ {} segments {}, {} suggestions, truncated: {}, <redacted> }}",
            self.segments,
            self.encoding.as_str(),
            self.suggestions.len(),
            self.truncated
        )
    }
}

/// A human size: `512 B`, `179 KB`, `4.2 MB` (1024-based).
pub fn human_size(bytes: u64) -> String {
    const K: u64 = 1024;
    if bytes < K {
        format!("{bytes} B")
    } else if bytes < K * K {
        format!("{} KB", (bytes + K / 2) / K)
    } else {
        let tenths = (bytes * 10 + K * K / 2) / (K * K);
        format!("{}.{} MB", tenths / 10, tenths % 10)
    }
}

fn suggestion_line(n: usize, s: &Suggestion) -> String {
    match s {
        Suggestion::Reply { text, .. } => format!("{n}) {text}"),
        Suggestion::Action { text, action, .. } => {
            let detail = match action {
                Action::OpenUrl { url } => url.clone(),
                Action::Dial { phone_number } => phone_number.clone(),
                Action::ViewLocation {
                    latitude,
                    longitude,
                    ..
                } => format!("{latitude},{longitude}"),
                Action::ShareLocation {} => return format!("{n}) {text}"),
                Action::CalendarEvent {
                    start, end, title, ..
                } => format!("{title}, {start} to {end}"),
            };
            format!("{n}) {text}: {detail}")
        }
    }
}

/// One line (or paragraph) of a rendering.
#[derive(Clone)]
struct Block {
    text: String,
    /// A description: may be shortened.
    shrinkable: bool,
    /// The numbered suggestion on this line, if any.
    suggestion: Option<Numbered>,
}

fn plain(text: String) -> Block {
    Block {
        text,
        shrinkable: false,
        suggestion: None,
    }
}

fn join(blocks: &[Block]) -> String {
    let mut s = String::new();
    for b in blocks {
        if !s.is_empty() {
            s.push('\n');
        }
        s.push_str(&b.text);
    }
    s
}

fn segments(text: &str, opts: &RenderOptions) -> usize {
    crate::sms::plan(text, opts.sms_options()).segments
}

impl RenderOptions {
    fn sms_options(&self) -> &SmsOptions {
        &self.sms
    }

    fn budget(&self) -> usize {
        self.max_segments.max(1)
    }
}

/// True for characters that must stay attached to the one before them.
fn attaches_to_previous(c: char) -> bool {
    matches!(c as u32,
        0x0300..=0x036F      // combining diacritics
        | 0x1AB0..=0x1AFF
        | 0x1DC0..=0x1DFF
        | 0x20D0..=0x20FF    // combining marks for symbols (keycap U+20E3)
        | 0xFE20..=0xFE2F
        | 0x200D             // zero width joiner
        | 0xFE00..=0xFE0F    // variation selectors
        | 0x1F3FB..=0x1F3FF  // skin tone modifiers
        | 0xE0020..=0xE007F  // tag characters (flag sequences)
    )
}

fn is_regional_indicator(c: char) -> bool {
    (0x1F1E6..=0x1F1FF).contains(&(c as u32))
}

/// Whether cutting between `chars[k - 1]` and `chars[k]` splits a sequence
/// (combining mark, joiner, modifier, or the two halves of a flag).
fn splits_sequence(chars: &[char], k: usize) -> bool {
    if k == 0 || k >= chars.len() {
        return false;
    }
    if attaches_to_previous(chars[k]) || chars[k - 1] == '\u{200D}' {
        return true;
    }
    if is_regional_indicator(chars[k]) && is_regional_indicator(chars[k - 1]) {
        // Flags pair regional indicators from the left: an odd run before
        // the cut means chars[k] completes the pair chars[k - 1] started.
        let run = chars[..k]
            .iter()
            .rev()
            .take_while(|c| is_regional_indicator(**c))
            .count();
        return run % 2 == 1;
    }
    false
}

/// The longest prefix of `chars` of at most `k` characters that does not
/// end inside a character sequence, with trailing whitespace dropped.
fn safe_prefix(chars: &[char], mut k: usize) -> String {
    k = k.min(chars.len());
    while splits_sequence(chars, k) {
        k -= 1;
    }
    let s: String = chars[..k].iter().collect();
    s.trim_end().to_string()
}

/// Largest `k` in `0..=max` with `fits(k)`, assuming `fits` is monotone
/// (true up to some point); `None` when even `fits(0)` is false.
fn largest_fitting(max: usize, fits: impl Fn(usize) -> bool) -> Option<usize> {
    if !fits(0) {
        return None;
    }
    let (mut lo, mut hi) = (0usize, max);
    while lo < hi {
        let mid = lo + (hi - lo).div_ceil(2);
        if fits(mid) {
            lo = mid;
        } else {
            hi = mid - 1;
        }
    }
    Some(lo)
}

fn card_blocks(card: &Card, counter: &mut usize, out: &mut Vec<Block>) {
    if let Some(t) = &card.title {
        out.push(plain(t.clone()));
    }
    if let Some(d) = &card.description {
        out.push(Block {
            text: d.clone(),
            shrinkable: true,
            suggestion: None,
        });
    }
    if let Some(m) = &card.media {
        out.push(plain(m.url.clone()));
    }
    suggestion_blocks(&card.suggestions, counter, out);
}

fn suggestion_blocks(list: &[Suggestion], counter: &mut usize, out: &mut Vec<Block>) {
    for s in list {
        *counter += 1;
        out.push(Block {
            text: suggestion_line(*counter, s),
            shrinkable: false,
            suggestion: Some(Numbered {
                number: *counter,
                text: s.text().to_string(),
                postback: s.postback().to_string(),
            }),
        });
    }
}

fn finish(text: String, blocks: &[Block], truncated: bool, opts: &RenderOptions) -> Rendered {
    let plan = crate::sms::plan(&text, opts.sms_options());
    // A suggestion counts as shown only if its whole line is in the text.
    let suggestions = blocks
        .iter()
        .filter_map(|b| b.suggestion.as_ref().map(|s| (b, s)))
        .filter(|(b, _)| text.lines().any(|l| l == b.text))
        .map(|(_, s)| s.clone())
        .collect();
    Rendered {
        text,
        suggestions,
        truncated,
        segments: plan.segments,
        encoding: plan.encoding,
    }
}

/// Renders `msg` as SMS text within `opts.max_segments` (see the module docs).
pub fn to_sms(msg: &RcsMessage, opts: &RenderOptions) -> Rendered {
    let mut counter = 0usize;
    let mut blocks: Vec<Block> = Vec::new();
    match &msg.body {
        Body::Text(t) => {
            // Text goes as is; the suggestions are what may be left out.
            let limit = opts.budget().max(segments(t, opts));
            let mut shown = vec![plain(t.clone())];
            let mut all = Vec::new();
            suggestion_blocks(&msg.suggestions, &mut counter, &mut all);
            let mut truncated = false;
            for b in all {
                shown.push(b);
                if segments(&join(&shown), opts) > limit {
                    shown.pop();
                    truncated = true;
                    break;
                }
            }
            return finish(join(&shown), &shown, truncated, opts);
        }
        Body::RichCard(_) => {
            for (i, card) in msg.cards().iter().enumerate() {
                if i > 0 {
                    blocks.push(plain(String::new()));
                }
                card_blocks(card, &mut counter, &mut blocks);
            }
        }
        Body::File(f) => {
            blocks.push(plain(format!(
                "{} ({}): {}",
                f.name,
                human_size(f.size),
                f.url
            )));
        }
    }
    if !msg.suggestions.is_empty() && !blocks.is_empty() {
        blocks.push(plain(String::new()));
    }
    suggestion_blocks(&msg.suggestions, &mut counter, &mut blocks);
    let budget = opts.budget();
    let full = join(&blocks);
    if segments(&full, opts) <= budget {
        return finish(full, &blocks, false, opts);
    }
    // 1. Shorten descriptions, the last one first.
    let shrinkable: Vec<usize> = (0..blocks.len())
        .rev()
        .filter(|&i| blocks[i].shrinkable)
        .collect();
    for i in shrinkable {
        let chars: Vec<char> = blocks[i].text.chars().collect();
        let with = |k: usize, blocks: &[Block]| {
            let mut b = blocks.to_vec();
            let p = safe_prefix(&chars, k);
            b[i].text = if p.is_empty() {
                MARKER.to_string()
            } else {
                format!("{p}{MARKER}")
            };
            b
        };
        match largest_fitting(chars.len(), |k| {
            segments(&join(&with(k, &blocks)), opts) <= budget
        }) {
            Some(k) => {
                let b = with(k, &blocks);
                return finish(join(&b), &b, true, opts);
            }
            None => {
                // Even the marker alone is too much: drop the description.
                blocks.remove(i);
            }
        }
    }
    // 2. Cut the whole rendering at the end.
    let text = join(&blocks);
    if segments(&text, opts) <= budget {
        return finish(text, &blocks, true, opts);
    }
    let chars: Vec<char> = text.chars().collect();
    let cut = |k: usize| format!("{}{MARKER}", safe_prefix(&chars, k));
    let k = largest_fitting(chars.len(), |k| segments(&cut(k), opts) <= budget).unwrap_or(0);
    finish(cut(k), &blocks, true, opts)
}

/// The numbered suggestion a reply names, if the reply is just its number
/// (`"2"`, `" 2. "`, `"#2"`).
pub fn reply_to_suggestion<'a>(reply: &str, open: &'a [Numbered]) -> Option<&'a Numbered> {
    let t = reply
        .trim()
        .trim_start_matches('#')
        .trim_end_matches(|c: char| c.is_ascii_punctuation() || c.is_whitespace());
    if t.is_empty() || t.len() > 3 || !t.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n: usize = t.parse().ok()?;
    open.iter().find(|s| s.number == n)
}

/// An RCS chat message (CPIM, `text/plain`) for a reassembled SMS: the
/// parts arrive as one message, with delivery and display reports asked for.
pub fn sms_to_cpim(
    message: &crate::sms::Message,
    from_uri: &str,
    to_uri: &str,
    message_id: &str,
) -> Result<CpimMessage, Error> {
    let crate::sms::Content::Text(text) = &message.content else {
        return Err(Error::rcs(
            "sms",
            "8-bit data messages have no RCS text form",
        ));
    };
    CpimMessage::chat(&Chat {
        from: from_uri,
        to: to_uri,
        message_id,
        datetime: message.first_arrival,
        dispositions: &[Disposition::PositiveDelivery, Disposition::Display],
        content_type: "text/plain;charset=UTF-8",
        body: text.as_bytes(),
    })
}

/// The IMDN for an SMS status report about the message RCS knows as
/// `message_id`: delivered → delivery/delivered; the service centre gave up
/// → delivery/failed; still trying → processing/stored; reserved codes →
/// delivery/error. `datetime` is when the original was sent (TP-SCTS).
pub fn status_report_to_imdn(report: &StatusReport, message_id: &str) -> Result<Imdn, Error> {
    let (kind, status) = match report.status.category() {
        StatusCategory::Delivered => (Kind::Delivery, Status::Delivered),
        StatusCategory::Permanent | StatusCategory::TemporaryStopped => {
            (Kind::Delivery, Status::Failed)
        }
        StatusCategory::Temporary => (Kind::Processing, Status::Stored),
        StatusCategory::Reserved => (Kind::Delivery, Status::Error),
    };
    Imdn::new(message_id, report.scts.datetime(), kind, status)
}

/// The IMDN a gateway sends for an SMS-side status (`delivered` / `failed`),
/// e.g. from a carrier callback; `None` for statuses IMDN has no word for.
pub fn sms_status_to_imdn(
    status: &str,
    message_id: &str,
    sent_at: OffsetDateTime,
) -> Result<Option<Imdn>, Error> {
    let s = match status {
        "delivered" => Status::Delivered,
        "failed" | "undelivered" => Status::Failed,
        _ => return Ok(None),
    };
    Imdn::new(message_id, sent_at, Kind::Delivery, s).map(Some)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn api(name: &str) -> RcsMessage {
        RcsMessage::from_json(&crate::rcs::fixture(&format!("api/{name}"))).unwrap()
    }

    fn opts(max_segments: usize) -> RenderOptions {
        RenderOptions {
            sms: SmsOptions::default(),
            max_segments,
        }
    }

    /// The golden file holds the text, then a line `---`, then the numbered
    /// suggestions kept for replies and the segment count.
    fn check(golden: &str, r: &Rendered) {
        let mut out = r.text.clone();
        out.push_str("\n---\n");
        for s in &r.suggestions {
            out.push_str(&format!("{} -> {}\n", s.number, s.postback));
        }
        out.push_str(&format!(
            "segments: {} {}{}\n",
            r.segments,
            r.encoding.as_str(),
            if r.truncated { " truncated" } else { "" }
        ));
        crate::rcs::golden(&format!("render/{golden}"), out.as_bytes());
    }

    #[test]
    fn each_rendering_rule_matches_its_golden_file() {
        for (api_file, golden, budget) in [
            ("text_with_suggestions.json", "text_with_suggestions.txt", 4),
            ("standalone_card.json", "standalone_card.txt", 4),
            ("carousel.json", "carousel.txt", 4),
            ("file.json", "file.txt", 4),
        ] {
            let r = to_sms(&api(api_file), &opts(budget));
            assert!(r.segments <= budget, "{golden}");
            check(golden, &r);
        }
    }

    #[test]
    fn plain_text_is_never_cut_and_suggestions_drop_first() {
        let long = "a".repeat(400);
        let m = RcsMessage::from_value(serde_json::json!({"text": long,
            "suggestions": [{"reply": {"text": "Yes", "postback": "y"}}]}))
        .unwrap();
        let r = to_sms(&m, &opts(1));
        assert!(r.text.starts_with(&long));
        assert_eq!(r.segments, 3);
        // The text needs 3 segments anyway; the suggestion fits in them.
        assert_eq!(r.suggestions.len(), 1);
        let m = RcsMessage::from_value(serde_json::json!({"text": "a".repeat(459),
            "suggestions": [{"reply": {"text": "Yes", "postback": "y"}}]}))
        .unwrap();
        let r = to_sms(&m, &opts(1));
        assert_eq!(r.text, "a".repeat(459));
        assert!(r.truncated && r.suggestions.is_empty());
        check("text_suggestions_dropped.txt", &r);
    }

    #[test]
    fn over_budget_descriptions_shrink_with_a_marker() {
        let m = RcsMessage::from_value(serde_json::json!({"rich_card": {"standalone": {"card": {
            "title": "Winter sale",
            "description": "Boots, coats, scarves and gloves for the whole family. ".repeat(10),
            "media": {"url": "https://shop.example/img/winter.jpg", "content_type": "image/jpeg"},
            "suggestions": [{"reply": {"text": "Show boots", "postback": "sale_boots"}},
                            {"reply": {"text": "Show coats", "postback": "sale_coats"}}]}}}}))
        .unwrap();
        let r = to_sms(&m, &opts(2));
        assert!(r.truncated && r.segments <= 2);
        assert!(r.text.contains(&format!("family{MARKER}")) || r.text.contains(MARKER));
        assert!(r.text.contains("https://shop.example/img/winter.jpg"));
        assert_eq!(r.suggestions.len(), 2);
        check("card_description_shortened.txt", &r);
    }

    #[test]
    fn cuts_never_split_a_character_or_a_sequence() {
        // A family emoji (ZWJ sequence) and a flag around the cut point, in
        // UCS-2, with a one-segment budget.
        let family = "\u{1F468}\u{200D}\u{1F469}\u{200D}\u{1F467}";
        let desc = format!(
            "{}{family}{family}\u{1F1EC}\u{1F1E7}e\u{0301}{}",
            "ж".repeat(40),
            "ж".repeat(40)
        );
        let m = RcsMessage::from_value(serde_json::json!({"rich_card": {"standalone": {"card": {
            "title": "Привет", "description": desc}}}}))
        .unwrap();
        for budget in 1..=2 {
            let r = to_sms(&m, &opts(budget));
            assert!(r.segments <= budget, "{budget}");
            assert_eq!(r.encoding, Encoding::Ucs2);
            // What is kept of the description is a prefix that ends
            // between whole sequences.
            let line = r.text.lines().nth(1).unwrap().trim_end_matches(MARKER);
            let kept = line.chars().count();
            assert!(desc.starts_with(line), "{budget}");
            assert!(!splits_sequence(&chars_of(&desc), kept), "{budget}");
        }
        let r = to_sms(&m, &opts(1));
        check("ucs2_cut_between_sequences.txt", &r);
        // Every cut point backs off out of sequences.
        let chars = chars_of(&desc);
        for k in 0..=chars.len() {
            let p = safe_prefix(&chars, k);
            assert!(!splits_sequence(&chars, p.chars().count()), "{k}");
        }
        let flags: Vec<char> = "\u{1F1EC}\u{1F1E7}\u{1F1EB}\u{1F1F7}".chars().collect();
        assert_eq!(safe_prefix(&flags, 3).chars().count(), 2);
        assert_eq!(safe_prefix(&flags, 1).chars().count(), 0);
    }

    fn chars_of(s: &str) -> Vec<char> {
        s.chars().collect()
    }

    #[test]
    fn a_title_too_long_for_the_budget_cuts_the_whole_rendering() {
        let m = RcsMessage::from_value(serde_json::json!({"rich_card": {"standalone": {"card": {
            "title": "T".repeat(200), "description": "d",
            "suggestions": [{"reply": {"text": "Yes", "postback": "y"}}]}}}}))
        .unwrap();
        let r = to_sms(&m, &opts(1));
        assert_eq!(r.segments, 1);
        assert!(r.text.ends_with(MARKER));
        assert!(
            r.suggestions.is_empty(),
            "the cut-off suggestion is not offered"
        );
        assert_eq!(r.text.chars().count(), 160);
    }

    #[test]
    fn numbered_replies_map_back_to_postbacks() {
        let r = to_sms(&api("carousel.json"), &opts(4));
        let pick = |s: &str| reply_to_suggestion(s, &r.suggestions).map(|n| n.postback.clone());
        assert_eq!(pick("1").as_deref(), Some("book_101"));
        assert_eq!(pick(" 2. ").as_deref(), Some("book_202"));
        assert_eq!(pick("#3").as_deref(), Some("map_202"));
        assert_eq!(pick("4"), None);
        assert_eq!(pick("2 please"), None);
        assert_eq!(pick(""), None);
        assert_eq!(human_size(512), "512 B");
        assert_eq!(human_size(183_524), "179 KB");
        assert_eq!(human_size(4_400_000), "4.2 MB");
    }

    #[test]
    fn sms_to_rcs_rules() {
        use crate::sms::{Content, Message};
        let t = OffsetDateTime::parse(
            "2024-06-22T08:46:11Z",
            &time::format_description::well_known::Rfc3339,
        )
        .unwrap();
        let m = Message {
            source: "+14155550100".into(),
            reference: 7,
            total: 2,
            content: Content::Text(format!("{}{}", "a".repeat(153), "second part")),
            first_arrival: t,
            last_arrival: t,
        };
        let cpim = sms_to_cpim(
            &m,
            "tel:+14155550100",
            "sip:+14155550101@ims.example",
            "Sms-0007",
        )
        .unwrap();
        crate::rcs::golden("render/sms_multipart_to_cpim.txt", &cpim.to_bytes());
        assert_eq!(cpim.body.len(), 164, "both parts in one RCS message");
        let report = crate::sms::StatusReport {
            more_messages: false,
            loop_prevention: false,
            status_report_qualifier: false,
            message_reference: 7,
            recipient: crate::sms::Address::parse_number("+14155550101").unwrap(),
            scts: crate::sms::Timestamp::new(t).unwrap(),
            discharge_time: crate::sms::Timestamp::new(t).unwrap(),
            status: crate::sms::Status(0),
            pid: None,
            dcs: None,
            user_data: None,
        };
        let imdn = status_report_to_imdn(&report, "Msg-0001").unwrap();
        assert_eq!(
            (imdn.kind, imdn.status),
            (Kind::Delivery, Status::Delivered)
        );
        crate::rcs::golden("render/status_report_to_imdn.xml", &imdn.to_xml().unwrap());
        let failed = status_report_to_imdn(
            &crate::sms::StatusReport {
                status: crate::sms::Status(0x41),
                ..report.clone()
            },
            "Msg-0001",
        )
        .unwrap();
        assert_eq!(failed.status, Status::Failed);
        assert_eq!(failed.status.gateway_status(), "failed");
        let pending = status_report_to_imdn(
            &crate::sms::StatusReport {
                status: crate::sms::Status(0x20),
                ..report
            },
            "Msg-0001",
        )
        .unwrap();
        assert_eq!(
            (pending.kind, pending.status.gateway_status()),
            (Kind::Processing, "sent")
        );
        assert!(sms_status_to_imdn("sent", "m", t).unwrap().is_none());
    }
}
