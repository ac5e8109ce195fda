//! `gateway demo` (issue 20): one command, no config file, the whole system
//! in a minute. The real binary is run as a newcomer would run it.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::harness::bin;

/// The data directory the demo names on its first line.
fn data_dir_of(stdout: &str) -> std::path::PathBuf {
    let first = stdout.lines().next().unwrap_or_default();
    let at = first
        .find("data in ")
        .expect("first line names the data directory");
    std::path::PathBuf::from(first[at + "data in ".len()..].trim())
}

/// Output lines that start with a step's name, after the indentation.
fn step<'a>(stdout: &'a str, name: &str) -> Vec<&'a str> {
    stdout
        .lines()
        .filter(|l| l.trim_start().starts_with(&format!("{name} ")))
        .collect()
}

#[test]
fn demo_runs_both_ways_and_cleans_up() {
    let started = Instant::now();
    let out = Command::new(bin())
        .arg("demo")
        // A real gateway's secrets in the environment must not leak into
        // the demo's made-up ones (both ends would disagree).
        .env("GATEWAY_GENERIC_SECRET", "operator-secret")
        .env("GATEWAY_PRIVATE_SECRET", "another-operator-secret")
        .env_remove("GATEWAY_CONFIG")
        .env_remove("GATEWAY_DATA_DIR")
        .env_remove("RUST_LOG")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "stdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(started.elapsed() < Duration::from_secs(60));

    // Each step, each way: accepted, sealed, delivered twice; sent once
    // (to the SMSC); opened once (by the private side).
    for (name, n) in [
        ("accepted", 2),
        ("sealed", 2),
        ("delivered", 2),
        ("sent", 1),
        ("opened", 1),
    ] {
        assert_eq!(step(&stdout, name).len(), n, "{name} in:\n{stdout}");
    }
    assert!(
        stdout.contains("history: queued -> sent -> delivered"),
        "{stdout}"
    );
    // The phone shows what the private side sent; the private side opens
    // what the phone sent.
    assert!(
        stdout.contains("shows, from +14155550101: \"Hi Bob, this is Alice on the private side.\"")
    );
    assert!(step(&stdout, "opened")[0].contains("\"Hi Alice! Bob here, replying from my phone.\""));
    // The envelope was sealed to alice's registered key, not the edge key.
    let alice_kid = stdout
        .split("registered her public key (kid ")
        .nth(1)
        .and_then(|s| s.split(')').next())
        .unwrap();
    assert!(step(&stdout, "sealed")[1].contains(alice_kid));
    assert!(stdout.contains("demo finished in"));
    // Nothing left behind, and the service's log said nothing alarming.
    assert!(
        !data_dir_of(&stdout).exists(),
        "temporary data directory left"
    );
    assert!(
        !stderr.contains("ERROR") && !stderr.contains("WARN"),
        "{stderr}"
    );
}

#[test]
fn demo_keep_running_serves_until_interrupted() {
    let mut child = Command::new(bin())
        .args(["demo", "--keep-running"])
        .env_remove("GATEWAY_CONFIG")
        .env_remove("GATEWAY_DATA_DIR")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut all = String::new();
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            all.push_str(&line);
            all.push('\n');
            let _ = tx.send(all.clone());
        }
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut seen = String::new();
    while !seen.contains("health ") && Instant::now() < deadline {
        if let Ok(s) = rx.recv_timeout(Duration::from_millis(200)) {
            seen = s;
        }
    }
    assert!(seen.contains("still running"), "{seen}");
    // The API it names answers while it runs.
    let health = seen
        .lines()
        .find_map(|l| l.trim_start().strip_prefix("health "))
        .and_then(|l| l.split_whitespace().next())
        .unwrap()
        .to_string();
    let got = Command::new("curl").args(["-s", &health]).output().unwrap();
    assert!(String::from_utf8_lossy(&got.stdout).contains("\"status\""));
    let data_dir = data_dir_of(&seen);
    assert!(data_dir.exists());

    let _ = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status();
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        assert!(Instant::now() < deadline, "demo did not stop on SIGINT");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success());
    assert!(!data_dir.exists());
}
