//! Who may approve which action: the `[[approvals]]` rules and `[[people]]` identities of
//! design §4, parsed once into a [`Policy`].
//!
//! The policy owns identity too: a person listed in `[[people]]` with a Slack and a Discord id
//! is one [`PersonKey`] whichever platform they click from, so they count once towards a quorum
//! and cannot approve their own request from their other account. An action without a rule may
//! not be approved by anyone (default deny).

use std::collections::{BTreeSet, HashMap};
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::config::{ApprovalRule, Person, Platform};
use crate::diagnosis::Action;

/// Where someone acted: on a chat platform, at the terminal (kept for records of older
/// releases: no approver can be a terminal user), or the bot itself (its reviewer watch proposes rotations). Written `slack`, `discord`, `cli`, `bot`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Via {
    Chat(Platform),
    Cli,
    Bot,
}

impl Via {
    pub fn as_str(self) -> &'static str {
        match self {
            Via::Chat(p) => p.as_str(),
            Via::Cli => "cli",
            Via::Bot => "bot",
        }
    }
}

impl fmt::Display for Via {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Via {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "cli" => Ok(Via::Cli),
            "bot" => Ok(Via::Bot),
            other => other.parse::<Platform>().map(Via::Chat),
        }
    }
}

impl Serialize for Via {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Via {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

/// Someone acting through a platform, as the platform (verified by the edge) reported them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Actor {
    /// Where they acted (journaled as `platform`).
    #[serde(rename = "platform")]
    pub via: Via,
    /// The platform's user id (Slack `U…`, Discord snowflake, terminal user name).
    pub user_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    /// Discord role ids the member holds in the guild where they clicked; empty elsewhere.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub roles: Vec<String>,
}

impl Actor {
    pub fn new(via: Via, user_id: impl Into<String>) -> Self {
        Self {
            via,
            user_id: user_id.into(),
            display_name: None,
            roles: Vec::new(),
        }
    }

    pub fn slack(user_id: impl Into<String>) -> Self {
        Self::new(Via::Chat(Platform::Slack), user_id)
    }

    pub fn discord(user_id: impl Into<String>) -> Self {
        Self::new(Via::Chat(Platform::Discord), user_id)
    }

    /// The bot itself, acting as `what` (the reviewer watch proposing a rotation).
    pub fn bot(what: impl Into<String>) -> Self {
        Self::new(Via::Bot, "vault-triage").with_display_name(what)
    }

    pub fn with_roles(mut self, roles: impl IntoIterator<Item = impl Into<String>>) -> Self {
        self.roles = roles.into_iter().map(Into::into).collect();
        self
    }

    pub fn with_display_name(mut self, name: impl Into<String>) -> Self {
        self.display_name = Some(name.into());
        self
    }

    /// `platform:user_id`, e.g. `slack:U012ABC`.
    pub fn platform_key(&self) -> String {
        format!("{}:{}", self.via, self.user_id)
    }
}

/// One human: a `[[people]]` name, or `platform:user_id` for someone not listed there.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct PersonKey(String);

impl PersonKey {
    fn person(name: &str) -> Self {
        Self(name.to_owned())
    }

    fn account(via: Via, user_id: &str) -> Self {
        Self(format!("{via}:{user_id}"))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether this is a `[[people]]` name rather than a bare account (`platform:user`).
    pub fn is_listed(&self) -> bool {
        !self.0.contains(':')
    }
}

impl fmt::Display for PersonKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A configuration error in `[[approvals]]` or `[[people]]`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    #[error("[[approvals]] action \"{action}\" is not an action the bot can run (known: {known})")]
    UnknownAction { action: String, known: String },
    #[error("[[approvals]] has two rules for \"{action}\"; keep one")]
    DuplicateRule { action: String },
    #[error("[[approvals]] rule for \"{action}\": required must be at least 1")]
    ZeroRequired { action: String },
    #[error(
        "[[approvals]] rule for \"{action}\": required = {required} but only {available} distinct people are listed as approvers"
    )]
    NotEnoughApprovers {
        action: String,
        required: u32,
        available: usize,
    },
    #[error("[[approvals]] rule for \"{action}\": approver \"{entry}\" {reason}")]
    BadApprover {
        action: String,
        entry: String,
        reason: String,
    },
    #[error("[[approvals]] rule for \"{action}\": expires_after {reason}")]
    BadExpiry { action: String, reason: String },
    #[error("[[people]] entry \"{name}\": {reason}")]
    BadPerson { name: String, reason: String },
}

/// One parsed `approvers` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
enum ApproverEntry {
    /// A `[[people]]` name.
    Person(String),
    /// `slack:U…`, `discord:…`, or a bare Slack user id.
    Account(Via, String),
    /// `discord-role:…`: whoever holds the role.
    DiscordRole(String),
}

