//! Raw SQL that each connection prepares once and then only binds and executes.
//!
//! `diesel::sql_query` marks its text unsafe to cache, so every execution is parsed, analysed
//! and planned again by PostgreSQL, in a round trip of its own before the one that runs it. In a
//! burst that cost is spread over many rows per statement; at a paced rate, with a few rows per
//! statement, it was most of PostgreSQL's CPU per call (issue 13). `.prepared()` on a
//! `sql_query(..)` (binds included) lets the connection's statement cache keep it, keyed by its
//! text and bind types, and PostgreSQL keep its plan.
//!
//! Only for a text that is the same at every execution (a constant, or formatted from constants
//! such as enum names): text that carries data would grow each connection's cache without
//! bound, and keeps plain `sql_query`.

use diesel::pg::Pg;
use diesel::query_builder::{AstPass, Query, QueryFragment, QueryId};
use diesel::result::QueryResult;

/// A query the connection may keep prepared.
#[derive(Debug, Clone, Copy)]
#[must_use = "queries are only executed when loaded or executed"]
pub struct Prepared<Q>(Q);

pub trait PrepareOnce: Sized {
    /// Keep this fixed-text query prepared on the connection.
    fn prepared(self) -> Prepared<Self>;
}

impl<Q: QueryFragment<Pg>> PrepareOnce for Q {
    fn prepared(self) -> Prepared<Q> {
        Prepared(self)
    }
}

impl<Q: QueryFragment<Pg>> QueryFragment<Pg> for Prepared<Q> {
    fn walk_ast<'b>(&'b self, pass: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        self.0.walk_ast(pass)
    }

    // sql_query says no to every text; this one is fixed.
    fn is_safe_to_cache_prepared(&self, _backend: &Pg) -> QueryResult<bool> {
        Ok(true)
    }
}

impl<Q> QueryId for Prepared<Q> {
    type QueryId = ();
    // No type to key the cache by: it is keyed by the SQL text and the bind types.
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl<Q: Query> Query for Prepared<Q> {
    type SqlType = Q::SqlType;
}

/// Statements of fewer rows than this get generic plans (see [`plan_generically`]).
pub const GENERIC_PLANS_BELOW: usize = 64;

/// For the rest of the current transaction, PostgreSQL runs each prepared statement on its
/// cached generic plan instead of planning it again for the values bound.
///
/// Its plan cache keeps choosing custom plans for a statement whose custom plans look cheaper
/// than the generic one, which is what a few rows bound as arrays look like: at 50 calls/s the
/// state writer's groups of a handful of transitions had their five-table row lock planned at
/// every execution, about 1 ms each, a fifth of PostgreSQL's CPU per call. A generic plan is
/// the right one for a few rows; for hundreds (a burst), a custom plan made for the array's real
/// size is better (forcing generic plans everywhere cost bursts 15-20 % more), so callers ask
/// for this only below [`GENERIC_PLANS_BELOW`] rows.
pub async fn plan_generically(
    conn: &mut diesel_async::AsyncPgConnection,
) -> diesel::QueryResult<()> {
    use diesel_async::SimpleAsyncConnection;
    conn.batch_execute("SET LOCAL plan_cache_mode = force_generic_plan")
        .await
}
