//! Shutdown: after traffic on every channel (multipart submits through the
//! SMPP server, an SMPP client bind, the generic route and webhook, the
//! private side, Twilio, Telnyx and an Android phone), SIGTERM stops the
//! process within seconds. Regression test for issue 15: a multipart submit
//! made the SMPP server hold the whole service state, so the store's writer
//! never saw its last handle go and `serve` waited for it forever.

use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;

use crate::carriers::{
    Mock, TELNYX_KEY, android_section, free_port, secret_file, telnyx_signer, twilio_section,
};
use crate::harness::*;
use crate::smpp::{FAST_RETRIES, add_client, smpp_addr, wait_bound};

/// How long a graceful stop may take.
const STOP_WITHIN: Duration = Duration::from_secs(5);

fn stops_quickly(gw: Gateway, name: &str) {
    let started = Instant::now();
    let (status, logs) = gw.terminate();
    let took = started.elapsed();
    assert!(status.success(), "{name} exited with {status}");
    assert!(
        took < STOP_WITHIN,
        "{name} took {took:?} to stop after SIGTERM"
    );
    let logs = logs.lock().unwrap();
    assert!(
        logs.iter().any(|l| l.contains("\"stopped\"")),
        "{name} did not finish its shutdown: {:?}",
        logs.iter().rev().take(5).collect::<Vec<_>>()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_after_traffic_on_every_channel_exits_within_seconds() {
    let sink = Sink::start(0).await;
    let mock = Mock::start(free_port());
    // Gateway B: the SMPP server, the generic route (the sink), the private
    // side (the sink), Twilio, Telnyx and an Android phone (the mock).
    let bdir = TempDir::new("shutdown-b");
    let telnyx = format!(
        "[telnyx]\napi_base = \"{}\"\npublic_key = \"{}\"\nfrom = \"+14155550199\"\nsecret_file = \"{}\"\n",
        mock.url(),
        B64.encode(telnyx_signer().verifying_key().as_bytes()),
        secret_file(&bdir.0, "telnyx.key", TELNYX_KEY)
    );
    let rules = "[[routing.rules]]\nto_prefix = \"+44\"\nroute = \"twilio\"\n\
                 [[routing.rules]]\nto_prefix = \"+49\"\nroute = \"telnyx\"\n\
                 [[routing.rules]]\nto_prefix = \"+33\"\nroute = \"android:phone1\"\n\
                 [routing]\ndefault = \"generic\"\n";
    let bcfg = write_config(
        &bdir.0,
        Some(&sink),
        &format!(
            "{FAST_RETRIES}[smpp.server]\nlisten = \"127.0.0.1:0\"\nthroughput = 500.0\n\n{}\n{telnyx}\n{}\n{rules}",
            twilio_section(&bdir.0, &mock, "+14155550199"),
            android_section(
                &bdir.0,
                &mock.url(),
                "http://127.0.0.1:9/webhooks/android/phone1"
            ),
        ),
    );
    let password = add_client(&bcfg, "gw-a", &[]);
    let b = Gateway::start(&bcfg);
    let addr = smpp_addr(&b).await;
    // Gateway A: an SMPP client bind to B.
    let adir = TempDir::new("shutdown-a");
    let pw_file = adir.0.join("smpp-pw");
    std::fs::write(&pw_file, &password).unwrap();
    let acfg = write_config(
        &adir.0,
        None,
        &format!(
            "{FAST_RETRIES}[[smpp.client]]\nname = \"b\"\nhost = \"{addr}\"\nsystem_id = \"gw-a\"\nsecret_file = \"{}\"\nfrom = \"+14155550123\"\n",
            pw_file.display()
        ),
    );
    let a = Gateway::start(&acfg);
    wait_bound(&a).await;

    // Multipart submits through B's SMPP server (parts reassembled there).
    let text =
        "A message long enough to need two SMPP parts on its way to the other gateway. ".repeat(3);
    for _ in 0..3 {
        let r = a
            .send(serde_json::json!({"to": "+14155550101", "text": text}))
            .await;
        assert_eq!(r.status(), 202);
    }
    let got = sink.wait_for("/sms", 3, Duration::from_secs(30)).await;
    if got.len() != 3 {
        for (n, gw) in [("A", &a), ("B", &b)] {
            for l in gw.logs.lock().unwrap().iter().filter(|l| {
                l.contains("WARN")
                    || l.contains("ERROR")
                    || l.contains("smpp")
                    || l.contains("deliver")
            }) {
                eprintln!("{n}: {}", &l[..l.len().min(300)]);
            }
        }
    }
    assert_eq!(got.len(), 3, "B did not pass the multipart messages on");

    // B's other channels: inbound to the private side, and one message out
    // through each carrier route.
    b.register_identity("+14155550101").await;
    let r = b
        .post_signed(
            "/webhooks/generic",
            &serde_json::json!({"id": "in-1", "from": "+14155550177", "to": "+14155550101", "text": "hello"}),
            GENERIC_SECRET,
        )
        .await;
    assert_eq!(r.status(), 200);
    let delivered = sink.wait_for("/private", 1, Duration::from_secs(20)).await;
    assert_eq!(delivered.len(), 1, "nothing reached the private side");
    for to in ["+447911123456", "+4915112345678", "+33612345678"] {
        let r = b
            .send(serde_json::json!({"to": to, "text": "out through a carrier"}))
            .await;
        assert_eq!(r.status(), 202, "{to}");
    }
    for (provider, path) in [
        ("twilio", "/2010-04-01"),
        ("telnyx", "/v2/messages"),
        ("android", "/message"),
    ] {
        let reqs = mock.wait_requests(provider, path, 1).await;
        assert!(!reqs.is_empty(), "nothing reached {provider}");
    }

    stops_quickly(a, "the SMPP client gateway");
    stops_quickly(b, "the SMPP server gateway");
}
