//! Examples under every command's `--help`, and the global options shown
//! once. The examples live in one table rather than in an attribute on each
//! command so they read as a set (consistent ids, numbers and paths) and a
//! test can prove no command lacks them; a command that declares its own
//! `after_help` keeps it.

use clap::{CommandFactory, FromArgMatches};

use super::Cli;

/// The top-level help's footer: the global options, which are hidden from
/// the generated option lists so that no subcommand's help repeats them.
pub const GLOBAL_HELP: &str = "\
Global options (before or after the command):
      --config <FILE>    TOML configuration (unknown keys are errors); without it the
                         embedded defaults apply [env: GATEWAY_CONFIG]
      --data-dir <DIR>   data directory (database and keys); overrides the config's
                         data_dir [env: GATEWAY_DATA_DIR]

Examples:
  gateway demo
  gateway --config /etc/gateway/gateway.toml serve
  gateway --config /etc/gateway/gateway.toml review
  gateway <command> --help";

/// Space-separated command path (without `gateway`) and its examples.
const EXAMPLES: &[(&str, &str)] = &[
    (
        "serve",
        "gateway serve\n  gateway --config /etc/gateway/gateway.toml serve --listen 127.0.0.1:8080 --log-format json",
    ),
    (
        "keys",
        "gateway keys list\n  gateway keys api create billing",
    ),
    ("keys list", "gateway keys list --json"),
    (
        "keys api",
        "gateway keys api create billing\n  gateway keys api revoke billing",
    ),
    (
        "keys api create",
        "TOKEN=$(gateway keys api create billing)\n  gateway keys api create billing --json\n  gateway keys api create acme-app --tenant acme --scope send,read\n  gateway keys api create ops --scope admin\n  gateway keys api create billing --status-callback https://app.example/status",
    ),
    (
        "keys api rotate",
        "gateway keys api rotate billing --overlap-secs 3600",
    ),
    (
        "keys api set-callback",
        "gateway keys api set-callback billing https://app.example/status\n  gateway keys api set-callback billing",
    ),
    ("keys api list", "gateway keys api list --json"),
    ("keys api revoke", "gateway keys api revoke billing"),
    ("identity", "gateway identity show +14155550100"),
    (
        "identity set",
        "gateway identity set +14155550100 \"$(jq -r .public_key alice.json)\"",
    ),
    ("identity show", "gateway identity show +14155550100 --json"),
    (
        "envelope",
        "gateway envelope keygen > alice.json\n  gateway envelope inspect < envelope.b64",
    ),
    (
        "envelope seal",
        "gateway envelope seal --to +14155550100 --from +12125550123 --text hello --recipient-key \"$(jq -r .public_key alice.json)\"",
    ),
    (
        "envelope open",
        "gateway envelope open --key alice.key < envelope.b64\n  gateway envelope open \"$ENVELOPE\" --key - < alice.key",
    ),
    (
        "envelope inspect",
        "gateway envelope inspect < envelope.b64",
    ),
    ("envelope keygen", "gateway envelope keygen > alice.json"),
    (
        "pdu",
        "gateway pdu decode 07911326040000F0040B911346610089F60000208062917314080CC8F71D14969741F977FD07",
    ),
    (
        "pdu decode",
        "gateway pdu decode 07911326040000F0040B911346610089F60000208062917314080CC8F71D14969741F977FD07 --json",
    ),
    (
        "pdu encode",
        "gateway pdu encode --to +31641600986 --text 'hello' --request-report\n  gateway pdu encode --to +31641600986 --text 'hello' --json",
    ),
    (
        "replay",
        "gateway replay trace.jsonl --out verdicts.jsonl\n  gateway export-trace --since 2026-12-01T00:00:00Z | gateway replay -",
    ),
    (
        "export-trace",
        "gateway export-trace --out trace.jsonl\n  gateway export-trace --since 2026-12-01T00:00:00Z | gateway replay -",
    ),
    (
        "model",
        "gateway model eval --trace t.jsonl --labels l.jsonl\n  gateway model promote new.json",
    ),
    (
        "model train",
        "gateway model train --trace t.jsonl --labels l.jsonl --out new.json\n  gateway model train --from-store --trace t.jsonl --labels l.jsonl --json",
    ),
    (
        "model eval",
        "gateway model eval --model new.json --trace t.jsonl --labels l.jsonl\n  gateway model eval --from-store --model new.json --json\n  gateway model eval --world worlds/b1 --world worlds/b2 --world worlds/c1",
    ),
    ("model promote", "gateway model promote new.json"),
    (
        "review",
        "gateway review\n  gateway review list --verdict spam\n  gateway review mark +12125550177 spam --note 'prize scam'",
    ),
    (
        "review list",
        "gateway review list --since 2h --sort held\n  gateway review list --json | jq '.[].sender'",
    ),
    (
        "review show",
        "gateway review show +12125550177\n  gateway review show 0193b2c4-7f1e-7c3a-9d2e-5b8a1f0c4e21 --json",
    ),
    (
        "review mark",
        "gateway review mark +12125550177 spam --note 'prize scam'\n  gateway review mark +12125550100 ham --note 'school newsletter' --json",
    ),
    (
        "review release",
        "gateway review release 0193b2c4-7f1e-7c3a-9d2e-5b8a1f0c4e21 --note 'known customer'",
    ),
    (
        "review drop",
        "gateway review drop 0193b2c4-7f1e-7c3a-9d2e-5b8a1f0c4e21 --note spam",
    ),
    (
        "review allow",
        "gateway review allow +1415555* --note 'our own numbers'\n  gateway review allow +12125550100 --expires 7d --json",
    ),
    (
        "review block",
        "gateway review block +1900* --note 'premium rate'\n  gateway review block +12125550177 --expires 30d",
    ),
    ("review unlist", "gateway review unlist block +12125550177"),
    (
        "review undo",
        "gateway review undo +12125550177\n  gateway review undo --json",
    ),
    (
        "review log",
        "gateway review log --limit 20\n  gateway review log --json",
    ),
    ("review stats", "gateway review stats --json"),
    (
        "messages",
        "gateway messages show 0193b2c4-7f1e-7c3a-9d2e-5b8a1f0c4e21",
    ),
    (
        "dead-letters",
        "gateway dead-letters list\n  gateway dead-letters retry 0193b2c4-7f1e-7c3a-9d2e-5b8a1f0c4e21",
    ),
    (
        "dead-letters list",
        "gateway dead-letters list --json | jq '.[].last_error'",
    ),
    (
        "dead-letters retry",
        "gateway dead-letters retry 0193b2c4-7f1e-7c3a-9d2e-5b8a1f0c4e21",
    ),
    (
        "smpp",
        "gateway smpp client add acme --throughput 50 --address '+1415555*'",
    ),
    (
        "smpp client",
        "gateway smpp client list\n  gateway smpp client remove acme",
    ),
    (
        "smpp client add",
        "gateway smpp client add acme --throughput 50 --address '+1415555*'\n  gateway smpp client add acme --json",
    ),
    (
        "smpp client set-addresses",
        "gateway smpp client set-addresses acme --address +14155550100 --address '+1628*'",
    ),
    ("smpp client list", "gateway smpp client list --json"),
    ("smpp client remove", "gateway smpp client remove acme"),
    ("sink", "gateway sink --listen 127.0.0.1:9000"),
    ("config", "gateway config check /etc/gateway/gateway.toml"),
];

