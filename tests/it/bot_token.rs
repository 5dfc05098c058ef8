//! The bot's own Vault token against a real OpenBao: a rewritten `VAULT_TOKEN_FILE` is picked
//! up without a restart, a renewable token is renewed once half its TTL has passed, a token at
//! its max TTL is reported as not extendable, and a revoked token is reported as rejected.

use crate::support as common;

use std::time::Duration;

use serde_json::{Value, json};
use vault_triage::config::ConnectionArgs;
use vault_triage::vault::VaultClient;
use vault_triage::vault::token_care::{Tended, TokenHealth, tend};

/// Creates a token with the root token; returns it.
async fn create_token(addr: &str, body: Value) -> String {
    let v: Value = reqwest::Client::new()
        .post(format!("{addr}/v1/auth/token/create"))
        .header("X-Vault-Token", "root")
        .json(&body)
        .send()
        .await
        .unwrap()
        .error_for_status()
        .unwrap()
        .json()
        .await
        .unwrap();
    v["auth"]["client_token"].as_str().unwrap().to_string()
}

fn client(addr: &str, token: Option<&str>, token_file: Option<&std::path::Path>) -> VaultClient {
    let args = ConnectionArgs {
        vault_addr: addr.to_string(),
        vault_token: token.map(String::from),
        vault_token_file: token_file.map(Into::into),
        vault_cacert: None,
        vault_namespace: None,
        kubeconfig: None,
    };
    VaultClient::new(&args.vault_settings().unwrap(), Duration::from_secs(5)).unwrap()
}

