//! [`VaultClient`]: one method per Vault endpoint the bot uses, each under a timeout.

use std::collections::BTreeMap;
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::error::VaultError;
use super::monitor::MonitorStream;
use super::token_source::TokenSource;
use super::types::{LoginSuccess, TokenInfo};
use crate::config::{Secret, VaultSettings};
use crate::evidence::{AuthConfig, AuthMount, Health, Role, SecretRead};

/// A Vault client bound to one address and the bot's own token.
#[derive(Clone)]
pub struct VaultClient {
    http: reqwest::Client,
    addr: String,
    token: TokenSource,
    namespace: Option<String>,
    timeout: Duration,
}

impl std::fmt::Debug for VaultClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VaultClient")
            .field("addr", &self.addr)
            .field("namespace", &self.namespace)
            .finish_non_exhaustive()
    }
}

impl VaultClient {
    /// Builds a client; `timeout` bounds every call.
    pub fn new(settings: &VaultSettings, timeout: Duration) -> anyhow::Result<Self> {
        let mut builder = reqwest::Client::builder()
            .connect_timeout(timeout)
            .user_agent(concat!("vault-triage/", env!("CARGO_PKG_VERSION")));
        if let Some(pem) = &settings.ca_cert_pem {
            let certs = reqwest::Certificate::from_pem_bundle(pem)
                .ok()
                .filter(|c| !c.is_empty())
                .ok_or_else(|| {
                    anyhow::anyhow!(
                        "VAULT_CACERT holds no PEM certificate: point it at the PEM file of Vault's CA"
                    )
                })?;
            for cert in certs {
                builder = builder.add_root_certificate(cert);
            }
        }
        Ok(Self {
            http: builder.build()?,
            addr: settings.addr.trim_end_matches('/').to_string(),
            token: TokenSource::from_setting(&settings.token)?,
            namespace: settings.namespace.clone(),
            timeout,
        })
    }

    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// The same client (token, CA, namespace) at another node of the cluster.
    pub fn at(&self, addr: &str) -> Self {
        Self {
            addr: addr.trim_end_matches('/').to_string(),
            ..self.clone()
        }
    }

    /// `GET sys/leader`: whether this node is the active one, and where the active one is.
    pub async fn leader(&self) -> Result<Leader, VaultError> {
        let req = self.request(Method::GET, "sys/leader", false);
        let (status, body) = self.send(req).await?;
        if !status.is_success() {
            return Err(VaultError::from_response(status.as_u16(), &body));
        }
        serde_json::from_str(&body).map_err(|e| VaultError::Decode(e.to_string()))
    }

    /// The same client in another Vault namespace (a cluster whose mount lives there).
    pub fn with_namespace(&self, namespace: &str) -> Self {
        Self {
            namespace: Some(namespace.to_string()),
            ..self.clone()
        }
    }

    /// The same client with another token (e.g. a canary's client token).
    pub fn with_token(&self, token: Secret) -> Self {
        Self {
            token: TokenSource::Fixed(token),
            ..self.clone()
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}/v1/{}", self.addr, path.trim_start_matches('/'))
    }

    fn request(&self, method: Method, path: &str, with_token: bool) -> reqwest::RequestBuilder {
        let mut req = self
            .http
            .request(method, self.url(path))
            .timeout(self.timeout);
        if let (true, Some(token)) = (with_token, self.token.current()) {
            req = req.header("X-Vault-Token", token.expose());
        }
        if let Some(ns) = &self.namespace {
            req = req.header("X-Vault-Namespace", ns);
        }
        req
    }

    async fn send(&self, req: reqwest::RequestBuilder) -> Result<(StatusCode, String), VaultError> {
        let ms = self.timeout.as_millis() as u64;
        let resp = req
            .send()
            .await
            .map_err(|e| VaultError::from_transport(&e, ms))?;
        let status = resp.status();
        let body = resp
            .text()
            .await
            .map_err(|e| VaultError::from_transport(&e, ms))?;
        Ok((status, body))
    }

    /// Sends and decodes a 2xx JSON answer; any other status becomes [`VaultError::Api`].
    async fn json<T: DeserializeOwned>(
        &self,
        req: reqwest::RequestBuilder,
    ) -> Result<T, VaultError> {
        let (status, body) = self.send(req).await?;
        if !status.is_success() {
            return Err(VaultError::from_response(status.as_u16(), &body));
        }
        serde_json::from_str(&body).map_err(|e| VaultError::Decode(e.to_string()))
    }

