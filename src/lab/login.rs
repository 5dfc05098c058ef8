//! `auth/<mount>/login` of the simulated kubernetes auth method: the plugin's ordered checks,
//! then a real TokenReview over HTTP to `kubernetes_host`, with the plugin's error mapping and
//! DEBUG log line.

use std::sync::Arc;
use std::time::Duration;

use axum::http::StatusCode;
use axum::response::Response;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{Value, json};

use super::Shared;
use super::monitor::Level;
use super::setup::CLUSTER_CA_PEM;
use super::tokens::decode_claims;
use super::vault_state::{DEFAULT_TTL, Role, StoredConfig, VaultToken, str_field};
use super::wire::{auth_response, vault_error};

/// Time-claim leeway (go-jose `DefaultLeeway`).
const LEEWAY: i64 = 60;

const UNAUTHORIZED_401: &str = "lookup failed: service account unauthorized; this could mean it has been deleted or recreated with a new token";

fn glob_match(pattern: &str, value: &str) -> bool {
    if pattern == "*" {
        return true;
    }
    match pattern.split_once('*') {
        None => pattern == value,
        Some((pre, post)) => {
            value.len() >= pre.len() + post.len() && value.starts_with(pre) && value.ends_with(post)
        }
    }
}

fn claim_str(claims: &Value, nested: &[&str], legacy: &str) -> Option<String> {
    let mut v = &claims["kubernetes.io"];
    for k in nested {
        v = &v[*k];
    }
    v.as_str()
        .or_else(|| claims[legacy].as_str())
        .map(str::to_string)
}

fn audiences(claims: &Value) -> Vec<String> {
    match &claims["aud"] {
        Value::String(s) => vec![s.clone()],
        Value::Array(a) => a
            .iter()
            .filter_map(|v| v.as_str().map(str::to_string))
            .collect(),
        _ => Vec::new(),
    }
}

enum Outcome {
    /// A client-visible error decided locally (status, message).
    Local(StatusCode, String),
    /// 403 `permission denied` with the DEBUG reason.
    Denied(String),
}

struct Checked {
    role: Role,
    config: StoredConfig,
    accessor: String,
    claims: Value,
    name: String,
    namespace: String,
    uid: String,
}

/// Everything up to (not including) the TokenReview call.
fn local_checks(shared: &Shared, mount: &str, data: &Value) -> Result<Checked, Outcome> {
    let role_name = str_field(data, "role");
    if role_name.is_empty() {
        return Err(Outcome::Local(
            StatusCode::BAD_REQUEST,
            "missing role".into(),
        ));
    }
    let jwt = str_field(data, "jwt");
    if jwt.is_empty() {
        return Err(Outcome::Local(
            StatusCode::BAD_REQUEST,
            "missing jwt".into(),
        ));
    }
    let (role, config, accessor) = {
        let vault = shared.vault();
        let Some(m) = vault.auth.get(mount) else {
            return Err(Outcome::Local(
                StatusCode::FORBIDDEN,
                "permission denied".into(),
            ));
        };
        let Some(role) = m.roles.get(&role_name.to_lowercase()).cloned() else {
            return Err(Outcome::Local(
                StatusCode::BAD_REQUEST,
                format!("invalid role name {role_name:?}"),
            ));
        };
        let Some(config) = m.config.clone() else {
            return Err(Outcome::Local(
                StatusCode::INTERNAL_SERVER_ERROR,
                "could not load backend configuration".into(),
            ));
        };
        (role, config, m.accessor.clone())
    };
    let sig_err = |m: &str| Outcome::Denied(format!("error verifying token signature: {m}"));
    if jwt.split('.').count() != 3 {
        return Err(sig_err(
            "go-jose/go-jose: compact JWS format must have three parts",
        ));
    }
    let Some((header, claims)) = decode_claims(&jwt) else {
        return Err(sig_err("go-jose/go-jose: illegal base64 data"));
    };
    let alg = header["alg"].as_str().unwrap_or("");
    const ALGS: [&str; 9] = [
        "RS256", "RS384", "RS512", "ES256", "ES384", "ES512", "PS256", "PS384", "PS512",
    ];
    if !ALGS.contains(&alg) {
        return Err(sig_err(&format!("unsupported signing algorithm \"{alg}\"")));
    }
    if !config.pem_keys.is_empty() {
        let verified = config.pem_keys.iter().any(|pem| verify(&jwt, alg, pem));
        if !verified {
            return Err(sig_err("failed to verify id token signature"));
        }
    }
    let forbidden = |m: &str| Outcome::Local(StatusCode::FORBIDDEN, m.to_string());
    if !config.disable_iss_validation
        && !config.issuer.is_empty()
        && claims["iss"].as_str() != Some(config.issuer.as_str())
    {
        return Err(forbidden("invalid issuer (iss) claim"));
    }
    if let Some(aud) = &role.audience
        && !audiences(&claims).contains(aud)
    {
        return Err(forbidden(
            "invalid audience (aud) claim: audience claim does not match any expected audience",
        ));
    }
    let now = chrono::Utc::now().timestamp();
    let (nbf, exp, iat) = (
        claims["nbf"].as_i64(),
        claims["exp"].as_i64(),
        claims["iat"].as_i64(),
    );
    if nbf.is_some_and(|n| now + LEEWAY < n) {
        return Err(forbidden(
            "invalid not before (nbf) claim: token not yet valid",
        ));
    }
    if exp.is_some_and(|e| now - LEEWAY > e) {
        return Err(forbidden(
            "invalid expiration time (exp) claim: token is expired",
        ));
    }
    if iat.is_some_and(|i| now + LEEWAY < i) {
        return Err(forbidden(
            "invalid issued at (iat) claim: token issued in the future",
        ));
    }
    let name = claim_str(
        &claims,
        &["serviceaccount", "name"],
        "kubernetes.io/serviceaccount/service-account.name",
    )
    .unwrap_or_default();
    if !role.names.iter().any(|p| glob_match(p, &name)) {
        return Err(forbidden("service account name not authorized"));
    }
    let namespace = claim_str(
        &claims,
        &["namespace"],
        "kubernetes.io/serviceaccount/namespace",
    )
    .unwrap_or_default();
    if !role.namespaces.iter().any(|p| glob_match(p, &namespace)) {
        return Err(forbidden("namespace not authorized"));
    }
    let Some(uid) = claim_str(
        &claims,
        &["serviceaccount", "uid"],
        "kubernetes.io/serviceaccount/service-account.uid",
    ) else {
        return Err(Outcome::Local(
            StatusCode::INTERNAL_SERVER_ERROR,
            "could not parse UID from claims".into(),
        ));
    };
    let mut claims = claims;
    claims["__jwt"] = json!(jwt);
    Ok(Checked {
        role,
        config,
        accessor,
        claims,
        name,
        namespace,
        uid,
    })
}

