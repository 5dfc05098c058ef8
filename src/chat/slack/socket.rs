//! Slack Socket Mode: `apps.connections.open` with the app-level token, then a WebSocket on
//! which Slack sends envelopes. Each envelope is acknowledged with its `envelope_id` (a slash
//! command's ack carries the same answer the HTTP endpoint gives), then handled exactly like
//! the HTTP path, through the same parsers and the same [`Edge`]. The connection is reopened
//! when Slack asks (`disconnect`) or when it drops.

use std::sync::Arc;
use std::time::Duration;

use futures::{SinkExt as _, StreamExt as _};
use serde::Deserialize;
use serde_json::{Value, json};
use slack_socket_ws::tungstenite::Message as WsMessage;

use super::payload::{self, InteractionKind};
use super::{Edge, SlackApi};
use crate::config::Secret;

/// First wait before reconnecting after a failure; doubled up to [`MAX_RECONNECT_WAIT`].
pub const FIRST_RECONNECT_WAIT: Duration = Duration::from_secs(1);
/// Longest wait between reconnection attempts.
pub const MAX_RECONNECT_WAIT: Duration = Duration::from_secs(60);

#[derive(Debug, Deserialize)]
struct Envelope {
    #[serde(rename = "type")]
    kind: String,
    envelope_id: Option<String>,
    #[serde(default)]
    payload: Value,
    reason: Option<String>,
}

/// What to do with one envelope: the ack to send (if any), then the work.
#[derive(Debug)]
pub enum Handling {
    /// Acknowledge with this JSON, then run `then`.
    Ack { ack: Value, then: Work },
    /// Slack wants this connection closed; open a new one.
    Reconnect(String),
    /// Nothing to answer (`hello`, unknown frames).
    Nothing,
}

/// The work after an ack.
#[derive(Debug)]
pub enum Work {
    Command(Box<payload::SlashCommand>),
    Click(Box<payload::Click>),
    None,
}

/// Decides what an envelope needs. Pure, apart from reading the command text.
pub fn handle_frame(text: &str) -> Handling {
    let env: Envelope = match serde_json::from_str(text) {
        Ok(e) => e,
        Err(e) => {
            tracing::warn!(error = %e, "a Socket Mode frame does not parse");
            return Handling::Nothing;
        }
    };
    match (env.kind.as_str(), env.envelope_id) {
        ("hello", _) => {
            tracing::info!("Slack Socket Mode connected");
            Handling::Nothing
        }
        ("disconnect", _) => Handling::Reconnect(env.reason.unwrap_or_else(|| "disconnect".into())),
        ("slash_commands", Some(id)) => match payload::command_json(&env.payload) {
            Ok(cmd) => Handling::Ack {
                ack: json!({
                    "envelope_id": id,
                    "payload": super::command_ack(&crate::chat::command::parse(&cmd.text)),
                }),
                then: Work::Command(Box::new(cmd)),
            },
            Err(e) => {
                tracing::warn!(error = %e, "a Socket Mode slash command does not parse");
                Handling::Ack {
                    ack: json!({ "envelope_id": id }),
                    then: Work::None,
                }
            }
        },
        ("interactive", Some(id)) => {
            let then = match payload::interaction_json(&env.payload) {
                Ok(InteractionKind::Click(c)) => Work::Click(c),
                Ok(InteractionKind::Ignored(what)) => {
                    tracing::debug!(what, "Slack interaction acknowledged and ignored");
                    Work::None
                }
                Err(e) => {
                    tracing::warn!(error = %e, "a Socket Mode interaction does not parse");
                    Work::None
                }
            };
            Handling::Ack {
                ack: json!({ "envelope_id": id }),
                then,
            }
        }
        (kind, Some(id)) => {
            tracing::debug!(kind, "Slack envelope acknowledged");
            Handling::Ack {
                ack: json!({ "envelope_id": id }),
                then: Work::None,
            }
        }
        (kind, None) => {
            tracing::debug!(kind, "Socket Mode frame without envelope ignored");
            Handling::Nothing
        }
    }
}

fn dispatch(edge: &Edge, work: Work) {
    match work {
        Work::Command(cmd) => {
            // The answer already went out in the ack.
            let _ = edge.accept_command(&cmd);
        }
        Work::Click(click) => edge.accept_click(*click),
        Work::None => {}
    }
}

