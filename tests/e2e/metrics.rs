//! `/metrics` for operators: the held-queue gauges, verdict and rate-limit
//! counters, build info, process metrics, HTTP latency by status, and the
//! shipped Grafana dashboard, whose every query names a metric the real
//! binary exports.

use std::collections::BTreeSet;

use crate::harness::*;

/// The value of an unlabelled sample `name` in a scrape.
fn sample(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
}

/// Metric names in a PromQL expression: `gateway_*` and `process_*`
/// identifiers (label names and functions never start that way).
fn metric_names(expr: &str) -> Vec<String> {
    let mut out = Vec::new();
    let bytes: Vec<char> = expr.chars().collect();
    let mut i = 0;
    while i < bytes.len() {
        let starts = i == 0 || !(bytes[i - 1].is_ascii_alphanumeric() || bytes[i - 1] == '_');
        if starts && bytes[i].is_ascii_alphabetic() {
            let mut j = i;
            while j < bytes.len() && (bytes[j].is_ascii_alphanumeric() || bytes[j] == '_') {
                j += 1;
            }
            let word: String = bytes[i..j].iter().collect();
            if word.starts_with("gateway_") || word.starts_with("process_") {
                out.push(word);
            }
            i = j;
        } else {
            i += 1;
        }
    }
    out
}

/// The metric family a series name belongs to (`_total`, `_bucket`, `_sum`,
/// `_count` are the exposition's suffixes).
fn family(series: &str) -> &str {
    for suffix in ["_total", "_bucket", "_sum", "_count"] {
        if let Some(f) = series.strip_suffix(suffix) {
            return f;
        }
    }
    series
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operator_metrics_and_the_dashboard_match_a_live_scrape() {
    let dir = TempDir::new("metrics");
    let sink = Sink::start(0).await;
    let cfg = write_config_with_policy(
        &dir.0,
        Some(&sink),
        "",
        "[classifier]\nmode = \"enforce\"\n",
    );
    let gw = Gateway::start(&cfg);

    // One sender bursts at 30 fresh recipients: some are held.
    for i in 0..30 {
        let sms = serde_json::json!({
            "id": format!("m-{i}"), "from": "+12125550177",
            "to": format!("+1415555{:04}", 1000 + i), "text": canary(),
        });
        let r = gw
            .post_signed("/webhooks/generic", &sms, GENERIC_SECRET)
            .await;
        assert_eq!(r.status(), 200);
    }
    // A 404 for the status label.
    let r = gw.client().get(gw.url("/nope")).send().await.unwrap();
    assert_eq!(r.status(), 404);
    let held = gw.count("SELECT COUNT(*) FROM messages WHERE status IN ('held', 'blocked')");
    assert!(held >= 10, "a burst is held ({held})");

    let text = gw.metrics_text().await;
    assert_eq!(sample(&text, "gateway_held_messages"), Some(held as f64));
    assert_eq!(sample(&text, "gateway_review_queue_depth"), Some(1.0));
    assert!(
        text.lines()
            .any(|l| l.starts_with("gateway_spam_verdicts_total{")
                || l.starts_with("gateway_rate_limited_total{")),
        "verdict or rate-limit counters count the holds:\n{text}"
    );
    let build = format!(
        "gateway_build_info{{version=\"{}\",",
        env!("CARGO_PKG_VERSION")
    );
    assert!(
        text.lines()
            .any(|l| l.starts_with(&build) && l.ends_with(" 1"))
    );
    assert!(sample(&text, "process_resident_memory_bytes").unwrap_or(0.0) > 1e6);
    assert!(sample(&text, "process_open_fds").unwrap_or(0.0) >= 3.0);
    assert!(sample(&text, "process_cpu_seconds_total").is_some());
    let started = sample(&text, "process_start_time_seconds").unwrap_or(0.0);
    assert!((started - now_secs() as f64).abs() < 300.0, "{started}");
    assert!(text.contains(
        "gateway_http_request_seconds_count{route=\"/webhooks/generic\",status=\"200\"} 30"
    ));
    assert!(
        text.contains("route=\"unmatched\",status=\"404\""),
        "{text}"
    );

    // The dashboard: valid JSON; every query's metrics exist in the scrape.
    let families: BTreeSet<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE ")?.split(' ').next())
        .collect();
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../docs/grafana-dashboard.json"
    );
    let dash: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let panels = dash["panels"].as_array().unwrap();
    assert!(panels.len() >= 10);
    let mut queried = BTreeSet::new();
    for p in panels {
        for t in p["targets"].as_array().unwrap() {
            let expr = t["expr"].as_str().unwrap();
            let names = metric_names(expr);
            assert!(!names.is_empty(), "{expr}");
            queried.extend(names);
        }
    }
    for name in &queried {
        assert!(
            families.contains(family(name)),
            "the dashboard queries {name}, which /metrics does not export"
        );
    }
    for must in [
        "gateway_held_messages",
        "gateway_review_queue_depth",
        "gateway_spam_verdicts_total",
        "gateway_rate_limited_total",
        "process_resident_memory_bytes",
    ] {
        assert!(queried.contains(must), "dashboard shows {must}");
    }
}

#[test]
fn dashboard_metric_names_are_found() {
    assert_eq!(
        metric_names(
            "histogram_quantile(0.99, sum by (le, route) (rate(gateway_http_request_seconds_bucket[5m])))"
        ),
        vec!["gateway_http_request_seconds_bucket"]
    );
    assert_eq!(family("gateway_messages_total"), "gateway_messages");
    assert_eq!(
        metric_names("time() - process_start_time_seconds"),
        vec!["process_start_time_seconds"]
    );
}