fn verify(jwt: &str, alg: &str, pem: &str) -> bool {
    let Ok(alg) = alg.parse::<Algorithm>() else {
        return false;
    };
    let key = match alg {
        Algorithm::ES256 | Algorithm::ES384 => DecodingKey::from_ec_pem(pem.as_bytes()),
        _ => DecodingKey::from_rsa_pem(pem.as_bytes()),
    };
    let Ok(key) = key else { return false };
    let mut v = Validation::new(alg);
    v.required_spec_claims.clear();
    v.validate_exp = false;
    v.validate_aud = false;
    jsonwebtoken::decode::<Value>(jwt, &key, &v).is_ok()
}

fn same_pem(a: &str, b: &str) -> bool {
    let norm = |s: &str| s.split_whitespace().collect::<String>();
    norm(a) == norm(b)
}

/// The TokenReview call of the plugin; `Err` carries the DEBUG `err` text.
async fn review(shared: &Shared, c: &Checked) -> Result<(), String> {
    let jwt = c.claims["__jwt"].as_str().unwrap_or_default().to_string();
    let url = format!(
        "{}/apis/authentication.k8s.io/v1/tokenreviews",
        c.config.host.trim_end_matches('/')
    );
    let parsed = url::Url::parse(&url).map_err(|e| format!("parse {url:?}: {e}"))?;
    let hostport = format!(
        "{}:{}",
        parsed.host_str().unwrap_or_default(),
        parsed.port_or_known_default().unwrap_or(443)
    );
    if !same_pem(&c.config.ca_cert, CLUSTER_CA_PEM) {
        // The lab's API server certificate is signed by the cluster CA only.
        return match tokio::time::timeout(
            Duration::from_secs(10),
            tokio::net::TcpStream::connect(&hostport),
        )
        .await
        {
            Ok(Ok(_)) => Err(format!(
                "Post {url:?}: tls: failed to verify certificate: x509: certificate signed by unknown authority"
            )),
            Ok(Err(_)) => Err(format!(
                "Post {url:?}: dial tcp {hostport}: connect: connection refused"
            )),
            Err(_) => Err(format!("Post {url:?}: dial tcp {hostport}: i/o timeout")),
        };
    }
    let bearer = if c.config.token_reviewer_jwt.is_empty() {
        jwt.clone()
    } else {
        c.config.token_reviewer_jwt.clone()
    };
    let wanted: Vec<String> = match &c.role.audience {
        Some(a) => vec![a.clone()],
        None => audiences(&c.claims),
    };
    let mut spec = json!({"token": jwt});
    if !wanted.is_empty() {
        spec["audiences"] = json!(wanted);
    }
    let body =
        json!({"metadata": {"creationTimestamp": null}, "spec": spec, "status": {"user": {}}});
    let resp = shared
        .http
        .post(&url)
        .bearer_auth(&bearer)
        .header("Accept", "application/json")
        .json(&body)
        .send()
        .await
        .map_err(|e| {
            if e.is_connect() {
                format!("Post {url:?}: dial tcp {hostport}: connect: connection refused")
            } else if e.is_timeout() {
                format!("Post {url:?}: dial tcp {hostport}: i/o timeout")
            } else {
                format!("Post {url:?}: {e}")
            }
        })?;
    let code = resp.status().as_u16();
    let text = resp.text().await.map_err(|e| e.to_string())?;
    if code == 401 {
        return Err(UNAUTHORIZED_401.into());
    }
    if !(200..=206).contains(&code) {
        let trimmed = text.trim().to_string();
        return Err(match code {
            403 | 409 | 422 => trimmed,
            404 => "the server could not find the requested resource".into(),
            500..=599 => format!(
                "an error on the server ({trimmed:?}) has prevented the request from succeeding"
            ),
            c => format!(
                "the server responded with the status code {c} but did not return more information"
            ),
        });
    }
    let tr: Value = serde_json::from_str(&text).map_err(|e| e.to_string())?;
    if let Some(st) = tr["status"].as_str()
        && st != "Success"
    {
        return Err(tr["message"].as_str().unwrap_or_default().to_string());
    }
    let status = &tr["status"];
    if let Some(e) = status["error"].as_str().filter(|e| !e.is_empty()) {
        return Err(format!("lookup failed: {e}"));
    }
    if status["authenticated"] != json!(true) {
        return Err("lookup failed: service account jwt not valid".into());
    }
    if !wanted.is_empty() {
        let got: Vec<String> = audiences(&json!({"aud": status["audiences"].clone()}));
        if !wanted.iter().any(|w| got.contains(w)) {
            return Err(format!(
                "lookup failed: service account jwt valid for audience(s) [{}], but wanted [{}]",
                got.join(" "),
                wanted.join(" ")
            ));
        }
    }
    let username = status["user"]["username"].as_str().unwrap_or_default();
    let parts: Vec<&str> = username.split(':').collect();
    if parts.len() != 4 {
        return Err("lookup failed: unexpected username format".into());
    }
    if parts[0] != "system" || parts[1] != "serviceaccount" {
        return Err("lookup failed: username returned is not a service account".into());
    }
    if parts[3] != c.name {
        return Err("JWT names did not match".into());
    }
    if status["user"]["uid"].as_str() != Some(c.uid.as_str()) {
        return Err("JWT UIDs did not match".into());
    }
    if parts[2] != c.namespace {
        return Err("JWT namepaces did not match".into());
    }
    Ok(())
}

