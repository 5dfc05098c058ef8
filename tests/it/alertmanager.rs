//! A real Alertmanager (Debian's `prometheus-alertmanager`) on loopback with a webhook receiver
//! pointing at the bot: alerts posted to its API become one incident per group with one root
//! message, one triage in the thread, resolution edits the root, wrong credentials are refused.

use crate::support as common;

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use vault_triage::config::FileConfig;
use vault_triage::config::Secret;
use vault_triage::lab::{Lab, LabOptions, Scenario};

/// Finds Alertmanager: `ALERTMANAGER_BIN`, else on PATH; fails the test when there is none.
/// (`VAULT_TRIAGE_SKIP_ALERTMANAGER=1` at build time compiles this test as ignored.)
fn alertmanager_binary() -> PathBuf {
    if let Ok(p) = std::env::var("ALERTMANAGER_BIN") {
        return PathBuf::from(p);
    }
    for name in ["prometheus-alertmanager", "alertmanager"] {
        let found = std::env::var_os("PATH").and_then(|paths| {
            std::env::split_paths(&paths)
                .map(|d| d.join(name))
                .find(|p| p.is_file())
        });
        if let Some(p) = found {
            return p;
        }
    }
    panic!(
        "Alertmanager was not found (prometheus-alertmanager on PATH or ALERTMANAGER_BIN). Run the tests with \
         `bash tests/run`, which installs it (`apt-get install prometheus-alertmanager`); build with \
         VAULT_TRIAGE_SKIP_ALERTMANAGER=1 to skip it deliberately (it shows as ignored)"
    )
}

struct Alertmanager {
    child: Child,
    url: String,
    _dir: tempfile::TempDir,
}

