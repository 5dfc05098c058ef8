//! The lab's Vault side over real HTTP: login answers per scenario, the debug reason on
//! `sys/monitor`, health/seal, policy checks and config writes.

use std::time::Duration;

use serde_json::{Value, json};
use vault_triage::lab::{Lab, LabOptions, Scenario};

const TIMEOUT: Duration = Duration::from_secs(10);

async fn start(s: Scenario) -> Lab {
    Lab::start(s, LabOptions::default())
        .await
        .expect("lab starts")
}

async fn login(addr: &str, role: &str, jwt: &str) -> (u16, String) {
    let resp = reqwest::Client::new()
        .post(format!("{addr}/v1/auth/kubernetes/login"))
        .json(&json!({"role": role, "jwt": jwt}))
        .send()
        .await
        .expect("login request");
    (resp.status().as_u16(), resp.text().await.expect("body"))
}

/// Opens `sys/monitor?log_level=debug`, runs `during`, and returns the first
/// `login unauthorized` line.
async fn debug_line_during<F: std::future::Future<Output = (u16, String)>>(
    lab: &Lab,
    token: &str,
    during: F,
) -> ((u16, String), String) {
    let mut mon = reqwest::Client::new()
        .get(format!(
            "{}/v1/sys/monitor?log_level=debug",
            lab.vault_addr()
        ))
        .header("X-Vault-Token", token)
        .send()
        .await
        .expect("monitor");
    assert_eq!(mon.status(), 200);
    let result = during.await;
    let mut buf = String::new();
    let line = tokio::time::timeout(TIMEOUT, async {
        loop {
            if let Some(l) = buf.lines().find(|l| l.contains("login unauthorized")) {
                return l.to_string();
            }
            match mon.chunk().await {
                Ok(Some(c)) => buf.push_str(&String::from_utf8_lossy(&c)),
                _ => return String::new(),
            }
        }
    })
    .await
    .expect("debug line within timeout");
    (result, line)
}

const PERMISSION_DENIED: &str = "{\"errors\":[\"permission denied\"]}\n";

#[tokio::test]
async fn healthy_canary_logs_in_and_reads_its_secret() {
    let lab = start(Scenario::Healthy).await;
    let jwt = crate::support::canary_jwt(&lab).await;
    let (status, body) = login(&lab.vault_addr(), "vault-triage-canary", &jwt).await;
    assert_eq!(status, 200, "{body}");
    let v: Value = serde_json::from_str(&body).expect("json");
    let token = v["auth"]["client_token"].as_str().expect("client token");
    assert!(token.starts_with("hvs."));
    assert_eq!(
        v["auth"]["policies"],
        json!(["default", "vault-triage-canary"])
    );
    assert_eq!(
        v["auth"]["metadata"]["service_account_name"],
        "vault-triage-canary"
    );
    assert_eq!(v["auth"]["lease_duration"], 60);
    let http = reqwest::Client::new();
    let secret: Value = http
        .get(format!(
            "{}/v1/secret/data/vault-triage/canary",
            lab.vault_addr()
        ))
        .header("X-Vault-Token", token)
        .send()
        .await
        .expect("read")
        .json()
        .await
        .expect("json");
    assert_eq!(secret["data"]["data"], json!({"canary": "ok"}));
    let other = http
        .get(format!("{}/v1/secret/data/elsewhere", lab.vault_addr()))
        .header("X-Vault-Token", token)
        .send()
        .await
        .expect("read");
    assert_eq!(other.status(), 403);
    assert_eq!(
        other.text().await.expect("body"),
        "{\"errors\":[\"1 error occurred:\\n\\t* permission denied\\n\\n\"]}\n"
    );
    let revoke = http
        .post(format!("{}/v1/auth/token/revoke-self", lab.vault_addr()))
        .header("X-Vault-Token", token)
        .send()
        .await
        .expect("revoke");
    assert_eq!(revoke.status(), 204);
    let after = http
        .get(format!("{}/v1/auth/token/lookup-self", lab.vault_addr()))
        .header("X-Vault-Token", token)
        .send()
        .await
        .expect("lookup");
    assert_eq!(after.status(), 403);
    assert_eq!(after.text().await.expect("body"), PERMISSION_DENIED);
    lab.shutdown().await;
}

