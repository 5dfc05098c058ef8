//! The approval path under attack, through the real edges: signed Slack requests into
//! `/slack/*` and signed Discord interactions into `/discord/interactions`, one bot behind
//! both, the lab as Vault and Kubernetes. Where the clock must be set (expiry), `Fixes` is
//! driven directly with an explicit `now`.
//!
//! Each test is one attack: a replayed click, a forged or unlisted user, a click on an expired
//! or invalidated request, a requester approving from their other platform account, a forged
//! button value. Each asserts what the attacker was told, that the request did not move, and
//! that nothing ran against Vault or Kubernetes.

mod common;
mod discord_support;
mod slack_fake;

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use vault_triage::approval::{Actor, ApprovalRequest, ApprovalState, Refusal, RequestId};
use vault_triage::chat::bot::ChatBot;
use vault_triage::chat::discord::DiscordRuntime;
use vault_triage::config::{ApprovalRule, ConnectionArgs, FileConfig, Person};
use vault_triage::lab::{Lab, LabOptions, Scenario};

use discord_support::FakeDiscord;
use slack_fake::FakeSlack;

/// Every wait for the bot is bounded by this.
const WAIT: Duration = Duration::from_secs(90);
/// How long a test waits to be sure nothing more happens.
const QUIET: Duration = Duration::from_millis(300);
const FORM: &str = "application/x-www-form-urlencoded";

/// alice, bob and carol each have a Slack and a Discord account; mallory is nobody.
const ALICE_SLACK: &str = "U0ALICE";
const BOB_SLACK: &str = "U0BOB";
const CAROL_SLACK: &str = "U0CAROL";
const MALLORY_SLACK: &str = "U0MALLORY";

struct Setup {
    lab: Lab,
    bot: Arc<ChatBot>,
    slack: slack_fake::Bot,
    fake_slack: FakeSlack,
    discord_base: String,
    fake_discord: FakeDiscord,
    _dirs: (tempfile::TempDir, tempfile::TempDir),
}

async fn chat_bot(
    lab: &Lab,
    files: &vault_triage::lab::LabFiles,
    state: &std::path::Path,
) -> Arc<ChatBot> {
    let mut cfg = FileConfig::load(Some(&files.config)).unwrap();
    cfg.state.dir = state.to_path_buf();
    cfg.people = [
        ("alice", ALICE_SLACK, discord_support::ALICE),
        ("bob", BOB_SLACK, discord_support::BOB),
        ("carol", CAROL_SLACK, discord_support::CAROL),
    ]
    .into_iter()
    .map(|(name, slack, discord)| Person {
        name: name.into(),
        slack: Some(slack.into()),
        discord: Some(discord.into()),
    })
    .collect();
    let rule = |action: &str| ApprovalRule {
        action: action.into(),
        approvers: vec!["alice".into(), "bob".into(), "carol".into()],
        required: 2,
        expires_after: Duration::from_secs(900),
    };
    cfg.approvals = vec![rule("reconfigure-auth"), rule("restart-deployments")];
    let conn = ConnectionArgs {
        vault_addr: lab.vault_addr(),
        vault_token: Some(lab.vault_token()),
        vault_token_file: None,
        vault_cacert: None,
        vault_namespace: None,
        kubeconfig: Some(files.kubeconfig.clone()),
    };
    let ctx = vault_triage::app::build_context(&conn, cfg).await.unwrap();
    Arc::new(ChatBot::new(Arc::new(ctx)))
}

