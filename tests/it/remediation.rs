//! Remediation against the lab and a real OpenBao: the approved plan runs, verifies, carries
//! every other config field across, restarts Deployments, StatefulSets and DaemonSets the way
//! kubectl does (stopping at a failed rollout), and refuses when the world changed since
//! approval.

use crate::support as common;

use std::sync::Mutex;
use std::time::Duration;

use vault_triage::diagnosis::{RemediationKind, VerdictCode};
use vault_triage::evidence::WorkloadKind;
use vault_triage::lab::{ISSUER, Lab, LabOptions, SIGNING_PUB_PEM, Scenario, apply_setup};
use vault_triage::probes::triage;
use vault_triage::remediation::plan::{DeploymentTarget, NotRestartedReason};
use vault_triage::remediation::{ExecError, Plan, Step};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotating_the_reviewer_fixes_logins_and_restarts_roll_out_like_kubectl() {
    let (lab, _dir, r) = common::lab_remediator(Scenario::ReviewerJwtExpired).await;
    let before = triage(&r.probes, &r.target).await;
    assert_eq!(before.verdict.code, VerdictCode::ReviewerJwtExpired);
    let old_config = lab.vault_auth_config().unwrap();

    let plan = r.plan(&before, RemediationKind::RotateReviewer).unwrap();
    let preview = plan.preview();
    assert!(
        preview.contains("token_reviewer_jwt: *** → *** (fresh token for vault/vault-auth"),
        "{preview}"
    );
    assert!(!preview.contains("eyJ"), "{preview}");
    let restart = r
        .plan(&before, RemediationKind::RestartDeployments)
        .unwrap();

    let steps = Mutex::new(Vec::<Step>::new());
    let out = r
        .execute_approved(&plan, &|s| steps.lock().unwrap().push(s.clone()))
        .await
        .unwrap();
    assert!(out.ok, "{out:?}");
    let names: Vec<String> = out.steps.iter().map(|s| s.step.clone()).collect();
    assert_eq!(
        names,
        ["mint reviewer token", "write config", "read back", "verify"]
    );
    assert!(out.steps.iter().all(|s| s.ok), "{:?}", out.steps);
    assert_eq!(
        steps.lock().unwrap().len(),
        4,
        "progress reported each step"
    );
    let new_config = lab.vault_auth_config().unwrap();
    assert_ne!(
        new_config["token_reviewer_jwt"],
        old_config["token_reviewer_jwt"]
    );
    for field in [
        "kubernetes_host",
        "kubernetes_ca_cert",
        "issuer",
        "disable_iss_validation",
        "disable_local_ca_jwt",
        "pem_keys",
    ] {
        assert_eq!(
            new_config[field], old_config[field],
            "{field} carried across"
        );
    }
    assert_eq!(
        triage(&r.probes, &r.target).await.verdict.code,
        VerdictCode::Healthy
    );

    // Restarts, after the fix.
    let Plan::RestartDeployments(targets) = &restart else {
        panic!("{restart:?}")
    };
    let n = targets.deployments.len();
    let noun = if targets
        .deployments
        .iter()
        .all(|d| d.kind == WorkloadKind::Deployment)
    {
        "deployments"
    } else {
        "workloads"
    };
    let out = r.execute_approved(&restart, &|_| {}).await.unwrap();
    assert!(out.ok, "{out:?}");
    assert_eq!(out.summary, format!("{n} of {n} {noun} rolled out"));
    assert!(out.failed.is_empty() && out.not_started.is_empty());
    let patches: Vec<_> = lab
        .kube_requests()
        .into_iter()
        .filter(|q| q.method == "PATCH")
        .collect();
    assert_eq!(patches.len(), n);
    for p in &patches {
        assert_eq!(
            p.content_type.as_deref(),
            Some("application/strategic-merge-patch+json")
        );
        assert!(
            p.query
                .as_deref()
                .unwrap_or("")
                .contains("fieldManager=kubectl-rollout"),
            "{:?}",
            p.query
        );
        let body: serde_json::Value = serde_json::from_str(&p.body).unwrap();
        assert!(body["spec"]["template"]["metadata"]["annotations"]["kubectl.kubernetes.io/restartedAt"].is_string());
        assert_eq!(
            p.identity,
            "system:serviceaccount:vault-triage:vault-triage"
        );
    }
    let d = lab.deployment("production", "payments-api").unwrap();
    assert!(d["metadata"]["generation"].as_i64().unwrap() > 1);
    lab.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rollout_past_its_progress_deadline_stops_the_restarts_before_the_next_batch() {
    let (lab, _dir, r) = common::lab_remediator(Scenario::ReviewerJwtExpired).await;
    let report = triage(&r.probes, &r.target).await;
    let plan = r
        .plan(&report, RemediationKind::RestartDeployments)
        .unwrap();
    let Plan::RestartDeployments(p) = &plan else {
        panic!("{plan:?}")
    };
    // The batch holding ledger-sync runs to its end; the batches after it never start.
    let batches: Vec<_> = p.deployments.chunks(p.concurrency).collect();
    let failing = batches
        .iter()
        .position(|b| b.iter().any(|d| d.name == "ledger-sync"))
        .unwrap();
    assert!(failing + 1 < batches.len(), "a batch follows: {plan:?}");
    let label = |d: &DeploymentTarget| format!("{} {}/{}", d.kind, d.namespace, d.name);
    let not_started: Vec<String> = batches[failing + 1..]
        .iter()
        .flat_map(|b| b.iter())
        .map(label)
        .collect();
    let started: Vec<&DeploymentTarget> =
        batches[..=failing].iter().flat_map(|b| b.iter()).collect();
    lab.fail_rollout("production", "ledger-sync");

    let out = r.execute_approved(&plan, &|_| {}).await.unwrap();
    assert!(!out.ok);
    assert_eq!(out.failed, ["Deployment production/ledger-sync"]);
    assert_eq!(out.not_started, not_started);
    assert_eq!(
        out.summary,
        format!(
            "{} of {} {} rolled out; failed: Deployment production/ledger-sync; stopped, not restarted: {}",
            started.len() - 1,
            p.deployments.len(),
            if p.deployments
                .iter()
                .all(|d| d.kind == WorkloadKind::Deployment)
            {
                "deployments"
            } else {
                "workloads"
            },
            not_started.join(", ")
        )
    );
    let failed = out
        .steps
        .iter()
        .find(|s| s.step == "rollout production/ledger-sync")
        .unwrap();
    assert!(!failed.ok);
    assert_eq!(
        failed.detail,
        "deployment \"ledger-sync\" exceeded its progress deadline"
    );
    let stop = out.steps.last().unwrap();
    assert_eq!(stop.step, "stop");
    assert!(!stop.ok);
    assert!(
        stop.detail.contains(&not_started.join(", "))
            && stop
                .detail
                .contains("A new approval of the plan can continue"),
        "{stop:?}"
    );
    // Only the workloads of the batches that ran were patched.
    let patched: Vec<String> = lab
        .kube_requests()
        .into_iter()
        .filter(|q| q.method == "PATCH")
        .map(|q| q.path.rsplit('/').next().unwrap_or_default().to_string())
        .collect();
    let mut expected: Vec<String> = started.iter().map(|d| d.name.clone()).collect();
    let mut patched_sorted = patched.clone();
    patched_sorted.sort();
    expected.sort();
    assert_eq!(patched_sorted, expected);
    lab.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn statefulsets_and_daemonsets_are_restarted_on_delete_ones_and_cronjobs_reported() {
    let (lab, _dir, r) = common::lab_remediator(Scenario::ReviewerJwtExpired).await;
    let before = triage(&r.probes, &r.target).await;
    assert_eq!(before.verdict.code, VerdictCode::ReviewerJwtExpired);
    let restart = r
        .plan(&before, RemediationKind::RestartDeployments)
        .unwrap();
    let Plan::RestartDeployments(p) = &restart else {
        panic!("{restart:?}")
    };
    let kinds = |kind: WorkloadKind| {
        p.deployments
            .iter()
            .filter(|d| d.kind == kind)
            .map(|d| d.name.as_str())
            .collect::<Vec<_>>()
    };
    assert_eq!(kinds(WorkloadKind::StatefulSet), ["ledger-db"]);
    assert_eq!(kinds(WorkloadKind::DaemonSet), ["log-shipper"]);
    assert!(kinds(WorkloadKind::Deployment).contains(&"payments-api"));
    assert!(p.deployments.iter().all(|d| !d.uid.is_empty()), "{p:?}");
    let reported: Vec<(WorkloadKind, &str, NotRestartedReason)> = p
        .not_restarted
        .iter()
        .map(|n| (n.kind, n.name.as_str(), n.reason))
        .collect();
    assert_eq!(
        reported,
        [
            // It reads the Secret a VaultDynamicSecret syncs: VSO restarts it, not the bot.
            (
                WorkloadKind::Deployment,
                "frontend",
                NotRestartedReason::VsoRestarts
            ),
            (
                WorkloadKind::StatefulSet,
                "legacy-cache",
                NotRestartedReason::OnDelete
            ),
            (
                WorkloadKind::CronJob,
                "nightly-report",
                NotRestartedReason::CronJob
            ),
            // Found only through its injected pod: no rollout to restart.
            (
                WorkloadKind::Job,
                "db-migrate",
                NotRestartedReason::NoRollout
            ),
        ]
    );
    let preview = restart.preview();
    assert!(
        preview.contains("  production/ledger-db (StatefulSet, role ledger-sync)")
            && preview.contains("  production/log-shipper (DaemonSet, role notifications)")
            && preview.contains(
                "  StatefulSet production/legacy-cache: OnDelete: delete its pods to pick up the fix"
            )
            && preview
                .contains("  CronJob production/nightly-report: CronJob: its next run logs in afresh")
            && preview.contains("  Job production/db-migrate: no rollout: its pods retry the login by themselves"),
        "{preview}"
    );

    // The fix, then the restarts.
    let fix = r.plan(&before, RemediationKind::RotateReviewer).unwrap();
    assert!(r.execute_approved(&fix, &|_| {}).await.unwrap().ok);
    let out = r.execute_approved(&restart, &|_| {}).await.unwrap();
    assert!(out.ok, "{out:#?}");
    let n = p.deployments.len();
    assert_eq!(out.summary, format!("{n} of {n} workloads rolled out"));
    let step = |name: &str| {
        out.steps
            .iter()
            .find(|s| s.step == name)
            .unwrap_or_else(|| panic!("no step {name}: {:#?}", out.steps))
    };
    assert_eq!(
        step("restart StatefulSet production/ledger-db").detail,
        "statefulset.apps/ledger-db restarted"
    );
    assert_eq!(
        step("rollout StatefulSet production/ledger-db").detail,
        "StatefulSet production/ledger-db rolled out (2/2 updated)"
    );
    assert_eq!(
        step("restart DaemonSet production/log-shipper").detail,
        "daemonset.apps/log-shipper restarted"
    );
    assert_eq!(
        step("rollout DaemonSet production/log-shipper").detail,
        "DaemonSet production/log-shipper rolled out (3/3 updated)"
    );
    assert_eq!(
        step("rollout production/payments-api").detail,
        "deployment \"payments-api\" successfully rolled out"
    );
    assert!(out.steps.iter().all(|s| s.ok), "{:#?}", out.steps);

    // Each restart is kubectl's patch; the OnDelete StatefulSet and the CronJob are untouched.
    let patches: Vec<_> = lab
        .kube_requests()
        .into_iter()
        .filter(|q| q.method == "PATCH")
        .collect();
    assert_eq!(patches.len(), n);
    let paths: Vec<&str> = patches.iter().map(|q| q.path.as_str()).collect();
    assert!(paths.contains(&"/apis/apps/v1/namespaces/production/statefulsets/ledger-db"));
    assert!(paths.contains(&"/apis/apps/v1/namespaces/production/daemonsets/log-shipper"));
    assert!(
        !paths
            .iter()
            .any(|p| p.ends_with("/legacy-cache") || p.contains("cronjobs") || p.contains("jobs/")),
        "{paths:?}"
    );
    for q in &patches {
        assert_eq!(
            q.content_type.as_deref(),
            Some("application/strategic-merge-patch+json")
        );
        assert!(
            q.query
                .as_deref()
                .unwrap_or("")
                .contains("fieldManager=kubectl-rollout")
        );
        let body: serde_json::Value = serde_json::from_str(&q.body).unwrap();
        assert!(body["spec"]["template"]["metadata"]["annotations"]["kubectl.kubernetes.io/restartedAt"].is_string());
    }
    let db = lab.statefulset("production", "ledger-db").unwrap();
    assert!(
        db["spec"]["template"]["metadata"]["annotations"]["kubectl.kubernetes.io/restartedAt"]
            .is_string()
    );
    let cache = lab.statefulset("production", "legacy-cache").unwrap();
    assert!(
        cache["spec"]["template"]["metadata"]["annotations"]["kubectl.kubernetes.io/restartedAt"]
            .is_null()
    );
    lab.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_approved_plan_is_refused_when_the_config_changed_since() {
    let (lab, _dir, r) = common::lab_remediator(Scenario::ReviewerJwtExpired).await;
    let report = triage(&r.probes, &r.target).await;
    let plan = r.plan(&report, RemediationKind::RotateReviewer).unwrap();

    // Someone rewrites the config (another issuer) between approval and execution.
    let http = reqwest::Client::new();
    let mut cfg = lab.vault_auth_config().unwrap();
    cfg["issuer"] = "https://changed.example".into();
    let resp = http
        .post(format!("{}/v1/auth/kubernetes/config", lab.vault_addr()))
        .header("X-Vault-Token", lab.vault_token())
        .json(&cfg)
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_success());
    let before = lab.vault_auth_config().unwrap();

    let err = r.execute_approved(&plan, &|_| {}).await.unwrap_err();
    let ExecError::WorldChanged { reason, .. } = &err;
    assert_eq!(reason, "the auth config changed");
    assert!(err.to_string().contains("nothing was changed"));
    assert_eq!(
        lab.vault_auth_config().unwrap(),
        before,
        "nothing was written"
    );
    lab.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(skip_openbao, ignore = "VAULT_TRIAGE_SKIP_OPENBAO=1")]
async fn openbao_reviewer_incident_is_fixed_and_every_other_field_survives() {
    common::init_crypto();
    let bin = common::bao_binary();
    let lab = Lab::start(Scenario::ReviewerJwtExpired, LabOptions::default())
        .await
        .unwrap();
    let (_dir, files) = common::lab_files(&lab);
    let bao = common::BaoServer::start(&bin).await;
    // Non-default fields that a careless rewrite would drop: PEM keys (the lab signs its
    // tokens for real, so OpenBao verifies them), an enforced issuer.
    let mut setup = lab.vault_setup();
    let cfg = setup.auth_config.as_mut().unwrap();
    cfg.pem_keys = vec![SIGNING_PUB_PEM.to_string()];
    cfg.issuer = ISSUER.to_string();
    cfg.disable_iss_validation = false;
    let token = apply_setup(&bao.addr, "root", &setup).await.unwrap();
    let (probes, target) = common::probes_for(&files, &bao.addr, &token).await;
    let r = common::remediator(probes, target);

    let before = triage(&r.probes, &r.target).await;
    assert_eq!(
        before.verdict.code,
        VerdictCode::ReviewerJwtExpired,
        "{:?}",
        before.verdict.evidence
    );
    let config_before = before
        .evidence
        .auth_config
        .value()
        .cloned()
        .flatten()
        .unwrap();
    assert_eq!(config_before.pem_keys.len(), 1);

    let plan = r.plan(&before, RemediationKind::RotateReviewer).unwrap();
    let out = r.execute_approved(&plan, &|_| {}).await.unwrap();
    assert!(out.ok, "{out:?}");

    let after = triage(&r.probes, &r.target).await;
    assert_eq!(
        after.verdict.code,
        VerdictCode::Healthy,
        "{:?}",
        after.verdict.evidence
    );
    let config_after = after
        .evidence
        .auth_config
        .value()
        .cloned()
        .flatten()
        .unwrap();
    assert_eq!(config_after.kubernetes_host, config_before.kubernetes_host);
    assert_eq!(
        config_after.kubernetes_ca_cert.trim(),
        config_before.kubernetes_ca_cert.trim()
    );
    assert_eq!(config_after.pem_keys, config_before.pem_keys);
    assert_eq!(config_after.issuer, ISSUER);
    assert!(!config_after.disable_iss_validation);
    assert_eq!(
        config_after.disable_local_ca_jwt,
        config_before.disable_local_ca_jwt
    );
    assert_eq!(config_after.token_reviewer_jwt_set, Some(true));
    drop(bao);
    lab.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_quiet_rollout_watch_outlives_the_per_call_timeout() {
    use futures::StreamExt as _;
    common::init_crypto();
    let lab = Lab::start(Scenario::Healthy, LabOptions::default())
        .await
        .unwrap();
    let (_dir, files) = common::lab_files(&lab);
    // A per-call timeout far shorter than the quiet spell below.
    let kube = vault_triage::kube::KubeClient::from_kubeconfig(
        Some(&files.kubeconfig),
        Duration::from_millis(300),
    )
    .await
    .unwrap();
    let watches = |lab: &Lab| {
        lab.kube_requests()
            .iter()
            .filter(|r| {
                r.path.ends_with("/deployments")
                    && r.query.as_deref().is_some_and(|q| q.contains("watch=true"))
            })
            .count()
    };
    let mut stream = std::pin::pin!(kube.watch_deployment("production", "payments-api").unwrap());
    let first = tokio::time::timeout(Duration::from_secs(10), stream.next())
        .await
        .expect("the deployment as it is")
        .expect("a state");
    assert!(first.is_some());
    // Nothing changes for ten per-call timeouts (a per-call read timeout would have broken
    // the watch, and the watcher's backoff restarted it, well within that): the watch stays
    // open, nothing is watched again.
    let quiet = tokio::time::timeout(Duration::from_secs(3), stream.next()).await;
    assert!(quiet.is_err(), "no change was expected: {quiet:?}");
    assert_eq!(
        watches(&lab),
        1,
        "the watch was restarted while it was quiet"
    );
    lab.shutdown().await;
}
