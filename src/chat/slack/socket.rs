//! Slack Socket Mode through slack-morphism's listener: it opens the connections
//! (`apps.connections.open` with the app-level token), keeps them alive (pings, reconnects when
//! Slack asks or a connection drops) and acknowledges each envelope with what the callbacks
//! return. A slash command's ack carries the same answer the HTTP endpoint gives; the work then
//! goes through the same [`Edge`] as over HTTP.

use std::sync::Arc;

use slack_morphism::prelude::{
    SlackApiToken, SlackApiTokenValue, SlackClientEventsListenerEnvironment,
    SlackClientEventsUserState, SlackClientHyperHttpsConnector, SlackClientSocketModeConfig,
    SlackClientSocketModeListener, SlackCommandEvent, SlackCommandEventResponse,
    SlackInteractionEvent, SlackMessageContent, SlackMessageResponseType,
    SlackSocketModeListenerCallbacks, UserCallbackResult,
};

use super::api::Client;
use super::payload::{self, InteractionKind, SlashCommand};
use super::{Edge, command_ack};
use crate::config::Secret;

/// Connections kept open at once: while Slack refreshes one, the other takes the envelopes.
pub const CONNECTIONS: u32 = 2;

/// A running Socket Mode listener.
pub struct SocketMode {
    listener: SlackClientSocketModeListener<SlackClientHyperHttpsConnector>,
}

impl SocketMode {
    /// Connects with `app_token` on `client` and hands what arrives to `edge`.
    pub async fn start(
        client: Arc<Client>,
        edge: Arc<Edge>,
        app_token: &Secret,
        connections: u32,
    ) -> anyhow::Result<SocketMode> {
        let environment = Arc::new(
            SlackClientEventsListenerEnvironment::new(client)
                .with_user_state(edge)
                .with_error_handler(on_error),
        );
        let callbacks = SlackSocketModeListenerCallbacks::new()
            .with_command_events(on_command)
            .with_interaction_events(on_interaction);
        let listener = SlackClientSocketModeListener::new(
            &SlackClientSocketModeConfig::new().with_max_connections_count(connections),
            environment,
            callbacks,
        );
        let token = SlackApiToken::new(SlackApiTokenValue::new(app_token.expose().to_string()));
        listener
            .listen_for(&token)
            .await
            .map_err(|e| anyhow::anyhow!("Slack Socket Mode: {e}"))?;
        listener.start().await;
        Ok(SocketMode { listener })
    }

    /// Closes the connections.
    pub async fn stop(self) {
        self.listener.shutdown().await;
    }
}

async fn edge(state: &SlackClientEventsUserState) -> Option<Arc<Edge>> {
    state.read().await.get_user_state::<Arc<Edge>>().cloned()
}

/// The slash command as the HTTP endpoint parses it. Socket Mode does not carry the caller's
/// display name.
pub fn slash_command(ev: &SlackCommandEvent) -> SlashCommand {
    SlashCommand {
        command: ev.command.to_string(),
        text: ev.text.clone().unwrap_or_default(),
        channel_id: ev.channel_id.to_string(),
        user_id: ev.user_id.to_string(),
        user_name: None,
        response_url: ev.response_url.0.to_string(),
        trigger_id: ev.trigger_id.to_string(),
    }
}

/// The ack of a command: the answer the HTTP endpoint gives, as Socket Mode's payload.
pub fn command_response(cmd: &SlashCommand) -> SlackCommandEventResponse {
    let ack = command_ack(&crate::chat::command::parse(&cmd.text));
    let text = ack["text"].as_str().unwrap_or_default().to_string();
    let kind = match ack["response_type"].as_str() {
        Some("in_channel") => SlackMessageResponseType::InChannel,
        _ => SlackMessageResponseType::Ephemeral,
    };
    SlackCommandEventResponse::new(SlackMessageContent::new().with_text(text))
        .with_response_type(kind)
}