/// Keeps a Socket Mode connection open for as long as the task runs.
pub async fn run(edge: Arc<Edge>, api: Arc<SlackApi>, app_token: Secret) {
    let mut wait = FIRST_RECONNECT_WAIT;
    loop {
        match session(&edge, &api, &app_token).await {
            Ok(reason) => {
                tracing::info!(reason, "Slack Socket Mode reconnecting");
                wait = FIRST_RECONNECT_WAIT;
                continue;
            }
            Err(e) => {
                tracing::warn!(error = %e, wait_s = wait.as_secs(), "Slack Socket Mode connection failed")
            }
        }
        tokio::time::sleep(wait).await;
        wait = (wait * 2).min(MAX_RECONNECT_WAIT);
    }
}

/// One connection: returns why it ended when Slack closed it, an error when it failed.
async fn session(edge: &Edge, api: &SlackApi, app_token: &Secret) -> anyhow::Result<String> {
    let url = api.open_connection(app_token).await?;
    // The URL carries a ticket: it is not logged.
    let (mut ws, _) = slack_socket_ws::connect_async(url.as_str())
        .await
        .map_err(|e| anyhow::anyhow!("WebSocket connection: {}", ws_error(&e)))?;
    while let Some(frame) = ws.next().await {
        let text = match frame.map_err(|e| anyhow::anyhow!("WebSocket: {}", ws_error(&e)))? {
            WsMessage::Text(t) => t,
            WsMessage::Close(_) => return Ok("closed by Slack".into()),
            _ => continue,
        };
        match handle_frame(text.as_str()) {
            Handling::Ack { ack, then } => {
                ws.send(WsMessage::text(ack.to_string()))
                    .await
                    .map_err(|e| anyhow::anyhow!("sending an ack: {}", ws_error(&e)))?;
                dispatch(edge, then);
            }
            Handling::Reconnect(reason) => {
                let _ = ws.close(None).await;
                return Ok(reason);
            }
            Handling::Nothing => {}
        }
    }
    Ok("connection ended".into())
}

fn ws_error(e: &slack_socket_ws::tungstenite::Error) -> String {
    use slack_socket_ws::tungstenite::Error as E;
    match e {
        E::Http(r) => format!("HTTP {}", r.status()),
        E::Io(io) => io.kind().to_string(),
        E::ConnectionClosed | E::AlreadyClosed => "closed".into(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_slash_command_envelope_is_acked_with_the_same_answer_as_http() {
        let frame = json!({
            "envelope_id": "env-1",
            "type": "slash_commands",
            "accepts_response_payload": true,
            "payload": {
                "command": "/vault-triage", "text": "", "channel_id": "C1", "user_id": "U1",
                "response_url": "https://hooks.slack.com/commands/1", "trigger_id": "1"
            }
        });
        let Handling::Ack {
            ack,
            then: Work::Command(cmd),
        } = handle_frame(&frame.to_string())
        else {
            panic!()
        };
        assert_eq!(
            ack,
            json!({"envelope_id": "env-1", "payload": {"response_type": "in_channel", "text": "🔎 Triaging…"}})
        );
        assert_eq!(cmd.channel_id, "C1");
    }

    #[test]
    fn other_envelopes_are_acked_and_hello_and_disconnect_are_not() {
        assert!(matches!(
            handle_frame(r#"{"type":"hello","num_connections":1}"#),
            Handling::Nothing
        ));
        assert!(matches!(
            handle_frame(r#"{"type":"disconnect","reason":"refresh_requested"}"#),
            Handling::Reconnect(r) if r == "refresh_requested"
        ));
        let Handling::Ack {
            ack,
            then: Work::None,
        } = handle_frame(r#"{"type":"events_api","envelope_id":"e2","payload":{}}"#)
        else {
            panic!()
        };
        assert_eq!(ack, json!({"envelope_id": "e2"}));
        let Handling::Ack {
            ack,
            then: Work::None,
        } = handle_frame(
            r#"{"type":"slash_commands","envelope_id":"e3","payload":{"broken":true}}"#,
        )
        else {
            panic!()
        };
        assert_eq!(ack, json!({"envelope_id": "e3"}));
        assert!(matches!(handle_frame("not json"), Handling::Nothing));
    }
}
