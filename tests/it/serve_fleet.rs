//! `serve` over several clusters (`[[clusters]]`, design §11.2), driven through Slack against
//! the lab's fleet (one Vault, a `kubernetes-<name>` mount and a simulated Kubernetes API per
//! cluster): one summary covers every cluster, a fix is planned, approved and run in the
//! failing cluster only, `cluster NAME` and `status` answer as the contract says, and alerts
//! are routed by their `cluster` label.

use std::time::Duration;

use serde_json::{Value, json};
use vault_triage::lab::{Fleet, Scenario};

use crate::support::slack::*;
use crate::support::{Options, TestApp, canary_token_requests};

const WAIT: Duration = Duration::from_secs(90);

const FLEET: [(&str, Scenario); 3] = [
    ("prod-a", Scenario::Healthy),
    ("prod-b", Scenario::ReviewerJwtExpired),
    ("prod-c", Scenario::Healthy),
];

/// The top-level message in the incident channel whose text contains `needle`, posted after
/// the first `skip` calls.
fn channel_post(calls: &[Call], skip: usize, needle: &str) -> Option<Call> {
    post_where(&calls[skip.min(calls.len())..], |b| {
        b["channel"] == CHANNEL && b.get("thread_ts").is_none() && all_text(b).contains(needle)
    })
}

