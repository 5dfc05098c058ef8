//! Canary logins for concurrent `/vault-triage` commands, counted where Vault counts them: the
//! audit log of a real OpenBao.
//!
//! The lab's Kubernetes API (scenario `reviewer-jwt-expired`) stands behind a real OpenBao dev
//! server whose file audit device (declared in its config, as OpenBao 2.x requires) records
//! every request. A fresh `vault-triage serve` then receives N signed commands at once: N Slack
//! slash commands, N Discord interactions, and N/2 of each mixed. Each row reports the
//! `auth/kubernetes/login` requests in the audit log between the first command and the last
//! answer, and how many commands were answered (every answer lands on a local sink standing in
//! for Slack's `response_url` and Discord's webhook edit).
//!
//! ```text
//! cargo build --release && cargo build --release --example canary_logins
//! target/release/examples/canary_logins [--commands 20] [--rounds 3]
//! ```
//! `BAO_BIN` (or `bao` on `PATH`) names the OpenBao binary; `--binary` the bot's.
#![allow(clippy::print_stdout)] // a benchmark's report is its output

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use ed25519_dalek::{Signer, SigningKey};
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;
use vault_triage::lab::{Lab, LabOptions, Scenario, apply_setup};

const SLACK_SECRET: &str = "bench-signing-secret";
const DISCORD_APP: &str = "1300000000000000001";

/// A child process killed when dropped.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

