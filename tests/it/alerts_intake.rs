//! Alert intake over HTTP against the lab: one incident per group with one root message,
//! one triage per cause in the thread, idempotent deliveries, refusals, storms and restarts.

use crate::support as common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::recording::RecordingChat;
use vault_triage::alerts::service::AlertService;
use vault_triage::config::FileConfig;
use vault_triage::config::Secret;
use vault_triage::lab::{Lab, LabOptions, Scenario};
use vault_triage::services::Services;

const TOKEN: &str = "s3cr3t-triage-token";

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(format!(
        "{}/tests/fixtures/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

struct Bot {
    addr: String,
    poster: Arc<RecordingChat>,
    service: Arc<AlertService>,
    services: Arc<Services>,
    server: tokio::task::JoinHandle<()>,
}

async fn start(lab: &Lab, files: &vault_triage::lab::LabFiles, state: &std::path::Path) -> Bot {
    let mut cfg = FileConfig::load(Some(&files.config)).unwrap();
    cfg.state.dir = state.to_path_buf();
    cfg.alerts.tokens = vec![Secret::new("old-token"), Secret::new(TOKEN)];
    cfg.alerts.basic = vec![Secret::new("am:pw")];
    cfg.alerts.max_body_bytes = 256 * 1024;
    cfg.chat.slack_channel = Some("C0INCIDENTS".into());
    let (services, service, poster) = common::alerts::alert_service(lab, files, cfg).await;
    let (addr, server) =
        common::alerts::serve(vault_triage::server::router(vec![service.router()])).await;
    Bot {
        addr,
        poster,
        service,
        services,
        server,
    }
}

async fn post(
    bot: &Bot,
    path: &str,
    auth: Option<&str>,
    body: Vec<u8>,
) -> (u16, serde_json::Value) {
    let mut req = reqwest::Client::new()
        .post(format!("{}{path}", bot.addr))
        .header("content-type", "application/json")
        .body(body);
    if let Some(a) = auth {
        req = req.header("authorization", a);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(serde_json::Value::Null))
}

/// Waits until the intake has no work in flight (every incident told, every triage posted);
/// then `cond` must hold.
async fn settled(bot: &Bot, what: &str, cond: impl Fn() -> bool) {
    tokio::time::timeout(Duration::from_secs(60), bot.services.work.idle())
        .await
        .expect("the intake's work did not finish");
    assert!(cond(), "after the work settled, no {what}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_vault_alert_group_gets_one_root_message_one_triage_and_its_resolution() {
    common::init_crypto();
    let lab = Lab::start(Scenario::ReviewerJwtExpired, LabOptions::default())
        .await
        .unwrap();
    let (_dir, files) = common::lab_files(&lab);
    let state = tempfile::tempdir().unwrap();
    let bot = start(&lab, &files, state.path()).await;
    let bearer = format!("Bearer {TOKEN}");

    let (status, body) = post(
        &bot,
        "/alerts/alertmanager",
        Some(&bearer),
        fixture("alertmanager/firing.raw.json"),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["changed"], true);
    let p = bot.poster.clone();
    settled(&bot, "the triage summary in the thread", || {
        p.replies()
            .iter()
            .any(|(_, m)| m.text.contains("reviewer token expired"))
    })
    .await;
    let roots = bot.poster.roots();
    assert_eq!(roots.len(), 1);
    assert_eq!(roots[0].0, "C0INCIDENTS");
    assert!(
        roots[0].1.text.contains("[FIRING:5] VaultPermissionDenied"),
        "{}",
        roots[0].1.text
    );
    let summary = bot
        .poster
        .replies()
        .into_iter()
        .find(|(_, m)| m.text.contains("reviewer token expired"))
        .unwrap()
        .1;
    assert!(
        summary
            .buttons
            .iter()
            .any(|b| b.label == "Rotate reviewer token")
    );

    // Alertmanager resends the same snapshot: no new message.
    let before = bot.poster.all().len();
    let (status, body) = post(
        &bot,
        "/alerts/alertmanager",
        Some(&bearer),
        fixture("alertmanager/firing.raw.json"),
    )
    .await;
    assert_eq!(
        (status, body["changed"].clone()),
        (200, serde_json::Value::Bool(false))
    );

    // Resolution edits the root message and says so in the thread.
    let (status, _) = post(
        &bot,
        "/alerts/alertmanager",
        Some(&bearer),
        fixture("alertmanager/resolved.raw.json"),
    )
    .await;
    assert_eq!(status, 200);
    settled(&bot, "the resolution note", || {
        p.replies()
            .iter()
            .any(|(_, m)| m.text.contains("✅ Resolved"))
    })
    .await;
    assert!(
        bot.poster
            .updates()
            .iter()
            .any(|(_, m)| m.text.starts_with("✅ [RESOLVED]"))
    );
    // A late copy of the firing snapshot changes nothing.
    let count = bot.poster.all().len();
    let (_, body) = post(
        &bot,
        "/alerts/alertmanager",
        Some(&bearer),
        fixture("alertmanager/firing.raw.json"),
    )
    .await;
    assert_eq!(body["changed"], false);
    settled(&bot, "silence after the late copy", || {
        bot.poster.all().len() == count
    })
    .await;
    assert!(count > before);
    assert_eq!(bot.poster.roots().len(), 1, "still one root message");
    let incident = bot.service.incidents().pop().unwrap();
    assert!(incident.is_resolved());
    assert_eq!(incident.triage.as_deref(), Some("reviewer_jwt_expired"));
    bot.server.abort();
    lab.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_credentials_and_bodies_are_refused_and_change_nothing() {
    common::init_crypto();
    let lab = Lab::start(Scenario::Healthy, LabOptions::default())
        .await
        .unwrap();
    let (_dir, files) = common::lab_files(&lab);
    let state = tempfile::tempdir().unwrap();
    let bot = start(&lab, &files, state.path()).await;
    let body = fixture("alertmanager/firing.raw.json");
    assert_eq!(
        post(&bot, "/alerts/alertmanager", None, body.clone())
            .await
            .0,
        401
    );
    assert_eq!(
        post(
            &bot,
            "/alerts/alertmanager",
            Some("Bearer wrong"),
            body.clone()
        )
        .await
        .0,
        401
    );
    assert_eq!(
        post(
            &bot,
            "/alerts/alertmanager",
            Some("Basic YW06eHg="),
            body.clone()
        )
        .await
        .0,
        401
    );
    let (status, err) = post(
        &bot,
        "/alerts/alertmanager",
        Some(&format!("Bearer {TOKEN}")),
        b"{broken".to_vec(),
    )
    .await;
    assert_eq!(status, 400);
    assert!(
        err["error"].as_str().unwrap().contains("not valid JSON"),
        "{err}"
    );
    let big = fixture("alertmanager/onegroup-500-alerts-firing.raw.json");
    let mut huge = big.clone();
    huge.extend(std::iter::repeat_n(b' ', 300 * 1024));
    assert_eq!(
        post(
            &bot,
            "/alerts/alertmanager",
            Some(&format!("Bearer {TOKEN}")),
            huge
        )
        .await
        .0,
        413
    );
    assert!(bot.service.incidents().is_empty());
    assert!(bot.poster.all().is_empty());
    // Basic credentials and the older token still work (rotation).
    assert_eq!(
        post(
            &bot,
            "/alerts/alertmanager",
            Some("Basic YW06cHc="),
            body.clone()
        )
        .await
        .0,
        200
    );
    assert_eq!(
        post(&bot, "/alerts/alertmanager", Some("Bearer old-token"), body)
            .await
            .0,
        200
    );
    // Every request is counted by source and answer, refusals included.
    let metrics = reqwest::get(format!("{}/metrics", bot.addr))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let count = |status: &str| {
        let series = format!(
            "vault_triage_webhook_requests_total{{source=\"alertmanager\",status=\"{status}\"}} "
        );
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(&series))
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    assert!(count("401") >= 3, "{metrics}");
    assert!(count("400") >= 1, "{metrics}");
    assert!(count("413") >= 1, "{metrics}");
    assert!(count("200") >= 2, "{metrics}");
    bot.server.abort();
    lab.shutdown().await;
}

fn storm_group(i: usize) -> Vec<u8> {
    let mut v: serde_json::Value =
        serde_json::from_slice(&fixture("alertmanager/capped-max_alerts5-burst-group.json"))
            .unwrap();
    v["receiver"] = "storm".into();
    v["groupKey"] =
        format!("{{}}:{{alertname=\"VaultPermissionDenied\", namespace=\"ns{i}\"}}").into();
    v["groupLabels"] =
        serde_json::json!({"alertname": "VaultPermissionDenied", "namespace": format!("ns{i}")});
    for a in v["alerts"].as_array_mut().unwrap() {
        a["labels"]["alertname"] = "VaultPermissionDenied".into();
        a["labels"]["namespace"] = format!("ns{i}").into();
        a["fingerprint"] = format!("{i:04}{}", &a["fingerprint"].as_str().unwrap()[4..]).into();
    }
    serde_json::to_vec(&v).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_storm_of_fifty_groups_gives_fifty_root_messages_and_one_triage() {
    common::init_crypto();
    let lab = Lab::start(Scenario::ReviewerJwtExpired, LabOptions::default())
        .await
        .unwrap();
    let (_dir, files) = common::lab_files(&lab);
    let state = tempfile::tempdir().unwrap();
    let bot = start(&lab, &files, state.path()).await;
    let bearer = format!("Bearer {TOKEN}");
    let started = Instant::now();
    let mut posts = Vec::new();
    for i in 0..50 {
        let (addr, body, bearer) = (bot.addr.clone(), storm_group(i), bearer.clone());
        posts.push(tokio::spawn(async move {
            let t = Instant::now();
            let r = reqwest::Client::new()
                .post(format!("{addr}/alerts/alertmanager"))
                .header("authorization", bearer)
                .body(body)
                .send()
                .await
                .unwrap();
            (r.status().as_u16(), t.elapsed())
        }));
    }
    for p in posts {
        let (status, took) = p.await.unwrap();
        assert_eq!(status, 200);
        assert!(took < Duration::from_secs(5), "intake answered in {took:?}");
    }
    let p = bot.poster.clone();
    settled(&bot, "50 root messages and 50 summaries", || {
        p.roots().len() == 50
            && p.replies()
                .iter()
                .filter(|(_, m)| m.text.contains("reviewer token expired"))
                .count()
                == 50
    })
    .await;
    let triages = crate::support::state::audit_in(state.path())
        .await
        .iter()
        .filter(|e| matches!(e.event, vault_triage::store::Event::TriageCompleted { .. }))
        .count();
    assert_eq!(triages, 1, "one triage for one cause");
    assert_eq!(bot.service.incidents().len(), 50);
    eprintln!("storm: 50 groups handled in {:?}", started.elapsed());
    bot.server.abort();
    lab.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_between_two_deliveries_keeps_the_thread() {
    common::init_crypto();
    let lab = Lab::start(Scenario::Healthy, LabOptions::default())
        .await
        .unwrap();
    let (_dir, files) = common::lab_files(&lab);
    let state = tempfile::tempdir().unwrap();
    let bearer = format!("Bearer {TOKEN}");
    let root = {
        let bot = start(&lab, &files, state.path()).await;
        post(
            &bot,
            "/alerts/alertmanager",
            Some(&bearer),
            fixture("alertmanager/partial-resolve.json"),
        )
        .await;
        let p = bot.poster.clone();
        settled(&bot, "the root message", || !p.roots().is_empty()).await;
        settled(&bot, "the root recorded", || {
            bot.service.incidents().iter().any(|i| !i.roots.is_empty())
        })
        .await;
        bot.server.abort();
        bot.service.incidents()[0].roots[&vault_triage::config::Platform::Slack].clone()
    };
    // A new process: the next delivery of the same group edits the same root and replies in its thread.
    let bot = start(&lab, &files, state.path()).await;
    let mut v: serde_json::Value =
        serde_json::from_slice(&fixture("alertmanager/partial-resolve.json")).unwrap();
    for a in v["alerts"].as_array_mut().unwrap() {
        a["status"] = "resolved".into();
        a["endsAt"] = "2026-11-28T12:40:00Z".into();
    }
    v["status"] = "resolved".into();
    let (status, _) = post(
        &bot,
        "/alerts/alertmanager",
        Some(&bearer),
        serde_json::to_vec(&v).unwrap(),
    )
    .await;
    assert_eq!(status, 200);
    let p = bot.poster.clone();
    settled(&bot, "the thread note", || !p.replies().is_empty()).await;
    assert!(bot.poster.roots().is_empty(), "no second root message");
    assert_eq!(bot.poster.updates()[0].0, root);
    assert_eq!(bot.poster.replies()[0].0, root);
    bot.server.abort();
    lab.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resolved_incidents_past_the_retention_leave_memory_but_not_the_audit() {
    common::init_crypto();
    let lab = Lab::start(Scenario::Healthy, LabOptions::default())
        .await
        .unwrap();
    let (_dir, files) = common::lab_files(&lab);
    let state = tempfile::tempdir().unwrap();
    let bot = start(&lab, &files, state.path()).await;
    let auth = format!("Bearer {TOKEN}");
    let (status, opened) = post(
        &bot,
        "/alerts/alertmanager",
        Some(&auth),
        fixture("alertmanager/firing.raw.json"),
    )
    .await;
    assert_eq!(status, 200);
    post(
        &bot,
        "/alerts/alertmanager",
        Some(&auth),
        fixture("alertmanager/resolved.raw.json"),
    )
    .await;
    settled(&bot, "resolution", || {
        bot.service.incidents()[0].is_resolved()
    })
    .await;
    let retention = bot.services.config.state.retention;
    let now = chrono::Utc::now();
    assert_eq!(
        bot.service.prune(now, retention),
        0,
        "resolved just now: kept"
    );
    let later = now + chrono::Duration::from_std(retention).unwrap() + chrono::Duration::hours(1);
    assert_eq!(bot.service.prune(later, retention), 1);
    assert!(bot.service.is_empty());
    // A start after the retention loads nothing; the audit still has the incident's story.
    let (live, _) = bot
        .services
        .store
        .live_incidents(later, retention, |d| {
            serde_json::from_str::<serde_json::Value>(d)
        })
        .await
        .unwrap();
    assert!(live.is_empty());
    let id = opened["incident"].as_str().unwrap().to_string();
    let (records, _) = bot
        .services
        .store
        .audit(&vault_triage::store::AuditFilter {
            incident: Some(id),
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(records.len() >= 2, "{records:?}");
    bot.server.abort();
    lab.shutdown().await;
}
