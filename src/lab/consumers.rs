//! The operators' custom resources that consume Vault (facts/vault-consumers.md §2–4), as the
//! lab's Kubernetes serves them: an External Secrets `ClusterSecretStore` and the
//! `ExternalSecret` that uses it, a Vault Secrets Operator `VaultConnection`, `VaultAuth` and
//! `VaultStaticSecret`, and a CSI `SecretProviderClass` (mounted by the Deployment
//! `production/reports-web`, see [`super::world`]). They log in through the lab's triaged
//! mount, and their statuses are the ones the operators write when that mount's logins work, or
//! fail for every role ([`LoginFailure`]).

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::Scenario;

/// Vault as the operators in the cluster reach it (the lab's `vault` namespace).
pub(crate) const IN_CLUSTER_VAULT: &str = "http://vault.vault:8200";
/// The roles (and, in `production`, their ServiceAccounts) the operators log in with.
pub(crate) const ESO_ROLE: &str = "ledger-sync";
pub(crate) const VSO_ROLE: &str = "orders-api";
pub(crate) const CSI_ROLE: &str = "billing-worker";
/// The CSI class and the Deployment that mounts it.
pub(crate) const CSI_CLASS: &str = "reports-vault";
pub(crate) const CSI_DEPLOYMENT: &str = "reports-web";

/// A custom resource kind the lab serves.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum Crd {
    SecretStore,
    ClusterSecretStore,
    ExternalSecret,
    VaultConnection,
    VaultAuth,
    VaultStaticSecret,
    VaultDynamicSecret,
    VaultPkiSecret,
    SecretProviderClass,
}

impl Crd {
    pub const ALL: [Crd; 9] = [
        Crd::SecretStore,
        Crd::ClusterSecretStore,
        Crd::ExternalSecret,
        Crd::VaultConnection,
        Crd::VaultAuth,
        Crd::VaultStaticSecret,
        Crd::VaultDynamicSecret,
        Crd::VaultPkiSecret,
        Crd::SecretProviderClass,
    ];

    /// The kind served for `resource` (plural) in `group`/`version`.
    pub fn from_resource(group: &str, version: &str, resource: &str) -> Option<Crd> {
        Crd::ALL
            .into_iter()
            .find(|c| c.group() == group && c.version() == version && c.resource() == resource)
    }

    pub fn group(self) -> &'static str {
        match self {
            Crd::SecretStore | Crd::ClusterSecretStore | Crd::ExternalSecret => {
                "external-secrets.io"
            }
            Crd::VaultConnection
            | Crd::VaultAuth
            | Crd::VaultStaticSecret
            | Crd::VaultDynamicSecret
            | Crd::VaultPkiSecret => "secrets.hashicorp.com",
            Crd::SecretProviderClass => "secrets-store.csi.x-k8s.io",
        }
    }

    pub fn version(self) -> &'static str {
        match self.group() {
            "secrets.hashicorp.com" => "v1beta1",
            _ => "v1",
        }
    }

    pub fn api_version(self) -> String {
        format!("{}/{}", self.group(), self.version())
    }

    pub fn kind(self) -> &'static str {
        match self {
            Crd::SecretStore => "SecretStore",
            Crd::ClusterSecretStore => "ClusterSecretStore",
            Crd::ExternalSecret => "ExternalSecret",
            Crd::VaultConnection => "VaultConnection",
            Crd::VaultAuth => "VaultAuth",
            Crd::VaultStaticSecret => "VaultStaticSecret",
            Crd::VaultDynamicSecret => "VaultDynamicSecret",
            Crd::VaultPkiSecret => "VaultPKISecret",
            Crd::SecretProviderClass => "SecretProviderClass",
        }
    }

    /// The plural resource name.
    pub fn resource(self) -> &'static str {
        match self {
            Crd::SecretStore => "secretstores",
            Crd::ClusterSecretStore => "clustersecretstores",
            Crd::ExternalSecret => "externalsecrets",
            Crd::VaultConnection => "vaultconnections",
            Crd::VaultAuth => "vaultauths",
            Crd::VaultStaticSecret => "vaultstaticsecrets",
            Crd::VaultDynamicSecret => "vaultdynamicsecrets",
            Crd::VaultPkiSecret => "vaultpkisecrets",
            Crd::SecretProviderClass => "secretproviderclasses",
        }
    }

    pub fn namespaced(self) -> bool {
        self != Crd::ClusterSecretStore
    }

    /// Whether the lab takes a PATCH of it (metadata, spec): what a force-sync annotates.
    pub fn patchable(self) -> bool {
        matches!(
            self,
            Crd::SecretStore
                | Crd::ClusterSecretStore
                | Crd::ExternalSecret
                | Crd::VaultStaticSecret
                | Crd::VaultDynamicSecret
                | Crd::VaultPkiSecret
        )
    }
}