async fn on_command(
    ev: SlackCommandEvent,
    _client: Arc<Client>,
    state: SlackClientEventsUserState,
) -> UserCallbackResult<SlackCommandEventResponse> {
    let cmd = slash_command(&ev);
    let response = command_response(&cmd);
    if let Some(edge) = edge(&state).await {
        // The answer goes out in the ack; the work runs behind it.
        let _ = edge.accept_command(&cmd);
    }
    Ok(response)
}

async fn on_interaction(
    ev: SlackInteractionEvent,
    _client: Arc<Client>,
    state: SlackClientEventsUserState,
) -> UserCallbackResult<()> {
    // The same parser as the HTTP endpoint, over the same JSON.
    let parsed = serde_json::to_value(&ev)
        .map_err(|e| e.to_string())
        .and_then(|v| payload::interaction_json(&v).map_err(|e| e.to_string()));
    match parsed {
        Ok(InteractionKind::Click(click)) => {
            if let Some(edge) = edge(&state).await {
                edge.accept_click(*click);
            }
        }
        Ok(InteractionKind::Ignored(what)) => {
            tracing::debug!(what, "Slack interaction acknowledged and ignored")
        }
        Err(e) => tracing::warn!(error = %e, "a Socket Mode interaction does not parse"),
    }
    Ok(())
}

/// An envelope that failed (unparseable, or a callback error) is logged and still
/// acknowledged, so Slack does not deliver it again and again.
fn on_error(
    err: Box<dyn std::error::Error + Send + Sync>,
    _client: Arc<Client>,
    _state: SlackClientEventsUserState,
) -> axum::http::StatusCode {
    tracing::warn!(error = %err, "a Socket Mode envelope could not be handled");
    axum::http::StatusCode::OK
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_socket_mode_command_is_acked_with_the_same_answer_as_http() {
        let ev: SlackCommandEvent = serde_json::from_value(json!({
            "command": "/vault-triage", "text": "", "channel_id": "C1", "user_id": "U1",
            "team_id": "T1", "response_url": "https://hooks.slack.com/commands/1",
            "trigger_id": "1"
        }))
        .unwrap();
        let cmd = slash_command(&ev);
        assert_eq!(cmd.channel_id, "C1");
        assert_eq!(cmd.user_id, "U1");
        assert_eq!(
            serde_json::to_value(command_response(&cmd)).unwrap(),
            json!({"response_type": "in_channel", "text": "🔎 Triaging…"})
        );
        let help = SlashCommand {
            text: "help".into(),
            ..cmd
        };
        assert_eq!(
            serde_json::to_value(command_response(&help)).unwrap()["response_type"],
            "ephemeral"
        );
    }

    #[test]
    fn a_block_actions_event_reaches_the_same_parser_as_over_http() {
        let ev: SlackInteractionEvent = serde_json::from_value(json!({
            "type": "block_actions",
            "team": {"id": "T1"},
            "user": {"id": "U0BOB", "name": "bob"},
            "api_app_id": "A1",
            "container": {"type": "message", "message_ts": "1.2", "channel_id": "C1"},
            "trigger_id": "1",
            "channel": {"id": "C1", "name": "incidents"},
            "message": {"type": "message", "ts": "1.2", "thread_ts": "1.1", "text": "…"},
            "response_url": "https://hooks.slack.com/actions/1",
            "actions": [{"action_id": "vt:rerun:tri_1", "type": "button", "value": "vt:rerun:tri_1", "block_id": "b", "action_ts": "1"}]
        }))
        .unwrap();
        let v = serde_json::to_value(&ev).unwrap();
        let Ok(InteractionKind::Click(click)) = payload::interaction_json(&v) else {
            panic!("{v}")
        };
        assert_eq!(click.origin.actor.user_id, "U0BOB");
        assert_eq!(click.origin.channel, "C1");
        assert_eq!(click.clicked.id, "1.2");
        assert_eq!(click.clicked.thread.as_deref(), Some("1.1"));
        assert_eq!(click.action.encode(), "vt:rerun:tri_1");
    }
}
