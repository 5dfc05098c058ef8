//! [`KubeClient`]: the Kubernetes reads the probes make, and the TokenRequests they need.

use std::collections::BTreeMap;
use std::future::Future;
use std::path::Path;
use std::time::Duration;

use chrono::{DateTime, TimeZone as _, Utc};
use k8s_openapi::api::authentication::v1::{
    SelfSubjectReview, TokenRequest, TokenRequestSpec, TokenReview, TokenReviewSpec,
};
use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SelfSubjectAccessReview, SelfSubjectAccessReviewSpec,
};
use k8s_openapi::api::core::v1::{ConfigMap, Pod, Secret as K8sSecret, ServiceAccount};
use kube::api::{Api, ListParams, PostParams};

use super::error::KubeError;
use super::lists;
use super::operators::{self, CrdApi};
use crate::config::Secret;
use crate::evidence::{PodEvidence, ReviewResult, SecretSync, Via, Workload, WorkloadKind};

/// Read timeout of a watch connection: the watcher asks the API server to close each watch
/// after 290 s, so a quiet watch is not a dead one until well after that.
pub const WATCH_READ_TIMEOUT: Duration = Duration::from_secs(330);

/// A Kubernetes client for the bot's identity (or another bearer's).
#[derive(Clone)]
pub struct KubeClient {
    client: kube::Client,
    config: kube::Config,
    timeout: Duration,
}

/// A token minted through TokenRequest.
#[derive(Debug, Clone)]
pub struct IssuedToken {
    pub token: Secret,
    pub expires_at: Option<DateTime<Utc>>,
}

/// A token read from a Secret, with the Secret's labels.
#[derive(Debug, Clone)]
pub struct SecretToken {
    pub token: Option<Secret>,
    pub labels: BTreeMap<String, String>,
    pub secret_type: Option<String>,
}

impl std::fmt::Debug for KubeClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KubeClient")
            .field("cluster_url", &self.config.cluster_url)
            .finish_non_exhaustive()
    }
}

/// Plain HTTP needs no trust store: without a CA in the config, kube loads the system's CA
/// roots for every client it builds (milliseconds each, on every triage's path).
fn skip_trust_store_for_plain_http(config: &mut kube::Config) {
    if config.cluster_url.scheme_str() == Some("http") && config.root_cert.is_none() {
        config.root_cert = Some(Vec::new());
    }
}

impl KubeClient {
    /// From a kubeconfig file, or the in-cluster configuration when `path` is `None`.
    /// The bot's own access to Kubernetes; a fault here is a fault of the bot's set-up, said in
    /// one sentence that names `KUBECONFIG` or the in-cluster configuration and what to do.
    pub async fn from_kubeconfig(path: Option<&Path>, timeout: Duration) -> anyhow::Result<Self> {
        Self::from_kubeconfig_context(path, None, timeout).await
    }

    /// [`KubeClient::from_kubeconfig`] with the kubeconfig's context `context` (its
    /// current-context when `None`); a context needs a kubeconfig.
    pub async fn from_kubeconfig_context(
        path: Option<&Path>,
        context: Option<&str>,
        timeout: Duration,
    ) -> anyhow::Result<Self> {
        if let (None, Some(context)) = (path, context) {
            anyhow::bail!(
                "the cluster's context {context:?} needs a kubeconfig: set KUBECONFIG to the file that holds it"
            );
        }
        let options = kube::config::KubeConfigOptions {
            context: context.map(str::to_string),
            ..Default::default()
        };
        let config = match path {
            Some(path) if path.as_os_str().is_empty() => anyhow::bail!(
                "KUBECONFIG is set but empty: point it at a kubeconfig file, or unset it when the bot runs in a pod"
            ),
            Some(path) if !path.exists() => anyhow::bail!(
                "KUBECONFIG {} does not exist: point it at a kubeconfig file, or unset it when the bot runs in a pod",
                path.display()
            ),
            Some(path) => {
                let kc = kube::config::Kubeconfig::read_from(path).map_err(|e| {
                    anyhow::anyhow!(
                        "KUBECONFIG {} is not a readable kubeconfig ({}): fix the file or point KUBECONFIG at another",
                        path.display(),
                        crate::error_chain(&e)
                    )
                })?;
                kube::Config::from_custom_kubeconfig(kc, &options)
                    .await
                .map_err(|e| {
                    anyhow::anyhow!(
                        "KUBECONFIG {} cannot be used{} ({}): check its contexts, clusters and users",
                        path.display(),
                        context.map(|c| format!(" with context {c:?}")).unwrap_or_default(),
                        crate::error_chain(&e)
                    )
                })?
            }
            None if std::env::var_os("KUBERNETES_SERVICE_HOST").is_none() => anyhow::bail!(
                "no Kubernetes configuration: KUBECONFIG is not set and the bot is not running in a pod (KUBERNETES_SERVICE_HOST is unset); set KUBECONFIG to a kubeconfig file"
            ),
            None => kube::Config::incluster().map_err(|e| {
                anyhow::anyhow!(
                    "the in-cluster Kubernetes configuration cannot be used ({}): mount the pod's service account token (automountServiceAccountToken) or set KUBECONFIG",
                    crate::error_chain(&e)
                )
            })?,
        };
        Self::from_config(config, timeout)
    }

