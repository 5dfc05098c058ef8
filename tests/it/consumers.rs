//! Every consumer of Vault (design §11.3) as `probe --format json` reports it, against the
//! lab's world: Deployments, StatefulSets, DaemonSets and CronJobs through the agent injector
//! (including `auth-config-role`), a Deployment through the CSI driver, and the External
//! Secrets and Vault Secrets Operator objects on the mount with their conditions.

use std::process::Command;

use serde_json::{Value, json};
use vault_triage::lab::{Lab, LabOptions, Scenario};

async fn probe_json(scenario: Scenario) -> Value {
    crate::support::init_crypto();
    let lab = Lab::start(scenario, LabOptions::default())
        .await
        .expect("lab");
    let json = probe_json_of(&lab);
    lab.shutdown().await;
    json
}

/// `probe --format json` against `lab`.
fn probe_json_of(lab: &Lab) -> Value {
    let (_dir, files) = crate::support::lab_files(lab);
    let out = Command::new(env!("CARGO_BIN_EXE_vault-triage"))
        .args(["probe", "--format", "json"])
        .envs(lab.exports(&files))
        .env("VAULT_TRIAGE_LOG", "warn")
        .output()
        .expect("running vault-triage");
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{e}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

fn find<'a>(list: &'a Value, kind: &str, name: &str) -> &'a Value {
    list.as_array()
        .unwrap()
        .iter()
        .find(|w| w["kind"] == kind && w["name"] == name)
        .unwrap_or_else(|| panic!("no {kind} {name} in {list}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outage_names_every_consumer_and_every_unsynced_object() {
    let json = probe_json(Scenario::ReviewerJwtExpired).await;
    let v = &json["verdict"];
    assert_eq!(v["code"], "reviewer_jwt_expired");
    let workloads = &v["affected_workloads"];
    assert_eq!(
        find(workloads, "StatefulSet", "ledger-db"),
        &json!({"kind": "StatefulSet", "namespace": "production", "name": "ledger-db",
            "roles": ["ledger-sync"], "via": "injector"}),
        "found through auth-config-role"
    );
    find(workloads, "DaemonSet", "log-shipper");
    find(workloads, "StatefulSet", "legacy-cache");
    find(workloads, "CronJob", "nightly-report");
    assert_eq!(find(workloads, "Deployment", "reports-web")["via"], "csi");
    assert_eq!(
        find(workloads, "Deployment", "reports-web")["roles"],
        json!(["billing-worker"]),
        "the SecretProviderClass's roleName"
    );
    let deployments = v["affected_deployments"].as_array().unwrap();
    assert_eq!(deployments.len(), 6, "Deployments only, as before");
    let syncs = &v["secret_syncs"];
    assert_eq!(
        find(syncs, "ClusterSecretStore", "vault-backend"),
        &json!({"kind": "ClusterSecretStore", "namespace": "", "name": "vault-backend",
            "ready": false, "message": "InvalidProviderConfig: unable to create client"})
    );
    assert_eq!(find(syncs, "ExternalSecret", "payments-db")["ready"], false);
    let vss = find(syncs, "VaultStaticSecret", "orders-config");
    assert_eq!(vss["ready"], false);
    assert!(
        vss["message"].as_str().unwrap().contains("Code: 403"),
        "{vss}"
    );
    let restart = v["remediations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == "restart-deployments")
        .expect("a restart");
    assert_eq!(restart["title"], "Restart affected workloads");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_healthy_mount_shows_its_objects_synced_and_nothing_affected() {
    let json = probe_json(Scenario::Healthy).await;
    let v = &json["verdict"];
    assert_eq!(v["code"], "healthy");
    assert_eq!(v["affected_workloads"], json!([]));
    let syncs = v["secret_syncs"].as_array().unwrap();
    assert_eq!(syncs.len(), 4, "{syncs:?}");
    assert!(syncs.iter().all(|s| s["ready"] == true), "{syncs:?}");
    assert!(
        json["evidence"]["workloads"]["value"]
            .as_array()
            .unwrap()
            .iter()
            .any(|w| w["kind"] == "CronJob"),
        "the evidence keeps every consumer it found"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_big_cluster_is_listed_a_page_at_a_time_and_nothing_is_missed() {
    crate::support::init_crypto();
    let lab = Lab::start(
        Scenario::ReviewerJwtExpired,
        LabOptions {
            bulk_workloads: 1500,
            bulk_external_secrets: 600,
            ..LabOptions::default()
        },
    )
    .await
    .expect("lab");
    let json = probe_json_of(&lab);
    // 1,000 bulk Deployments and 8 of the world's: three pages of 500.
    let deployment_lists: Vec<String> = lab
        .kube_requests()
        .into_iter()
        .filter(|r| r.method == "GET" && r.path == "/apis/apps/v1/deployments")
        .map(|r| r.query.unwrap_or_default())
        .collect();
    assert_eq!(deployment_lists.len(), 3, "{deployment_lists:?}");
    assert!(deployment_lists.iter().all(|q| q.contains("limit=500")));
    assert!(deployment_lists[1].contains("continue="));
    // One in twenty bulk workloads names a Vault role: 75, plus the world's 10, the Job
    // found through its injected pod only and the Deployment a VaultDynamicSecret restarts.
    let found = json["evidence"]["workloads"]["value"]
        .as_array()
        .unwrap()
        .len();
    assert_eq!(found, 75 + 10 + 1 + 1);
    // Every bulk ExternalSecret uses the store: 600 more, plus the world's four objects.
    let syncs = json["verdict"]["secret_syncs"].as_array().unwrap().len();
    assert_eq!(syncs, 600 + 4);
    lab.shutdown().await;
}
