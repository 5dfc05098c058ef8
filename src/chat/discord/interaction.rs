//! What an interaction asks for, in the neutral terms of [`crate::chat`]: the slash command's
//! subcommand and options as command text (parsed by the shared parser), who acted, and where.
//! Pure.

use serenity::model::application::{
    CommandData, CommandDataOption, CommandDataOptionValue, CommandInteraction,
    ComponentInteraction,
};
use serenity::model::channel::{ChannelType, PartialChannel};
use serenity::model::guild::Member;
use serenity::model::user::User;

use crate::approval::Actor;
use crate::chat::command::{ChatCommand, parse};
use crate::chat::message::MessageRef;
use crate::chat::platform::Origin;

/// The one slash command; its subcommands are in `commands/discord-commands.json`.
pub const COMMAND_NAME: &str = "vault-triage";
/// The subcommand that means "no arguments": Discord requires one when a command has any.
pub const TRIAGE_SUBCOMMAND: &str = "triage";

/// The command text an invocation stands for: `role payments-api` for
/// `/vault-triage role name:payments-api`, empty for `triage` or no subcommand.
pub fn command_text(data: &CommandData) -> String {
    let mut words = Vec::new();
    collect(&data.options, &mut words);
    if words.first().map(String::as_str) == Some(TRIAGE_SUBCOMMAND) {
        words.remove(0);
    }
    words.join(" ")
}

fn collect(options: &[CommandDataOption], words: &mut Vec<String>) {
    for o in options {
        match &o.value {
            CommandDataOptionValue::SubCommand(inner)
            | CommandDataOptionValue::SubCommandGroup(inner) => {
                words.push(o.name.clone());
                collect(inner, words);
            }
            CommandDataOptionValue::String(s) => words.push(s.clone()),
            CommandDataOptionValue::Integer(n) => words.push(n.to_string()),
            CommandDataOptionValue::Boolean(b) => words.push(b.to_string()),
            // Options the command does not define: the parser sees something it does not
            // know, and answers with the help.
            other => words.push(format!("{:?}", other.kind())),
        }
    }
}

/// The command an invocation asks for, through the shared parser.
pub fn chat_command(data: &CommandData) -> ChatCommand {
    parse(&command_text(data))
}

/// Who acted: the Discord user, their name and the guild roles they hold.
pub fn actor(user: &User, member: Option<&Member>) -> Actor {
    Actor::discord(user.id.to_string())
        .with_display_name(user.name.clone())
        .with_roles(
            member
                .map(|m| m.roles.iter().map(|r| r.to_string()).collect::<Vec<_>>())
                .unwrap_or_default(),
        )
}

fn is_thread(channel: Option<&PartialChannel>) -> bool {
    channel.is_some_and(|c| {
        matches!(
            c.kind,
            ChannelType::PublicThread | ChannelType::PrivateThread | ChannelType::NewsThread
        )
    })
}

/// Where a command came from and how to answer it (the interaction token).
pub fn command_origin(i: &CommandInteraction) -> Origin {
    let channel = i.channel_id.to_string();
    Origin {
        thread: is_thread(i.channel.as_ref()).then(|| channel.clone()),
        channel,
        reply: i.token.clone(),
        actor: actor(&i.user, i.member.as_deref()),
    }
}

/// Where a click came from, and the message that was clicked.
pub fn click_origin(i: &ComponentInteraction) -> (Origin, MessageRef) {
    let channel = i.channel_id.to_string();
    let thread = is_thread(i.channel.as_ref()).then(|| channel.clone());
    let clicked = MessageRef {
        channel: i.message.channel_id.to_string(),
        id: i.message.id.to_string(),
        thread: thread.clone(),
    };
    let origin = Origin {
        channel,
        thread,
        reply: i.token.clone(),
        actor: actor(&i.user, i.member.as_ref()),
    };
    (origin, clicked)
}
