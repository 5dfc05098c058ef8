//! Block Kit: the neutral [`Message`] as Slack blocks (slack-morphism's typed Block Kit model),
//! and the Web API requests that carry them. Pure. Every mrkdwn text is escaped (`&`, `<`, `>`),
//! so no text from an alert, a label, Vault or Kubernetes can ping a channel or plant a link.
//! Slack's size limits are met by cutting with "…", never by failing.

use slack_morphism::prelude::{
    SlackActionBlockElement, SlackActionsBlock, SlackApiChatPostMessageRequest,
    SlackApiChatUpdateRequest, SlackBlock, SlackBlockButtonElement, SlackBlockButtonStyle,
    SlackBlockConfirmItem, SlackBlockMarkDownText, SlackBlockPlainText, SlackBlockPlainTextOnly,
    SlackBlockText, SlackChannelId, SlackContextBlock, SlackContextBlockElement, SlackHeaderBlock,
    SlackMessageContent, SlackSectionBlock, SlackTs,
};

use crate::chat::message::{Button, ButtonStyle, Message, Section};

/// Most blocks in one message.
pub const MAX_BLOCKS: usize = 50;
/// Longest text of a section, or of a context element.
pub const MAX_TEXT: usize = 3000;
/// Longest section field.
pub const MAX_FIELD: usize = 2000;
/// Most fields in one section.
pub const MAX_FIELDS: usize = 10;
/// Longest header (plain text).
pub const MAX_HEADER: usize = 150;
/// Most elements in one actions block.
pub const MAX_ACTIONS: usize = 25;
/// Longest button label.
pub const MAX_BUTTON_LABEL: usize = 75;
/// Longest confirm-dialog title, button texts and body.
pub const MAX_CONFIRM_TITLE: usize = 100;
pub const MAX_CONFIRM_BUTTON: usize = 30;
pub const MAX_CONFIRM_TEXT: usize = 300;
/// Longest fallback `text` the bot sends (Slack truncates at 40 000; notifications show far less).
pub const MAX_FALLBACK: usize = 3000;
/// Channel shown in [`render_for_demo`].
pub const DEMO_CHANNEL: &str = "C0INCIDENTS";

/// `s` cut to at most `max` characters, ending with "…" when cut.
pub fn cut(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// `text` with Slack's three control characters written as entities (`&amp;`, `&lt;`,
/// `&gt;`), as Slack asks for every text it is sent, so nothing in it can become a mention
/// (`<!here>`, `<@U…>`) or a link: text from alerts, labels, Vault and Kubernetes is
/// untrusted, and the bot's own never uses Slack's angle-bracket markup.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            c => out.push(c),
        }
    }
    out
}

/// [`escape`]d, then cut to `max` characters without splitting an entity.
pub fn escaped(text: &str, max: usize) -> String {
    let mut out = cut(&escape(text), max);
    if out.ends_with('…') {
        // A cut inside `&lt;` leaves `&l…`: drop the broken entity.
        let body = out.trim_end_matches('…');
        if let Some(amp) = body.rfind('&')
            && !body[amp..].contains(';')
        {
            out = format!("{}…", &body[..amp]);
        }
    }
    out
}

fn mrkdwn(text: &str, max: usize) -> SlackBlockMarkDownText {
    SlackBlockMarkDownText::new(escaped(text, max))
}

fn plain(text: &str, max: usize) -> SlackBlockPlainTextOnly {
    SlackBlockPlainText::new(escaped(text, max))
        .with_emoji(true)
        .into()
}

fn section(text: &str) -> SlackBlock {
    SlackSectionBlock::new()
        .with_text(mrkdwn(text, MAX_TEXT).into())
        .into()
}

fn context(text: &str) -> SlackBlock {
    SlackContextBlock::new(vec![SlackContextBlockElement::MarkDown(mrkdwn(
        text, MAX_TEXT,
    ))])
    .into()
}

/// Lines joined into sections of at most [`MAX_TEXT`] characters each.
fn line_sections(lines: &[String]) -> Vec<SlackBlock> {
    let mut out = Vec::new();
    let mut cur = String::new();
    for line in lines {
        let line = cut(line, MAX_TEXT);
        if !cur.is_empty() && cur.chars().count() + 1 + line.chars().count() > MAX_TEXT {
            out.push(section(&cur));
            cur.clear();
        }
        if !cur.is_empty() {
            cur.push('\n');
        }
        cur.push_str(&line);
    }
    if !cur.is_empty() {
        out.push(section(&cur));
    }
    out
}

