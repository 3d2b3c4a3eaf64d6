//! Operators of the console (`dialerctl operator create|revoke|list`): each signs in with a token
//! of their own, never a client's API key. A token carries 256 random bits and is stored as its
//! SHA-256 only, like an API key (`dialer_core::credentials`): a fast hash is right for that
//! much randomness, and a copy of the table signs no one in.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use diesel::prelude::{ExpressionMethods, OptionalExtension, QueryDsl, SelectableHelper};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use serde::Serialize;

use dialer_core::credentials::hash_api_key;
use dialer_core::db::DbPool;
use dialer_core::event_body::rfc3339;
use dialer_core::schema::{operator_sessions, operators};

use crate::ops::error::{OpsError, OpsResult, Refusals};

/// What an operator token starts with, so a leaked one is recognised for what it is.
pub const TOKEN_PREFIX: &str = "dop_";

/// Characters of a token kept in clear to tell tokens apart.
const SHOWN_PREFIX_CHARS: usize = 10;

#[derive(Debug, Clone, diesel::Queryable, diesel::Selectable)]
#[diesel(table_name = operators)]
#[diesel(check_for_backend(diesel::pg::Pg))]
pub struct Operator {
    pub id: i64,
    pub name: String,
    pub token_prefix: String,
    pub created_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
    pub last_sign_in_at: Option<DateTime<Utc>>,
}

/// An operator as `dialerctl operator list` shows it (never the token's hash).
#[derive(Debug, Clone, Serialize)]
pub struct OperatorView {
    pub name: String,
    pub token_prefix: String,
    pub created_at: String,
    pub revoked_at: Option<String>,
    pub last_sign_in_at: Option<String>,
}

impl From<&Operator> for OperatorView {
    fn from(o: &Operator) -> Self {
        OperatorView {
            name: o.name.clone(),
            token_prefix: o.token_prefix.clone(),
            created_at: rfc3339(o.created_at),
            revoked_at: o.revoked_at.map(rfc3339),
            last_sign_in_at: o.last_sign_in_at.map(rfc3339),
        }
    }
}

/// A new operator and its token, shown this once.
#[derive(Debug, Serialize)]
pub struct CreatedOperator {
    #[serde(flatten)]
    pub operator: OperatorView,
    pub token: String,
}

/// `prefix` and 43 URL-safe characters (256 bits from the OS's random source).
pub fn random_token(prefix: &str) -> OpsResult<String> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| OpsError::internal(format!("random source: {e}")))?;
    Ok(format!("{prefix}{}", URL_SAFE_NO_PAD.encode(bytes)))
}

/// The stored form of a token (or session id): its SHA-256.
pub fn token_hash(token: &str) -> [u8; 32] {
    hash_api_key(token)
}

/// Creates operator `name` and its token. A revoked operator's name may be taken again.
pub async fn create(pool: &DbPool, name: &str) -> OpsResult<CreatedOperator> {
    let token = random_token(TOKEN_PREFIX)?;
    let mut conn = pool.get().await?;
    let operator = diesel::insert_into(operators::table)
        .values((
            operators::name.eq(name),
            operators::token_hash.eq(token_hash(&token).to_vec()),
            operators::token_prefix.eq(token.chars().take(SHOWN_PREFIX_CHARS).collect::<String>()),
        ))
        .returning(Operator::as_returning())
        .get_result(&mut conn)
        .await
        .map_err(|e| {
            Refusals::taken(
                "operator_exists",
                format!("operator `{name}` already exists"),
            )
            .or_invalid("operator names are 1 to 64 letters, digits and _ . @ -")
            .error(e)
        })?;
    Ok(CreatedOperator {
        operator: OperatorView::from(&operator),
        token,
    })
}

/// Revokes operator `name`: its token no longer signs in and its sessions end now.
pub async fn revoke(pool: &DbPool, name: &str) -> OpsResult<OperatorView> {
    let mut conn = pool.get().await?;
    let operator = conn
        .transaction::<Operator, OpsError, _>(async |conn| {
            let operator: Operator = diesel::update(
                operators::table
                    .filter(operators::name.eq(name))
                    .filter(operators::revoked_at.is_null()),
            )
            .set(operators::revoked_at.eq(diesel::dsl::now))
            .returning(Operator::as_returning())
            .get_result(conn)
            .await
            .map_err(|e| Refusals::missing(format!("no active operator `{name}`")).error(e))?;
            diesel::update(
                operator_sessions::table
                    .filter(operator_sessions::operator_id.eq(operator.id))
                    .filter(operator_sessions::ended_at.is_null()),
            )
            .set(operator_sessions::ended_at.eq(diesel::dsl::now))
            .execute(conn)
            .await?;
            Ok(operator)
        })
        .await?;
    Ok(OperatorView::from(&operator))
}

/// Every operator, active ones first, then by name.
pub async fn list(pool: &DbPool) -> OpsResult<Vec<OperatorView>> {
    let mut conn = pool.get().await?;
    let all: Vec<Operator> = operators::table
        .order((
            operators::revoked_at.is_not_null(),
            operators::name,
            operators::id,
        ))
        .select(Operator::as_select())
        .load(&mut conn)
        .await?;
    Ok(all.iter().map(OperatorView::from).collect())
}

/// The active operator this token belongs to, if any.
pub async fn by_token(conn: &mut AsyncPgConnection, token: &str) -> OpsResult<Option<Operator>> {
    Ok(operators::table
        .filter(operators::token_hash.eq(token_hash(token).as_slice()))
        .filter(operators::revoked_at.is_null())
        .select(Operator::as_select())
        .first(conn)
        .await
        .optional()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_random_prefixed_and_hashed() {
        let a = random_token(TOKEN_PREFIX).expect("random");
        let b = random_token(TOKEN_PREFIX).expect("random");
        assert_ne!(a, b);
        assert!(a.starts_with(TOKEN_PREFIX));
        assert_eq!(a.len(), TOKEN_PREFIX.len() + 43);
        assert_eq!(token_hash(&a), token_hash(&a));
        assert_ne!(token_hash(&a), token_hash(&b));
    }
}