async fn wait_ok(http: &reqwest::Client, url: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !http
        .get(url)
        .send()
        .await
        .is_ok_and(|r| r.status().is_success())
    {
        assert!(Instant::now() < deadline, "{url} did not answer in 60 s");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A dev OpenBao with a file audit device at `dir/audit.log`.
async fn start_bao(bin: &Path, dir: &Path, http: &reqwest::Client) -> (Proc, String) {
    let audit = dir.join("audit.log");
    let hcl = dir.join("audit.hcl");
    std::fs::write(
        &hcl,
        format!(
            "audit \"file\" \"file\" {{\n  options {{\n    file_path = \"{}\"\n  }}\n}}\n",
            audit.display()
        ),
    )
    .expect("audit.hcl");
    let port = free_port();
    let child = Command::new(bin)
        .args([
            "server",
            "-dev",
            &format!("-dev-listen-address=127.0.0.1:{port}"),
            "-dev-root-token-id=root",
            &format!("-config={}", hcl.display()),
        ])
        .env("HOME", dir)
        .env_remove("VAULT_ADDR")
        .env_remove("BAO_ADDR")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawning bao");
    let addr = format!("http://127.0.0.1:{port}");
    wait_ok(http, &format!("{addr}/v1/sys/health")).await;
    (Proc(child), addr)
}

/// `auth/kubernetes/login` requests in the audit log so far.
fn logins(audit: &Path) -> usize {
    std::fs::read_to_string(audit)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["type"] == "request" && v["request"]["path"] == "auth/kubernetes/login")
        .count()
}

/// Stands in for Slack's Web API and `response_url` and for Discord's REST API, answering as
/// they do; records which commands got their answer (`response_url` path, interaction token,
/// or a summary posted in the channel).
async fn start_sink() -> (String, Arc<Mutex<HashSet<String>>>) {
    let answered = Arc::new(Mutex::new(HashSet::new()));
    let seen = answered.clone();
    let app = Router::new().fallback(move |req: axum::extract::Request| {
        let seen = seen.clone();
        async move {
            let path = req.uri().path().to_string();
            let parts: Vec<&str> = path.split('/').collect();
            if let Some(i) = parts.iter().position(|p| *p == "webhooks") {
                // /api/v10/webhooks/{application}/{token}/messages/@original
                if let Some(token) = parts.get(i + 2) {
                    seen.lock().expect("sink").insert(token.to_string());
                }
            }
            if path.starts_with("/response/") {
                seen.lock().expect("sink").insert(path.clone());
            }
            if path.ends_with("/chat.postMessage") {
                // A summary in the channel: the answer of the command that posted it.
                let mut seen = seen.lock().expect("sink");
                let n = seen.len();
                seen.insert(format!("post-{n}"));
            }
            let ts = "1700000000.000100";
            axum::Json(match path.rsplit('/').next().unwrap_or("") {
                "chat.postMessage" | "chat.update" => json!({
                    "ok": true, "channel": "C0BENCH", "ts": ts, "message": {"ts": ts}
                }),
                "chat.postEphemeral" => json!({"ok": true, "message_ts": ts}),
                _ if path.contains("/webhooks/") || path.contains("/channels/") => json!({
                    "id": "1700000000000000001", "channel_id": "1100000000000000001",
                    "type": 0, "content": "", "author": {"id": DISCORD_APP,
                    "username": "vault-triage", "discriminator": "0", "avatar": null},
                    "attachments": [], "embeds": [], "mentions": [], "mention_roles": [],
                    "pinned": false, "mention_everyone": false, "tts": false,
                    "timestamp": "2026-01-01T00:00:00.000000+00:00",
                    "edited_timestamp": null, "flags": 0, "components": []
                }),
                _ => json!({"ok": true}),
            })
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind sink");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, answered)
}

fn slack_command(i: usize, sink: &str) -> (Vec<u8>, Vec<(String, String)>) {
    let body = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs([
            ("token", "x"),
            ("team_id", "T0001"),
            ("team_domain", "bench"),
            ("channel_id", "C0BENCH"),
            ("channel_name", "bench"),
            ("user_id", &format!("U{i:08}")),
            ("user_name", "bench"),
            ("command", "/vault-triage"),
            ("text", ""),
            ("api_app_id", "A0001"),
            ("response_url", &format!("{sink}/response/{i}")),
            ("trigger_id", &format!("{i}.1.bench")),
        ])
        .finish()
        .into_bytes();
    let ts = chrono::Utc::now().timestamp().to_string();
    let mut mac = Hmac::<Sha256>::new_from_slice(SLACK_SECRET.as_bytes()).expect("key");
    mac.update(format!("v0:{ts}:").as_bytes());
    mac.update(&body);
    let sig = format!("v0={}", hex::encode(mac.finalize().into_bytes()));
    let headers = vec![
        ("X-Slack-Request-Timestamp".into(), ts),
        ("X-Slack-Signature".into(), sig),
        (
            "Content-Type".into(),
            "application/x-www-form-urlencoded".into(),
        ),
    ];
    (body, headers)
}

fn discord_command(i: usize, key: &SigningKey) -> (Vec<u8>, Vec<(String, String)>) {
    let body = json!({
        "id": (1_500_000_000_000_000_000u64 + i as u64).to_string(),
        "application_id": DISCORD_APP, "type": 2, "token": format!("bench-token-{i}"),
        "version": 1, "locale": "en-US", "guild_locale": "en-US", "entitlements": [],
        "attachment_size_limit": 10485760, "guild_id": "1200000000000000001",
        "channel_id": "1100000000000000001",
        "channel": {"id": "1100000000000000001", "type": 0},
        "member": {"user": {"id": (1_400_000_000_000_000_000u64 + i as u64).to_string(),
                            "username": "bench", "discriminator": "0", "avatar": null,
                            "global_name": null},
                   "roles": [], "deaf": false, "mute": false, "flags": 0,
                   "joined_at": "2026-01-01T00:00:00.000000+00:00", "nick": null},
        "authorizing_integration_owners": {"0": "1200000000000000001"}, "context": 0,
        "data": {"id": "1600000000000000001", "name": "vault-triage", "type": 1,
                 "options": [{"name": "triage", "type": 1, "options": []}]},
    })
    .to_string()
    .into_bytes();
    let ts = chrono::Utc::now().timestamp().to_string();
    let mut signed = ts.as_bytes().to_vec();
    signed.extend_from_slice(&body);
    let sig = hex::encode(key.sign(&signed).to_bytes());
    let headers = vec![
        ("X-Signature-Ed25519".into(), sig),
        ("X-Signature-Timestamp".into(), ts),
        ("Content-Type".into(), "application/json".into()),
    ];
    (body, headers)
}

struct Row {
    name: &'static str,
    commands: usize,
    answered: usize,
    logins: usize,
    elapsed: Duration,
}

/// One round: a fresh `serve`, `n` commands at once, logins counted until all are answered.
#[allow(clippy::too_many_arguments)]
async fn round(
    name: &'static str,
    n: usize,
    slack_share: usize,
    binary: &Path,
    env: &[(String, String)],
    audit: &Path,
    http: &reqwest::Client,
) -> Row {
    let key = SigningKey::from_bytes(&[7u8; 32]);
    let (sink, answers) = start_sink().await;
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let serve = Proc(
        Command::new(binary)
            .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
            .envs(env.iter().cloned())
            .envs([
                ("VAULT_TRIAGE_LOG", "warn".to_string()),
                ("SLACK_SIGNING_SECRET", SLACK_SECRET.into()),
                ("SLACK_BOT_TOKEN", "xoxb-bench".into()),
                ("SLACK_API_URL", format!("{sink}/slack/")),
                (
                    "DISCORD_PUBLIC_KEY",
                    hex::encode(key.verifying_key().to_bytes()),
                ),
                ("DISCORD_BOT_TOKEN", "bench".into()),
                ("DISCORD_APPLICATION_ID", DISCORD_APP.into()),
                ("DISCORD_API_URL", sink.clone()),
                ("DISCORD_GATEWAY", "off".into()),
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting serve"),
    );
    wait_ok(http, &format!("{base}/healthz")).await;
    // Let the start-up reviewer check finish before counting.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let before = logins(audit);
    let start = Instant::now();
    let sends = (0..n).map(|i| {
        let (path, (body, headers)) = if i < slack_share {
            ("/slack/commands", slack_command(i, &sink))
        } else {
            ("/discord/interactions", discord_command(i, &key))
        };
        let mut req = http.post(format!("{base}{path}")).body(body);
        for (k, v) in headers {
            req = req.header(k, v);
        }
        async move { req.send().await.map(|r| r.status().as_u16()) }
    });
    let statuses = futures::future::join_all(sends).await;
    let acked = statuses.iter().filter(|s| matches!(s, Ok(200))).count();
    assert_eq!(acked, n, "every command is acknowledged: {statuses:?}");
    let deadline = Instant::now() + Duration::from_secs(60);
    while answers.lock().expect("sink").len() < n && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let elapsed = start.elapsed();
    // Anything still in flight would show up in the audit log now.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let row = Row {
        name,
        commands: n,
        answered: answers.lock().expect("sink").len(),
        logins: logins(audit) - before,
        elapsed,
    };
    drop(serve);
    row
}

fn arg(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

#[tokio::main]
async fn main() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let n: usize = arg("--commands").map_or(20, |s| s.parse().expect("--commands N"));
    let rounds: usize = arg("--rounds").map_or(3, |s| s.parse().expect("--rounds N"));
    let binary = PathBuf::from(arg("--binary").unwrap_or("target/release/vault-triage".into()));
    let bao = PathBuf::from(
        arg("--bao")
            .or_else(|| std::env::var("BAO_BIN").ok())
            .unwrap_or("bao".into()),
    );
    let http = reqwest::Client::new();
    let dir = tempfile::tempdir().expect("tempdir");
    let lab = Lab::start(Scenario::ReviewerJwtExpired, LabOptions::default())
        .await
        .expect("lab");
    let files = lab.write_files(dir.path()).expect("lab files");
    let (_bao, addr) = start_bao(&bao, dir.path(), &http).await;
    let token = apply_setup(&addr, "root", &lab.vault_setup())
        .await
        .expect("OpenBao set up as the scenario says");
    let mut env = lab.exports(&files);
    for (k, v) in &mut env {
        match k.as_str() {
            "VAULT_ADDR" => *v = addr.clone(),
            "VAULT_TOKEN" => *v = token.clone(),
            _ => {}
        }
    }
    let audit = dir.path().join("audit.log");
    println!(
        "| round | commands | answered | canary logins (audit log) | first command → last answer |"
    );
    println!("|---|---|---|---|---|");
    for r in 1..=rounds {
        for (name, slack) in [("Slack", n), ("Discord", 0), ("half each", n / 2)] {
            let row = round(name, n, slack, &binary, &env, &audit, &http).await;
            println!(
                "| {r}: {} | {} | {} | **{}** | {:.0} ms |",
                row.name,
                row.commands,
                row.answered,
                row.logins,
                row.elapsed.as_secs_f64() * 1000.0
            );
        }
    }
    lab.shutdown().await;
}
