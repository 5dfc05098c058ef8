//! Each verdict code from its evidence, and for each a near miss that must not produce it.

use chrono::{Duration as ChronoDuration, TimeZone as _, Utc};

use super::*;
use crate::evidence::*;
use crate::evidence::{AuthConfig, AuthMount, Health, Role, SecretRead};
use crate::evidence::{ReviewResult, TokenClaims, Workload};

fn now() -> chrono::DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 28, 12, 0, 0).unwrap()
}

fn ok<T>(value: T) -> Probe<T> {
    Probe::Ok { value, ms: 5 }
}

fn failed<T>(error: ProbeError) -> Probe<T> {
    Probe::Failed { error, ms: 5 }
}

const EXPIRED_401_LINE: &str = "2026-11-28T11:59:59.000Z [DEBUG] auth.kubernetes.auth_kubernetes_1a2b3c4d: login unauthorized: err=\"lookup failed: service account unauthorized; this could mean it has been deleted or recreated with a new token\"";

fn reviewer_ok() -> ReviewerEvidence {
    ReviewerEvidence {
        service_account: "vault/vault-auth".into(),
        service_account_exists: Some(true),
        token_source: Some("Secret vault/vault-auth-token".into()),
        secret_found: Some(true),
        claims: Some(TokenClaims {
            subject: Some("system:serviceaccount:vault:vault-auth".into()),
            expires_at: Some(now() + ChronoDuration::days(300)),
            issued_at: Some(now() - ChronoDuration::days(65)),
            ..Default::default()
        }),
        legacy_invalid_since: None,
        as_caller: Some(CallerCheck::Authenticated {
            username: "system:serviceaccount:vault:vault-auth".into(),
        }),
        may_create_tokenreviews: Some(true),
        notes: vec![],
    }
}

/// Everything healthy: Vault up, mount configured, canary logs in and reads its secret.
fn healthy() -> Evidence {
    Evidence {
        target: TargetInfo {
            cluster: "default".into(),
            vault_addr: "http://127.0.0.1:8200".into(),
            auth_mount: "kubernetes".into(),
            role: "vault-triage-canary".into(),
            canary_role: "vault-triage-canary".into(),
            canary_namespace: "vault-triage".into(),
            canary_service_account: "vault-triage-canary".into(),
            secret_path: Some("secret/data/vault-triage/canary".into()),
            reviewer: Some("vault/vault-auth".into()),
            kube_cluster_url: Some("http://127.0.0.1:6443".into()),
        },
        started_at: now(),
        health: ok(Health {
            status_code: 200,
            initialized: true,
            sealed: false,
            standby: false,
            performance_standby: false,
            version: "2.7.2".into(),
            cluster_name: None,
        }),
        auth_mount: ok(MountCheck {
            mount: Some(AuthMount {
                path: "kubernetes/".into(),
                kind: "kubernetes".into(),
                accessor: "auth_kubernetes_1a2b3c4d".into(),
                running_plugin_version: None,
            }),
            kubernetes_mounts: vec!["kubernetes/".into()],
            other_type: None,
        }),
        auth_config: ok(Some(AuthConfig {
            kubernetes_host: "https://10.96.0.1:443".into(),
            kubernetes_ca_cert: "-----BEGIN CERTIFICATE-----".into(),
            disable_iss_validation: true,
            token_reviewer_jwt_set: Some(true),
            ..Default::default()
        })),
        canary_role: ok(Some(Role {
            name: "vault-triage-canary".into(),
            bound_service_account_names: vec!["vault-triage-canary".into()],
            bound_service_account_namespaces: vec!["vault-triage".into()],
            token_policies: vec!["vault-triage-canary".into()],
            ..Default::default()
        })),
        target_role: None,
        canary_token: ok(TokenClaims {
            subject: Some("system:serviceaccount:vault-triage:vault-triage-canary".into()),
            audiences: vec!["https://kubernetes.default.svc.cluster.local".into()],
            expires_at: Some(now() + ChronoDuration::minutes(10)),
            ..Default::default()
        }),
        canary_review: ok(ReviewResult {
            authenticated: true,
            username: Some("system:serviceaccount:vault-triage:vault-triage-canary".into()),
            uid: Some("u".into()),
            audiences: vec![],
            error: None,
        }),
        login: ok(LoginOutcome::Success {
            policies: vec!["default".into(), "vault-triage-canary".into()],
            lease_duration: 60,
        }),
        vault_log: ok(vec![]),
        vault_log_node: None,
        secret_read: ok(SecretRead::Readable),
        reviewer: ok(reviewer_ok()),
        kube_api: ok(KubeApiEvidence {
            host: "https://10.96.0.1:443".into(),
            reachability: Some(Reachability::Answered { status: 401 }),
            ca_matches_cluster: Some(true),
            ca_configured: true,
            notes: vec![],
        }),
        workloads: ok([
            "payments-api",
            "billing-worker",
            "orders-api",
            "ledger-sync",
            "notifications",
        ]
        .iter()
        .map(|n| Workload {
            namespace: "production".into(),
            name: n.to_string(),
            uid: format!("uid-{n}"),
            role: n.to_string(),
            service_account: n.to_string(),
            replicas: 2,
            ..Default::default()
        })
        .collect()),
        secret_syncs: ok(vec![]),
        pods: ok(PodEvidence::default()),
        duration_ms: 40,
    }
}

