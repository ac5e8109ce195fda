//! The PostgreSQL schema: versioned migrations recorded in `schema_version`,
//! applied under an advisory lock so that nodes starting together do not
//! race (the second waits, then finds the work done).
//!
//! The same tables and ideas as SQLite's `store/schema.rs`, folded into one
//! first version: BIGINT for integers and Unix ms, BYTEA for bytes,
//! BOOLEAN for flags, an identity column where SQLite used the rowid for
//! order. The queue has a lease (owner node, until) for claims across nodes.

use tokio_postgres::Client;

use super::pg_error;
use crate::core::error::{Error, Result};

/// Advisory lock keys (one namespace for the gateway: "gateway" + a byte).
pub(super) const MIGRATION_LOCK: i64 = 0x6761_7465_7761_7901;
/// Held (transaction-scoped) by the node running the retention sweep.
pub(super) const SWEEP_LOCK: i64 = 0x6761_7465_7761_7902;
/// Held (transaction-scoped) by the node running the pseudonymisation pass.
pub(super) const PSEUDONYMISE_LOCK: i64 = 0x6761_7465_7761_7903;
/// Held (transaction-scoped) while appending spam-gate observations, so
/// their ids commit in order and a reader tailing by id misses none.
pub(super) const SPAM_APPEND_LOCK: i64 = 0x6761_7465_7761_7910;
/// Held (transaction-scoped) by the node pruning old observations.
pub(super) const SPAM_PRUNE_LOCK: i64 = 0x6761_7465_7761_7911;

