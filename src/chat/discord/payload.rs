//! Neutral messages as Discord message bodies: an embed (title, description, colour, fields,
//! footer) and components (action rows of buttons), within Discord's size limits. Pure.
//!
//! The same body serves every call that carries a message: editing the deferred
//! `@original`, posting into a thread and editing a card. It always names `content`,
//! `embeds` and `components`, so an edit replaces all three (a final card loses its buttons).

use serde_json::{Value, json};

use crate::chat::message::{Button, ButtonStyle, MAX_ACTION_LEN, Message, Section};

/// Most characters in a message's `content`.
pub const MAX_CONTENT: usize = 2000;
/// Most characters in an embed title.
pub const MAX_TITLE: usize = 256;
/// Most characters in an embed description.
pub const MAX_DESCRIPTION: usize = 4096;
/// Most fields in an embed.
pub const MAX_FIELDS: usize = 25;
/// Most characters in a field name.
pub const MAX_FIELD_NAME: usize = 256;
/// Most characters in a field value.
pub const MAX_FIELD_VALUE: usize = 1024;
/// Most characters in an embed footer.
pub const MAX_FOOTER: usize = 2048;
/// Most characters in all of an embed's text together.
pub const MAX_EMBED_TOTAL: usize = 6000;
/// Most buttons in an action row, and most action rows in a message.
pub const MAX_PER_ROW: usize = 5;
pub const MAX_ROWS: usize = 5;
/// Most characters in a button label.
pub const MAX_LABEL: usize = 80;
/// Message flag: only the person who acted sees it.
pub const EPHEMERAL: u64 = 64;

/// Shown after a label whose neutral button asks for a confirmation: Discord has no confirm
/// dialogs, so the label itself says the click only asks.
pub const ASKS_SUFFIX: &str = " (asks for approval)";

/// The JSON body for a message: `content`, `embeds`, `components`, and no pings.
pub fn body(msg: &Message) -> Value {
    let has_card = msg.title.is_some() || !msg.sections.is_empty();
    let (content, embeds) = if has_card {
        (String::new(), vec![embed(msg)])
    } else {
        (truncate(&markdown(&msg.text), MAX_CONTENT), Vec::new())
    };
    json!({
        "content": content,
        "embeds": embeds,
        "components": components(&msg.buttons),
        "allowed_mentions": { "parse": [] },
    })
}

/// The body of an ephemeral follow-up: text only the clicker sees.
pub fn ephemeral(text: &str) -> Value {
    json!({
        "content": truncate(&markdown(text), MAX_CONTENT),
        "flags": EPHEMERAL,
        "allowed_mentions": { "parse": [] },
    })
}

/// What `demo` prints for a message Discord would get: the JSON body, pretty.
pub fn render_for_demo(msg: &Message) -> String {
    serde_json::to_string_pretty(&body(msg)).unwrap_or_default()
}

fn embed(msg: &Message) -> Value {
    let title = msg.title.as_deref().map(|t| truncate(t, MAX_TITLE));
    let footer = msg.footer.as_deref().map(|f| truncate(f, MAX_FOOTER));
    let mut description = Vec::new();
    let mut fields: Vec<(String, String, bool)> = Vec::new();
    for section in &msg.sections {
        match section {
            Section::Text { text } => description.push(markdown(text)),
            Section::Code { text } => description.push(format!(
                "```\n{}\n```",
                text.trim_end().replace("```", "'''")
            )),
            Section::Fields { fields: pairs } => {
                for (name, value) in pairs {
                    fields.push((name.clone(), markdown(value), true));
                }
            }
            Section::Checks { items } => {
                for (emoji, check, detail) in items {
                    fields.push((format!("{emoji} {check}"), markdown(detail), false));
                }
            }
        }
    }
    let mut fields: Vec<(String, String, bool)> = fields
        .into_iter()
        .map(|(n, v, inline)| {
            (
                non_empty(truncate(&n, MAX_FIELD_NAME)),
                non_empty(truncate(&v, MAX_FIELD_VALUE)),
                inline,
            )
        })
        .collect();
    if fields.len() > MAX_FIELDS {
        let more = fields.len() - (MAX_FIELDS - 1);
        fields.truncate(MAX_FIELDS - 1);
        fields.push(("…".into(), format!("and {more} more"), false));
    }
    let mut description = truncate(&description.join("\n\n"), MAX_DESCRIPTION);
    // The 6000-character budget: fields go first (from the end), then the description.
    let fixed = title.as_deref().map_or(0, len) + footer.as_deref().map_or(0, len);
    let field_len =
        |f: &[(String, String, bool)]| f.iter().map(|(n, v, _)| len(n) + len(v)).sum::<usize>();
    while fixed + len(&description) + field_len(&fields) > MAX_EMBED_TOTAL && !fields.is_empty() {
        fields.pop();
    }
    let room = MAX_EMBED_TOTAL.saturating_sub(fixed + field_len(&fields));
    if len(&description) > room {
        description = truncate(&description, room);
    }
    let mut e = serde_json::Map::new();
    if let Some(t) = title {
        e.insert("title".into(), json!(t));
    }
    if !description.is_empty() {
        e.insert("description".into(), json!(description));
    }
    if let Some(tone) = msg.tone {
        e.insert("color".into(), json!(tone.colour()));
    }
    if !fields.is_empty() {
        e.insert(
            "fields".into(),
            Value::Array(
                fields
                    .into_iter()
                    .map(|(name, value, inline)| json!({"name": name, "value": value, "inline": inline}))
                    .collect(),
            ),
        );
    }
    if let Some(f) = footer {
        e.insert("footer".into(), json!({ "text": f }));
    }
    Value::Object(e)
}

