//! The lab as a fleet: several simulated clusters behind the first one's Vault, each cluster's
//! auth mount at `kubernetes-<name>`, the files a multi-cluster bot reads, and
//! `vault-triage lab --clusters`.

use std::process::Stdio;
use std::time::Duration;

use kube::config::Kubeconfig;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt as _, BufReader};
use vault_triage::lab::{Fleet, Lab, LabOptions, Scenario};

const TIMEOUT: Duration = Duration::from_secs(20);

fn clusters(spec: &[(&str, Scenario)]) -> Vec<(String, Scenario)> {
    spec.iter().map(|(n, s)| (n.to_string(), *s)).collect()
}

/// `prod-a` healthy (the Vault), `prod-b` with an expired reviewer token.
async fn two_clusters() -> Fleet {
    Fleet::start(
        &clusters(&[
            ("prod-a", Scenario::Healthy),
            ("prod-b", Scenario::ReviewerJwtExpired),
        ]),
        LabOptions::default(),
    )
    .await
    .expect("fleet starts")
}

async fn login(fleet: &Fleet, mount: &str, jwt: &str) -> (u16, Value) {
    let resp = reqwest::Client::new()
        .post(format!("{}/v1/auth/{mount}/login", fleet.vault_addr()))
        .json(&json!({"role": "vault-triage-canary", "jwt": jwt}))
        .send()
        .await
        .expect("login request");
    let status = resp.status().as_u16();
    (status, resp.json().await.expect("json body"))
}