/// Runs the whole login.
pub(crate) async fn login(shared: &Arc<Shared>, mount: &str, data: &Value) -> Response {
    let checked = match local_checks(shared, mount, data) {
        Ok(c) => c,
        Err(Outcome::Local(status, msg)) => return vault_error(status, &[&msg]),
        Err(Outcome::Denied(reason)) => {
            let accessor = shared
                .vault()
                .auth
                .get(mount)
                .map(|m| m.accessor.clone())
                .unwrap_or_default();
            return deny(shared, &accessor, &reason).await;
        }
    };
    if let Err(reason) = review(shared, &checked).await {
        return deny(shared, &checked.accessor, &reason).await;
    }
    let mut policies: Vec<String> = checked.role.token_policies.clone();
    policies.push("default".into());
    policies.sort();
    policies.dedup();
    let ttl = if checked.role.token_ttl > 0 {
        checked.role.token_ttl
    } else {
        DEFAULT_TTL
    };
    let meta = json!({
        "role": str_field(data, "role"),
        "service_account_name": checked.name,
        "service_account_namespace": checked.namespace,
        "service_account_secret_name": claim_str(&checked.claims, &["secret", "name"], "kubernetes.io/serviceaccount/secret.name").unwrap_or_default(),
        "service_account_uid": checked.uid,
    });
    let token = VaultToken::new(
        policies,
        &format!("{mount}-{}-{}", checked.namespace, checked.name),
        &format!("auth/{mount}/login"),
        Some(meta),
        ttl,
    );
    shared
        .vault()
        .tokens
        .insert(token.id.clone(), token.clone());
    shared.login_succeeded(mount);
    auth_response(&token, true)
}

