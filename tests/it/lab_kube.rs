//! The lab's Kubernetes side through the kube crate's typed client: kubeconfig, Deployments,
//! TokenRequest, TokenReview as different bearers, restart PATCH and the rollout watch.

use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::authentication::v1::{
    TokenRequest, TokenRequestSpec, TokenReview, TokenReviewSpec,
};
use k8s_openapi::api::core::v1::{ConfigMap, Secret, ServiceAccount};
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};
use serde_json::json;
use vault_triage::lab::{Lab, LabOptions, Scenario};

const TIMEOUT: Duration = Duration::from_secs(10);

async fn start(s: Scenario) -> Lab {
    Lab::start(s, LabOptions::default())
        .await
        .expect("lab starts")
}

async fn bot_client(lab: &Lab) -> Client {
    let kc = Kubeconfig::from_yaml(&lab.kubeconfig_yaml()).expect("kubeconfig parses");
    let cfg = Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
        .await
        .expect("config");
    Client::try_from(cfg).expect("client")
}

fn client_as(lab: &Lab, token: &str) -> Client {
    let mut cfg = Config::new(lab.kube_url().parse().expect("url"));
    cfg.auth_info.token = Some(token.to_string().into());
    Client::try_from(cfg).expect("client")
}

fn reviewer_secret_token(secret: &Secret) -> String {
    let bytes = secret
        .data
        .as_ref()
        .and_then(|d| d.get("token"))
        .expect("token key")
        .0
        .clone();
    String::from_utf8(bytes).expect("utf8")
}

fn review(token: &str) -> TokenReview {
    TokenReview {
        spec: TokenReviewSpec {
            token: token.to_string(),
            ..Default::default()
        },
        ..Default::default()
    }
}

async fn canary_token(client: &Client) -> String {
    let sas: Api<ServiceAccount> = Api::namespaced(client.clone(), "vault-triage");
    let tr = TokenRequest {
        spec: Some(TokenRequestSpec {
            expiration_seconds: Some(600),
            ..Default::default()
        }),
        ..Default::default()
    };
    let out = sas
        .create_token_request("vault-triage-canary", &PostParams::default(), &tr)
        .await
        .expect("token request");
    out.status.and_then(|s| s.token).expect("token")
}

#[tokio::test]
async fn typed_client_lists_deployments_and_reads_objects() {
    let lab = start(Scenario::Healthy).await;
    let client = bot_client(&lab).await;
    let all: Api<Deployment> = Api::all(client.clone());
    let list = all.list(&ListParams::default()).await.expect("list");
    assert_eq!(list.items.len(), 8);
    let annotated: Vec<String> = list
        .items
        .iter()
        .filter(|d| {
            d.spec
                .template
                .metadata
                .as_ref()
                .and_then(|m| m.annotations.as_ref())
                .is_some_and(|a| a.contains_key("vault.hashicorp.com/role"))
        })
        .filter_map(|d| d.metadata.name.clone())
        .collect();
    assert_eq!(annotated.len(), 5, "{annotated:?}");
    let prod: Api<Deployment> = Api::namespaced(client.clone(), "production");
    let one = prod.get("payments-api").await.expect("get");
    assert_eq!(one.status.and_then(|s| s.available_replicas), Some(2));
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "vault");
    let ca = cms.get("kube-root-ca.crt").await.expect("configmap");
    assert!(ca.data.expect("data")["ca.crt"].contains("BEGIN CERTIFICATE"));
    let missing = prod.get("nope").await.expect_err("404");
    assert!(
        matches!(missing, kube::Error::Api(ref s) if s.code == 404),
        "{missing:?}"
    );
    lab.shutdown().await;
}

