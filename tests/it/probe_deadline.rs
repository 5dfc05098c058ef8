//! A triage always finishes within its deadline with a verdict, whatever Vault and Kubernetes
//! do, and says what it could not check.

use crate::support as common;

use std::time::{Duration, Instant};

use vault_triage::diagnosis::VerdictCode;
use vault_triage::evidence::Probe;
use vault_triage::lab::{Lab, LabOptions, Scenario};
use vault_triage::probes::triage;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hanging_vault_and_kubernetes_still_give_a_verdict_within_the_deadline() {
    common::init_crypto();
    let lab = Lab::start(
        Scenario::ReviewerJwtExpired,
        LabOptions {
            latency: Duration::from_secs(30),
            ..LabOptions::default()
        },
    )
    .await
    .expect("lab");
    let (_dir, files) = common::lab_files(&lab);
    let (probes, mut target) =
        common::probes_for(&files, &lab.vault_addr(), &lab.vault_token()).await;
    target.deadline = Duration::from_millis(1500);

    let started = Instant::now();
    let report = triage(&probes, &target).await;
    let took = started.elapsed();

    assert!(took < Duration::from_secs(4), "triage took {took:?}");
    assert_eq!(report.verdict.code, VerdictCode::VaultUnreachable);
    assert!(matches!(report.evidence.canary_token, Probe::Failed { .. }));
    assert!(
        report
            .verdict
            .unchecked
            .iter()
            .any(|u| u.contains("canary token")),
        "{:?}",
        report.verdict.unchecked
    );
    lab.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_kubernetes_access_the_vault_side_still_runs_and_says_what_it_missed() {
    common::init_crypto();
    let lab = Lab::start(Scenario::ReviewerJwtExpired, LabOptions::default())
        .await
        .expect("lab");
    let (_dir, files) = common::lab_files(&lab);
    // The bot's own missing kubeconfig stops a command before any probe (probe_cli tests
    // that); the runner still copes with probes that have no Kubernetes client.
    let (mut probes, target) =
        common::probes_for(&files, &lab.vault_addr(), &lab.vault_token()).await;
    probes.kube = None;
    let report = triage(&probes, &target).await;
    assert!(report.evidence.health.value().is_some());
    assert!(matches!(report.evidence.login, Probe::Skipped { .. }));
    assert_eq!(report.verdict.code, VerdictCode::Inconclusive);
    assert!(
        report
            .verdict
            .unchecked
            .iter()
            .any(|u| u.contains("no Kubernetes access")),
        "{:?}",
        report.verdict.unchecked
    );
    lab.shutdown().await;
}