/// The rule for one action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    action: Action,
    /// Approvers named individually, resolved to people.
    people: BTreeSet<PersonKey>,
    /// Discord role ids whose holders may approve.
    discord_roles: BTreeSet<String>,
    required: u32,
    expires_after: chrono::TimeDelta,
}

impl Rule {
    pub fn action(&self) -> Action {
        self.action
    }

    /// Distinct people needed, the requester excluded.
    pub fn required(&self) -> u32 {
        self.required
    }

    pub fn expires_after(&self) -> chrono::TimeDelta {
        self.expires_after
    }

    /// May this actor, known as `person`, approve under this rule?
    pub fn admits(&self, actor: &Actor, person: &PersonKey) -> bool {
        if self.people.contains(person) {
            return true;
        }
        match actor.via {
            Via::Chat(Platform::Discord) => {
                actor.roles.iter().any(|r| self.discord_roles.contains(r))
            }
            Via::Chat(Platform::Slack) | Via::Cli | Via::Bot => false,
        }
    }

    /// Whether `required` distinct people other than `requester` can ever approve: always
    /// when a Discord role may approve (its holders are not known in advance), else when
    /// enough named approvers remain once the requester is left out.
    pub fn reachable_without(&self, requester: &PersonKey) -> Result<(), (u32, usize)> {
        if !self.discord_roles.is_empty() {
            return Ok(());
        }
        let available = self.people.iter().filter(|p| *p != requester).count();
        if available >= self.required as usize {
            Ok(())
        } else {
            Err((self.required, available))
        }
    }

    /// Who could still approve, for the "still needed" line: named approvers not in `exclude`,
    /// then one entry per Discord role.
    pub fn candidates(&self, exclude: &[PersonKey]) -> Vec<String> {
        self.people
            .iter()
            .filter(|p| !exclude.contains(p))
            .map(|p| p.to_string())
            .chain(
                self.discord_roles
                    .iter()
                    .map(|r| format!("a holder of Discord role {r}")),
            )
            .collect()
    }
}

/// The approval policy: rules per action plus the identity map.
#[derive(Debug, Clone, Default)]
pub struct Policy {
    rules: HashMap<Action, Rule>,
    /// (platform, user id) → person name.
    identities: HashMap<(Via, String), String>,
}

impl Policy {
    /// Parses the config. Every problem is an error with a sentence naming the entry.
    pub fn from_config(rules: &[ApprovalRule], people: &[Person]) -> Result<Policy, PolicyError> {
        let mut policy = Policy::default();
        let mut names = BTreeSet::new();
        for person in people {
            let bad = |reason: &str| PolicyError::BadPerson {
                name: person.name.clone(),
                reason: reason.to_owned(),
            };
            if person.name.trim().is_empty() || person.name.contains(':') {
                return Err(bad("a name must be non-empty and contain no ':'"));
            }
            if !names.insert(person.name.clone()) {
                return Err(bad("this name is listed twice"));
            }
            for platform in Platform::ALL {
                let Some(id) = person.id_on(platform) else {
                    continue;
                };
                if id.trim().is_empty() {
                    return Err(bad(&format!("the {platform} id is empty")));
                }
                let previous = policy
                    .identities
                    .insert((Via::Chat(platform), id.to_owned()), person.name.clone());
                if let Some(other) = previous {
                    return Err(bad(&format!(
                        "{platform} id {id} also belongs to \"{other}\"; one account is one person"
                    )));
                }
            }
        }

        for rule in rules {
            let action = parse_action(&rule.action)?;
            if policy.rules.contains_key(&action) {
                return Err(PolicyError::DuplicateRule {
                    action: rule.action.clone(),
                });
            }
            if rule.required == 0 {
                return Err(PolicyError::ZeroRequired {
                    action: rule.action.clone(),
                });
            }
            let expires_after = match chrono::TimeDelta::from_std(rule.expires_after) {
                Ok(d) if d > chrono::TimeDelta::zero() => d,
                Ok(_) => {
                    return Err(PolicyError::BadExpiry {
                        action: rule.action.clone(),
                        reason: "must be longer than zero".to_owned(),
                    });
                }
                Err(_) => {
                    return Err(PolicyError::BadExpiry {
                        action: rule.action.clone(),
                        reason: "is too long".to_owned(),
                    });
                }
            };
            let mut parsed = Rule {
                action,
                people: BTreeSet::new(),
                discord_roles: BTreeSet::new(),
                required: rule.required,
                expires_after,
            };
            for entry in &rule.approvers {
                let approver =
                    parse_approver(entry, &names).map_err(|reason| PolicyError::BadApprover {
                        action: rule.action.clone(),
                        entry: entry.clone(),
                        reason,
                    })?;
                match approver {
                    ApproverEntry::Person(name) => {
                        parsed.people.insert(PersonKey::person(&name));
                    }
                    ApproverEntry::Account(via, id) => {
                        parsed.people.insert(policy.key_for(via, &id));
                    }
                    ApproverEntry::DiscordRole(role) => {
                        parsed.discord_roles.insert(role);
                    }
                }
            }
            // A role can be held by any number of people, so only named approvers are countable.
            let available = parsed.people.len();
            if parsed.discord_roles.is_empty() && (rule.required as usize) > available {
                return Err(PolicyError::NotEnoughApprovers {
                    action: rule.action.clone(),
                    required: rule.required,
                    available,
                });
            }
            policy.rules.insert(action, parsed);
        }
        Ok(policy)
    }