#[tokio::test]
async fn descriptive_login_failures_have_the_plugin_messages() {
    let cases = [
        (
            Scenario::RoleBindingMismatch,
            403,
            "service account name not authorized",
        ),
        (
            Scenario::AudienceMismatch,
            403,
            "invalid audience (aud) claim: audience claim does not match any expected audience",
        ),
        (Scenario::IssuerMismatch, 403, "invalid issuer (iss) claim"),
        (
            Scenario::RoleNotFound,
            400,
            "invalid role name \"vault-triage-canary\"",
        ),
        (
            Scenario::K8sAuthUnconfigured,
            500,
            "could not load backend configuration",
        ),
        (Scenario::K8sAuthMountMissing, 403, "permission denied"),
        (Scenario::VaultSealed, 503, "Vault is sealed"),
    ];
    for (scenario, code, msg) in cases {
        let lab = start(scenario).await;
        let jwt = crate::support::canary_jwt(&lab).await;
        let (status, body) = login(&lab.vault_addr(), "vault-triage-canary", &jwt).await;
        assert_eq!(status, code, "{scenario}: {body}");
        assert_eq!(
            body,
            format!("{}\n", json!({"errors": [msg]})),
            "{scenario}"
        );
        lab.shutdown().await;
    }
}

#[tokio::test]
async fn tokenreview_failures_are_permission_denied_with_the_debug_reason() {
    let cases: [(Scenario, &[&str]); 6] = [
        (
            Scenario::ReviewerJwtExpired,
            &[
                "err=\"lookup failed: service account unauthorized; this could mean it has been deleted or recreated with a new token\"",
            ],
        ),
        (
            Scenario::ReviewerJwtRejected,
            &["lookup failed: service account unauthorized"],
        ),
        (
            Scenario::ReviewerRbacMissing,
            &[
                "err=\"{\\\"kind\\\":\\\"Status\\\"",
                "tokenreviews.authentication.k8s.io is forbidden: User \\\\\"system:serviceaccount:vault:vault-auth\\\\\" cannot create resource \\\\\"tokenreviews\\\\\" in API group \\\\\"authentication.k8s.io\\\\\" at the cluster scope",
            ],
        ),
        (
            Scenario::KubeApiUnreachable,
            &[
                "err=\"Post \\\"http://127.0.0.1:",
                "/apis/authentication.k8s.io/v1/tokenreviews\\\": dial tcp 127.0.0.1:",
                ": connect: connection refused\"",
            ],
        ),
        (
            Scenario::KubeCaMismatch,
            &["tls: failed to verify certificate: x509: certificate signed by unknown authority"],
        ),
        (
            Scenario::ClientJwtRejected,
            &[
                "err=\"lookup failed: [invalid bearer token, service account token has been invalidated]\"",
            ],
        ),
    ];
    for (scenario, needles) in cases {
        let lab = start(scenario).await;
        let jwt = crate::support::canary_jwt(&lab).await;
        let addr = lab.vault_addr();
        let ((status, body), line) =
            debug_line_during(&lab, "root", login(&addr, "vault-triage-canary", &jwt)).await;
        assert_eq!(status, 403, "{scenario}");
        assert_eq!(body, PERMISSION_DENIED, "{scenario}");
        assert!(
            line.contains(" [DEBUG] auth.kubernetes.auth_kubernetes_"),
            "{scenario}: {line}"
        );
        assert!(
            line.contains(": login unauthorized: err=\""),
            "{scenario}: {line}"
        );
        for n in needles {
            assert!(line.contains(n), "{scenario}: {line}\n missing {n}");
        }
        lab.shutdown().await;
    }
}

#[tokio::test]
async fn policy_denied_logs_in_but_cannot_read() {
    let lab = start(Scenario::PolicyDenied).await;
    let jwt = crate::support::canary_jwt(&lab).await;
    let (status, body) = login(&lab.vault_addr(), "vault-triage-canary", &jwt).await;
    assert_eq!(status, 200);
    let v: Value = serde_json::from_str(&body).expect("json");
    let resp = reqwest::Client::new()
        .get(format!(
            "{}/v1/secret/data/vault-triage/canary",
            lab.vault_addr()
        ))
        .header(
            "X-Vault-Token",
            v["auth"]["client_token"].as_str().expect("token"),
        )
        .send()
        .await
        .expect("read");
    assert_eq!(resp.status(), 403);
    assert!(
        resp.text()
            .await
            .expect("body")
            .contains("1 error occurred")
    );
    lab.shutdown().await;
}

