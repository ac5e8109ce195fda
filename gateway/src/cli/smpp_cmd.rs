//! `gateway smpp client add / list / remove`: the SMS applications that may
//! bind to the gateway's SMPP server.

use clap::Subcommand;

use super::CliError;
use super::keys_cmd::emit;
use crate::app::config::Config;
use crate::core::clock;
use crate::store;

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
        /// A number this client owns (repeatable): inbound messages to it
        /// go to this client as deliver_sm. An E.164 number, a short code,
        /// or an E.164 prefix ending in * (`+1415555*`); the most specific
        /// match wins, and no number or prefix belongs to two clients.
        #[arg(long = "address")]
        addresses: Vec<String>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Replace the numbers a client owns (same forms as `add --address`);
    /// no --address at all leaves it none. The running server picks the
    /// change up within seconds; the password stays.
    SetAddresses {
        /// The system_id.
        name: String,
        /// A number or +prefix* (repeatable).
        #[arg(long = "address")]
        addresses: Vec<String>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// List clients.
    List {
        /// JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Remove a client: the running server closes its live binds within
    /// seconds, its owed receipts are dropped, and inbound messages queued
    /// for it are dead-lettered.
    Remove {
        /// The system_id.
        name: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

/// Runs `gateway smpp …`.
pub fn run(cfg: &Config, cmd: &SmppCommand) -> Result<(), CliError> {
    let db = store::open_for_cli(&cfg.data_dir)?;
    run_on(cfg, &db, cmd)
}

/// Runs `gateway smpp …` on either backend's client operations.
pub fn run_on(
    cfg: &Config,
    db: &dyn store::smpp::ClientOps,
    cmd: &SmppCommand,
) -> Result<(), CliError> {
    let SmppCommand::Client(cmd) = cmd;
    let region = crate::core::address::region(&cfg.default_region);
    match cmd {
        ClientCommand::Add {
            name,
            throughput,
            addresses,
            json,
        } => {
            let pw = crate::channels::smpp::credentials::add(
                db,
                name,
                *throughput,
                addresses,
                region,
                clock::now_ms(),
            )?;
            emit(
                *json,
                serde_json::json!({"system_id": name, "password": pw}),
                &pw,
            )?;
            eprintln!("store this password now: it is not shown again");
        }
        ClientCommand::List { json } => {
            let list = crate::channels::smpp::credentials::list(db)?;
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
        ClientCommand::SetAddresses {
            name,
            addresses,
            json,
        } => {
            if !crate::channels::smpp::credentials::set_addresses(db, name, addresses, region)? {
                return Err(CliError::input(format!("no SMPP client {name}")));
            }
            emit(
                *json,
                serde_json::json!({"system_id": name, "updated": true}),
                &format!("updated {name}"),
            )?;
        }
        ClientCommand::Remove { name, json } => {
            if !crate::channels::smpp::credentials::remove(db, name)? {
                return Err(CliError::input(format!("no SMPP client {name}")));
            }
            emit(
                *json,
                serde_json::json!({"system_id": name, "removed": true}),
                &format!("removed {name}"),
            )?;
        }
    }
    Ok(())
}
