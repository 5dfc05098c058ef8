//! One approval request and its state machine (design §2 flow 3, §7), without I/O.
//!
//! Each transition is decided in two steps: `decide_*` looks at the request, the policy and
//! `now`, and returns the [`Change`] to make (if any) with the answer for the clicker; `apply`
//! makes the change. The store journals the change between the two, and replay feeds journaled
//! changes back through `apply`, so the live state and the replayed state cannot drift apart.

use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::policy::{Actor, PersonKey, Policy, Via};
use crate::diagnosis::Action;

/// The opaque id carried by Approve/Deny buttons: `req_` and 16 lower-case hex digits.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct RequestId(String);

/// A button value that is not a request id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a request id")]
pub struct InvalidRequestId;

impl RequestId {
    const PREFIX: &'static str = "req_";
    const HEX_LEN: usize = crate::id::HEX_LEN;

    /// A fresh, unguessable id.
    pub fn generate() -> Self {
        Self(crate::id::unguessable(Self::PREFIX))
    }

    /// Parses a button value.
    pub fn parse(s: &str) -> Result<Self, InvalidRequestId> {
        let hex_part = s.strip_prefix(Self::PREFIX).ok_or(InvalidRequestId)?;
        let valid = hex_part.len() == Self::HEX_LEN
            && hex_part
                .chars()
                .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c));
        if valid {
            Ok(Self(s.to_owned()))
        } else {
            Err(InvalidRequestId)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for RequestId {
    type Error = InvalidRequestId;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(&s)
    }
}

impl From<RequestId> for String {
    fn from(id: RequestId) -> String {
        id.0
    }
}

impl fmt::Display for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Where a request is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ApprovalState {
    /// No approval yet.
    Proposed,
    /// Some approvals, short of the quorum.
    PartiallyApproved,
    /// Quorum reached; waiting for the executor to start.
    Approved,
    Executing,
    Succeeded,
    Failed,
    Denied,
    Expired,
    /// Closed without running, e.g. the plan changed after it was shown.
    Invalidated,
}

impl ApprovalState {
    pub fn as_str(self) -> &'static str {
        match self {
            ApprovalState::Proposed => "waiting for approval",
            ApprovalState::PartiallyApproved => "partially approved",
            ApprovalState::Approved => "approved",
            ApprovalState::Executing => "running",
            ApprovalState::Succeeded => "done",
            ApprovalState::Failed => "failed",
            ApprovalState::Denied => "denied",
            ApprovalState::Expired => "expired",
            ApprovalState::Invalidated => "withdrawn because the plan changed",
        }
    }

    /// No further transition is possible.
    pub fn is_closed(self) -> bool {
        match self {
            ApprovalState::Proposed
            | ApprovalState::PartiallyApproved
            | ApprovalState::Approved
            | ApprovalState::Executing => false,
            ApprovalState::Succeeded
            | ApprovalState::Failed
            | ApprovalState::Denied
            | ApprovalState::Expired
            | ApprovalState::Invalidated => true,
        }
    }
}

impl fmt::Display for ApprovalState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Who decided, as which account, when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Decision {
    pub person: PersonKey,
    pub actor: Actor,
    pub at: DateTime<Utc>,
}

/// Who asked for the change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Requester {
    pub person: PersonKey,
    pub actor: Actor,
}

/// What the requester asks for: the caller's half of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewRequest {
    pub action: Action,
    /// The cluster whose auth mount or workloads the change touches (`default` without
    /// `[[clusters]]`).
    pub cluster: String,
    /// The plan fingerprint shown to approvers; the executor refuses if the plan no longer has it.
    pub fingerprint: String,
    pub incident: Option<String>,
    /// What will change, in words approvers read. Token-shaped words are masked.
    pub summary: String,
}

