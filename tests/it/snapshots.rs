//! What users see, as snapshots a reviewer can read: for every lab scenario, the summary and
//! (where a fix fits) the approval card, as the Slack `chat.postMessage` body and the Discord
//! message body the bot sends. What changes from run to run (ports, times, ids) is written as
//! a placeholder; everything else must match `tests/it/snapshots/` exactly.
//!
//! A change to the wording or layout fails here until the snapshot is accepted: review the
//! `.snap.new` file next to the old one and rename it (or run with `INSTA_UPDATE=always`).

use chrono::Utc;
use regex::Regex;
use vault_triage::approval::Actor;
use vault_triage::chat::message::Message;
use vault_triage::chat::render;
use vault_triage::lab::{Lab, LabOptions, Scenario};

use crate::support::app::services;

/// The triage id every summary is rendered with.
const TRIAGE_ID: &str = "tri_0123456789abcdef";

/// Writes what differs between runs as placeholders.
fn stable(text: &str) -> String {
    let rules: [(&str, &str); 10] = [
        (r"127\.0\.0\.1:\d+", "127.0.0.1:PORT"),
        (r"\d{4}-\d{2}-\d{2} \d{2}:\d{2} UTC", "DATE TIME UTC"),
        (r"\b\d{2}:\d{2} UTC\b", "HH:MM UTC"),
        (r"req_[0-9a-f]{16}", "req_ID"),
        (r"auth_kubernetes_[0-9a-f]+", "auth_kubernetes_ACCESSOR"),
        (r"triaged in \d+(\.\d+)? (ms|s)", "triaged in DURATION"),
        (r"\(in \d+ min\)", "(in N min)"),
        // A stuck pod's age: the lab's pods are as old as the lab plus minutes.
        (r"started \d+ min ago", "started N min ago"),
        (
            r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}",
            "UUID",
        ),
        (r"(?i)(fingerprint) [0-9a-f]{12,64}", "$1 HASH"),
    ];
    rules.iter().fold(text.to_string(), |t, (pattern, with)| {
        Regex::new(pattern)
            .unwrap()
            .replace_all(&t, *with)
            .into_owned()
    })
}

fn snapshot(name: &str, scenario: Scenario, msg: &Message) {
    let slack = stable(&vault_triage::chat::slack::render_for_demo(msg));
    let discord = stable(&vault_triage::chat::discord::render_for_demo(msg));
    insta::assert_snapshot!(format!("{name}_slack@{scenario}"), slack);
    insta::assert_snapshot!(format!("{name}_discord@{scenario}"), discord);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_scenarios_summary_and_approval_card_look_as_reviewed() {
    crate::support::init_crypto();
    for &scenario in Scenario::ALL {
        let lab = Lab::start(scenario, LabOptions::default()).await.unwrap();
        let (_dir, files) = crate::support::lab_files(&lab);
        let services = services(&lab, &files, |_| {}).await;
        let report = services.triage.look("snapshot").await;
        assert_eq!(report.verdict.code.as_str(), scenario.verdict_code());
        let summary = render::summary(&report, TRIAGE_ID, services.policy());
        snapshot("summary", scenario, &summary);

        let first_fix = report.verdict.remediations.iter().find_map(|r| r.kind());
        if let Some(kind) = first_fix {
            let now = Utc::now();
            let (request, _) = services
                .fixes
                .propose(&report, kind, Actor::slack("U0ALICE"), Some("INC-1"), now)
                .await
                .unwrap();
            let card = render::approval_card(&request, services.policy(), now);
            snapshot("card", scenario, &card);
        }
        lab.shutdown().await;
    }
}
