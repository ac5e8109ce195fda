//! How many SMS segments a text needs and in which encoding (the API's 202
//! reports it), and the text as it will be sent. Thin wrapper over the codec
//! in `adapters::sms` with the gateway's `[sms]` options.

use std::borrow::Cow;

use adapters::sms::SmsOptions;

/// Segments and encoding name for `text`. A count beyond `u32` is clamped;
/// such a text is refused long before (10 000 characters at most).
pub fn plan(text: &str, opts: &SmsOptions) -> (u32, &'static str) {
    let p = adapters::sms::plan(text, opts);
    (
        u32::try_from(p.segments).unwrap_or(u32::MAX),
        p.encoding.as_str(),
    )
}

/// Segments and encoding of an inbound message's content: text is
/// planned like outbound text; 8-bit data counts 140 octets in one SMS,
/// 134 (133 with 16-bit references) per part.
pub fn plan_content(content: &crate::envelope::Content, opts: &SmsOptions) -> (u32, &'static str) {
    match content {
        crate::envelope::Content::Data { data } => {
            let parts = adapters::sms::encode_binary(data, opts, 0, None).map_or(u32::MAX, |e| {
                u32::try_from(e.parts.len()).unwrap_or(u32::MAX)
            });
            (parts, adapters::sms::Encoding::EightBit.as_str())
        }
        other => plan(other.as_text(), opts),
    }
}

/// Whether smart encoding changes `text` to keep it in GSM 7-bit (only
/// computed when it is switched on).
pub fn smart_encoded(text: &str, opts: &SmsOptions) -> bool {
    opts.smart_encoding && adapters::sms::plan(text, opts).smart_encoded
}

/// The text as it goes out as SMS: with smart encoding on, look-alike
/// characters are replaced exactly as [`plan`] assumed.
pub fn render<'a>(text: &'a str, opts: &SmsOptions) -> Cow<'a, str> {
    if opts.smart_encoding {
        let p = adapters::sms::plan(text, opts);
        if p.smart_encoded {
            return adapters::sms::segment::smart_replace(text);
        }
    }
    Cow::Borrowed(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boundaries_and_smart_encoding() {
        let off = SmsOptions::default();
        assert_eq!(plan(&"a".repeat(160), &off), (1, "gsm7"));
        assert_eq!(plan(&"a".repeat(161), &off), (2, "gsm7"));
        assert_eq!(plan(&"é".repeat(70), &off), (1, "gsm7"));
        assert_eq!(plan(&"ж".repeat(70), &off), (1, "ucs2"));
        assert_eq!(plan(&"ж".repeat(71), &off), (2, "ucs2"));
        assert_eq!(plan("it\u{2019}s", &off), (1, "ucs2"));
        let smart = SmsOptions {
            smart_encoding: true,
            ..SmsOptions::default()
        };
        assert_eq!(plan("it\u{2019}s", &smart), (1, "gsm7"));
        assert_eq!(render("it\u{2019}s", &smart), "it's");
        assert_eq!(render("it\u{2019}s", &off), "it\u{2019}s");
    }
}
