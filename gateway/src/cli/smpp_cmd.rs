//! `gateway smpp client add / list / remove`: the SMS applications that may
//! bind to the gateway's SMPP server.

use clap::Subcommand;

use super::CliError;
use crate::config::Config;
use crate::{clock, store};

/// `gateway smpp …`.
#[derive(Debug, Subcommand)]
pub enum SmppCommand {
    /// SMPP server clients (system_id + password, stored hashed).
    #[command(subcommand)]
    Client(ClientCommand),
}

/// `gateway smpp client …`.
#[derive(Debug, Subcommand)]
pub enum ClientCommand {
    /// Add a client; prints its generated password once (8 characters, the
    /// SMPP 3.4 maximum).
    Add {
        /// The system_id it binds with (1-15 characters).
        name: String,
        /// Its own limit in messages per second (default: smpp.server.throughput).
        #[arg(long)]
        throughput: Option<f64>,
        /// A number this client owns (repeatable); kept for routing inbound
        /// messages to it.
        #[arg(long = "address")]
        addresses: Vec<String>,
    },
    /// List clients.
    List {
        /// JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Remove a client (its live binds end at their next reconnect).
    Remove {
        /// The system_id.
        name: String,
    },
}

/// Runs `gateway smpp …`.
pub fn run(cfg: &Config, cmd: &SmppCommand) -> Result<(), CliError> {
    let SmppCommand::Client(cmd) = cmd;
    let conn = store::open_for_cli(&cfg.data_dir)?;
    match cmd {
        ClientCommand::Add {
            name,
            throughput,
            addresses,
        } => {
            let pw = crate::smpp::credentials::add(
                &conn,
                name,
                *throughput,
                addresses,
                clock::now_ms(),
            )?;
            println!("{pw}");
            eprintln!("store this password now: it is not shown again");
        }
        ClientCommand::List { json } => {
            let list = crate::smpp::credentials::list(&conn)?;
            if *json {
                let s = serde_json::to_string_pretty(&list)
                    .map_err(|e| CliError::input(e.to_string()))?;
                println!("{s}");
            } else {
                println!(
                    "{:<16} {:<12} {:<26} ADDRESSES",
                    "SYSTEM_ID", "THROUGHPUT", "CREATED"
                );
                for c in list {
                    println!(
                        "{:<16} {:<12} {:<26} {}",
                        c.system_id,
                        c.throughput
                            .map(|t| t.to_string())
                            .unwrap_or_else(|| "default".into()),
                        clock::rfc3339_ms(c.created_at),
                        c.addresses.join(",")
                    );
                }
            }
        }
        ClientCommand::Remove { name } => {
            if !crate::smpp::credentials::remove(&conn, name)? {
                return Err(CliError::input(format!("no SMPP client {name}")));
            }
            println!("removed {name}");
        }
    }
    Ok(())
}
