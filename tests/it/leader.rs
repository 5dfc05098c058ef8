//! Two `serve` processes against the lab's Kubernetes API: one leads through a Lease, the
//! other forwards to it; when the leader dies the follower takes over within the Lease
//! duration and, loading the shared state (one SQLite file, or PostgreSQL), loses no
//! incident. On PostgreSQL a hundred approval clicks spread over both run the fix once.

use crate::support as common;

use std::time::{Duration, Instant};

use vault_triage::lab::{Lab, LabOptions, Scenario};
use vault_triage::store::{AuditFilter, Event, Store};

use crate::support::slack::{self as fake_slack, FakeSlack, buttons, post_where};
use crate::support::state::{Backend, FreshState};

const LEASE_SECONDS: u64 = 3;

fn spawn(
    lab: &Lab,
    files: &vault_triage::lab::LabFiles,
    name: &str,
    state: &FreshState,
    slack: Option<&FakeSlack>,
) -> common::ServeProcess {
    common::ServeProcess::start(lab, files, |cmd, url| {
        cmd.env("VAULT_TRIAGE_LEADER_ELECTION", "true")
            .env("POD_NAME", name)
            .env("POD_NAMESPACE", "vault-triage")
            .env("VAULT_TRIAGE_ADVERTISE_URL", url)
            .env("VAULT_TRIAGE_LEASE_SECONDS", LEASE_SECONDS.to_string());
        if let Some(url) = &state.settings.url {
            cmd.env("VAULT_TRIAGE_STATE_URL", url);
        }
        if let Some(fake) = slack {
            cmd.env("SLACK_SIGNING_SECRET", fake_slack::SIGNING_SECRET)
                .env("SLACK_BOT_TOKEN", fake_slack::BOT_TOKEN)
                .env("SLACK_API_URL", fake.api_url());
        }
    })
}

async fn readyz(url: &str) -> String {
    match reqwest::get(format!("{url}/readyz")).await {
        Ok(r) => r.text().await.unwrap_or_default(),
        Err(_) => String::new(),
    }
}

