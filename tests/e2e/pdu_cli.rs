//! `gateway pdu decode|encode` as an operator runs them.

use std::process::Command;

use crate::harness::bin;

fn run(args: &[&str]) -> std::process::Output {
    Command::new(bin()).args(args).output().unwrap()
}

#[test]
fn decode_prints_one_json_object_and_bad_input_exits_2() {
    let out = run(&[
        "pdu",
        "decode",
        "07917283010010F5040BC87238880900F10000993092516195800AE8329BFD4697D9EC37",
    ]);
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["type"], "deliver");
    assert_eq!(v["text"], "hellohello");
    assert_eq!(v["timestamp"], "1999-03-29T15:16:59+02:00");
    for bad in ["07917283010010F5040BC872", "zz", "", "0791"] {
        let out = run(&["pdu", "decode", bad]);
        assert_eq!(out.status.code(), Some(2), "{bad}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("offset") || err.contains("hex") || err.contains("empty"),
            "{bad}: {err}"
        );
    }
}

#[test]
fn encode_round_trips_through_decode_in_part_order() {
    let text = "Grüße! ".repeat(30);
    let out = run(&[
        "pdu",
        "encode",
        "--to",
        "+14155550101",
        "--text",
        &text,
        "--reference",
        "7",
        "--request-report",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<String> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    assert!(lines.len() >= 2);
    let mut joined = String::new();
    for (i, l) in lines.iter().enumerate() {
        let d = run(&["pdu", "decode", l]);
        assert!(d.status.success());
        let v: serde_json::Value = serde_json::from_slice(&d.stdout).unwrap();
        assert_eq!(v["type"], "submit");
        assert_eq!(v["recipient"], "+14155550101");
        assert_eq!(v["status_report_requested"], true);
        assert_eq!(v["concat"]["reference"], 7);
        assert_eq!(v["concat"]["part"], i + 1);
        assert_eq!(v["concat"]["total"], lines.len());
        joined.push_str(v["text"].as_str().unwrap());
    }
    assert_eq!(joined, text);
}