/// Adds the examples to every command of `cmd` that has no footer of its own.
fn add_examples(mut cmd: clap::Command, path: &str) -> clap::Command {
    if !path.is_empty() && cmd.get_after_help().is_none() {
        if let Some((_, ex)) = EXAMPLES.iter().find(|(p, _)| *p == path) {
            cmd = cmd.after_help(format!("Examples:\n  {ex}"));
        }
    }
    let names: Vec<String> = cmd
        .get_subcommands()
        .map(|s| s.get_name().to_string())
        .collect();
    for name in names {
        let sub = if path.is_empty() {
            name.clone()
        } else {
            format!("{path} {name}")
        };
        cmd = cmd.mut_subcommand(&name, |c| add_examples(c, &sub));
    }
    cmd
}

/// The command line's definition with every example in place.
pub fn command() -> clap::Command {
    add_examples(Cli::command(), "")
}

/// Parses the process arguments (exits with clap's message on an error,
/// as `Cli::parse` would).
pub fn parse() -> Cli {
    let matches = command().get_matches();
    Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn walk(cmd: &clap::Command, path: String, missing: &mut Vec<String>) {
        if cmd.get_name() != "help" {
            let footer = cmd
                .get_after_help()
                .map(|s| s.to_string())
                .unwrap_or_default();
            if !footer.contains("gateway ") {
                missing.push(path.clone());
            }
        }
        for s in cmd.get_subcommands() {
            walk(s, format!("{path} {}", s.get_name()), missing);
        }
    }

    #[test]
    fn every_command_has_examples() {
        let cmd = command();
        cmd.clone().debug_assert();
        let mut missing = Vec::new();
        walk(&cmd, "gateway".into(), &mut missing);
        assert!(missing.is_empty(), "no examples under: {missing:?}");
    }

    #[test]
    fn every_example_names_a_real_command() {
        let cmd = command();
        for (path, _) in EXAMPLES {
            let mut c = &cmd;
            for part in path.split(' ') {
                c = c
                    .find_subcommand(part)
                    .unwrap_or_else(|| panic!("no command {path}"));
            }
        }
    }

    #[test]
    fn global_options_are_shown_once() {
        let mut cmd = command();
        let top = cmd.render_help().to_string();
        assert_eq!(top.matches("--config <FILE>").count(), 1, "{top}");
        let mut review = command();
        let review = review
            .find_subcommand_mut("review")
            .map(|c| c.render_help().to_string())
            .unwrap_or_default();
        assert!(!review.contains("--config"), "{review}");
        assert!(!review.contains("--version"), "{review}");
        assert!(review.contains("Examples:"), "{review}");
        // Still accepted after the subcommand.
        let parsed =
            <Cli as clap::Parser>::try_parse_from(["gateway", "review", "--config", "x.toml"]);
        assert!(parsed.is_ok());
    }
}