#[tokio::test]
async fn inconclusive_bot_token_cannot_monitor_and_config_has_no_reviewer() {
    let lab = start(Scenario::Inconclusive).await;
    assert_ne!(lab.vault_token(), "root");
    let http = reqwest::Client::new();
    let mon = http
        .get(format!(
            "{}/v1/sys/monitor?log_level=debug",
            lab.vault_addr()
        ))
        .header("X-Vault-Token", lab.vault_token())
        .send()
        .await
        .expect("monitor");
    assert_eq!(mon.status(), 403);
    let cfg = http
        .get(format!("{}/v1/auth/kubernetes/config", lab.vault_addr()))
        .header("X-Vault-Token", lab.vault_token())
        .send()
        .await
        .expect("config");
    assert_eq!(cfg.status(), 200);
    let auth = http
        .get(format!("{}/v1/sys/auth", lab.vault_addr()))
        .header("X-Vault-Token", lab.vault_token())
        .send()
        .await
        .expect("sys/auth");
    assert_eq!(auth.status(), 200);
    let dir = tempfile::tempdir().expect("tempdir");
    assert!(!lab.config_toml(dir.path()).contains("[reviewer]"));
    let jwt = crate::support::canary_jwt(&lab).await;
    let (status, body) = login(&lab.vault_addr(), "vault-triage-canary", &jwt).await;
    assert_eq!((status, body.as_str()), (403, PERMISSION_DENIED));
    lab.shutdown().await;
}

#[tokio::test]
async fn health_sys_auth_and_config_shapes() {
    let lab = start(Scenario::Healthy).await;
    let http = reqwest::Client::new();
    let addr = lab.vault_addr();
    let health = http
        .get(format!("{addr}/v1/sys/health"))
        .send()
        .await
        .expect("health");
    assert_eq!(health.status(), 200);
    let h: Value = health.json().await.expect("json");
    assert_eq!(
        (h["sealed"].clone(), h["standby"].clone()),
        (json!(false), json!(false))
    );

    let auth: Value = http
        .get(format!("{addr}/v1/sys/auth"))
        .header("X-Vault-Token", "root")
        .send()
        .await
        .expect("sys/auth")
        .json()
        .await
        .expect("json");
    let acc = auth["data"]["kubernetes/"]["accessor"]
        .as_str()
        .expect("accessor");
    assert!(
        acc.starts_with("auth_kubernetes_") && acc.len() == 24,
        "{acc}"
    );
    assert_eq!(auth["kubernetes/"], auth["data"]["kubernetes/"]);

    let no_token = http
        .get(format!("{addr}/v1/sys/auth"))
        .send()
        .await
        .expect("req");
    assert_eq!(no_token.status(), 403);
    assert_eq!(no_token.text().await.expect("body"), PERMISSION_DENIED);

    let cfg: Value = http
        .get(format!("{addr}/v1/auth/kubernetes/config"))
        .header("X-Vault-Token", "root")
        .send()
        .await
        .expect("config")
        .json()
        .await
        .expect("json");
    assert_eq!(cfg["data"]["token_reviewer_jwt_set"], true);
    assert!(cfg["data"].get("token_reviewer_jwt").is_none());
    assert_eq!(cfg["data"]["kubernetes_host"], lab.kube_url());

    // Full replacement: a write of only the JWT fails.
    let partial = http
        .post(format!("{addr}/v1/auth/kubernetes/config"))
        .header("X-Vault-Token", "root")
        .json(&json!({"token_reviewer_jwt": "x"}))
        .send()
        .await
        .expect("write");
    assert_eq!(partial.status(), 400);
    assert_eq!(
        partial.text().await.expect("body"),
        "{\"errors\":[\"no host provided\"]}\n"
    );
    let patch = http
        .patch(format!("{addr}/v1/auth/kubernetes/config"))
        .header("X-Vault-Token", "root")
        .header("Content-Type", "application/merge-patch+json")
        .body("{}")
        .send()
        .await
        .expect("patch");
    assert_eq!(patch.status(), 405);
    let bad = http
        .post(format!("{addr}/v1/auth/kubernetes/login"))
        .header("Content-Type", "application/json")
        .body("{bad")
        .send()
        .await
        .expect("bad json");
    assert_eq!(bad.status(), 400);
    assert!(
        bad.text()
            .await
            .expect("body")
            .contains("failed to decode JSON input")
    );
    let missing = http
        .get(format!("{addr}/v1/auth/kubernetes/role/nope"))
        .header("X-Vault-Token", "root")
        .send()
        .await
        .expect("role");
    assert_eq!(missing.status(), 404);
    assert_eq!(missing.text().await.expect("body"), "{\"errors\":[]}\n");
    let roles: Value = http
        .get(format!("{addr}/v1/auth/kubernetes/role?list=true"))
        .header("X-Vault-Token", "root")
        .send()
        .await
        .expect("list")
        .json()
        .await
        .expect("json");
    assert_eq!(roles["data"]["keys"].as_array().map(Vec::len), Some(6));
    lab.shutdown().await;
}