async fn setup() -> Setup {
    common::init_crypto();
    let lab = Lab::start(Scenario::ReviewerJwtExpired, LabOptions::default())
        .await
        .unwrap();
    let (dir, files) = common::lab_files(&lab);
    let state = tempfile::tempdir().unwrap();
    let bot = chat_bot(&lab, &files, state.path()).await;
    let fake_slack = FakeSlack::start().await;
    let slack = slack_fake::serve(bot.clone(), slack_fake::http_settings(&fake_slack)).await;
    let fake_discord = FakeDiscord::start().await;
    let discord = DiscordRuntime::start(
        bot.clone(),
        discord_support::settings(&fake_discord, true, false),
    )
    .await
    .unwrap();
    let discord_base = discord_support::serve(discord.router().unwrap()).await;
    Setup {
        lab,
        bot,
        slack,
        fake_slack,
        discord_base,
        fake_discord,
        _dirs: (dir, state),
    }
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
            .slack
            .command(ALICE_SLACK, "", &self.fake_slack.response_url("cmd"))
            .await;
        assert_eq!(r.status(), 200);
        let summary = self
            .fake_slack
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
            .slack
            .click(
                ALICE_SLACK,
                &rotate,
                &summary_ts,
                None,
                &self.fake_slack.response_url("propose"),
            )
            .await;
        assert_eq!(r.status(), 200);
        let card = self
            .fake_slack
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
        self.bot
            .context()
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
            &self.fake_slack.response_url(reply),
        )
    }

    /// POSTs `body` to `/slack/interactions` with the headers given (a replay sends the
    /// same ones again).
    async fn send_slack(&self, body: &str, headers: &[(&str, String)]) -> reqwest::Response {
        let mut req = self
            .slack
            .http
            .post(format!("{}/slack/interactions", self.slack.base))
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
            .fake_slack
            .wait_for(&method, WAIT, |c| {
                c.iter().find(|c| c.method == method).cloned()
            })
            .await;
        assert_eq!(call.body["response_type"], "ephemeral", "{}", call.body);
        call.body["text"].as_str().unwrap_or_default().to_string()
    }

    /// Slack Web API calls after the first `since` (ephemeral answers excluded).
    fn slack_posts_since(&self, since: usize) -> Vec<slack_fake::Call> {
        self.fake_slack.calls()[since..]
            .iter()
            .filter(|c| !c.method.starts_with("respond/"))
            .cloned()
            .collect()
    }

    /// Reviewer tokens minted and auth config writes so far: what a fix would change.
    fn changes_to_the_world(&self) -> (usize, Value) {
        let minted = self
            .lab
            .kube_requests()
            .iter()
            .filter(|r| r.method == "POST" && r.path.ends_with("/serviceaccounts/vault-auth/token"))
            .count();
        (minted, self.lab.vault_auth_config().unwrap_or(Value::Null))
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
                self.fake_slack
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

    async fn wait_for_state(&self, id: &RequestId, done: impl Fn(ApprovalState) -> bool) {
        let deadline = tokio::time::Instant::now() + WAIT;
        while !done(self.request(id).state) {
            assert!(
                tokio::time::Instant::now() < deadline,
                "request stuck in {:?}",
                self.request(id).state
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
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
    s.fake_slack
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
    s.lab.shutdown().await;
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
    let calls = s.fake_slack.calls().len();

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

    tokio::time::sleep(QUIET).await;
    assert_eq!(s.request(&card.request), done, "the request did not move");
    assert_eq!(s.changes_to_the_world(), world, "nothing ran again");
    assert!(
        s.slack_posts_since(calls).is_empty(),
        "nothing was posted: {:?}",
        s.slack_posts_since(calls)
    );
    s.lab.shutdown().await;
}

// ---------------------------------------------------------------------------------------------
// Forged users
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unsigned_click_claiming_to_be_an_approver_is_refused_with_401() {
    let s = setup().await;
    let card = s.card().await;
    let calls = s.fake_slack.calls().len();
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
    let (status, _, _) = discord_support::post_raw(&s.discord_base, raw, None, None).await;
    assert_eq!(status, 401);

    tokio::time::sleep(QUIET).await;
    assert!(s.request(&card.request).approvals.is_empty());
    assert_eq!(s.fake_slack.calls().len(), calls, "nothing was said");
    assert!(s.fake_discord.calls().is_empty(), "nothing was said");
    s.lab.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrongly_signed_click_claiming_to_be_an_approver_is_refused_with_401() {
    let s = setup().await;
    let card = s.card().await;
    let calls = s.fake_slack.calls().len();

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
        discord_support::post_raw(&s.discord_base, raw.clone(), Some(&sig), Some(&ts)).await;
    assert_eq!(status, 401);
    // A signature Discord made for another body (mallory's click), on bob's.
    let mallory_raw = discord_click("tok-forged", "1666", &card.approve).to_string();
    let sig = discord_support::sign(&ts, mallory_raw.as_bytes());
    let (status, _, _) =
        discord_support::post_raw(&s.discord_base, raw, Some(&sig), Some(&ts)).await;
    assert_eq!(status, 401);

    tokio::time::sleep(QUIET).await;
    assert!(s.request(&card.request).approvals.is_empty());
    assert_eq!(s.fake_slack.calls().len(), calls, "nothing was said");
    assert!(s.fake_discord.calls().is_empty(), "nothing was said");
    s.lab.shutdown().await;
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
        &s.discord_base,
        &discord_click("tok-stranger", "1666", &card.approve),
    )
    .await;
    assert_eq!(status, 200);
    let told = s
        .fake_discord
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

    tokio::time::sleep(QUIET).await;
    assert_eq!(s.request(&card.request), before, "the request did not move");
    s.lab.shutdown().await;
}

// ---------------------------------------------------------------------------------------------
// Expired and invalidated requests
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_click_on_an_expired_request_is_refused_and_runs_nothing() {
    let s = setup().await;
    let card = s.card().await;
    let fixes = &s.bot.context().fixes;
    let world = s.changes_to_the_world();
    let request = s.request(&card.request);

    // bob approves one second after the expiry.
    let late = request.expires_at + chrono::TimeDelta::seconds(1);
    let refused = fixes.approve(&card.request, &Actor::slack(BOB_SLACK), late);
    assert_eq!(
        refused,
        Err(Refusal::Expired {
            at: request.expires_at
        })
    );
    assert_eq!(s.request(&card.request).state, ApprovalState::Expired);
    // Exactly at the expiry is already too late, for another approver.
    assert!(matches!(
        fixes.approve(
            &card.request,
            &Actor::slack(CAROL_SLACK),
            request.expires_at
        ),
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
        &s.discord_base,
        &discord_click("tok-late", discord_support::CAROL, &card.approve),
    )
    .await;
    assert_eq!(status, 200);
    s.fake_discord
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
    // The executor refuses it too.
    assert!(fixes.execute(&card.request, &|_| {}).await.is_err());

    tokio::time::sleep(QUIET).await;
    let after = s.request(&card.request);
    assert_eq!(after.state, ApprovalState::Expired);
    assert!(after.approvals.is_empty());
    assert_eq!(s.changes_to_the_world(), world, "nothing ran");
    s.lab.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_click_on_an_invalidated_request_is_refused_and_runs_nothing() {
    let s = setup().await;
    let card = s.card().await;
    let fixes = &s.bot.context().fixes;

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
    // The bot tells the thread after the state changed: wait for that last word before counting.
    let deadline = tokio::time::Instant::now() + WAIT;
    while !s.fake_slack.calls().iter().any(|c| {
        c.method == "chat.postMessage" && c.body.to_string().contains("reconfigure-auth withdrawn")
    }) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the thread was never told"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let world = s.changes_to_the_world();
    let calls = s.fake_slack.calls().len();

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
    // The executor refuses to run it.
    assert!(fixes.execute(&card.request, &|_| {}).await.is_err());

    tokio::time::sleep(QUIET).await;
    assert_eq!(s.request(&card.request), done, "the request did not move");
    assert_eq!(s.changes_to_the_world(), world, "nothing ran");
    assert!(s.slack_posts_since(calls).is_empty());
    s.lab.shutdown().await;
}

// ---------------------------------------------------------------------------------------------
// One person, two accounts
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_requester_cannot_approve_from_their_discord_account() {
    let s = setup().await;
    let card = s.card().await;
    assert_eq!(s.request(&card.request).requester.person.as_str(), "alice");

    let (status, body, _) = discord_support::post_signed(
        &s.discord_base,
        &discord_click("tok-alice", discord_support::ALICE, &card.approve),
    )
    .await;
    assert_eq!((status, body.as_str()), (200, r#"{"type":6}"#));
    let told = s
        .fake_discord
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
    s.fake_slack
        .wait_for("bob's approval on the card", WAIT, |c| {
            c.iter()
                .find(|c| {
                    c.method == "chat.update" && slack_fake::all_text(&c.body).contains("1 so far")
                })
                .cloned()
        })
        .await;
    discord_support::post_signed(
        &s.discord_base,
        &discord_click("tok-bob", discord_support::BOB, &card.approve),
    )
    .await;
    let told = s
        .fake_discord
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

    tokio::time::sleep(QUIET).await;
    let request = s.request(&card.request);
    assert_eq!(request.state, ApprovalState::PartiallyApproved);
    let people: Vec<&str> = request
        .approvals
        .iter()
        .map(|d| d.person.as_str())
        .collect();
    assert_eq!(people, ["bob"]);
    s.lab.shutdown().await;
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
    let calls = s.fake_slack.calls().len();

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
        &s.discord_base,
        &discord_click(
            "tok-unknown",
            discord_support::BOB,
            &format!("vt:approve:{unknown}"),
        ),
    )
    .await;
    assert_eq!(status, 200);
    s.fake_discord
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

    tokio::time::sleep(QUIET).await;
    assert_eq!(s.request(&card.request), before);
    assert_eq!(
        s.bot.context().fixes.requests().len(),
        1,
        "no request was made"
    );
    assert_eq!(s.changes_to_the_world(), world, "nothing ran");
    assert!(s.slack_posts_since(calls).is_empty());
    s.lab.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forged_button_outside_the_allowed_actions_is_ignored_and_runs_nothing() {
    let s = setup().await;
    let card = s.card().await;
    let world = s.changes_to_the_world();
    let before = s.request(&card.request);
    let calls = s.fake_slack.calls().len();
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
            &s.discord_base,
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

    tokio::time::sleep(QUIET).await;
    assert_eq!(
        s.fake_slack.calls().len(),
        calls,
        "nothing was said on Slack"
    );
    assert!(
        s.fake_discord.calls().is_empty(),
        "nothing was said on Discord"
    );
    assert_eq!(s.request(&card.request), before);
    assert_eq!(
        s.bot.context().fixes.requests().len(),
        1,
        "no request was made"
    );
    assert_eq!(s.changes_to_the_world(), world, "nothing ran");
    s.lab.shutdown().await;
}
