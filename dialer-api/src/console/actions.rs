//! `POST /console/actions`: what an operator does from the console (pause, resume, cancel a
//! batch; dispatch; replay failed callbacks; disable or enable a server), through the same
//! operations as the API and dialerctl. Each needs the session, the console's own `Origin` and
//! the session's CSRF token in `X-CSRF-Token`; each is written to the audit log with how it
//! went, refusals included, and answers `{"status": "success", "message": ...}` or the API's
//! error body.

use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;
use serde_json::json;

use dialer_core::callbacks::replay::ReplaySelection;

use crate::api_error::ApiError;
use crate::client_address::client_address;
use crate::console::session::Session;
use crate::console::{audit, csrf};
use crate::ops::accounts;
use crate::ops::audit_log::Outcome;
use crate::ops::batch_control::{self, Control};
use crate::ops::callbacks;
use crate::ops::dispatch;
use crate::ops::handoff::API_HANDOFF;
use crate::ops::servers::{self, ServerUpdate};
use crate::ops::{OpsError, OpsResult};
use crate::state::AppState;

/// The body: the action's name and what it acts on.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ActionRequest {
    action: String,
    account: Option<String>,
    batch_id: Option<i64>,
    server: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Action {
    Batch {
        account: String,
        batch_id: i64,
        control: Control,
    },
    /// One batch, or every dispatchable batch of the account.
    Dispatch {
        account: String,
        batch_id: Option<i64>,
    },
    ReplayFailed {
        account: String,
    },
    Server {
        code: String,
        enable: bool,
    },
}

impl Action {
    fn parse(r: ActionRequest) -> Result<Action, ApiError> {
        let need = |v: Option<String>, what: &str| {
            v.filter(|s| !s.trim().is_empty())
                .ok_or_else(|| ApiError::invalid_request(format!("`{what}` is required")))
        };
        let control = match r.action.as_str() {
            "pause" => Some(Control::Pause),
            "resume" => Some(Control::Resume),
            "cancel" => Some(Control::Cancel),
            _ => None,
        };
        Ok(match (r.action.as_str(), control) {
            (_, Some(control)) => Action::Batch {
                account: need(r.account, "account")?,
                batch_id: r
                    .batch_id
                    .ok_or_else(|| ApiError::invalid_request("`batch_id` is required"))?,
                control,
            },
            ("dispatch", _) => Action::Dispatch {
                account: need(r.account, "account")?,
                batch_id: r.batch_id,
            },
            ("replay_failed", _) => Action::ReplayFailed {
                account: need(r.account, "account")?,
            },
            ("disable_server" | "enable_server", _) => Action::Server {
                code: need(r.server, "server")?,
                enable: r.action == "enable_server",
            },
            (other, _) => {
                return Err(ApiError::invalid_request(format!(
                    "unknown action `{other}`: pause, resume, cancel, dispatch, replay_failed, \
                     disable_server or enable_server"
                )));
            }
        })
    }

    fn name(&self) -> &'static str {
        match self {
            Action::Batch { control, .. } => match control {
                Control::Pause => "pause",
                Control::Resume => "resume",
                Control::Cancel => "cancel",
            },
            Action::Dispatch { .. } => "dispatch",
            Action::ReplayFailed { .. } => "replay_failed",
            Action::Server { enable: true, .. } => "enable_server",
            Action::Server { enable: false, .. } => "disable_server",
        }
    }

    /// `ACME/12345`, `ACME`, `ast1`.
    fn target(&self) -> String {
        match self {
            Action::Batch {
                account, batch_id, ..
            }
            | Action::Dispatch {
                account,
                batch_id: Some(batch_id),
            } => format!("{account}/{batch_id}"),
            Action::Dispatch { account, .. } | Action::ReplayFailed { account } => account.clone(),
            Action::Server { code, .. } => code.clone(),
        }
    }

    /// Runs it; the message says what it did.
    async fn run(&self, state: &AppState) -> OpsResult<String> {
        match self {
            Action::Batch {
                account,
                batch_id,
                control,
            } => {
                let acc = accounts::find(&state.pool, account).await?;
                let s =
                    batch_control::control(&state.pool, &state.broker, &acc, *batch_id, *control)
                        .await?;
                Ok(format!("batch {account}/{batch_id} is {}", s.batch_status))
            }
            Action::Dispatch { account, batch_id } => {
                let acc = accounts::find(&state.pool, account).await?;
                let o =
                    dispatch::dispatch(&state.pool, &state.broker, acc.id, *batch_id, API_HANDOFF)
                        .await?;
                let batches: Vec<String> = o.batches.iter().map(i64::to_string).collect();
                Ok(match o.dispatched {
                    0 => format!("nothing to dispatch for {}", self.target()),
                    n => format!(
                        "{} of {account} dispatched (batch {})",
                        plural(n, "call"),
                        batches.join(", ")
                    ),
                })
            }
            Action::ReplayFailed { account } => {
                let acc = accounts::find(&state.pool, account).await?;
                let o =
                    callbacks::redeliver(&state.pool, acc.id, &ReplaySelection::AllFailed).await?;
                Ok(format!(
                    "{} of {account} will be sent again",
                    plural(o.redelivered as i64, "failed callback")
                ))
            }
            Action::Server { code, enable } => {
                let change = ServerUpdate {
                    enabled: Some(*enable),
                    ..ServerUpdate::default()
                };
                let s = servers::update(&state.pool, code, change).await?;
                Ok(format!(
                    "server {} {}",
                    s.code,
                    if s.enabled { "enabled" } else { "disabled" }
                ))
            }
        }
    }
}