/// An approval request. It carries no secret: the summary is masked on creation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApprovalRequest {
    pub id: RequestId,
    pub action: Action,
    /// The cluster the change touches; requests of older releases read as `default`.
    #[serde(default = "default_cluster")]
    pub cluster: String,
    pub fingerprint: String,
    pub incident: Option<String>,
    pub summary: String,
    pub requester: Requester,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    /// Distinct approvers needed (the rule's value when the request was made).
    pub required: u32,
    pub approvals: Vec<Decision>,
    pub denial: Option<Decision>,
    pub state: ApprovalState,
    /// How it ended: the executor's detail, the invalidation reason, the restart note.
    pub outcome: Option<String>,
}

/// Why a click (or an executor call) changed nothing. The text is for chat.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("you requested this change; someone else must approve it")]
    SelfApproval,
    #[error("you are not on the approver list for {action}")]
    NotAnApprover { action: String },
    #[error("you have already approved this request; it needs someone else")]
    AlreadyApproved,
    #[error("this request expired at {at}; ask for a new one", at = .at.format("%Y-%m-%d %H:%M UTC"))]
    Expired { at: DateTime<Utc> },
    #[error("this request is {state} and takes no further decisions")]
    NotPending { state: ApprovalState },
    #[error("this request is unknown; it may be from before a reset, so ask for a new one")]
    UnknownRequest,
    #[error("no approval policy for {action}, so nobody may approve it")]
    NoPolicy { action: String },
    #[error(
        "you are on {approver} and the change was requested on {requester}: across platforms an approval counts only when both accounts are listed in [[people]] as different people"
    )]
    UnlistedAcrossPlatforms { approver: String, requester: String },
    #[error(
        "this can never be approved: it needs {required} approvals from people other than you, and the policy lists only {available}"
    )]
    QuorumUnreachable { required: u32, available: usize },
    /// The journal could not record the decision; the detail is for logs, not chat.
    #[error("the decision could not be recorded, so nothing changed; try again shortly")]
    NotRecorded { detail: String },
}

/// The answer to an approval that was recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Approval {
    /// Counted; the quorum is not reached yet.
    Recorded {
        have: u32,
        need: u32,
        /// Named approvers who have not approved (requester excluded), then role holders.
        waiting_on: Vec<String>,
    },
    /// This approval completed the quorum. Returned exactly once per request.
    QuorumReached { approvals: Vec<Decision> },
}

/// One state change, as journaled and replayed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    Granted(Decision),
    Denied(Decision),
    Started { at: DateTime<Utc> },
    Finished { ok: bool, detail: String },
    Expired,
    Invalidated { reason: String },
}

/// A decided transition: the change to make (if any) and the answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step<T> {
    pub change: Option<Change>,
    pub result: Result<T, Refusal>,
}

impl<T> Step<T> {
    fn refuse(refusal: Refusal) -> Self {
        Self {
            change: None,
            result: Err(refusal),
        }
    }

    fn expire(at: DateTime<Utc>) -> Self {
        Self {
            change: Some(Change::Expired),
            result: Err(Refusal::Expired { at }),
        }
    }
}

fn default_cluster() -> String {
    crate::config::DEFAULT_CLUSTER.to_string()
}

impl ApprovalRequest {
    /// A new request, or `NoPolicy` when nobody could ever approve it.
    pub fn new(
        new: NewRequest,
        requester: Actor,
        now: DateTime<Utc>,
        policy: &Policy,
    ) -> Result<ApprovalRequest, Refusal> {
        let rule = policy.rule(new.action).ok_or_else(|| Refusal::NoPolicy {
            action: new.action.as_str().to_owned(),
        })?;
        let person = policy.identity(&requester);
        rule.reachable_without(&person)
            .map_err(|(required, available)| Refusal::QuorumUnreachable {
                required,
                available,
            })?;
        Ok(ApprovalRequest {
            id: RequestId::generate(),
            action: new.action,
            cluster: new.cluster,
            fingerprint: new.fingerprint,
            incident: new.incident,
            summary: mask_tokens(&new.summary),
            requester: Requester {
                person,
                actor: requester,
            },
            created_at: now,
            expires_at: now + rule.expires_after(),
            required: rule.required(),
            approvals: Vec::new(),
            denial: None,
            state: ApprovalState::Proposed,
            outcome: None,
        })
    }

