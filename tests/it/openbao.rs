//! The same probes against a real OpenBao and against the lab's simulated Vault must give the
//! same verdict: that is how the lab proves it is faithful. OpenBao runs as a dev server on
//! loopback, configured through its HTTP API from the scenario's `VaultSetup`, with
//! `kubernetes_host` pointing at the lab's Kubernetes API.

use crate::support as common;

use vault_triage::lab::{Lab, LabOptions, Scenario, apply_setup};
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