    /// The person behind an actor: their `[[people]]` name, else `platform:user_id`.
    pub fn identity(&self, actor: &Actor) -> PersonKey {
        self.key_for(actor.via, &actor.user_id)
    }

    fn key_for(&self, via: Via, user_id: &str) -> PersonKey {
        match self.identities.get(&(via, user_id.to_owned())) {
            Some(name) => PersonKey::person(name),
            None => PersonKey::account(via, user_id),
        }
    }

    /// What a reader of the policy should know at start: rules whose quorum a request by one
    /// of their own approvers could never reach.
    pub fn warnings(&self) -> Vec<String> {
        self.rules
            .values()
            .filter(|r| r.discord_roles.is_empty() && r.people.len() == r.required as usize)
            .map(|r| {
                format!(
                    "[[approvals]] rule for \"{}\": required = {} and exactly {} approvers are listed, so a request made by one of them can never be approved (it is refused when proposed); list more approvers or lower required",
                    r.action.as_str(),
                    r.required,
                    r.people.len()
                )
            })
            .collect()
    }

    /// The rule for an action; `None` means nobody may approve it.
    pub fn rule(&self, action: Action) -> Option<&Rule> {
        self.rules.get(&action)
    }
}

/// Action names come from the serde names, so a new `Action` variant is parsable at once.
fn parse_action(name: &str) -> Result<Action, PolicyError> {
    serde_json::from_value(serde_json::Value::String(name.to_owned())).map_err(|_| {
        PolicyError::UnknownAction {
            action: name.to_owned(),
            known: Action::ALL.map(Action::as_str).join(", "),
        }
    })
}

fn parse_approver(entry: &str, people: &BTreeSet<String>) -> Result<ApproverEntry, String> {
    let entry = entry.trim();
    if let Some((prefix, id)) = entry.split_once(':') {
        if id.is_empty() {
            return Err("has nothing after the ':'".to_owned());
        }
        if prefix == "discord-role" {
            return Ok(ApproverEntry::DiscordRole(id.to_owned()));
        }
        return match prefix.parse::<Via>() {
            Ok(via @ Via::Chat(_)) => Ok(ApproverEntry::Account(via, id.to_owned())),
            Ok(Via::Cli) => Err(
                "names a terminal user, but approvals are given only in Slack or Discord: list their chat id or [[people]] name"
                    .to_owned(),
            ),
            Ok(Via::Bot) | Err(_) => Err(format!(
                "has an unknown prefix \"{prefix}\" (use {} or discord-role:)",
                Platform::ALL.map(|p| format!("{p}:")).join(", ")
            )),
        };
    }
    if people.contains(entry) {
        return Ok(ApproverEntry::Person(entry.to_owned()));
    }
    if looks_like_slack_user_id(entry) {
        return Ok(ApproverEntry::Account(
            Via::Chat(Platform::Slack),
            entry.to_owned(),
        ));
    }
    Err("is neither a [[people]] name nor a Slack user id (U… or W…)".to_owned())
}