    fn is_due(&self, now: DateTime<Utc>) -> bool {
        now >= self.expires_at
    }

    fn no_policy(&self) -> Refusal {
        Refusal::NoPolicy {
            action: self.action.as_str().to_owned(),
        }
    }

    /// Decides an approval click.
    pub fn decide_approve(
        &self,
        actor: &Actor,
        now: DateTime<Utc>,
        policy: &Policy,
    ) -> Step<Approval> {
        match self.state {
            ApprovalState::Proposed | ApprovalState::PartiallyApproved => {
                if self.is_due(now) {
                    return Step::expire(self.expires_at);
                }
                let Some(rule) = policy.rule(self.action) else {
                    return Step::refuse(self.no_policy());
                };
                let person = policy.identity(actor);
                if person == self.requester.person {
                    return Step::refuse(Refusal::SelfApproval);
                }
                if !rule.admits(actor, &person) {
                    return Step::refuse(Refusal::NotAnApprover {
                        action: self.action.as_str().to_owned(),
                    });
                }
                // One human may hold accounts on several platforms: across platforms only
                // [[people]] tells whether approver and requester are two people. The bot's
                // own requests have no human requester to hide behind another account.
                let requested = self.requester.actor.via;
                if actor.via != requested
                    && requested != Via::Bot
                    && !(person.is_listed() && self.requester.person.is_listed())
                {
                    return Step::refuse(Refusal::UnlistedAcrossPlatforms {
                        approver: actor.via.to_string(),
                        requester: requested.to_string(),
                    });
                }
                if self.approvals.iter().any(|d| d.person == person) {
                    return Step::refuse(Refusal::AlreadyApproved);
                }
                let decision = Decision {
                    person,
                    actor: actor.clone(),
                    at: now,
                };
                let have = self.approvals.len() as u32 + 1;
                let result = if have >= self.required {
                    let mut approvals = self.approvals.clone();
                    approvals.push(decision.clone());
                    Approval::QuorumReached { approvals }
                } else {
                    let mut exclude: Vec<PersonKey> =
                        self.approvals.iter().map(|d| d.person.clone()).collect();
                    exclude.push(decision.person.clone());
                    exclude.push(self.requester.person.clone());
                    Approval::Recorded {
                        have,
                        need: self.required,
                        waiting_on: rule.candidates(&exclude),
                    }
                };
                Step {
                    change: Some(Change::Granted(decision)),
                    result: Ok(result),
                }
            }
            ApprovalState::Approved
            | ApprovalState::Executing
            | ApprovalState::Succeeded
            | ApprovalState::Failed
            | ApprovalState::Denied
            | ApprovalState::Invalidated => Step::refuse(Refusal::NotPending { state: self.state }),
            ApprovalState::Expired => Step::refuse(Refusal::Expired {
                at: self.expires_at,
            }),
        }
    }

    /// Decides a deny click: any approver may veto until execution starts, and the requester
    /// may withdraw.
    pub fn decide_deny(&self, actor: &Actor, now: DateTime<Utc>, policy: &Policy) -> Step<()> {
        match self.state {
            ApprovalState::Proposed
            | ApprovalState::PartiallyApproved
            | ApprovalState::Approved => {
                if self.is_due(now) {
                    return Step::expire(self.expires_at);
                }
                let person = policy.identity(actor);
                if person != self.requester.person {
                    let Some(rule) = policy.rule(self.action) else {
                        return Step::refuse(self.no_policy());
                    };
                    if !rule.admits(actor, &person) {
                        return Step::refuse(Refusal::NotAnApprover {
                            action: self.action.as_str().to_owned(),
                        });
                    }
                }
                Step {
                    change: Some(Change::Denied(Decision {
                        person,
                        actor: actor.clone(),
                        at: now,
                    })),
                    result: Ok(()),
                }
            }
            ApprovalState::Executing
            | ApprovalState::Succeeded
            | ApprovalState::Failed
            | ApprovalState::Denied
            | ApprovalState::Invalidated => Step::refuse(Refusal::NotPending { state: self.state }),
            ApprovalState::Expired => Step::refuse(Refusal::Expired {
                at: self.expires_at,
            }),
        }
    }

