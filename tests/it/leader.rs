//! Two `serve` processes against the lab's Kubernetes API: one leads through a Lease, the
//! other forwards to it; when the leader dies the follower takes over within the Lease
//! duration and, replaying the shared journal, loses no incident.

use crate::support as common;

use std::time::{Duration, Instant};

use vault_triage::lab::{Lab, LabOptions, Scenario};

const LEASE_SECONDS: u64 = 3;

fn spawn(lab: &Lab, files: &vault_triage::lab::LabFiles, name: &str) -> common::ServeProcess {
    common::ServeProcess::start(lab, files, |cmd, url| {
        cmd.env("VAULT_TRIAGE_LEADER_ELECTION", "true")
            .env("POD_NAME", name)
            .env("POD_NAMESPACE", "vault-triage")
            .env("VAULT_TRIAGE_ADVERTISE_URL", url)
            .env("VAULT_TRIAGE_LEASE_SECONDS", LEASE_SECONDS.to_string());
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
    common::init_crypto();
    let lab = Lab::start(Scenario::Healthy, LabOptions::default())
        .await
        .unwrap();
    let (_dir, files) = common::lab_files(&lab);
    // Alert credentials and no automatic triage (this test is about the replicas).
    let mut config = std::fs::read_to_string(&files.config).unwrap();
    config.push_str("\n[alerts]\ntokens = [\"t0k\"]\n\n[alerts.trigger]\nenabled = false\n");
    std::fs::write(&files.config, config).unwrap();

    let a = spawn(&lab, &files, "replica-a");
    wait_for(&a.url, "ready (leader)", 30).await;
    let b = spawn(&lab, &files, "replica-b");
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
    // The new leader replayed the shared journal: the incident is known, nothing duplicates.
    let (status, after) = alert(&b.url).await;
    assert_eq!(status, 200);
    assert_eq!(after["changed"], false, "{after}");
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