/// Migrations by version (index 0 is version 1). Append only.
const MIGRATIONS: &[&str] = &[
    // 1: everything the SQLite schema has at its version 12.
    r#"
    CREATE TABLE messages (
        id              TEXT PRIMARY KEY,
        direction       TEXT NOT NULL,
        channel         TEXT NOT NULL,
        adapter         TEXT,
        sender          TEXT NOT NULL,
        recipient       TEXT NOT NULL,
        segments        BIGINT NOT NULL,
        encoding        TEXT NOT NULL,
        size_class      BIGINT NOT NULL,
        status          TEXT NOT NULL,
        created_at      BIGINT NOT NULL,
        updated_at      BIGINT NOT NULL,
        expires_at      BIGINT,
        kid             TEXT NOT NULL,
        header          BYTEA NOT NULL,
        sealed          BYTEA,
        carrier_id      TEXT,
        last_error      TEXT,
        verdict         TEXT,
        score           DOUBLE PRECISION,
        deliver_to      TEXT,
        erase_at        BIGINT,
        transit         BOOLEAN NOT NULL DEFAULT FALSE,
        pseudonymised   BIGINT NOT NULL DEFAULT 0,
        status_callback TEXT,
        tenant          TEXT
    );
    CREATE INDEX messages_expiry ON messages(expires_at) WHERE expires_at IS NOT NULL AND sealed IS NOT NULL;
    CREATE INDEX messages_created ON messages(created_at, id);
    CREATE INDEX messages_by_sender ON messages(sender);
    CREATE INDEX messages_by_carrier_id ON messages(carrier_id) WHERE carrier_id IS NOT NULL;
    CREATE INDEX messages_erase_at ON messages(erase_at) WHERE erase_at IS NOT NULL;
    CREATE INDEX messages_transit ON messages(created_at) WHERE transit;
    CREATE INDEX messages_clear ON messages(created_at) WHERE pseudonymised < 2;
    CREATE INDEX messages_by_tenant ON messages(tenant, created_at) WHERE tenant IS NOT NULL;

    CREATE TABLE message_events (
        seq         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        message_id  TEXT NOT NULL,
        at          BIGINT NOT NULL,
        status      TEXT NOT NULL,
        detail      TEXT,
        late        BOOLEAN NOT NULL DEFAULT FALSE
    );
    CREATE INDEX message_events_by_message ON message_events(message_id, seq);

    CREATE TABLE queue (
        message_id      TEXT PRIMARY KEY,
        target          TEXT NOT NULL,
        next_attempt_at BIGINT NOT NULL,
        attempts        BIGINT NOT NULL DEFAULT 0,
        last_error      TEXT,
        dead            BOOLEAN NOT NULL DEFAULT FALSE,
        lease_owner     TEXT,
        lease_until     BIGINT
    );
    CREATE INDEX queue_due ON queue(next_attempt_at) WHERE NOT dead;
    CREATE INDEX queue_target ON queue(target) WHERE NOT dead;

    CREATE TABLE carrier_ids (
        adapter     TEXT NOT NULL,
        carrier_id  TEXT NOT NULL,
        message_id  TEXT NOT NULL,
        PRIMARY KEY (adapter, carrier_id)
    );
    CREATE INDEX carrier_ids_by_message ON carrier_ids(message_id);

    CREATE TABLE api_keys (
        id              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        name            TEXT NOT NULL UNIQUE,
        hash            BYTEA NOT NULL UNIQUE,
        created_at      BIGINT NOT NULL,
        revoked_at      BIGINT,
        status_callback TEXT,
        tenant          TEXT,
        scopes          TEXT NOT NULL DEFAULT 'send,read,identities,admin',
        expires_at      BIGINT,
        previous_hash   BYTEA UNIQUE,
        previous_until  BIGINT
    );

    CREATE TABLE identities (
        address     TEXT PRIMARY KEY,
        public_key  BYTEA NOT NULL,
        kid         TEXT NOT NULL,
        updated_at  BIGINT NOT NULL
    );

    CREATE TABLE pending_parts (
        id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        adapter     TEXT NOT NULL,
        sender      TEXT NOT NULL,
        arrived_at  BIGINT NOT NULL,
        kid         TEXT NOT NULL,
        header      BYTEA NOT NULL,
        sealed      BYTEA NOT NULL
    );
    CREATE INDEX pending_parts_by_sender ON pending_parts(adapter, sender);

    CREATE TABLE opt_outs (
        local_address   TEXT NOT NULL,
        remote_address  TEXT NOT NULL,
        keyword         TEXT NOT NULL,
        at              BIGINT NOT NULL,
        PRIMARY KEY (local_address, remote_address)
    );

    CREATE TABLE flagged_senders (
        sender            TEXT PRIMARY KEY,
        verdict           TEXT NOT NULL,
        score             DOUBLE PRECISION NOT NULL,
        reasons           TEXT NOT NULL,
        adapter           TEXT,
        first_flagged_at  BIGINT NOT NULL,
        last_seen         BIGINT NOT NULL,
        decided           TEXT
    );

    CREATE TABLE lists (
        kind        TEXT NOT NULL,
        pattern     TEXT NOT NULL,
        expires_at  BIGINT,
        note        TEXT,
        created_at  BIGINT NOT NULL,
        PRIMARY KEY (kind, pattern)
    );

    CREATE TABLE audit_log (
        id              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        at              BIGINT NOT NULL,
        actor           TEXT NOT NULL,
        action          TEXT NOT NULL,
        target          TEXT NOT NULL,
        note            TEXT,
        model_verdict   TEXT,
        model_score     DOUBLE PRECISION
    );

    CREATE TABLE rcs_fallback (
        message_id  TEXT PRIMARY KEY,
        sms_route   TEXT NOT NULL,
        due_at      BIGINT NOT NULL,
        state       TEXT NOT NULL DEFAULT 'pending',
        attempts    BIGINT NOT NULL DEFAULT 0
    );
    CREATE INDEX rcs_fallback_due ON rcs_fallback(due_at);

    CREATE TABLE smpp_clients (
        system_id   TEXT PRIMARY KEY,
        salt        BYTEA NOT NULL,
        hash        BYTEA NOT NULL,
        iterations  BIGINT NOT NULL,
        throughput  DOUBLE PRECISION,
        addresses   TEXT,
        created_at  BIGINT NOT NULL
    );
    CREATE TABLE smpp_parts (
        route       TEXT NOT NULL,
        smsc_id     TEXT NOT NULL,
        message_id  TEXT NOT NULL,
        part        BIGINT NOT NULL,
        total       BIGINT NOT NULL,
        state       TEXT,
        PRIMARY KEY (route, smsc_id)
    );
    CREATE INDEX smpp_parts_by_message ON smpp_parts(message_id);
    CREATE TABLE smpp_receipts (
        message_id    TEXT PRIMARY KEY,
        system_id     TEXT NOT NULL,
        parts         BIGINT NOT NULL,
        failures_only BOOLEAN NOT NULL,
        created_at    BIGINT NOT NULL
    );
    CREATE INDEX smpp_receipts_by_client ON smpp_receipts(system_id);

    CREATE TABLE idempotency (
        scope       TEXT NOT NULL,
        key         TEXT NOT NULL,
        body_hash   TEXT NOT NULL,
        message_id  TEXT NOT NULL,
        created_at  BIGINT NOT NULL,
        PRIMARY KEY (scope, key)
    );
    CREATE INDEX idempotency_message ON idempotency(message_id);

    CREATE TABLE status_callbacks (
        id              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        message_id      TEXT NOT NULL,
        url             TEXT NOT NULL,
        status          TEXT NOT NULL,
        error           TEXT,
        at              BIGINT NOT NULL,
        attempts        BIGINT NOT NULL DEFAULT 0,
        next_attempt_at BIGINT NOT NULL
    );
    CREATE INDEX status_callbacks_by_message ON status_callbacks(message_id, id);
    CREATE INDEX status_callbacks_due ON status_callbacks(next_attempt_at);
    "#,
    // 2: status callbacks are claimed like queue entries (a lease), so two
    // nodes do not POST the same one.
    r#"
    ALTER TABLE status_callbacks ADD COLUMN lease_owner TEXT;
    ALTER TABLE status_callbacks ADD COLUMN lease_until BIGINT;
    "#,
    // 3: RCS fallback timers are claimed with a lease too, so one node
    // across the cluster handles each.
    r#"
    ALTER TABLE rcs_fallback ADD COLUMN lease_owner TEXT;
    ALTER TABLE rcs_fallback ADD COLUMN lease_until BIGINT;
    "#,
    // 4: review drops wait out their undo window here (SQLite's
    // `pending_drops`), now that the review operations run on PostgreSQL.
    r#"
    CREATE TABLE pending_drops (
        message_id  TEXT PRIMARY KEY,
        sender      TEXT NOT NULL,
        detail      TEXT NOT NULL,
        actor       TEXT NOT NULL,
        final_at    BIGINT NOT NULL
    );
    CREATE INDEX pending_drops_by_final ON pending_drops(final_at);
    CREATE INDEX pending_drops_by_sender ON pending_drops(sender);
    "#,
    // 5: the fingerprint of the cluster's current edge public key (one
    // row): a node provisioned with other keys refuses to start.
    r#"
    CREATE TABLE cluster_edge_key (
        one          BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK (one),
        fingerprint  TEXT NOT NULL,
        recorded_at  BIGINT NOT NULL
    );
    "#,
    // 6 (cluster.rs): the spam gate's shared observations, the node
    // registry, and the leases of physical channels.
    r#"
    CREATE TABLE spam_events (
        id      BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        node    TEXT NOT NULL,
        at      BIGINT NOT NULL,
        allowed BOOLEAN NOT NULL,
        event   TEXT NOT NULL
    );
    CREATE INDEX spam_events_at ON spam_events(at);
    CREATE TABLE nodes (
        node        TEXT PRIMARY KEY,
        started_at  BIGINT NOT NULL,
        last_seen   BIGINT NOT NULL
    );
    CREATE TABLE channel_leases (
        channel     TEXT PRIMARY KEY,
        node        TEXT NOT NULL,
        until       BIGINT NOT NULL,
        since       BIGINT NOT NULL
    );
    "#,
    // 7 (smpp.rs): an owed SMPP receipt is claimed by the node that sends
    // it, so of several nodes where its client is bound one sends it.
    r#"
    ALTER TABLE smpp_receipts ADD COLUMN lease_owner TEXT;
    ALTER TABLE smpp_receipts ADD COLUMN lease_until BIGINT;
    "#,
];

