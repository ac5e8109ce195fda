//! The command line on a PostgreSQL store (`[store] backend = "postgres"`).
//!
//! On SQLite the commands read the file in the data directory through the
//! synchronous `Db` handle; on PostgreSQL that file is not the store, so
//! each command that reads or writes the store is routed here to the same
//! operations on PostgreSQL (`backup` and `restore` to `pg_backup_cmd`;
//! `export-trace` and `model … --from-store` choose their source in
//! `trace_source`), never answered from the wrong database.

use super::keys_cmd::{ApiCommand, DeadLetterCommand, KeysCommand};
use super::review_cmd::ReviewCommand;
use super::{Cli, CliError, Command, runtime};
use crate::app::config::Config;
use crate::core::clock;
use crate::store::config::BackendKind;

/// Handles `cli` when its store is PostgreSQL and the command needs the
/// store: `Some(result)` when handled (or refused), `None` to run it as
/// usual (SQLite, or a command that does not touch the store).
pub(super) fn intercept(cli: &Cli, cfg: &Config) -> Option<Result<(), CliError>> {
    if cfg.store.backend != BackendKind::Postgres {
        return None;
    }
    match &cli.command {
        Command::Keys(KeysCommand::Api(ApiCommand::Create {
            name,
            tenant,
            scope,
            expires_in_days,
            status_callback,
            json,
        })) => Some(create_api_key(
            cfg,
            name,
            tenant.as_deref(),
            scope.as_deref(),
            *expires_in_days,
            status_callback.as_deref(),
            *json,
        )),
        Command::Keys(KeysCommand::Api(ApiCommand::Revoke { name, json })) => {
            Some(revoke_api_key(cfg, name, *json))
        }
        Command::Keys(KeysCommand::Api(ApiCommand::Rotate { name, overlap_secs })) => {
            Some(rotate_api_key(cfg, name, *overlap_secs))
        }
        Command::Keys(KeysCommand::Api(ApiCommand::List { json })) => {
            Some(list_api_keys(cfg, *json))
        }
        Command::Keys(KeysCommand::Api(ApiCommand::SetCallback { name, url })) => {
            Some(set_key_callback(cfg, name, url.as_deref()))
        }
        Command::Identity(cmd) => Some(identity(cfg, cmd)),
        Command::Messages(super::messages_cmd::MessagesCommand::Show { id, json }) => {
            Some(show_message(cfg, id, *json))
        }
        Command::DeadLetters(cmd) => Some(dead_letters(cfg, cmd)),
        Command::Review { command } => Some(review(cfg, command.as_ref())),
        Command::Smpp(cmd) => Some(smpp(cfg, cmd)),
        Command::Backup(args) => Some(super::pg_backup_cmd::backup(cfg, args)),
        Command::Restore(args) => Some(super::pg_backup_cmd::restore(cfg, args)),
        _ => None,
    }
}

/// `gateway keys api create` on PostgreSQL.
fn create_api_key(
    cfg: &Config,
    name: &str,
    tenant: Option<&str>,
    scope: Option<&str>,
    expires_in_days: Option<u32>,
    status_callback: Option<&str>,
    json: bool,
) -> Result<(), CliError> {
    if let Some(url) = status_callback {
        crate::delivery::callbacks::check_url(url)?;
    }
    let now = clock::now_ms();
    let key = crate::store::NewApiKey {
        name,
        tenant,
        scopes: super::keys_cmd::key_scopes(cfg, tenant, scope)?,
        expires_at: expires_in_days.map(|d| now + i64::from(d) * 86_400_000),
    };
    let token = runtime()?.block_on(async {
        let pg = crate::store::postgres::PgStore::connect(&cfg.store).await?;
        let token = pg.create_api_key(&key, now).await;
        let token = match (token, status_callback) {
            (Ok(token), Some(url)) => pg.set_key_callback(name, Some(url)).await.map(|_| token),
            (token, _) => token,
        };
        pg.close();
        token
    })?;
    if json {
        println!("{}", serde_json::json!({"name": name, "token": token}));
    } else {
        println!("{token}");
    }
    eprintln!("store this token now: it is not shown again");
    Ok(())
}

/// `gateway keys api revoke` on PostgreSQL: every node reads keys from the
/// database behind a half-second cache, so the key stops working on every
/// node within a second.
fn revoke_api_key(cfg: &Config, name: &str, json: bool) -> Result<(), CliError> {
    let revoked = runtime()?.block_on(async {
        let pg = crate::store::postgres::PgStore::connect(&cfg.store).await?;
        let done = pg.revoke_api_key(name, clock::now_ms()).await;
        pg.close();
        done
    })?;
    if !revoked {
        return Err(CliError::input(format!("no live API key named {name}")));
    }
    if json {
        println!("{}", serde_json::json!({"name": name, "revoked": true}));
    } else {
        println!("revoked {name}");
    }
    Ok(())
}