    fn from_config(mut config: kube::Config, timeout: Duration) -> anyhow::Result<Self> {
        config.connect_timeout = Some(timeout);
        config.read_timeout = Some(timeout);
        config.write_timeout = Some(timeout);
        // A probe must answer within its budget: no hidden retries.
        config.default_retry = false;
        skip_trust_store_for_plain_http(&mut config);
        let client = kube::Client::try_from(config.clone())?;
        Ok(Self {
            client,
            config,
            timeout,
        })
    }

    /// The API server URL as the bot sees it.
    pub fn cluster_url(&self) -> String {
        self.config.cluster_url.to_string()
    }

    /// The same cluster, authenticating with `token` and nothing else.
    pub fn as_bearer(&self, token: &Secret) -> anyhow::Result<Self> {
        let mut config = self.config.clone();
        config.auth_info = kube::config::AuthInfo {
            token: Some(token.expose().to_string().into()),
            ..Default::default()
        };
        Self::from_config(config, self.timeout)
    }

    pub(super) fn raw(&self) -> kube::Client {
        self.client.clone()
    }

    /// A client for watches: the same connection settings, but a read timeout longer than a
    /// watch stays open without news (the server ends each watch after
    /// [`WATCH_READ_TIMEOUT`] minus half a minute), instead of the probes' per-call timeout.
    pub(super) fn watch_client(&self) -> Result<kube::Client, KubeError> {
        let mut config = self.config.clone();
        config.read_timeout = Some(WATCH_READ_TIMEOUT);
        kube::Client::try_from(config).map_err(|e| KubeError::Client(e.to_string()))
    }

    /// The underlying client (leader election).
    pub fn raw_client(&self) -> kube::Client {
        self.client.clone()
    }

    pub(super) async fn call<T>(
        &self,
        fut: impl Future<Output = Result<T, kube::Error>>,
    ) -> Result<T, KubeError> {
        match tokio::time::timeout(self.timeout, fut).await {
            Ok(r) => r.map_err(KubeError::from_kube),
            Err(_) => Err(KubeError::Timeout(self.timeout.as_millis() as u64)),
        }
    }

    /// TokenRequest for `namespace/service_account`.
    pub async fn token_request(
        &self,
        namespace: &str,
        service_account: &str,
        audience: Option<&str>,
        expiration_seconds: i64,
    ) -> Result<IssuedToken, KubeError> {
        let api: Api<ServiceAccount> = Api::namespaced(self.client.clone(), namespace);
        let req = TokenRequest {
            spec: Some(TokenRequestSpec {
                audiences: audience.map(|a| vec![a.to_string()]),
                expiration_seconds: Some(expiration_seconds),
                ..Default::default()
            }),
            ..Default::default()
        };
        let resp = self
            .call(api.create_token_request(service_account, &PostParams::default(), &req))
            .await?;
        let status = resp
            .status
            .ok_or_else(|| KubeError::Client("TokenRequest answer has no status".into()))?;
        let token = status
            .token
            .filter(|t| !t.is_empty())
            .ok_or_else(|| KubeError::Client("TokenRequest answer has no token".into()))?;
        Ok(IssuedToken {
            token: Secret::new(token),
            expires_at: status
                .expiration_timestamp
                .and_then(|t| Utc.timestamp_opt(t.0.as_second(), 0).single()),
        })
    }

