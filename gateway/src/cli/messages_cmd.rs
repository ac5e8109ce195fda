//! `gateway messages show ID`: one message's metadata and status history
//! from the database, as `GET /v1/messages/{id}` shows it, for an operator
//! on the host without an API key. Never the body: the view has none.

use clap::Subcommand;

use super::CliError;
use super::keys_cmd::print_json;
use crate::app::config::Config;
use crate::store::{self, MessageView};

/// `gateway messages`.
#[derive(Debug, Subcommand)]
pub enum MessagesCommand {
    /// A message's metadata (direction, channel, route, numbers, status,
    /// segments, attempts, last error) and its status history; never the text.
    #[command(
        after_help = "Examples:\n  gateway messages show 0193b2c4-7f1e-7c3a-9d2e-5b8a1f0c4e21\n  gateway messages show 0193b2c4-7f1e-7c3a-9d2e-5b8a1f0c4e21 --json | jq .history"
    )]
    Show {
        /// The message id (from the API's 202 answer, `review list`, the logs).
        id: String,
        /// Print JSON (the same shape as `GET /v1/messages/{id}`).
        #[arg(long)]
        json: bool,
    },
}

/// Runs `gateway messages …`.
pub fn run(cfg: &Config, cmd: &MessagesCommand) -> Result<(), CliError> {
    let MessagesCommand::Show { id, json } = cmd;
    let db = store::open_for_cli(&cfg.data_dir)?;
    show(db.message(id)?, id, *json)
}

/// Prints a message's view (or says there is none), whichever store read it.
pub(super) fn show(view: Option<MessageView>, id: &str, json: bool) -> Result<(), CliError> {
    let Some(view) = view else {
        return Err(CliError::input(format!("no message with id {id}")));
    };
    if json {
        print_json(&view)
    } else {
        print!("{}", human(&view));
        Ok(())
    }
}

/// The view as aligned `field: value` lines and a history table.
fn human(v: &MessageView) -> String {
    let rows = v.detail_rows();
    let mut out = String::new();
    for (k, val) in rows {
        out.push_str(&format!("{:<11} {val}\n", format!("{k}:")));
    }
    out.push_str("\nhistory:\n");
    for e in &v.history {
        out.push_str(&format!(
            "  {:<26} {:<12} {}{}\n",
            e.at,
            e.status,
            e.detail.as_deref().unwrap_or(""),
            if e.late {
                " (late, changed nothing)"
            } else {
                ""
            }
        ));
    }
    out
}
