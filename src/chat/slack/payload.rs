//! Inbound Slack payloads, parsed into what the bot needs. Pure.
//!
//! The same types serve both transports: a slash command arrives as a form over HTTP and as a
//! JSON object in a Socket Mode envelope; a click arrives as the form field `payload` over HTTP
//! and as the envelope's JSON payload. Unknown keys are ignored; missing required keys fail.

use serde::Deserialize;

use crate::approval::Actor;
use crate::chat::message::{ButtonAction, MessageRef};
use crate::chat::platform::Origin;

/// Slack's certificate check on the slash-command URL: a form with `ssl_check=1` and no
/// command.
pub fn is_ssl_check(body: &[u8]) -> bool {
    let fields: Vec<(String, String)> = serde_urlencoded::from_bytes(body).unwrap_or_default();
    fields.iter().any(|(k, v)| k == "ssl_check" && v == "1")
        && !fields.iter().any(|(k, _)| k == "command")
}

/// A slash command (`application/x-www-form-urlencoded` over HTTP).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct SlashCommand {
    pub command: String,
    #[serde(default)]
    pub text: String,
    pub channel_id: String,
    pub user_id: String,
    #[serde(default)]
    pub user_name: Option<String>,
    pub response_url: String,
    /// Slack's id of this one invocation (a retry carries the same).
    #[serde(default)]
    pub trigger_id: String,
}

impl SlashCommand {
    /// Where the command came from. Slash commands carry no thread.
    pub fn origin(&self) -> Origin {
        let mut actor = Actor::slack(&self.user_id);
        if let Some(name) = self.user_name.as_deref().filter(|n| !n.is_empty()) {
            actor = actor.with_display_name(name);
        }
        Origin {
            channel: self.channel_id.clone(),
            thread: None,
            reply: self.response_url.clone(),
            actor,
        }
    }
}

/// An interaction payload (the JSON in the form field `payload`), as far as the bot reads it.
#[derive(Debug, Clone, Deserialize)]
struct Interaction {
    #[serde(rename = "type")]
    kind: String,
    user: Option<User>,
    channel: Option<Id>,
    container: Option<Container>,
    message: Option<ClickedMessage>,
    response_url: Option<String>,
    #[serde(default)]
    actions: Vec<ActionInfo>,
}

