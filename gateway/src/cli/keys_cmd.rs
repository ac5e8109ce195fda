//! `gateway keys …`, `gateway identity …` and `gateway dead-letters …`.
//!
//! These write to the same SQLite database as a running service (WAL mode and
//! a busy timeout make that safe), so they work with the service up or down.

use clap::Subcommand;

use super::CliError;
use crate::app::config::Config;
use crate::core::address::{self, Address};
use crate::core::clock;
use crate::core::tenants::{Scope, Scopes};
use crate::envelope::keys::{self, Keyring};
use crate::store;

/// `gateway keys`.
#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Create the edge key pair if there is none (serve does this on first run).
    #[command(after_help = "Example:\n  gateway keys create --json")]
    Create {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Create a new edge key and make it current; old keys are kept to open old envelopes.
    #[command(after_help = "Example:\n  gateway keys rotate")]
    Rotate {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// List edge keys (kid, created, current).
    List {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Print the current edge public key (base64), which the private side
    /// seals outbound envelopes to.
    #[command(after_help = "Example:\n  gateway keys public > edge.pub")]
    Public {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Write the edge keys (with their rotation history) and the pseudonym
    /// key to one new owner-only file, to provision the other nodes of a
    /// cluster on one database (`keys import` there).
    #[command(after_help = "Example:\n  gateway keys export --out cluster.keys")]
    Export {
        /// The file to create (never overwritten).
        #[arg(long)]
        out: std::path::PathBuf,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Install the keys of a `keys export` file into this node's data dir
    /// (its own edge keys are kept; the file's current key becomes current).
    #[command(after_help = "Example:\n  gateway keys import cluster.keys")]
    Import {
        /// The export file.
        file: std::path::PathBuf,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Manage API keys.
    #[command(subcommand)]
    Api(ApiCommand),
}

/// `gateway keys api`.
#[derive(Debug, Subcommand)]
pub enum ApiCommand {
    /// Create an API key and print its token once (it is stored hashed).
    Create {
        /// A name to recognise the key by.
        name: String,
        /// The tenant it belongs to (a `[[tenants]]` name); without one, an
        /// operator's key (`--scope admin`), or the implicit tenant's when
        /// no tenants are configured.
        #[arg(long)]
        tenant: Option<String>,
        /// Scopes, comma-separated: send, read, identities, admin
        /// (default: send,read,identities).
        #[arg(long)]
        scope: Option<String>,
        /// Days until the key stops working (default: never).
        #[arg(long)]
        expires_in_days: Option<u32>,
        /// Default `status_callback` URL of the messages this key sends
        /// (a request's own `status_callback` wins).
        #[arg(long)]
        status_callback: Option<String>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Set or clear an API key's default `status_callback` URL.
    SetCallback {
        /// The key's name.
        name: String,
        /// The URL; absent clears it.
        url: Option<String>,
    },
    /// Give a key a new token (printed once); the old one keeps working
    /// for the overlap window, to roll the new one out.
    Rotate {
        /// The key's name.
        name: String,
        /// Seconds the old token keeps working (default: one day).
        #[arg(long, default_value_t = 86_400)]
        overlap_secs: u32,
    },
    /// List API keys (names and dates, never tokens).
    List {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Revoke an API key (takes effect within a second in a running service).
    Revoke {
        /// The key's name.
        name: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

/// `gateway identity`.
#[derive(Debug, Subcommand)]
pub enum IdentityCommand {
    /// Register (or replace) the public key of an internal address.
    Set {
        /// The address (E.164 number, short code or alphanumeric id).
        address: String,
        /// Base64 X25519 public key.
        public_key: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Show the registered key of an address.
    Show {
        /// The address.
        address: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

/// `gateway dead-letters`.
#[derive(Debug, Subcommand)]
pub enum DeadLetterCommand {
    /// List dead-lettered messages with their last error.
    List {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Put a dead-lettered message back in the delivery queue.
    Retry {
        /// Message id.
        id: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

/// Prints `value` as JSON with `--json`, else the `human` line.
pub(super) fn emit(json: bool, value: serde_json::Value, human: &str) -> Result<(), CliError> {
    if json {
        print_json(&value)
    } else {
        println!("{human}");
        Ok(())
    }
}

pub(super) fn print_json(v: &impl serde::Serialize) -> Result<(), CliError> {
    let s = serde_json::to_string_pretty(v).map_err(|e| CliError {
        code: 1,
        message: e.to_string(),
    })?;
    println!("{s}");
    Ok(())
}

/// Runs `gateway keys …`.
// Long on purpose: one arm per `keys` subcommand (edge keys, API keys),
// each a few lines of store or keyring calls and printing.
pub fn keys(cfg: &Config, cmd: &KeysCommand) -> Result<(), CliError> {
    match cmd {
        KeysCommand::Create { json } => {
            crate::core::fs::create_private_dir(&cfg.data_dir)?;
            let had = Keyring::open(&cfg.data_dir).is_ok();
            let k = Keyring::open_or_create(&cfg.data_dir)?;
            if had {
                eprintln!("an edge key already exists; use `gateway keys rotate` for a new one");
            }
            let kid = &k.current().kid;
            emit(*json, serde_json::json!({"kid": kid, "created": !had}), kid)?;
        }
        KeysCommand::Rotate { json } => {
            let mut k = Keyring::open(&cfg.data_dir)?;
            let kid = k.rotate()?;
            emit(*json, serde_json::json!({"kid": kid}), &kid)?;
        }
        KeysCommand::List { json } => {
            let k = Keyring::open(&cfg.data_dir)?;
            let current = k.current().kid.clone();
            let rows: Vec<_> = k
                .all()
                .map(|e| {
                    serde_json::json!({
                        "kid": e.kid, "created_at": e.created_at, "current": e.kid == current,
                        "public_key": keys::public_key_b64(&e.public),
                    })
                })
                .collect();
            if *json {
                print_json(&rows)?;
            } else {
                println!(
                    "{:<18} {:<26} {:<8} PUBLIC KEY",
                    "KID", "CREATED", "CURRENT"
                );
                for r in &rows {
                    println!(
                        "{:<18} {:<26} {:<8} {}",
                        r["kid"].as_str().unwrap_or_default(),
                        r["created_at"].as_str().unwrap_or_default(),
                        if r["current"].as_bool().unwrap_or(false) {
                            "yes"
                        } else {
                            ""
                        },
                        r["public_key"].as_str().unwrap_or_default()
                    );
                }
            }
        }
        KeysCommand::Public { json } => {
            let k = Keyring::open(&cfg.data_dir)?;
            let public = keys::public_key_b64(&k.current().public);
            emit(
                *json,
                serde_json::json!({"kid": k.current().kid, "public_key": public}),
                &public,
            )?;
        }
        KeysCommand::Export { out, json } => {
            let shared = crate::envelope::share::export(&cfg.data_dir, out)?;
            emit(
                *json,
                serde_json::json!({"file": out, "current": shared.current, "kids": shared.kids}),
                &format!(
                    "wrote {} edge key(s) (current {}) and the pseudonym key to {}; copy it to each node, run `gateway keys import` there, then delete it",
                    shared.kids.len(),
                    shared.current,
                    out.display()
                ),
            )?;
        }
        KeysCommand::Import { file, json } => {
            crate::core::fs::create_private_dir(&cfg.data_dir)?;
            let shared = crate::envelope::share::import(&cfg.data_dir, file)?;
            emit(
                *json,
                serde_json::to_value(&shared).unwrap_or_default(),
                &format!(
                    "imported {} new edge key(s) of {}; current {}",
                    shared.added.len(),
                    shared.kids.len(),
                    shared.current
                ),
            )?;
        }
        KeysCommand::Api(api) => {
            let db = store::open_for_cli(&cfg.data_dir)?;
            match api {
                ApiCommand::Create {
                    name,
                    tenant,
                    scope,
                    expires_in_days,
                    status_callback,
                    json,
                } => {
                    if let Some(url) = status_callback {
                        crate::delivery::callbacks::check_url(url)?;
                    }
                    let now = clock::now_ms();
                    let key = store::NewApiKey {
                        name,
                        tenant: tenant.as_deref(),
                        scopes: key_scopes(cfg, tenant.as_deref(), scope.as_deref())?,
                        expires_at: expires_in_days.map(|d| now + i64::from(d) * 86_400_000),
                    };
                    let token = db.create_api_key(&key, now)?;
                    if let Some(url) = status_callback {
                        db.set_key_callback(name, Some(url))?;
                    }
                    emit(
                        *json,
                        serde_json::json!({"name": name, "token": token}),
                        &token,
                    )?;
                    eprintln!("store this token now: it is not shown again");
                }
                ApiCommand::Rotate { name, overlap_secs } => {
                    let now = clock::now_ms();
                    let until = now + i64::from(*overlap_secs) * 1000;
                    let Some(token) = db.rotate_api_key(name, until, now)? else {
                        return Err(CliError::input(format!("no live API key named {name}")));
                    };
                    println!("{token}");
                    eprintln!(
                        "store this token now: it is not shown again; the old one works until {}",
                        clock::rfc3339_ms(until)
                    );
                }
                ApiCommand::List { json } => print_api_keys(db.api_keys()?, *json)?,
                ApiCommand::SetCallback { name, url } => {
                    if let Some(url) = url {
                        crate::delivery::callbacks::check_url(url)?;
                    }
                    if !db.set_key_callback(name, url.as_deref())? {
                        return Err(CliError::input(format!("no live API key named {name}")));
                    }
                    match url {
                        Some(_) => println!("status callback of {name} set"),
                        None => println!("status callback of {name} cleared"),
                    }
                }
                ApiCommand::Revoke { name, json } => {
                    if !db.revoke_api_key(name, clock::now_ms())? {
                        return Err(CliError::input(format!("no live API key named {name}")));
                    }
                    emit(
                        *json,
                        serde_json::json!({"name": name, "revoked": true}),
                        &format!("revoked {name}"),
                    )?;
                }
            }
        }
    }
    Ok(())
}

/// Prints API keys (`keys api list`), as a table or JSON.
pub(super) fn print_api_keys(keys: Vec<store::ApiKeyInfo>, json: bool) -> Result<(), CliError> {
    if json {
        return print_json(&keys);
    }
    println!(
        "{:<24} {:<16} {:<26} {:<26} {:<26} REVOKED",
        "NAME", "TENANT", "SCOPES", "CREATED", "EXPIRES"
    );
    for k in keys {
        println!(
            "{:<24} {:<16} {:<26} {:<26} {:<26} {}",
            k.name,
            k.tenant.as_deref().unwrap_or("-"),
            k.scopes,
            clock::rfc3339_ms(k.created_at),
            k.expires_at.map(clock::rfc3339_ms).unwrap_or_default(),
            k.revoked_at.map(clock::rfc3339_ms).unwrap_or_default()
        );
    }
    Ok(())
}

/// The scopes of a new key, checked against the configured tenants: a
/// tenant's key must name a configured tenant and cannot be an operator's;
/// with tenants configured, a key of none is an operator's (`admin`).
pub(super) fn key_scopes(
    cfg: &Config,
    tenant: Option<&str>,
    scope: Option<&str>,
) -> Result<Scopes, CliError> {
    let scopes = match scope {
        Some(s) => Scopes::parse(s).map_err(CliError::input)?,
        None => Scopes::APPLICATION,
    };
    let configured = !cfg.tenants.is_empty();
    match tenant {
        Some(t) if !cfg.tenants.iter().any(|c| c.name == t) => Err(CliError::input(format!(
            "no tenant named {t} in the configuration's [[tenants]]"
        ))),
        Some(_) if scopes.has(Scope::Admin) => Err(CliError::input(
            "the admin scope is for operators' keys, created without --tenant",
        )),
        None if configured && !scopes.has(Scope::Admin) => Err(CliError::input(
            "tenants are configured: give --tenant NAME, or --scope admin for an operator's key",
        )),
        _ => Ok(scopes),
    }
}

/// Runs `gateway identity …`.
pub fn identity(cfg: &Config, cmd: &IdentityCommand) -> Result<(), CliError> {
    let db = store::open_for_cli(&cfg.data_dir)?;
    identity_on(
        cfg,
        cmd,
        |address, pk| db.put_identity(address, pk, clock::now_ms()),
        |address| db.identity(address),
    )
}

/// `gateway identity …` on either store: `put` registers a key (returns
/// its kid), `get` reads one.
pub(super) fn identity_on(
    cfg: &Config,
    cmd: &IdentityCommand,
    mut put: impl FnMut(&str, &keys::PublicKey) -> crate::core::error::Result<String>,
    mut get: impl FnMut(&str) -> crate::core::error::Result<Option<keys::PublicKey>>,
) -> Result<(), CliError> {
    let region = address::region(&cfg.default_region);
    match cmd {
        IdentityCommand::Set {
            address,
            public_key,
            json,
        } => {
            let addr = Address::sender(address, region, "address")?;
            let pk = keys::parse_public_key(public_key)?;
            let kid = put(addr.as_str(), &pk)?;
            emit(
                *json,
                serde_json::json!({"address": addr.as_str(), "kid": kid}),
                &format!("{} {kid}", addr.as_str()),
            )?;
        }
        IdentityCommand::Show { address, json } => {
            let addr = Address::sender(address, region, "address")?;
            match get(addr.as_str())? {
                Some(pk) => {
                    let (kid, public) = (keys::kid_of(&pk), keys::public_key_b64(&pk));
                    emit(
                        *json,
                        serde_json::json!({
                            "address": addr.as_str(), "kid": kid, "public_key": public,
                        }),
                        &format!("{} {kid} {public}", addr.as_str()),
                    )?;
                }
                None => {
                    return Err(CliError::input(format!(
                        "no identity registered for {}",
                        addr.as_str()
                    )));
                }
            }
        }
    }
    Ok(())
}

/// Prints dead letters (`dead-letters list`), as a table or JSON.
pub(super) fn print_dead_letters(
    views: Vec<store::MessageView>,
    json: bool,
) -> Result<(), CliError> {
    if json {
        return print_json(&views);
    }
    println!(
        "{:<38} {:<9} {:<8} {:<26} LAST ERROR",
        "ID", "DIRECTION", "ATTEMPTS", "UPDATED"
    );
    for v in views {
        println!(
            "{:<38} {:<9} {:<8} {:<26} {}",
            v.id,
            v.direction,
            v.attempts.unwrap_or(0),
            v.updated_at,
            v.last_error.unwrap_or_default()
        );
    }
    Ok(())
}

/// Answers `dead-letters retry ID`: requeued, or no such dead letter.
pub(super) fn retried(requeued: bool, id: &str, json: bool) -> Result<(), CliError> {
    if !requeued {
        return Err(CliError::input(format!(
            "no dead-lettered message with id {id}"
        )));
    }
    emit(
        json,
        serde_json::json!({"id": id, "requeued": true}),
        &format!("requeued {id}"),
    )
}

/// Runs `gateway dead-letters …`.
pub fn dead_letters(cfg: &Config, cmd: &DeadLetterCommand) -> Result<(), CliError> {
    let mut db = store::open_for_cli(&cfg.data_dir)?;
    match cmd {
        DeadLetterCommand::List { json } => print_dead_letters(db.dead_letters(1000)?, *json)?,
        DeadLetterCommand::Retry { id, json } => retried(db.retry_dead(id)?, id, *json)?,
    }
    Ok(())
}