#[tokio::test]
async fn token_request_and_review() {
    let lab = start(Scenario::Healthy).await;
    let client = bot_client(&lab).await;
    let token = canary_token(&client).await;
    let reviews: Api<TokenReview> = Api::all(client.clone());
    let out = reviews
        .create(&PostParams::default(), &review(&token))
        .await
        .expect("review");
    let status = out.status.expect("status");
    assert_eq!(status.authenticated, Some(true));
    assert_eq!(
        status.user.and_then(|u| u.username).as_deref(),
        Some("system:serviceaccount:vault-triage:vault-triage-canary")
    );
    // Too short a lifetime is refused like the API server does.
    let sas: Api<ServiceAccount> = Api::namespaced(client.clone(), "vault-triage");
    let short = TokenRequest {
        spec: Some(TokenRequestSpec {
            expiration_seconds: Some(60),
            ..Default::default()
        }),
        ..Default::default()
    };
    let err = sas
        .create_token_request("vault-triage-canary", &PostParams::default(), &short)
        .await
        .expect_err("422");
    assert!(
        matches!(err, kube::Error::Api(ref s) if s.code == 422 && s.message.contains("may not specify a duration less than 10 minutes")),
        "{err:?}"
    );
    let unknown = sas
        .create_token_request("ghost", &PostParams::default(), &TokenRequest::default())
        .await
        .expect_err("404");
    assert!(
        matches!(unknown, kube::Error::Api(ref s) if s.code == 404),
        "{unknown:?}"
    );
    lab.shutdown().await;
}

#[tokio::test]
async fn expired_reviewer_gets_401_and_rbac_missing_gets_403() {
    let lab = start(Scenario::ReviewerJwtExpired).await;
    let client = bot_client(&lab).await;
    let secrets: Api<Secret> = Api::namespaced(client.clone(), "vault");
    let reviewer = reviewer_secret_token(&secrets.get("vault-auth-token").await.expect("secret"));
    let canary = canary_token(&client).await;
    let as_reviewer: Api<TokenReview> = Api::all(client_as(&lab, &reviewer));
    let err = as_reviewer
        .create(&PostParams::default(), &review(&canary))
        .await
        .expect_err("401");
    assert!(
        matches!(err, kube::Error::Api(ref s) if s.code == 401 && s.message == "Unauthorized"),
        "{err:?}"
    );
    assert!(lab.kube_requests().iter().any(
        |r| r.identity == "invalid" && r.path == "/apis/authentication.k8s.io/v1/tokenreviews"
    ));
    lab.shutdown().await;

    let lab = start(Scenario::ReviewerRbacMissing).await;
    let client = bot_client(&lab).await;
    let secrets: Api<Secret> = Api::namespaced(client.clone(), "vault");
    let reviewer = reviewer_secret_token(&secrets.get("vault-auth-token").await.expect("secret"));
    let canary = canary_token(&client).await;
    let as_reviewer: Api<TokenReview> = Api::all(client_as(&lab, &reviewer));
    let err = as_reviewer
        .create(&PostParams::default(), &review(&canary))
        .await
        .expect_err("403");
    assert!(
        matches!(err, kube::Error::Api(ref s) if s.code == 403 && s.message == "tokenreviews.authentication.k8s.io is forbidden: User \"system:serviceaccount:vault:vault-auth\" cannot create resource \"tokenreviews\" in API group \"authentication.k8s.io\" at the cluster scope"),
        "{err:?}"
    );
    // SelfSubjectAccessReview as the reviewer says no.
    let ssar = reqwest::Client::new()
        .post(format!("{}/apis/authorization.k8s.io/v1/selfsubjectaccessreviews", lab.kube_url()))
        .bearer_auth(&reviewer)
        .json(&json!({"spec": {"resourceAttributes": {"group": "authentication.k8s.io", "resource": "tokenreviews", "verb": "create"}}}))
        .send()
        .await
        .expect("ssar");
    assert_eq!(ssar.status(), 201);
    let v: serde_json::Value = ssar.json().await.expect("json");
    assert_eq!(v["status"]["allowed"], false);
    lab.shutdown().await;
}

#[tokio::test]
async fn legacy_reviewer_and_invalidated_canary() {
    let lab = start(Scenario::ReviewerJwtRejected).await;
    let client = bot_client(&lab).await;
    let secrets: Api<Secret> = Api::namespaced(client.clone(), "vault");
    let s = secrets.get("vault-auth-token").await.expect("secret");
    assert!(
        s.metadata
            .labels
            .as_ref()
            .is_some_and(|l| l.contains_key("kubernetes.io/legacy-token-invalid-since"))
    );
    let reviewer = reviewer_secret_token(&s);
    let ssr = reqwest::Client::new()
        .post(format!(
            "{}/apis/authentication.k8s.io/v1/selfsubjectreviews",
            lab.kube_url()
        ))
        .bearer_auth(&reviewer)
        .json(&json!({}))
        .send()
        .await
        .expect("ssr");
    assert_eq!(ssr.status(), 401);
    lab.shutdown().await;

    let lab = start(Scenario::ClientJwtRejected).await;
    let client = bot_client(&lab).await;
    let canary = canary_token(&client).await;
    let reviews: Api<TokenReview> = Api::all(client.clone());
    let out = reviews
        .create(&PostParams::default(), &review(&canary))
        .await
        .expect("review");
    let status = out.status.expect("status");
    assert_ne!(status.authenticated, Some(true));
    assert_eq!(
        status.error.as_deref(),
        Some("[invalid bearer token, service account token has been invalidated]")
    );
    lab.shutdown().await;
}