fn refused(e: &mut Evidence, status: u16, message: &str) {
    e.login = ok(LoginOutcome::Refused {
        status,
        message: message.into(),
    });
    e.secret_read = Probe::skipped("the canary login did not succeed");
}

/// The classic incident.
fn expired() -> Evidence {
    let mut e = healthy();
    refused(&mut e, 403, "permission denied");
    e.vault_log = ok(vec![EXPIRED_401_LINE.into()]);
    let mut r = reviewer_ok();
    r.claims.as_mut().unwrap().expires_at = Some(now() - ChronoDuration::hours(3));
    r.as_caller = Some(CallerCheck::Unauthorized);
    r.may_create_tokenreviews = None;
    e.reviewer = ok(r);
    e
}

fn code(e: &Evidence) -> VerdictCode {
    diagnose(e, now()).code
}

#[test]
fn healthy_is_healthy() {
    let v = diagnose(&healthy(), now());
    assert_eq!(v.code, VerdictCode::Healthy);
    assert!(v.remediations.is_empty());
    assert!(v.affected_deployments.is_empty());
}

#[test]
fn healthy_needs_the_login_not_just_vault_health() {
    let mut e = healthy();
    refused(&mut e, 403, "permission denied");
    assert_ne!(code(&e), VerdictCode::Healthy);
}

#[test]
fn every_kind_of_consumer_is_in_the_blast_radius_and_the_restart_names_them() {
    let mut e = expired();
    let mut workloads = e.workloads.value().cloned().unwrap_or_default();
    let extra = |kind: WorkloadKind, name: &str, on_delete: bool| Workload {
        namespace: "production".into(),
        name: name.into(),
        kind,
        role: "ledger-sync".into(),
        on_delete,
        ..Default::default()
    };
    workloads.push(extra(WorkloadKind::StatefulSet, "ledger-db", false));
    workloads.push(extra(WorkloadKind::DaemonSet, "log-shipper", false));
    workloads.push(extra(WorkloadKind::CronJob, "nightly-report", false));
    e.workloads = ok(workloads);
    let v = diagnose(&e, now());
    assert_eq!(v.affected_workloads.len(), 8);
    assert_eq!(
        v.affected_deployments.len(),
        5,
        "Deployments only, as before"
    );
    assert!(
        v.summary.contains(
            "8 workloads (5 Deployments, 1 StatefulSet, 1 DaemonSet, 1 CronJob) use Vault"
        ),
        "{}",
        v.summary
    );
    let restart = v
        .remediations
        .iter()
        .find(|r| r.id == "restart-deployments")
        .expect("a restart");
    assert_eq!(restart.title, "Restart affected workloads");
    assert!(
        v.reminders.iter().any(|r| r.contains("vault-agent-init")),
        "{:?}",
        v.reminders
    );

    // Only a CronJob: nothing to restart, so no restart is offered.
    let mut only_cron = expired();
    only_cron.workloads = ok(vec![extra(WorkloadKind::CronJob, "nightly-report", false)]);
    let v = diagnose(&only_cron, now());
    assert!(v.remediations.iter().all(|r| r.id != "restart-deployments"));
}

fn stuck(name: &str) -> StuckPod {
    StuckPod {
        namespace: "production".into(),
        name: name.into(),
        owner_kind: WorkloadKind::Deployment,
        owner: "payments-api".into(),
        status: "Init:0/1".into(),
        container: "vault-agent-init".into(),
        since: Some(now() - ChronoDuration::minutes(40)),
    }
}

