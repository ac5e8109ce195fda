//! `GET /v1/messages`: a few hundred messages listed newest first, paging
//! reaches each exactly once, the filters hold, bad parameters are 400s
//! naming the parameter, and no body is ever shown.

use std::collections::HashSet;
use std::time::Duration;

use crate::harness::*;

const N: usize = 300;

fn now_rfc3339() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap()
}

async fn list(gw: &Gateway, query: &[(&str, &str)]) -> (u16, serde_json::Value) {
    let r = gw
        .client()
        .get(gw.url("/v1/messages"))
        .bearer_auth(&gw.token)
        .query(query)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

/// Every page of `query`, following `next_cursor`; the ids in order.
async fn all_pages(gw: &Gateway, query: &[(&str, &str)]) -> (Vec<serde_json::Value>, usize) {
    let mut out = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    for _ in 0..1000 {
        let mut q: Vec<(&str, &str)> = query.to_vec();
        if let Some(c) = &cursor {
            q.push(("cursor", c));
        }
        let (status, body) = list(gw, &q).await;
        assert_eq!(status, 200, "{body}");
        pages += 1;
        out.extend(body["messages"].as_array().unwrap().iter().cloned());
        match body["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => return (out, pages),
        }
    }
    panic!("paging did not end");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_pages_filters_and_refuses_bad_parameters() {
    let dir = TempDir::new("listing");
    let sink = Sink::start(0).await;
    let cfg = write_config(&dir.0, Some(&sink), "");
    let gw = Gateway::start(&cfg);
    let secret = canary();

    let mut ids = Vec::new();
    let mut mid = String::new();
    for i in 0..N {
        if i == N / 2 {
            tokio::time::sleep(Duration::from_millis(20)).await;
            mid = now_rfc3339();
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let to = format!("+1415555010{}", i % 3);
        let r = gw
            .send(serde_json::json!({"to": to, "text": format!("{secret} {i}")}))
            .await;
        assert_eq!(r.status(), 202);
        ids.push(
            r.json::<serde_json::Value>().await.unwrap()["id"]
                .as_str()
                .unwrap()
                .to_string(),
        );
    }
    // Every third is delivered.
    for id in ids.iter().step_by(3) {
        gw.wait_status(id, "sent", Duration::from_secs(20)).await;
        gw.report_generic_status(id, "delivered").await;
    }

    // Default page: 50, newest first, with a cursor.
    let (status, first) = list(&gw, &[]).await;
    assert_eq!(status, 200);
    assert_eq!(first["messages"].as_array().unwrap().len(), 50);
    assert_eq!(first["messages"][0]["id"], ids[N - 1].as_str());
    assert!(first["next_cursor"].is_string());
    assert!(!first.to_string().contains(&secret), "metadata only");

    // Paging reaches every message exactly once, newest first.
    let (all, pages) = all_pages(&gw, &[("limit", "37")]).await;
    assert_eq!(pages, N.div_ceil(37));
    let listed: Vec<&str> = all.iter().map(|m| m["id"].as_str().unwrap()).collect();
    let unique: HashSet<&str> = listed.iter().copied().collect();
    assert_eq!((listed.len(), unique.len()), (N, N));
    let keys: Vec<(i128, String)> = all
        .iter()
        .map(|m| {
            let at = time::OffsetDateTime::parse(
                m["created_at"].as_str().unwrap(),
                &time::format_description::well_known::Rfc3339,
            )
            .unwrap();
            (
                at.unix_timestamp_nanos(),
                m["id"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert!(keys.windows(2).all(|w| w[0] > w[1]), "newest first");
    let newest_first: Vec<&str> = ids.iter().rev().map(String::as_str).collect();
    assert_eq!(listed, newest_first);
    assert!(
        all.iter()
            .all(|m| m.get("text").is_none() && m.get("body").is_none())
    );

    // Filters, alone and together, across pages.
    let (to1, _) = all_pages(&gw, &[("to", "+14155550101"), ("limit", "500")]).await;
    assert_eq!(to1.len(), N / 3);
    assert!(to1.iter().all(|m| m["to"] == "+14155550101"));
    // An unencoded + arrives as a space and still works.
    let r = gw
        .client()
        .get(gw.url("/v1/messages?to=+14155550101&limit=500"))
        .bearer_auth(&gw.token)
        .send()
        .await
        .unwrap();
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["messages"].as_array().unwrap().len(), N / 3);
    let (delivered, _) = all_pages(&gw, &[("status", "delivered"), ("limit", "20")]).await;
    assert_eq!(delivered.len(), N / 3);
    assert!(delivered.iter().all(|m| m["status"] == "delivered"));
    let (both, _) = all_pages(&gw, &[("status", "delivered"), ("to", "+14155550100")]).await;
    assert_eq!(
        both.len(),
        N / 3,
        "ids 0,3,6,… go to …0100 and are delivered"
    );
    let (from, _) = all_pages(&gw, &[("from", "+14155550199"), ("limit", "500")]).await;
    assert_eq!(from.len(), N);
    let (none, _) = all_pages(&gw, &[("from", "+14155550198")]).await;
    assert!(none.is_empty());
    let (late, _) = all_pages(&gw, &[("since", &mid), ("limit", "500")]).await;
    let (early, _) = all_pages(&gw, &[("until", &mid), ("limit", "500")]).await;
    assert_eq!((late.len(), early.len()), (N - N / 2, N / 2));
    assert_eq!(late.last().unwrap()["id"], ids[N / 2].as_str());
    assert_eq!(early[0]["id"], ids[N / 2 - 1].as_str());
    let (outbound, _) = all_pages(&gw, &[("direction", "inbound")]).await;
    assert!(outbound.is_empty());

    // Bad parameters are 400s naming the parameter.
    for (k, v) in [
        ("limit", "0"),
        ("limit", "501"),
        ("limit", "ten"),
        ("status", "bogus"),
        ("since", "yesterday"),
        ("until", "1700000000"),
        ("cursor", "not-a-cursor"),
        ("to", "+1415555O1O1"),
        ("direction", "sideways"),
        ("colour", "blue"),
    ] {
        let (status, body) = list(&gw, &[(k, v)]).await;
        assert_eq!(status, 400, "{k}={v}: {body}");
        let msg = body["error"]["message"].as_str().unwrap();
        assert!(msg.contains(k), "{k}={v}: {msg}");
    }
    // And the API key is required.
    let r = gw
        .client()
        .get(gw.url("/v1/messages"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
}