/// A cluster's auth mount config in the fleet's Vault, with the stored reviewer JWT.
fn mount_config(fleet: &Fleet, cluster: &str) -> Value {
    fleet
        .vault_lab()
        .vault_auth_config_at(&Fleet::auth_mount(cluster))
        .expect("a configured mount")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_summary_covers_the_fleet_and_a_fix_runs_in_the_failing_cluster_only() {
    let app = TestApp::fleet(&FLEET, Options::default()).await;
    let (fake, bot) = (&app.slack, &app.slack_bot);
    let prod_a_before = mount_config(&app.lab, "prod-a");
    let prod_b_before = mount_config(&app.lab, "prod-b");
    let succeeded = r#"vault_triage_remediations_total{cluster="prod-b",action="reconfigure-auth",outcome="succeeded"}"#;
    let was = app.metric(succeeded).await;

    // One summary: a line per cluster, the failing one's detail and buttons.
    let r = bot.command("U0ALICE", "", &fake.response_url("cmd")).await;
    assert_eq!(r.status(), 200);
    let summary = fake
        .wait_for("the fleet summary", WAIT, |c| {
            channel_post(
                c,
                0,
                "3 clusters · 1 with a fault: prod-b reviewer_jwt_expired",
            )
        })
        .await;
    let text = all_text(&summary.body);
    for line in ["*prod-a*", "*prod-b*", "*prod-c*", "Cluster prod-b"] {
        assert!(text.contains(line), "{line} missing: {text}");
    }
    assert!(
        text.find("*prod-b*") < text.find("*prod-a*"),
        "the failing cluster is on top: {text}"
    );
    let labels: Vec<String> = buttons(&summary.body).into_iter().map(|b| b.0).collect();
    assert_eq!(labels[0], "Rotate reviewer token · prod-b", "{labels:?}");
    assert!(
        labels.iter().all(|l| l.ends_with(" · prod-b")),
        "{labels:?}"
    );
    let summary_ts = summary.ts.clone().unwrap();
    assert_eq!(app.said().await.slack_methods(), ["chat.postMessage"]);

    // alice requests the rotation; the card names the cluster.
    let rotate = buttons(&summary.body)[0].1.clone();
    bot.click(
        "U0ALICE",
        &rotate,
        &summary_ts,
        None,
        &fake.response_url("a"),
    )
    .await;
    let card = fake
        .wait_for("the approval card", WAIT, |c| {
            post_where(c, |b| b["thread_ts"] == summary_ts.as_str())
        })
        .await;
    assert!(all_text(&card.body).contains("prod-b"), "{}", card.body);
    let card_ts = card.ts.clone().unwrap();
    let approve = buttons(&card.body)
        .into_iter()
        .find(|(_, id)| id.starts_with("vt:approve:"))
        .unwrap()
        .1;
    for who in ["U0BOB", "U0CAROL"] {
        bot.click(
            who,
            &approve,
            &card_ts,
            Some(&summary_ts),
            &fake.response_url(who),
        )
        .await;
        app.settle().await;
    }
    fake.wait_for("the closing line", WAIT, |c| {
        post_where(c, |b| {
            b["thread_ts"] == summary_ts.as_str()
                && b["text"]
                    .as_str()
                    .unwrap_or_default()
                    .starts_with("✅ reconfigure-auth")
        })
    })
    .await;
    assert_eq!(app.metric(succeeded).await, was + 1.0);
    // prod-b's mount was rewritten; prod-a's is exactly as it was.
    assert_ne!(mount_config(&app.lab, "prod-b"), prod_b_before);
    assert_eq!(mount_config(&app.lab, "prod-a"), prod_a_before);
    let request = app.services().fixes.requests().pop().expect("the request");
    assert_eq!(request.cluster, "prod-b");
    app.said().await;

    // The fleet is healthy again, in one summary.
    let before = fake.calls().len();
    bot.command("U0ALICE", "", &fake.response_url("cmd-2"))
        .await;
    fake.wait_for("the healthy fleet", WAIT, |c| {
        channel_post(c, before, "3 clusters · 0 with a fault")
    })
    .await;
    app.said().await;
    app.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_name_triages_one_and_status_shows_the_fleet_soonest_expiry_first() {
    let app = TestApp::fleet(&FLEET, Options::default()).await;
    let (fake, bot) = (&app.slack, &app.slack_bot);

    let r = bot
        .command("U0ALICE", "cluster prod-b", &fake.response_url("one"))
        .await;
    assert_eq!(
        r.json::<Value>().await.unwrap(),
        json!({"response_type": "in_channel", "text": "🔎 Triaging cluster `prod-b`…"})
    );
    let one = fake
        .wait_for("prod-b's summary", WAIT, |c| {
            channel_post(c, 0, "cluster prod-b")
        })
        .await;
    assert!(!all_text(&one.body).contains("prod-a"), "{}", one.body);
    assert_eq!(
        canary_token_requests(app.lab.lab("prod-a").unwrap()),
        0,
        "only prod-b was triaged"
    );
    app.said().await;

    let before = fake.calls().len();
    bot.command("U0ALICE", "cluster nope", &fake.response_url("nope"))
        .await;
    fake.wait_for("the list of clusters", WAIT, |c| {
        c[before..]
            .iter()
            .find(|c| {
                all_text(&c.body).contains(
                    "There is no cluster `nope`. The clusters are: `prod-a`, `prod-b`, `prod-c`.",
                )
            })
            .cloned()
    })
    .await;
    app.said().await;

    let before = fake.calls().len();
    bot.command("U0ALICE", "status", &fake.response_url("status"))
        .await;
    let status = fake
        .wait_for("the fleet status", WAIT, |c| {
            channel_post(c, before, "3 clusters · 1 with a fault")
        })
        .await;
    let text = all_text(&status.body);
    assert!(text.contains("reviewer expired"), "{text}");
    assert!(
        text.find("*prod-b*") < text.find("*prod-a*") && text.find("*prod-b*").is_some(),
        "the expired reviewer comes first: {text}"
    );
    assert!(buttons(&status.body).is_empty());
    app.said().await;
    app.finish().await;
}

/// The fixture Alertmanager group, with `cluster` on every alert when given; its group key
/// made unique by `key`.
fn alert(key: &str, cluster: Option<&str>) -> Value {
    let mut alert: Value = serde_json::from_str(
        &std::fs::read_to_string(format!(
            "{}/tests/fixtures/alertmanager/firing.raw.json",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap(),
    )
    .unwrap();
    alert["groupKey"] = json!(format!("{{}}:{{key=\"{key}\"}}"));
    alert["groupLabels"]["key"] = json!(key);
    if let Some(c) = cluster {
        for a in alert["alerts"].as_array_mut().unwrap() {
            a["labels"]["cluster"] = json!(c);
        }
    }
    alert
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alerts_are_triaged_in_the_cluster_their_label_names_or_in_all() {
    let app = TestApp::fleet(
        &FLEET,
        Options {
            configure: |cfg| {
                cfg.alerts.tokens = vec![vault_triage::config::Secret::new("t")];
                cfg.chat.slack_channel = Some(CHANNEL.into());
            },
            ..Options::default()
        },
    )
    .await;
    let post = |body: Value| {
        let url = format!("{}/alerts/alertmanager", app.url());
        async move {
            let r = reqwest::Client::new()
                .post(url)
                .header("authorization", "Bearer t")
                .body(body.to_string())
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200);
        }
    };
    let canary = |name: &str| canary_token_requests(app.lab.lab(name).unwrap());

    // Labelled prod-b: prod-b's summary alone, in the incident's thread.
    post(alert("one", Some("prod-b"))).await;
    let said = app.said().await;
    let summary = post_where(&said.slack, |b| {
        b.get("thread_ts").is_some() && all_text(b).contains("cluster prod-b")
    })
    .expect("prod-b's summary in the thread");
    assert!(!all_text(&summary.body).contains("prod-a"));
    assert_eq!(
        (canary("prod-a"), canary("prod-b"), canary("prod-c")),
        (0, 1, 0)
    );

    // Without the label: every cluster, in one summary.
    post(alert("all", None)).await;
    let said = app.said().await;
    let summary = post_where(&said.slack, |b| {
        b.get("thread_ts").is_some() && all_text(b).contains("3 clusters · 1 with a fault")
    })
    .expect("the fleet summary in the thread");
    assert!(all_text(&summary.body).contains("*prod-c*"));
    assert_eq!(canary("prod-a"), 1);
    assert_eq!(canary("prod-c"), 1);
    app.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_summary_details_three_failing_clusters_and_names_the_rest() {
    let app = TestApp::fleet(
        &[
            ("a", Scenario::Healthy),
            ("b", Scenario::ReviewerJwtExpired),
            ("c", Scenario::ReviewerJwtExpired),
            ("d", Scenario::ReviewerJwtExpired),
            ("e", Scenario::ReviewerJwtExpired),
        ],
        Options::default(),
    )
    .await;
    let (fake, bot) = (&app.slack, &app.slack_bot);
    bot.command("U0ALICE", "", &fake.response_url("cmd")).await;
    let summary = fake
        .wait_for("the fleet summary", WAIT, |c| {
            channel_post(c, 0, "5 clusters · 4 with a fault")
        })
        .await;
    let text = all_text(&summary.body);
    assert!(
        text.contains("More clusters with a fault: `/vault-triage cluster e`"),
        "{text}"
    );
    let mut detailed: Vec<String> = buttons(&summary.body)
        .into_iter()
        .filter_map(|(label, _)| label.rsplit_once(" · ").map(|(_, c)| c.to_string()))
        .collect();
    detailed.dedup();
    assert_eq!(detailed, ["b", "c", "d"]);
    app.said().await;
    app.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_reviewer_watch_judges_every_cluster_and_announces_the_failing_one_once() {
    let app = TestApp::fleet(
        &[
            ("prod-a", Scenario::Healthy),
            ("prod-b", Scenario::ReviewerJwtExpired),
        ],
        Options {
            reviewer_watch: true,
            configure: |cfg| {
                for c in &mut cfg.clusters {
                    if let Some(r) = c.reviewer.as_mut() {
                        r.check_every = Duration::from_millis(300);
                    }
                }
                cfg.chat.slack_channel = Some(CHANNEL.into());
            },
            ..Options::default()
        },
    )
    .await;
    let card = app
        .slack
        .wait_for("the rotation's approval card", WAIT, |c| {
            post_where(c, |b| {
                b["thread_ts"].is_string() && all_text(b).contains("vt:approve:")
            })
        })
        .await;
    assert!(all_text(&card.body).contains("prod-b"), "{}", card.body);
    // More rounds over both clusters: the same judgements, nothing more said.
    let canary = |name: &str| canary_token_requests(app.lab.lab(name).unwrap());
    let rounds = (canary("prod-a"), canary("prod-b"));
    let deadline = tokio::time::Instant::now() + WAIT;
    while canary("prod-a") < rounds.0 + 3 || canary("prod-b") < rounds.1 + 3 {
        assert!(tokio::time::Instant::now() < deadline, "the watch stopped");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let said = app.said().await;
    assert_eq!(
        said.slack_methods(),
        ["chat.postMessage", "chat.postMessage"],
        "announced once"
    );
    let alert = all_text(&said.slack[0].body);
    assert!(
        alert.contains("The reviewer token of vault/vault-auth in cluster prod-b has expired"),
        "{alert}"
    );
    let requests = app.services().fixes.requests();
    assert_eq!(requests.len(), 1, "prod-a's reviewer is fine");
    assert_eq!(requests[0].cluster, "prod-b");
    app.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_discord_the_fleet_summary_is_one_embed_within_discords_limits() {
    use crate::support::discord::{ALICE, APP, command};
    let app = TestApp::fleet(
        &FLEET,
        Options {
            slack: false,
            ..Options::default()
        },
    )
    .await;
    let (status, _, _) = app
        .discord_interaction(&command("tok-fleet", ALICE, "triage", &[]))
        .await;
    assert_eq!(status, 200);
    let summary = app
        .discord
        .wait_for("the fleet summary", 1, |c| {
            c.is(
                "PATCH",
                &format!("/webhooks/{APP}/tok-fleet/"),
                "/messages/@original",
            )
        })
        .await
        .remove(0);
    let embed = summary.embed();
    assert_eq!(
        embed["title"],
        "🔴 3 clusters · 1 with a fault: prod-b reviewer_jwt_expired"
    );
    assert!(embed.to_string().len() < 6000 + 1000, "{embed}");
    let labels: Vec<String> = summary.buttons().into_iter().map(|b| b.0).collect();
    assert!(
        !labels.is_empty() && labels.iter().all(|l| l.contains(" · prod-b")),
        "{labels:?}"
    );

    let (status, _, _) = app
        .discord_interaction(&command("tok-one", ALICE, "cluster", &[("name", "prod-a")]))
        .await;
    assert_eq!(status, 200);
    let one = app
        .discord
        .wait_for("prod-a's summary", 1, |c| {
            c.is(
                "PATCH",
                &format!("/webhooks/{APP}/tok-one/"),
                "/messages/@original",
            )
        })
        .await
        .remove(0);
    assert!(
        one.embed().to_string().contains("cluster prod-a"),
        "{}",
        one.body
    );
    app.said().await;
    app.finish().await;
}
