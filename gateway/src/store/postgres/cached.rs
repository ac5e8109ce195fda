//! Prepared statements cached per connection, for the hot path.
//!
//! tokio-postgres prepares a statement given as text on every call: one
//! extra round trip (Parse/Describe) and a parse and plan on the server
//! each time, then a Close. Measured with `bench/cluster.py --statements`
//! this was most of the server's CPU per message. The pool's connections
//! keep a cache of prepared statements (deadpool's `StatementCache`, kept
//! across checkouts); these helpers prepare through it once per
//! connection and then only bind and execute.

use tokio_postgres::Row;
use tokio_postgres::types::ToSql;

use super::pg_error;
use crate::core::error::Result;

/// A transaction whose connection caches prepared statements.
pub(super) type Tx<'a> = deadpool_postgres::Transaction<'a>;

/// Parameters of one statement.
pub(super) type Params<'a> = &'a [&'a (dyn ToSql + Sync)];

/// Statements run through the connection's statement cache.
pub(super) trait Cached {
    /// Like `execute`, with the statement prepared once per connection.
    async fn run(&self, sql: &str, params: Params<'_>) -> Result<u64>;
    /// Like `query`, prepared once per connection.
    async fn rows(&self, sql: &str, params: Params<'_>) -> Result<Vec<Row>>;
    /// Like `query_opt`, prepared once per connection.
    async fn row_opt(&self, sql: &str, params: Params<'_>) -> Result<Option<Row>>;
    /// Like `query_one`, prepared once per connection.
    async fn row(&self, sql: &str, params: Params<'_>) -> Result<Row>;
}

macro_rules! cached_impl {
    ($t:ty) => {
        impl Cached for $t {
            async fn run(&self, sql: &str, params: Params<'_>) -> Result<u64> {
                let st = self.prepare_cached(sql).await.map_err(pg_error)?;
                self.execute(&st, params).await.map_err(pg_error)
            }
            async fn rows(&self, sql: &str, params: Params<'_>) -> Result<Vec<Row>> {
                let st = self.prepare_cached(sql).await.map_err(pg_error)?;
                self.query(&st, params).await.map_err(pg_error)
            }
            async fn row_opt(&self, sql: &str, params: Params<'_>) -> Result<Option<Row>> {
                let st = self.prepare_cached(sql).await.map_err(pg_error)?;
                self.query_opt(&st, params).await.map_err(pg_error)
            }
            async fn row(&self, sql: &str, params: Params<'_>) -> Result<Row> {
                let st = self.prepare_cached(sql).await.map_err(pg_error)?;
                self.query_one(&st, params).await.map_err(pg_error)
            }
        }
    };
}

cached_impl!(deadpool_postgres::Transaction<'_>);
cached_impl!(deadpool_postgres::ClientWrapper);
