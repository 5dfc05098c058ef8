//! `vault-triage commands export|register`: the slash-command definitions of `commands/`.

use crate::config::{CommandsArgs, CommandsOp, Platform};

#[allow(clippy::print_stdout)] // the command's own output
pub async fn command_commands(args: CommandsArgs) -> anyhow::Result<i32> {
    match args.op {
        CommandsOp::Export { platform } => {
            for p in Platform::ALL.into_iter().filter(|p| platform.includes(*p)) {
                match p {
                    Platform::Slack => {
                        println!("{}", crate::chat::slack::MANIFEST.trim_end());
                        println!("{}", crate::chat::slack::MANIFEST_SOCKET_MODE.trim_end());
                    }
                    Platform::Discord => {
                        println!("{}", crate::chat::discord::COMMANDS_JSON.trim_end())
                    }
                }
            }
            Ok(0)
        }
        CommandsOp::Register {
            discord,
            guild,
            chat,
        } => {
            anyhow::ensure!(
                discord,
                "only Discord commands are registered by API: pass --discord (Slack's come with the app manifest)"
            );
            let settings = chat.discord().ok_or_else(|| {
                anyhow::anyhow!(
                    "DISCORD_BOT_TOKEN and DISCORD_APPLICATION_ID are needed to register"
                )
            })?;
            let what = crate::chat::discord::register_commands(&settings, guild.as_deref()).await?;
            println!("{what}");
            Ok(0)
        }
    }
}
