#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The reference against the real deserializer, and README's copy.

use super::*;
use crate::app::config::Config;

/// The file text of section `s` with its base, without the base's line
/// for `skip`, plus `extra`.
fn file(s: &Section, skip: &str, extra: &str) -> String {
    let base: Vec<&str> = s
        .base
        .lines()
        .filter(|l| l.split('=').next().map(str::trim) != Some(skip))
        .collect();
    format!("{}\n{}\n{}\n", s.header(), base.join("\n"), extra)
}

fn parse(text: &str) -> Result<Config, String> {
    Config::from_toml(text).map_err(|e| e.to_string())
}

#[test]
fn config_reference_every_key_parses_with_its_example() {
    for s in SECTIONS {
        for key in s.keys {
            let text = file(s, key.name, &format!("{} = {}", key.name, key.example));
            if let Err(e) = parse(&text) {
                panic!(
                    "[{}] {}: example does not parse: {e}\n{text}",
                    s.path, key.name
                );
            }
        }
    }
}

#[test]
fn config_reference_defaults_are_the_real_defaults() {
    for s in SECTIONS {
        let plain = parse(&file(s, "", "")).unwrap();
        for key in s.keys {
            let KeyDefault::Value(v) = key.default else {
                continue;
            };
            let text = file(s, key.name, &format!("{} = {v}", key.name));
            let with = parse(&text).unwrap_or_else(|e| panic!("[{}] {}: {e}", s.path, key.name));
            assert_eq!(
                format!("{plain:?}"),
                format!("{with:?}"),
                "[{}] {} = {v} is not the default",
                s.path,
                key.name
            );
        }
    }
}

/// The field names serde's "unknown field" error lists for the section.
fn known_fields(s: &Section) -> Option<Vec<String>> {
    let e = parse(&file(s, "", "zz_probe = 1")).unwrap_err();
    assert!(e.contains("zz_probe"), "{e}");
    let (_, list) = e.split_once("expected")?;
    let list = list.lines().next().unwrap_or_default();
    Some(
        list.split('`')
            .skip(1)
            .step_by(2)
            .map(str::to_string)
            .collect(),
    )
}

/// The field names of section `s`'s struct, from the `Debug` text of a
/// configuration that has it; a field holding a flattened `SecretRef`
/// that is not itself a documented key stands for `secret_env` and
/// `secret_file`.
fn debug_fields(s: &Section) -> Vec<String> {
    let cfg = parse(&file(s, "", "")).unwrap();
    let text = format!("{cfg:?}");
    let name = s.path.rsplit('.').next().unwrap_or(s.path);
    let at = text
        .find(&format!(" {name}: "))
        .unwrap_or_else(|| panic!("[{}] not in {text}", s.path));
    let rest = &text[at + name.len() + 3..];
    let rest = rest.strip_prefix("Some(").unwrap_or(rest);
    let rest = rest.strip_prefix('[').unwrap_or(rest);
    let open = rest.find('{').expect("a struct");
    let mut fields = Vec::new();
    let (mut depth, mut in_str, mut escaped) = (0usize, false, false);
    let mut segment = String::new();
    for ch in rest[open + 1..].chars() {
        if in_str {
            in_str = ch != '"' || escaped;
            escaped = ch == '\\' && !escaped;
            segment.push(ch);
            continue;
        }
        match ch {
            '"' => in_str = true,
            '{' | '(' | '[' => depth += 1,
            '}' | ')' | ']' if depth == 0 => {
                fields.push(std::mem::take(&mut segment));
                break;
            }
            '}' | ')' | ']' => depth -= 1,
            ',' if depth == 0 => {
                fields.push(std::mem::take(&mut segment));
                continue;
            }
            _ => {}
        }
        segment.push(ch);
    }
    let documented: Vec<&str> = s.keys.iter().map(|k| k.name).collect();
    let mut out = Vec::new();
    for f in fields {
        let Some((field, value)) = f.trim().split_once(": ") else {
            continue;
        };
        if !documented.contains(&field) && value.starts_with("SecretRef {") {
            out.push(SECRET_ENV.to_string());
            out.push(SECRET_FILE.to_string());
        } else {
            out.push(field.to_string());
        }
    }
    out
}

#[test]
fn config_reference_documents_every_field() {
    for s in SECTIONS {
        // A key, or a section of its own one level down.
        let children = SECTIONS.iter().filter_map(|c| {
            let (parent, name) = c.path.rsplit_once('.').unwrap_or(("", c.path));
            (parent == s.path && !c.path.is_empty()).then(|| name.to_string())
        });
        let mut documented: Vec<String> = s.keys.iter().map(|k| k.name.to_string()).collect();
        documented.extend(children);
        documented.sort();
        documented.dedup();
        // A section with a flattened secret (`secret_env`, `secret_file`):
        // serde's error lists no fields there, so the struct's own fields
        // are read from its `Debug` instead, the flattened secret counting
        // as its two keys.
        let mut known = match known_fields(s) {
            Some(k) => k,
            None => debug_fields(s),
        };
        known.sort();
        assert_eq!(
            known, documented,
            "[{}]: the reference (right) differs from the config type (left); \
             add or remove rows in gateway/src/app/reference.rs",
            s.path
        );
    }
}

#[test]
fn config_reference_readme_copy_is_current() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../README.md");
    let readme = std::fs::read_to_string(&path).unwrap();
    let (head, rest) = readme
        .split_once(README_START)
        .expect("README has the start marker");
    let (old, tail) = rest
        .split_once(README_END)
        .expect("README has the end marker");
    let want = format!("\n{}\n", markdown());
    if old == want {
        return;
    }
    if std::env::var_os("UPDATE_CONFIG_REFERENCE").is_some() {
        std::fs::write(
            &path,
            format!("{head}{README_START}{want}{README_END}{tail}"),
        )
        .unwrap();
        return;
    }
    panic!(
        "README.md's configuration reference is not current; regenerate it with \
         `UPDATE_CONFIG_REFERENCE=1 cargo test -p gateway --lib config_reference` \
         (or paste `gateway config reference` between the markers)"
    );
}