    /// Decides the executor's start: Approved → Executing, once, and only before expiry.
    pub fn decide_begin_execution(&self, now: DateTime<Utc>) -> Step<()> {
        match self.state {
            ApprovalState::Approved => {
                if self.is_due(now) {
                    return Step::expire(self.expires_at);
                }
                Step {
                    change: Some(Change::Started { at: now }),
                    result: Ok(()),
                }
            }
            ApprovalState::Proposed | ApprovalState::PartiallyApproved => {
                if self.is_due(now) {
                    return Step::expire(self.expires_at);
                }
                Step::refuse(Refusal::NotPending { state: self.state })
            }
            ApprovalState::Executing
            | ApprovalState::Succeeded
            | ApprovalState::Failed
            | ApprovalState::Denied
            | ApprovalState::Invalidated => Step::refuse(Refusal::NotPending { state: self.state }),
            ApprovalState::Expired => Step::refuse(Refusal::Expired {
                at: self.expires_at,
            }),
        }
    }

    /// Decides the end of an execution.
    pub fn decide_finish(&self, ok: bool, detail: &str) -> Step<()> {
        match self.state {
            ApprovalState::Executing => Step {
                change: Some(Change::Finished {
                    ok,
                    detail: detail.to_owned(),
                }),
                result: Ok(()),
            },
            ApprovalState::Proposed
            | ApprovalState::PartiallyApproved
            | ApprovalState::Approved
            | ApprovalState::Succeeded
            | ApprovalState::Failed
            | ApprovalState::Denied
            | ApprovalState::Expired
            | ApprovalState::Invalidated => Step::refuse(Refusal::NotPending { state: self.state }),
        }
    }

    /// Decides closing an open request without running it (e.g. the plan fingerprint changed).
    /// Invalidation: the world changed since the plan was shown. Also from `Executing`, where
    /// the executor, having claimed the run, re-probes and refuses before changing anything.
    pub fn decide_invalidate(&self, reason: &str) -> Step<()> {
        match self.state {
            ApprovalState::Proposed
            | ApprovalState::PartiallyApproved
            | ApprovalState::Approved
            | ApprovalState::Executing => Step {
                change: Some(Change::Invalidated {
                    reason: reason.to_owned(),
                }),
                result: Ok(()),
            },
            ApprovalState::Succeeded
            | ApprovalState::Failed
            | ApprovalState::Denied
            | ApprovalState::Expired
            | ApprovalState::Invalidated => Step::refuse(Refusal::NotPending { state: self.state }),
        }
    }

    /// Decides whether the request expires now. Requests that started running never expire.
    pub fn decide_expiry(&self, now: DateTime<Utc>) -> Option<Change> {
        match self.state {
            ApprovalState::Proposed
            | ApprovalState::PartiallyApproved
            | ApprovalState::Approved => self.is_due(now).then_some(Change::Expired),
            ApprovalState::Executing
            | ApprovalState::Succeeded
            | ApprovalState::Failed
            | ApprovalState::Denied
            | ApprovalState::Expired
            | ApprovalState::Invalidated => None,
        }
    }

    /// Makes a decided (or replayed) change.
    pub fn apply(&mut self, change: &Change) {
        match change {
            Change::Granted(decision) => {
                self.approvals.push(decision.clone());
                self.state = if self.approvals.len() as u32 >= self.required {
                    ApprovalState::Approved
                } else {
                    ApprovalState::PartiallyApproved
                };
            }
            Change::Denied(decision) => {
                self.denial = Some(decision.clone());
                self.state = ApprovalState::Denied;
            }
            Change::Started { .. } => self.state = ApprovalState::Executing,
            Change::Finished { ok, detail } => {
                self.state = if *ok {
                    ApprovalState::Succeeded
                } else {
                    ApprovalState::Failed
                };
                self.outcome = Some(detail.clone());
            }
            Change::Expired => self.state = ApprovalState::Expired,
            Change::Invalidated { reason } => {
                self.state = ApprovalState::Invalidated;
                self.outcome = Some(reason.clone());
            }
        }
    }

