//! The approval path under attack, through the real edges: signed Slack requests into
//! `/slack/*` and signed Discord interactions into `/discord/interactions`, one bot behind
//! both (the app as `serve` builds it), the lab as Vault and Kubernetes. Where the clock must
//! be set (expiry), the fixes service is driven directly with an explicit `now`.
//!
//! Each test is one attack: a replayed click, a forged or unlisted user, a click on an expired
//! or invalidated request, a requester approving from their other platform account, a forged
//! button value. Each asserts what the attacker was told, that the request did not move, and
//! that nothing ran against Vault or Kubernetes.

use std::time::Duration;

use serde_json::{Value, json};
use vault_triage::approval::{Actor, ApprovalRequest, ApprovalState, Refusal, RequestId};
use vault_triage::config::{ApprovalRule, FileConfig};
use vault_triage::diagnosis::Action;

use crate::support::discord as discord_support;
use crate::support::slack as slack_fake;
use crate::support::{Options, TestApp};

/// Every wait for the bot is bounded by this.
const WAIT: Duration = Duration::from_secs(90);
const FORM: &str = "application/x-www-form-urlencoded";

/// alice, bob and carol each have a Slack and a Discord account; mallory is nobody.
const ALICE_SLACK: &str = "U0ALICE";
const BOB_SLACK: &str = "U0BOB";
const CAROL_SLACK: &str = "U0CAROL";
const MALLORY_SLACK: &str = "U0MALLORY";

struct Setup {
    app: TestApp,
}

/// The app against the lab, Slack and Discord both on: alice, bob and carol each have a
/// Slack and a Discord account (the harness's default policy).
async fn setup() -> Setup {
    setup_with(|_| {}).await
}

/// As [`setup`], with `configure`'s changes to the policy.
async fn setup_with(configure: fn(&mut FileConfig)) -> Setup {
    let app = TestApp::with(Options {
        configure,
        ..Options::default()
    })
    .await;
    for (_, slack, discord) in crate::support::app::PEOPLE {
        assert!([ALICE_SLACK, BOB_SLACK, CAROL_SLACK].contains(&slack));
        assert!(
            [
                discord_support::ALICE,
                discord_support::BOB,
                discord_support::CAROL
            ]
            .contains(&discord)
        );
    }
    Setup { app }
}

/// An approval card on Slack: its request, its Approve/Deny values and where it lives.
struct Card {
    request: RequestId,
    approve: String,
    deny: String,
    ts: String,
    summary_ts: String,
}

impl Setup {
    /// alice runs `/vault-triage` and asks for the reviewer rotation; the card is posted.
    async fn card(&self) -> Card {
        let r = self
            .app
            .slack_bot
            .command(ALICE_SLACK, "", &self.app.slack.response_url("cmd"))
            .await;
        assert_eq!(r.status(), 200);
        let summary = self
            .app
            .slack
            .wait_for("the summary", WAIT, |c| {
                slack_fake::post_where(c, |b| {
                    b.get("thread_ts").is_none()
                        && b["text"]
                            .as_str()
                            .unwrap_or_default()
                            .contains("reviewer token expired")
                })
            })
            .await;
        let summary_ts = summary.ts.clone().unwrap();
        let rotate = slack_fake::buttons(&summary.body)[0].1.clone();
        assert!(
            rotate.starts_with("vt:propose:rotate-reviewer:"),
            "{rotate}"
        );
        let r = self
            .app
            .slack_bot
            .click(
                ALICE_SLACK,
                &rotate,
                &summary_ts,
                None,
                &self.app.slack.response_url("propose"),
            )
            .await;
        assert_eq!(r.status(), 200);
        let card = self
            .app
            .slack
            .wait_for("the approval card", WAIT, |c| {
                slack_fake::post_where(c, |b| b["thread_ts"] == summary_ts.as_str())
            })
            .await;
        let button = |prefix: &str| {
            slack_fake::buttons(&card.body)
                .into_iter()
                .map(|(_, id)| id)
                .find(|id| id.starts_with(prefix))
                .unwrap_or_else(|| panic!("no {prefix} button: {}", card.body))
        };
        let approve = button("vt:approve:");
        let request = RequestId::parse(approve.trim_start_matches("vt:approve:")).unwrap();
        Card {
            request,
            approve,
            deny: button("vt:deny:"),
            ts: card.ts.unwrap(),
            summary_ts,
        }
    }

