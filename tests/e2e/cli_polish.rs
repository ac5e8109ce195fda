//! The operator's command line: `review block` empties the blocked sender's
//! held messages out of the queue, `messages show` gives a message's
//! metadata and history (never its text), and commands that print take
//! `--json`.

use std::process::Command;

use crate::harness::*;

fn run(cfg: &std::path::Path, args: &[&str]) -> std::process::Output {
    let out = Command::new(bin())
        .arg("--config")
        .arg(cfg)
        .args(args)
        .env("GATEWAY_OPERATOR", "alice")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn json(out: &std::process::Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)))
}

/// A database with held messages from two flagged senders.
fn seeded(dir: &TempDir) -> std::path::PathBuf {
    // Drops final at once: no gateway runs here to end an undo window.
    let cfg = write_config(&dir.0, None, "[review]\nundo_window_secs = 0\n");
    run(&cfg, &["review", "log"]);
    let db = rusqlite::Connection::open(dir.0.join("data").join("gateway.db")).unwrap();
    let mut sql = String::new();
    for (i, sender) in [
        "+12125550177",
        "+12125550177",
        "+12125550178",
        "+13105550100",
    ]
    .iter()
    .enumerate()
    {
        sql.push_str(&format!(
            "INSERT INTO messages (id, direction, channel, adapter, sender, recipient, segments, encoding, size_class, \
             status, created_at, updated_at, kid, header, sealed, verdict, score) VALUES ('m-{i}', 'inbound', 'sms', \
             'generic', '{sender}', '+1415555010{i}', 1, 'gsm7', 256, 'held', {i}, {i}, 'k', x'00', x'00', 'suspect', 0.7);"
        ));
    }
    for sender in ["+12125550177", "+12125550178", "+13105550100"] {
        sql.push_str(&format!(
            "INSERT INTO flagged_senders (sender, verdict, score, reasons, adapter, first_flagged_at, last_seen) VALUES \
             ('{sender}', 'suspect', 0.7, '[]', 'generic', 0, 0);"
        ));
    }
    db.execute_batch(&sql).unwrap();
    cfg
}

#[test]
fn block_takes_held_messages_out_of_the_queue_and_messages_show_tells_why() {
    let dir = TempDir::new("cli-block");
    let cfg = seeded(&dir);
    assert_eq!(
        json(&run(&cfg, &["review", "list", "--json"]))
            .as_array()
            .unwrap()
            .len(),
        3
    );

    // A prefix block covers two senders and three held messages.
    let out = json(&run(
        &cfg,
        &[
            "review",
            "block",
            "+121255501*",
            "--note",
            "one campaign",
            "--json",
        ],
    ));
    assert_eq!(out["dropped"], 3, "{out}");
    assert_eq!(out["list"], "block");
    let left = json(&run(&cfg, &["review", "list", "--json"]));
    let left: Vec<&str> = left
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["sender"].as_str().unwrap())
        .collect();
    assert_eq!(
        left,
        vec!["+13105550100"],
        "blocked senders leave the queue"
    );

    let db = rusqlite::Connection::open(dir.0.join("data").join("gateway.db")).unwrap();
    let erased: i64 = db
        .query_row(
            "SELECT COUNT(*) FROM messages WHERE status = 'dropped' AND sealed IS NULL",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(erased, 3, "dropped with bodies erased");
    let untouched: String = db
        .query_row("SELECT status FROM messages WHERE id = 'm-3'", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(untouched, "held");

    // The message's metadata and history say what happened, never a body.
    let shown = json(&run(&cfg, &["messages", "show", "m-0", "--json"]));
    assert_eq!(shown["status"], "dropped", "{shown}");
    assert_eq!(shown["body_stored"], false);
    let last = shown["history"].as_array().unwrap().last().unwrap().clone();
    assert!(
        last["detail"]
            .as_str()
            .unwrap()
            .starts_with("sender_blocked"),
        "{last}"
    );
    let human = String::from_utf8(run(&cfg, &["messages", "show", "m-0"]).stdout).unwrap();
    assert!(
        human
            .lines()
            .any(|l| l.starts_with("status:") && l.ends_with(" dropped")),
        "{human}"
    );
    assert!(human.contains("sender_blocked"), "{human}");
    let missing = Command::new(bin())
        .arg("--config")
        .arg(&cfg)
        .args(["messages", "show", "nope"])
        .output()
        .unwrap();
    assert_eq!(missing.status.code(), Some(2));

    // The human line says how many left the queue.
    let out = run(&cfg, &["review", "block", "+13105550100"]);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("1 held message(s) dropped"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

#[test]
fn commands_that_print_take_json() {
    let dir = TempDir::new("cli-json");
    let cfg = write_config(&dir.0, None, "");
    let created = json(&run(&cfg, &["keys", "create", "--json"]));
    assert_eq!(created["created"], true);
    let public = json(&run(&cfg, &["keys", "public", "--json"]));
    assert_eq!(public["kid"], created["kid"]);
    let plain = String::from_utf8(run(&cfg, &["keys", "public"]).stdout).unwrap();
    assert_eq!(plain.trim(), public["public_key"].as_str().unwrap());

    let api = json(&run(&cfg, &["keys", "api", "create", "ops", "--json"]));
    assert_eq!(api["name"], "ops");
    assert!(api["token"].as_str().unwrap().len() > 20);
    let revoked = json(&run(&cfg, &["keys", "api", "revoke", "ops", "--json"]));
    assert_eq!(revoked["revoked"], true);

    let keygen = json(&run(&cfg, &["envelope", "keygen"]));
    let pk = keygen["public_key"].as_str().unwrap();
    let set = json(&run(
        &cfg,
        &["identity", "set", "+14155550100", pk, "--json"],
    ));
    let shown = json(&run(&cfg, &["identity", "show", "+14155550100", "--json"]));
    assert_eq!(shown["address"], "+14155550100");
    assert_eq!(shown["public_key"], pk);
    assert_eq!(shown["kid"], set["kid"]);

    let allow = json(&run(
        &cfg,
        &["review", "allow", "+1415555*", "--expires", "1h", "--json"],
    ));
    assert_eq!(allow["list"], "allow");
    assert!(allow["expires_at"].is_string());
    let unlisted = json(&run(
        &cfg,
        &["review", "unlist", "allow", "+1415555*", "--json"],
    ));
    assert_eq!(unlisted["removed"], true);

    let sealed = json(&run(
        &cfg,
        &[
            "envelope",
            "seal",
            "--to",
            "+14155550100",
            "--text",
            "hi",
            "--json",
        ],
    ));
    assert!(sealed["id"].is_string() && sealed["envelope"].is_string());

    // `-` reads standard input: a model promoted from a pipe.
    let model = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../classifier/model/default.json"
    ))
    .unwrap();
    let mut child = Command::new(bin())
        .arg("--config")
        .arg(&cfg)
        .args(["model", "promote", "-", "--json"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        child.stdin.take().unwrap().write_all(&model).unwrap();
    }
    let promoted = child.wait_with_output().unwrap();
    assert!(promoted.status.success());
    let promoted = json(&promoted);
    assert_eq!(promoted["from"], "standard input");
    assert!(dir.0.join("data/model/active.json").exists());

    // Global options are accepted after the command and shown once.
    let help = String::from_utf8(run(&cfg, &["review", "list", "--help"]).stdout).unwrap();
    assert!(!help.contains("--data-dir"), "{help}");
    assert!(help.contains("Examples:"), "{help}");
}