fn section_blocks(s: &Section) -> Vec<SlackBlock> {
    match s {
        Section::Text { text } if text.trim().is_empty() => Vec::new(),
        Section::Text { text } => vec![section(text)],
        Section::Code { text } => {
            // Keep the closing fence when cutting.
            let body = cut(text.trim_end_matches('\n'), MAX_TEXT - 8);
            vec![section(&format!("```\n{body}\n```"))]
        }
        Section::Fields { fields } => fields
            .chunks(MAX_FIELDS)
            .map(|chunk| {
                let fields: Vec<SlackBlockText> = chunk
                    .iter()
                    .map(|(label, value)| mrkdwn(&format!("*{label}*\n{value}"), MAX_FIELD).into())
                    .collect();
                SlackSectionBlock::new().with_fields(fields).into()
            })
            .collect(),
        Section::Checks { items } => {
            let lines: Vec<String> = items
                .iter()
                .map(|(emoji, check, detail)| format!("{emoji} *{check}*: {detail}"))
                .collect();
            line_sections(&lines)
        }
    }
}

fn button(b: &Button) -> SlackActionBlockElement {
    let id = b.action.encode();
    let mut button = SlackBlockButtonElement::new(plain(&b.label, MAX_BUTTON_LABEL))
        .with_action_id(id.clone().into())
        .with_value(id);
    match b.style {
        ButtonStyle::Primary => button = button.with_style(SlackBlockButtonStyle::Primary),
        ButtonStyle::Danger => button = button.with_style(SlackBlockButtonStyle::Danger),
        ButtonStyle::Default => {}
    }
    if let Some(c) = &b.confirm {
        let mut confirm = SlackBlockConfirmItem::new(
            plain(&c.title, MAX_CONFIRM_TITLE),
            mrkdwn(&c.text, MAX_CONFIRM_TEXT).into(),
            plain(&c.confirm, MAX_CONFIRM_BUTTON),
            plain(&c.deny, MAX_CONFIRM_BUTTON),
        );
        if b.style == ButtonStyle::Danger {
            confirm = confirm.with_style("danger".into());
        }
        button = button.with_confirm(confirm);
    }
    SlackActionBlockElement::Button(button)
}

/// The blocks of `msg`; empty for a plain-text message (its `text` is the whole message).
pub fn blocks(msg: &Message) -> Vec<SlackBlock> {
    let is_card = msg.title.is_some()
        || !msg.sections.is_empty()
        || !msg.buttons.is_empty()
        || msg.footer.is_some();
    if !is_card {
        return Vec::new();
    }
    let mut body: Vec<SlackBlock> = Vec::new();
    match msg.title.as_deref() {
        Some(t) if t.chars().count() <= MAX_HEADER => {
            body.push(SlackHeaderBlock::new(plain(t, MAX_HEADER)).into())
        }
        Some(t) => body.push(section(&format!("*{t}*"))),
        None if msg.sections.is_empty() && !msg.text.is_empty() => body.push(section(&msg.text)),
        None => {}
    }
    for s in &msg.sections {
        body.extend(section_blocks(s));
    }
    let mut tail: Vec<SlackBlock> = Vec::new();
    if let Some(f) = &msg.footer {
        tail.push(context(f));
    }
    // Buttons past what Slack allows are dropped: at most two actions blocks.
    for chunk in msg.buttons.chunks(MAX_ACTIONS).take(2) {
        tail.push(SlackActionsBlock::new(chunk.iter().map(button).collect()).into());
    }
    let room = MAX_BLOCKS - tail.len();
    if body.len() > room {
        body.truncate(room - 1);
        body.push(context("…"));
    }
    body.extend(tail);
    body
}

/// The notification text of `msg` (mrkdwn, so escaped).
pub fn fallback(msg: &Message) -> String {
    let t = if msg.text.trim().is_empty() {
        msg.title.clone().unwrap_or_default()
    } else {
        msg.text.clone()
    };
    escaped(&t, MAX_FALLBACK)
}

