//! Property tests: any text survives segmentation, SMS-SUBMIT and
//! SMS-DELIVER encoding, decoding and reassembly in any order.

use adapters::sms::{
    self, Address, Content, Deliver, Encoding, Inserted, ModemPdu, NationalLanguage, Part,
    Reassembler, ReassemblyConfig, SmsOptions, Submit, Timestamp, Tpdu, encode_text,
};
use proptest::prelude::*;
use time::macros::datetime;

/// Characters that exercise every path: default alphabet, extension table,
/// national tables, BMP non-GSM, astral (surrogate pairs), controls.
fn interesting_char() -> impl Strategy<Value = char> {
    prop_oneof![
        4 => proptest::char::range('a', 'z'),
        2 => proptest::sample::select(vec!['@', '$', '§', '_', '€', '{', '}', '[', ']', '~', '|', '^', '\\', '\u{0C}', '\n', '\r', ' ', 'ß', 'Ä', 'à', 'Ç']),
        1 => proptest::sample::select(vec!['Ğ', 'ş', 'ı', 'İ', 'ç', 'á', 'Ó', 'ú', 'ê', 'õ', 'Ã', 'º', '∞', '`']),
        1 => proptest::sample::select(vec!['😀', '👍', '𝄞', '日', 'ж', '\u{FEFF}', '\u{2019}', '\u{0}', '\u{1B}']),
        1 => any::<char>(),
    ]
}

fn text_strategy() -> impl Strategy<Value = String> {
    prop_oneof![
        proptest::collection::vec(interesting_char(), 0..700).prop_map(|v| v.into_iter().collect()),
        proptest::collection::vec(proptest::char::range('a', 'z'), 150..480)
            .prop_map(|v| v.into_iter().collect()),
        any::<String>(),
    ]
}

fn options_strategy() -> impl Strategy<Value = SmsOptions> {
    (
        any::<bool>(),
        proptest::sample::subsequence(NationalLanguage::ALL.to_vec(), 0..=3),
    )
        .prop_map(|(wide, langs)| SmsOptions {
            national_languages: langs,
            smart_encoding: false,
            wide_concat_reference: wide,
        })
}

/// Deterministic Fisher-Yates driven by `seed`.
fn shuffle<T>(v: &mut [T], mut seed: u64) {
    for i in (1..v.len()).rev() {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let j = (seed >> 33) as usize % (i + 1);
        v.swap(i, j);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn any_text_round_trips(text in text_strategy(), opts in options_strategy(), reference in any::<u16>(), seed in any::<u64>()) {
        let plan = sms::plan(&text, &opts);
        let encoded = match encode_text(&text, &opts, reference) {
            Ok(e) => e,
            Err(adapters::Error::TooManySegments { segments }) => {
                prop_assert!(segments > 255);
                return Ok(());
            }
            Err(e) => return Err(TestCaseError::fail(e.to_string())),
        };
        prop_assert_eq!(&encoded.plan, &plan);
        prop_assert_eq!(encoded.parts.len(), plan.segments);
        if opts.national_languages.is_empty() {
            let want = if sms::gsm7::is_default_alphabet(&text) { Encoding::Gsm7 } else { Encoding::Ucs2 };
            prop_assert_eq!(plan.encoding, want);
        }

        let destination = Address::parse_number("+14155550101").unwrap();
        let scts = Timestamp::new(datetime!(2026-03-01 12:00 -05:00)).unwrap();
        let mut parts = Vec::new();
        for (i, ud) in encoded.parts.iter().enumerate() {
            prop_assert!(ud.wire_octets() <= 140, "user data over 140 octets");

            // SMS-SUBMIT through the modem framing.
            let submit = ModemPdu { smsc: None, tpdu: Tpdu::Submit(Submit::new(destination.clone(), ud.clone())) };
            let mut bytes = Vec::new();
            submit.encode(&mut bytes);
            prop_assert_eq!(&ModemPdu::decode_bytes(&bytes).unwrap(), &submit);

            // SMS-DELIVER, decoded and turned into a reassembly part.
            let deliver = Deliver {
                reply_path: false,
                more_messages: false,
                loop_prevention: false,
                status_report_indication: false,
                originator: destination.clone(),
                pid: 0,
                dcs: sms::Dcs::general(ud.encoding(), None),
                scts,
                user_data: ud.clone(),
            };
            let mut bytes = Vec::new();
            deliver.encode(&mut bytes);
            let back = Deliver::decode_bytes(&bytes).unwrap();
            prop_assert_eq!(&back, &deliver);
            let concat = back.user_data.header().and_then(|h| h.concat());
            if plan.segments > 1 {
                let c = concat.unwrap();
                prop_assert_eq!((c.part as usize, c.total as usize), (i + 1, plan.segments));
            } else {
                prop_assert!(concat.is_none());
            }
            parts.push(Part::from_deliver(&back, destination.to_string(), datetime!(2026-03-01 17:00 UTC)));
        }

        shuffle(&mut parts, seed);
        let mut r = Reassembler::new(ReassemblyConfig::default());
        let mut done = None;
        for p in parts {
            prop_assert!(done.is_none(), "completed before the last part");
            if let Inserted::Complete(m) = r.insert(p).unwrap().inserted {
                done = Some(m);
            }
        }
        let m = done.expect("message completed");
        prop_assert_eq!(m.content, Content::Text(text));
        prop_assert_eq!(r.pending_parts(), 0);
    }

    #[test]
    fn arbitrary_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..200)) {
        adapters::fuzzing::pdu_decode(&data);
    }

    #[test]
    fn arbitrary_reassembly_ops_keep_invariants(data in proptest::collection::vec(any::<u8>(), 0..400)) {
        adapters::fuzzing::reassembly(&data);
    }
}