#[derive(Debug, Clone, Deserialize)]
struct User {
    id: String,
    name: Option<String>,
    username: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
struct Id {
    id: String,
}

#[derive(Debug, Clone, Deserialize)]
struct Container {
    message_ts: Option<String>,
    channel_id: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
struct ClickedMessage {
    ts: Option<String>,
    thread_ts: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
struct ActionInfo {
    action_id: String,
    value: Option<String>,
}

/// A button click the bot acts on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Click {
    pub origin: Origin,
    pub clicked: MessageRef,
    pub action: ButtonAction,
}

/// What an interaction payload asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InteractionKind {
    Click(Box<Click>),
    /// Acknowledged and otherwise ignored: another interaction type, or a button that is not ours.
    Ignored(String),
}

/// Why a payload was refused (answered with 400).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PayloadError {
    #[error("the body is not a form with a `payload` field")]
    NoPayloadField,
    #[error("the payload does not parse: {0}")]
    Json(String),
    #[error("the form does not parse: {0}")]
    Form(String),
    #[error("the block_actions payload lacks {0}")]
    Missing(&'static str),
}

#[derive(Deserialize)]
struct PayloadForm {
    payload: Option<String>,
}

/// Parses a slash command form body.
pub fn command_form(body: &[u8]) -> Result<SlashCommand, PayloadError> {
    serde_urlencoded::from_bytes(body).map_err(|e| PayloadError::Form(e.to_string()))
}

/// Parses a slash command from a Socket Mode envelope's payload.
pub fn command_json(payload: &serde_json::Value) -> Result<SlashCommand, PayloadError> {
    SlashCommand::deserialize(payload).map_err(|e| PayloadError::Json(e.to_string()))
}

/// Parses an interaction form body (`payload=<json>`).
pub fn interaction_form(body: &[u8]) -> Result<InteractionKind, PayloadError> {
    let form: PayloadForm =
        serde_urlencoded::from_bytes(body).map_err(|e| PayloadError::Form(e.to_string()))?;
    let json = form.payload.ok_or(PayloadError::NoPayloadField)?;
    let value: serde_json::Value =
        serde_json::from_str(&json).map_err(|e| PayloadError::Json(e.to_string()))?;
    interaction_json(&value)
}

/// Parses an interaction payload (the JSON itself).
pub fn interaction_json(payload: &serde_json::Value) -> Result<InteractionKind, PayloadError> {
    let i = Interaction::deserialize(payload).map_err(|e| PayloadError::Json(e.to_string()))?;
    if i.kind != "block_actions" {
        return Ok(InteractionKind::Ignored(format!(
            "interaction type {}",
            i.kind
        )));
    }
    let user = i.user.ok_or(PayloadError::Missing("user"))?;
    let channel = i
        .channel
        .map(|c| c.id)
        .or_else(|| i.container.as_ref().and_then(|c| c.channel_id.clone()))
        .ok_or(PayloadError::Missing("channel"))?;
    let ts = i
        .container
        .as_ref()
        .and_then(|c| c.message_ts.clone())
        .or_else(|| i.message.as_ref().and_then(|m| m.ts.clone()))
        .ok_or(PayloadError::Missing("container.message_ts"))?;
    let Some(action) = i.actions.iter().find_map(|a| {
        ButtonAction::decode(&a.action_id)
            .or_else(|| a.value.as_deref().and_then(ButtonAction::decode))
    }) else {
        return Ok(InteractionKind::Ignored("a button that is not ours".into()));
    };
    let mut actor = Actor::slack(&user.id);
    if let Some(name) = user.name.or(user.username).filter(|n| !n.is_empty()) {
        actor = actor.with_display_name(name);
    }
    let thread = i.message.and_then(|m| m.thread_ts).filter(|t| *t != ts);
    Ok(InteractionKind::Click(Box::new(Click {
        origin: Origin {
            channel: channel.clone(),
            thread: thread.clone(),
            reply: i.response_url.unwrap_or_default(),
            actor,
        },
        clicked: MessageRef {
            channel,
            id: ts,
            thread,
        },
        action,
    })))
}

/// An Events API body: the URL check, or an event to acknowledge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    UrlVerification { challenge: String },
    Other(String),
}

#[derive(Deserialize)]
struct EventBody {
    #[serde(rename = "type")]
    kind: String,
    challenge: Option<String>,
}