#[tokio::test]
async fn sealed_and_unreachable_vault() {
    let lab = start(Scenario::VaultSealed).await;
    let http = reqwest::Client::new();
    let h = http
        .get(format!("{}/v1/sys/health", lab.vault_addr()))
        .send()
        .await
        .expect("health");
    assert_eq!(h.status(), 503);
    let v: Value = h.json().await.expect("json");
    assert_eq!(v["sealed"], true);
    let h299 = http
        .get(format!("{}/v1/sys/health?sealedcode=299", lab.vault_addr()))
        .send()
        .await
        .expect("health");
    assert_eq!(h299.status().as_u16(), 299);
    lab.shutdown().await;

    let lab = start(Scenario::VaultUnreachable).await;
    assert_ne!(lab.vault_addr(), lab.base_url());
    let err = http
        .get(format!("{}/v1/sys/health", lab.vault_addr()))
        .send()
        .await
        .expect_err("nothing listens");
    assert!(err.is_connect(), "{err}");
    lab.shutdown().await;
}

#[tokio::test]
async fn rewriting_the_reviewer_fixes_the_expired_scenario() {
    let lab = start(Scenario::ReviewerJwtExpired).await;
    let http = reqwest::Client::new();
    // A fresh reviewer token from the TokenRequest API.
    let tr: Value = http
        .post(format!(
            "{}/api/v1/namespaces/vault/serviceaccounts/vault-auth/token",
            lab.kube_url()
        ))
        .bearer_auth(lab.bot_kube_token())
        .json(&json!({"spec": {"expirationSeconds": 86400}}))
        .send()
        .await
        .expect("token request")
        .json()
        .await
        .expect("json");
    let reviewer = tr["status"]["token"].as_str().expect("token");
    let mut cfg = lab.vault_auth_config().expect("config");
    let old = cfg["token_reviewer_jwt"].as_str().expect("jwt").to_string();
    assert_ne!(old, reviewer);
    cfg["token_reviewer_jwt"] = json!(reviewer);
    let obj = cfg.as_object_mut().expect("object");
    obj.remove("token_reviewer_jwt_set");
    let write = http
        .post(format!("{}/v1/auth/kubernetes/config", lab.vault_addr()))
        .header("X-Vault-Token", lab.vault_token())
        .json(&cfg)
        .send()
        .await
        .expect("write");
    assert_eq!(write.status(), 204);
    assert_eq!(
        lab.vault_auth_config().expect("config")["token_reviewer_jwt"],
        json!(reviewer)
    );
    let jwt = crate::support::canary_jwt(&lab).await;
    let (status, body) = login(&lab.vault_addr(), "vault-triage-canary", &jwt).await;
    assert_eq!(status, 200, "{body}");
    lab.shutdown().await;
}

#[tokio::test]
async fn latency_is_added_before_answers() {
    let opts = LabOptions {
        latency: Duration::from_millis(150),
        ..LabOptions::default()
    };
    let lab = Lab::start(Scenario::Healthy, opts).await.expect("lab");
    let t = std::time::Instant::now();
    let r = reqwest::get(format!("{}/v1/sys/health", lab.vault_addr()))
        .await
        .expect("health");
    assert_eq!(r.status(), 200);
    assert!(t.elapsed() >= Duration::from_millis(150));
    lab.shutdown().await;
}
