//! The README's five-minute walk-through, run as written (issue 20).
//!
//! The blocks fenced as `sh walkthrough` are concatenated, in order, into one
//! bash script (a reader pastes them into one shell), run in an empty
//! directory with the built binary on PATH as `gateway`, and the script's
//! standard output is checked against the `text output` block that follows a
//! block. Only two things are changed: the README's fixed addresses
//! (127.0.0.1:8080 for the gateway, 127.0.0.1:9090 for the sink) become
//! ephemeral loopback ports, and `cargo` is a no-op (the binary is already
//! built). Everything else, including the secrets, jq and the python signing
//! line, runs verbatim.

use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::harness::{TempDir, bin};

const GATEWAY_ADDR: &str = "127.0.0.1:8080";
const SINK_ADDR: &str = "127.0.0.1:9090";
const ADMIN_ADDR: &str = "127.0.0.1:8081";
/// What a marker line between two blocks' outputs looks like.
const MARKER: &str = "@@walkthrough-block ";

/// One `sh walkthrough` block and the expected output shown after it.
#[derive(Debug, Default)]
struct Block {
    code: String,
    expected: Vec<String>,
}

/// Reads the fenced blocks out of the README: a fence may be indented (the
/// walk-through's blocks sit in a numbered list), and its indentation is
/// removed from every line of the block.
fn blocks(readme: &str) -> Vec<Block> {
    let mut out: Vec<Block> = Vec::new();
    let mut lines = readme.lines();
    while let Some(line) = lines.next() {
        let info = line.trim_start();
        let indent = line.len() - info.len();
        let kind = match info {
            "```sh walkthrough" => "code",
            "```text output" => "output",
            _ => continue,
        };
        let mut body = Vec::new();
        for l in lines.by_ref() {
            if l.trim() == "```" {
                break;
            }
            body.push(l.get(indent..).unwrap_or("").to_string());
        }
        if kind == "code" {
            out.push(Block {
                code: body.join("\n"),
                expected: Vec::new(),
            });
        } else {
            let last = out
                .last_mut()
                .expect("an output block follows a code block");
            last.expected.extend(body);
        }
    }
    out
}

/// Whitespace runs count as one space, so a table's column padding does not
/// matter; `…` in an expected line stands for anything.
fn normalise(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn line_matches(expected: &str, got: &str) -> bool {
    let exp = normalise(expected);
    let got = normalise(got);
    let parts: Vec<&str> = exp.split('…').collect();
    let mut rest = got.as_str();
    for (i, p) in parts.iter().enumerate() {
        if i == 0 {
            match rest.strip_prefix(p) {
                Some(r) => rest = r,
                None => return false,
            }
        } else if i == parts.len() - 1 {
            return rest.ends_with(p) && rest.len() >= p.len();
        } else {
            match rest.find(p) {
                Some(at) => rest = &rest[at + p.len()..],
                None => return false,
            }
        }
    }
    rest.is_empty()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The directory the script runs with on PATH: `gateway` is the binary under
/// test, `cargo` does nothing.
fn tool_dir(dir: &Path) -> std::path::PathBuf {
    let tools = dir.join("tools");
    std::fs::create_dir_all(&tools).unwrap();
    std::os::unix::fs::symlink(bin(), tools.join("gateway")).unwrap();
    let cargo = tools.join("cargo");
    std::fs::write(&cargo, "#!/bin/sh\nexit 0\n").unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&cargo, std::fs::Permissions::from_mode(0o755)).unwrap();
    tools
}

fn script(blocks: &[Block], gw: &str, sink: &str, admin: &str) -> String {
    // -e: a failing command fails the test where a reader would have seen an
    // error; the trap stops the background sink and gateway either way.
    let mut s = String::from("set -e -o pipefail\ntrap 'kill $(jobs -p) 2>/dev/null; wait' EXIT\n");
    for (i, b) in blocks.iter().enumerate() {
        s.push_str(
            &b.code
                .replace(GATEWAY_ADDR, gw)
                .replace(SINK_ADDR, sink)
                .replace(ADMIN_ADDR, admin),
        );
        s.push_str(&format!("\necho '{MARKER}{i}'\n"));
    }
    s
}

/// Runs the script in its own process group, killed whole after `limit`.
fn run(dir: &Path, tools: &Path, script: &str, limit: Duration) -> (bool, String, String) {
    std::fs::write(dir.join("walkthrough.sh"), script).unwrap();
    let path = format!(
        "{}:{}",
        tools.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut child = Command::new("bash")
        .arg("walkthrough.sh")
        .current_dir(dir)
        .env("PATH", path)
        .env_remove("GATEWAY_CONFIG")
        .env_remove("GATEWAY_DATA_DIR")
        .env_remove("GATEWAY_LISTEN")
        .env_remove("RUST_LOG")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .unwrap();
    let pgid = child.id();
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let out_t = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = out.read_to_string(&mut s);
        s
    });
    let err_t = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    let deadline = Instant::now() + limit;
    let ok = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st.success();
        }
        if Instant::now() > deadline {
            break false;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    // Whatever is left of the group (a sink or gateway after a failure).
    let _ = Command::new("kill")
        .args(["-KILL", "--", &format!("-{pgid}")])
        .stderr(Stdio::null())
        .status();
    let _ = child.wait();
    (ok, out_t.join().unwrap(), err_t.join().unwrap())
}