    /// `GET sys/health` with `standbyok` and `perfstandbyok`: any documented status is an answer.
    pub async fn health(&self) -> Result<Health, VaultError> {
        let req = self.request(
            Method::GET,
            "sys/health?standbyok=true&perfstandbyok=true",
            false,
        );
        let (status, body) = self.send(req).await?;
        let code = status.as_u16();
        match serde_json::from_str::<Health>(&body) {
            Ok(mut h) => {
                h.status_code = code;
                Ok(h)
            }
            Err(_) if code == 503 => Ok(Health {
                status_code: code,
                initialized: true,
                sealed: body.contains("sealed"),
                ..Health::default_unknown()
            }),
            Err(_) => Err(VaultError::from_response(code, &body)),
        }
    }

    /// `GET sys/auth`: the enabled auth methods keyed by path (`"kubernetes/"`).
    pub async fn auth_mounts(&self) -> Result<BTreeMap<String, AuthMount>, VaultError> {
        let v: Value = self
            .json(self.request(Method::GET, "sys/auth", true))
            .await?;
        let table = v
            .get("data")
            .filter(|d| d.is_object())
            .unwrap_or(&v)
            .as_object()
            .cloned()
            .unwrap_or_default();
        let mut out = BTreeMap::new();
        for (path, entry) in table {
            if entry.get("type").is_none() {
                continue;
            }
            if let Ok(mut m) = serde_json::from_value::<AuthMount>(entry) {
                m.path = path.clone();
                out.insert(path, m);
            }
        }
        Ok(out)
    }

    /// `GET auth/<mount>/config`; `None` when nothing was ever written (404).
    pub async fn auth_config(&self, mount: &str) -> Result<Option<AuthConfig>, VaultError> {
        self.read_data(&format!("auth/{mount}/config")).await
    }

    /// `GET auth/<mount>/role/<name>`; `None` when the role does not exist (404).
    pub async fn role(&self, mount: &str, name: &str) -> Result<Option<Role>, VaultError> {
        let role: Option<Role> = self
            .read_data(&format!("auth/{mount}/role/{}", name.to_ascii_lowercase()))
            .await?;
        Ok(role.map(|mut r| {
            r.name = name.to_string();
            r
        }))
    }

    async fn read_data<T: DeserializeOwned>(&self, path: &str) -> Result<Option<T>, VaultError> {
        let (status, body) = self.send(self.request(Method::GET, path, true)).await?;
        if status == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        if !status.is_success() {
            return Err(VaultError::from_response(status.as_u16(), &body));
        }
        let v: Value =
            serde_json::from_str(&body).map_err(|e| VaultError::Decode(e.to_string()))?;
        match v.get("data") {
            Some(d) if !d.is_null() => serde_json::from_value(d.clone())
                .map(Some)
                .map_err(|e| VaultError::Decode(e.to_string())),
            _ => Ok(None),
        }
    }

    /// `POST auth/<mount>/config`: a full replacement (facts §1.1), so `config` must carry
    /// every field; `reviewer_jwt` `None` writes no reviewer token.
    pub async fn write_auth_config(
        &self,
        mount: &str,
        config: &AuthConfig,
        reviewer_jwt: Option<&Secret>,
    ) -> Result<(), VaultError> {
        let body = serde_json::json!({
            "kubernetes_host": config.kubernetes_host,
            "kubernetes_ca_cert": config.kubernetes_ca_cert,
            "pem_keys": config.pem_keys,
            "issuer": config.issuer,
            "disable_iss_validation": config.disable_iss_validation,
            "disable_local_ca_jwt": config.disable_local_ca_jwt,
            "use_annotations_as_alias_metadata": config.use_annotations_as_alias_metadata,
            "token_reviewer_jwt": reviewer_jwt.map(Secret::expose).unwrap_or(""),
        });
        let req = self
            .request(Method::POST, &format!("auth/{mount}/config"), true)
            .json(&body);
        let (status, text) = self.send(req).await?;
        if status.is_success() {
            Ok(())
        } else {
            Err(VaultError::from_response(status.as_u16(), &text))
        }
    }

