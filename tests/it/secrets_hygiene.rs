//! No secret reaches chat or the logs. End-to-end flows run while every chat payload the fakes
//! receive and every log line is collected (debug level, JSON): a Slack command through
//! approvals to a verified fix, the same on Discord, an alert delivery, the demo binary with
//! `--chat slack` and `--chat discord`, and `probe --format json`. Each collection is searched
//! for the exact secrets the test can get (the lab's Vault token, every JWT the lab issued or
//! saw, the Slack and Discord bot tokens, the signing secret, the alert bearer token) and for
//! anything shaped like a JWT (`eyJ…`) or a Vault token (`hvs.…`).
//!
//! Each in-process flow runs on one thread with a subscriber of its own writing to a buffer.

use crate::support as common;
use crate::support::discord as discord_support;
use crate::support::slack as slack_fake;

use std::io::Write;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;
use tracing_subscriber::fmt::MakeWriter;

use crate::support::{Options, TestApp};
use vault_triage::config::Secret;
use vault_triage::lab::{Lab, LabOptions, Scenario};

const WAIT: Duration = Duration::from_secs(90);
const ALERT_TOKEN: &str = "alert-bearer-8c1f2e4d9b7a";

// ---------------------------------------------------------------------------------------------
// The detector
// ---------------------------------------------------------------------------------------------

/// A secret to look for, with a name for the failure message.
#[derive(Debug, Clone)]
struct Known {
    what: String,
    value: String,
}

fn known(what: impl Into<String>, value: impl Into<String>) -> Known {
    Known {
        what: what.into(),
        value: value.into(),
    }
}

fn is_b64url(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'-' || b == b'_'
}

/// Every place `text` carries a secret: a known value, or a JWT- or Vault-token-shaped word.
fn leaks(text: &str, secrets: &[Known]) -> Vec<String> {
    let mut found = Vec::new();
    for s in secrets {
        if !s.value.is_empty() && text.contains(&s.value) {
            found.push(format!(
                "{} ({}…)",
                s.what,
                &s.value[..s.value.len().min(8)]
            ));
        }
    }
    let bytes = text.as_bytes();
    let shaped = |prefix: &str, min: usize, ok: fn(u8) -> bool| {
        text.match_indices(prefix).find_map(|(at, _)| {
            let rest = &bytes[at + prefix.len()..];
            let n = rest.iter().take_while(|b| ok(**b)).count();
            (n >= min).then(|| text[at..at + prefix.len() + n.min(16)].to_string())
        })
    };
    if let Some(jwt) = shaped("eyJ", 10, is_b64url) {
        found.push(format!("a JWT-shaped word ({jwt}…)"));
    }
    for prefix in ["hvs.", "hvb.", "hvr."] {
        if let Some(t) = shaped(prefix, 10, |b| b.is_ascii_alphanumeric()) {
            found.push(format!("a Vault-token-shaped word ({t}…)"));
        }
    }
    for prefix in ["xoxb-", "xapp-", "xoxp-"] {
        if let Some(t) = shaped(prefix, 4, |b| b.is_ascii_alphanumeric() || b == b'-') {
            found.push(format!("a Slack-token-shaped word ({t}…)"));
        }
    }
    found
}

fn assert_clean(where_: &str, text: &str, secrets: &[Known]) {
    let found = leaks(text, secrets);
    if !found.is_empty() {
        let line = text
            .lines()
            .find(|l| !leaks(l, secrets).is_empty())
            .unwrap_or_default();
        let line: String = line.chars().take(600).collect();
        panic!("{where_} carries a secret: {found:?}\nfirst such line: {line}");
    }
}

/// Every JWT in `text`, whole.
fn jwts_in(text: &str) -> Vec<String> {
    let bytes = text.as_bytes();
    text.match_indices("eyJ")
        .map(|(at, _)| {
            let n = bytes[at..]
                .iter()
                .take_while(|b| is_b64url(**b) || **b == b'.')
                .count();
            text[at..at + n].trim_end_matches('.').to_string()
        })
        .filter(|t| t.matches('.').count() == 2)
        .collect()
}