    /// TokenReview of `token`, made with this client's identity.
    pub async fn token_review(
        &self,
        token: &Secret,
        audiences: Option<Vec<String>>,
    ) -> Result<ReviewResult, KubeError> {
        let api: Api<TokenReview> = Api::all(self.client.clone());
        let review = TokenReview {
            spec: TokenReviewSpec {
                token: token.expose().to_string(),
                audiences,
            },
            ..Default::default()
        };
        let resp = self
            .call(api.create(&PostParams::default(), &review))
            .await?;
        let status = resp.status.unwrap_or_default();
        let user = status.user.unwrap_or_default();
        Ok(ReviewResult {
            authenticated: status.authenticated.unwrap_or(false),
            username: user.username,
            uid: user.uid,
            audiences: status.audiences.unwrap_or_default(),
            error: status.error.filter(|e| !e.is_empty()),
        })
    }

    /// SelfSubjectReview: who this client's bearer is (401 when it is not valid).
    pub async fn whoami(&self) -> Result<String, KubeError> {
        let api: Api<SelfSubjectReview> = Api::all(self.client.clone());
        let resp = self
            .call(api.create(&PostParams::default(), &SelfSubjectReview::default()))
            .await?;
        Ok(resp
            .status
            .and_then(|s| s.user_info)
            .and_then(|u| u.username)
            .unwrap_or_default())
    }

    /// SelfSubjectAccessReview: may this client's bearer `verb` `group/resource`?
    pub async fn can_i(&self, verb: &str, group: &str, resource: &str) -> Result<bool, KubeError> {
        let api: Api<SelfSubjectAccessReview> = Api::all(self.client.clone());
        let review = SelfSubjectAccessReview {
            spec: SelfSubjectAccessReviewSpec {
                resource_attributes: Some(ResourceAttributes {
                    verb: Some(verb.into()),
                    group: Some(group.into()),
                    resource: Some(resource.into()),
                    ..Default::default()
                }),
                ..Default::default()
            },
            ..Default::default()
        };
        let resp = self
            .call(api.create(&PostParams::default(), &review))
            .await?;
        Ok(resp.status.is_some_and(|s| s.allowed))
    }

