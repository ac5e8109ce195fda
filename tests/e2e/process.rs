//! Process hygiene: a closed pipe never panics the CLI, and a service whose
//! stderr is gone still stops on SIGTERM.

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::harness::*;

#[test]
fn a_cli_whose_reader_went_away_exits_quietly() {
    // Enough output to overflow the pipe once the reader is gone.
    let mut child = Command::new(bin())
        .args(["pdu", "encode", "--to", "+14155550101", "--text"])
        .arg("x".repeat(3000))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let status = child.wait().unwrap();
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert!(!err.contains("panicked"), "{err}");
    assert!(
        status.success() || status.code() == Some(141),
        "{status:?}: {err}"
    );
}

#[test]
fn sigterm_stops_a_service_whose_stderr_is_closed() {
    let dir = TempDir::new("closed-stderr");
    let cfg = write_config(&dir.0, None, "");
    let mut child = Command::new(bin())
        .arg("--config")
        .arg(&cfg)
        .arg("serve")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // the reader goes away at once: every log line from now fails to write
    drop(child.stderr.take());
    std::thread::sleep(Duration::from_millis(1500));
    let _ = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(status.success(), "{status:?}");
            break;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("the service ignored SIGTERM with stderr closed");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn logs_to_a_file_carry_no_colour_codes() {
    let dir = TempDir::new("no-colour");
    let cfg = write_config(&dir.0, None, "");
    let log = std::fs::File::create(dir.0.join("serve.log")).unwrap();
    let mut child = Command::new(bin())
        .arg("--config")
        .arg(&cfg)
        .arg("serve")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    let _ = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status();
    let _ = child.wait();
    let text = std::fs::read_to_string(dir.0.join("serve.log")).unwrap();
    assert!(
        text.contains("listening") || !text.is_empty(),
        "no log at all"
    );
    assert!(
        !text.contains('\u{1b}'),
        "ANSI escapes in a log file: {text}"
    );
}