/// What the lab issued or was handed: its Vault token, the bot's Kubernetes token, the
/// reviewer JWT before and after a fix, and every JWT seen in a request to it.
fn lab_secrets(lab: &Lab) -> Vec<Known> {
    let mut out = vec![known("the bot's Kubernetes token", lab.bot_kube_token())];
    let vault_token = lab.vault_token();
    if vault_token == vault_triage::lab::ROOT_TOKEN {
        // The dev root token is the word "root", which legitimately appears in text
        // (`kube-root-ca.crt`): look for it where a token would be.
        for shape in [
            "Bearer {}",
            "X-Vault-Token: {}",
            "x-vault-token\":\"{}",
            "token=\"{}\"",
            "token\":\"{}\"",
            "token: {}",
            "token={}",
        ] {
            out.push(known(
                "the lab's Vault (root) token",
                shape.replace("{}", &vault_token),
            ));
        }
    } else {
        out.push(known("the lab's Vault token", vault_token));
    }
    if let Some(cfg) = &lab.vault_setup().auth_config {
        out.push(known("the reviewer JWT", cfg.token_reviewer_jwt.clone()));
    }
    if let Some(jwt) = lab
        .vault_auth_config()
        .and_then(|c| c["token_reviewer_jwt"].as_str().map(str::to_string))
    {
        out.push(known("the current reviewer JWT", jwt));
    }
    for r in lab.kube_requests() {
        for jwt in jwts_in(&r.body) {
            out.push(known(format!("a JWT sent to {} {}", r.method, r.path), jwt));
        }
    }
    out
}

fn chat_secrets() -> Vec<Known> {
    vec![
        known("the Slack bot token", slack_fake::BOT_TOKEN),
        known("the Slack signing secret", slack_fake::SIGNING_SECRET),
        known("the Discord bot token", discord_support::BOT_TOKEN),
        known("the alert bearer token", ALERT_TOKEN),
    ]
}