/// The `chat.postMessage` of `msg` to `channel` (in `thread_ts` when set).
pub fn post_message(
    channel: &str,
    thread_ts: Option<&str>,
    msg: &Message,
) -> SlackApiChatPostMessageRequest {
    let mut content = SlackMessageContent::new().with_text(fallback(msg));
    let blocks = blocks(msg);
    if !blocks.is_empty() {
        content = content.with_blocks(blocks);
    }
    let mut request =
        SlackApiChatPostMessageRequest::new(SlackChannelId::new(channel.into()), content)
            .with_unfurl_links(false)
            .with_unfurl_media(false);
    if let Some(t) = thread_ts {
        request = request.with_thread_ts(SlackTs::new(t.into()));
    }
    request
}

/// The `chat.update` replacing message `ts` in `channel` with `msg`.
pub fn update_message(channel: &str, ts: &str, msg: &Message) -> SlackApiChatUpdateRequest {
    // Blocks always sent, so a card that becomes plain text loses its buttons.
    let content = SlackMessageContent::new()
        .with_text(fallback(msg))
        .with_blocks(blocks(msg));
    SlackApiChatUpdateRequest::new(
        SlackChannelId::new(channel.into()),
        content,
        SlackTs::new(ts.into()),
    )
}

/// What the bot would post for `msg`, as pretty JSON: the `chat.postMessage` body (for `demo`).
pub fn render_for_demo(msg: &Message) -> String {
    serde_json::to_value(post_message(DEMO_CHANNEL, None, msg))
        .and_then(|v| serde_json::to_string_pretty(&v))
        .unwrap_or_else(|e| format!("(not renderable: {e})"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    use crate::approval::RequestId;
    use crate::chat::message::{ButtonAction, Confirm, Tone};

    /// The JSON Slack receives.
    fn wire(v: impl serde::Serialize) -> Value {
        serde_json::to_value(v).unwrap()
    }

    fn card() -> Message {
        Message {
            text: "🔴 reviewer token expired".into(),
            title: Some("🔴 reviewer token expired".into()),
            tone: Some(Tone::Danger),
            sections: vec![
                Section::Text {
                    text: "_authentication_".into(),
                },
                Section::Checks {
                    items: vec![
                        ("✅".into(), "Vault health".into(), "unsealed".into()),
                        ("❌".into(), "Canary login".into(), "403".into()),
                    ],
                },
                Section::Code {
                    text: "1. write auth/kubernetes/config\n".into(),
                },
                Section::Fields {
                    fields: vec![("Reviewer".into(), "vault/vault-auth".into())],
                },
            ],
            buttons: vec![
                Button {
                    action: ButtonAction::Approve {
                        request: RequestId::generate(),
                    },
                    label: "Approve".into(),
                    style: ButtonStyle::Danger,
                    confirm: Some(Confirm {
                        title: "Approve?".into(),
                        text: "This runs the fix.".into(),
                        confirm: "Approve".into(),
                        deny: "Cancel".into(),
                    }),
                },
                Button {
                    action: ButtonAction::Rerun {
                        triage: "tri_1".into(),
                    },
                    label: "Re-run triage".into(),
                    style: ButtonStyle::Default,
                    confirm: None,
                },
            ],
            footer: Some("needs 2 approvals".into()),
        }
    }

    #[test]
    fn a_card_becomes_header_sections_context_and_actions() {
        let msg = card();
        let b = wire(blocks(&msg));
        let kinds: Vec<&str> = b
            .as_array()
            .unwrap()
            .iter()
            .map(|b| b["type"].as_str().unwrap())
            .collect();
        assert_eq!(
            kinds,
            [
                "header", "section", "section", "section", "section", "context", "actions"
            ]
        );
        assert_eq!(b[0]["text"]["text"], "🔴 reviewer token expired");
        assert_eq!(
            b[2]["text"]["text"],
            "✅ *Vault health*: unsealed\n❌ *Canary login*: 403"
        );
        assert_eq!(
            b[3]["text"]["text"],
            "```\n1. write auth/kubernetes/config\n```"
        );
        assert_eq!(b[4]["fields"][0]["text"], "*Reviewer*\nvault/vault-auth");
        assert_eq!(b[5]["elements"][0]["text"], "needs 2 approvals");
        let approve = &b[6]["elements"][0];
        assert_eq!(approve["style"], "danger");
        assert_eq!(approve["action_id"], msg.buttons[0].action.encode());
        assert_eq!(approve["value"], msg.buttons[0].action.encode());
        assert_eq!(approve["confirm"]["style"], "danger");
        assert_eq!(approve["confirm"]["confirm"]["text"], "Approve");
        let rerun = &b[6]["elements"][1];
        assert!(rerun.get("style").is_none());
        assert!(rerun.get("confirm").is_none());
    }

    #[test]
    fn untrusted_text_cannot_mention_or_link() {
        let msg = Message {
            text: "alert <!here> from <@U0BOSS> at <https://evil.example|docs> & more".into(),
            title: Some("<!channel> title".into()),
            sections: vec![
                Section::Text {
                    text: "label team=<!everyone>".into(),
                },
                Section::Checks {
                    items: vec![("❌".into(), "<!here>".into(), "<@U1>".into())],
                },
                Section::Fields {
                    fields: vec![("<!subteam^S1>".into(), "a>b".into())],
                },
                Section::Code {
                    text: "<script>".into(),
                },
            ],
            footer: Some("<!here>".into()),
            ..Message::default()
        };
        let body = wire(post_message("C1", None, &msg)).to_string();
        for planted in [
            "<!here>",
            "<!channel>",
            "<@U0BOSS>",
            "<https://",
            "<!everyone>",
            "<!subteam",
            "<@U1>",
            "<script>",
        ] {
            assert!(!body.contains(planted), "{planted} reached Slack: {body}");
        }
        assert!(body.contains("&lt;!here&gt;"), "{body}");
        assert!(body.contains("&amp; more"), "{body}");
    }

    #[test]
    fn a_cut_never_splits_an_entity() {
        let t = escaped(&format!("{}<", "x".repeat(10)), 13);
        assert_eq!(t, format!("{}…", "x".repeat(10)));
        assert_eq!(escaped("a<b", 10), "a&lt;b");
    }

    #[test]
    fn plain_text_has_no_blocks() {
        let msg = Message {
            text: "*verify*: ok".into(),
            ..Message::default()
        };
        assert!(blocks(&msg).is_empty());
        let body = wire(post_message("C1", Some("1.2"), &msg));
        assert_eq!(
            body,
            json!({"channel": "C1", "text": "*verify*: ok", "thread_ts": "1.2", "unfurl_links": false, "unfurl_media": false})
        );
        assert_eq!(wire(update_message("C1", "1.3", &msg))["blocks"], json!([]));
    }

    #[test]
    fn oversized_messages_are_cut_not_refused() {
        let long = "x".repeat(10_000);
        let mut msg = card();
        msg.title = Some(long.clone());
        msg.sections = (0..80)
            .map(|_| Section::Text { text: long.clone() })
            .collect();
        msg.sections.push(Section::Checks {
            items: (0..200)
                .map(|i| ("✅".into(), format!("check {i}"), long.clone()))
                .collect(),
        });
        msg.buttons = (0..60).map(|_| card().buttons[1].clone()).collect();
        msg.buttons[0].label = long.clone();
        let b = wire(blocks(&msg));
        let arr = b.as_array().unwrap();
        assert_eq!(arr.len(), MAX_BLOCKS);
        for block in arr {
            if let Some(t) = block["text"]["text"].as_str() {
                assert!(t.chars().count() <= MAX_TEXT, "{}", t.len());
            }
            if let Some(e) = block["elements"].as_array() {
                assert!(e.len() <= MAX_ACTIONS);
            }
        }
        assert_eq!(arr[0]["type"], "section");
        assert!(arr[0]["text"]["text"].as_str().unwrap().ends_with('…'));
        assert_eq!(arr[MAX_BLOCKS - 4]["elements"][0]["text"], "…");
        assert_eq!(arr[MAX_BLOCKS - 1]["type"], "actions");
        assert!(
            arr[MAX_BLOCKS - 2]["elements"][0]["text"]["text"]
                .as_str()
                .unwrap()
                .chars()
                .count()
                <= MAX_BUTTON_LABEL
        );
        assert!(fallback(&msg).chars().count() <= MAX_FALLBACK);
        let code = wire(section_blocks(&Section::Code { text: long }));
        let t = code[0]["text"]["text"].as_str().unwrap();
        assert!(t.ends_with("…\n```") && t.chars().count() <= MAX_TEXT);
    }

    #[test]
    fn the_demo_shows_the_post_message_body() {
        let out = render_for_demo(&card());
        let v: Value = serde_json::from_str(&out).unwrap();
        assert_eq!(v["channel"], DEMO_CHANNEL);
        assert_eq!(v["blocks"][0]["type"], "header");
    }
}
