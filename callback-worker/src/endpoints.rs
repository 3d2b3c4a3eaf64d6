//! An account's callback endpoint as the worker uses it: URL checked against the policy,
//! signing keys, whether it takes batch events, and the HTTP client that trusts its CA. Read
//! from `accounts` and reused for a short while, so a changed URL or a rotated secret is
//! picked up within seconds.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use diesel::sql_types::{Array, BigInt, Bool, Nullable, Text, Timestamptz};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use url::Url;

use crate::delivery::{self, HttpSettings};
use crate::signing::SigningKeys;
use dialer_core::prepared::PrepareOnce;

/// Everything needed to send to one account, or why it cannot be sent to.
pub struct Endpoint {
    pub account_id: i64,
    /// The URL as configured (recorded with every attempt).
    pub url_text: Option<String>,
    pub target: Result<Target, String>,
    pub batch_events: bool,
    loaded_at: Instant,
}

pub struct Target {
    pub url: Url,
    pub keys: SigningKeys,
    pub client: reqwest::Client,
}

#[derive(diesel::QueryableByName)]
struct AccountRow {
    #[diesel(sql_type = BigInt)]
    id: i64,
    #[diesel(sql_type = Nullable<Text>)]
    callback_url: Option<String>,
    #[diesel(sql_type = Text)]
    callback_secret: String,
    #[diesel(sql_type = Nullable<Text>)]
    callback_secret_previous: Option<String>,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    callback_secret_previous_until: Option<DateTime<Utc>>,
    #[diesel(sql_type = Bool)]
    callback_batch_events: bool,
    #[diesel(sql_type = Nullable<Text>)]
    callback_ca_cert: Option<String>,
}

/// Endpoints by account, and HTTP clients by CA (so connections survive a reload).
pub struct EndpointCache {
    http: HttpSettings,
    max_age: Duration,
    shared_client: Result<reqwest::Client, String>,
    by_account: HashMap<i64, Arc<Endpoint>>,
    clients_by_ca: HashMap<String, Result<reqwest::Client, String>>,
}

impl EndpointCache {
    pub fn new(http: HttpSettings, max_age: Duration) -> EndpointCache {
        EndpointCache {
            shared_client: delivery::build_client(&http, None).map_err(|e| e.to_string()),
            http,
            max_age,
            by_account: HashMap::new(),
            clients_by_ca: HashMap::new(),
        }
    }

    /// Makes sure every account in `ids` has a fresh entry (one query for all missing ones).
    pub async fn refresh(
        &mut self,
        conn: &mut AsyncPgConnection,
        ids: &[i64],
    ) -> Result<(), diesel::result::Error> {
        let now = Instant::now();
        let mut stale: Vec<i64> = ids
            .iter()
            .copied()
            .filter(|id| {
                self.by_account
                    .get(id)
                    .is_none_or(|e| now.duration_since(e.loaded_at) >= self.max_age)
            })
            .collect();
        stale.sort_unstable();
        stale.dedup();
        if stale.is_empty() {
            return Ok(());
        }
        let rows: Vec<AccountRow> = diesel::sql_query(
            "SELECT id, callback_url, callback_secret, callback_secret_previous, \
                    callback_secret_previous_until, callback_batch_events, callback_ca_cert \
             FROM accounts WHERE id = ANY($1)",
        )
        .bind::<Array<BigInt>, _>(&stale)
        .prepared()
        .load(conn)
        .await?;
        for row in rows {
            let endpoint = self.build(row, now);
            self.by_account
                .insert(endpoint.account_id, Arc::new(endpoint));
        }
        Ok(())
    }

    pub fn get(&self, account_id: i64) -> Option<Arc<Endpoint>> {
        self.by_account.get(&account_id).cloned()
    }

    fn build(&mut self, row: AccountRow, now: Instant) -> Endpoint {
        let target = self.target(&row);
        Endpoint {
            account_id: row.id,
            url_text: row.callback_url,
            target,
            batch_events: row.callback_batch_events,
            loaded_at: now,
        }
    }

    fn target(&mut self, row: &AccountRow) -> Result<Target, String> {
        let url_text = row
            .callback_url
            .as_deref()
            .ok_or_else(|| "the account has no callback URL".to_owned())?;
        let url = self
            .http
            .policy
            .check(url_text)
            .map_err(|e| e.to_string())?;
        let keys = SigningKeys::from_texts(
            &row.callback_secret,
            row.callback_secret_previous.as_deref(),
            row.callback_secret_previous_until,
        )?;
        let client = match &row.callback_ca_cert {
            None => self.shared_client.clone()?,
            Some(pem) => self
                .clients_by_ca
                .entry(pem.clone())
                .or_insert_with(|| {
                    delivery::build_client(&self.http, Some(pem)).map_err(|e| e.to_string())
                })
                .clone()?,
        };
        Ok(Target { url, keys, client })
    }
}