    /// `POST auth/<mount>/login {role, jwt}` (no Vault token is sent).
    pub async fn login(
        &self,
        mount: &str,
        role: &str,
        jwt: &Secret,
    ) -> Result<LoginSuccess, VaultError> {
        let req = self
            .request(Method::POST, &format!("auth/{mount}/login"), false)
            .json(&serde_json::json!({ "role": role, "jwt": jwt.expose() }));
        let v: Value = self.json(req).await?;
        let auth = v
            .get("auth")
            .filter(|a| a.is_object())
            .ok_or_else(|| VaultError::Decode("login answer has no auth block".into()))?;
        let token = auth
            .get("client_token")
            .and_then(Value::as_str)
            .ok_or_else(|| VaultError::Decode("login answer has no client_token".into()))?;
        let policies = auth
            .get("policies")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|p| p.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default();
        Ok(LoginSuccess {
            client_token: Secret::new(token),
            policies,
            lease_duration: auth
                .get("lease_duration")
                .and_then(Value::as_u64)
                .unwrap_or(0),
            renewable: auth
                .get("renewable")
                .and_then(Value::as_bool)
                .unwrap_or(false),
        })
    }

    /// `GET auth/token/lookup-self` with this client's token.
    pub async fn lookup_self(&self) -> Result<TokenInfo, VaultError> {
        let v: Value = self
            .json(self.request(Method::GET, "auth/token/lookup-self", true))
            .await?;
        serde_json::from_value(v.get("data").cloned().unwrap_or(Value::Null))
            .map_err(|e| VaultError::Decode(e.to_string()))
    }

    /// `POST auth/token/renew-self` with this client's token; the new TTL in seconds.
    pub async fn renew_self(&self) -> Result<u64, VaultError> {
        let req = self
            .request(Method::POST, "auth/token/renew-self", true)
            .json(&serde_json::json!({}));
        let v: Value = self.json(req).await?;
        v.get("auth")
            .and_then(|a| a.get("lease_duration"))
            .and_then(Value::as_u64)
            .ok_or_else(|| VaultError::Decode("renewal answer has no auth.lease_duration".into()))
    }

    /// `POST auth/token/revoke-self` with this client's token.
    pub async fn revoke_self(&self) -> Result<(), VaultError> {
        let (status, body) = self
            .send(self.request(Method::POST, "auth/token/revoke-self", true))
            .await?;
        if status.is_success() {
            Ok(())
        } else {
            Err(VaultError::from_response(status.as_u16(), &body))
        }
    }

    /// Reads a secret path with this client's token; the content is dropped.
    pub async fn read_secret(&self, path: &str) -> Result<SecretRead, VaultError> {
        let (status, body) = self.send(self.request(Method::GET, path, true)).await?;
        match status.as_u16() {
            200..=299 => Ok(SecretRead::Readable),
            404 => Ok(SecretRead::NotFound),
            403 => Ok(SecretRead::Denied {
                message: VaultError::from_response(403, &body)
                    .message()
                    .unwrap_or("permission denied")
                    .to_string(),
            }),
            code => Err(VaultError::from_response(code, &body)),
        }
    }

    /// Opens `sys/monitor?log_level=debug` and keeps reading it in the background.
    pub async fn monitor_debug(&self) -> Result<MonitorStream, VaultError> {
        let req = self
            .http
            .get(self.url("sys/monitor?log_level=debug&log_format=standard"));
        let req = match self.token.current() {
            Some(t) => req.header("X-Vault-Token", t.expose()),
            None => req,
        };
        let req = match &self.namespace {
            Some(ns) => req.header("X-Vault-Namespace", ns),
            None => req,
        };
        let ms = self.timeout.as_millis() as u64;
        // Only the response head is bounded: the body is a stream that stays open.
        let resp = tokio::time::timeout(self.timeout, req.send())
            .await
            .map_err(|_| VaultError::Timeout(ms))?
            .map_err(|e| VaultError::from_transport(&e, ms))?;
        if !resp.status().is_success() {
            let code = resp.status().as_u16();
            let body = resp.text().await.unwrap_or_default();
            return Err(VaultError::from_response(code, &body));
        }
        Ok(MonitorStream::spawn(resp))
    }
}

impl Health {
    fn default_unknown() -> Self {
        Health {
            status_code: 0,
            initialized: false,
            sealed: false,
            standby: false,
            performance_standby: false,
            version: String::new(),
            cluster_name: None,
        }
    }
}

/// `sys/leader`'s answer (facts/vault-ha.md).
#[derive(Debug, Clone, Default, serde::Deserialize)]
pub struct Leader {
    #[serde(default)]
    pub ha_enabled: bool,
    #[serde(default)]
    pub is_self: bool,
    #[serde(default)]
    pub leader_address: String,
}
