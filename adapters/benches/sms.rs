//! Codec throughput: encode and decode of single- and multi-part GSM 7-bit
//! and UCS-2 messages. The goal is at least 1,000,000 segments per second
//! per core for encode + decode of a 153-character part.

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;

use adapters::sms::{
    Address, Dcs, Deliver, ModemPdu, SmsOptions, Timestamp, Tpdu, UserData, encode_text,
};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use time::macros::datetime;

fn deliver_pdus(parts: &[UserData]) -> Vec<Vec<u8>> {
    let originator = Address::parse_number("+14155550100").unwrap();
    let scts = Timestamp::new(datetime!(2026-03-01 12:00 +01:00)).unwrap();
    parts
        .iter()
        .map(|ud| {
            let pdu = ModemPdu {
                smsc: None,
                tpdu: Tpdu::Deliver(Deliver {
                    reply_path: false,
                    more_messages: false,
                    loop_prevention: false,
                    status_report_indication: false,
                    originator: originator.clone(),
                    pid: 0,
                    dcs: Dcs::general(ud.encoding(), None),
                    scts,
                    user_data: ud.clone(),
                }),
            };
            let mut b = Vec::new();
            pdu.encode(&mut b);
            b
        })
        .collect()
}

fn bench_text(c: &mut Criterion, name: &str, text: &str) {
    let opts = SmsOptions::default();
    let segments = encode_text(text, &opts, 1).unwrap().parts;
    let pdus = deliver_pdus(&segments);
    let mut group = c.benchmark_group(name);
    group.throughput(Throughput::Elements(segments.len() as u64));
    let to = Address::parse_number("+14155550101").unwrap();

    // Text -> segments -> SMS-SUBMIT bytes (what sending does).
    group.bench_function(BenchmarkId::new("encode", segments.len()), |b| {
        let mut out = Vec::with_capacity(200);
        b.iter(|| {
            let parts = encode_text(black_box(text), &opts, 1).unwrap().parts;
            for ud in parts {
                out.clear();
                let pdu = ModemPdu {
                    smsc: None,
                    tpdu: Tpdu::Submit(adapters::sms::Submit::new(to.clone(), ud)),
                };
                pdu.encode(&mut out);
                black_box(&out);
            }
        })
    });

    // Bytes -> decoded SMS-DELIVER -> text (what receiving does).
    group.bench_function(BenchmarkId::new("decode", segments.len()), |b| {
        b.iter(|| {
            for p in &pdus {
                let pdu = ModemPdu::decode_bytes(black_box(p)).unwrap();
                if let Some(ud) = pdu.tpdu.user_data() {
                    black_box(ud.text());
                }
            }
        })
    });

    // Both, per segment.
    group.bench_function(BenchmarkId::new("encode+decode", segments.len()), |b| {
        let mut out = Vec::with_capacity(200);
        b.iter(|| {
            let parts = encode_text(black_box(text), &opts, 1).unwrap().parts;
            for ud in parts {
                out.clear();
                let pdu = ModemPdu {
                    smsc: None,
                    tpdu: Tpdu::Submit(adapters::sms::Submit::new(to.clone(), ud)),
                };
                pdu.encode(&mut out);
                let back = ModemPdu::decode_bytes(&out).unwrap();
                black_box(back.tpdu.user_data().and_then(UserData::text));
            }
        })
    });
    group.finish();
}

fn benches(c: &mut Criterion) {
    let gsm_part: String = "The quick brown fox jumps over the lazy dog 0123456789 @£$¥ "
        .chars()
        .cycle()
        .take(153)
        .collect();
    bench_text(c, "gsm7_153_chars", &gsm_part);
    let gsm_three: String = gsm_part.chars().cycle().take(153 * 3).collect();
    bench_text(c, "gsm7_3_parts", &gsm_three);
    let ucs_single: String = "Привет, мир! 日本語 😀 ".chars().cycle().take(60).collect();
    bench_text(c, "ucs2_single", &ucs_single);
    let ucs_multi: String = "Привет, мир! 日本語 😀 "
        .chars()
        .cycle()
        .take(200)
        .collect();
    bench_text(c, "ucs2_multipart", &ucs_multi);
}

criterion_group!(sms, benches);
criterion_main!(sms);