#[test]
fn the_detector_finds_a_planted_secret() {
    let jwt = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl";
    let secrets = vec![known("a planted password", "hunter2-correct-horse")];
    let clean = r#"{"level":"INFO","message":"triage done","verdict":"reviewer_jwt_expired","token":"***"}"#;
    assert_eq!(leaks(clean, &secrets), Vec::<String>::new());
    for planted in [
        format!(r#"{{"message":"login","jwt":"{jwt}"}}"#),
        r#"{"client_token":"hvs.CAESIabcdefghijklmnop"}"#.to_string(),
        "Authorization: Bearer xoxb-1234-5678-abcdef".to_string(),
        "the password is hunter2-correct-horse, oops".to_string(),
    ] {
        assert!(!leaks(&planted, &secrets).is_empty(), "missed: {planted}");
    }
    assert_eq!(jwts_in(&format!("x={jwt}.")), vec![jwt.to_string()]);

    // Through a real subscriber of the same shape as the one the flows use.
    let buf = Buffer::default();
    let subscriber = tracing_subscriber::fmt()
        .json()
        .flatten_event(true)
        .with_env_filter(tracing_subscriber::EnvFilter::new("debug"))
        .with_writer(buf.clone())
        .finish();
    tracing::subscriber::with_default(subscriber, || {
        tracing::debug!(token = jwt, "a careless log line");
    });
    let logged = buf.text();
    assert!(logged.contains("a careless log line"), "{logged}");
    let found = leaks(&logged, &[]);
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(
        std::panic::catch_unwind(|| assert_clean("the planted log", &logged, &[])).is_err(),
        "assert_clean must fail on a planted secret"
    );
}

// ---------------------------------------------------------------------------------------------
// Log capture
// ---------------------------------------------------------------------------------------------

/// A shared in-memory log sink.
#[derive(Clone, Default)]
struct Buffer(Arc<Mutex<Vec<u8>>>);

impl Buffer {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

impl Write for Buffer {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(data);
        Ok(data.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Buffer {
    type Writer = Buffer;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

/// Collects every log line of this thread at debug, as JSON, while the guard lives. The
/// in-process flows run on a current-thread runtime, so this is every line of the flow (and
/// none of the tests running beside it).
fn capture_logs() -> (Buffer, tracing::subscriber::DefaultGuard) {
    let buf = Buffer::default();
    let guard =
        tracing::subscriber::set_default(vault_triage::telemetry::json("debug", buf.clone()));
    (buf, guard)
}

/// The flow's logs carry debug lines and no secret.
fn assert_logs_clean(logs: &Buffer, secrets: &[Known]) {
    let text = logs.text();
    assert!(
        text.lines().any(|l| l.contains("\"level\":\"DEBUG\"")),
        "no debug line was captured"
    );
    assert_clean("the logs", &text, secrets);
}

// ---------------------------------------------------------------------------------------------
// In-process flows
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn a_slack_command_to_a_verified_fix_leaks_no_secret() {
    let (logs, _logging) = capture_logs();
    let app = TestApp::with(Options {
        discord: false,
        ..Options::default()
    })
    .await;
    let (fake, bot) = (&app.slack, &app.slack_bot);
    let mut answers = Vec::new();

    let r = bot.command("U0ALICE", "", &fake.response_url("cmd")).await;
    answers.push(r.text().await.unwrap());
    let summary = fake
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
    // Preview the plan (ephemeral), then request the rotation.
    let buttons = slack_fake::buttons(&summary.body);
    let preview = &buttons.iter().find(|b| b.0 == "Preview plan").unwrap().1;
    bot.click(
        "U0BOB",
        preview,
        &summary_ts,
        None,
        &fake.response_url("preview"),
    )
    .await;
    fake.wait_for("the preview", WAIT, |c| {
        c.iter().find(|c| c.method == "respond/preview").cloned()
    })
    .await;
    let r = bot
        .click(
            "U0ALICE",
            &buttons[0].1,
            &summary_ts,
            None,
            &fake.response_url("alice"),
        )
        .await;
    answers.push(r.text().await.unwrap());
    let card = fake
        .wait_for("the approval card", WAIT, |c| {
            slack_fake::post_where(c, |b| b["thread_ts"] == summary_ts.as_str())
        })
        .await;
    let approve = slack_fake::buttons(&card.body)
        .into_iter()
        .find(|(_, id)| id.starts_with("vt:approve:"))
        .unwrap()
        .1;
    let card_ts = card.ts.clone().unwrap();
    for user in ["U0ALICE", "U0BOB", "U0CAROL"] {
        let r = bot
            .click(
                user,
                &approve,
                &card_ts,
                Some(&summary_ts),
                &fake.response_url(user),
            )
            .await;
        answers.push(r.text().await.unwrap());
        if user == "U0BOB" {
            fake.wait_for("bob's approval", WAIT, |c| {
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
    fake.wait_for("the closing line", WAIT, |c| {
        slack_fake::post_where(c, |b| {
            b["text"]
                .as_str()
                .unwrap_or_default()
                .starts_with("✅ reconfigure-auth")
        })
    })
    .await;
    // Reviewer status after the fix, too: it talks about tokens.
    let posts =
        |c: &[slack_fake::Call]| c.iter().filter(|c| c.method == "chat.postMessage").count();
    let before = posts(&fake.calls());
    bot.command("U0ALICE", "reviewer", &fake.response_url("reviewer"))
        .await;
    fake.wait_for("the reviewer status", WAIT, |c| {
        (posts(c) > before).then_some(())
    })
    .await;

    let mut secrets = lab_secrets(&app.lab);
    secrets.extend(chat_secrets());
    assert!(
        secrets.iter().any(|s| s.what.starts_with("a JWT sent to")),
        "the flow exercised the lab's tokens"
    );
    let calls = app.said().await.slack;
    assert!(calls.len() >= 8, "{} calls", calls.len());
    for c in &calls {
        assert_clean(
            &format!("Slack {}", c.method),
            &c.body.to_string(),
            &secrets,
        );
    }
    assert_clean("the Slack edge's answers", &answers.join("\n"), &secrets);
    assert_logs_clean(&logs, &secrets);
    app.finish().await;
}

#[tokio::test]
async fn a_discord_command_to_a_verified_fix_leaks_no_secret() {
    use discord_support as d;
    let (logs, _logging) = capture_logs();
    let app = TestApp::with(Options {
        slack: false,
        ..Options::default()
    })
    .await;
    let (fake, base) = (&app.discord, app.url());
    let mut answers = Vec::new();

    let (_, a, _) = d::post_signed(base, &d::command("tok-1", d::ALICE, "triage", &[])).await;
    answers.push(a);
    let summary = fake
        .wait_for("the summary", 1, |c| {
            c.is(
                "PATCH",
                &format!("/webhooks/{}/tok-1/", d::APP),
                "/messages/@original",
            )
        })
        .await
        .remove(0);
    let summary_msg = d::message(&summary.answered_id(), d::CHANNEL, &summary.body);
    let rotate = summary.buttons()[0].2.clone();
    let (_, a, _) =
        d::post_signed(base, &d::click("tok-2", d::ALICE, &rotate, summary_msg, 0)).await;
    answers.push(a);
    let card = fake
        .wait_for("the approval card", 1, |c| {
            c.method == "POST"
                && c.path.starts_with("/channels/")
                && c.path.ends_with("/messages")
                && !c.buttons().is_empty()
        })
        .await
        .remove(0);
    let approve = card
        .buttons()
        .into_iter()
        .find(|b| b.2.starts_with("vt:approve:"))
        .unwrap()
        .2;
    let card_msg = d::message(
        &card.answered_id(),
        card.path
            .trim_start_matches("/channels/")
            .trim_end_matches("/messages"),
        &card.body,
    );
    for (i, user) in [d::BOB, d::CAROL].into_iter().enumerate() {
        let (_, a, _) = d::post_signed(
            base,
            &d::click(&format!("tok-a{i}"), user, &approve, card_msg.clone(), 11),
        )
        .await;
        answers.push(a);
        if i == 0 {
            fake.wait_for("bob's approval", 1, |c| {
                c.method == "PATCH" && c.body.to_string().contains("1 so far")
            })
            .await;
        }
    }
    fake.wait_for("the closing line", 1, |c| {
        c.body["content"]
            .as_str()
            .unwrap_or_default()
            .starts_with("✅ reconfigure-auth")
    })
    .await;

    let mut secrets = lab_secrets(&app.lab);
    secrets.extend(chat_secrets());
    let calls = app.said().await.discord;
    assert!(calls.len() >= 6, "{} calls", calls.len());
    for c in &calls {
        assert_clean(
            &format!("Discord {} {}", c.method, c.path),
            &c.body.to_string(),
            &secrets,
        );
        // The interaction token is in the path by design; the bot token only in its header.
        assert!(!c.path.contains(d::BOT_TOKEN));
    }
    assert_clean(
        "the Discord endpoint's answers",
        &answers.join("\n"),
        &secrets,
    );
    assert_logs_clean(&logs, &secrets);
    app.finish().await;
}

#[tokio::test]
async fn an_alert_delivery_leaks_no_secret() {
    let (logs, _logging) = capture_logs();
    let app = TestApp::with(Options {
        discord: false,
        configure: |cfg| {
            cfg.alerts.tokens = vec![Secret::new(ALERT_TOKEN)];
            cfg.chat.slack_channel = Some(slack_fake::CHANNEL.into());
        },
        ..Options::default()
    })
    .await;
    let body = std::fs::read(format!(
        "{}/tests/fixtures/alertmanager/firing.raw.json",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    let http = reqwest::Client::new();
    let mut answers = Vec::new();
    for auth in [
        format!("Bearer {ALERT_TOKEN}"),
        "Bearer wrong-token".to_string(),
    ] {
        let r = http
            .post(format!("{}/alerts/alertmanager", app.url()))
            .header("authorization", auth)
            .body(body.clone())
            .send()
            .await
            .unwrap();
        answers.push(r.text().await.unwrap());
    }
    let posted = app.said().await.slack;
    assert!(
        posted.iter().any(|c| c.body.get("thread_ts").is_some()
            && c.body["text"]
                .as_str()
                .unwrap_or_default()
                .contains("reviewer token expired")),
        "the triage summary is in the incident's thread"
    );

    let mut secrets = lab_secrets(&app.lab);
    secrets.extend(chat_secrets());
    secrets.push(known("the refused bearer token", "wrong-token"));
    let posted = format!("{:?}", posted.iter().map(|c| &c.body).collect::<Vec<_>>());
    assert!(posted.len() > 200);
    assert_clean("the incident messages", &posted, &secrets);
    assert_clean(
        "the alert endpoint's answers",
        &answers.join("\n"),
        &secrets,
    );
    assert_logs_clean(&logs, &secrets);
    app.finish().await;
}

// ---------------------------------------------------------------------------------------------
// The binary
// ---------------------------------------------------------------------------------------------

/// Runs the binary with debug JSON logs; returns stdout and stderr.
fn run(args: &[&str], env: &[(String, String)]) -> (String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_vault-triage"))
        .args(args)
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .env("VAULT_TRIAGE_LOG", "debug")
        .env("VAULT_TRIAGE_LOG_FORMAT", "json")
        .output()
        .expect("running vault-triage");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        out.status.code().is_some_and(|c| c == 0 || c == 2),
        "{args:?}: {:?}\n{stderr}",
        out.status
    );
    (stdout, stderr)
}

#[test]
fn the_demo_on_slack_and_discord_leaks_no_secret() {
    for platform in ["slack", "discord"] {
        let (stdout, stderr) = run(&["demo", "--chat", platform], &[]);
        assert!(
            stdout.contains("What the bot posts on"),
            "{platform}: {stdout}"
        );
        assert!(
            stderr.lines().filter(|l| l.starts_with('{')).count() > 10,
            "{platform}: debug logs were captured:\n{stderr}"
        );
        assert_clean(&format!("demo --chat {platform} output"), &stdout, &[]);
        assert_clean(&format!("demo --chat {platform} logs"), &stderr, &[]);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probe_json_leaks_no_secret() {
    common::init_crypto();
    // The bot uses the root token in most scenarios and an `hvs.` token of its own in
    // `inconclusive`.
    for scenario in [Scenario::ReviewerJwtExpired, Scenario::Inconclusive] {
        let lab = Lab::start(scenario, LabOptions::default()).await.unwrap();
        let (_dir, files) = common::lab_files(&lab);
        let env = lab.exports(&files);
        let (stdout, stderr) =
            tokio::task::spawn_blocking(move || run(&["probe", "--format", "json"], &env))
                .await
                .unwrap();
        let report: Value = serde_json::from_str(&stdout).expect("probe prints JSON");
        assert_eq!(report["verdict"]["code"], scenario.verdict_code());
        assert!(
            stderr.lines().any(|l| l.contains("\"level\":\"DEBUG\"")),
            "{stderr}"
        );
        let secrets = lab_secrets(&lab);
        if scenario == Scenario::Inconclusive {
            assert!(lab.vault_token().starts_with("hvs."));
        }
        assert_clean(&format!("probe output ({scenario})"), &stdout, &secrets);
        assert_clean(&format!("probe logs ({scenario})"), &stderr, &secrets);
        lab.shutdown().await;
    }
}