#[tokio::test]
async fn each_clusters_mount_on_the_shared_vault_reviews_tokens_with_that_cluster() {
    let fleet = two_clusters().await;
    let (a, b) = (
        fleet.lab("prod-a").expect("prod-a"),
        fleet.lab("prod-b").expect("prod-b"),
    );
    assert_ne!(a.kube_url(), b.kube_url());

    let (status, body) = login(
        &fleet,
        "kubernetes-prod-a",
        &crate::support::canary_jwt(a).await,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let token = body["auth"]["client_token"].as_str().expect("client_token");
    let secret = reqwest::Client::new()
        .get(format!(
            "{}/v1/secret/data/vault-triage/canary",
            fleet.vault_addr()
        ))
        .header("X-Vault-Token", token)
        .send()
        .await
        .expect("read secret");
    assert_eq!(secret.status(), 200);

    let (status, body) = login(
        &fleet,
        "kubernetes-prod-b",
        &crate::support::canary_jwt(b).await,
    )
    .await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(body, json!({"errors": ["permission denied"]}));

    // prod-b's Kubernetes API is the one that answered the TokenReview.
    let reviews = |lab: &Lab| {
        lab.kube_requests()
            .iter()
            .filter(|r| r.path.ends_with("/tokenreviews"))
            .count()
    };
    assert_eq!(reviews(a), 1);
    assert_eq!(reviews(b), 1);
    fleet.shutdown().await;
}

#[tokio::test]
async fn the_written_kubeconfig_and_config_name_every_cluster() {
    let fleet = two_clusters().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let files = fleet.write_files(dir.path()).expect("files written");

    let kc = Kubeconfig::read_from(&files.kubeconfig).expect("kubeconfig parses");
    assert_eq!(kc.current_context.as_deref(), Some("prod-a"));
    assert_eq!(kc.contexts.len(), 2);
    for name in ["prod-a", "prod-b"] {
        let ctx = kc
            .contexts
            .iter()
            .find(|c| c.name == name)
            .and_then(|c| c.context.clone())
            .unwrap_or_else(|| panic!("context {name}"));
        let server = kc
            .clusters
            .iter()
            .find(|c| c.name == ctx.cluster)
            .and_then(|c| c.cluster.clone())
            .and_then(|c| c.server);
        assert_eq!(server, Some(fleet.lab(name).expect("lab").kube_url()));
    }

    let text = std::fs::read_to_string(&files.config).expect("config");
    let config: toml::Value = toml::from_str(&text).expect("config parses as TOML");
    let blocks = config["clusters"].as_array().expect("[[clusters]]");
    let names: Vec<(&str, &str, &str)> = blocks
        .iter()
        .map(|c| {
            (
                c["name"].as_str().unwrap_or_default(),
                c["context"].as_str().unwrap_or_default(),
                c["auth_mount"].as_str().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(
        names,
        [
            ("prod-a", "prod-a", "kubernetes-prod-a"),
            ("prod-b", "prod-b", "kubernetes-prod-b"),
        ]
    );
    assert_eq!(
        config["state"]["dir"].as_str(),
        Some(files.state_dir.to_string_lossy().as_ref())
    );

    let exports = fleet.exports(&files);
    let var = |k: &str| exports.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    assert_eq!(var("VAULT_ADDR"), Some(fleet.vault_addr()));
    assert_eq!(var("VAULT_TOKEN"), Some(fleet.vault_token()));
    assert_eq!(
        var("KUBECONFIG"),
        Some(files.kubeconfig.to_string_lossy().into_owned())
    );
    assert_eq!(
        var("VAULT_TRIAGE_CONFIG"),
        Some(files.config.to_string_lossy().into_owned())
    );
    fleet.shutdown().await;
}

#[tokio::test]
async fn a_mount_missing_cluster_has_no_mount_on_the_shared_vault() {
    let fleet = Fleet::start(
        &clusters(&[
            ("prod-a", Scenario::Healthy),
            ("prod-b", Scenario::K8sAuthMountMissing),
        ]),
        LabOptions::default(),
    )
    .await
    .expect("fleet starts");
    let auth: Value = reqwest::Client::new()
        .get(format!("{}/v1/sys/auth", fleet.vault_addr()))
        .header("X-Vault-Token", fleet.vault_token())
        .send()
        .await
        .expect("sys/auth")
        .json()
        .await
        .expect("json");
    assert!(auth["data"].get("kubernetes-prod-a/").is_some(), "{auth}");
    assert!(auth["data"].get("kubernetes-prod-b/").is_none(), "{auth}");
    fleet.shutdown().await;
}

#[tokio::test]
async fn bad_fleets_are_refused_with_their_reason() {
    let refused = |spec: Vec<(String, Scenario)>| async move {
        Fleet::start(&spec, LabOptions::default())
            .await
            .map(|_| ())
            .expect_err("refused")
            .to_string()
    };
    let dup = refused(clusters(&[
        ("prod-a", Scenario::Healthy),
        ("prod-a", Scenario::RoleNotFound),
    ]))
    .await;
    assert!(dup.contains("\"prod-a\" is given twice"), "{dup}");

    let sealed = refused(clusters(&[
        ("prod-a", Scenario::Healthy),
        ("prod-b", Scenario::VaultSealed),
    ]))
    .await;
    assert!(
        sealed.contains("\"prod-b\"") && sealed.contains("`vault-sealed`"),
        "{sealed}"
    );
    assert!(sealed.contains("first cluster"), "{sealed}");
}

#[tokio::test]
async fn the_lab_command_serves_a_fleet_and_prints_its_exports() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_vault-triage"))
        .args([
            "lab",
            "--clusters",
            "a,b=reviewer-jwt-expired",
            "--foreground",
        ])
        .arg("--dir")
        .arg(dir.path())
        .env("VAULT_TRIAGE_LOG", "warn")
        .env_remove("VAULT_TRIAGE_LAB_FAULT")
        .env_remove("VAULT_TRIAGE_LAB_LISTEN")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("lab starts");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let mut exports = Vec::new();
    tokio::time::timeout(TIMEOUT, async {
        while let Some(line) = lines.next_line().await.expect("read") {
            if line == "# lab ready" {
                return;
            }
            exports.push(line);
        }
        panic!("the lab stopped before `# lab ready`: {exports:?}");
    })
    .await
    .expect("`# lab ready` within the timeout");

    let value = |name: &str| {
        exports
            .iter()
            .find_map(|l| l.strip_prefix(&format!("export {name}=")))
            .map(|v| v.trim_matches('\'').to_string())
            .unwrap_or_else(|| panic!("{name} missing from {exports:?}"))
    };
    let config = std::fs::read_to_string(value("VAULT_TRIAGE_CONFIG")).expect("config");
    let config: toml::Value = toml::from_str(&config).expect("TOML");
    assert_eq!(config["clusters"].as_array().map(Vec::len), Some(2));
    assert!(std::path::Path::new(&value("KUBECONFIG")).exists());
    let auth: Value = reqwest::Client::new()
        .get(format!("{}/v1/sys/auth", value("VAULT_ADDR")))
        .header("X-Vault-Token", value("VAULT_TOKEN"))
        .send()
        .await
        .expect("sys/auth")
        .json()
        .await
        .expect("json");
    for mount in ["kubernetes-a/", "kubernetes-b/"] {
        assert!(auth["data"].get(mount).is_some(), "{mount}: {auth}");
    }
    child.kill().await.expect("kill the lab");
}
