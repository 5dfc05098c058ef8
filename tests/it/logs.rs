//! JSON logs: every line of a triage started by an alert carries the incident's id.

use crate::support as common;

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use vault_triage::config::FileConfig;
use vault_triage::config::Secret;
use vault_triage::lab::{Lab, LabOptions, Scenario};

#[derive(Clone, Default)]
struct Buffer(Arc<Mutex<Vec<u8>>>);

impl Write for Buffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Buffer {
    type Writer = Buffer;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

// One thread: the subscriber below sees this test's work (every task of a current-thread
// runtime runs on it) and nothing of the tests running beside it.
#[tokio::test]
async fn every_log_line_of_an_alert_triage_names_its_incident() {
    common::init_crypto();
    let logs = Buffer::default();
    let _logging =
        tracing::subscriber::set_default(vault_triage::telemetry::json("info", logs.clone()));
    let lab = Lab::start(Scenario::ReviewerJwtExpired, LabOptions::default())
        .await
        .unwrap();
    let (_dir, files) = common::lab_files(&lab);
    let state = tempfile::tempdir().unwrap();
    let mut cfg = FileConfig::load(Some(&files.config)).unwrap();
    cfg.state.dir = state.path().to_path_buf();
    cfg.alerts.tokens = vec![Secret::new("t")];
    cfg.chat.slack_channel = Some("C0INCIDENTS".into());
    let (services, service, poster) = common::alerts::alert_service(&lab, &files, cfg).await;
    let (addr, _server) =
        common::alerts::serve(vault_triage::server::router(vec![service.router()])).await;
    let body = std::fs::read(format!(
        "{}/tests/fixtures/alertmanager/firing.raw.json",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    let r: serde_json::Value = reqwest::Client::new()
        .post(format!("{addr}/alerts/alertmanager"))
        .header("authorization", "Bearer t")
        .body(body)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let incident = r["incident"].as_str().unwrap().to_string();
    tokio::time::timeout(Duration::from_secs(60), services.work.idle())
        .await
        .expect("the intake's work did not finish");
    assert!(
        poster
            .replies()
            .iter()
            .any(|(_, m)| m.text.contains("reviewer token expired")),
        "no triage summary"
    );
    let text = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    let lines: Vec<serde_json::Value> = text
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let finished: Vec<&serde_json::Value> = lines
        .iter()
        .filter(|l| l["message"] == "triage finished")
        .collect();
    assert_eq!(finished.len(), 1, "{text}");
    assert_eq!(finished[0]["verdict"], "reviewer_jwt_expired");
    // Every line logged inside the triage carries the incident id.
    let in_triage: Vec<&serde_json::Value> = lines
        .iter()
        .filter(|l| {
            l["spans"]
                .as_array()
                .is_some_and(|s| s.iter().any(|sp| sp["name"] == "triage"))
        })
        .collect();
    assert!(!in_triage.is_empty());
    for l in in_triage {
        let names_it = l["spans"]
            .as_array()
            .unwrap()
            .iter()
            .any(|sp| sp["incident"] == incident.as_str());
        assert!(names_it, "a triage line without its incident: {l}");
    }
    lab.shutdown().await;
}
