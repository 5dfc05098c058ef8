//! `vault-triage probe --format json` against the lab: every scenario gives its verdict code,
//! and the exit status follows the contract (0 healthy, 2 fault, 1 could not run).

use crate::support as common;

use std::process::Command;

use vault_triage::lab::{Lab, LabOptions, Scenario};

fn probe(lab: &Lab, files: &vault_triage::lab::LabFiles) -> (i32, serde_json::Value) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_vault-triage"));
    cmd.args(["probe", "--format", "json"]);
    for (name, value) in lab.exports(files) {
        cmd.env(name, value);
    }
    let out = cmd
        .env("VAULT_TRIAGE_LOG", "warn")
        .output()
        .expect("running vault-triage");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let json: serde_json::Value = serde_json::from_str(&stdout).unwrap_or_else(|e| {
        panic!(
            "probe printed no JSON ({e}); stdout: {stdout}\nstderr: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.code().unwrap_or(-1), json)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probe_json_gives_each_scenarios_verdict_code() {
    common::init_crypto();
    let mut failures = Vec::new();
    for &scenario in Scenario::ALL {
        let lab = Lab::start(scenario, LabOptions::default())
            .await
            .expect("lab");
        let (_dir, files) = common::lab_files(&lab);
        let (status, json) = probe(&lab, &files);
        let code = json["verdict"]["code"]
            .as_str()
            .unwrap_or("<none>")
            .to_string();
        if code != scenario.verdict_code() {
            failures.push(format!(
                "{scenario}: got {code} ({}), evidence chain: {}",
                json["verdict"]["headline"], json["verdict"]["evidence"]
            ));
        }
        let expected_status = if scenario == Scenario::Healthy { 0 } else { 2 };
        if status != expected_status {
            failures.push(format!(
                "{scenario}: exit {status}, expected {expected_status}"
            ));
        }
        lab.shutdown().await;
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn a_broken_config_file_is_exit_1_with_a_message() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.toml");
    std::fs::write(&path, "[vault]\nmount = \"x\"\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_vault-triage"))
        .args(["probe"])
        .env("VAULT_TRIAGE_CONFIG", &path)
        .env("VAULT_ADDR", "http://127.0.0.1:1")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("unknown field"), "{stderr}");
}

#[test]
fn lab_scenario_help_lists_every_scenario() {
    let out = Command::new(env!("CARGO_BIN_EXE_vault-triage"))
        .args(["lab", "--scenario", "help"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    for s in Scenario::ALL {
        assert!(
            text.contains(s.name()),
            "{} missing from:\n{text}",
            s.name()
        );
    }
}