/// How a login through the lab's mount fails for every role (the mount-wide scenarios), as the
/// operators' Vault client reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum LoginFailure {
    /// `403 permission denied`: the mount is missing, or the plugin's TokenReview fails.
    Denied,
    /// `500 could not load backend configuration`: the mount was never configured.
    Unconfigured,
    /// `503 Vault is sealed`.
    Sealed,
    /// Nothing listens at Vault's address.
    Unreachable,
}

impl LoginFailure {
    /// How logins through the mount fail in `scenario`; `None` when they work (the failing
    /// scenarios that are not mount-wide concern the canary's role or policy only).
    pub fn of(scenario: Scenario) -> Option<LoginFailure> {
        match scenario {
            Scenario::VaultUnreachable => Some(LoginFailure::Unreachable),
            Scenario::VaultSealed => Some(LoginFailure::Sealed),
            Scenario::K8sAuthUnconfigured => Some(LoginFailure::Unconfigured),
            Scenario::K8sAuthMountMissing
            | Scenario::ReviewerJwtExpired
            | Scenario::ReviewerJwtRejected
            | Scenario::ReviewerRbacMissing
            | Scenario::KubeApiUnreachable
            | Scenario::KubeCaMismatch
            | Scenario::IssuerMismatch
            | Scenario::Inconclusive => Some(LoginFailure::Denied),
            Scenario::Healthy
            | Scenario::ClientJwtRejected
            | Scenario::RoleBindingMismatch
            | Scenario::AudienceMismatch
            | Scenario::RoleNotFound
            | Scenario::PolicyDenied => None,
        }
    }

    /// The Vault client's error for a login at `auth/<mount>/login` (Vault API errors as
    /// `Error making API request`, flattened to one line as the facts quote them).
    pub fn login_error(self, mount: &str) -> String {
        let url = format!("{IN_CLUSTER_VAULT}/v1/auth/{mount}/login");
        let api = |code: u16, error: &str| {
            format!("Error making API request. URL: PUT {url} Code: {code}. Errors: * {error}")
        };
        match self {
            LoginFailure::Denied => api(403, "permission denied"),
            LoginFailure::Unconfigured => api(500, "could not load backend configuration"),
            LoginFailure::Sealed => api(503, "Vault is sealed"),
            LoginFailure::Unreachable => {
                format!("Put {url:?}: dial tcp 10.96.112.40:8200: connect: connection refused")
            }
        }
    }
}