fn rewrite(path: &std::path::Path, token: &str) {
    std::fs::write(path, format!("{token}\n")).unwrap();
    let later = std::time::SystemTime::now() + Duration::from_secs(1);
    std::fs::File::options()
        .write(true)
        .open(path)
        .unwrap()
        .set_modified(later)
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(skip_openbao, ignore = "VAULT_TRIAGE_SKIP_OPENBAO=1")]
async fn a_rewritten_token_file_is_used_without_a_restart() {
    let bin = common::bao_binary();
    let bao = common::BaoServer::start(&bin).await;
    let first = create_token(&bao.addr, json!({"display_name": "first", "ttl": "1h"})).await;
    let second = create_token(&bao.addr, json!({"display_name": "second", "ttl": "1h"})).await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("token");
    rewrite(&path, &first);
    let vault = client(&bao.addr, None, Some(&path));
    assert_eq!(
        vault.lookup_self().await.unwrap().display_name,
        "token-first"
    );

    // Vault Agent re-logs in and rewrites its sink: the next call uses the new token.
    rewrite(&path, &second);
    assert_eq!(
        vault.lookup_self().await.unwrap().display_name,
        "token-second"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(skip_openbao, ignore = "VAULT_TRIAGE_SKIP_OPENBAO=1")]
async fn a_renewable_token_is_renewed_past_half_its_ttl_and_a_capped_one_is_reported() {
    let bin = common::bao_binary();
    let bao = common::BaoServer::start(&bin).await;

    // Fresh: nothing to do.
    let token = create_token(&bao.addr, json!({"ttl": "6s", "renewable": true})).await;
    let vault = client(&bao.addr, Some(&token), None);
    match tend(&vault).await {
        Tended::Checked(TokenHealth::Valid { ttl }) => assert!(ttl > Duration::from_secs(3)),
        other => panic!("fresh token: {other:?}"),
    }

    // Past half of its TTL: renewed back to its full TTL.
    tokio::time::sleep(Duration::from_millis(3500)).await;
    match tend(&vault).await {
        Tended::Renewed { before, after } => {
            assert!(before <= Duration::from_secs(3), "{before:?}");
            assert!(after > before, "{before:?} → {after:?}");
        }
        other => panic!("half-way token: {other:?}"),
    }
    let info = vault.lookup_self().await.unwrap();
    assert!(info.ttl >= 5, "after renewal: {info:?}");

    // Capped by an explicit max TTL it has nearly reached: renewal cannot extend it.
    let capped = create_token(
        &bao.addr,
        json!({"ttl": "8s", "explicit_max_ttl": "8s", "renewable": true}),
    )
    .await;
    let vault = client(&bao.addr, Some(&capped), None);
    tokio::time::sleep(Duration::from_millis(4500)).await;
    match tend(&vault).await {
        Tended::RenewalFailed { reason, .. } => assert!(reason.contains("max TTL"), "{reason}"),
        other => panic!("capped token: {other:?}"),
    }

    // Not renewable and short-lived: reported as expiring.
    let fixed = create_token(&bao.addr, json!({"ttl": "1h", "renewable": false})).await;
    let vault = client(&bao.addr, Some(&fixed), None);
    assert!(matches!(
        tend(&vault).await,
        Tended::Checked(TokenHealth::Expiring { .. })
    ));

    // The dev root token never expires.
    let vault = client(&bao.addr, Some("root"), None);
    assert_eq!(tend(&vault).await, Tended::Checked(TokenHealth::NoExpiry));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(skip_openbao, ignore = "VAULT_TRIAGE_SKIP_OPENBAO=1")]
async fn a_revoked_token_is_reported_as_rejected() {
    let bin = common::bao_binary();
    let bao = common::BaoServer::start(&bin).await;
    let token = create_token(&bao.addr, json!({"ttl": "1h"})).await;
    let vault = client(&bao.addr, Some(&token), None);
    vault.revoke_self().await.unwrap();
    match tend(&vault).await {
        Tended::Rejected(e) => assert_eq!(e.status(), Some(403)),
        other => panic!("revoked token: {other:?}"),
    }
    // And a Vault that is gone is not mistaken for a rejected token.
    drop(bao);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(matches!(tend(&vault).await, Tended::Unanswered(_)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(skip_openbao, ignore = "VAULT_TRIAGE_SKIP_OPENBAO=1")]
async fn serve_keeps_its_token_alive_past_its_first_ttl() {
    let bin = common::bao_binary();
    let bao = common::BaoServer::start(&bin).await;
    let lab = vault_triage::lab::Lab::start(
        vault_triage::lab::Scenario::Healthy,
        vault_triage::lab::LabOptions::default(),
    )
    .await
    .unwrap();
    let (_dir, files) = common::lab_files(&lab);
    let created = std::time::Instant::now();
    let token = create_token(&bao.addr, json!({"ttl": "12s", "renewable": true})).await;
    let token_dir = tempfile::tempdir().unwrap();
    let path = token_dir.path().join("token");
    rewrite(&path, &token);

    let serve = common::ServeProcess::start(&lab, &files, |cmd, _| {
        cmd.env("VAULT_ADDR", &bao.addr)
            .env_remove("VAULT_TOKEN")
            .env("VAULT_TOKEN_FILE", &path);
    });

    let renewed = "vault_triage_vault_token_renewals_total{outcome=\"renewed\"}";
    let mut metrics = String::new();
    while created.elapsed() < Duration::from_secs(30) && !metrics.contains(renewed) {
        tokio::time::sleep(Duration::from_millis(200)).await;
        if let Ok(r) = reqwest::get(format!("{}/metrics", serve.url)).await {
            metrics = r.text().await.unwrap_or_default();
        }
    }
    assert!(metrics.contains(renewed), "{metrics}");
    assert!(
        metrics.contains("vault_triage_vault_token_ttl_seconds "),
        "{metrics}"
    );
    // Well past the TTL it was created with, the token still works.
    let past = Duration::from_secs(14).saturating_sub(created.elapsed());
    tokio::time::sleep(past).await;
    let info = client(&bao.addr, Some(&token), None)
        .lookup_self()
        .await
        .expect("the token outlived its first TTL");
    assert!(info.ttl > 0, "{info:?}");
    assert!(
        !metrics.contains(&token),
        "the token must not appear in /metrics"
    );
}