/// Action rows of at most five buttons; buttons whose action does not fit a custom_id are
/// left out (they cannot be clicked back).
fn components(buttons: &[Button]) -> Vec<Value> {
    let buttons: Vec<Value> = buttons
        .iter()
        .filter_map(|b| {
            let custom_id = b.action.encode();
            if custom_id.len() > MAX_ACTION_LEN {
                tracing::warn!(
                    len = custom_id.len(),
                    "a button action is too long for Discord"
                );
                return None;
            }
            Some(json!({
                "type": 2,
                "style": style(b.style),
                "label": label(b),
                "custom_id": custom_id,
            }))
        })
        .take(MAX_PER_ROW * MAX_ROWS)
        .collect();
    buttons
        .chunks(MAX_PER_ROW)
        .map(|row| json!({ "type": 1, "components": row }))
        .collect()
}

/// Discord button styles: Primary 1, Secondary 2, Danger 4.
fn style(s: ButtonStyle) -> u8 {
    match s {
        ButtonStyle::Primary => 1,
        ButtonStyle::Default => 2,
        ButtonStyle::Danger => 4,
    }
}

fn label(b: &Button) -> String {
    let label = match (&b.confirm, b.style) {
        (Some(_), ButtonStyle::Danger) => format!("{}{ASKS_SUFFIX}", b.label),
        _ => b.label.clone(),
    };
    truncate(&label, MAX_LABEL)
}

fn len(s: &str) -> usize {
    s.chars().count()
}

fn non_empty(s: String) -> String {
    if s.trim().is_empty() { "—".into() } else { s }
}

/// At most `max` characters, ending with "…" when cut.
pub fn truncate(s: &str, max: usize) -> String {
    if len(s) <= max {
        return s.to_string();
    }
    if max == 0 {
        return String::new();
    }
    let mut out: String = s.chars().take(max - 1).collect();
    out.push('…');
    out
}

