//! The Slack app manifest in `commands/` stays in step with the command language.

use serde_json::Value;
use vault_triage::chat::command::HELP;
use vault_triage::chat::slack::MANIFEST as SLACK_MANIFEST;

fn manifest() -> Value {
    serde_json::from_str(SLACK_MANIFEST).expect("the Slack app manifest is JSON")
}

#[test]
fn the_manifests_command_and_usage_hint_follow_the_help() {
    let m = manifest();
    let commands = m["features"]["slash_commands"].as_array().unwrap();
    assert_eq!(commands.len(), 1);
    let c = &commands[0];
    let (name, what) = HELP[0];
    assert_eq!(c["command"], name);
    assert_eq!(c["description"], what);
    let subcommands: Vec<&str> = HELP[1..]
        .iter()
        .map(|(cmd, _)| {
            cmd.strip_prefix(name)
                .map(str::trim)
                .unwrap_or_else(|| panic!("{cmd} is not a subcommand of {name}"))
        })
        .collect();
    assert_eq!(
        c["usage_hint"],
        format!("[{}]", subcommands.join(" | ")),
        "update commands/slack-app-manifest.json after changing the commands"
    );
    assert!(c["description"].as_str().unwrap().len() <= 100);
}

#[test]
fn the_manifest_enables_what_the_bot_serves() {
    let m = manifest();
    let c = &m["features"]["slash_commands"][0];
    assert_eq!(c["url"], "https://YOUR-BOT/slack/commands");
    assert_eq!(m["settings"]["interactivity"]["is_enabled"], true);
    assert_eq!(
        m["settings"]["interactivity"]["request_url"],
        "https://YOUR-BOT/slack/interactions"
    );
    assert!(m["settings"]["socket_mode_enabled"].is_boolean());
    let scopes: Vec<&str> = m["oauth_config"]["scopes"]["bot"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap())
        .collect();
    for needed in ["commands", "chat:write"] {
        assert!(scopes.contains(&needed), "{needed} missing from {scopes:?}");
    }
}

#[test]
fn the_socket_mode_manifest_is_the_http_one_without_urls() {
    let mut http = manifest();
    let socket: Value =
        serde_json::from_str(vault_triage::chat::slack::MANIFEST_SOCKET_MODE).expect("JSON");
    assert_eq!(socket["settings"]["socket_mode_enabled"], true);
    http["features"]["slash_commands"][0]
        .as_object_mut()
        .unwrap()
        .remove("url");
    http["settings"]["interactivity"]
        .as_object_mut()
        .unwrap()
        .remove("request_url");
    http["settings"]["socket_mode_enabled"] = Value::Bool(true);
    assert_eq!(
        http, socket,
        "update commands/slack-app-manifest.socket-mode.json too"
    );
}

#[test]
fn commands_export_prints_every_definition() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_vault-triage"))
        .args(["commands", "export"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("\"socket_mode_enabled\": false"), "{text}");
    assert!(text.contains("\"socket_mode_enabled\": true"), "{text}");
    assert!(text.contains("\"name\": \"vault-triage\""), "{text}");
}
