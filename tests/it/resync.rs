//! `resync-secrets` against the lab: after the fix, the ESO store is re-validated, the
//! ExternalSecret force-synced and the VSO secret re-triggered, each by a merge patch of one
//! annotation; a plan whose objects left the mount is refused at quorum.

use crate::support as common;

use vault_triage::diagnosis::{RemediationKind, VerdictCode};
use vault_triage::lab::{Lab, Scenario};
use vault_triage::probes::triage;
use vault_triage::remediation::plan::ResyncTarget;
use vault_triage::remediation::{ExecError, Plan};

/// The annotation `key` of an operator object, as a unix time.
fn annotated_at(lab: &Lab, resource: &str, ns: &str, name: &str, key: &str) -> i64 {
    let o = lab
        .operator_object(resource, ns, name)
        .unwrap_or_else(|| panic!("{resource} {ns}/{name}"));
    o["metadata"]["annotations"][key]
        .as_str()
        .unwrap_or_else(|| panic!("{resource} {ns}/{name} has no {key}: {o}"))
        .parse()
        .unwrap_or_else(|e| panic!("{key} is not a unix time: {e}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_the_fix_a_resync_annotates_the_store_the_external_secret_and_the_vso_secret() {
    let (lab, _dir, r) = common::lab_remediator(Scenario::ReviewerJwtExpired).await;
    let before = triage(&r.probes, &r.target).await;
    assert_eq!(before.verdict.code, VerdictCode::ReviewerJwtExpired);
    let ids: Vec<&str> = before
        .verdict
        .remediations
        .iter()
        .map(|m| m.id.as_str())
        .collect();
    assert_eq!(
        ids,
        [
            "rotate-reviewer",
            "use-local-token",
            "restart-deployments",
            "resync-secrets",
            "resync-dynamic-secrets"
        ]
    );

    let resync = r.plan(&before, RemediationKind::ResyncSecrets).unwrap();
    let Plan::ResyncSecrets(p) = &resync else {
        panic!("{resync:?}")
    };
    let targets: Vec<(String, &str)> = p
        .targets
        .iter()
        .map(|t| (t.label(), t.annotation.as_str()))
        .collect();
    assert_eq!(
        targets,
        [
            (
                "ClusterSecretStore vault-backend".to_string(),
                "vault-triage.io/revalidate-at"
            ),
            (
                "ExternalSecret production/payments-db".to_string(),
                "force-sync"
            ),
            (
                "VaultStaticSecret production/orders-config".to_string(),
                "vault-triage.io/resync-at"
            ),
        ]
    );
    let left: Vec<String> = p.not_resynced.iter().map(|n| n.name.clone()).collect();
    assert_eq!(
        left,
        ["frontend-db"],
        "the VaultDynamicSecret is listed, not touched"
    );

    // Asked for, the dynamic secret is annotated too, with the other VSO secrets.
    let with_dynamic = r
        .plan(&before, RemediationKind::ResyncDynamicSecrets)
        .unwrap();
    let Plan::ResyncSecrets(d) = &with_dynamic else {
        panic!("{with_dynamic:?}")
    };
    let labels: Vec<String> = d.targets.iter().map(ResyncTarget::label).collect();
    assert_eq!(labels.len(), 4, "{labels:?}");
    assert!(
        labels[2..].contains(&"VaultDynamicSecret production/frontend-db".to_string()),
        "{labels:?}"
    );
    assert!(d.not_resynced.is_empty(), "{:?}", d.not_resynced);
    assert!(with_dynamic.preview().contains("mints new credentials"));

    // The fix first, as the summary says.
    let fix = r.plan(&before, RemediationKind::RotateReviewer).unwrap();
    let out = r.execute_approved(&fix, &|_| {}).await.unwrap();
    assert!(out.ok, "{out:?}");

    let started = chrono::Utc::now().timestamp();
    let patches_before = lab.kube_requests().len();
    let out = r.execute_approved(&resync, &|_| {}).await.unwrap();
    let finished = chrono::Utc::now().timestamp();
    assert!(out.ok, "{out:?}");
    let steps: Vec<(&str, bool)> = out.steps.iter().map(|s| (s.step.as_str(), s.ok)).collect();
    assert_eq!(
        steps,
        [
            ("annotate ClusterSecretStore vault-backend", true),
            ("annotate ExternalSecret production/payments-db", true),
            ("annotate VaultStaticSecret production/orders-config", true),
        ]
    );
    assert_eq!(
        out.summary,
        "3 of 3 External Secrets and Vault Secrets Operator objects annotated to sync now"
    );

    let force_sync = annotated_at(
        &lab,
        "externalsecrets",
        "production",
        "payments-db",
        "force-sync",
    );
    assert!((started..=finished).contains(&force_sync), "{force_sync}");
    let store = annotated_at(
        &lab,
        "clustersecretstores",
        "",
        "vault-backend",
        "vault-triage.io/revalidate-at",
    );
    let vss = annotated_at(
        &lab,
        "vaultstaticsecrets",
        "production",
        "orders-config",
        "vault-triage.io/resync-at",
    );
    assert_eq!(
        (store, vss),
        (force_sync, force_sync),
        "one time for the run"
    );

    // Merge patches (custom resources refuse strategic merge), as the bot.
    let patches: Vec<_> = lab.kube_requests()[patches_before..]
        .iter()
        .filter(|q| q.method == "PATCH")
        .cloned()
        .collect();
    assert_eq!(patches.len(), 3);
    for q in &patches {
        assert_eq!(
            q.content_type.as_deref(),
            Some("application/merge-patch+json"),
            "{}",
            q.path
        );
        assert!(
            q.query
                .as_deref()
                .unwrap_or("")
                .contains("fieldManager=vault-triage"),
            "{:?}",
            q.query
        );
        assert_eq!(
            q.identity,
            "system:serviceaccount:vault-triage:vault-triage"
        );
        let body: serde_json::Value = serde_json::from_str(&q.body).unwrap();
        assert_eq!(
            body["metadata"]["annotations"].as_object().map(|a| a.len()),
            Some(1),
            "{body}"
        );
        assert!(body.get("spec").is_none(), "{body}");
    }

    // An approved plan naming an object no longer on the mount is refused, nothing patched.
    let mut gone = p.clone();
    gone.targets.push(ResyncTarget {
        kind: "ExternalSecret".into(),
        namespace: "production".into(),
        name: "deleted-since".into(),
        annotation: "force-sync".into(),
    });
    let patches_before = lab.kube_requests().len();
    let err = r
        .execute_approved(&Plan::ResyncSecrets(gone), &|_| {})
        .await
        .unwrap_err();
    let ExecError::WorldChanged { reason, .. } = &err;
    assert_eq!(
        reason,
        "no longer on the mount: ExternalSecret production/deleted-since"
    );
    assert!(
        lab.kube_requests()[patches_before..]
            .iter()
            .all(|q| q.method != "PATCH")
    );
    lab.shutdown().await;
}
