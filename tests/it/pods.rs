//! The injector's pods against the lab (design §11.3): pods stuck `Init:0/1` on
//! `vault-agent-init` are independent evidence of the outage, the owners of injected pods
//! join the blast radius (a Job only its pod reveals), and once logins work the pods and the
//! operators recover by themselves.

use crate::support as common;

use vault_triage::diagnosis::{CheckStatus, Confidence, RemediationKind, VerdictCode};
use vault_triage::evidence::{Via, WorkloadKind};
use vault_triage::lab::{Lab, LabOptions, Scenario};
use vault_triage::probes::triage;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outage_shows_the_pods_stuck_on_the_agent_and_the_job_only_its_pod_reveals() {
    common::init_crypto();
    let lab = Lab::start(Scenario::ReviewerJwtExpired, LabOptions::default())
        .await
        .unwrap();
    let (_dir, files) = common::lab_files(&lab);
    let (probes, target) = common::probes_for(&files, &lab.vault_addr(), &lab.vault_token()).await;
    let report = triage(&probes, &target).await;
    let v = &report.verdict;
    assert_eq!(
        (v.code, v.confidence),
        (VerdictCode::ReviewerJwtExpired, Confidence::High)
    );

    let pods = report.evidence.pods.value().expect("pods listed");
    assert_eq!(pods.injected, 18);
    let stuck: Vec<(&str, WorkloadKind, &str, &str, &str)> = pods
        .stuck
        .iter()
        .map(|p| {
            (
                p.owner.as_str(),
                p.owner_kind,
                p.name.as_str(),
                p.status.as_str(),
                p.container.as_str(),
            )
        })
        .collect();
    // Longest stuck first: the Deployment's new replica (40 min), the StatefulSet's restarted
    // pod (25 min), the Job's pod (12 min).
    assert_eq!(
        stuck.iter().map(|s| (s.0, s.1)).collect::<Vec<_>>(),
        [
            ("payments-api", WorkloadKind::Deployment),
            ("ledger-db", WorkloadKind::StatefulSet),
            ("db-migrate", WorkloadKind::Job),
        ]
    );
    assert!(
        stuck
            .iter()
            .all(|s| s.3 == "Init:0/1" && s.4 == "vault-agent-init"),
        "{stuck:?}"
    );
    assert_eq!(stuck[1].2, "ledger-db-0");

    // The Job has no template the bot lists: its pod names it.
    let job = v
        .affected_workloads
        .iter()
        .find(|w| w.kind == WorkloadKind::Job)
        .expect("the Job in the blast radius");
    assert_eq!(
        (job.name.as_str(), job.via, job.roles.as_slice()),
        (
            "db-migrate",
            Via::Injector,
            &["payments-api".to_string()][..]
        )
    );
    // A CronJob's Job is that CronJob, found once.
    assert_eq!(
        v.affected_workloads
            .iter()
            .filter(|w| w.name.starts_with("nightly-report"))
            .map(|w| (w.kind, w.name.as_str()))
            .collect::<Vec<_>>(),
        [(WorkloadKind::CronJob, "nightly-report")]
    );

    let line = v
        .evidence
        .iter()
        .find(|i| i.check == "Injected pods")
        .expect("an evidence line");
    assert_eq!(line.status, CheckStatus::Fail);
    assert!(
        line.detail.starts_with(
            "3 of 18 waiting on vault-agent-init (Init:0/1), e.g. production/payments-api-"
        ),
        "{}",
        line.detail
    );
    assert!(
        v.reminders.iter().any(|r| r.starts_with(
            "Independent signs agree that logins through this mount fail: 3 pods stuck"
        )),
        "{:?}",
        v.reminders
    );

    // Two paged lists: every pod's metadata (pages of 5,000: metadata weighs a tenth of a
    // pod), and the Pending pods in full (pages of 500, as kubectl).
    let mut pod_lists: Vec<String> = lab
        .kube_requests()
        .into_iter()
        .filter(|r| r.method == "GET" && r.path == "/api/v1/pods")
        .map(|r| {
            r.query
                .unwrap_or_default()
                .trim_start_matches('&')
                .to_string()
        })
        .collect();
    pod_lists.sort();
    assert_eq!(
        pod_lists,
        [
            "fieldSelector=status.phase%3DPending&limit=500",
            "limit=5000"
        ]
    );
    lab.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn once_logins_work_again_the_pods_and_the_operators_recover_by_themselves() {
    let (lab, _dir, r) = common::lab_remediator(Scenario::ReviewerJwtExpired).await;
    let before = triage(&r.probes, &r.target).await;
    assert_eq!(before.evidence.pods.value().unwrap().stuck.len(), 3);

    let fix = r.plan(&before, RemediationKind::RotateReviewer).unwrap();
    let out = r.execute_approved(&fix, &|_| {}).await.unwrap();
    assert!(out.ok, "{out:?}");

    // Nothing restarted: the agent's init containers and the operators retried by themselves.
    let after = triage(&r.probes, &r.target).await;
    assert_eq!(after.verdict.code, VerdictCode::Healthy);
    let pods = after.evidence.pods.value().unwrap();
    assert!(pods.stuck.is_empty(), "{:?}", pods.stuck);
    assert_eq!(pods.injected, 18, "the same pods");
    assert!(
        after
            .verdict
            .secret_syncs
            .iter()
            .all(|s| s.ready == Some(true)),
        "{:?}",
        after.verdict.secret_syncs
    );
    let line = after
        .verdict
        .evidence
        .iter()
        .find(|i| i.check == "Injected pods")
        .unwrap();
    assert_eq!(line.status, CheckStatus::Pass, "{}", line.detail);
    assert!(
        !after
            .verdict
            .reminders
            .iter()
            .any(|r| r.contains("Independent signs") || r.contains("yet")),
        "{:?}",
        after.verdict.reminders
    );
    assert!(
        lab.kube_requests()
            .iter()
            .all(|q| q.method != "PATCH" && q.method != "DELETE"),
        "nothing in the cluster was written"
    );
    lab.shutdown().await;
}