fn with_stuck_pods(e: &mut Evidence, n: usize) {
    e.pods = ok(PodEvidence {
        injected: 10,
        owners: Vec::new(),
        stuck: (0..n)
            .map(|i| stuck(&format!("payments-api-7d9f8b6c5d-{i:05}")))
            .collect(),
    });
}

#[test]
fn consumers_failing_on_their_own_firm_up_a_mount_wide_verdict_by_one_step() {
    // Expired reviewer seen from the bot's side only (no DEBUG line): medium.
    let mut e = expired();
    e.vault_log = ok(vec![]);
    assert_eq!(diagnose(&e, now()).confidence, Confidence::Medium);
    with_stuck_pods(&mut e, 2);
    let v = diagnose(&e, now());
    assert_eq!(
        (v.code, v.confidence),
        (VerdictCode::ReviewerJwtExpired, Confidence::High)
    );
    assert!(
        v.reminders
            .iter()
            .any(|r| r.contains("Independent signs agree") && r.contains("2 pods stuck")),
        "{:?}",
        v.reminders
    );
    let line = v
        .evidence
        .iter()
        .find(|i| i.check == "Injected pods")
        .unwrap();
    assert_eq!(line.status, CheckStatus::Fail);
    assert!(
        line.detail.starts_with("2 of 10 waiting on vault-agent-init (Init:0/1), e.g. production/payments-api-7d9f8b6c5d-00000 of Deployment payments-api, started 40 min ago"),
        "{}",
        line.detail
    );

    // An ExternalSecret repeating its store's state is not a sign of its own; the store is.
    let mut e = expired();
    e.vault_log = ok(vec![]);
    let sync = |kind: &str, message: &str| SecretSync {
        kind: kind.into(),
        namespace: String::new(),
        name: "vault-backend".into(),
        ready: Some(false),
        message: message.into(),
        via: Via::Eso,
        created_once: false,
        ..SecretSync::default()
    };
    e.secret_syncs = ok(vec![sync(
        "ExternalSecret",
        "SecretSyncedError: could not get secret data from provider",
    )]);
    assert_eq!(diagnose(&e, now()).confidence, Confidence::Medium);
    e.secret_syncs = ok(vec![sync(
        "ClusterSecretStore",
        "InvalidProviderConfig: unable to create client",
    )]);
    assert_eq!(diagnose(&e, now()).confidence, Confidence::High);

    // Inconclusive stays low: the consumers show that logins fail, not why.
    let mut e = healthy();
    refused(&mut e, 403, "permission denied");
    with_stuck_pods(&mut e, 1);
    let v = diagnose(&e, now());
    assert_eq!(
        (v.code, v.confidence),
        (VerdictCode::Inconclusive, Confidence::Low)
    );
    assert!(v.reminders.iter().any(|r| r.contains("but not why")));
}

#[test]
fn pods_stuck_while_the_canary_logs_in_are_reported_as_their_own_problem() {
    let mut e = healthy();
    with_stuck_pods(&mut e, 1);
    let v = diagnose(&e, now());
    assert_eq!(
        (v.code, v.confidence),
        (VerdictCode::Healthy, Confidence::High)
    );
    assert!(
        v.reminders
            .iter()
            .any(|r| r.contains("The canary logs in, yet 1 pod waits")
                && r.contains("not the mount")),
        "{:?}",
        v.reminders
    );
}

#[test]
fn pods_that_could_not_be_listed_are_not_checked_never_none() {
    let mut e = expired();
    e.pods = failed(ProbeError::Status {
        code: 403,
        message: "pods is forbidden: User \"system:serviceaccount:vault-triage:vault-triage\" cannot list resource \"pods\" in API group \"\" at the cluster scope".into(),
    });
    let v = diagnose(&e, now());
    let line = v
        .evidence
        .iter()
        .find(|i| i.check == "Injected pods")
        .unwrap();
    assert_eq!(line.status, CheckStatus::Unknown);
    assert!(
        line.detail.starts_with("could not check"),
        "{}",
        line.detail
    );
    assert!(
        v.unchecked.iter().any(|u| u.contains("pods")),
        "{:?}",
        v.unchecked
    );
}