/// The schema version this binary writes.
pub const CURRENT_VERSION: i64 = MIGRATIONS.len() as i64;

/// Brings the database up to [`CURRENT_VERSION`], holding the migration
/// lock (session-scoped) for the whole run and releasing it on every path.
pub(super) async fn migrate(client: &mut Client) -> Result<()> {
    client
        .execute("SELECT pg_advisory_lock($1)", &[&MIGRATION_LOCK])
        .await
        .map_err(pg_error)?;
    let out = migrate_locked(client).await;
    let unlocked = client
        .execute("SELECT pg_advisory_unlock($1)", &[&MIGRATION_LOCK])
        .await
        .map_err(pg_error);
    out.and(unlocked.map(|_| ()))
}

async fn migrate_locked(client: &mut Client) -> Result<()> {
    client
        .batch_execute(
            "CREATE TABLE IF NOT EXISTS schema_version (version BIGINT NOT NULL); \
             INSERT INTO schema_version SELECT 0 WHERE NOT EXISTS (SELECT 1 FROM schema_version)",
        )
        .await
        .map_err(pg_error)?;
    let have: i64 = client
        .query_one("SELECT MAX(version) FROM schema_version", &[])
        .await
        .map_err(pg_error)?
        .get(0);
    if have > CURRENT_VERSION {
        return Err(Error::Config(format!(
            "database schema version {have} is newer than this gateway ({CURRENT_VERSION})"
        )));
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(have.max(0) as usize) {
        let tx = client.transaction().await.map_err(pg_error)?;
        tx.batch_execute(sql).await.map_err(pg_error)?;
        tx.execute(
            "UPDATE schema_version SET version = $1",
            &[&((i + 1) as i64)],
        )
        .await
        .map_err(pg_error)?;
        tx.commit().await.map_err(pg_error)?;
    }
    Ok(())
}

/// Creates the schema of `version` (at most [`CURRENT_VERSION`]) inside
/// `tx` in an empty database: what `restore` loads a backup of that
/// version into, before the later migrations run as usual.
pub(super) async fn create_at(tx: &tokio_postgres::Transaction<'_>, version: i64) -> Result<()> {
    if !(1..=CURRENT_VERSION).contains(&version) {
        return Err(Error::Config(format!(
            "a backup of schema version {version} cannot be restored by this gateway (it knows 1 to {CURRENT_VERSION})"
        )));
    }
    tx.batch_execute("CREATE TABLE schema_version (version BIGINT NOT NULL)")
        .await
        .map_err(pg_error)?;
    for sql in MIGRATIONS.iter().take(version as usize) {
        tx.batch_execute(sql).await.map_err(pg_error)?;
    }
    tx.execute("INSERT INTO schema_version VALUES ($1)", &[&version])
        .await
        .map_err(pg_error)?;
    Ok(())
}