/// Checks that each of a block's expected lines matches a line of the output
/// from that block's start on. Not in order: the sink prints from the
/// background, so its lines land before, between or after the block's own.
fn check(blocks: &[Block], stdout: &str) -> Vec<String> {
    let lines: Vec<&str> = stdout.lines().collect();
    let mut failures = Vec::new();
    let mut start = 0;
    for (i, b) in blocks.iter().enumerate() {
        for exp in &b.expected {
            if !lines[start..].iter().any(|l| line_matches(exp, l)) {
                failures.push(format!("block {i}: no line matches {exp:?}"));
            }
        }
        let marker = format!("{MARKER}{i}");
        if let Some(k) = lines[start..].iter().position(|l| *l == marker) {
            start += k + 1;
        }
    }
    failures
}

#[test]
fn matcher_reads_ellipsis_as_anything() {
    assert!(line_matches(r#"{"id":"…","n":1}"#, r#"{"id":"abc","n":1}"#));
    assert!(line_matches("A  B …", "A B C D"));
    assert!(line_matches("…", ""));
    assert!(!line_matches(r#"{"n":1}"#, r#"{"n":12}"#));
    assert!(!line_matches("x…y", "xay z"));
}

#[test]
fn readme_walkthrough_runs_verbatim() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md")).unwrap();
    let blocks = blocks(&readme);
    assert!(
        blocks.len() >= 6,
        "walk-through blocks found: {}",
        blocks.len()
    );
    let all: String = blocks.iter().map(|b| b.code.as_str()).collect();
    // The substitution must bite, or the test would use fixed ports.
    assert!(all.contains(GATEWAY_ADDR) && all.contains(SINK_ADDR));
    assert!(blocks.iter().map(|b| b.expected.len()).sum::<usize>() >= 8);

    let dir = TempDir::new("walkthrough");
    let tools = tool_dir(&dir.0);
    let gw = format!("127.0.0.1:{}", free_port());
    let sink = format!("127.0.0.1:{}", free_port());
    let admin = format!("127.0.0.1:{}", free_port());
    let (ok, stdout, stderr) = run(
        &dir.0,
        &tools,
        &script(&blocks, &gw, &sink, &admin),
        Duration::from_secs(120),
    );
    let log = std::fs::read_to_string(dir.0.join("gateway.log")).unwrap_or_default();
    assert!(
        ok,
        "the walk-through failed\nstdout:\n{stdout}\nstderr:\n{stderr}\ngateway.log:\n{log}"
    );
    let failures = check(&blocks, &stdout);
    assert!(
        failures.is_empty(),
        "{failures:#?}\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );
    // Every block ran to its end.
    assert!(stdout.contains(&format!("{MARKER}{}", blocks.len() - 1)));
    // The walk-through's texts never reach the gateway's log.
    assert!(!log.contains("Hi Alice") && !log.contains("Hello from the private side"));
}