async fn wait_for(url: &str, want: &str, secs: u64) -> Duration {
    let start = Instant::now();
    loop {
        let got = readyz(url).await;
        if got.contains(want) {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < Duration::from_secs(secs),
            "{url}: waited for {want:?}, readyz says {got:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn alert(url: &str) -> (u16, serde_json::Value) {
    let body = std::fs::read(format!(
        "{}/tests/fixtures/alertmanager/firing.raw.json",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    let r = reqwest::Client::new()
        .post(format!("{url}/alerts/alertmanager"))
        .header("authorization", "Bearer t0k")
        .body(body)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or_default())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_forwards_and_takes_over_when_the_leader_dies() {
    for backend in Backend::ALL {
        follower_takes_over(*backend).await;
    }
}

async fn follower_takes_over(backend: Backend) {
    common::init_crypto();
    let state = FreshState::new(backend).await;
    let lab = Lab::start(Scenario::Healthy, LabOptions::default())
        .await
        .unwrap();
    let (_dir, files) = common::lab_files(&lab);
    // Alert credentials and no automatic triage (this test is about the replicas).
    let mut config = std::fs::read_to_string(&files.config).unwrap();
    config.push_str("\n[alerts]\ntokens = [\"t0k\"]\n\n[alerts.trigger]\nenabled = false\n");
    std::fs::write(&files.config, config).unwrap();

    let a = spawn(&lab, &files, "replica-a", &state, None);
    wait_for(&a.url, "ready (leader)", 30).await;
    let b = spawn(&lab, &files, "replica-b", &state, None);
    wait_for(&b.url, &format!("ready (follower of {})", a.url), 30).await;

    // A delivery reaching the follower is served by the leader.
    let (status, body) = alert(&b.url).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["changed"], true);
    let (_, again) = alert(&a.url).await;
    assert_eq!(again["changed"], false, "the leader already has it");

    // The leader dies; the follower takes over within the Lease duration (plus one look).
    let mut a = a;
    a.child.kill().unwrap();
    let took = wait_for(&b.url, "ready (leader)", 30).await;
    assert!(
        took <= Duration::from_secs(LEASE_SECONDS + LEASE_SECONDS / 3 + 2),
        "handover took {took:?}"
    );
    // The new leader loaded the shared state: the incident is known, nothing duplicates.
    let (status, after) = alert(&b.url).await;
    assert_eq!(status, 200);
    assert_eq!(after["changed"], false, "{backend:?}: {after}");
    assert_eq!(after["incident"], body["incident"]);
    let leases: Vec<_> = lab
        .kube_requests()
        .into_iter()
        .filter(|r| r.path.contains("/leases"))
        .collect();
    assert!(
        leases.iter().any(|r| r.method == "PUT"),
        "renewals and the takeover are Lease updates"
    );
    drop(b);
    lab.shutdown().await;
}

/// Two replicas on one PostgreSQL: a command to one, the fix requested on the other, and a
/// hundred approval clicks spread over both at once. The fix runs once: one reviewer token
/// minted, one execution recorded.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[cfg_attr(skip_postgres, ignore = "VAULT_TRIAGE_SKIP_POSTGRES=1")]
async fn two_replicas_on_one_postgres_run_a_fix_once_for_a_hundred_clicks() {
    const CLICKERS: usize = 100;
    const WAIT: Duration = Duration::from_secs(60);
    common::init_crypto();
    let state = FreshState::new(Backend::Postgres).await;
    let lab = Lab::start(Scenario::ReviewerJwtExpired, LabOptions::default())
        .await
        .unwrap();
    let (_dir, files) = common::lab_files(&lab);
    let approvers: Vec<String> = (0..CLICKERS).map(|i| format!("\"U{i:07}\"")).collect();
    let config = std::fs::read_to_string(&files.config)
        .unwrap()
        .replace("[reviewer]\n", "[reviewer]\ncheck_every = \"0s\"\n");
    let config = format!(
        "{config}\n[chat]\nslack_channel = \"{}\"\n\n[[approvals]]\naction = \"reconfigure-auth\"\napprovers = [{}]\nrequired = 2\n",
        fake_slack::CHANNEL,
        approvers.join(", ")
    );
    std::fs::write(&files.config, config).unwrap();
    let fake = FakeSlack::start().await;
    let a = spawn(&lab, &files, "replica-a", &state, Some(&fake));
    wait_for(&a.url, "ready (leader)", 30).await;
    let b = spawn(&lab, &files, "replica-b", &state, Some(&fake));
    wait_for(&b.url, &format!("ready (follower of {})", a.url), 30).await;
    let bots = [&a.url, &b.url].map(|base| fake_slack::Bot {
        base: base.clone(),
        http: reqwest::Client::new(),
    });

    // The command reaches the follower, the request is made on the leader.
    let r = bots[1]
        .command("U0REQUESTER", "", &fake.response_url("cmd"))
        .await;
    assert_eq!(r.status(), 200);
    let summary = fake
        .wait_for("the summary", WAIT, |c| {
            post_where(c, |b| {
                b.get("thread_ts").is_none()
                    && b["text"]
                        .as_str()
                        .unwrap_or_default()
                        .contains("reviewer token expired")
            })
        })
        .await;
    let summary_ts = summary.ts.clone().unwrap();
    let rotate = buttons(&summary.body)[0].1.clone();
    bots[0]
        .click(
            "U0REQUESTER",
            &rotate,
            &summary_ts,
            None,
            &fake.response_url("rotate"),
        )
        .await;
    let card = fake
        .wait_for("the approval card", WAIT, |c| {
            post_where(c, |b| b["thread_ts"] == summary_ts.as_str())
        })
        .await;
    let card_ts = card.ts.clone().unwrap();
    let approve = buttons(&card.body)
        .into_iter()
        .find(|(_, id)| id.starts_with("vt:approve:"))
        .unwrap()
        .1;

    let clicks = (0..CLICKERS).map(|i| {
        let (bot, approve, card_ts, summary_ts) = (&bots[i % 2], &approve, &card_ts, &summary_ts);
        let url = fake.response_url(&format!("click-{i}"));
        async move {
            bot.click(
                &format!("U{i:07}"),
                approve,
                card_ts,
                Some(summary_ts),
                &url,
            )
            .await
            .status()
            .as_u16()
        }
    });
    for status in futures::future::join_all(clicks).await {
        assert_eq!(status, 200);
    }
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
    let minted = lab
        .kube_requests()
        .iter()
        .filter(|r| r.method == "POST" && r.path.ends_with("/serviceaccounts/vault-auth/token"))
        .count();
    assert_eq!(minted, 1, "the reviewer token was minted once");
    let store = Store::open(&state.settings).await.unwrap();
    let (events, _) = store.audit(&AuditFilter::default()).await.unwrap();
    let count = |f: fn(&Event) -> bool| events.iter().filter(|e| f(&e.event)).count();
    assert_eq!(count(|e| matches!(e, Event::ExecutionStarted { .. })), 1);
    assert_eq!(count(|e| matches!(e, Event::ApprovalGranted { .. })), 2);
    assert_eq!(
        count(|e| matches!(e, Event::ApprovalRefused { .. })),
        CLICKERS - 2,
        "every other click was refused and recorded"
    );
    drop((a, b));
    lab.shutdown().await;
}
