//! The `/vault-triage` command language, shared by Slack and Discord. Pure.
//!
//! The commands are a clap-derive enum whose doc comments are the help text. Anything that
//! does not parse gets the help, never an error.

use clap::{Parser, Subcommand};

/// What a `/vault-triage …` invocation asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChatCommand {
    /// Full triage (no arguments).
    Triage,
    /// Vault and auth health at a glance.
    Status,
    /// Triage for one role.
    Role(String),
    /// Reviewer token state and expiry.
    Reviewer,
    /// Full triage of one cluster (`[[clusters]]`).
    Cluster(String),
    /// The help text; `note` says why it is shown when the input was not understood.
    Help { note: Option<String> },
}

#[derive(Debug, Parser)]
#[command(
    name = "/vault-triage",
    no_binary_name = true,
    disable_version_flag = true,
    disable_help_subcommand = true,
    disable_help_flag = true
)]
struct Args {
    #[command(subcommand)]
    command: Option<Sub>,
}

#[derive(Debug, Subcommand)]
enum Sub {
    /// Vault and Kubernetes-auth health at a glance
    Status,
    /// Triage for one Vault role
    Role {
        /// The role name
        name: String,
    },
    /// Reviewer token state and expiry
    Reviewer,
    /// Triage one cluster of the fleet
    Cluster {
        /// The cluster's name
        name: String,
    },
    /// This help
    Help,
}

/// Longest command text looked at.
pub const MAX_COMMAND_LEN: usize = 200;

/// Parses the text after `/vault-triage`.
pub fn parse(text: &str) -> ChatCommand {
    let text: String = text.chars().take(MAX_COMMAND_LEN).collect();
    let words: Vec<&str> = text.split_whitespace().collect();
    match Args::try_parse_from(&words) {
        Ok(Args { command: None }) => ChatCommand::Triage,
        Ok(Args { command: Some(sub) }) => match sub {
            Sub::Status => ChatCommand::Status,
            Sub::Role { name } => match valid_role(&name) {
                true => ChatCommand::Role(name.to_ascii_lowercase()),
                false => ChatCommand::Help {
                    note: Some(format!("`{}` is not a Vault role name.", sanitize(&name))),
                },
            },
            Sub::Reviewer => ChatCommand::Reviewer,
            Sub::Cluster { name } => match valid_cluster(&name) {
                true => ChatCommand::Cluster(name),
                false => ChatCommand::Help {
                    note: Some(format!("`{}` is not a cluster name.", sanitize(&name))),
                },
            },
            Sub::Help => ChatCommand::Help { note: None },
        },
        Err(_) => ChatCommand::Help {
            note: Some(format!("I did not understand `{}`.", sanitize(text.trim()))),
        },
    }
}

/// Role names: letters, digits, `-`, `_`, `.`, at most 128 characters.
fn valid_role(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 128
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
}

/// Cluster names as `[[clusters]]` allows them: letters, digits, `-`, `_`, `.`, at most 63.
fn valid_cluster(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 63
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
}

/// User text echoed back: no markup, no mentions, short.
fn sanitize(s: &str) -> String {
    s.chars()
        .filter(|c| !"`<>@*_~|".contains(*c) && !c.is_control())
        .take(60)
        .collect()
}

/// One line per command, for the help message and the command definitions.
pub const HELP: &[(&str, &str)] = &[
    (
        "/vault-triage",
        "Full triage: why do Vault logins fail, and what fixes it",
    ),
    (
        "/vault-triage status",
        "Vault and Kubernetes-auth health at a glance",
    ),
    ("/vault-triage role NAME", "Triage for one Vault role"),
    ("/vault-triage reviewer", "Reviewer token state and expiry"),
    (
        "/vault-triage cluster NAME",
        "Triage one cluster (when the bot watches several)",
    ),
    ("/vault-triage help", "This help"),
];

/// The help text.
pub fn help_text(note: Option<&str>) -> String {
    let mut out = String::new();
    if let Some(n) = note {
        out.push_str(n);
        out.push_str("\n\n");
    }
    out.push_str("*vault-triage* finds out why Vault logins fail with `permission denied`.\n");
    for (cmd, what) in HELP {
        out.push_str(&format!("• `{cmd}`: {what}\n"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_arguments_is_a_full_triage() {
        assert_eq!(parse(""), ChatCommand::Triage);
        assert_eq!(parse("   "), ChatCommand::Triage);
    }

    #[test]
    fn subcommands_parse() {
        assert_eq!(parse("status"), ChatCommand::Status);
        assert_eq!(
            parse("role payments-api"),
            ChatCommand::Role("payments-api".into())
        );
        assert_eq!(
            parse("role Payments-API"),
            ChatCommand::Role("payments-api".into())
        );
        assert_eq!(parse("reviewer"), ChatCommand::Reviewer);
        assert_eq!(
            parse("cluster prod-EU"),
            ChatCommand::Cluster("prod-EU".into())
        );
        assert!(matches!(
            parse("cluster <!here>"),
            ChatCommand::Help { note: Some(n) } if !n.contains('<')
        ));
        assert_eq!(parse("help"), ChatCommand::Help { note: None });
    }

    #[test]
    fn unknown_input_gets_help_not_an_error() {
        for input in [
            "frobnicate",
            "role",
            "role a b",
            "--version",
            "-h",
            "status extra",
            "role <@U123>",
        ] {
            match parse(input) {
                ChatCommand::Help { note: Some(n) } => assert!(!n.contains('<'), "{n}"),
                other => panic!("{input:?} gave {other:?}"),
            }
        }
    }

    #[test]
    fn long_input_is_cut_and_never_panics() {
        let long = "role ".to_string() + &"x".repeat(10_000);
        assert!(matches!(parse(&long), ChatCommand::Help { .. }));
        let _ = parse("\u{0}\u{202e}role\tx");
    }
}