async fn restart(client: &Client, name: &str) {
    let api: Api<Deployment> = Api::namespaced(client.clone(), "production");
    let patch = json!({"spec": {"template": {"metadata": {"annotations": {
        "kubectl.kubernetes.io/restartedAt": chrono::Utc::now().to_rfc3339()}}}}});
    let pp = PatchParams {
        field_manager: Some("kubectl-rollout".into()),
        ..Default::default()
    };
    api.patch(name, &pp, &Patch::Strategic(patch))
        .await
        .expect("patch");
}

fn rolled_out(d: &Deployment) -> bool {
    let generation = d.metadata.generation.unwrap_or(0);
    let Some(s) = &d.status else { return false };
    let want = d.spec.replicas.unwrap_or(1);
    s.observed_generation.unwrap_or(0) >= generation
        && s.updated_replicas.unwrap_or(0) >= want
        && s.replicas.unwrap_or(0) <= s.updated_replicas.unwrap_or(0)
        && s.available_replicas.unwrap_or(0) >= s.updated_replicas.unwrap_or(0)
}

fn deadline_exceeded(d: &Deployment) -> bool {
    d.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| {
            cs.iter()
                .any(|c| c.reason.as_deref() == Some("ProgressDeadlineExceeded"))
        })
}

#[tokio::test]
async fn restart_patch_rolls_out_and_is_watchable() {
    let lab = start(Scenario::Healthy).await;
    let client = bot_client(&lab).await;
    let api: Api<Deployment> = Api::namespaced(client.clone(), "production");
    let stream = kube::runtime::watcher::watch_object(api.clone(), "payments-api");
    let mut stream = Box::pin(stream);
    // The initial object is already rolled out.
    let first = tokio::time::timeout(TIMEOUT, stream.next())
        .await
        .expect("first event");
    assert!(
        first
            .and_then(|r| r.ok())
            .flatten()
            .is_some_and(|d| rolled_out(&d))
    );
    restart(&client, "payments-api").await;
    let mut seen = Vec::new();
    let done = tokio::time::timeout(TIMEOUT, async {
        while let Some(ev) = stream.next().await {
            let Ok(Some(d)) = ev else { continue };
            seen.push((
                d.metadata.generation,
                d.status.as_ref().and_then(|s| s.observed_generation),
                d.status.as_ref().and_then(|s| s.updated_replicas),
                d.status.as_ref().and_then(|s| s.replicas),
            ));
            if d.metadata.generation == Some(2) && rolled_out(&d) {
                return d;
            }
        }
        panic!("watch ended");
    })
    .await
    .expect("rollout completes");
    assert!(
        seen.iter()
            .any(|(g, o, _, _)| *g == Some(2) && *o == Some(1)),
        "spec update not observed first: {seen:?}"
    );
    assert!(seen.iter().any(|(_, _, u, _)| *u == Some(1)), "{seen:?}");
    assert_eq!(
        done.spec
            .template
            .metadata
            .and_then(|m| m.annotations)
            .map(|a| a.contains_key("kubectl.kubernetes.io/restartedAt")),
        Some(true)
    );
    let rec = lab
        .kube_requests()
        .into_iter()
        .find(|r| r.method == "PATCH")
        .expect("patch recorded");
    assert_eq!(
        rec.content_type.as_deref(),
        Some("application/strategic-merge-patch+json")
    );
    assert!(
        rec.query
            .unwrap_or_default()
            .contains("fieldManager=kubectl-rollout")
    );
    assert_eq!(
        rec.identity,
        "system:serviceaccount:vault-triage:vault-triage"
    );
    assert_eq!(
        lab.deployment("production", "payments-api")
            .expect("deployment")["metadata"]["generation"],
        2
    );
    lab.shutdown().await;
}

