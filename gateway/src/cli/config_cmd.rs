//! `gateway config check FILE`: is this file a configuration the gateway
//! would start with? The same parse (unknown keys are errors naming the key
//! and line) and the same checks across sections as `serve`, without
//! starting anything, so a deploy script can run it before a restart.

use std::io::Read;
use std::path::PathBuf;

use super::CliError;
use crate::app::config::Config;

/// `gateway config …`.
#[derive(Debug, clap::Subcommand)]
pub enum ConfigCommand {
    /// Parse and check a configuration file (`-` reads standard input);
    /// exit 0 if `serve` would accept it, 2 with every problem named if not.
    #[command(
        after_help = "Examples:\n  gateway config check /etc/gateway/gateway.toml\n  gateway config check - < gateway.toml\n  gateway config check gateway.toml --json"
    )]
    Check {
        /// The TOML file, or `-` for standard input.
        file: PathBuf,
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Print every configuration section and key: type, default, one line
    /// of documentation (README's configuration reference is this output).
    #[command(
        after_help = "Examples:\n  gateway config reference\n  gateway config reference --json | jq '.sections[].section'"
    )]
    Reference {
        /// Print the reference as JSON.
        #[arg(long)]
        json: bool,
    },
}

/// Runs a `config` subcommand.
pub fn run(cmd: &ConfigCommand) -> Result<(), CliError> {
    match cmd {
        ConfigCommand::Check { file, json } => check(file, *json),
        ConfigCommand::Reference { json } => {
            if *json {
                println!("{}", crate::app::reference::json());
            } else {
                print!("{}", crate::app::reference::markdown());
            }
            Ok(())
        }
    }
}

fn check(file: &PathBuf, json: bool) -> Result<(), CliError> {
    let name = file.display().to_string();
    let raw = if name == "-" {
        let mut s = String::new();
        std::io::stdin()
            .read_to_string(&mut s)
            .map_err(|e| CliError::input(format!("reading standard input: {e}")))?;
        s
    } else {
        std::fs::read_to_string(file).map_err(|e| CliError::input(format!("{name}: {e}")))?
    };
    let checked = Config::from_toml(&raw).and_then(|c| c.validate().map(|()| c));
    match checked {
        Ok(cfg) => {
            let routes = routes_of(&cfg);
            if json {
                let v = serde_json::json!({
                    "ok": true,
                    "listen": cfg.listen.to_string(),
                    "data_dir": cfg.data_dir.display().to_string(),
                    "routes": routes,
                    "private_side": cfg.private_side.webhook_url.is_some(),
                });
                println!("{v}");
            } else {
                println!(
                    "{name}: ok (listen {}, data_dir {}, routes: {}, private side: {})",
                    cfg.listen,
                    cfg.data_dir.display(),
                    if routes.is_empty() {
                        "none, so sending SMS answers 503 no_route".to_string()
                    } else {
                        routes.join(", ")
                    },
                    if cfg.private_side.webhook_url.is_some() {
                        "webhook"
                    } else {
                        "none, so inbound envelopes wait in the store"
                    }
                );
                println!(
                    "secrets are read when `serve` starts (environment or secret_file), not here"
                );
            }
            Ok(())
        }
        Err(e) => {
            if json {
                println!(
                    "{}",
                    serde_json::json!({"ok": false, "error": e.to_string()})
                );
            }
            Err(CliError::input(format!("{name}: {e}")))
        }
    }
}

/// The outbound routes the file configures, by route name.
fn routes_of(cfg: &Config) -> Vec<String> {
    let mut r = Vec::new();
    if cfg.generic.is_some() {
        r.push("generic".to_string());
    }
    if cfg.twilio.is_some() {
        r.push("twilio".to_string());
    }
    if cfg.telnyx.is_some() {
        r.push("telnyx".to_string());
    }
    r.extend(cfg.modems.iter().map(|m| m.name.clone()));
    r.extend(cfg.android.iter().map(|a| a.route_name()));
    r.extend(cfg.smpp.client.iter().map(|c| format!("smpp:{}", c.name)));
    r
}