/// The neutral model's Slack-style `*bold*` as Discord's `**bold**`; code spans and blocks
/// are left alone, as are `**` runs already doubled.
pub fn markdown(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len() + 8);
    let mut in_code = false;
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '`' {
            in_code = !in_code;
            out.push(c);
        } else if c == '*' && !in_code {
            let doubled = chars.get(i + 1) == Some(&'*');
            if doubled {
                out.push_str("**");
                i += 1;
            } else {
                out.push_str("**");
            }
        } else {
            out.push(c);
        }
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chat::message::{ButtonAction, Confirm, Tone};

    fn card(sections: Vec<Section>, buttons: Vec<Button>) -> Message {
        Message {
            text: "t".into(),
            title: Some("🔴 Vault Kubernetes auth is failing".into()),
            tone: Some(Tone::Danger),
            sections,
            buttons,
            footer: Some("Reconfigure needs 2 approvals".into()),
        }
    }

    fn rerun(n: usize) -> Button {
        Button {
            action: ButtonAction::Rerun {
                triage: format!("tri_{n}"),
            },
            label: format!("Re-run {n}"),
            style: ButtonStyle::Default,
            confirm: None,
        }
    }

    #[test]
    fn a_card_is_one_embed_with_its_colour_fields_and_footer() {
        let b = body(&card(
            vec![
                Section::Text {
                    text: "*Affected:* payments-api".into(),
                },
                Section::Checks {
                    items: vec![(
                        "❌".into(),
                        "Canary login".into(),
                        "403 permission denied".into(),
                    )],
                },
                Section::Fields {
                    fields: vec![("Request".into(), "req_1".into())],
                },
            ],
            vec![],
        ));
        let e = &b["embeds"][0];
        assert_eq!(e["title"], "🔴 Vault Kubernetes auth is failing");
        assert_eq!(e["color"], Tone::Danger.colour());
        assert_eq!(e["description"], "**Affected:** payments-api");
        assert_eq!(e["fields"][0]["name"], "❌ Canary login");
        assert_eq!(e["fields"][0]["inline"], false);
        assert_eq!(e["fields"][1]["name"], "Request");
        assert_eq!(e["fields"][1]["inline"], true);
        assert_eq!(e["footer"]["text"], "Reconfigure needs 2 approvals");
        assert_eq!(b["content"], "");
        assert_eq!(b["components"], json!([]));
        assert_eq!(b["allowed_mentions"]["parse"], json!([]));
    }

    #[test]
    fn plain_text_is_content_without_embeds() {
        let b = body(&Message {
            text: "✅ *verify*: canary login succeeds".into(),
            ..Message::default()
        });
        assert_eq!(b["content"], "✅ **verify**: canary login succeeds");
        assert_eq!(b["embeds"], json!([]));
        let long = body(&Message {
            text: "x".repeat(5000),
            ..Message::default()
        });
        let content = long["content"].as_str().unwrap();
        assert_eq!(content.chars().count(), MAX_CONTENT);
        assert!(content.ends_with('…'));
    }

    #[test]
    fn buttons_become_rows_of_five_with_discord_styles() {
        let mut buttons: Vec<Button> = (0..7).map(rerun).collect();
        buttons[0].style = ButtonStyle::Primary;
        buttons[1].style = ButtonStyle::Danger;
        buttons[1].confirm = Some(Confirm {
            title: "Sure?".into(),
            text: "It asks".into(),
            confirm: "Request it".into(),
            deny: "Cancel".into(),
        });
        let b = body(&card(vec![], buttons));
        let rows = b["components"].as_array().unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0]["type"], 1);
        assert_eq!(rows[0]["components"].as_array().unwrap().len(), 5);
        assert_eq!(rows[1]["components"].as_array().unwrap().len(), 2);
        let first = &rows[0]["components"];
        assert_eq!(first[0]["style"], 1);
        assert_eq!(first[1]["style"], 4);
        assert_eq!(first[1]["label"], "Re-run 1 (asks for approval)");
        assert_eq!(first[2]["style"], 2);
        assert_eq!(first[2]["custom_id"], "vt:rerun:tri_2");
        assert_eq!(
            ButtonAction::decode(first[3]["custom_id"].as_str().unwrap()),
            Some(ButtonAction::Rerun {
                triage: "tri_3".into()
            })
        );
    }

    #[test]
    fn an_oversized_card_is_cut_to_discords_limits() {
        let items = (0..40)
            .map(|i| ("✅".to_string(), format!("check {i}"), "d".repeat(2000)))
            .collect();
        let b = body(&card(
            vec![
                Section::Text {
                    text: "s".repeat(5000),
                },
                Section::Checks { items },
            ],
            (0..30).map(rerun).collect(),
        ));
        let e = &b["embeds"][0];
        let fields = e["fields"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default();
        assert!(fields.len() <= MAX_FIELDS);
        let mut total = e["title"].as_str().unwrap().chars().count()
            + e["footer"]["text"].as_str().unwrap().chars().count();
        let description = e["description"].as_str().unwrap_or("");
        assert!(description.chars().count() <= MAX_DESCRIPTION);
        total += description.chars().count();
        for f in fields {
            let v = f["value"].as_str().unwrap();
            assert!(v.chars().count() <= MAX_FIELD_VALUE);
            assert!(v.ends_with('…'));
            total += f["name"].as_str().unwrap().chars().count() + v.chars().count();
        }
        assert!(total <= MAX_EMBED_TOTAL, "{total}");
        let rows = b["components"].as_array().unwrap();
        assert_eq!(rows.len(), MAX_ROWS);
    }

    #[test]
    fn markdown_doubles_single_stars_outside_code() {
        assert_eq!(markdown("*a* and `*b*`"), "**a** and `*b*`");
        assert_eq!(markdown("**c**"), "**c**");
        assert_eq!(markdown("```\n*x*\n```"), "```\n*x*\n```");
    }

    #[test]
    fn the_demo_shows_the_json_body() {
        let out = render_for_demo(&card(vec![], vec![rerun(1)]));
        let v: Value = serde_json::from_str(&out).unwrap();
        assert_eq!(
            v["components"][0]["components"][0]["custom_id"],
            "vt:rerun:tri_1"
        );
    }
}