#[tokio::test]
async fn failed_rollout_exceeds_its_deadline() {
    let lab = start(Scenario::Healthy).await;
    lab.fail_rollout("production", "orders-api");
    let client = bot_client(&lab).await;
    restart(&client, "orders-api").await;
    let api: Api<Deployment> = Api::namespaced(client.clone(), "production");
    let cond = kube::runtime::wait::await_condition(api, "orders-api", |d: Option<&Deployment>| {
        d.is_some_and(deadline_exceeded)
    });
    let d = tokio::time::timeout(TIMEOUT, cond)
        .await
        .expect("in time")
        .expect("watch ok")
        .expect("exists");
    assert!(!rolled_out(&d));
    // JSON patch is not accepted.
    let resp = reqwest::Client::new()
        .patch(format!(
            "{}/apis/apps/v1/namespaces/production/deployments/orders-api",
            lab.kube_url()
        ))
        .bearer_auth(lab.bot_kube_token())
        .header("Content-Type", "application/json")
        .body("{}")
        .send()
        .await
        .expect("patch");
    assert_eq!(resp.status(), 415);
    lab.shutdown().await;
}

#[tokio::test]
async fn files_and_exports() {
    let lab = start(Scenario::ReviewerJwtExpired).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let files = lab.write_files(dir.path()).expect("files");
    assert!(files.state_dir.is_dir());
    let cfg: toml::Value =
        toml::from_str(&std::fs::read_to_string(&files.config).expect("read")).expect("toml");
    assert_eq!(cfg["reviewer"]["namespace"].as_str(), Some("vault"));
    assert_eq!(cfg["state"]["dir"].as_str(), files.state_dir.to_str());
    let kc = Kubeconfig::read_from(&files.kubeconfig).expect("kubeconfig file");
    assert_eq!(kc.current_context.as_deref(), Some("vault-triage-lab"));
    let exports = lab.exports(&files);
    let names: Vec<&str> = exports.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        names,
        [
            "VAULT_ADDR",
            "VAULT_TOKEN",
            "KUBECONFIG",
            "VAULT_TRIAGE_CONFIG"
        ]
    );
    assert_eq!(exports[1].1, "root");
    lab.shutdown().await;
}

/// kubectl with the lab's kubeconfig, its cache in a scratch home.
fn kubectl(files: &vault_triage::lab::LabFiles, args: &[&str]) -> std::process::Output {
    std::process::Command::new("kubectl")
        .args(args)
        .env("KUBECONFIG", &files.kubeconfig)
        .env("HOME", &files.dir)
        .output()
        .expect("kubectl is installed (tests/run installs it)")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_lists_the_labs_deployments_and_follows_a_rollout() {
    let lab = start(Scenario::ReviewerJwtExpired).await;
    let (_dir, files) = crate::support::lab_files(&lab);

    let list = tokio::task::block_in_place(|| kubectl(&files, &["get", "deployments", "-A"]));
    let text = String::from_utf8_lossy(&list.stdout);
    assert!(
        list.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&list.stderr)
    );
    let client = bot_client(&lab).await;
    let api: Api<Deployment> = Api::all(client.clone());
    for d in api.list(&ListParams::default()).await.unwrap() {
        let (ns, name) = (d.metadata.namespace.unwrap(), d.metadata.name.unwrap());
        assert!(
            text.lines().any(|l| l
                .split_whitespace()
                .take(2)
                .eq([ns.as_str(), name.as_str()])),
            "{ns}/{name} missing from kubectl's list:\n{text}"
        );
    }

    // A restart made the way the bot makes it, followed by `kubectl rollout status`.
    restart(&client, "billing-worker").await;
    let status = tokio::task::block_in_place(|| {
        kubectl(
            &files,
            &[
                "rollout",
                "status",
                "deployment/billing-worker",
                "-n",
                "production",
                "--timeout=30s",
            ],
        )
    });
    let text = String::from_utf8_lossy(&status.stdout);
    assert!(
        status.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&status.stderr)
    );
    assert!(
        text.contains("deployment \"billing-worker\" successfully rolled out"),
        "{text}"
    );
    lab.shutdown().await;
}