    fn run<T>(&mut self, step: Step<T>) -> Result<T, Refusal> {
        if let Some(change) = &step.change {
            self.apply(change);
        }
        step.result
    }

    /// Records an approval click.
    pub fn approve(
        &mut self,
        actor: &Actor,
        now: DateTime<Utc>,
        policy: &Policy,
    ) -> Result<Approval, Refusal> {
        let step = self.decide_approve(actor, now, policy);
        self.run(step)
    }

    /// Records a deny click (veto or withdrawal).
    pub fn deny(
        &mut self,
        actor: &Actor,
        now: DateTime<Utc>,
        policy: &Policy,
    ) -> Result<(), Refusal> {
        let step = self.decide_deny(actor, now, policy);
        self.run(step)
    }

    /// Approved → Executing, exactly once.
    pub fn begin_execution(&mut self, now: DateTime<Utc>) -> Result<(), Refusal> {
        let step = self.decide_begin_execution(now);
        self.run(step)
    }

    /// Executing → Succeeded or Failed.
    pub fn finish(&mut self, ok: bool, detail: &str) -> Result<(), Refusal> {
        let step = self.decide_finish(ok, detail);
        self.run(step)
    }

    /// Closes an open request without running it.
    pub fn invalidate(&mut self, reason: &str) -> Result<(), Refusal> {
        let step = self.decide_invalidate(reason);
        self.run(step)
    }

    /// Expires the request if it is open and due; true when it expired now.
    pub fn expire_if_due(&mut self, now: DateTime<Utc>) -> bool {
        match self.decide_expiry(now) {
            Some(change) => {
                self.apply(&change);
                true
            }
            None => false,
        }
    }
}

/// Masks words that look like a JWT or a Vault token, so a careless summary cannot carry one.
pub fn mask_tokens(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut word = String::new();
    let flush = |word: &mut String, out: &mut String| {
        if looks_like_token(word) {
            out.push_str("***");
        } else {
            out.push_str(word);
        }
        word.clear();
    };
    for c in text.chars() {
        if c.is_whitespace() || matches!(c, '"' | '\'' | '`' | ',' | ';' | '(' | ')') {
            flush(&mut word, &mut out);
            out.push(c);
        } else {
            word.push(c);
        }
    }
    flush(&mut word, &mut out);
    out
}