/// Slack user ids: `U` or `W` followed by upper-case letters and digits.
fn looks_like_slack_user_id(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some('U' | 'W'))
        && s.len() >= 3
        && chars.all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn rule(action: &str, approvers: &[&str], required: u32) -> ApprovalRule {
        ApprovalRule {
            action: action.to_owned(),
            approvers: approvers.iter().map(|s| s.to_string()).collect(),
            required,
            expires_after: Duration::from_secs(900),
        }
    }

    fn alice() -> Person {
        Person {
            name: "alice".to_owned(),
            slack: Some("UALICE".to_owned()),
            discord: Some("111".to_owned()),
        }
    }

    #[test]
    fn the_design_example_parses() {
        let p = Policy::from_config(
            &[rule(
                "reconfigure-auth",
                &["U012ABC", "discord:123456789"],
                2,
            )],
            &[],
        )
        .unwrap();
        let r = p.rule(Action::ReconfigureAuth).unwrap();
        assert_eq!(r.required(), 2);
        assert_eq!(r.expires_after(), chrono::TimeDelta::minutes(15));
        assert!(r.admits(
            &Actor::slack("U012ABC"),
            &p.identity(&Actor::slack("U012ABC"))
        ));
        let d = Actor::discord("123456789");
        assert!(r.admits(&d, &p.identity(&d)));
        assert!(p.rule(Action::RestartDeployments).is_none());
    }

    #[test]
    fn a_terminal_user_cannot_be_an_approver() {
        let err = Policy::from_config(&[rule("reconfigure-auth", &["cli:alice"], 1)], &[])
            .unwrap_err()
            .to_string();
        assert!(err.contains("cli:alice"), "{err}");
        assert!(err.contains("only in Slack or Discord"), "{err}");
    }

    #[test]
    fn a_person_is_one_identity_on_every_platform() {
        let p = Policy::from_config(&[], &[alice()]).unwrap();
        assert_eq!(p.identity(&Actor::slack("UALICE")).as_str(), "alice");
        assert_eq!(p.identity(&Actor::discord("111")).as_str(), "alice");
        assert_eq!(p.identity(&Actor::slack("UBOB")).as_str(), "slack:UBOB");
        assert_eq!(
            p.identity(&Actor::discord("UALICE")).as_str(),
            "discord:UALICE"
        );
    }

    #[test]
    fn an_approver_named_by_one_platform_id_may_approve_from_the_other() {
        let p = Policy::from_config(
            &[rule("restart-deployments", &["slack:UALICE"], 1)],
            &[alice()],
        )
        .unwrap();
        let r = p.rule(Action::RestartDeployments).unwrap();
        let d = Actor::discord("111");
        assert!(r.admits(&d, &p.identity(&d)));
    }

    #[test]
    fn discord_role_holders_may_approve_but_only_on_discord() {
        let p =
            Policy::from_config(&[rule("reconfigure-auth", &["discord-role:42"], 3)], &[]).unwrap();
        let r = p.rule(Action::ReconfigureAuth).unwrap();
        let holder = Actor::discord("7").with_roles(["1", "42"]);
        assert!(r.admits(&holder, &p.identity(&holder)));
        let other = Actor::discord("8").with_roles(["1"]);
        assert!(!r.admits(&other, &p.identity(&other)));
        let slack = Actor::slack("U7").with_roles(["42"]);
        assert!(!r.admits(&slack, &p.identity(&slack)));
    }

    #[test]
    fn an_unknown_action_is_a_config_error() {
        let err = Policy::from_config(&[rule("delete-vault", &["U1X"], 1)], &[]).unwrap_err();
        assert!(matches!(err, PolicyError::UnknownAction { .. }));
        assert!(
            err.to_string()
                .contains("reconfigure-auth, restart-deployments")
        );
    }

    #[test]
    fn required_zero_is_a_config_error() {
        let err = Policy::from_config(&[rule("reconfigure-auth", &["U1X"], 0)], &[]).unwrap_err();
        assert!(matches!(err, PolicyError::ZeroRequired { .. }));
    }

    #[test]
    fn required_beyond_the_distinct_approvers_is_a_config_error() {
        // alice by name, by Slack id and by Discord id is still one person.
        let err = Policy::from_config(
            &[rule(
                "reconfigure-auth",
                &["alice", "UALICE", "discord:111"],
                2,
            )],
            &[alice()],
        )
        .unwrap_err();
        assert_eq!(
            err,
            PolicyError::NotEnoughApprovers {
                action: "reconfigure-auth".to_owned(),
                required: 2,
                available: 1
            }
        );
    }

    #[test]
    fn unparsable_approver_entries_are_config_errors() {
        for entry in ["alcie", "teams:U1", "slack:", "u123"] {
            let err = Policy::from_config(&[rule("reconfigure-auth", &[entry], 1)], &[alice()])
                .unwrap_err();
            assert!(
                matches!(err, PolicyError::BadApprover { .. }),
                "{entry}: {err}"
            );
        }
    }

    #[test]
    fn two_rules_for_one_action_are_a_config_error() {
        let r = rule("reconfigure-auth", &["U1X"], 1);
        let err = Policy::from_config(&[r.clone(), r], &[]).unwrap_err();
        assert!(matches!(err, PolicyError::DuplicateRule { .. }));
    }

    #[test]
    fn one_account_shared_by_two_people_is_a_config_error() {
        let mut bob = alice();
        bob.name = "bob".to_owned();
        let err = Policy::from_config(&[], &[alice(), bob]).unwrap_err();
        assert!(matches!(err, PolicyError::BadPerson { .. }));
    }
}