    /// Does `namespace/name` exist? Returns its UID.
    pub async fn service_account_uid(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<Option<String>, KubeError> {
        let api: Api<ServiceAccount> = Api::namespaced(self.client.clone(), namespace);
        let sa = self.call(api.get_opt(name)).await?;
        Ok(sa.map(|s| s.metadata.uid.unwrap_or_default()))
    }

    /// The `token` key of Secret `namespace/name`, with the Secret's labels.
    pub async fn secret_token(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<Option<SecretToken>, KubeError> {
        let api: Api<K8sSecret> = Api::namespaced(self.client.clone(), namespace);
        let secret = self.call(api.get_opt(name)).await?;
        Ok(secret.map(|s| SecretToken {
            token: s
                .data
                .as_ref()
                .and_then(|d| d.get("token"))
                .map(|b| Secret::new(String::from_utf8_lossy(&b.0).trim().to_string()))
                .or_else(|| {
                    s.string_data
                        .as_ref()
                        .and_then(|d| d.get("token"))
                        .map(|t| Secret::new(t.trim()))
                }),
            labels: s.metadata.labels.unwrap_or_default(),
            secret_type: s.type_,
        }))
    }

    /// The cluster CA bundle from ConfigMap `kube-root-ca.crt` in `namespace`.
    pub async fn cluster_ca(&self, namespace: &str) -> Result<Option<String>, KubeError> {
        let api: Api<ConfigMap> = Api::namespaced(self.client.clone(), namespace);
        let cm = self.call(api.get_opt("kube-root-ca.crt")).await?;
        Ok(cm
            .and_then(|c| c.data)
            .and_then(|d| d.get("ca.crt").cloned()))
    }

    /// The workloads whose pod template logs in through `mount` with the agent injector
    /// (`annotation` or the injector's other role annotations, see [`super::injector`]):
    /// Deployments, StatefulSets, DaemonSets and CronJobs, one list call per kind. A kind
    /// that cannot be listed fails the whole look: a consumer the bot cannot see is "could
    /// not check", never "none".
    pub async fn vault_workloads(
        &self,
        annotation: &str,
        mount: &str,
    ) -> Result<Vec<Workload>, KubeError> {
        let all = ListParams::default();
        let (deployments, statefulsets, daemonsets, cronjobs, classes) = tokio::try_join!(
            self.list_pages::<lists::Workload>("/apis/apps/v1/deployments", &all, false),
            self.list_pages::<lists::Workload>("/apis/apps/v1/statefulsets", &all, false),
            self.list_pages::<lists::Workload>("/apis/apps/v1/daemonsets", &all, false),
            self.list_pages::<lists::Workload>("/apis/batch/v1/cronjobs", &all, false),
            self.list_crd(operators::CSI_SECRET_PROVIDER_CLASS),
        )?;
        let classes = operators::csi_classes(&classes.unwrap_or_default(), mount);
        let on_delete = |w: &lists::Workload| {
            w.spec
                .update_strategy
                .as_ref()
                .and_then(|u| u.type_.as_deref())
                == Some("OnDelete")
        };
        let mut found: Vec<(WorkloadKind, i32, bool, lists::Workload)> = Vec::new();
        found.extend(deployments.into_iter().map(|d| {
            (
                WorkloadKind::Deployment,
                d.spec.replicas.unwrap_or(1),
                false,
                d,
            )
        }));
        found.extend(statefulsets.into_iter().map(|s| {
            (
                WorkloadKind::StatefulSet,
                s.spec.replicas.unwrap_or(1),
                on_delete(&s),
                s,
            )
        }));
        found.extend(daemonsets.into_iter().map(|d| {
            (
                WorkloadKind::DaemonSet,
                d.status.desired_number_scheduled.unwrap_or_default(),
                on_delete(&d),
                d,
            )
        }));
        found.extend(
            cronjobs
                .into_iter()
                .map(|c| (WorkloadKind::CronJob, 0, false, c)),
        );
        let mut out: Vec<Workload> = found
            .into_iter()
            .filter_map(|(kind, replicas, on_delete, w)| {
                let template = match kind {
                    WorkloadKind::CronJob => w.spec.job_template?.spec?.template?,
                    _ => w.spec.template?,
                };
                let namespace = w.metadata.namespace;
                let injected = super::injector::role_for_mount(
                    &template.metadata.annotations,
                    annotation,
                    mount,
                );
                let (role, via) = match injected {
                    Some(role) => (role, Via::Injector),
                    None => (csi_role(&template, &namespace, &classes)?, Via::Csi),
                };
                Some(Workload {
                    namespace,
                    name: w.metadata.name,
                    kind,
                    uid: w.metadata.uid,
                    role,
                    service_account: template
                        .spec
                        .service_account_name
                        .unwrap_or_else(|| "default".into()),
                    replicas,
                    via,
                    on_delete,
                })
            })
            .collect();
        out.sort();
        Ok(out)
    }
}

impl KubeClient {
    /// Every object of the list at `path` (`/apis/apps/v1/deployments`), a page of
    /// [`LIST_PAGE`] at a time (the API server's chunking, as kubectl asks for it), each read
    /// into `T` (see [`lists`]); `metadata_only` asks for the objects' metadata alone (a
    /// `PartialObjectMetadataList`), a page of [`METADATA_LIST_PAGE`] at a time.
    async fn list_pages<T: serde::de::DeserializeOwned>(
        &self,
        path: &str,
        params: &ListParams,
        metadata_only: bool,
    ) -> Result<Vec<T>, KubeError> {
        let request = kube::core::Request::new(path);
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let page_size = if metadata_only {
                METADATA_LIST_PAGE
            } else {
                LIST_PAGE
            };
            let mut lp = params.clone().limit(page_size);
            if let Some(t) = &token {
                lp = lp.continue_token(t);
            }
            let req = if metadata_only {
                request.list_metadata(&lp)
            } else {
                request.list(&lp)
            }
            .map_err(|e| KubeError::Client(format!("list {path}: {e}")))?;
            let page: lists::Page<T> = self.call(self.client.request(req)).await?;
            out.extend(page.items);
            token = page.metadata.continue_.filter(|t| !t.is_empty());
            if token.is_none() {
                return Ok(out);
            }
        }
    }

    /// The agent injector's pods on `mount`: every pod's metadata (a metadata-only list), and
    /// the Pending pods in full (the only ones that can wait on an init container).
    pub async fn vault_pods(
        &self,
        annotation: &str,
        mount: &str,
    ) -> Result<PodEvidence, KubeError> {
        let (all, pending) = (
            ListParams::default(),
            ListParams::default().fields("status.phase=Pending"),
        );
        let (metadata, pending) = tokio::try_join!(
            self.list_pages::<lists::PartialPod>("/api/v1/pods", &all, true),
            self.list_pages::<Pod>("/api/v1/pods", &pending, false),
        )?;
        let metadata: Vec<lists::PodMeta> = metadata.into_iter().map(|p| p.metadata).collect();
        Ok(super::pods::evidence(
            &metadata, &pending, annotation, mount,
        ))
    }

    /// Every object of a custom resource, as JSON; `None` when the resource is not served
    /// (the operator is not installed: 404).
    async fn list_crd(&self, api: CrdApi) -> Result<Option<Vec<serde_json::Value>>, KubeError> {
        let path = format!("/apis/{}/{}/{}", api.group, api.version, api.plural);
        match self.list_pages(&path, &ListParams::default(), false).await {
            Ok(items) => Ok(Some(items)),
            Err(e) if e.code() == Some(404) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The External Secrets and Vault Secrets Operator objects that sync through `mount`,
    /// with their conditions. An operator that is not installed adds nothing; one whose
    /// objects the bot may not list fails the look ("could not check", never "none").
    pub async fn secret_syncs(&self, mount: &str) -> Result<Vec<SecretSync>, KubeError> {
        let (stores, cluster_stores, externals, auths) = tokio::try_join!(
            self.list_crd(operators::ESO_SECRET_STORE),
            self.list_crd(operators::ESO_CLUSTER_SECRET_STORE),
            self.list_crd(operators::ESO_EXTERNAL_SECRET),
            self.list_crd(operators::VSO_AUTH),
        )?;
        let mut out = operators::eso_syncs(
            &stores.unwrap_or_default(),
            &cluster_stores.unwrap_or_default(),
            &externals.unwrap_or_default(),
            mount,
        );
        if let Some(auths) = auths {
            let lists =
                futures::future::try_join_all(operators::VSO_SECRETS.map(|api| async move {
                    Ok::<_, KubeError>((api, self.list_crd(api).await?.unwrap_or_default()))
                }))
                .await?;
            out.extend(operators::vso_syncs(&auths, &lists, mount));
        }
        Ok(out)
    }
}

/// The role of the first CSI volume of `template` whose `SecretProviderClass` (in the
/// workload's namespace) is one of `classes` (namespace, name, role).
fn csi_role(
    template: &lists::Template,
    namespace: &str,
    classes: &[(String, String, String)],
) -> Option<String> {
    template.spec.volumes.iter().find_map(|v| {
        let csi = v.csi.as_ref()?;
        if csi.driver != "secrets-store.csi.k8s.io" {
            return None;
        }
        let class = csi.volume_attributes.as_ref()?.get("secretProviderClass")?;
        classes
            .iter()
            .find(|(ns, name, _)| ns == namespace && name == class)
            .map(|(_, _, role)| role.clone())
    })
}

/// Objects per page of a list (kubectl's default chunk size).
pub const LIST_PAGE: u32 = 500;
/// Objects per page of a metadata-only list: an object's metadata alone weighs about a tenth of
/// a whole pod (0.5–1 KB against 5–8 KB), so a page of 5,000 weighs what kubectl's page of 500
/// whole objects does, and a cluster's pods are read in few round trips.
pub const METADATA_LIST_PAGE: u32 = 5000;

#[cfg(test)]
mod tests {
    use super::*;

    fn config(url: &str) -> kube::Config {
        kube::Config::new(url.parse().unwrap())
    }

    #[test]
    fn only_a_plain_http_cluster_without_a_ca_goes_without_a_trust_store() {
        let mut http = config("http://127.0.0.1:8080");
        skip_trust_store_for_plain_http(&mut http);
        assert_eq!(http.root_cert, Some(Vec::new()));

        // HTTPS without a CA keeps kube's fallback to the system roots.
        let mut https = config("https://10.96.0.1");
        skip_trust_store_for_plain_http(&mut https);
        assert_eq!(https.root_cert, None);

        // A configured CA is never replaced.
        let mut with_ca = config("http://127.0.0.1:8080");
        with_ca.root_cert = Some(vec![vec![1, 2, 3]]);
        skip_trust_store_for_plain_http(&mut with_ca);
        assert_eq!(with_ca.root_cert, Some(vec![vec![1, 2, 3]]));
    }

    #[tokio::test]
    async fn a_client_for_plain_http_builds() {
        let client =
            KubeClient::from_config(config("http://127.0.0.1:8080"), Duration::from_secs(1));
        assert!(client.is_ok(), "{:?}", client.err());
    }
}