async fn deny(shared: &Shared, accessor: &str, reason: &str) -> Response {
    shared
        .monitor
        .emit(
            Level::Debug,
            &format!("auth.kubernetes.{accessor}"),
            "login unauthorized",
            &[("err", reason)],
        )
        .await;
    vault_error(StatusCode::FORBIDDEN, &["permission denied"])
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    #[test]
    fn globs_match_like_strutil() {
        assert!(glob_match("*", "x"));
        assert!(glob_match("app-*", "app-1"));
        assert!(!glob_match("app-*", "ap"));
        assert!(glob_match("a", "a"));
        assert!(!glob_match("a", "b"));
        assert!(same_pem("A\nB\n", "A\r\nB"));
    }

    /// A token of `ns/name` issued by `lab`'s API server.
    fn sa_token(lab: &crate::lab::Lab, ns: &str, name: &str) -> String {
        let uid = lab
            .shared
            .world()
            .sa_uid(ns, name)
            .expect("a ServiceAccount");
        let aud = vec![crate::lab::API_AUDIENCE.to_string()];
        let now = chrono::Utc::now().timestamp();
        lab.shared
            .tokens
            .issue(ns, name, &uid, aud, now, 3600)
            .expect("token")
    }

    /// POSTs a canary login at `vault`'s `auth/<mount>/login` with `jwt`; the status.
    pub(crate) async fn canary_login(vault: &crate::lab::Lab, mount: &str, jwt: &str) -> u16 {
        reqwest::Client::new()
            .post(format!("{}/v1/auth/{mount}/login", vault.vault_addr()))
            .json(&json!({"role": crate::lab::setup::CANARY_ROLE, "jwt": jwt}))
            .send()
            .await
            .expect("login")
            .status()
            .as_u16()
    }

    /// Gives `vault`'s `mount` a fresh reviewer JWT of `cluster` (the reviewer-jwt-expired fix).
    pub(crate) fn renew_reviewer(vault: &crate::lab::Lab, mount: &str, cluster: &crate::lab::Lab) {
        use crate::lab::setup::{REVIEWER_NAMESPACE, REVIEWER_SA};
        let jwt = sa_token(cluster, REVIEWER_NAMESPACE, REVIEWER_SA);
        let mut v = vault.shared.vault();
        let config = v
            .auth
            .get_mut(mount)
            .and_then(|m| m.config.as_mut())
            .expect("a configured mount");
        config.token_reviewer_jwt = jwt;
    }

    pub(crate) fn canary_token(cluster: &crate::lab::Lab) -> String {
        use crate::lab::setup::{CANARY_NAMESPACE, CANARY_SA};
        sa_token(cluster, CANARY_NAMESPACE, CANARY_SA)
    }

    pub(crate) fn pending_pods(lab: &crate::lab::Lab) -> usize {
        lab.pods("")
            .iter()
            .filter(|p| p["status"]["phase"] == "Pending")
            .count()
    }

    #[tokio::test]
    async fn a_successful_login_heals_the_world_a_failed_one_changes_nothing() {
        use crate::lab::{Lab, LabOptions, Scenario};
        let lab = Lab::start(
            Scenario::ReviewerJwtExpired,
            LabOptions {
                bulk_workloads: 6,
                bulk_external_secrets: 3,
                bulk_pods: 6,
                ..LabOptions::default()
            },
        )
        .await
        .expect("lab");
        let es_ready = |ns: &str, name: &str| {
            lab.operator_object("externalsecrets", ns, name)
                .expect("es")["status"]["conditions"][0]["status"]
                .clone()
        };
        let canary = canary_token(&lab);
        let before = lab.pods("");
        assert_eq!(canary_login(&lab, "kubernetes", &canary).await, 403);
        assert_eq!(lab.pods(""), before, "a failed login changes nothing");
        assert_eq!(pending_pods(&lab), 3);
        assert_eq!(es_ready("production", "payments-db"), "False");

        renew_reviewer(&lab, "kubernetes", &lab);
        assert_eq!(canary_login(&lab, "kubernetes", &canary).await, 200);
        assert_eq!(pending_pods(&lab), 0);
        assert_eq!(es_ready("production", "payments-db"), "True");
        assert_eq!(
            es_ready("bulk", "secret-00002"),
            "True",
            "bulk objects kept"
        );
        assert_eq!(lab.pods("bulk").len(), 6);
        assert_eq!(lab.pods("").len(), before.len());
        lab.shutdown().await;
    }
}