#[test]
fn operators_objects_on_the_mount_are_reported_with_what_heals_by_itself() {
    let mut e = expired();
    e.secret_syncs = ok(vec![
        SecretSync {
            kind: "ClusterSecretStore".into(),
            namespace: String::new(),
            name: "vault-backend".into(),
            ready: Some(false),
            message: "InvalidProviderConfig: unable to create client".into(),
            via: Via::Eso,
            created_once: false,
            ..SecretSync::default()
        },
        SecretSync {
            kind: "VaultStaticSecret".into(),
            namespace: "production".into(),
            name: "orders-config".into(),
            ready: Some(true),
            message: String::new(),
            via: Via::Vso,
            created_once: false,
            ..SecretSync::default()
        },
    ]);
    let v = diagnose(&e, now());
    assert_eq!(v.secret_syncs.len(), 2);
    assert_eq!(v.secret_syncs[0].ready, Some(false));
    let line = v
        .evidence
        .iter()
        .find(|i| i.check == "Secret syncs (ESO, VSO)")
        .expect("an evidence line");
    assert_eq!(line.status, CheckStatus::Fail);
    assert!(
        line.detail
            .contains("1 of 2 not synced, e.g. ClusterSecretStore vault-backend"),
        "{}",
        line.detail
    );
    assert!(v.reminders.iter().any(|r| r.contains("at most 7 min")));
    assert!(v.reminders.iter().any(|r| r.contains("5 to 60 s")));
    // The re-sync is offered after the restart.
    let ids: Vec<&str> = v.remediations.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(ids.last(), Some(&"resync-secrets"), "{ids:?}");
    let resync = v.remediations.last().unwrap();
    assert_eq!(resync.title, "Re-sync secrets");
    assert_eq!(resync.action, Some(crate::diagnosis::Action::ResyncSecrets));
    assert_eq!(
        resync.kind(),
        Some(crate::diagnosis::RemediationKind::ResyncSecrets)
    );
    // Without operator objects the remediations are as before.
    let plain = diagnose(&expired(), now());
    assert!(plain.remediations.iter().all(|r| r.id != "resync-secrets"));
    assert_eq!(
        &ids[..ids.len() - 1],
        plain
            .remediations
            .iter()
            .map(|r| r.id.as_str())
            .collect::<Vec<_>>()
    );
    let json = serde_json::to_value(&v).unwrap();
    assert_eq!(
        json["secret_syncs"][0],
        serde_json::json!({"kind": "ClusterSecretStore", "namespace": "", "name": "vault-backend",
            "ready": false, "message": "InvalidProviderConfig: unable to create client"})
    );

    // The canary logs in but a store does not: a look-alike, said as what it is.
    let mut fine = healthy();
    fine.secret_syncs = e.secret_syncs.clone();
    let v = diagnose(&fine, now());
    assert_eq!(v.code, VerdictCode::Healthy);
    assert_eq!(
        v.remediations
            .iter()
            .map(|r| r.id.as_str())
            .collect::<Vec<_>>(),
        ["resync-secrets"],
        "healthy with objects not synced: the re-sync alone"
    );
    let mut all_synced = healthy();
    let mut synced = e.secret_syncs.value().unwrap().clone();
    for s in &mut synced {
        s.ready = Some(true);
    }
    all_synced.secret_syncs = ok(synced);
    assert!(diagnose(&all_synced, now()).remediations.is_empty());
    assert!(
        v.reminders
            .iter()
            .any(|r| r.contains("suspect their own role")),
        "{:?}",
        v.reminders
    );

    // Not allowed to list them: could not check, never none.
    e.secret_syncs = failed(ProbeError::Status {
        code: 403,
        message: "forbidden".into(),
    });
    let v = diagnose(&e, now());
    assert!(
        v.unchecked.iter().any(|u| u.contains("External Secrets")),
        "{:?}",
        v.unchecked
    );
}

#[test]
fn classic_incident_is_reviewer_jwt_expired_with_high_confidence() {
    let v = diagnose(&expired(), now());
    assert_eq!(v.code, VerdictCode::ReviewerJwtExpired);
    assert_eq!(v.confidence, Confidence::High);
    assert_eq!(v.layer, Layer::Authentication);
    assert!(v.headline.contains("expired 3 h ago"), "{}", v.headline);
    assert!(v.summary.contains("No secret needs rotating"));
    assert_eq!(v.affected_deployments.len(), 5);
    let ids: Vec<&str> = v.remediations.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(
        ids,
        ["rotate-reviewer", "use-local-token", "restart-deployments"]
    );
    assert!(v.reminders.iter().any(|r| r.contains("max TTL")));
    assert!(
        v.reminders
            .iter()
            .any(|r| r.contains("No secret needs rotating"))
    );
}

