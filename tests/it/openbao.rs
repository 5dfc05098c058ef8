//! The same probes against a real OpenBao and against the lab's simulated Vault must give the
//! same verdict: that is how the lab proves it is faithful. OpenBao runs as a dev server on
//! loopback, configured through its HTTP API from the scenario's `VaultSetup`, with
//! `kubernetes_host` pointing at the lab's Kubernetes API.

use crate::support as common;

use vault_triage::evidence::{MonitorNode, NodeFound};
use vault_triage::lab::{Lab, LabOptions, Scenario, apply_setup, apply_setup_with};
use vault_triage::probes::triage;

/// Scenarios compared against OpenBao. `kube-ca-mismatch` needs TLS to the API server (the lab
/// speaks plain HTTP) and `vault-unreachable` has no Vault at all, so both are lab-only.
const COMPARED: &[Scenario] = &[
    Scenario::Healthy,
    Scenario::ReviewerJwtExpired,
    Scenario::ReviewerJwtRejected,
    Scenario::ReviewerRbacMissing,
    Scenario::KubeApiUnreachable,
    Scenario::RoleBindingMismatch,
    Scenario::RoleNotFound,
    Scenario::K8sAuthUnconfigured,
    Scenario::K8sAuthMountMissing,
    Scenario::VaultSealed,
    Scenario::PolicyDenied,
    Scenario::AudienceMismatch,
    Scenario::IssuerMismatch,
    Scenario::ClientJwtRejected,
    Scenario::Inconclusive,
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(skip_openbao, ignore = "VAULT_TRIAGE_SKIP_OPENBAO=1")]
async fn openbao_and_the_lab_give_the_same_verdicts() {
    common::init_crypto();
    let bin = common::bao_binary();
    let mut failures = Vec::new();
    for &scenario in COMPARED {
        let lab = Lab::start(scenario, LabOptions::default())
            .await
            .expect("lab");
        let (_dir, files) = common::lab_files(&lab);

        let (probes, target) =
            common::probes_for(&files, &lab.vault_addr(), &lab.vault_token()).await;
        let simulated = triage(&probes, &target).await;

        let bao = common::BaoServer::start(&bin).await;
        let token = apply_setup(&bao.addr, "root", &lab.vault_setup())
            .await
            .unwrap_or_else(|e| panic!("{scenario}: applying the setup to OpenBao: {e:#}"));
        let (probes, target) = common::probes_for(&files, &bao.addr, &token).await;
        let real = triage(&probes, &target).await;

        let expected = scenario.verdict_code();
        let (sim, rea) = (simulated.verdict.code.as_str(), real.verdict.code.as_str());
        if sim != expected || rea != expected {
            failures.push(format!(
                "{scenario}: lab {sim}, OpenBao {rea}, expected {expected}\n  lab chain: {:?}\n  OpenBao chain: {:?}",
                simulated.verdict.evidence, real.verdict.evidence
            ));
        }
        if scenario == Scenario::ReviewerJwtExpired {
            // The plugin's DEBUG reason must come through sys/monitor on the real server too.
            let lines = real.evidence.vault_log.value().cloned().unwrap_or_default();
            if !lines
                .iter()
                .any(|l| l.contains("service account unauthorized"))
            {
                failures.push(format!(
                    "{scenario}: no DEBUG reason captured from OpenBao: {lines:?}"
                ));
            }
        }
        drop(bao);
        lab.shutdown().await;
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// One scenario on a real three-node cluster, triaged through the active node and through a
/// standby (as behind Vault's load-balanced `vault` Service).
async fn through_both_nodes(bin: std::path::PathBuf, scenario: Scenario) -> Vec<String> {
    let mut failures = Vec::new();
    let lab = Lab::start(scenario, LabOptions::default())
        .await
        .expect("lab");
    let (_dir, files) = common::lab_files(&lab);
    let cluster = common::BaoCluster::start(&bin).await;
    let (active, standby) = (&cluster.nodes[0], &cluster.nodes[1]);
    let token = apply_setup_with(&cluster.http(), active, "root", &lab.vault_setup())
        .await
        .unwrap_or_else(|e| panic!("{scenario}: applying the setup to the cluster: {e:#}"));
    let (probes, target) = common::probes_with_ca(&files, active, &token, &cluster.ca).await;
    let on_active = triage(&probes, &target).await;
    let (probes, mut target) = common::probes_with_ca(&files, standby, &token, &cluster.ca).await;
    let on_standby = triage(&probes, &target).await;

    let expected = scenario.verdict_code();
    let (a, s) = (&on_active.verdict, &on_standby.verdict);
    if a.code.as_str() != expected || s.code != a.code || s.confidence != a.confidence {
        failures.push(format!(
            "{scenario}: active node {} ({}), standby {} ({}), expected {expected}\n  active chain: {:?}\n  standby chain: {:?}",
            a.code.as_str(),
            a.confidence.as_str(),
            s.code.as_str(),
            s.confidence.as_str(),
            a.evidence,
            s.evidence
        ));
    }
    if scenario == Scenario::ReviewerJwtExpired {
        // The DEBUG reason comes from the active node, and the evidence says so.
        let lines = on_standby
            .evidence
            .vault_log
            .value()
            .cloned()
            .unwrap_or_default();
        if !lines
            .iter()
            .any(|l| l.contains("service account unauthorized"))
        {
            failures.push(format!(
                "{scenario}: no DEBUG reason through the standby: {lines:?}"
            ));
        }
        let node = on_standby.evidence.vault_log_node.clone();
        if node
            != Some(MonitorNode {
                addr: active.clone(),
                found: NodeFound::SysLeader,
            })
        {
            failures.push(format!(
                "{scenario}: monitor node through the standby: {node:?}"
            ));
        }
        let said = format!("{:?}", s.evidence);
        if !said.contains("found through sys/leader") {
            failures.push(format!(
                "{scenario}: the chain does not say which node: {said}"
            ));
        }
        // An unreachable active node is said, and the triage falls back to what the standby
        // alone tells (the verdict without the DEBUG line).
        target.active_addr = Some("https://127.0.0.1:1".into());
        let fallback = triage(&probes, &target).await;
        let error = fallback.evidence.vault_log.error().map(|e| e.describe());
        if !error
            .as_deref()
            .is_some_and(|e| e.contains("https://127.0.0.1:1") && e.contains("active_addr"))
            || fallback.verdict.code.as_str() != expected
        {
            failures.push(format!(
                "{scenario}: with the active node unreachable: {} / {error:?}",
                fallback.verdict.code.as_str()
            ));
        }
    }
    drop(cluster);
    lab.shutdown().await;
    failures
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(skip_openbao, ignore = "VAULT_TRIAGE_SKIP_OPENBAO=1")]
async fn through_a_standby_every_verdict_and_confidence_is_the_active_nodes() {
    use futures::StreamExt as _;
    common::init_crypto();
    let bin = common::bao_binary();
    // Sealing the active node of an HA cluster hands over to a standby: `vault-sealed` is a
    // single-server scenario.
    let scenarios: Vec<Scenario> = COMPARED
        .iter()
        .copied()
        .filter(|s| *s != Scenario::VaultSealed)
        .collect();
    let failures: Vec<String> = futures::stream::iter(scenarios)
        .map(|s| through_both_nodes(bin.clone(), s))
        .buffer_unordered(3)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .flatten()
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