/// `gateway keys api rotate` on PostgreSQL: every node's token cache
/// drops the old answer at once (the old token still works until the
/// overlap ends).
fn rotate_api_key(cfg: &Config, name: &str, overlap_secs: u32) -> Result<(), CliError> {
    let now = clock::now_ms();
    let until = now + i64::from(overlap_secs) * 1000;
    let token = runtime()?.block_on(async {
        let pg = crate::store::postgres::PgStore::connect(&cfg.store).await?;
        let token = pg.rotate_api_key(name, until, now).await;
        pg.close();
        token
    })?;
    let Some(token) = token else {
        return Err(CliError::input(format!("no live API key named {name}")));
    };
    println!("{token}");
    eprintln!(
        "store this token now: it is not shown again; the old one works until {}",
        clock::rfc3339_ms(until)
    );
    Ok(())
}

/// `gateway keys api set-callback` on PostgreSQL.
fn set_key_callback(cfg: &Config, name: &str, url: Option<&str>) -> Result<(), CliError> {
    if let Some(url) = url {
        crate::delivery::callbacks::check_url(url)?;
    }
    let set = runtime()?.block_on(async {
        let pg = crate::store::postgres::PgStore::connect(&cfg.store).await?;
        let set = pg.set_key_callback(name, url).await;
        pg.close();
        set
    })?;
    if !set {
        return Err(CliError::input(format!("no live API key named {name}")));
    }
    match url {
        Some(_) => println!("status callback of {name} set"),
        None => println!("status callback of {name} cleared"),
    }
    Ok(())
}

/// `gateway keys api list` on PostgreSQL.
fn list_api_keys(cfg: &Config, json: bool) -> Result<(), CliError> {
    let keys = runtime()?.block_on(async {
        let pg = crate::store::postgres::PgStore::connect(&cfg.store).await?;
        let keys = pg.api_keys().await;
        pg.close();
        keys
    })?;
    super::keys_cmd::print_api_keys(keys, json)
}

/// `gateway dead-letters list|retry` on PostgreSQL.
fn dead_letters(cfg: &Config, cmd: &DeadLetterCommand) -> Result<(), CliError> {
    runtime()?.block_on(async {
        let pg = crate::store::postgres::PgStore::connect(&cfg.store).await?;
        let out = match cmd {
            DeadLetterCommand::List { json } => pg
                .dead_letters(1000, None)
                .await
                .map_err(CliError::from)
                .and_then(|v| super::keys_cmd::print_dead_letters(v, *json)),
            DeadLetterCommand::Retry { id, json } => pg
                .retry_dead(id.clone())
                .await
                .map_err(CliError::from)
                .and_then(|r| super::keys_cmd::retried(r, id, *json)),
        };
        pg.close();
        out
    })
}

/// `gateway messages show ID` on PostgreSQL.
fn show_message(cfg: &Config, id: &str, json: bool) -> Result<(), CliError> {
    let view = runtime()?.block_on(async {
        let pg = crate::store::postgres::PgStore::connect(&cfg.store).await?;
        let view = pg.message(id.to_string()).await;
        pg.close();
        view
    })?;
    super::messages_cmd::show(view, id, json)
}

/// `gateway review …` on PostgreSQL: the same subcommands (and the
/// interactive walk) through the same review operations; each decision
/// notifies every running node in its transaction, so their spam gates
/// apply it at once.
fn review(cfg: &Config, cmd: Option<&ReviewCommand>) -> Result<(), CliError> {
    let rt = runtime()?;
    let pg =
        std::sync::Arc::new(rt.block_on(crate::store::postgres::PgStore::connect(&cfg.store))?);
    let mut ops = crate::store::postgres::PgReview::new(
        pg.clone(),
        rt.handle().clone(),
        cfg.review.undo_window_secs,
    );
    let out = match cmd {
        Some(cmd) => super::review_cmd::run_on(cfg, &mut ops, cmd),
        None => super::review_cmd::interactive(cfg, &mut ops),
    };
    pg.close();
    out
}

/// `gateway identity set|show` on PostgreSQL: a key set here reaches every
/// node's identity cache at once (its notice).
fn identity(cfg: &Config, cmd: &super::keys_cmd::IdentityCommand) -> Result<(), CliError> {
    let rt = runtime()?;
    let pg = rt.block_on(crate::store::postgres::PgStore::connect(&cfg.store))?;
    let out = super::keys_cmd::identity_on(
        cfg,
        cmd,
        |address, pk| rt.block_on(pg.put_identity(address.to_string(), pk.clone())),
        |address| rt.block_on(pg.identity(address.to_string())),
    );
    pg.close();
    out
}

/// `gateway smpp client …` on PostgreSQL: the same checks and password
/// hashes as on SQLite; every node's SMPP server reads the client table
/// again within seconds (binds of a removed client are closed).
fn smpp(cfg: &Config, cmd: &super::smpp_cmd::SmppCommand) -> Result<(), CliError> {
    let rt = runtime()?;
    let pg =
        std::sync::Arc::new(rt.block_on(crate::store::postgres::PgStore::connect(&cfg.store))?);
    let ops = crate::store::postgres::PgSmppClients::new(pg.clone(), rt.handle().clone());
    let out = super::smpp_cmd::run_on(cfg, &ops, cmd);
    pg.close();
    out
}