/// Parses an Events API body.
pub fn event_json(body: &[u8]) -> Result<Event, PayloadError> {
    let e: EventBody =
        serde_json::from_slice(body).map_err(|e| PayloadError::Json(e.to_string()))?;
    match (e.kind.as_str(), e.challenge) {
        ("url_verification", Some(challenge)) => Ok(Event::UrlVerification { challenge }),
        ("url_verification", None) => Err(PayloadError::Json(
            "url_verification without a challenge".into(),
        )),
        (_, _) => Ok(Event::Other(e.kind)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn only_slacks_certificate_check_is_an_ssl_check() {
        assert!(is_ssl_check(b"ssl_check=1&token=abc"));
        assert!(!is_ssl_check(b"ssl_check=0"));
        assert!(!is_ssl_check(b"ssl_check=1&command=%2Fvault-triage&text="));
        assert!(!is_ssl_check(b"command=%2Fvault-triage"));
        assert!(!is_ssl_check(b"\xff\xfe"));
    }

    #[test]
    fn a_command_form_parses_into_its_origin() {
        let body = "token=x&team_id=T1&channel_id=C0INCIDENTS&user_id=U0ALICE&user_name=alice&command=%2Fvault-triage&text=role+payments&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2F1&trigger_id=1.2.3";
        let c = command_form(body.as_bytes()).unwrap();
        assert_eq!(c.text, "role payments");
        let o = c.origin();
        assert_eq!(o.channel, "C0INCIDENTS");
        assert_eq!(o.actor, Actor::slack("U0ALICE").with_display_name("alice"));
        assert_eq!(o.reply, "https://hooks.slack.com/commands/1");
        assert_eq!(o.thread, None);
    }

    #[test]
    fn a_command_without_a_channel_is_refused() {
        assert!(command_form(b"user_id=U1&command=%2Fvault-triage&response_url=x").is_err());
        assert!(command_json(&json!({"user_id": "U1"})).is_err());
    }

    fn click(action_id: &str) -> serde_json::Value {
        json!({
            "type": "block_actions",
            "team": {"id": "T1"},
            "api_app_id": "A1",
            "trigger_id": "1.2.3",
            "user": {"id": "U0BOB", "username": "bob", "name": "bob"},
            "channel": {"id": "C0INCIDENTS", "name": "incidents"},
            "container": {"type": "message", "message_ts": "1700000000.000200", "channel_id": "C0INCIDENTS"},
            "message": {"ts": "1700000000.000200", "thread_ts": "1700000000.000100"},
            "response_url": "https://hooks.slack.com/actions/1",
            "actions": [{"action_id": action_id, "value": action_id, "type": "button"}]
        })
    }

    #[test]
    fn a_click_on_a_card_in_a_thread_parses() {
        let InteractionKind::Click(c) = interaction_json(&click("vt:rerun:tri_1")).unwrap() else {
            panic!()
        };
        assert_eq!(
            c.action,
            ButtonAction::Rerun {
                triage: "tri_1".into()
            }
        );
        assert_eq!(
            c.clicked,
            MessageRef {
                channel: "C0INCIDENTS".into(),
                id: "1700000000.000200".into(),
                thread: Some("1700000000.000100".into())
            }
        );
        assert_eq!(c.origin.reply, "https://hooks.slack.com/actions/1");
        assert_eq!(c.origin.actor.display_name.as_deref(), Some("bob"));
    }

    #[test]
    fn the_form_wrapper_is_unwrapped() {
        let body = serde_urlencoded::to_string([("payload", click("vt:rerun:tri_1").to_string())])
            .unwrap();
        assert!(matches!(
            interaction_form(body.as_bytes()),
            Ok(InteractionKind::Click(_))
        ));
        assert_eq!(interaction_form(b"x=1"), Err(PayloadError::NoPayloadField));
        assert!(matches!(
            interaction_form(b"payload=%7Bnot"),
            Err(PayloadError::Json(_))
        ));
    }

    #[test]
    fn foreign_buttons_and_other_types_are_ignored() {
        assert!(matches!(
            interaction_json(&click("someone_elses_button")),
            Ok(InteractionKind::Ignored(_))
        ));
        assert!(matches!(
            interaction_json(&json!({"type": "view_submission"})),
            Ok(InteractionKind::Ignored(_))
        ));
        let mut no_user = click("vt:rerun:tri_1");
        no_user.as_object_mut().unwrap().remove("user");
        assert_eq!(
            interaction_json(&no_user),
            Err(PayloadError::Missing("user"))
        );
    }

    #[test]
    fn events_parse() {
        assert_eq!(
            event_json(br#"{"type":"url_verification","challenge":"abc","token":"t"}"#),
            Ok(Event::UrlVerification {
                challenge: "abc".into()
            })
        );
        assert_eq!(
            event_json(br#"{"type":"event_callback","event":{}}"#),
            Ok(Event::Other("event_callback".into()))
        );
        assert!(event_json(b"nope").is_err());
    }
}