    fn request(&self, id: &RequestId) -> ApprovalRequest {
        self.app
            .services()
            .fixes
            .request(id)
            .expect("the request exists")
    }

    /// The exact body of a click on `card`, as Slack would send it.
    fn click_body(&self, user: &str, action: &str, card: &Card, reply: &str) -> String {
        slack_fake::click_form(
            user,
            action,
            &card.ts,
            Some(&card.summary_ts),
            &self.app.slack.response_url(reply),
        )
    }

    /// POSTs `body` to `/slack/interactions` with the headers given (a replay sends the
    /// same ones again).
    async fn send_slack(&self, body: &str, headers: &[(&str, String)]) -> reqwest::Response {
        let mut req = self
            .app
            .slack_bot
            .http
            .post(format!("{}/slack/interactions", self.app.url()))
            .header("content-type", FORM)
            .body(body.to_string());
        for (k, v) in headers {
            req = req.header(*k, v);
        }
        req.send().await.unwrap()
    }

    /// Signs `body` now with the real signing secret.
    fn signed_now(body: &str) -> Vec<(&'static str, String)> {
        let ts = slack_fake::now().to_string();
        let sig = slack_fake::sign(slack_fake::SIGNING_SECRET, &ts, body);
        vec![
            ("x-slack-request-timestamp", ts),
            ("x-slack-signature", sig),
        ]
    }

    /// What the bot told the clicker through `respond/{reply}`.
    async fn told(&self, reply: &str) -> String {
        let method = format!("respond/{reply}");
        let call = self
            .app
            .slack
            .wait_for(&method, WAIT, |c| {
                c.iter().find(|c| c.method == method).cloned()
            })
            .await;
        assert_eq!(call.body["response_type"], "ephemeral", "{}", call.body);
        call.body["text"].as_str().unwrap_or_default().to_string()
    }

    /// Slack Web API calls after the first `since` (ephemeral answers excluded).
    fn slack_posts_since(&self, since: usize) -> Vec<slack_fake::Call> {
        self.app.slack.calls()[since..]
            .iter()
            .filter(|c| !c.method.starts_with("respond/"))
            .cloned()
            .collect()
    }

    /// Reviewer tokens minted and auth config writes so far: what a fix would change.
    fn changes_to_the_world(&self) -> (usize, Value) {
        let minted = self
            .app
            .lab
            .kube_requests()
            .iter()
            .filter(|r| r.method == "POST" && r.path.ends_with("/serviceaccounts/vault-auth/token"))
            .count();
        (
            minted,
            self.app.lab.vault_auth_config().unwrap_or(Value::Null),
        )
    }

    /// bob and carol approve by Slack; waits for the fix to finish. Returns the two signed
    /// requests as sent.
    async fn approve_to_completion(&self, card: &Card) -> Vec<SignedClick> {
        let mut sent = Vec::new();
        for (user, reply) in [(BOB_SLACK, "bob"), (CAROL_SLACK, "carol")] {
            let body = self.click_body(user, &card.approve, card, reply);
            let headers = Self::signed_now(&body);
            let r = self.send_slack(&body, &headers).await;
            assert_eq!(r.status(), 200);
            sent.push(SignedClick {
                body,
                headers,
                reply,
            });
            if user == BOB_SLACK {
                self.app
                    .slack
                    .wait_for("bob's approval on the card", WAIT, |c| {
                        c.iter()
                            .find(|c| {
                                c.method == "chat.update"
                                    && slack_fake::all_text(&c.body).contains("1 so far")
                            })
                            .cloned()
                    })
                    .await;
            }
        }
        self.wait_for_state(&card.request, |s| s.is_closed()).await;
        sent
    }

