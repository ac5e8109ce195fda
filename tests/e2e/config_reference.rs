//! `gateway config reference`: the binary prints the reference README
//! carries, in Markdown and as JSON, and every documented key with its
//! example makes a file `gateway config check` accepts the shape of.

use std::process::Command;

use crate::harness::*;

fn reference(args: &[&str]) -> String {
    let out = Command::new(bin())
        .args(["config", "reference"])
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn config_reference_is_readmes_and_its_json_lists_every_section() {
    let md = reference(&[]);
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md")).unwrap();
    assert!(
        readme.contains(md.trim()),
        "README.md's reference is not the binary's output; run \
         `UPDATE_CONFIG_REFERENCE=1 cargo test -p gateway --lib config_reference`"
    );
    for header in [
        "#### `[http]`",
        "#### `[review]`",
        "#### `[[modems]]`",
        "#### `[smpp.server]`",
    ] {
        assert!(md.contains(header), "{header}");
    }

    let json: serde_json::Value = serde_json::from_str(&reference(&["--json"])).unwrap();
    let sections = json["sections"].as_array().unwrap();
    let http = sections
        .iter()
        .find(|s| s["section"] == "http")
        .expect("[http]");
    let keys: Vec<&str> = http["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["key"].as_str().unwrap())
        .collect();
    for k in [
        "max_connections",
        "header_read_timeout_secs",
        "max_header_bytes",
        "max_headers",
    ] {
        assert!(keys.contains(&k), "{k} documented");
    }
    let review = sections.iter().find(|s| s["section"] == "review").unwrap();
    assert_eq!(review["keys"][0]["key"], "undo_window_secs");
    assert_eq!(review["keys"][0]["default"], "30");

    // Each section's examples together form a file the gateway parses.
    let dir = TempDir::new("config-reference");
    for s in sections {
        let mut text = format!("{}\n", s["header"].as_str().unwrap());
        for k in s["keys"].as_array().unwrap() {
            text.push_str(&format!(
                "{} = {}\n",
                k["key"].as_str().unwrap(),
                k["example"].as_str().unwrap()
            ));
        }
        let file = dir.0.join("c.toml");
        std::fs::write(&file, &text).unwrap();
        let out = Command::new(bin())
            .args(["config", "check", "--json"])
            .arg(&file)
            .output()
            .unwrap();
        let answer: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        // Examples are shapes, not a coherent deployment: semantic checks
        // (a base64 key, a route that exists) may refuse them, the parse
        // must not.
        let error = answer["error"].as_str().unwrap_or_default();
        assert!(
            !error.contains("parse error") && !error.contains("unknown field"),
            "[{}]: {error}\n{text}",
            s["section"]
        );
    }
}
