//! `commands/discord-commands.json` against the shared parser: every subcommand parses to the
//! command it stands for, every help entry has a subcommand, and registration sends exactly
//! the file.

use crate::support::discord as discord_support;

use serde_json::Value;
use serenity::model::application::Interaction;
use vault_triage::chat::command::{ChatCommand, HELP};
use vault_triage::chat::discord::interaction::{COMMAND_NAME, TRIAGE_SUBCOMMAND, chat_command};
use vault_triage::chat::discord::{command_definitions, register_commands};

use discord_support::*;

fn the_command() -> Value {
    let defs = command_definitions().unwrap();
    let defs = defs.as_array().unwrap();
    assert_eq!(defs.len(), 1, "one slash command");
    assert_eq!(defs[0]["name"], COMMAND_NAME);
    defs[0].clone()
}

fn subcommands() -> Vec<Value> {
    let cmd = the_command();
    let subs = cmd["options"].as_array().unwrap().clone();
    assert!(
        subs.iter().all(|s| s["type"] == 1),
        "every option is a subcommand"
    );
    subs
}

/// What each subcommand must mean; `value` stands in for a string option's value.
fn intended(sub: &str, value: &str) -> ChatCommand {
    match sub {
        TRIAGE_SUBCOMMAND => ChatCommand::Triage,
        "status" => ChatCommand::Status,
        "role" => ChatCommand::Role(value.into()),
        "reviewer" => ChatCommand::Reviewer,
        "cluster" => ChatCommand::Cluster(value.into()),
        "help" => ChatCommand::Help { note: None },
        other => {
            panic!("subcommand {other:?} has no intended meaning: add it here and to the parser")
        }
    }
}

/// Parses the interaction Discord would send for `sub` with every option filled in.
fn invoke(sub: &Value, value: &str) -> ChatCommand {
    let options: Vec<(&str, &str)> = sub["options"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|o| {
            assert_eq!(o["type"], 3, "options are strings");
            (o["name"].as_str().unwrap(), value)
        })
        .collect();
    let json = command("tok", ALICE, sub["name"].as_str().unwrap(), &options);
    let Interaction::Command(cmd) = serde_json::from_value(json).unwrap() else {
        panic!("not a command")
    };
    chat_command(&cmd.data)
}

#[test]
fn every_subcommand_parses_to_what_it_stands_for() {
    for sub in subcommands() {
        let name = sub["name"].as_str().unwrap();
        let description = sub["description"].as_str().unwrap();
        assert!(
            !description.is_empty() && description.chars().count() <= 100,
            "{name}"
        );
        assert_eq!(
            invoke(&sub, "payments-api"),
            intended(name, "payments-api"),
            "{name}"
        );
    }
}

#[test]
fn every_help_entry_has_a_subcommand_with_its_arguments() {
    let subs = subcommands();
    for (usage, _) in HELP {
        let words: Vec<&str> = usage.split_whitespace().skip(1).collect();
        let name = words.first().copied().unwrap_or(TRIAGE_SUBCOMMAND);
        let sub = subs.iter().find(|s| s["name"] == name).unwrap_or_else(|| {
            panic!("`{usage}` has no subcommand in commands/discord-commands.json")
        });
        let args = words
            .iter()
            .skip(1)
            .filter(|w| w.chars().all(|c| c.is_ascii_uppercase()))
            .count();
        let options = sub["options"].as_array().map_or(0, Vec::len);
        assert_eq!(args, options, "`{usage}`: arguments and options differ");
    }
    assert_eq!(subs.len(), HELP.len(), "a subcommand without a help entry");
}

#[test]
fn an_invalid_role_gets_the_help_not_a_triage() {
    let role = subcommands()
        .into_iter()
        .find(|s| s["name"] == "role")
        .unwrap();
    assert!(matches!(
        invoke(&role, "a b"),
        ChatCommand::Help { note: Some(_) }
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registration_puts_the_file_globally_or_in_a_guild() {
    let fake = FakeDiscord::start().await;
    let settings = settings(&fake, false, false);
    let said = register_commands(&settings, None).await.unwrap();
    assert!(
        said.contains("/vault-triage") && said.contains("globally"),
        "{said}"
    );
    let said = register_commands(&settings, Some(GUILD)).await.unwrap();
    assert!(said.contains(GUILD), "{said}");
    let calls = fake.calls();
    assert_eq!(calls.len(), 2);
    assert_eq!(
        (calls[0].method.as_str(), calls[0].path.clone()),
        ("PUT", format!("/applications/{APP}/commands"))
    );
    assert_eq!(
        calls[1].path,
        format!("/applications/{APP}/guilds/{GUILD}/commands")
    );
    for c in &calls {
        assert_eq!(c.body, command_definitions().unwrap());
        assert_eq!(c.auth.as_deref(), Some("Bot test-bot-token"));
    }
    let mut no_app = settings.clone();
    no_app.application_id = None;
    let err = register_commands(&no_app, None).await.unwrap_err();
    assert!(format!("{err:#}").contains("DISCORD_APPLICATION_ID"));
}

#[test]
fn a_click_in_a_thread_is_located_there_and_its_actor_carries_name_and_roles() {
    use vault_triage::chat::discord::interaction::click_origin;
    let msg = message(
        "1500000000000000009",
        "1600000000000000001",
        &serde_json::json!({}),
    );
    let Interaction::Component(c) =
        serde_json::from_value(click("tok-c", BOB, "vt:rerun:tri_1", msg, 11)).unwrap()
    else {
        panic!("not a click")
    };
    let (origin, clicked) = click_origin(&c);
    assert_eq!(origin.thread.as_deref(), Some("1600000000000000001"));
    assert_eq!(origin.reply, "tok-c");
    assert_eq!(clicked.id, "1500000000000000009");
    assert_eq!(clicked.thread.as_deref(), Some("1600000000000000001"));
    assert_eq!(origin.actor.platform_key(), format!("discord:{BOB}"));
    assert_eq!(origin.actor.display_name.as_deref(), Some("bob"));
    assert_eq!(origin.actor.roles, ["4200000000000000001"]);

    let msg = message("1500000000000000010", CHANNEL, &serde_json::json!({}));
    let Interaction::Component(c) =
        serde_json::from_value(click("tok-d", BOB, "vt:rerun:tri_1", msg, 0)).unwrap()
    else {
        panic!("not a click")
    };
    assert_eq!(
        click_origin(&c).1.thread,
        None,
        "a channel message is no thread"
    );
}