/// "1 call", "2 calls".
fn plural(n: i64, what: &str) -> String {
    match n {
        1 => format!("1 {what}"),
        n => format!("{n} {what}s"),
    }
}

/// `POST /console/actions`
pub async fn act(
    req: HttpRequest,
    state: web::Data<AppState>,
    session: Session,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let address = client_address(&req, &state.config.api_limits.trusted_proxies);
    let address = address.map(|a| a.to_string());
    if let Err(e) = csrf::check(&req, &state.config.public_url, &session.csrf, None) {
        // The session is the operator's but the request may not be theirs: on record, undone.
        tracing::warn!(operator = %session.operator, reason = %e.message, "console action refused");
        audit::write(
            &state,
            &session.operator,
            "request",
            req.path(),
            Outcome::Refused,
            &e.message,
            address,
        )
        .await;
        return Err(e);
    }
    let request: ActionRequest = serde_json::from_slice(&body)
        .map_err(|e| ApiError::invalid_request(format!("the action's body: {e}")))?;
    let action = Action::parse(request)?;
    let result = action.run(&state).await;
    let (outcome, detail) = match &result {
        Ok(message) => (Outcome::Ok, message.clone()),
        Err(e @ (OpsError::NotFound(_) | OpsError::Conflict { .. } | OpsError::Invalid(_))) => {
            (Outcome::Refused, e.to_string())
        }
        // The operator sees a generic message for these (they may hold internals).
        Err(_) => (Outcome::Error, "internal error".to_owned()),
    };
    tracing::info!(
        operator = %session.operator,
        action = action.name(),
        target = %action.target(),
        result = outcome.as_str(),
        "console action"
    );
    audit::write(
        &state,
        &session.operator,
        action.name(),
        &action.target(),
        outcome,
        &detail,
        address,
    )
    .await;
    state.console.hub.poke();
    let message = result?;
    Ok(HttpResponse::Ok().json(json!({"status": "success", "message": message})))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(v: serde_json::Value) -> Result<Action, String> {
        let r: ActionRequest = serde_json::from_value(v).map_err(|e| e.to_string())?;
        Action::parse(r).map_err(|e| e.message)
    }

    #[test]
    fn actions_and_their_targets() {
        let a = parse(json!({"action": "pause", "account": "ACME", "batch_id": 7}));
        assert_eq!(
            a.as_ref().map(|a| (a.name(), a.target())),
            Ok(("pause", "ACME/7".to_owned()))
        );
        let a = parse(json!({"action": "dispatch", "account": "ACME"}));
        assert_eq!(a.map(|a| a.target()), Ok("ACME".to_owned()));
        let a = parse(json!({"action": "enable_server", "server": "ast1"}));
        assert_eq!(
            a,
            Ok(Action::Server {
                code: "ast1".into(),
                enable: true
            })
        );
        for (body, words) in [
            (json!({"action": "pause", "account": "ACME"}), "`batch_id`"),
            (json!({"action": "replay_failed"}), "`account`"),
            (
                json!({"action": "disable_server", "server": " "}),
                "`server`",
            ),
            (json!({"action": "reboot"}), "unknown action"),
            (json!({"action": "pause", "extra": 1}), "unknown field"),
        ] {
            let got = parse(body.clone());
            assert!(
                got.as_ref().is_err_and(|m| m.contains(words)),
                "{body}: {got:?}"
            );
        }
    }
}
