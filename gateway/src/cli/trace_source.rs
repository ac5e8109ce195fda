//! Where `gateway export-trace` and `gateway model … --from-store` read
//! this deployment's traffic and its operators' decisions: the SQLite file
//! in the data directory, or on PostgreSQL the shared database (so the
//! trace and the labels hold every node's traffic and decisions).

use super::{CliError, runtime};
use crate::app::config::Config;
use crate::core::error::Result;
use crate::store::TraceRow;
use crate::store::config::BackendKind;

/// Every trace row at or after `since`, in time order, to `each`.
pub(super) fn each_trace_row(
    cfg: &Config,
    since: i64,
    each: impl FnMut(TraceRow) -> Result<()>,
) -> std::result::Result<(), CliError> {
    if cfg.store.backend != BackendKind::Postgres {
        return Ok(crate::store::open_for_cli(&cfg.data_dir)?.trace(since, each)?);
    }
    runtime()?.block_on(async {
        let pg = crate::store::postgres::PgStore::connect(&cfg.store).await?;
        let out = pg.trace(since, each).await;
        pg.close();
        Ok(out?)
    })
}

/// The operators' spam/ham decisions, the last per sender. On SQLite a
/// data directory without a database has none; on PostgreSQL a database
/// that cannot be read is an error, not "no decisions".
pub(super) fn decisions(
    cfg: &Config,
) -> std::result::Result<Vec<(String, classifier::Label)>, CliError> {
    if cfg.store.backend != BackendKind::Postgres {
        return Ok(crate::store::review::decisions_as_labels(&cfg.data_dir)?);
    }
    runtime()?.block_on(async {
        let pg = crate::store::postgres::PgStore::connect(&cfg.store).await?;
        let out = pg.decisions_as_labels().await;
        pg.close();
        Ok(out?)
    })
}