fn looks_like_token(word: &str) -> bool {
    let jwt = word.starts_with("eyJ") && word.matches('.').count() >= 2 && word.len() > 20;
    let vault = ["hvs.", "hvb.", "hvr.", "s."]
        .iter()
        .any(|p| word.starts_with(p) && word.len() >= 20);
    jwt || vault
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{ApprovalRule, Person};
    use std::time::Duration;

    fn t(minute: u32) -> DateTime<Utc> {
        use chrono::TimeZone;
        Utc.with_ymd_and_hms(2030, 1, 1, 9, minute, 0).unwrap()
    }

    fn people() -> Vec<Person> {
        [("alice", "1110"), ("bob", "2220"), ("carol", "3330")]
            .iter()
            .map(|(n, discord)| Person {
                name: n.to_string(),
                slack: Some(format!("U{}", n.to_uppercase())),
                discord: Some(discord.to_string()),
            })
            .collect()
    }

    fn policy(required: u32) -> Policy {
        Policy::from_config(
            &[ApprovalRule {
                action: "reconfigure-auth".to_owned(),
                approvers: vec![
                    "alice".into(),
                    "bob".into(),
                    "carol".into(),
                    "discord-role:ops".into(),
                ],
                required,
                expires_after: Duration::from_secs(15 * 60),
            }],
            &people(),
        )
        .unwrap()
    }

    fn request(policy: &Policy, requester: Actor) -> ApprovalRequest {
        ApprovalRequest::new(
            NewRequest {
                action: Action::ReconfigureAuth,
                cluster: "default".into(),
                fingerprint: "fp1".into(),
                incident: Some("INC-1".into()),
                summary: "rewrite auth/kubernetes/config".into(),
            },
            requester,
            t(0),
            policy,
        )
        .unwrap()
    }

    #[test]
    fn approval_from_the_requester_is_refused() {
        let p = policy(1);
        let mut r = request(&p, Actor::slack("UALICE"));
        assert_eq!(
            r.approve(&Actor::slack("UALICE"), t(1), &p),
            Err(Refusal::SelfApproval)
        );
        assert_eq!(r.state, ApprovalState::Proposed);
    }

    #[test]
    fn approval_from_the_requesters_other_platform_is_refused() {
        let p = policy(1);
        let mut r = request(&p, Actor::slack("UALICE"));
        assert_eq!(
            r.approve(&Actor::discord("1110"), t(1), &p),
            Err(Refusal::SelfApproval)
        );
    }

    #[test]
    fn approval_from_someone_not_listed_is_refused() {
        let p = policy(1);
        let mut r = request(&p, Actor::slack("UALICE"));
        let err = r.approve(&Actor::slack("UMALLORY"), t(1), &p).unwrap_err();
        assert_eq!(
            err,
            Refusal::NotAnApprover {
                action: "reconfigure-auth".into()
            }
        );
        assert_eq!(
            err.to_string(),
            "you are not on the approver list for reconfigure-auth"
        );
    }

    #[test]
    fn quorum_counts_people_not_accounts() {
        let p = policy(2);
        let mut r = request(&p, Actor::slack("UALICE"));
        let first = r.approve(&Actor::slack("UBOB"), t(1), &p).unwrap();
        assert_eq!(
            first,
            Approval::Recorded {
                have: 1,
                need: 2,
                waiting_on: vec!["carol".into(), "a holder of Discord role ops".into()]
            }
        );
        assert_eq!(r.state, ApprovalState::PartiallyApproved);
        // bob again, from Discord: the same person.
        assert_eq!(
            r.approve(&Actor::discord("2220"), t(2), &p),
            Err(Refusal::AlreadyApproved)
        );
        assert_eq!(r.approvals.len(), 1);
        let second = r.approve(&Actor::slack("UCAROL"), t(3), &p).unwrap();
        assert!(
            matches!(second, Approval::QuorumReached { ref approvals } if approvals.len() == 2)
        );
        assert_eq!(r.state, ApprovalState::Approved);
    }

    #[test]
    fn quorum_is_reported_once() {
        let p = policy(1);
        let mut r = request(&p, Actor::slack("UALICE"));
        assert!(matches!(
            r.approve(&Actor::slack("UBOB"), t(1), &p),
            Ok(Approval::QuorumReached { .. })
        ));
        assert_eq!(
            r.approve(&Actor::slack("UCAROL"), t(1), &p),
            Err(Refusal::NotPending {
                state: ApprovalState::Approved
            })
        );
    }

    #[test]
    fn a_discord_role_holder_counts_as_an_approver_of_a_discord_request() {
        let p = policy(1);
        let mut r = request(&p, Actor::discord("1110"));
        let dave = Actor::discord("999").with_roles(["ops"]);
        assert!(matches!(
            r.approve(&dave, t(1), &p),
            Ok(Approval::QuorumReached { .. })
        ));
        assert_eq!(r.approvals[0].person.as_str(), "discord:999");
    }

    #[test]
    fn an_unlisted_account_on_another_platform_does_not_count() {
        // alice asked on Slack; a role holder on Discord nobody listed could be alice herself.
        let p = policy(1);
        let mut r = request(&p, Actor::slack("UALICE"));
        let dave = Actor::discord("999").with_roles(["ops"]);
        assert_eq!(
            r.approve(&dave, t(1), &p),
            Err(Refusal::UnlistedAcrossPlatforms {
                approver: "discord".into(),
                requester: "slack".into()
            })
        );
        assert!(r.approvals.is_empty());
        // A listed person on the other platform counts.
        assert!(matches!(
            r.approve(&Actor::discord("2220"), t(1), &p),
            Ok(Approval::QuorumReached { .. })
        ));
    }

    #[test]
    fn an_unlisted_requester_cannot_be_approved_from_another_platform() {
        // U0MALLORY is a bare Slack approver; nobody knows who she is on Discord.
        let rule = |approvers: &[&str]| ApprovalRule {
            action: "reconfigure-auth".to_owned(),
            approvers: approvers.iter().map(|a| a.to_string()).collect(),
            required: 1,
            expires_after: Duration::from_secs(900),
        };
        let p =
            Policy::from_config(&[rule(&["U0MALLORY", "discord-role:ops"])], &people()).unwrap();
        let mut r = request(&p, Actor::slack("U0MALLORY"));
        assert!(matches!(
            r.approve(&Actor::discord("999").with_roles(["ops"]), t(1), &p),
            Err(Refusal::UnlistedAcrossPlatforms { .. })
        ));
        // The same account's own platform follows the usual rules.
        assert_eq!(
            r.approve(&Actor::slack("U0MALLORY"), t(1), &p),
            Err(Refusal::SelfApproval)
        );
    }

    #[test]
    fn the_bots_own_request_may_be_approved_from_any_platform() {
        let p = policy(1);
        let mut r = request(&p, Actor::bot("reviewer watch"));
        assert!(matches!(
            r.approve(&Actor::discord("999").with_roles(["ops"]), t(1), &p),
            Ok(Approval::QuorumReached { .. })
        ));
    }

    #[test]
    fn a_request_whose_quorum_cannot_be_reached_is_refused_when_proposed() {
        let rule = ApprovalRule {
            action: "reconfigure-auth".to_owned(),
            approvers: vec!["alice".into(), "bob".into()],
            required: 2,
            expires_after: Duration::from_secs(900),
        };
        let p = Policy::from_config(&[rule], &people()).unwrap();
        let new = || NewRequest {
            action: Action::ReconfigureAuth,
            cluster: "default".into(),
            fingerprint: "fp1".into(),
            incident: None,
            summary: "x".into(),
        };
        assert_eq!(
            ApprovalRequest::new(new(), Actor::slack("UALICE"), t(0), &p),
            Err(Refusal::QuorumUnreachable {
                required: 2,
                available: 1
            })
        );
        // carol is not an approver, so alice and bob can still approve her request.
        assert!(ApprovalRequest::new(new(), Actor::slack("UCAROL"), t(0), &p).is_ok());
        assert_eq!(p.warnings().len(), 1, "{:?}", p.warnings());
        assert!(p.warnings()[0].contains("can never be approved"));
    }

    #[test]
    fn a_deny_vetoes_the_request() {
        let p = policy(2);
        let mut r = request(&p, Actor::slack("UALICE"));
        r.approve(&Actor::slack("UBOB"), t(1), &p).unwrap();
        r.deny(&Actor::slack("UCAROL"), t(2), &p).unwrap();
        assert_eq!(r.state, ApprovalState::Denied);
        assert_eq!(r.denial.as_ref().unwrap().person.as_str(), "carol");
        assert_eq!(
            r.approve(&Actor::discord("1110").with_roles(["ops"]), t(3), &p),
            Err(Refusal::NotPending {
                state: ApprovalState::Denied
            })
        );
        assert!(r.begin_execution(t(3)).is_err());
    }

    #[test]
    fn the_requester_may_withdraw_but_a_stranger_may_not_deny() {
        let p = policy(2);
        let mut r = request(&p, Actor::slack("UALICE"));
        assert!(matches!(
            r.deny(&Actor::slack("UMALLORY"), t(1), &p),
            Err(Refusal::NotAnApprover { .. })
        ));
        r.deny(&Actor::discord("1110"), t(1), &p).unwrap();
        assert_eq!(r.state, ApprovalState::Denied);
    }

    #[test]
    fn an_expired_request_refuses_every_click() {
        let p = policy(1);
        let mut r = request(&p, Actor::slack("UALICE"));
        let late = t(15);
        assert_eq!(
            r.approve(&Actor::slack("UBOB"), late, &p),
            Err(Refusal::Expired { at: t(15) })
        );
        assert_eq!(r.state, ApprovalState::Expired);
        for actor in [
            Actor::slack("UBOB"),
            Actor::slack("UCAROL"),
            Actor::slack("UALICE"),
        ] {
            assert!(matches!(
                r.approve(&actor, t(1), &p),
                Err(Refusal::Expired { .. })
            ));
            assert!(matches!(
                r.deny(&actor, t(1), &p),
                Err(Refusal::Expired { .. })
            ));
        }
        assert!(matches!(
            r.begin_execution(t(1)),
            Err(Refusal::Expired { .. })
        ));
    }

    #[test]
    fn an_approved_request_that_was_never_started_expires() {
        let p = policy(1);
        let mut r = request(&p, Actor::slack("UALICE"));
        r.approve(&Actor::slack("UBOB"), t(1), &p).unwrap();
        assert!(!r.expire_if_due(t(14)));
        assert!(r.expire_if_due(t(16)));
        assert_eq!(r.state, ApprovalState::Expired);
        assert!(matches!(
            r.begin_execution(t(16)),
            Err(Refusal::Expired { .. })
        ));
    }

    #[test]
    fn execution_begins_once_and_finishes_once() {
        let p = policy(1);
        let mut r = request(&p, Actor::slack("UALICE"));
        assert!(r.begin_execution(t(1)).is_err(), "not approved yet");
        r.approve(&Actor::slack("UBOB"), t(1), &p).unwrap();
        r.begin_execution(t(2)).unwrap();
        assert_eq!(
            r.begin_execution(t(2)),
            Err(Refusal::NotPending {
                state: ApprovalState::Executing
            })
        );
        assert!(!r.expire_if_due(t(59)), "a running request does not expire");
        r.finish(true, "canary login works").unwrap();
        assert_eq!(r.state, ApprovalState::Succeeded);
        assert_eq!(r.outcome.as_deref(), Some("canary login works"));
        assert!(r.finish(false, "again").is_err());
    }

    #[test]
    fn an_invalidated_request_cannot_run() {
        let p = policy(1);
        let mut r = request(&p, Actor::slack("UALICE"));
        r.approve(&Actor::slack("UBOB"), t(1), &p).unwrap();
        r.invalidate("the plan changed").unwrap();
        assert_eq!(r.state, ApprovalState::Invalidated);
        assert!(r.begin_execution(t(2)).is_err());
    }

    #[test]
    fn an_action_without_a_rule_cannot_be_requested_or_approved() {
        let p = policy(1);
        let err = ApprovalRequest::new(
            NewRequest {
                action: Action::RestartDeployments,
                cluster: "default".into(),
                fingerprint: "fp".into(),
                incident: None,
                summary: "restart".into(),
            },
            Actor::slack("UALICE"),
            t(0),
            &p,
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "no approval policy for restart-deployments, so nobody may approve it"
        );
        // A request made under an older policy is refused once its rule is gone.
        let mut r = request(&p, Actor::slack("UALICE"));
        assert!(matches!(
            r.approve(&Actor::slack("UBOB"), t(1), &Policy::default()),
            Err(Refusal::NoPolicy { .. })
        ));
    }

    #[test]
    fn request_ids_parse_and_are_not_sequential() {
        let a = RequestId::generate();
        let b = RequestId::generate();
        assert_ne!(a, b);
        assert_eq!(RequestId::parse(a.as_str()), Ok(a.clone()));
        assert_eq!(a.as_str().len(), 20);
        assert_ne!(a.as_str()[4..19], b.as_str()[4..19]);
        for bad in [
            "req_123",
            "REQ_0123456789abcdef",
            "req_0123456789ABCDEF",
            "x",
        ] {
            assert!(RequestId::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn tokens_in_a_summary_are_masked() {
        let s = mask_tokens(
            "set token_reviewer_jwt=x eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln and hvs.CAESIabcdefghijklmnop",
        );
        assert_eq!(s, "set token_reviewer_jwt=x *** and ***");
    }
}