fn at(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

fn cond(kind: &str, ok: bool, reason: &str, message: &str, since: &str) -> Value {
    json!({
        "type": kind, "status": if ok { "True" } else { "False" },
        "reason": reason, "message": message, "lastTransitionTime": since,
    })
}

/// A short stable hex digest (hashes and MACs in the statuses).
fn digest(s: &str) -> String {
    use sha2::Digest as _;
    hex::encode(&sha2::Sha256::digest(s.as_bytes())[..16])
}

/// `metadata` without `resourceVersion` (the world sets it when it stores the object).
fn metadata(crd: Crd, ns: Option<&str>, name: &str) -> Value {
    let mut m = json!({
        "name": name,
        "uid": super::world::stable_uid(crd.kind(), ns.unwrap_or_default(), name),
        "generation": 1,
        "creationTimestamp": super::world::CREATED,
    });
    if let Some(ns) = ns {
        m["namespace"] = json!(ns);
    }
    m
}

/// An object; `status` null leaves it out (an object no controller writes a status for).
fn object(crd: Crd, ns: Option<&str>, name: &str, spec: Value, status: Value) -> Value {
    let mut o = json!({
        "apiVersion": crd.api_version(), "kind": crd.kind(),
        "metadata": metadata(crd, ns, name),
        "spec": spec,
    });
    if !status.is_null() {
        o["status"] = status;
    }
    o
}

/// The operators' objects of a world whose triaged mount is `mount` (`kubernetes`, or a
/// fleet's `kubernetes-<cluster>`), with the statuses of `failure` (`None`: logins work), as of
/// `now` (an outage began 3 h before it, when the classic incident's reviewer JWT expired).
pub(crate) fn objects(
    mount: &str,
    failure: Option<LoginFailure>,
    now: DateTime<Utc>,
) -> Vec<(Crd, Value)> {
    let ns = Some("production");
    let outage = now - chrono::Duration::hours(3);
    let last_sync = match failure {
        Some(_) => outage - chrono::Duration::minutes(17),
        None => now - chrono::Duration::minutes(17),
    };
    let (since, last_sync) = (
        match failure {
            Some(_) => at(outage),
            None => super::world::CREATED.to_string(),
        },
        at(last_sync),
    );
    let mut out = Vec::new();

    // External Secrets: the store validates by logging in; the ExternalSecret keeps its Secret.
    let store_status = match failure {
        Some(_) => cond(
            "Ready",
            false,
            "InvalidProviderConfig",
            "unable to create client",
            &since,
        ),
        None => cond("Ready", true, "Valid", "store validated", &since),
    };
    out.push((
        Crd::ClusterSecretStore,
        object(
            Crd::ClusterSecretStore,
            None,
            "vault-backend",
            json!({"provider": {"vault": {
                "server": IN_CLUSTER_VAULT, "path": "secret", "version": "v2",
                "auth": {"kubernetes": {
                    "mountPath": mount, "role": ESO_ROLE,
                    "serviceAccountRef": {"name": ESO_ROLE, "namespace": "production"},
                }},
            }}}),
            json!({"capabilities": "ReadWrite", "conditions": [store_status]}),
        ),
    ));
    let es_status = match failure {
        Some(_) => cond(
            "Ready",
            false,
            "SecretSyncedError",
            "could not get secret data from provider",
            &since,
        ),
        None => cond("Ready", true, "SecretSynced", "secret synced", &since),
    };
    out.push((
        Crd::ExternalSecret,
        object(
            Crd::ExternalSecret,
            ns,
            "payments-db",
            json!({
                "secretStoreRef": {"name": "vault-backend", "kind": "ClusterSecretStore"},
                "refreshInterval": "1h", "refreshPolicy": "Periodic",
                "target": {"name": "payments-db", "creationPolicy": "Owner", "deletionPolicy": "Retain"},
                "data": [
                    {"secretKey": "username", "remoteRef": {"key": "production/ledger-sync/payments-db", "property": "username"}},
                    {"secretKey": "password", "remoteRef": {"key": "production/ledger-sync/payments-db", "property": "password"}},
                ],
            }),
            json!({
                "binding": {"name": "payments-db"},
                "refreshTime": last_sync,
                "syncedResourceVersion": format!("1-{}", digest("production/payments-db")),
                "conditions": [es_status],
            }),
        ),
    ));

    // Vault Secrets Operator: the VaultAuth never logs in, so it stays valid; the secret
    // resource carries the login error.
    let vso_mount = mount.strip_prefix("auth/").unwrap_or(mount);
    out.push((
        Crd::VaultConnection,
        object(
            Crd::VaultConnection,
            ns,
            "default",
            json!({"address": IN_CLUSTER_VAULT, "skipTLSVerify": false}),
            json!({"valid": true, "conditions": [
                cond("Healthy", true, "Healthy", "", super::world::CREATED),
                cond("Ready", true, "Ready", "", super::world::CREATED),
            ]}),
        ),
    ));
    let auth_spec = json!({
        "vaultConnectionRef": "default",
        "method": "kubernetes", "mount": vso_mount,
        "kubernetes": {"role": VSO_ROLE, "serviceAccount": VSO_ROLE, "tokenExpirationSeconds": 600},
    });
    out.push((
        Crd::VaultAuth,
        object(
            Crd::VaultAuth,
            ns,
            "default",
            auth_spec.clone(),
            json!({
                "valid": true, "error": "",
                "specHash": digest(&auth_spec.to_string()),
                "conditions": [
                    cond("Healthy", true, "Healthy", "", super::world::CREATED),
                    cond("Ready", true, "Ready", "", super::world::CREATED),
                ],
            }),
        ),
    ));
    let synced = match failure {
        Some(f) => cond(
            "SecretSynced",
            false,
            "",
            &format!(
                "Failed to sync the secret, horizon=5s, err=Failed to get Vault auth login: {}",
                f.login_error(vso_mount)
            ),
            &since,
        ),
        None => cond("SecretSynced", true, "Synced", "Secret synced", &last_sync),
    };
    out.push((
        Crd::VaultStaticSecret,
        object(
            Crd::VaultStaticSecret,
            ns,
            "orders-config",
            json!({
                "vaultAuthRef": "default",
                "mount": "secret", "type": "kv-v2", "path": "production/orders-api/config",
                "destination": {"name": "orders-config", "create": true},
                "refreshAfter": "30s",
            }),
            json!({
                "lastGeneration": 1,
                "secretMAC": digest("orders-config"),
                "vaultClientMeta": {
                    "cacheKey": format!("kubernetes-{}", &digest(vso_mount)[..22]),
                    "id": digest(&format!("{vso_mount}/{VSO_ROLE}")),
                },
                "conditions": [synced],
            }),
        ),
    ));

    // A dynamic secret: on a failed login VSO requeues without writing its status, so it keeps
    // saying synced; VSO restarts `frontend` (no Vault annotations of its own) after each sync.
    out.push((
        Crd::VaultDynamicSecret,
        object(
            Crd::VaultDynamicSecret,
            ns,
            "frontend-db",
            json!({
                "vaultAuthRef": "default",
                "mount": "database", "path": "creds/frontend",
                "destination": {"name": "frontend-db", "create": true},
                "renewalPercent": 67,
                "rolloutRestartTargets": [{"kind": "Deployment", "name": "frontend"}],
            }),
            json!({
                "lastGeneration": 1,
                "secretMAC": digest("frontend-db"),
                "lastRenewalTime": 0,
                "secretLease": {"id": format!("database/creds/frontend/{}", &digest("lease")[..24]),
                                "duration": 3600, "renewable": true},
                "vaultClientMeta": {
                    "cacheKey": format!("kubernetes-{}", &digest(vso_mount)[..22]),
                    "id": digest(&format!("{vso_mount}/{VSO_ROLE}")),
                },
                "conditions": [cond("SecretSynced", true, "Synced", "Secret synced", super::world::CREATED)],
            }),
        ),
    ));

    // CSI: the class only; the pods that mount it are the Deployment's.
    out.push((
        Crd::SecretProviderClass,
        object(
            Crd::SecretProviderClass,
            ns,
            CSI_CLASS,
            json!({
                "provider": "vault",
                "parameters": {
                    "roleName": CSI_ROLE,
                    "vaultAddress": IN_CLUSTER_VAULT,
                    "vaultKubernetesMountPath": mount,
                    "objects": "- objectName: db\n  secretPath: secret/data/production/billing-worker/reports\n  secretKey: password\n",
                },
            }),
            Value::Null,
        ),
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::super::{Lab, LabOptions};
    use super::*;
    use crate::kube::operators::{
        self, CSI_SECRET_PROVIDER_CLASS, CrdApi, ESO_CLUSTER_SECRET_STORE, ESO_EXTERNAL_SECRET,
        ESO_SECRET_STORE, VSO_AUTH, VSO_SECRETS,
    };

    #[test]
    fn logins_fail_for_every_role_exactly_in_the_mount_wide_scenarios() {
        use crate::diagnosis::VerdictCode;
        for s in Scenario::ALL.iter().copied() {
            let code: VerdictCode = s.verdict_code().parse().expect("a verdict code");
            assert_eq!(LoginFailure::of(s).is_some(), code.is_mount_wide(), "{s}");
        }
        assert_eq!(
            LoginFailure::Denied.login_error("kubernetes"),
            "Error making API request. URL: PUT http://vault.vault:8200/v1/auth/kubernetes/login \
             Code: 403. Errors: * permission denied"
        );
        assert!(
            LoginFailure::Unreachable
                .login_error("kubernetes-b")
                .contains("/v1/auth/kubernetes-b/login\": dial tcp")
        );
    }

    #[test]
    fn the_lab_serves_the_kinds_the_bot_lists() {
        let mut bots: Vec<CrdApi> = vec![
            ESO_SECRET_STORE,
            ESO_CLUSTER_SECRET_STORE,
            ESO_EXTERNAL_SECRET,
            VSO_AUTH,
            CSI_SECRET_PROVIDER_CLASS,
        ];
        bots.extend(VSO_SECRETS);
        for api in bots {
            let crd = Crd::from_resource(api.group, api.version, api.plural)
                .unwrap_or_else(|| panic!("{api:?} served"));
            assert_eq!(crd.kind(), api.kind);
        }
    }

    async fn get(lab: &Lab, path: &str, token: Option<&str>) -> (u16, Value) {
        let mut req = reqwest::Client::new().get(format!("{}{path}", lab.kube_url()));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let resp = req.send().await.expect("get");
        let code = resp.status().as_u16();
        (code, resp.json().await.expect("json"))
    }

    /// The items of the cluster-wide list of `api`, as the bot's `list_crd` gets them.
    async fn list(lab: &Lab, api: CrdApi) -> Vec<Value> {
        let path = format!("/apis/{}/{}/{}", api.group, api.version, api.plural);
        let (code, body) = get(lab, &path, Some(&lab.bot_kube_token())).await;
        assert_eq!(code, 200, "{path}: {body}");
        assert_eq!(body["kind"], format!("{}List", api.kind));
        assert_eq!(body["apiVersion"], format!("{}/{}", api.group, api.version));
        assert!(body["metadata"]["resourceVersion"].as_str().is_some());
        let items = body["items"].as_array().expect("items").clone();
        for o in &items {
            assert_eq!(o["kind"], api.kind);
            assert_eq!(o["apiVersion"], body["apiVersion"]);
            let m = &o["metadata"];
            let ns = m["namespace"].as_str().unwrap_or_default();
            let name = m["name"].as_str().unwrap();
            assert_eq!(
                m["uid"],
                super::super::world::stable_uid(api.kind, ns, name)
            );
            assert_eq!(m["generation"], 1);
            assert!(m["resourceVersion"].as_str().is_some());
            assert_eq!(m["creationTimestamp"], super::super::world::CREATED);
        }
        // kube-rs reads the list as the bot does.
        let typed: kube::core::ObjectList<kube::api::DynamicObject> =
            serde_json::from_value(body).expect("a DynamicObject list");
        assert_eq!(typed.items.len(), items.len());
        items
    }

    /// Everything the bot's pure readers find on `mount` in `lab`.
    async fn bot_view(
        lab: &Lab,
        mount: &str,
    ) -> (
        Vec<crate::evidence::SecretSync>,
        Vec<crate::evidence::SecretSync>,
        Vec<(String, String, String)>,
    ) {
        let eso = operators::eso_syncs(
            &list(lab, ESO_SECRET_STORE).await,
            &list(lab, ESO_CLUSTER_SECRET_STORE).await,
            &list(lab, ESO_EXTERNAL_SECRET).await,
            mount,
        );
        let mut secrets = Vec::new();
        for api in VSO_SECRETS {
            secrets.push((api, list(lab, api).await));
        }
        let vso = operators::vso_syncs(&list(lab, VSO_AUTH).await, &secrets, mount);
        let csi = operators::csi_classes(&list(lab, CSI_SECRET_PROVIDER_CLASS).await, mount);
        (eso, vso, csi)
    }

    #[tokio::test]
    async fn operators_objects_are_served_with_the_scenarios_statuses() {
        for scenario in [Scenario::ReviewerJwtExpired, Scenario::Healthy] {
            let failing = scenario != Scenario::Healthy;
            let lab = Lab::start(scenario, LabOptions::default())
                .await
                .expect("lab");
            let (eso, vso, csi) = bot_view(&lab, "kubernetes").await;
            let names: Vec<(&str, &str, &str)> = eso
                .iter()
                .map(|s| (s.kind.as_str(), s.namespace.as_str(), s.name.as_str()))
                .collect();
            assert_eq!(
                names,
                [
                    ("ClusterSecretStore", "", "vault-backend"),
                    ("ExternalSecret", "production", "payments-db")
                ],
                "{scenario}"
            );
            assert_eq!(vso.len(), 2, "{scenario}: {vso:?}");
            assert_eq!(
                (
                    vso[0].kind.as_str(),
                    vso[0].namespace.as_str(),
                    vso[0].name.as_str()
                ),
                ("VaultStaticSecret", "production", "orders-config")
            );
            // A VaultDynamicSecret's status is not written on a failed login: it keeps saying
            // synced, and names the Deployment VSO restarts after a sync.
            let vds = &vso[1];
            assert_eq!(
                (vds.kind.as_str(), vds.name.as_str(), vds.ready),
                ("VaultDynamicSecret", "frontend-db", Some(true))
            );
            assert_eq!(vds.restart_targets.len(), 1, "{vds:?}");
            assert_eq!(
                csi,
                [(
                    "production".to_string(),
                    "reports-vault".to_string(),
                    "billing-worker".to_string()
                )]
            );
            for s in eso.iter().chain(&vso[..1]) {
                assert_eq!(s.ready, Some(!failing), "{scenario}: {s:?}");
            }
            if failing {
                assert_eq!(
                    eso[0].message,
                    "InvalidProviderConfig: unable to create client"
                );
                assert_eq!(
                    eso[1].message,
                    "SecretSyncedError: could not get secret data from provider"
                );
                assert_eq!(
                    vso[0].message,
                    "Failed to sync the secret, horizon=5s, err=Failed to get Vault auth login: \
                     Error making API request. URL: PUT \
                     http://vault.vault:8200/v1/auth/kubernetes/login Code: 403. Errors: * \
                     permission denied"
                );
            } else {
                assert_eq!(eso[0].message, "Valid: store validated");
                assert_eq!(eso[1].message, "SecretSynced: secret synced");
                assert_eq!(vso[0].message, "Synced: Secret synced");
            }
            // Another mount sees none of them.
            let (eso, vso, csi) = bot_view(&lab, "kubernetes-other").await;
            assert!(eso.is_empty() && vso.is_empty() && csi.is_empty());

            let token = lab.bot_kube_token();
            let bot = Some(token.as_str());
            // The VaultAuth stays valid through the outage.
            let (code, auth) = get(
                &lab,
                "/apis/secrets.hashicorp.com/v1beta1/namespaces/production/vaultauths/default",
                bot,
            )
            .await;
            assert_eq!(code, 200);
            assert_eq!(auth["status"]["valid"], true);
            assert_eq!(auth["spec"]["mount"], "kubernetes");
            assert_eq!(auth["spec"]["kubernetes"]["role"], "orders-api");
            // A cluster-scoped store by name; the ExternalSecret's refreshTime.
            let (code, css) = get(
                &lab,
                "/apis/external-secrets.io/v1/clustersecretstores/vault-backend",
                bot,
            )
            .await;
            assert_eq!(code, 200);
            let k8s = &css["spec"]["provider"]["vault"]["auth"]["kubernetes"];
            assert_eq!(k8s["mountPath"], "kubernetes");
            assert_eq!(k8s["role"], "ledger-sync");
            assert_eq!(
                css["status"]["conditions"][0]["reason"],
                if failing {
                    "InvalidProviderConfig"
                } else {
                    "Valid"
                }
            );
            let (code, es) = get(
                &lab,
                "/apis/external-secrets.io/v1/namespaces/production/externalsecrets/payments-db",
                bot,
            )
            .await;
            assert_eq!(code, 200);
            assert!(es["status"]["refreshTime"].as_str().is_some());
            assert_eq!(es["spec"]["secretStoreRef"]["kind"], "ClusterSecretStore");
            lab.shutdown().await;
        }
    }

    #[tokio::test]
    async fn routes_scopes_rbac_and_force_sync_patches() {
        let lab = Lab::start(Scenario::KubeCaMismatch, LabOptions::default())
            .await
            .expect("lab");
        let token = lab.bot_kube_token();
        let bot = Some(token.as_str());
        // Installed operators with nothing of a kind: empty lists.
        for path in [
            "/apis/external-secrets.io/v1/secretstores",
            "/apis/secrets.hashicorp.com/v1beta1/vaultpkisecrets",
            "/apis/external-secrets.io/v1/namespaces/default/externalsecrets",
        ] {
            let (code, body) = get(&lab, path, bot).await;
            assert_eq!(code, 200, "{path}");
            assert_eq!(body["items"], json!([]), "{path}");
        }
        // Namespaced lists, field selectors, 404s.
        let (_, body) = get(
            &lab,
            "/apis/external-secrets.io/v1/namespaces/production/externalsecrets",
            bot,
        )
        .await;
        assert_eq!(body["items"][0]["metadata"]["name"], "payments-db");
        let (_, body) = get(
            &lab,
            "/apis/secrets-store.csi.x-k8s.io/v1/secretproviderclasses?fieldSelector=metadata.name%3Dnope",
            bot,
        )
        .await;
        assert_eq!(body["items"], json!([]));
        let (code, body) = get(
            &lab,
            "/apis/secrets-store.csi.x-k8s.io/v1/namespaces/production/secretproviderclasses/nope",
            bot,
        )
        .await;
        assert_eq!(code, 404);
        assert_eq!(
            body["message"],
            "secretproviderclasses.secrets-store.csi.x-k8s.io \"nope\" not found"
        );
        for path in [
            // Cluster-scoped kinds have no namespaced path, namespaced ones no cluster path.
            "/apis/external-secrets.io/v1/namespaces/production/clustersecretstores",
            "/apis/external-secrets.io/v1/externalsecrets/payments-db",
            "/apis/external-secrets.io/v1beta1/externalsecrets",
            "/apis/secrets.hashicorp.com/v1/vaultauths",
        ] {
            assert_eq!(get(&lab, path, bot).await.0, 404, "{path}");
        }
        // kubectl without credentials reads them, a rejected bearer gets 401, and a
        // ServiceAccount without RBAC 403.
        let (code, _) = get(&lab, "/apis/external-secrets.io/v1/externalsecrets", None).await;
        assert_eq!(code, 200);
        let (code, _) = get(
            &lab,
            "/apis/external-secrets.io/v1/externalsecrets",
            Some("not-a-token"),
        )
        .await;
        assert_eq!(code, 401);
        let canary = {
            use super::super::setup::{CANARY_NAMESPACE, CANARY_SA};
            let uid = lab
                .shared
                .world()
                .sa_uid(CANARY_NAMESPACE, CANARY_SA)
                .unwrap();
            let now = chrono::Utc::now().timestamp();
            let aud = vec![super::super::API_AUDIENCE.to_string()];
            lab.shared
                .tokens
                .issue(CANARY_NAMESPACE, CANARY_SA, &uid, aud, now, 3600)
                .expect("token")
        };
        let (code, body) = get(
            &lab,
            "/apis/secrets.hashicorp.com/v1beta1/vaultstaticsecrets",
            Some(&canary),
        )
        .await;
        assert_eq!(code, 403);
        assert_eq!(
            body["message"],
            "vaultstaticsecrets.secrets.hashicorp.com is forbidden: User \"system:serviceaccount:vault-triage:vault-triage-canary\" cannot list resource \"vaultstaticsecrets\" in API group \"secrets.hashicorp.com\" at the cluster scope"
        );

        // A force-sync: merge patches of metadata bump resourceVersion (not generation).
        let patch = |path: &str, ct: &str, token: Option<String>, body: Value| {
            let mut req = reqwest::Client::new()
                .patch(format!("{}{path}", lab.kube_url()))
                .header("content-type", ct)
                .body(body.to_string());
            if let Some(t) = token {
                req = req.bearer_auth(t);
            }
            req.send()
        };
        let es_path =
            "/apis/external-secrets.io/v1/namespaces/production/externalsecrets/payments-db";
        let before = lab
            .operator_object("externalsecrets", "production", "payments-db")
            .unwrap();
        let resp = patch(
            es_path,
            "application/merge-patch+json",
            Some(token.clone()),
            json!({"metadata": {"annotations": {"force-sync": "1767261600"}}}),
        )
        .await
        .expect("patch");
        assert_eq!(resp.status().as_u16(), 200);
        let after: Value = resp.json().await.expect("json");
        assert_eq!(after["metadata"]["annotations"]["force-sync"], "1767261600");
        assert_eq!(after["metadata"]["generation"], 1);
        assert_ne!(
            after["metadata"]["resourceVersion"],
            before["metadata"]["resourceVersion"]
        );
        assert_eq!(
            after["status"], before["status"],
            "the status stays as built"
        );
        assert_eq!(
            lab.operator_object("externalsecrets", "production", "payments-db"),
            Some(after)
        );
        for (path, resource, ns, name) in [
            (
                "/apis/external-secrets.io/v1/clustersecretstores/vault-backend",
                "clustersecretstores",
                "",
                "vault-backend",
            ),
            (
                "/apis/secrets.hashicorp.com/v1beta1/namespaces/production/vaultstaticsecrets/orders-config",
                "vaultstaticsecrets",
                "production",
                "orders-config",
            ),
        ] {
            let resp = patch(
                path,
                "application/merge-patch+json",
                Some(token.clone()),
                json!({"metadata": {"labels": {"vault-triage/resync": "1"}}}),
            )
            .await
            .expect("patch");
            assert_eq!(resp.status().as_u16(), 200, "{path}");
            let o = lab.operator_object(resource, ns, name).unwrap();
            assert_eq!(o["metadata"]["labels"]["vault-triage/resync"], "1");
        }
        // Custom resources take no strategic-merge patch; kubectl (anonymous) may not patch;
        // kinds the lab does not patch are 405.
        let resp = patch(
            es_path,
            "application/strategic-merge-patch+json",
            Some(token.clone()),
            json!({"metadata": {"annotations": {"x": "y"}}}),
        )
        .await
        .expect("patch");
        assert_eq!(resp.status().as_u16(), 415);
        let resp = patch(
            es_path,
            "application/merge-patch+json",
            None,
            json!({"metadata": {"annotations": {"x": "y"}}}),
        )
        .await
        .expect("patch");
        assert_eq!(resp.status().as_u16(), 403);
        let resp = patch(
            "/apis/secrets.hashicorp.com/v1beta1/namespaces/production/vaultauths/default",
            "application/merge-patch+json",
            Some(token.clone()),
            json!({"metadata": {"annotations": {"x": "y"}}}),
        )
        .await
        .expect("patch");
        assert_eq!(resp.status().as_u16(), 405);
        let resp = patch(
            "/apis/external-secrets.io/v1/namespaces/production/externalsecrets/nope",
            "application/merge-patch+json",
            Some(token),
            json!({"metadata": {"annotations": {"x": "y"}}}),
        )
        .await
        .expect("patch");
        assert_eq!(resp.status().as_u16(), 404);
        lab.shutdown().await;
    }
}
