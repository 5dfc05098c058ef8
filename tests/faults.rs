//! Fault injection through the lab: Vault or Kubernetes answering 5xx or hanging. The triage
//! still ends with a verdict within its deadline, says what it could not check, and recovers
//! when the fault ends.

mod common;

use std::time::{Duration, Instant};

use vault_triage::diagnosis::VerdictCode;
use vault_triage::lab::{Fault, Lab, LabOptions, Scenario, Side};
use vault_triage::triage::triage;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vault_answering_500_is_reported_and_the_next_triage_recovers() {
    common::init_crypto();
    let lab = Lab::start(Scenario::Healthy, LabOptions::default())
        .await
        .unwrap();
    let (_dir, files) = common::lab_files(&lab);
    let (probes, target) = common::probes_for(&files, &lab.vault_addr(), &lab.vault_token()).await;

    lab.set_fault(Side::Vault, Some(Fault::Status(500)));
    let r = triage(&probes, &target).await;
    assert_eq!(
        r.verdict.code,
        VerdictCode::Inconclusive,
        "{:?}",
        r.verdict.evidence
    );
    assert!(
        r.verdict
            .unchecked
            .iter()
            .any(|u| u.contains("Vault health") && u.contains("500")),
        "{:?}",
        r.verdict.unchecked
    );

    lab.set_fault(Side::Vault, None);
    assert_eq!(
        triage(&probes, &target).await.verdict.code,
        VerdictCode::Healthy
    );
    lab.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubernetes_answering_503_is_reported_and_the_next_triage_recovers() {
    common::init_crypto();
    let lab = Lab::start(Scenario::ReviewerJwtExpired, LabOptions::default())
        .await
        .unwrap();
    let (_dir, files) = common::lab_files(&lab);
    let (probes, target) = common::probes_for(&files, &lab.vault_addr(), &lab.vault_token()).await;

    lab.set_fault(Side::Kubernetes, Some(Fault::Status(503)));
    let r = triage(&probes, &target).await;
    assert_ne!(r.verdict.code, VerdictCode::Healthy);
    assert!(
        r.verdict
            .unchecked
            .iter()
            .any(|u| u.contains("canary token") && u.contains("503")),
        "{:?}",
        r.verdict.unchecked
    );
    assert!(
        r.evidence.health.value().is_some(),
        "the Vault side still ran"
    );

    lab.set_fault(Side::Kubernetes, None);
    assert_eq!(
        triage(&probes, &target).await.verdict.code,
        VerdictCode::ReviewerJwtExpired
    );
    lab.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hanging_kubernetes_api_is_bounded_by_the_deadline() {
    common::init_crypto();
    let lab = Lab::start(Scenario::ReviewerJwtExpired, LabOptions::default())
        .await
        .unwrap();
    let (_dir, files) = common::lab_files(&lab);
    let (probes, mut target) =
        common::probes_for(&files, &lab.vault_addr(), &lab.vault_token()).await;
    target.deadline = Duration::from_millis(1500);
    lab.set_fault(Side::Kubernetes, Some(Fault::Hang));
    let started = Instant::now();
    let r = triage(&probes, &target).await;
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "took {:?}",
        started.elapsed()
    );
    assert!(r.evidence.health.value().is_some());
    assert!(
        r.verdict
            .unchecked
            .iter()
            .any(|u| u.contains("canary token")),
        "{:?}",
        r.verdict.unchecked
    );
    lab.set_fault(Side::Kubernetes, None);
    lab.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hanging_vault_is_bounded_by_the_deadline_and_said_so() {
    common::init_crypto();
    let lab = Lab::start(Scenario::Healthy, LabOptions::default())
        .await
        .unwrap();
    let (_dir, files) = common::lab_files(&lab);
    let (probes, mut target) =
        common::probes_for(&files, &lab.vault_addr(), &lab.vault_token()).await;
    target.deadline = Duration::from_millis(1500);
    lab.set_fault(Side::Vault, Some(Fault::Hang));
    let started = Instant::now();
    let r = triage(&probes, &target).await;
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "took {:?}",
        started.elapsed()
    );
    assert_eq!(r.verdict.code, VerdictCode::VaultUnreachable);
    lab.set_fault(Side::Vault, None);
    assert_eq!(
        triage(&probes, &target).await.verdict.code,
        VerdictCode::Healthy
    );
    lab.shutdown().await;
}