#[test]
fn reviewer_401_without_a_provable_exp_is_rejected_not_expired() {
    let mut e = expired();
    let mut r = e.reviewer.value().unwrap().clone();
    r.claims = Some(TokenClaims {
        legacy: true,
        ..Default::default()
    });
    e.reviewer = ok(r);
    assert_eq!(code(&e), VerdictCode::ReviewerJwtRejected);
}

#[test]
fn reviewer_exp_in_the_past_but_accepted_by_kubernetes_is_not_expired() {
    // The Secret's token is fine; Vault holds some other, stale one.
    let mut e = expired();
    let mut r = e.reviewer.value().unwrap().clone();
    r.as_caller = Some(CallerCheck::Authenticated {
        username: "x".into(),
    });
    e.reviewer = ok(r);
    assert_eq!(code(&e), VerdictCode::ReviewerJwtRejected);
}

#[test]
fn reviewer_rejected_from_the_debug_line_alone() {
    let mut e = expired();
    e.reviewer = Probe::skipped("no [reviewer] section in the config");
    let v = diagnose(&e, now());
    assert_eq!(v.code, VerdictCode::ReviewerJwtRejected);
    assert_eq!(v.confidence, Confidence::Medium);
}

#[test]
fn reviewer_forbidden_is_rbac_missing() {
    let mut e = healthy();
    refused(&mut e, 403, "permission denied");
    e.vault_log = ok(vec![r#"[DEBUG] auth.kubernetes.auth_kubernetes_1: login unauthorized: err="{\"kind\":\"Status\",\"message\":\"tokenreviews.authentication.k8s.io is forbidden: User \\\"system:serviceaccount:vault:vault-auth\\\" cannot create resource \\\"tokenreviews\\\"\",\"reason\":\"Forbidden\",\"code\":403}""#.into()]);
    let mut r = reviewer_ok();
    r.may_create_tokenreviews = Some(false);
    e.reviewer = ok(r);
    assert_eq!(code(&e), VerdictCode::ReviewerRbacMissing);
}

#[test]
fn a_reviewer_without_rbac_does_not_explain_a_working_login() {
    let mut e = healthy();
    let mut r = reviewer_ok();
    r.may_create_tokenreviews = Some(false);
    e.reviewer = ok(r);
    assert_eq!(code(&e), VerdictCode::Healthy);
}

#[test]
fn connection_refused_in_the_debug_line_is_kube_api_unreachable() {
    let mut e = healthy();
    refused(&mut e, 403, "permission denied");
    e.vault_log = ok(vec![r#"login unauthorized: err="Post \"http://127.0.0.1:1/apis/authentication.k8s.io/v1/tokenreviews\": dial tcp 127.0.0.1:1: connect: connection refused""#.into()]);
    e.kube_api = ok(KubeApiEvidence {
        host: "http://127.0.0.1:1".into(),
        reachability: Some(Reachability::NoAnswer {
            detail: "connection refused".into(),
        }),
        ca_matches_cluster: None,
        ca_configured: false,
        notes: vec![],
    });
    let v = diagnose(&e, now());
    assert_eq!(v.code, VerdictCode::KubeApiUnreachable);
    assert_eq!(v.confidence, Confidence::High);
}

#[test]
fn api_unreachable_from_the_bot_alone_does_not_override_a_401_line() {
    let mut e = expired();
    e.kube_api = ok(KubeApiEvidence {
        host: "https://10.96.0.1:443".into(),
        reachability: Some(Reachability::NoAnswer {
            detail: "no route".into(),
        }),
        ..Default::default()
    });
    assert_eq!(code(&e), VerdictCode::ReviewerJwtExpired);
}

#[test]
fn x509_in_the_debug_line_is_kube_ca_mismatch() {
    let mut e = healthy();
    refused(&mut e, 403, "permission denied");
    e.vault_log = ok(vec![r#"login unauthorized: err="Post \"https://10.96.0.1/apis/authentication.k8s.io/v1/tokenreviews\": tls: failed to verify certificate: x509: certificate signed by unknown authority""#.into()]);
    let mut k = e.kube_api.value().unwrap().clone();
    k.ca_matches_cluster = Some(false);
    e.kube_api = ok(k);
    let v = diagnose(&e, now());
    assert_eq!(v.code, VerdictCode::KubeCaMismatch);
    assert_eq!(v.confidence, Confidence::High);
}

#[test]
fn a_ca_difference_with_a_working_login_is_not_a_ca_mismatch() {
    let mut e = healthy();
    let mut k = e.kube_api.value().unwrap().clone();
    k.ca_matches_cluster = Some(false);
    e.kube_api = ok(k);
    assert_eq!(code(&e), VerdictCode::Healthy);
}

#[test]
fn kubernetes_rejecting_the_canary_token_is_client_jwt_rejected() {
    let mut e = healthy();
    refused(&mut e, 403, "permission denied");
    e.vault_log = ok(vec!["login unauthorized: err=\"lookup failed: [invalid bearer token, service account token has been invalidated]\"".into()]);
    e.canary_review = ok(ReviewResult {
        authenticated: false,
        username: None,
        uid: None,
        audiences: vec![],
        error: Some("[invalid bearer token, service account token has been invalidated]".into()),
    });
    let v = diagnose(&e, now());
    assert_eq!(v.code, VerdictCode::ClientJwtRejected);
    assert!(!v.code.is_mount_wide());
}

#[test]
fn a_canary_accepted_by_kubernetes_with_a_401_line_is_the_reviewer_not_the_client() {
    let e = expired();
    assert!(e.canary_review.value().unwrap().authenticated);
    assert_ne!(code(&e), VerdictCode::ClientJwtRejected);
}

#[test]
fn descriptive_login_errors_name_their_cause() {
    let cases = [
        (
            403,
            "service account name not authorized",
            VerdictCode::RoleBindingMismatch,
        ),
        (
            403,
            "namespace not authorized",
            VerdictCode::RoleBindingMismatch,
        ),
        (
            403,
            "invalid audience (aud) claim: audience claim does not match any expected audience",
            VerdictCode::AudienceMismatch,
        ),
        (
            403,
            "invalid issuer (iss) claim",
            VerdictCode::IssuerMismatch,
        ),
        (
            400,
            "invalid role name \"vault-triage-canary\"",
            VerdictCode::RoleNotFound,
        ),
        (
            500,
            "could not load backend configuration",
            VerdictCode::K8sAuthUnconfigured,
        ),
    ];
    for (status, message, expected) in cases {
        let mut e = healthy();
        refused(&mut e, status, message);
        assert_eq!(code(&e), expected, "{status} {message}");
    }
}

#[test]
fn a_bare_permission_denied_is_never_a_binding_or_claim_verdict() {
    let mut e = healthy();
    refused(&mut e, 403, "permission denied");
    let c = code(&e);
    for wrong in [
        VerdictCode::RoleBindingMismatch,
        VerdictCode::AudienceMismatch,
        VerdictCode::IssuerMismatch,
        VerdictCode::RoleNotFound,
        VerdictCode::PolicyDenied,
    ] {
        assert_ne!(c, wrong);
    }
    assert_eq!(c, VerdictCode::Inconclusive);
}

#[test]
fn a_403_on_the_secret_after_a_good_login_is_policy_denied() {
    let mut e = healthy();
    e.secret_read = ok(SecretRead::Denied {
        message: "1 error occurred:\n\t* permission denied\n\n".into(),
    });
    let v = diagnose(&e, now());
    assert_eq!(v.code, VerdictCode::PolicyDenied);
    assert_eq!(v.layer, Layer::Authorization);
    assert!(v.reminders.iter().all(|r| !r.contains("max TTL")));
}

#[test]
fn a_missing_secret_after_a_good_login_is_not_policy_denied() {
    let mut e = healthy();
    e.secret_read = ok(SecretRead::NotFound);
    assert_eq!(code(&e), VerdictCode::Healthy);
}

#[test]
fn no_answer_from_vault_is_vault_unreachable() {
    let mut e = healthy();
    e.health = failed(ProbeError::NoAnswer {
        detail: "connection refused".into(),
    });
    e.login = failed(ProbeError::NoAnswer {
        detail: "connection refused".into(),
    });
    let v = diagnose(&e, now());
    assert_eq!(v.code, VerdictCode::VaultUnreachable);
    assert_eq!(v.confidence, Confidence::High);
}

#[test]
fn an_error_status_from_vault_health_is_not_unreachable() {
    let mut e = healthy();
    e.health = failed(ProbeError::Status {
        code: 500,
        message: "boom".into(),
    });
    assert_ne!(code(&e), VerdictCode::VaultUnreachable);
}

#[test]
fn sealed_vault_is_vault_sealed() {
    let mut e = healthy();
    let mut h = e.health.value().unwrap().clone();
    h.sealed = true;
    h.status_code = 503;
    e.health = ok(h);
    refused(&mut e, 503, "Vault is sealed");
    assert_eq!(code(&e), VerdictCode::VaultSealed);
}

#[test]
fn a_standby_node_is_not_sealed() {
    let mut e = healthy();
    let mut h = e.health.value().unwrap().clone();
    h.standby = true;
    h.status_code = 429;
    e.health = ok(h);
    assert_eq!(code(&e), VerdictCode::Healthy);
}

#[test]
fn no_kubernetes_mount_is_mount_missing() {
    let mut e = healthy();
    e.auth_mount = ok(MountCheck {
        mount: None,
        kubernetes_mounts: vec!["k8s-prod/".into()],
        other_type: None,
    });
    refused(&mut e, 400, "missing client token");
    let v = diagnose(&e, now());
    assert_eq!(v.code, VerdictCode::K8sAuthMountMissing);
    assert!(v.summary.contains("k8s-prod/"), "{}", v.summary);
}

#[test]
fn an_unreadable_sys_auth_alone_is_not_mount_missing() {
    let mut e = healthy();
    e.auth_mount = failed(ProbeError::Status {
        code: 403,
        message: "permission denied".into(),
    });
    assert_eq!(code(&e), VerdictCode::Healthy);
}

#[test]
fn no_config_is_unconfigured() {
    let mut e = healthy();
    e.auth_config = ok(None);
    refused(&mut e, 500, "could not load backend configuration");
    assert_eq!(code(&e), VerdictCode::K8sAuthUnconfigured);
}

#[test]
fn an_unreadable_config_alone_is_not_unconfigured() {
    let mut e = expired();
    e.auth_config = failed(ProbeError::Status {
        code: 403,
        message: "permission denied".into(),
    });
    assert_eq!(code(&e), VerdictCode::ReviewerJwtExpired);
}

#[test]
fn a_missing_role_asked_for_is_role_not_found() {
    let mut e = healthy();
    e.target.role = "ledger-sync".into();
    e.target_role = Some(ok(None));
    let v = diagnose(&e, now());
    assert_eq!(v.code, VerdictCode::RoleNotFound);
    assert_eq!(v.affected_deployments.len(), 1);
    assert_eq!(v.affected_deployments[0].name, "ledger-sync");
}

#[test]
fn a_role_asked_for_that_does_not_bind_its_workload_is_a_binding_mismatch() {
    let mut e = healthy();
    e.target.role = "ledger-sync".into();
    e.target_role = Some(ok(Some(Role {
        name: "ledger-sync".into(),
        bound_service_account_names: vec!["ledger-sync-old".into()],
        bound_service_account_namespaces: vec!["production".into()],
        ..Default::default()
    })));
    assert_eq!(code(&e), VerdictCode::RoleBindingMismatch);
    // The same role with a glob that covers the workload is fine.
    e.target_role = Some(ok(Some(Role {
        name: "ledger-sync".into(),
        bound_service_account_names: vec!["ledger-*".into()],
        bound_service_account_namespaces: vec!["*".into()],
        ..Default::default()
    })));
    assert_eq!(code(&e), VerdictCode::Healthy);
}

#[test]
fn no_debug_line_and_nothing_else_wrong_is_inconclusive_and_says_what_to_check() {
    let mut e = healthy();
    refused(&mut e, 403, "permission denied");
    e.vault_log = failed(ProbeError::Status {
        code: 403,
        message: "permission denied".into(),
    });
    e.reviewer = Probe::skipped("no [reviewer] section in the config");
    let v = diagnose(&e, now());
    assert_eq!(v.code, VerdictCode::Inconclusive);
    assert_eq!(v.confidence, Confidence::Low);
    assert!(v.summary.contains("sys/monitor"));
    assert!(v.unchecked.iter().any(|u| u.contains("sys/monitor")));
}

#[test]
fn no_kubernetes_access_with_an_expired_reviewer_is_still_diagnosed_but_less_firmly() {
    let mut e = expired();
    e.canary_token = Probe::skipped("no Kubernetes access");
    e.canary_review = Probe::skipped("no canary token");
    e.login = Probe::skipped("no canary token to log in with");
    e.vault_log = Probe::skipped("no canary login was made");
    let v = diagnose(&e, now());
    assert_eq!(v.code, VerdictCode::ReviewerJwtExpired);
    assert_eq!(v.confidence, Confidence::Medium);
}

#[test]
fn the_evidence_chain_shows_claims_never_tokens() {
    let v = diagnose(&expired(), now());
    let text = serde_json::to_string(&v).unwrap();
    assert!(!text.contains("eyJ"));
    let reviewer = v
        .evidence
        .iter()
        .find(|i| i.check.starts_with("Reviewer vault/vault-auth"))
        .unwrap();
    assert_eq!(reviewer.status, CheckStatus::Fail);
    assert!(
        reviewer.detail.contains("expired 2026-11-28 09:00 UTC"),
        "{}",
        reviewer.detail
    );
    assert!(reviewer.detail.contains("401"));
    let log = v
        .evidence
        .iter()
        .find(|i| i.check == "Vault debug log")
        .unwrap();
    assert!(
        log.detail
            .starts_with("\"lookup failed: service account unauthorized"),
        "{}",
        log.detail
    );
}

#[test]
fn every_code_has_a_headline_summary_and_layer() {
    let e = expired();
    for c in VerdictCode::ALL {
        assert!(!text::headline(&e, c, now()).is_empty());
        assert!(!text::summary(&e, c, &[]).is_empty());
        let _ = c.layer();
    }
}

#[test]
fn the_bots_missing_canary_role_is_said_to_be_the_bots_own() {
    let mut e = healthy();
    e.canary_role = ok(None);
    refused(&mut e, 400, "invalid role name \"vault-triage-canary\"");
    let v = diagnose(&e, now());
    assert_eq!(v.code, VerdictCode::RoleNotFound);
    assert!(v.headline.contains("canary role"), "{}", v.headline);
    assert!(v.summary.contains("canary-role.sh"), "{}", v.summary);
    assert!(!v.summary.contains("workloads use"), "{}", v.summary);
    assert!(
        v.remediations.iter().any(|r| r.id == "create-canary-role"),
        "{:?}",
        v.remediations
    );

    // A workload's role asked for keeps the workload advice.
    let mut e = healthy();
    e.target.role = "ledger-sync".into();
    e.target_role = Some(ok(None));
    let v = diagnose(&e, now());
    assert!(v.summary.contains("workloads use"), "{}", v.summary);
}

fn cluster(name: &str, e: Evidence) -> super::ClusterReport {
    super::ClusterReport {
        cluster: name.into(),
        report: super::Report {
            verdict: diagnose(&e, now()),
            evidence: e,
            triaged_at: now(),
            duration_ms: 10,
            version: "test".into(),
        },
    }
}

#[test]
fn a_fleet_puts_the_clusters_with_a_fault_first_in_config_order_and_exits_2() {
    let fleet = super::FleetReport {
        clusters: vec![
            cluster("a", healthy()),
            cluster("b", expired()),
            cluster("c", healthy()),
            cluster("d", expired()),
        ],
    };
    let order: Vec<&str> = fleet.ordered().iter().map(|c| c.cluster.as_str()).collect();
    assert_eq!(order, ["b", "d", "a", "c"]);
    assert_eq!(fleet.worst().unwrap().cluster, "b");
    assert_eq!(fleet.exit_code(), 2);
    let json = fleet.json().unwrap();
    assert_eq!(json["cluster"], "b");
    assert_eq!(json["verdict"]["code"], "reviewer_jwt_expired");
    let names: Vec<&str> = json["clusters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["cluster"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["b", "d", "a", "c"]);
    assert_eq!(json["fleet"].as_array().unwrap().len(), 4);

    let all_fine = super::FleetReport {
        clusters: vec![cluster("a", healthy()), cluster("b", healthy())],
    };
    assert_eq!(all_fine.exit_code(), 0);
    assert_eq!(all_fine.worst().unwrap().cluster, "a");
}

#[test]
fn the_fleet_status_lists_the_soonest_reviewer_expiry_first() {
    let with_expiry = |name: &str, days: i64| {
        let mut e = healthy();
        if let Probe::Ok { value, .. } = &mut e.reviewer {
            value.claims = Some(TokenClaims {
                expires_at: Some(now() + chrono::TimeDelta::days(days)),
                ..Default::default()
            });
        }
        cluster(name, e)
    };
    let mut unknown = healthy();
    unknown.reviewer = Probe::skipped("no [reviewer]");
    let fleet = super::FleetReport {
        clusters: vec![
            cluster("none", unknown),
            with_expiry("later", 300),
            with_expiry("soon", 3),
        ],
    };
    let order: Vec<String> = fleet.status().into_iter().map(|l| l.cluster).collect();
    assert_eq!(order, ["soon", "later", "none"]);
}
