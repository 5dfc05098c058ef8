//! `vault-triage serve` as started from a shell: everything is checked before it says it
//! serves, it warns when nothing could reach it, and `--listen` takes a host name.

use std::io::{BufRead as _, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use vault_triage::lab::{Lab, LabOptions, Scenario};

use crate::support as common;

/// `serve` with the lab's settings and a config file of `extra` appended to the lab's.
fn serve(lab: &Lab, files: &vault_triage::lab::LabFiles, extra: &str, listen: &str) -> Command {
    let config = files.dir.join("serve.toml");
    let base = std::fs::read_to_string(&files.config).unwrap();
    std::fs::write(&config, format!("{base}\n{extra}")).unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_vault-triage"));
    cmd.args(["serve", "--listen", listen])
        .envs(lab.exports(files))
        .env("VAULT_TRIAGE_CONFIG", &config)
        .env("VAULT_TRIAGE_LOG", "info")
        .env("VAULT_TRIAGE_LOG_FORMAT", "json")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    cmd
}

/// A child process killed when the test ends, however it ends.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The log lines' messages until "serving" (or the end of the process).
fn messages_until_serving(child: &mut std::process::Child) -> Vec<String> {
    let stderr = child.stderr.take().unwrap();
    let mut said = Vec::new();
    for line in BufReader::new(stderr).lines() {
        let line = line.unwrap();
        let message = serde_json::from_str::<serde_json::Value>(&line)
            .ok()
            .and_then(|v| v["message"].as_str().map(String::from))
            .unwrap_or(line);
        let done = message == "serving";
        said.push(message);
        if done {
            break;
        }
    }
    said
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_approval_rule_stops_serve_before_it_says_it_serves() {
    common::init_crypto();
    let lab = Lab::start(Scenario::Healthy, LabOptions::default())
        .await
        .unwrap();
    let (_dir, files) = common::lab_files(&lab);
    // The file parses; the policy refuses it (an approver that is neither a person nor an id).
    let bad =
        "[[approvals]]\naction = \"reconfigure-auth\"\napprovers = [\"mallory\"]\nrequired = 1\n";
    let port = common::free_port();
    let mut child = serve(&lab, &files, bad, &format!("127.0.0.1:{port}"))
        .spawn()
        .unwrap();
    let said = tokio::task::block_in_place(|| messages_until_serving(&mut child));
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(1), "{said:#?}");
    assert!(!said.iter().any(|m| m == "serving"), "{said:#?}");
    assert!(
        said.iter().any(|m| m.contains("[[approvals]]")),
        "the error names the section: {said:#?}"
    );
    lab.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_without_chat_or_alert_credentials_warns_and_listens_on_a_host_name() {
    common::init_crypto();
    let lab = Lab::start(Scenario::Healthy, LabOptions::default())
        .await
        .unwrap();
    let (_dir, files) = common::lab_files(&lab);
    let port = common::free_port();
    let mut cmd = serve(&lab, &files, "", &format!("localhost:{port}"));
    for var in [
        "SLACK_BOT_TOKEN",
        "SLACK_SIGNING_SECRET",
        "SLACK_APP_TOKEN",
        "DISCORD_BOT_TOKEN",
        "DISCORD_PUBLIC_KEY",
    ] {
        cmd.env_remove(var);
    }
    let mut child = KillOnDrop(cmd.spawn().unwrap());
    let said = tokio::task::block_in_place(|| messages_until_serving(&mut child.0));
    assert_eq!(
        said.last().map(String::as_str),
        Some("serving"),
        "{said:#?}"
    );
    assert!(
        said.iter()
            .any(|m| m.contains("no chat platform is configured")),
        "{said:#?}"
    );
    assert!(
        said.iter().any(|m| m.contains("no alert credentials")),
        "{said:#?}"
    );
    // localhost:PORT was accepted, and the bot answers there.
    let deadline = Instant::now() + Duration::from_secs(10);
    let health = loop {
        match reqwest::get(format!("http://127.0.0.1:{port}/healthz")).await {
            Ok(r) => break r,
            Err(e) if Instant::now() > deadline => panic!("no answer on localhost:{port}: {e}"),
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    };
    assert!(health.status().is_success());
    lab.shutdown().await;
}