    /// Waits until the bot's work is done, then the request must be where `done` says.
    async fn wait_for_state(&self, id: &RequestId, done: impl Fn(ApprovalState) -> bool) {
        self.app.settle().await;
        let state = self.request(id).state;
        assert!(done(state), "request stuck in {state:?}");
    }
}

/// A click exactly as it went over the wire.
struct SignedClick {
    body: String,
    headers: Vec<(&'static str, String)>,
    reply: &'static str,
}

/// A Discord click by `user` on the Slack card's approve value, signed with Discord's key.
fn discord_click(token: &str, user: &str, custom_id: &str) -> Value {
    let clicked = discord_support::message(
        &discord_support::snowflake(),
        discord_support::CHANNEL,
        &json!({"embeds": [{"title": "Reconfigure Vault auth"}]}),
    );
    discord_support::click(token, user, custom_id, clicked, 0)
}

// ---------------------------------------------------------------------------------------------
// Replays
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_signed_click_delivered_twice_counts_once() {
    let s = setup().await;
    let card = s.card().await;
    let body = s.click_body(BOB_SLACK, &card.approve, &card, "bob");
    let headers = Setup::signed_now(&body);

    let r = s.send_slack(&body, &headers).await;
    assert_eq!(r.status(), 200);
    s.app
        .slack
        .wait_for("bob's approval on the card", WAIT, |c| {
            c.iter()
                .find(|c| {
                    c.method == "chat.update" && slack_fake::all_text(&c.body).contains("1 so far")
                })
                .cloned()
        })
        .await;
    // The identical request again, inside Slack's five-minute window: the signature verifies.
    let r = s.send_slack(&body, &headers).await;
    assert_eq!(r.status(), 200);
    let text = s.told("bob").await;
    assert!(
        text.contains("you have already approved this request"),
        "{text}"
    );
    let request = s.request(&card.request);
    assert_eq!(request.approvals.len(), 1);
    assert_eq!(request.state, ApprovalState::PartiallyApproved);
    assert_eq!(
        s.app.said().await.slack_methods(),
        [
            "chat.postMessage",
            "chat.postMessage",
            "chat.update",
            "respond/bob"
        ]
    );
    s.app.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn approval_clicks_replayed_after_the_fix_ran_change_nothing() {
    let s = setup().await;
    let card = s.card().await;
    let sent = s.approve_to_completion(&card).await;
    let done = s.request(&card.request);
    assert_eq!(done.state, ApprovalState::Succeeded, "{:?}", done.outcome);
    let world = s.changes_to_the_world();
    assert_eq!(world.0, 1, "the fix minted one reviewer token");
    let calls = s.app.slack.calls().len();

    // Both approvals, replayed byte for byte with their original signatures (still inside
    // Slack's five-minute window, so they verify), and a deny on top.
    for click in &sent {
        let r = s.send_slack(&click.body, &click.headers).await;
        assert_eq!(r.status(), 200);
        let text = s.told(click.reply).await;
        assert!(
            text.contains("this request is done and takes no further decisions"),
            "{text}"
        );
    }
    let body = s.click_body(CAROL_SLACK, &card.deny, &card, "late-deny");
    s.send_slack(&body, &Setup::signed_now(&body)).await;
    let text = s.told("late-deny").await;
    assert!(text.contains("takes no further decisions"), "{text}");

    s.app.settle().await;
    assert_eq!(s.request(&card.request), done, "the request did not move");
    assert_eq!(s.changes_to_the_world(), world, "nothing ran again");
    assert!(
        s.slack_posts_since(calls).is_empty(),
        "nothing was posted: {:?}",
        s.slack_posts_since(calls)
    );
    crate::support::app::assert_said_around(
        &s.app.said().await.slack_methods(),
        &[
            "chat.postMessage",
            "chat.postMessage",
            "chat.update",
            "chat.update",
        ],
        "chat.postMessage",
        &[
            "chat.update",
            "chat.postMessage",
            "respond/bob",
            "respond/carol",
            "respond/late-deny",
        ],
    );
    s.app.finish().await;
}

// ---------------------------------------------------------------------------------------------
// Forged users
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unsigned_click_claiming_to_be_an_approver_is_refused_with_401() {
    let s = setup().await;
    let card = s.card().await;
    let calls = s.app.slack.calls().len();
    let body = s.click_body(BOB_SLACK, &card.approve, &card, "forged");
    let r = s.send_slack(&body, &[]).await;
    assert_eq!(r.status(), 401);
    // Only a timestamp, or a signature without one.
    let ts = slack_fake::now().to_string();
    let r = s
        .send_slack(&body, &[("x-slack-request-timestamp", ts)])
        .await;
    assert_eq!(r.status(), 401);
    let sig = slack_fake::sign(slack_fake::SIGNING_SECRET, "", &body);
    let r = s.send_slack(&body, &[("x-slack-signature", sig)]).await;
    assert_eq!(r.status(), 401);

    // Discord: no signature headers.
    let raw = discord_click("tok-forged", discord_support::BOB, &card.approve).to_string();
    let (status, _, _) = discord_support::post_raw(s.app.url(), raw, None, None).await;
    assert_eq!(status, 401);

    s.app.settle().await;
    assert!(s.request(&card.request).approvals.is_empty());
    assert_eq!(s.app.slack.calls().len(), calls, "nothing was said");
    assert!(s.app.discord.calls().is_empty(), "nothing was said");
    assert_eq!(
        s.app.said().await.slack_methods(),
        ["chat.postMessage", "chat.postMessage"]
    );
    s.app.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrongly_signed_click_claiming_to_be_an_approver_is_refused_with_401() {
    let s = setup().await;
    let card = s.card().await;
    let calls = s.app.slack.calls().len();

    // Signed with another secret.
    let body = s.click_body(BOB_SLACK, &card.approve, &card, "forged");
    let ts = slack_fake::now().to_string();
    let sig = slack_fake::sign("not-the-signing-secret", &ts, &body);
    let r = s
        .send_slack(
            &body,
            &[
                ("x-slack-request-timestamp", ts),
                ("x-slack-signature", sig),
            ],
        )
        .await;
    assert_eq!(r.status(), 401);

    // mallory's own, correctly signed click, with her user id swapped for bob's.
    let mallory = s.click_body(MALLORY_SLACK, &card.approve, &card, "forged");
    let headers = Setup::signed_now(&mallory);
    let swapped = mallory
        .replace(MALLORY_SLACK, BOB_SLACK)
        .replace(&MALLORY_SLACK.to_lowercase(), &BOB_SLACK.to_lowercase());
    assert_ne!(swapped, mallory);
    let r = s.send_slack(&swapped, &headers).await;
    assert_eq!(r.status(), 401);

    // Discord: bob's click signed with a key that is not the application's.
    let raw = discord_click("tok-forged", discord_support::BOB, &card.approve).to_string();
    let ts = discord_support::now().to_string();
    let other_key = ed25519_dalek::SigningKey::from_bytes(&[9; 32]);
    let mut msg = ts.as_bytes().to_vec();
    msg.extend_from_slice(raw.as_bytes());
    let sig = hex::encode(ed25519_dalek::Signer::sign(&other_key, &msg).to_bytes());
    let (status, _, _) =
        discord_support::post_raw(s.app.url(), raw.clone(), Some(&sig), Some(&ts)).await;
    assert_eq!(status, 401);
    // A signature Discord made for another body (mallory's click), on bob's.
    let mallory_raw = discord_click("tok-forged", "1666", &card.approve).to_string();
    let sig = discord_support::sign(&ts, mallory_raw.as_bytes());
    let (status, _, _) = discord_support::post_raw(s.app.url(), raw, Some(&sig), Some(&ts)).await;
    assert_eq!(status, 401);

    s.app.settle().await;
    assert!(s.request(&card.request).approvals.is_empty());
    assert_eq!(s.app.slack.calls().len(), calls, "nothing was said");
    assert!(s.app.discord.calls().is_empty(), "nothing was said");
    assert_eq!(
        s.app.said().await.slack_methods(),
        ["chat.postMessage", "chat.postMessage"]
    );
    s.app.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signed_click_from_someone_not_in_the_policy_is_refused() {
    let s = setup().await;
    let card = s.card().await;
    let before = s.request(&card.request);

    let body = s.click_body(MALLORY_SLACK, &card.approve, &card, "mallory");
    let r = s.send_slack(&body, &Setup::signed_now(&body)).await;
    assert_eq!(r.status(), 200, "the click itself is genuine");
    let text = s.told("mallory").await;
    assert!(
        text.contains("you are not on the approver list for reconfigure-auth"),
        "{text}"
    );
    // Nor may she veto.
    let body = s.click_body(MALLORY_SLACK, &card.deny, &card, "mallory-deny");
    s.send_slack(&body, &Setup::signed_now(&body)).await;
    let text = s.told("mallory-deny").await;
    assert!(text.contains("not on the approver list"), "{text}");

    // Someone on Discord who is not listed, holding a guild role, is refused too.
    let (status, _, _) = discord_support::post_signed(
        s.app.url(),
        &discord_click("tok-stranger", "1666", &card.approve),
    )
    .await;
    assert_eq!(status, 200);
    let told = s
        .app
        .discord
        .wait_for("the stranger's refusal", 1, |c| {
            c.is(
                "POST",
                &format!("/webhooks/{}/tok-stranger", discord_support::APP),
                "",
            )
        })
        .await
        .remove(0);
    assert!(
        told.body["content"]
            .as_str()
            .unwrap_or_default()
            .contains("not on the approver list"),
        "{}",
        told.body
    );

    s.app.settle().await;
    assert_eq!(s.request(&card.request), before, "the request did not move");
    let said = s.app.said().await;
    assert_eq!(
        said.slack_methods(),
        [
            "chat.postMessage",
            "chat.postMessage",
            "respond/mallory",
            "respond/mallory-deny"
        ]
    );
    assert_eq!(said.discord_shapes(), ["POST /webhooks/<id>/tok-stranger"]);
    s.app.finish().await;
}

// ---------------------------------------------------------------------------------------------
// Expired and invalidated requests
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_click_on_an_expired_request_is_refused_and_runs_nothing() {
    let s = setup().await;
    let card = s.card().await;
    let fixes = &s.app.services().fixes;
    let world = s.changes_to_the_world();
    let request = s.request(&card.request);

    // bob approves one second after the expiry.
    let late = request.expires_at + chrono::TimeDelta::seconds(1);
    let refused = fixes
        .approve(&card.request, &Actor::slack(BOB_SLACK), late, &|_| {})
        .await;
    assert!(
        matches!(refused, Err(Refusal::Expired { at }) if at == request.expires_at),
        "{refused:?}"
    );
    assert_eq!(s.request(&card.request).state, ApprovalState::Expired);
    // Exactly at the expiry is already too late, for another approver.
    assert!(matches!(
        fixes
            .approve(
                &card.request,
                &Actor::slack(CAROL_SLACK),
                request.expires_at,
                &|_| {}
            )
            .await,
        Err(Refusal::Expired { .. })
    ));

    // Once expired, clicks with the real clock are refused as well: through Slack…
    for (user, reply) in [(BOB_SLACK, "bob"), (CAROL_SLACK, "carol")] {
        let body = s.click_body(user, &card.approve, &card, reply);
        s.send_slack(&body, &Setup::signed_now(&body)).await;
        let text = s.told(reply).await;
        assert!(text.contains("this request expired at"), "{text}");
    }
    // …and through Discord.
    let (status, _, _) = discord_support::post_signed(
        s.app.url(),
        &discord_click("tok-late", discord_support::CAROL, &card.approve),
    )
    .await;
    assert_eq!(status, 200);
    s.app
        .discord
        .wait_for("carol's refusal", 1, |c| {
            c.is(
                "POST",
                &format!("/webhooks/{}/tok-late", discord_support::APP),
                "",
            ) && c.body["content"]
                .as_str()
                .unwrap_or_default()
                .contains("expired")
        })
        .await;
    s.app.settle().await;
    let after = s.request(&card.request);
    assert_eq!(after.state, ApprovalState::Expired);
    assert!(after.approvals.is_empty());
    assert_eq!(s.changes_to_the_world(), world, "nothing ran");
    let said = s.app.said().await;
    assert_eq!(
        said.slack_methods(),
        [
            "chat.postMessage",
            "chat.postMessage",
            "respond/bob",
            "respond/carol"
        ]
    );
    assert_eq!(said.discord_shapes(), ["POST /webhooks/<id>/tok-late"]);
    s.app.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_click_on_an_invalidated_request_is_refused_and_runs_nothing() {
    let s = setup().await;
    let card = s.card().await;
    let fixes = &s.app.services().fixes;

    // Someone fixes it by hand while the request waits: the plan shown no longer fits.
    let plan = fixes.plan(&card.request).unwrap();
    fixes
        .remediator()
        .execute_approved(&plan, &|_| {})
        .await
        .unwrap();
    // bob and carol approve; the executor re-probes and withdraws the request.
    s.approve_to_completion(&card).await;
    let done = s.request(&card.request);
    assert_eq!(done.state, ApprovalState::Invalidated, "{:?}", done.outcome);
    // The bot tells the thread after the state changed (the work has settled by now).
    assert!(
        s.app.slack.calls().iter().any(|c| {
            c.method == "chat.postMessage"
                && c.body.to_string().contains("reconfigure-auth withdrawn")
        }),
        "the thread was never told"
    );
    let world = s.changes_to_the_world();
    let calls = s.app.slack.calls().len();

    // A late approval (alice, who is a listed approver but the requester, and bob again) and
    // a late deny are refused.
    for (user, action, reply) in [
        (BOB_SLACK, &card.approve, "late-bob"),
        (ALICE_SLACK, &card.approve, "late-alice"),
        (CAROL_SLACK, &card.deny, "late-carol"),
    ] {
        let body = s.click_body(user, action, &card, reply);
        s.send_slack(&body, &Setup::signed_now(&body)).await;
        let text = s.told(reply).await;
        assert!(
            text.contains("withdrawn because the plan changed"),
            "{reply}: {text}"
        );
    }
    // The service refuses to count or run it.
    assert!(
        fixes
            .approve(
                &card.request,
                &Actor::slack(CAROL_SLACK),
                chrono::Utc::now(),
                &|_| {}
            )
            .await
            .is_err()
    );

    s.app.settle().await;
    assert_eq!(s.request(&card.request), done, "the request did not move");
    assert_eq!(s.changes_to_the_world(), world, "nothing ran");
    assert!(s.slack_posts_since(calls).is_empty());
    assert_eq!(
        s.app.said().await.slack_methods(),
        [
            "chat.postMessage",
            "chat.postMessage",
            "chat.update",
            "chat.update",
            "chat.update",
            "chat.postMessage",
            "respond/late-bob",
            "respond/late-alice",
            "respond/late-carol"
        ]
    );
    s.app.finish().await;
}

// ---------------------------------------------------------------------------------------------
// One person, two accounts
// ---------------------------------------------------------------------------------------------

/// The role every Discord member holds in the fake interactions.
const MEMBER_ROLE: &str = "4200000000000000001";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unlisted_role_holder_on_another_platform_cannot_approve() {
    // alice by her bare Slack id, or whoever holds the Discord role; nobody in [[people]].
    let s = setup_with(|cfg| {
        cfg.people.clear();
        let rule = |action: Action| ApprovalRule {
            action: action.as_str().into(),
            approvers: vec![ALICE_SLACK.into(), format!("discord-role:{MEMBER_ROLE}")],
            required: 1,
            expires_after: Duration::from_secs(900),
        };
        cfg.approvals = vec![
            rule(Action::ReconfigureAuth),
            rule(Action::RestartDeployments),
        ];
    })
    .await;
    let card = s.card().await;
    let world = s.changes_to_the_world();

    // A Discord account nobody listed holds the role: it could be alice's own.
    let (status, _, _) = discord_support::post_signed(
        s.app.url(),
        &discord_click("tok-stranger", "1777", &card.approve),
    )
    .await;
    assert_eq!(status, 200);
    s.app.settle().await;
    let told = s
        .app
        .discord
        .calls()
        .into_iter()
        .find(|c| c.path.ends_with("/tok-stranger"))
        .expect("the clicker is told");
    assert!(
        told.body["content"].as_str().unwrap_or_default().contains(
            "across platforms an approval counts only when both accounts are listed in [[people]]"
        ),
        "{}",
        told.body
    );
    let request = s.request(&card.request);
    assert!(request.approvals.is_empty());
    assert_eq!(request.state, ApprovalState::Proposed);
    assert_eq!(s.changes_to_the_world(), world, "nothing ran");
    let said = s.app.said().await;
    assert_eq!(
        said.slack_methods(),
        ["chat.postMessage", "chat.postMessage"]
    );
    assert_eq!(said.discord_shapes(), ["POST /webhooks/<id>/tok-stranger"]);
    s.app.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_requester_cannot_approve_from_their_discord_account() {
    let s = setup().await;
    let card = s.card().await;
    assert_eq!(s.request(&card.request).requester.person.as_str(), "alice");

    let (status, body, _) = discord_support::post_signed(
        s.app.url(),
        &discord_click("tok-alice", discord_support::ALICE, &card.approve),
    )
    .await;
    assert_eq!((status, body.as_str()), (200, r#"{"type":6}"#));
    let told = s
        .app
        .discord
        .wait_for("alice's refusal", 1, |c| {
            c.is(
                "POST",
                &format!("/webhooks/{}/tok-alice", discord_support::APP),
                "",
            )
        })
        .await
        .remove(0);
    assert!(
        told.body["content"]
            .as_str()
            .unwrap_or_default()
            .contains("you requested this change; someone else must approve it"),
        "{}",
        told.body
    );
    assert_eq!(told.body["flags"], 64, "only alice sees it");

    // bob approving from both of his accounts counts once.
    let body = s.click_body(BOB_SLACK, &card.approve, &card, "bob");
    s.send_slack(&body, &Setup::signed_now(&body)).await;
    s.app
        .slack
        .wait_for("bob's approval on the card", WAIT, |c| {
            c.iter()
                .find(|c| {
                    c.method == "chat.update" && slack_fake::all_text(&c.body).contains("1 so far")
                })
                .cloned()
        })
        .await;
    discord_support::post_signed(
        s.app.url(),
        &discord_click("tok-bob", discord_support::BOB, &card.approve),
    )
    .await;
    let told = s
        .app
        .discord
        .wait_for("bob's second refusal", 1, |c| {
            c.is(
                "POST",
                &format!("/webhooks/{}/tok-bob", discord_support::APP),
                "",
            )
        })
        .await
        .remove(0);
    assert!(
        told.body["content"]
            .as_str()
            .unwrap_or_default()
            .contains("you have already approved this request"),
        "{}",
        told.body
    );

    s.app.settle().await;
    let request = s.request(&card.request);
    assert_eq!(request.state, ApprovalState::PartiallyApproved);
    let people: Vec<&str> = request
        .approvals
        .iter()
        .map(|d| d.person.as_str())
        .collect();
    assert_eq!(people, ["bob"]);
    let said = s.app.said().await;
    assert_eq!(
        said.slack_methods(),
        ["chat.postMessage", "chat.postMessage", "chat.update"]
    );
    assert_eq!(
        said.discord_shapes(),
        [
            "POST /webhooks/<id>/tok-alice",
            "POST /webhooks/<id>/tok-bob"
        ]
    );
    s.app.finish().await;
}

// ---------------------------------------------------------------------------------------------
// Forged button values
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forged_button_for_an_unknown_request_is_refused_and_runs_nothing() {
    let s = setup().await;
    let card = s.card().await;
    let world = s.changes_to_the_world();
    let before = s.request(&card.request);
    let calls = s.app.slack.calls().len();

    // A well-formed id that no request has: bob approves and denies it.
    let unknown = if card.request.as_str() == "req_0123456789abcdef" {
        "req_fedcba9876543210"
    } else {
        "req_0123456789abcdef"
    };
    for (action, reply) in [
        (format!("vt:approve:{unknown}"), "approve-unknown"),
        (format!("vt:deny:{unknown}"), "deny-unknown"),
    ] {
        let body = s.click_body(BOB_SLACK, &action, &card, reply);
        let r = s.send_slack(&body, &Setup::signed_now(&body)).await;
        assert_eq!(r.status(), 200);
        let text = s.told(reply).await;
        assert!(text.contains("this request is unknown"), "{text}");
    }
    let (status, _, _) = discord_support::post_signed(
        s.app.url(),
        &discord_click(
            "tok-unknown",
            discord_support::BOB,
            &format!("vt:approve:{unknown}"),
        ),
    )
    .await;
    assert_eq!(status, 200);
    s.app
        .discord
        .wait_for("the refusal", 1, |c| {
            c.is(
                "POST",
                &format!("/webhooks/{}/tok-unknown", discord_support::APP),
                "",
            ) && c.body["content"]
                .as_str()
                .unwrap_or_default()
                .contains("this request is unknown")
        })
        .await;

    s.app.settle().await;
    assert_eq!(s.request(&card.request), before);
    assert_eq!(
        s.app.services().fixes.requests().len(),
        1,
        "no request was made"
    );
    assert_eq!(s.changes_to_the_world(), world, "nothing ran");
    assert!(s.slack_posts_since(calls).is_empty());
    let said = s.app.said().await;
    assert_eq!(
        said.slack_methods(),
        [
            "chat.postMessage",
            "chat.postMessage",
            "respond/approve-unknown",
            "respond/deny-unknown"
        ]
    );
    assert_eq!(said.discord_shapes(), ["POST /webhooks/<id>/tok-unknown"]);
    s.app.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forged_button_outside_the_allowed_actions_is_ignored_and_runs_nothing() {
    let s = setup().await;
    let card = s.card().await;
    let world = s.changes_to_the_world();
    let before = s.request(&card.request);
    let calls = s.app.slack.calls().len();
    let id = card.request.as_str();
    let forged = [
        "vt:propose:delete-everything:tri_0123456789abcdef".to_string(),
        "vt:propose:rotate-reviewer:../../etc".to_string(),
        format!("vt:execute:{id}"),
        format!("vt:approve:{id}:extra"),
        format!("vt:approve:{}", id.to_uppercase()),
        format!("vt:approve:{id} "),
        format!("VT:approve:{id}"),
        format!("vt:approve:{id}\u{0}"),
        format!("vt::approve:{id}"),
        format!("vt:approve:{}", "f".repeat(200)),
    ];
    for (i, value) in forged.iter().enumerate() {
        // Slack: acknowledged (the click is genuine) and ignored; nobody is even answered.
        let body = s.click_body(BOB_SLACK, value, &card, &format!("forged-{i}"));
        let r = s.send_slack(&body, &Setup::signed_now(&body)).await;
        assert_eq!(r.status(), 200, "{value:?}");
        // Discord: told the button is unknown, in the interaction answer itself.
        let (status, answer, _) = discord_support::post_signed(
            s.app.url(),
            &discord_click(&format!("tok-forged-{i}"), discord_support::BOB, value),
        )
        .await;
        assert_eq!(status, 200, "{value:?}");
        let answer: Value = serde_json::from_str(&answer).unwrap();
        assert_eq!(answer["type"], 4, "{answer}");
        assert_eq!(answer["data"]["flags"], 64, "{answer}");
        assert!(
            answer["data"]["content"]
                .as_str()
                .unwrap_or_default()
                .contains("I do not know this button"),
            "{answer}"
        );
    }

    s.app.settle().await;
    assert_eq!(
        s.app.slack.calls().len(),
        calls,
        "nothing was said on Slack"
    );
    assert!(
        s.app.discord.calls().is_empty(),
        "nothing was said on Discord"
    );
    assert_eq!(s.request(&card.request), before);
    assert_eq!(
        s.app.services().fixes.requests().len(),
        1,
        "no request was made"
    );
    assert_eq!(s.changes_to_the_world(), world, "nothing ran");
    assert_eq!(
        s.app.said().await.slack_methods(),
        ["chat.postMessage", "chat.postMessage"]
    );
    s.app.finish().await;
}
