//! Fault injection through the lab: Vault or Kubernetes answering 5xx or hanging. The triage
//! still ends with a verdict within its deadline, says what it could not check, and recovers
//! when the fault ends.

use crate::support as common;

use std::time::{Duration, Instant};

use vault_triage::diagnosis::VerdictCode;
use vault_triage::lab::{Fault, Lab, LabOptions, Scenario, Side};
use vault_triage::probes::triage;

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_refuses_what_it_cannot_record_and_recovers_without_losing_anything() {
    use vault_triage::approval::{Actor, Refusal};
    common::init_crypto();
    let lab = Lab::start(Scenario::ReviewerJwtExpired, LabOptions::default())
        .await
        .unwrap();
    let (_dir, files) = common::lab_files(&lab);
    let state = tempfile::tempdir().unwrap();
    let mut cfg = vault_triage::config::FileConfig::load(Some(&files.config)).unwrap();
    cfg.state.dir = state.path().to_path_buf();
    cfg.alerts.tokens = vec![vault_triage::config::Secret::new("t")];
    cfg.alerts.trigger.enabled = false;
    cfg.approvals = vec![vault_triage::config::ApprovalRule {
        action: "reconfigure-auth".into(),
        approvers: vec!["U0BOB".into(), "U0CAROL".into()],
        required: 2,
        expires_after: Duration::from_secs(900),
    }];
    let (services, service, _chat) = common::alerts::alert_service(&lab, &files, cfg).await;
    let (addr, _server) =
        common::alerts::serve(vault_triage::server::router(vec![service.router()])).await;
    let body = std::fs::read(format!(
        "{}/tests/fixtures/alertmanager/firing.raw.json",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    let post = || {
        reqwest::Client::new()
            .post(format!("{addr}/alerts/alertmanager"))
            .header("authorization", "Bearer t")
            .body(body.clone())
            .send()
    };
    let fixes = &services.fixes;
    let report = services.triage.look("test").await;
    let (request, _) = fixes
        .propose(
            &report,
            vault_triage::diagnosis::RemediationKind::RotateReviewer,
            Actor::slack("U0ALICE"),
            None,
            chrono::Utc::now(),
        )
        .await
        .unwrap();

    // The disk fills up.
    services
        .store
        .inject_fault(Some(vault_triage::store::Fault::Fail));
    let r = post().await.unwrap();
    assert_eq!(r.status().as_u16(), 503, "Alertmanager retries a 503");
    assert!(
        service.incidents().is_empty(),
        "nothing unrecorded is acted on"
    );
    match fixes
        .approve(
            &request.id,
            &Actor::slack("U0BOB"),
            chrono::Utc::now(),
            &|_| {},
        )
        .await
    {
        Err(Refusal::NotRecorded { .. }) => {}
        other => panic!("an approval that cannot be recorded must not count: {other:?}"),
    }
    assert!(fixes.request(&request.id).unwrap().approvals.is_empty());

    // Space again: the retry goes through, and everything recorded is there.
    services.store.inject_fault(None);
    assert_eq!(post().await.unwrap().status().as_u16(), 200);
    assert_eq!(service.incidents().len(), 1);
    assert!(
        fixes
            .approve(
                &request.id,
                &Actor::slack("U0BOB"),
                chrono::Utc::now(),
                &|_| {}
            )
            .await
            .is_ok()
    );
    let entries = common::state::audit_in(state.path()).await;
    assert!(
        entries
            .iter()
            .any(|e| matches!(e.event, vault_triage::store::Event::ApprovalGranted { .. }))
    );
    lab.shutdown().await;
}
