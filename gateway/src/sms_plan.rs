//! How many SMS segments a text needs and in which encoding, as the API's 202
//! reports it. Thin wrapper over the codec in `adapters::sms`.

/// Segments and encoding name for `text`.
pub fn plan(text: &str) -> (u32, &'static str) {
    // TEMPORARY until the codec branch lands: count UTF-16 units as UCS-2.
    let units = text.encode_utf16().count();
    let ascii = text.is_ascii();
    if ascii {
        let n = text.len();
        (if n <= 160 { 1 } else { n.div_ceil(153) as u32 }, "gsm7")
    } else {
        (
            if units <= 70 {
                1
            } else {
                units.div_ceil(67) as u32
            },
            "ucs2",
        )
    }
}
