//! The platform-neutral message model: what the bot says, before Slack's Block Kit or
//! Discord's embeds and components give it a shape.

use serde::{Deserialize, Serialize};

use crate::approval::RequestId;
use crate::diagnosis::RemediationKind;

/// Severity, shown as an emoji on Slack and as the embed colour on Discord.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Tone {
    Good,
    Warning,
    Danger,
    Neutral,
}

impl Tone {
    /// Discord embed colour.
    pub fn colour(self) -> u32 {
        match self {
            Tone::Good => 0x2E_CC_71,
            Tone::Warning => 0xF1_C4_0F,
            Tone::Danger => 0xE7_4C_3C,
            Tone::Neutral => 0x95_A5_A6,
        }
    }
}

/// One message.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Message {
    /// Plain text: the notification text and the fallback.
    pub text: String,
    /// The headline, when the message is a card.
    pub title: Option<String>,
    pub tone: Option<Tone>,
    pub sections: Vec<Section>,
    pub buttons: Vec<Button>,
    /// A small line at the bottom (timing, expiry, who is needed).
    pub footer: Option<String>,
}

/// A part of a card.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Section {
    /// Markdown-ish text (`*bold*`, `` `code` ``).
    Text { text: String },
    /// Preformatted text (a plan preview).
    Code { text: String },
    /// Short label/value pairs.
    Fields { fields: Vec<(String, String)> },
    /// The evidence chain: emoji, check, detail.
    Checks {
        items: Vec<(String, String, String)>,
    },
}

/// A button's look.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ButtonStyle {
    Primary,
    Danger,
    Default,
}

/// A confirmation dialog shown before a click counts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Confirm {
    pub title: String,
    pub text: String,
    pub confirm: String,
    pub deny: String,
}

/// A button.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Button {
    pub action: ButtonAction,
    pub label: String,
    pub style: ButtonStyle,
    pub confirm: Option<Confirm>,
}

/// What a button asks for. It carries ids only: the server-side state and the policy decide.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ButtonAction {
    /// Propose a remediation from a triage.
    Propose {
        triage: String,
        remediation: RemediationKind,
    },
    /// Show the plan of the triage's first automated remediation, only to the clicker.
    Preview {
        triage: String,
    },
    /// Triage again.
    Rerun {
        triage: String,
    },
    Approve {
        request: RequestId,
    },
    Deny {
        request: RequestId,
    },
}

/// Prefix of every encoded button action.
const PREFIX: &str = "vt";
/// Longest encoded action accepted (Discord's custom_id limit is 100).
pub const MAX_ACTION_LEN: usize = 100;

impl ButtonAction {
    /// `vt:approve:req_…`, `vt:propose:rotate-reviewer:tri_…`: a Slack action_id/value or a
    /// Discord custom_id.
    pub fn encode(&self) -> String {
        match self {
            ButtonAction::Propose {
                triage,
                remediation,
            } => format!("{PREFIX}:propose:{remediation}:{triage}"),
            ButtonAction::Preview { triage } => format!("{PREFIX}:preview:{triage}"),
            ButtonAction::Rerun { triage } => format!("{PREFIX}:rerun:{triage}"),
            ButtonAction::Approve { request } => format!("{PREFIX}:approve:{request}"),
            ButtonAction::Deny { request } => format!("{PREFIX}:deny:{request}"),
        }
    }

    /// Parses an encoded action; `None` for anything else.
    pub fn decode(s: &str) -> Option<Self> {
        if s.len() > MAX_ACTION_LEN {
            return None;
        }
        let parts: Vec<&str> = s.split(':').collect();
        let id_ok = |t: &str| {
            !t.is_empty()
                && t.len() <= 64
                && t.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        };
        match parts.as_slice() {
            [PREFIX, "propose", remediation, triage] if id_ok(triage) => {
                RemediationKind::parse(remediation).map(|remediation| ButtonAction::Propose {
                    triage: triage.to_string(),
                    remediation,
                })
            }
            [PREFIX, "preview", triage] if id_ok(triage) => Some(ButtonAction::Preview {
                triage: triage.to_string(),
            }),
            [PREFIX, "rerun", triage] if id_ok(triage) => Some(ButtonAction::Rerun {
                triage: triage.to_string(),
            }),
            [PREFIX, "approve", id] => RequestId::parse(id)
                .ok()
                .map(|request| ButtonAction::Approve { request }),
            [PREFIX, "deny", id] => RequestId::parse(id)
                .ok()
                .map(|request| ButtonAction::Deny { request }),
            _ => None,
        }
    }
}

/// Where a message lives: a channel, the message id (Slack `ts`, Discord snowflake), and the
/// thread its follow-ups go to (Slack: the root `ts`; Discord: the thread channel id).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct MessageRef {
    pub channel: String,
    pub id: String,
    pub thread: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn button_actions_round_trip() {
        let request = RequestId::generate();
        for a in [
            ButtonAction::Propose {
                triage: "tri_0123456789abcdef".into(),
                remediation: RemediationKind::RotateReviewer,
            },
            ButtonAction::Preview {
                triage: "tri_1".into(),
            },
            ButtonAction::Rerun {
                triage: "tri_1".into(),
            },
            ButtonAction::Approve {
                request: request.clone(),
            },
            ButtonAction::Deny { request },
        ] {
            let s = a.encode();
            assert!(s.len() <= MAX_ACTION_LEN);
            assert_eq!(ButtonAction::decode(&s), Some(a));
        }
    }

    #[test]
    fn forged_or_odd_actions_are_refused() {
        for s in [
            "",
            "vt",
            "vt:approve:",
            "vt:approve:not-a-request",
            "vt:propose:delete-everything:tri_1",
            "vt:propose:rotate-reviewer:tri_1:extra",
            "vt:rerun:../../etc",
            "xx:approve:req_0123456789abcdef",
        ] {
            assert_eq!(ButtonAction::decode(s), None, "{s}");
        }
        assert_eq!(ButtonAction::decode(&"vt:rerun:".repeat(50)), None);
    }
}