impl Drop for Alertmanager {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_alertmanager(bin: &PathBuf, webhook: &str) -> Alertmanager {
    let dir = tempfile::tempdir().unwrap();
    let port = common::free_port();
    let config = format!(
        r#"route:
  receiver: triage-bot
  group_by: ['alertname', 'namespace']
  group_wait: 1s
  group_interval: 1s
  repeat_interval: 1h
  routes:
    - matchers: ['scenario="badcreds"']
      receiver: wrong-token
receivers:
  - name: triage-bot
    webhook_configs:
      - url: {webhook}
        send_resolved: true
        http_config:
          authorization:
            credentials: s3cr3t-triage-token
  - name: wrong-token
    webhook_configs:
      - url: {webhook}
        send_resolved: true
        http_config:
          authorization:
            credentials: not-the-token
"#
    );
    let cfg = dir.path().join("alertmanager.yml");
    std::fs::write(&cfg, config).unwrap();
    let child = Command::new(bin)
        .arg(format!("--config.file={}", cfg.display()))
        .arg(format!(
            "--storage.path={}",
            dir.path().join("data").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .arg(format!("--web.external-url=http://127.0.0.1:{port}"))
        .arg("--cluster.listen-address=")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("starting alertmanager");
    Alertmanager {
        child,
        url: format!("http://127.0.0.1:{port}"),
        _dir: dir,
    }
}

async fn wait_until(what: &str, secs: u64, cond: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn alerts(names: &[&str], extra: &str, ends_at: Option<&str>) -> serde_json::Value {
    serde_json::Value::Array(
        names
            .iter()
            .map(|n| {
                let mut labels = serde_json::json!({"alertname": "VaultPermissionDenied", "namespace": "production", "deployment": n, "severity": "critical"});
                if !extra.is_empty() {
                    labels["scenario"] = extra.into();
                }
                let mut a = serde_json::json!({
                    "labels": labels,
                    "annotations": {"summary": format!("Vault permission denied for {n}")},
                    "generatorURL": "http://prometheus.example/graph",
                    "startsAt": "2026-11-28T10:00:00Z",
                });
                if let Some(e) = ends_at {
                    a["endsAt"] = e.into();
                }
                a
            })
            .collect(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(skip_alertmanager, ignore = "VAULT_TRIAGE_SKIP_ALERTMANAGER=1")]
async fn a_real_alertmanager_delivers_incidents_into_threads() {
    common::init_crypto();
    let bin = alertmanager_binary();
    let lab = Lab::start(Scenario::ReviewerJwtExpired, LabOptions::default())
        .await
        .unwrap();
    let (_dir, files) = common::lab_files(&lab);
    let state = tempfile::tempdir().unwrap();
    let mut cfg = FileConfig::load(Some(&files.config)).unwrap();
    cfg.state.dir = state.path().to_path_buf();
    cfg.alerts.tokens = vec![Secret::new("s3cr3t-triage-token")];
    cfg.chat.slack_channel = Some("C0INCIDENTS".into());
    let (_, service, poster) = common::alerts::alert_service(&lab, &files, cfg).await;
    // Every answer the bot gives Alertmanager, to see the refusals.
    let statuses = Arc::new(std::sync::Mutex::new(Vec::<u16>::new()));
    let seen = statuses.clone();
    let router =
        vault_triage::server::router(vec![service.router()]).layer(axum::middleware::from_fn(
            move |req: axum::extract::Request, next: axum::middleware::Next| {
                let seen = seen.clone();
                async move {
                    let resp = next.run(req).await;
                    seen.lock().unwrap().push(resp.status().as_u16());
                    resp
                }
            },
        ));
    let (addr, server) = common::alerts::serve(router).await;
    let webhook = format!("{addr}/alerts/alertmanager");

    let am = start_alertmanager(&bin, &webhook);
    let http = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while !http
        .get(format!("{}/-/ready", am.url))
        .send()
        .await
        .is_ok_and(|r| r.status().as_u16() == 200)
    {
        assert!(
            Instant::now() < deadline,
            "alertmanager did not become ready"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let apps = [
        "payments-api",
        "billing-worker",
        "orders-api",
        "ledger-sync",
        "notifications",
    ];
    let r = http
        .post(format!("{}/api/v2/alerts", am.url))
        .json(&alerts(&apps, "", None))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());
    // Alerts of another group, delivered with a wrong token: refused, never an incident.
    let r = http
        .post(format!("{}/api/v2/alerts", am.url))
        .json(&alerts(&["intruder"], "badcreds", None))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());

    let p = poster.clone();
    wait_until("the triage in the incident thread", 30, || {
        p.replies()
            .iter()
            .any(|(_, m)| m.text.contains("reviewer token expired"))
    })
    .await;
    // With startsAt in the past Alertmanager flushes the group at once, so the first delivery
    // may hold only some of the five alerts; the root message is edited as the rest arrive.
    wait_until("the root message showing all five alerts", 30, || {
        p.roots().iter().any(|(_, m)| m.text.contains("[FIRING:5]"))
            || p.updates()
                .iter()
                .any(|(_, m)| m.text.contains("[FIRING:5]"))
    })
    .await;
    let roots = poster.roots();
    assert_eq!(roots.len(), 1, "one root message for one group: {roots:?}");
    assert_eq!(service.incidents().len(), 1);
    let st = statuses.clone();
    wait_until("the wrong-token delivery refused with 401", 30, || {
        st.lock().unwrap().contains(&401)
    })
    .await;

    // Resolve them: Alertmanager sends the resolution, the root message is edited.
    let r = http
        .post(format!("{}/api/v2/alerts", am.url))
        .json(&alerts(
            &apps,
            "",
            Some(&(chrono::Utc::now() - chrono::Duration::seconds(1)).to_rfc3339()),
        ))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());
    wait_until("the root message edited to resolved", 30, || {
        p.updates()
            .iter()
            .any(|(_, m)| m.text.starts_with("✅ [RESOLVED]"))
    })
    .await;
    assert_eq!(poster.roots().len(), 1);
    assert_eq!(
        service.incidents().len(),
        1,
        "the wrong-token group never became an incident"
    );
    drop(am);
    server.abort();
    lab.shutdown().await;
}
