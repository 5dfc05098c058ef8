//! What the bot says by itself, through the real app and the fake Slack: an expired request's
//! card says so; after a restart, a request that was running is announced in its thread and
//! one that was approved but never started is re-validated and run; the reviewer watch posts
//! its rotation with the approval card once.

use std::time::Duration;

use serde_json::Value;
use vault_triage::approval::{Actor, ApprovalState, RequestId};
use vault_triage::lab::Scenario;

use crate::support::slack::*;
use crate::support::{Options, TestApp};

const WAIT: Duration = Duration::from_secs(90);

/// alice asks for the reviewer rotation on Slack: the summary, then the approval card in its
/// thread. Returns the card's `ts` and the request.
async fn card(app: &TestApp) -> (String, RequestId) {
    let (fake, bot) = (&app.slack, &app.slack_bot);
    bot.command("U0ALICE", "", &fake.response_url("cmd")).await;
    let summary = fake
        .wait_for("the summary", WAIT, |c| {
            post_where(c, |b| b.get("thread_ts").is_none())
        })
        .await;
    let summary_ts = summary.ts.clone().unwrap();
    let rotate = buttons(&summary.body)[0].1.clone();
    bot.click(
        "U0ALICE",
        &rotate,
        &summary_ts,
        None,
        &fake.response_url("p"),
    )
    .await;
    let card = fake
        .wait_for("the approval card", WAIT, |c| {
            post_where(c, |b| b["thread_ts"] == summary_ts.as_str())
        })
        .await;
    let approve = buttons(&card.body)
        .into_iter()
        .find(|(_, id)| id.starts_with("vt:approve:"))
        .unwrap()
        .1;
    let request = RequestId::parse(approve.trim_start_matches("vt:approve:")).unwrap();
    (card.ts.unwrap(), request)
}

fn text_of(body: &Value) -> String {
    format!("{} {}", body["text"], body["blocks"])
}

/// Records what bob's and carol's approvals would have recorded (the quorum), without
/// running anything: a process that stopped right after the quorum.
async fn approved_by_bob_and_carol(app: &TestApp, id: &RequestId) {
    let services = app.services();
    let changes: Vec<_> = ["U0BOB", "U0CAROL"]
        .into_iter()
        .map(|who| crate::support::state::granted(services.policy(), Actor::slack(who)))
        .collect();
    crate::support::state::record_as_if(&services.store, id, &changes).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_request_card_says_so() {
    let app = TestApp::with(Options {
        configure: |cfg| {
            for rule in &mut cfg.approvals {
                rule.expires_after = Duration::from_secs(2);
            }
        },
        ..Options::default()
    })
    .await;
    let (card_ts, request) = card(&app).await;
    app.slack
        .wait_for("the card edited to say it expired", WAIT, |c| {
            c.iter()
                .find(|c| {
                    c.method == "chat.update"
                        && c.body["ts"] == card_ts.as_str()
                        && text_of(&c.body).contains("Expired before enough people approved")
                })
                .cloned()
        })
        .await;
    assert_eq!(
        app.services().fixes.request(&request).unwrap().state,
        ApprovalState::Expired
    );
    assert_eq!(
        app.said().await.slack_methods(),
        ["chat.postMessage", "chat.postMessage", "chat.update"]
    );
    app.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_running_when_the_bot_stopped_is_announced_in_its_thread() {
    let app = TestApp::start(Scenario::ReviewerJwtExpired).await;
    let (card_ts, request) = card(&app).await;
    approved_by_bob_and_carol(&app, &request).await;
    crate::support::state::record_as_if(
        &app.services().store,
        &request,
        &[vault_triage::approval::request::Change::Started {
            at: chrono::Utc::now(),
        }],
    )
    .await;
    assert_eq!(
        app.said().await.slack_methods(),
        ["chat.postMessage", "chat.postMessage"]
    );

    let app = app.restart().await;
    let told = app
        .slack
        .wait_for("the thread told of the interruption", WAIT, |c| {
            post_where(c, |b| {
                b["thread_ts"].is_string()
                    && text_of(b).contains("was running when the bot restarted")
            })
        })
        .await;
    assert!(told.body["thread_ts"].is_string());
    let done = app.services().fixes.request(&request).unwrap();
    assert_eq!(done.state, ApprovalState::Failed);
    let said = app.said().await;
    assert_eq!(said.slack_methods(), ["chat.update", "chat.postMessage"]);
    assert_eq!(said.slack[0].body["ts"], card_ts.as_str());
    assert!(text_of(&said.slack[0].body).contains("interrupted by a restart"));
    app.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_approved_before_a_restart_is_revalidated_and_run_after_it() {
    let app = TestApp::start(Scenario::ReviewerJwtExpired).await;
    let (card_ts, request) = card(&app).await;
    approved_by_bob_and_carol(&app, &request).await;
    let config_before = app.lab.vault_auth_config();
    assert_eq!(
        app.said().await.slack_methods(),
        ["chat.postMessage", "chat.postMessage"]
    );

    let app = app.restart().await;
    app.slack
        .wait_for("the closing line", WAIT, |c| {
            post_where(c, |b| {
                b["text"]
                    .as_str()
                    .unwrap_or_default()
                    .starts_with("✅ reconfigure-auth")
            })
        })
        .await;
    let done = app.services().fixes.request(&request).unwrap();
    assert_eq!(done.state, ApprovalState::Succeeded, "{:?}", done.outcome);
    assert_ne!(app.lab.vault_auth_config(), config_before, "the fix ran");
    let said = app.said().await;
    crate::support::app::assert_said_around(
        &said.slack_methods(),
        &["chat.postMessage", "chat.update"],
        "chat.postMessage",
        &["chat.update", "chat.postMessage"],
    );
    assert!(
        text_of(&said.slack[0].body).contains("approved before the bot restarted"),
        "{}",
        said.slack[0].body
    );
    assert_eq!(said.slack[1].body["ts"], card_ts.as_str());
    app.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_reviewer_watch_announces_its_rotation_once() {
    let app = TestApp::with(Options {
        reviewer_watch: true,
        configure: |cfg| {
            if let Some(r) = cfg.reviewer.as_mut() {
                r.check_every = Duration::from_millis(300);
            }
            cfg.chat.slack_channel = Some(CHANNEL.into());
        },
        ..Options::default()
    })
    .await;
    let card = app
        .slack
        .wait_for("the rotation's approval card", WAIT, |c| {
            post_where(c, |b| {
                b["thread_ts"].is_string() && text_of(b).contains("vt:approve:")
            })
        })
        .await;
    // Several more rounds of the watch: the same judgement, the same request.
    let rounds = app.canary_triages();
    let deadline = tokio::time::Instant::now() + WAIT;
    while app.canary_triages() < rounds + 3 {
        assert!(tokio::time::Instant::now() < deadline, "the watch stopped");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let said = app.said().await;
    assert_eq!(
        said.slack_methods(),
        ["chat.postMessage", "chat.postMessage"],
        "announced once"
    );
    let alert = &said.slack[0].body;
    assert!(
        text_of(alert).contains("The reviewer token of vault/vault-auth has expired"),
        "{alert}"
    );
    assert_eq!(alert["channel"], CHANNEL);
    assert_eq!(
        said.slack[1].body["thread_ts"],
        said.slack[0].ts.clone().unwrap().as_str()
    );
    assert_eq!(
        card.body["thread_ts"],
        said.slack[0].ts.clone().unwrap().as_str()
    );
    let requests = app.services().fixes.requests();
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].requester.person.as_str(), "bot:vault-triage");
    app.finish().await;
}
