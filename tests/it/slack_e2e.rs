//! Slack end to end over real HTTP: signed requests to the bot's `/slack/*` router, the lab as
//! Vault and Kubernetes, and a fake Slack Web API that records every call. A command is
//! acknowledged at once and its summary posted later; two approvers' clicks run the fix with
//! progress in the thread and the card updated; a self-approval is refused only to the clicker;
//! 429s are waited out; unsigned, stale or broken requests change nothing.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use vault_triage::lab::{LabOptions, Scenario};

use crate::support::slack::*;
use crate::support::{Options, TestApp};

/// Every wait for the bot is bounded by this.
const WAIT: Duration = Duration::from_secs(90);

fn is_summary(body: &Value) -> bool {
    body["channel"] == CHANNEL
        && body.get("thread_ts").is_none()
        && body["text"]
            .as_str()
            .unwrap_or_default()
            .contains("reviewer token expired")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slash_command_to_a_verified_fix_through_slack() {
    let app = TestApp::start(Scenario::ReviewerJwtExpired).await;
    let (fake, bot) = (&app.slack, &app.slack_bot);
    // Counted by every test in this process: this flow must add to each.
    let counted = [
        r#"vault_triage_approvals_total{outcome="refused"}"#,
        r#"vault_triage_approvals_total{outcome="recorded"}"#,
        r#"vault_triage_approvals_total{outcome="quorum"}"#,
        r#"vault_triage_remediations_total{cluster="default",action="reconfigure-auth",outcome="succeeded"}"#,
        r#"vault_triage_triages_total{cluster="default",verdict="reviewer_jwt_expired"}"#,
    ];
    let mut counts_before = Vec::new();
    for series in counted {
        counts_before.push(app.metric(series).await);
    }

    // alice runs /vault-triage: "Triaging…" in the channel, then the summary.
    let r = bot.command("U0ALICE", "", &fake.response_url("cmd")).await;
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.json::<Value>().await.unwrap(),
        json!({"response_type": "in_channel", "text": "🔎 Triaging…"})
    );
    let summary = fake
        .wait_for("the summary", WAIT, |c| post_where(c, is_summary))
        .await;
    assert_eq!(
        summary.auth.as_deref(),
        Some(&*format!("Bearer {BOT_TOKEN}"))
    );
    let blocks = summary.body["blocks"].as_array().unwrap();
    assert_eq!(blocks[0]["type"], "header");
    assert!(
        all_text(&summary.body).contains("❌ *"),
        "the evidence chain is rendered as check lines"
    );
    let labels: Vec<String> = buttons(&summary.body).into_iter().map(|b| b.0).collect();
    assert_eq!(
        labels,
        [
            "Rotate reviewer token",
            "Use Vault's own token",
            "Restart affected workloads",
            "Re-sync secrets",
            "Re-sync incl. dynamic secrets",
            "Preview plan",
            "Re-run triage"
        ]
    );
    let actions = blocks.iter().find(|b| b["type"] == "actions").unwrap();
    assert_eq!(actions["elements"][0]["style"], "danger");
    assert_eq!(actions["elements"][0]["confirm"]["style"], "danger");
    let summary_ts = summary.ts.clone().unwrap();

    // alice requests the rotation: the approval card is posted in the summary's thread.
    let rotate = buttons(&summary.body)[0].1.clone();
    let r = bot
        .click(
            "U0ALICE",
            &rotate,
            &summary_ts,
            None,
            &fake.response_url("alice-1"),
        )
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.text().await.unwrap(), "");
    let card = fake
        .wait_for("the approval card", WAIT, |c| {
            post_where(c, |b| b["thread_ts"] == summary_ts.as_str())
        })
        .await;
    assert!(
        all_text(&card.body).contains("Needs 2 approvals"),
        "{}",
        card.body
    );
    let card_ts = card.ts.clone().unwrap();
    let card_ts = card_ts.as_str();
    let approve = buttons(&card.body)
        .into_iter()
        .find(|(_, id)| id.starts_with("vt:approve:"))
        .unwrap()
        .1;

    // alice approving her own request is refused, only to her, through her response_url.
    let before = fake.calls().len();
    bot.click(
        "U0ALICE",
        &approve,
        card_ts,
        Some(&summary_ts),
        &fake.response_url("alice-2"),
    )
    .await;
    let refusal = fake
        .wait_for("alice's refusal", WAIT, |c| {
            c.iter().find(|c| c.method == "respond/alice-2").cloned()
        })
        .await;
    assert_eq!(refusal.body["response_type"], "ephemeral");
    assert_eq!(refusal.body["replace_original"], false);
    assert!(
        refusal.body["text"]
            .as_str()
            .unwrap()
            .contains("you requested this change; someone else must approve it"),
        "{}",
        refusal.body
    );
    assert_eq!(refusal.auth, None, "a response_url gets no token");

    // bob approves: recorded, the card updated in place.
    bot.click(
        "U0BOB",
        &approve,
        card_ts,
        Some(&summary_ts),
        &fake.response_url("bob"),
    )
    .await;
    let update = fake
        .wait_for("the card's update after bob", WAIT, |c| {
            c.iter()
                .find(|c| c.method == "chat.update" && all_text(&c.body).contains("1 so far"))
                .cloned()
        })
        .await;
    assert_eq!(update.body["ts"], card_ts);
    assert_eq!(update.body["channel"], CHANNEL);
    let between: Vec<String> = fake.calls()[before..]
        .iter()
        .map(|c| c.method.clone())
        .collect();
    assert_eq!(
        between,
        ["respond/alice-2", "chat.update"],
        "nothing else was said"
    );

    // carol approves: quorum; progress in the thread; the card reaches its final state.
    bot.click(
        "U0CAROL",
        &approve,
        card_ts,
        Some(&summary_ts),
        &fake.response_url("carol"),
    )
    .await;
    let progress = fake
        .wait_for("the verify step in the thread", WAIT, |c| {
            post_where(c, |b| {
                b["thread_ts"] == summary_ts.as_str()
                    && b["text"]
                        .as_str()
                        .unwrap_or_default()
                        .contains("*verify*: canary login through auth/kubernetes succeeds (200)")
            })
        })
        .await;
    assert!(progress.body.get("blocks").is_none());
    let last = fake
        .wait_for("the card's final state", WAIT, |c| {
            c.iter()
                .rev()
                .find(|c| {
                    c.method == "chat.update"
                        && c.body["blocks"][0]["text"]["text"]
                            .as_str()
                            .unwrap_or_default()
                            .starts_with('✅')
                })
                .cloned()
        })
        .await;
    assert_eq!(last.body["ts"], card_ts);
    assert!(
        !last.body["blocks"]
            .as_array()
            .unwrap()
            .iter()
            .any(|b| b["type"] == "actions"),
        "a finished card has no buttons"
    );
    fake.wait_for("the closing line in the thread", WAIT, |c| {
        post_where(c, |b| {
            b["thread_ts"] == summary_ts.as_str()
                && b["text"]
                    .as_str()
                    .unwrap_or_default()
                    .starts_with("✅ reconfigure-auth")
        })
    })
    .await;

    // A command right after the fix sees the fixed world: no triage from before it is reused.
    let before_fix_triages = app.canary_triages();
    bot.command("U0ALICE", "", &fake.response_url("cmd-after"))
        .await;
    let after = fake
        .wait_for("the summary after the fix", WAIT, |c| {
            c.iter()
                .rev()
                .find(|c| {
                    c.method == "chat.postMessage"
                        && c.body["channel"] == CHANNEL
                        && c.body.get("thread_ts").is_none()
                        && c.ts.as_deref() != Some(summary_ts.as_str())
                })
                .cloned()
        })
        .await;
    assert!(
        !is_summary(&after.body),
        "the pre-fix triage was reused: {}",
        after.body
    );
    assert_eq!(app.canary_triages(), before_fix_triages + 1);

    // Every outcome of the flow is in /metrics: the refusal, the approval, the quorum, the fix.
    for (series, was) in counted.iter().zip(counts_before) {
        assert!(
            app.metric(series).await > was,
            "{series} did not count this flow"
        );
    }

    // Nothing the bot sent carries a token.
    for c in fake.calls() {
        let text = c.body.to_string();
        assert!(!text.contains("eyJ"), "a JWT reached Slack: {text}");
        assert!(!text.contains(BOT_TOKEN), "the bot token reached a body");
        if c.method.starts_with("respond/") {
            assert_eq!(c.auth, None);
        } else {
            assert_eq!(c.auth.as_deref(), Some(&*format!("Bearer {BOT_TOKEN}")));
        }
    }
    let said = app.said().await;
    crate::support::app::assert_said_around(
        &said.slack_methods(),
        &[
            "chat.postMessage",
            "chat.postMessage",
            "respond/alice-2",
            "chat.update",
            "chat.update",
        ],
        "chat.postMessage",
        &["chat.update", "chat.postMessage", "chat.postMessage"],
    );
    app.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_command_is_acknowledged_at_once_while_vault_is_slow() {
    let app = TestApp::with(Options {
        lab: LabOptions {
            latency: Duration::from_secs(2),
            ..LabOptions::default()
        },
        ..Options::default()
    })
    .await;
    let (fake, bot) = (&app.slack, &app.slack_bot);

    let started = Instant::now();
    let r = bot.command("U0ALICE", "", &fake.response_url("cmd")).await;
    let acked = started.elapsed();
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().await.unwrap()["text"], "🔎 Triaging…");
    assert!(
        acked < Duration::from_millis(1000),
        "acknowledged after {acked:?}; Slack gives up at 3 s"
    );
    assert!(fake.calls().is_empty(), "the summary cannot be ready yet");
    let summary = fake
        .wait_for("the summary", Duration::from_secs(180), |c| {
            post_where(c, is_summary)
        })
        .await;
    assert!(
        summary.at.duration_since(started) >= Duration::from_secs(2),
        "the summary came after the slow probes"
    );
    assert_eq!(app.said().await.slack_methods(), ["chat.postMessage"]);
    app.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rate_limited_post_is_retried_after_retry_after() {
    let app = TestApp::start(Scenario::ReviewerJwtExpired).await;
    let (fake, bot) = (&app.slack, &app.slack_bot);
    fake.queue(
        "chat.postMessage",
        Canned {
            status: 429,
            retry_after: Some(1),
            body: json!({"ok": false, "error": "ratelimited"}),
        },
    );
    bot.command("U0ALICE", "", &fake.response_url("cmd")).await;
    fake.wait_for("the summary", WAIT, |c| post_where(c, is_summary))
        .await;
    let posts: Vec<_> = fake
        .calls()
        .into_iter()
        .filter(|c| c.method == "chat.postMessage")
        .collect();
    assert_eq!(posts.len(), 2, "one refused, one accepted");
    assert_eq!(posts[0].body, posts[1].body, "the same message was retried");
    let gap = posts[1].at.duration_since(posts[0].at);
    assert!(gap >= Duration::from_secs(1), "retried after {gap:?}");
    assert_eq!(
        app.said().await.slack_methods(),
        ["chat.postMessage", "chat.postMessage"]
    );
    app.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_post_is_explained_to_the_user() {
    let app = TestApp::start(Scenario::ReviewerJwtExpired).await;
    let (fake, bot) = (&app.slack, &app.slack_bot);
    fake.refuse_channel(CHANNEL, "not_in_channel");
    bot.command("U0ALICE", "status", &fake.response_url("cmd"))
        .await;
    let told = fake
        .wait_for("the explanation", WAIT, |c| {
            c.iter().find(|c| c.method == "respond/cmd").cloned()
        })
        .await;
    let text = told.body["text"].as_str().unwrap();
    assert!(text.contains("invite the bot to this channel"), "{text}");
    assert_eq!(told.body["response_type"], "ephemeral");
    assert_eq!(
        app.said().await.slack_methods(),
        ["chat.postMessage", "respond/cmd"]
    );
    app.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_error_from_slack_is_retried_with_backoff() {
    let app = TestApp::start(Scenario::Healthy).await;
    let (fake, bot) = (&app.slack, &app.slack_bot);
    for _ in 0..2 {
        fake.queue(
            "chat.postMessage",
            Canned {
                status: 503,
                retry_after: None,
                body: json!({"ok": false, "error": "service_unavailable"}),
            },
        );
    }
    bot.command("U0ALICE", "status", &fake.response_url("cmd"))
        .await;
    fake.wait_for("three attempts", WAIT, |c| {
        let n = c.iter().filter(|c| c.method == "chat.postMessage").count();
        (n == 3).then_some(())
    })
    .await;
    let posts: Vec<_> = fake
        .calls()
        .into_iter()
        .filter(|c| c.method == "chat.postMessage")
        .collect();
    let first_gap = posts[1].at.duration_since(posts[0].at);
    let second_gap = posts[2].at.duration_since(posts[1].at);
    assert!(first_gap >= Duration::from_millis(250), "{first_gap:?}");
    assert!(second_gap >= Duration::from_millis(500), "{second_gap:?}");
    assert!(
        !fake.calls().iter().any(|c| c.method == "respond/cmd"),
        "the retried post succeeded, so nobody is told of a failure"
    );
    assert_eq!(app.said().await.slack_methods(), ["chat.postMessage"; 3]);
    app.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsigned_stale_or_broken_requests_are_refused_and_change_nothing() {
    let app = TestApp::start(Scenario::ReviewerJwtExpired).await;
    let (fake, bot) = (&app.slack, &app.slack_bot);
    let form = "application/x-www-form-urlencoded";
    let cmd = command_form(CHANNEL, "U0MALLORY", "", &fake.response_url("mallory"));
    let click = click_form(
        "U0MALLORY",
        "vt:rerun:tri_0000000000000000",
        "1.1",
        None,
        &fake.response_url("mallory"),
    );

    for path in ["/slack/commands", "/slack/interactions", "/slack/events"] {
        let body = if path == "/slack/interactions" {
            &click
        } else {
            &cmd
        };
        // Unsigned.
        let r = bot.post(path, form, body, None).await;
        assert_eq!(r.status(), 401, "{path} unsigned");
        // Stale: signed six minutes ago.
        let r = bot.post(path, form, body, Some(now() - 360)).await;
        assert_eq!(r.status(), 401, "{path} stale");
        // Signed with another secret.
        let ts = now().to_string();
        let r = bot
            .http
            .post(format!("{}{path}", bot.base))
            .header("content-type", form)
            .header("x-slack-request-timestamp", &ts)
            .header("x-slack-signature", sign("another-secret", &ts, body))
            .body(body.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401, "{path} badly signed");
        // Signed, then tampered with.
        let ts = now().to_string();
        let r = bot
            .http
            .post(format!("{}{path}", bot.base))
            .header("content-type", form)
            .header("x-slack-request-timestamp", &ts)
            .header("x-slack-signature", sign(SIGNING_SECRET, &ts, body))
            .body(body.replace("U0MALLORY", "U0ALICE"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401, "{path} tampered");
    }

    // Signed but broken bodies: 400 with a sentence.
    for (path, body) in [
        ("/slack/commands", "channel_id=C1"),
        ("/slack/interactions", "payload=%7Bnot+json"),
        ("/slack/interactions", "nothing=here"),
        ("/slack/events", "{not json"),
    ] {
        let r = bot.post(path, form, body, Some(now())).await;
        assert_eq!(r.status(), 400, "{path} {body}");
        let text = r.text().await.unwrap();
        assert!(text.starts_with("Bad request: "), "{text}");
    }

    // Too large: 413, before anything else.
    let huge = "text=".to_string() + &"x".repeat(100 * 1024);
    let r = bot.post("/slack/commands", form, &huge, Some(now())).await;
    assert_eq!(r.status(), 413);

    // Slack's certificate check gets its 200 (signed or not: it asks for nothing).
    let r = bot
        .post("/slack/commands", form, "ssl_check=1&token=x", None)
        .await;
    assert_eq!(r.status(), 200);

    // The URL check answers its challenge; other events are acknowledged.
    let r = bot
        .post(
            "/slack/events",
            "application/json",
            r#"{"type":"url_verification","token":"t","challenge":"3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P"}"#,
            Some(now()),
        )
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.json::<Value>().await.unwrap(),
        json!({"challenge": "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P"})
    );
    let r = bot
        .post(
            "/slack/events",
            "application/json",
            r#"{"type":"event_callback","event":{"type":"app_mention"}}"#,
            Some(now()),
        )
        .await;
    assert_eq!(r.status(), 200);

    // Help is answered directly, only to the caller, and starts nothing.
    let r = bot
        .command("U0ALICE", "frobnicate", &fake.response_url("help"))
        .await;
    let help: Value = r.json().await.unwrap();
    assert_eq!(help["response_type"], "ephemeral");
    assert!(
        help["text"]
            .as_str()
            .unwrap()
            .contains("/vault-triage reviewer")
    );

    // A valid command still works; its summary is the only thing ever posted.
    bot.command("U0ALICE", "", &fake.response_url("ok")).await;
    fake.wait_for("the summary", WAIT, |c| post_where(c, is_summary))
        .await;
    let methods: Vec<String> = fake.calls().into_iter().map(|c| c.method).collect();
    assert_eq!(
        methods,
        ["chat.postMessage"],
        "refused requests changed nothing"
    );
    assert_eq!(app.said().await.slack_methods(), ["chat.postMessage"]);
    app.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_alert_cannot_ping_the_channel_or_plant_a_link() {
    let app = TestApp::with(Options {
        configure: |cfg| {
            cfg.alerts.tokens = vec![vault_triage::config::Secret::new("t")];
            cfg.chat.slack_channel = Some(CHANNEL.into());
        },
        ..Options::default()
    })
    .await;
    let mut alert: Value = serde_json::from_str(
        &std::fs::read_to_string(format!(
            "{}/tests/fixtures/alertmanager/firing.raw.json",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap(),
    )
    .unwrap();
    alert["commonLabels"]["team"] = json!("<!here>");
    alert["groupLabels"]["team"] = json!("<!channel>");
    for a in alert["alerts"].as_array_mut().unwrap() {
        a["labels"]["team"] = json!("<!here>");
        a["annotations"]["summary"] = json!("see <https://evil.example|the runbook> & <@U0BOSS>");
    }
    let r = reqwest::Client::new()
        .post(format!("{}/alerts/alertmanager", app.url()))
        .header("authorization", "Bearer t")
        .body(alert.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let said = app.said().await;
    assert!(
        said.slack_methods()
            .contains(&"chat.postMessage".to_string()),
        "the incident was posted: {:?}",
        said.slack_methods()
    );
    let everything: String = said.slack.iter().map(|c| c.body.to_string()).collect();
    for planted in ["<!here>", "<!channel>", "<@U0BOSS>", "<https://evil"] {
        assert!(
            !everything.contains(planted),
            "{planted} reached Slack unescaped"
        );
    }
    // The group label is shown, escaped.
    assert!(everything.contains("&lt;!channel&gt;"), "{everything}");
    app.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slack_retry_of_a_command_already_taken_runs_nothing() {
    let app = TestApp::start(Scenario::ReviewerJwtExpired).await;
    let (fake, bot) = (&app.slack, &app.slack_bot);
    let body = command_form(CHANNEL, "U0ALICE", "", &fake.response_url("cmd"));
    let first = bot
        .post(
            "/slack/commands",
            "application/x-www-form-urlencoded",
            &body,
            Some(now()),
        )
        .await;
    assert_eq!(first.status(), 200);
    let ack = first.text().await.unwrap();
    // Slack thought the answer was late and sends the same command again.
    let ts = now().to_string();
    let retry = bot
        .http
        .post(format!("{}/slack/commands", bot.base))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("x-slack-request-timestamp", &ts)
        .header("x-slack-signature", sign(SIGNING_SECRET, &ts, &body))
        .header("x-slack-retry-num", "1")
        .header("x-slack-retry-reason", "http_timeout")
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(retry.status(), 200);
    assert_eq!(retry.text().await.unwrap(), ack, "the same answer");
    assert_eq!(
        app.said().await.slack_methods(),
        ["chat.postMessage"],
        "one summary, for one command"
    );
    app.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_commands_in_one_channel_post_one_summary() {
    let app = TestApp::start(Scenario::ReviewerJwtExpired).await;
    let (fake, bot) = (&app.slack, &app.slack_bot);
    let before = app.canary_triages();
    let commands = (0..20).map(|i| {
        let url = fake.response_url(&format!("cmd-{i}"));
        async move {
            bot.command(&format!("U0USER{i:02}"), "", &url)
                .await
                .status()
        }
    });
    for status in futures::future::join_all(commands).await {
        assert_eq!(status, 200);
    }
    let said = app.said().await;
    let posts: Vec<_> = said
        .slack
        .iter()
        .filter(|c| c.method == "chat.postMessage")
        .collect();
    assert_eq!(posts.len(), 1, "one summary in the channel");
    assert!(is_summary(&posts[0].body), "{}", posts[0].body);
    // Everyone else is told, only them, where the answer is.
    let pointers: Vec<_> = said
        .slack
        .iter()
        .filter(|c| c.method.starts_with("respond/cmd-"))
        .collect();
    assert_eq!(pointers.len(), 19, "{:?}", said.slack_methods());
    for p in pointers {
        assert_eq!(p.body["response_type"], "ephemeral");
        assert!(
            p.body["text"]
                .as_str()
                .unwrap_or_default()
                .starts_with("Same triage as the summary just posted here"),
            "{}",
            p.body
        );
    }
    assert_eq!(app.canary_triages() - before, 1, "one canary login");
    app.finish().await;
}
