//! Versioned migrations, applied in order and recorded in `PRAGMA user_version`.
//!
//! Each migration runs in its own transaction; a database newer than this
//! binary is refused rather than guessed at.

use rusqlite::Connection;

use crate::core::error::{Error, Result};

/// Migrations by version (index 0 is version 1).
const MIGRATIONS: &[&str] = &[
    // 1: the backbone.
    r#"
    CREATE TABLE messages (
        id          TEXT PRIMARY KEY,
        direction   TEXT NOT NULL,
        channel     TEXT NOT NULL,
        adapter     TEXT,
        sender      TEXT NOT NULL,
        recipient   TEXT NOT NULL,
        segments    INTEGER NOT NULL,
        encoding    TEXT NOT NULL,
        size_class  INTEGER NOT NULL,
        status      TEXT NOT NULL,
        created_at  INTEGER NOT NULL,
        updated_at  INTEGER NOT NULL,
        expires_at  INTEGER,
        kid         TEXT NOT NULL,
        header      BLOB NOT NULL,
        sealed      BLOB,
        carrier_id  TEXT,
        last_error  TEXT
    );
    CREATE INDEX messages_expiry ON messages(expires_at) WHERE expires_at IS NOT NULL AND sealed IS NOT NULL;
    CREATE INDEX messages_created ON messages(created_at);

    CREATE TABLE message_events (
        message_id  TEXT NOT NULL,
        at          INTEGER NOT NULL,
        status      TEXT NOT NULL,
        detail      TEXT
    );
    CREATE INDEX message_events_by_message ON message_events(message_id);

    CREATE TABLE queue (
        message_id      TEXT PRIMARY KEY,
        target          TEXT NOT NULL,
        next_attempt_at INTEGER NOT NULL,
        attempts        INTEGER NOT NULL DEFAULT 0,
        last_error      TEXT,
        dead            INTEGER NOT NULL DEFAULT 0
    );
    CREATE INDEX queue_due ON queue(dead, next_attempt_at);

    CREATE TABLE carrier_ids (
        adapter     TEXT NOT NULL,
        carrier_id  TEXT NOT NULL,
        message_id  TEXT NOT NULL,
        PRIMARY KEY (adapter, carrier_id)
    ) WITHOUT ROWID;

    CREATE TABLE api_keys (
        id          INTEGER PRIMARY KEY,
        name        TEXT NOT NULL UNIQUE,
        hash        BLOB NOT NULL UNIQUE,
        created_at  INTEGER NOT NULL,
        revoked_at  INTEGER
    );

    CREATE TABLE identities (
        address     TEXT PRIMARY KEY,
        public_key  BLOB NOT NULL,
        kid         TEXT NOT NULL,
        updated_at  INTEGER NOT NULL
    );
    "#,
    // 2: multipart parts waiting for their siblings (sealed), and opt-outs.
    r#"
    CREATE TABLE pending_parts (
        id          INTEGER PRIMARY KEY,
        adapter     TEXT NOT NULL,
        sender      TEXT NOT NULL,
        arrived_at  INTEGER NOT NULL,
        kid         TEXT NOT NULL,
        header      BLOB NOT NULL,
        sealed      BLOB NOT NULL
    );
    CREATE INDEX pending_parts_by_sender ON pending_parts(adapter, sender);

    CREATE TABLE opt_outs (
        local_address   TEXT NOT NULL,
        remote_address  TEXT NOT NULL,
        keyword         TEXT NOT NULL,
        at              INTEGER NOT NULL,
        PRIMARY KEY (local_address, remote_address)
    ) WITHOUT ROWID;
    "#,
    // 3: spam defense: verdicts on messages, the review queue of flagged
    // senders, allow/block lists, and the operators' audit log.
    r#"
    ALTER TABLE messages ADD COLUMN verdict TEXT;
    ALTER TABLE messages ADD COLUMN score REAL;
    CREATE INDEX messages_by_sender_status ON messages(sender, status);

    CREATE TABLE flagged_senders (
        sender            TEXT PRIMARY KEY,
        verdict           TEXT NOT NULL,
        score             REAL NOT NULL,
        reasons           TEXT NOT NULL,
        adapter           TEXT,
        first_flagged_at  INTEGER NOT NULL,
        last_seen         INTEGER NOT NULL,
        decided           TEXT
    );

    CREATE TABLE lists (
        kind        TEXT NOT NULL,
        pattern     TEXT NOT NULL,
        expires_at  INTEGER,
        note        TEXT,
        created_at  INTEGER NOT NULL,
        PRIMARY KEY (kind, pattern)
    ) WITHOUT ROWID;

    CREATE TABLE audit_log (
        id              INTEGER PRIMARY KEY,
        at              INTEGER NOT NULL,
        actor           TEXT NOT NULL,
        action          TEXT NOT NULL,
        target          TEXT NOT NULL,
        note            TEXT,
        model_verdict   TEXT,
        model_score     REAL
    );
    "#,
    // 4: the per-sender index without the status column: review and the
    // CLI look messages up by sender and filter the few rows by status, and
    // an index that includes the status had to be rewritten on every status
    // change of every message.
    r#"
    DROP INDEX messages_by_sender_status;
    CREATE INDEX messages_by_sender ON messages(sender);
    "#,
    // 5: durable SMS-fallback timers of `auto` RCS messages (one per
    // message; deleted in the transaction that queues the SMS or records
    // the delivery). Holds no content: the route name and times only.
    r#"
    CREATE TABLE rcs_fallback (
        message_id  TEXT PRIMARY KEY,
        sms_route   TEXT NOT NULL,
        due_at      INTEGER NOT NULL,
        state       TEXT NOT NULL DEFAULT 'pending',
        attempts    INTEGER NOT NULL DEFAULT 0
    );
    CREATE INDEX rcs_fallback_due ON rcs_fallback(due_at);
    "#,
    // 6: SMPP: server clients' credentials (PBKDF2, salted: SMPP passwords are
    // at most 8 characters, so a fast hash would not protect them), the
    // SMSC's message id of every part sent through an SMPP client bind (to
    // map receipts back), and the receipts owed to server clients.
    r#"
    CREATE TABLE smpp_clients (
        system_id   TEXT PRIMARY KEY,
        salt        BLOB NOT NULL,
        hash        BLOB NOT NULL,
        iterations  INTEGER NOT NULL,
        throughput  REAL,
        addresses   TEXT,
        created_at  INTEGER NOT NULL
    );
    CREATE TABLE smpp_parts (
        route       TEXT NOT NULL,
        smsc_id     TEXT NOT NULL,
        message_id  TEXT NOT NULL,
        part        INTEGER NOT NULL,
        total       INTEGER NOT NULL,
        state       TEXT,
        PRIMARY KEY (route, smsc_id)
    ) WITHOUT ROWID;
    CREATE INDEX smpp_parts_by_message ON smpp_parts(message_id);
    CREATE TABLE smpp_receipts (
        message_id  TEXT PRIMARY KEY,
        system_id   TEXT NOT NULL,
        parts       INTEGER NOT NULL,
        failures_only INTEGER NOT NULL,
        created_at  INTEGER NOT NULL
    );
    CREATE INDEX smpp_receipts_by_client ON smpp_receipts(system_id);
    "#,
    // 7: where a message goes when that is not its direction's default
    // (`smpp:<system_id>` for an inbound message to an SMPP server client's
    // number), so a held message that is released goes there too. The
    // queue row says the same while the message is queued.
    r#"
    ALTER TABLE messages ADD COLUMN deliver_to TEXT;
    "#,
    // 8: a reported status that arrived after the message had moved past
    // it (a retried `sent` after `delivered`) is kept in the history but
    // marked late: it changed nothing, and exports leave it out.
    r#"
    ALTER TABLE message_events ADD COLUMN late INTEGER NOT NULL DEFAULT 0;
    "#,
    // 9: `Idempotency-Key` of `POST /v1/messages`, per API key: the first
    // answer for 24 hours, written in the message's own transaction.
    r#"
    CREATE TABLE idempotency (
        scope       TEXT NOT NULL,
        key         TEXT NOT NULL,
        body_hash   TEXT NOT NULL,
        message_id  TEXT NOT NULL,
        created_at  INTEGER NOT NULL,
        PRIMARY KEY (scope, key)
    );
    CREATE INDEX idempotency_message ON idempotency(message_id);
    "#,
    // 10: when an acknowledged message's body is to be erased, for
    // `[privacy] keep_after_delivery_secs` above 0 (at 0 it goes in the
    // commit that records the acknowledgement and this stays NULL); and
    // `transit`: a message whose body was never written (no content at
    // rest), carried in memory only; `pseudonymised`: its counterparty's
    // number was replaced by a keyed hash (`[privacy] pseudonymise_after_secs`)
    // in the columns (1) and in the header too (2, once no body needs the
    // header as its associated data).
    r#"
    ALTER TABLE messages ADD COLUMN erase_at INTEGER;
    CREATE INDEX messages_erase_at ON messages(erase_at) WHERE erase_at IS NOT NULL;
    ALTER TABLE messages ADD COLUMN transit INTEGER NOT NULL DEFAULT 0;
    CREATE INDEX messages_transit ON messages(created_at) WHERE transit = 1;
    ALTER TABLE messages ADD COLUMN pseudonymised INTEGER NOT NULL DEFAULT 0;
    CREATE INDEX messages_clear ON messages(created_at) WHERE pseudonymised < 2;
    "#,
    // 11: status callbacks: the URL a message's status changes are POSTed
    // to (its own, or its API key's default), and the callbacks owed, in
    // order per message (written in the status change's transaction); ids
    // are never reused (AUTOINCREMENT): they are the callbacks'
    // idempotency keys.
    // The list API pages newest first by (created_at, id).
    r#"
    ALTER TABLE messages ADD COLUMN status_callback TEXT;
    ALTER TABLE api_keys ADD COLUMN status_callback TEXT;
    CREATE TABLE status_callbacks (
        id              INTEGER PRIMARY KEY AUTOINCREMENT,
        message_id      TEXT NOT NULL,
        url             TEXT NOT NULL,
        status          TEXT NOT NULL,
        error           TEXT,
        at              INTEGER NOT NULL,
        attempts        INTEGER NOT NULL DEFAULT 0,
        next_attempt_at INTEGER NOT NULL
    );
    CREATE INDEX status_callbacks_by_message ON status_callbacks(message_id, id);
    CREATE INDEX status_callbacks_due ON status_callbacks(next_attempt_at);
    DROP INDEX messages_created;
    CREATE INDEX messages_created ON messages(created_at, id);
    "#,
    // 12: tenants. An API key belongs to a tenant (none: the implicit
    // tenant, or an operator) and carries scopes; keys made before tenants
    // were administrators and keep every scope. Rotation keeps the previous
    // secret valid until `previous_until`; `expires_at` ends a key. Each
    // message records its owning tenant, so lookups and lists filter by it.
    r#"
    ALTER TABLE api_keys ADD COLUMN tenant TEXT;
    ALTER TABLE api_keys ADD COLUMN scopes TEXT NOT NULL DEFAULT 'send,read,identities,admin';
    ALTER TABLE api_keys ADD COLUMN expires_at INTEGER;
    ALTER TABLE api_keys ADD COLUMN previous_hash BLOB;
    ALTER TABLE api_keys ADD COLUMN previous_until INTEGER;
    CREATE UNIQUE INDEX api_keys_previous ON api_keys(previous_hash) WHERE previous_hash IS NOT NULL;
    ALTER TABLE messages ADD COLUMN tenant TEXT;
    CREATE INDEX messages_by_tenant ON messages(tenant, created_at) WHERE tenant IS NOT NULL;
    "#,
    // 13: the undo window of review drops (store/undo.rs). A dropped
    // message stays held, out of the queue's views, until `final_at`;
    // then it is dropped for good and its body erased.
    r#"
    CREATE TABLE pending_drops (
        message_id  TEXT PRIMARY KEY,
        sender      TEXT NOT NULL,
        detail      TEXT NOT NULL,
        actor       TEXT NOT NULL,
        final_at    INTEGER NOT NULL
    );
    CREATE INDEX pending_drops_by_final ON pending_drops(final_at);
    CREATE INDEX pending_drops_by_sender ON pending_drops(sender);
    "#,
    // 14: the queue without a rowid. Every message gets a queue row when
    // it is accepted and loses it when it is delivered; as a rowid table
    // keyed by a TEXT id each of those wrote three b-trees (the table, the
    // key's own index, `queue_due`), clustered on the key two. Nothing
    // needs the rowid (dead letters list by the message's last change).
    r#"
    CREATE TABLE queue_clustered (
        message_id      TEXT PRIMARY KEY,
        target          TEXT NOT NULL,
        next_attempt_at INTEGER NOT NULL,
        attempts        INTEGER NOT NULL DEFAULT 0,
        last_error      TEXT,
        dead            INTEGER NOT NULL DEFAULT 0
    ) WITHOUT ROWID;
    INSERT INTO queue_clustered (message_id, target, next_attempt_at, attempts, last_error, dead)
        SELECT message_id, target, next_attempt_at, attempts, last_error, dead FROM queue;
    DROP TABLE queue;
    ALTER TABLE queue_clustered RENAME TO queue;
    CREATE INDEX queue_due ON queue(dead, next_attempt_at);
    "#,
];

/// The schema version this binary writes.
pub const CURRENT_VERSION: i64 = MIGRATIONS.len() as i64;

/// Brings the database up to [`CURRENT_VERSION`].
pub fn migrate(conn: &mut Connection) -> Result<()> {
    migrate_to(conn, CURRENT_VERSION)
}

/// Brings the database up to version `want` (tests build old databases).
pub(super) fn migrate_to(conn: &mut Connection, want: i64) -> Result<()> {
    let have: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if have > CURRENT_VERSION {
        return Err(Error::Config(format!(
            "database schema version {have} is newer than this gateway ({CURRENT_VERSION})"
        )));
    }
    for (i, sql) in MIGRATIONS
        .iter()
        .enumerate()
        .skip(have as usize)
        .take((want - have).max(0) as usize)
    {
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", (i + 1) as i64)?;
        tx.commit()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn migrates_once_and_refuses_newer() {
        let mut c = Connection::open_in_memory().unwrap();
        migrate(&mut c).unwrap();
        migrate(&mut c).unwrap();
        let v: i64 = c
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(v, CURRENT_VERSION);
        c.pragma_update(None, "user_version", 99).unwrap();
        assert!(migrate(&mut c).is_err());
    }
}
