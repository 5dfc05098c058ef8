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

/// `vault-triage ARGS` with exactly the environment given (nothing inherited but `PATH`).
fn run_with(env: &[(&str, &str)], args: &[&str]) -> (i32, String, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_vault-triage"));
    cmd.args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("VAULT_TRIAGE_LOG_FORMAT", "text");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("running vault-triage");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Environment variables for one run.
type Env = Vec<(&'static str, String)>;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fault_in_the_bots_own_setup_exits_1_with_one_sentence_and_no_verdict() {
    common::init_crypto();
    let lab = Lab::start(Scenario::ReviewerJwtExpired, LabOptions::default())
        .await
        .expect("lab");
    let (dir, files) = common::lab_files(&lab);
    let addr = lab.vault_addr();
    let token = lab.vault_token();
    let kubeconfig = files.kubeconfig.display().to_string();
    let config = files.config.display().to_string();
    let missing = dir.path().join("missing").display().to_string();
    let not_pem = files.config.display().to_string();
    let base = |extra: &[(&'static str, String)]| -> Env {
        let mut env: Env = vec![
            ("VAULT_ADDR", addr.clone()),
            ("VAULT_TOKEN", token.clone()),
            ("KUBECONFIG", kubeconfig.clone()),
            ("VAULT_TRIAGE_CONFIG", config.clone()),
        ];
        for (k, v) in extra {
            env.retain(|(name, _)| name != k);
            if !v.is_empty() || *k == "KUBECONFIG" {
                env.push((k, v.clone()));
            }
        }
        env
    };
    // (environment, what the one sentence must name)
    let cases: Vec<(&str, Env, &[&str])> = vec![
        (
            "KUBECONFIG at a missing file",
            base(&[("KUBECONFIG", missing.clone())]),
            &["KUBECONFIG", "does not exist"],
        ),
        (
            "no VAULT_TOKEN at all",
            base(&[("VAULT_TOKEN", String::new())]),
            &["VAULT_TOKEN", "VAULT_TOKEN_FILE"],
        ),
        (
            "VAULT_ADDR that is not a URL",
            base(&[("VAULT_ADDR", "not-a-url".into())]),
            &["VAULT_ADDR", "not a URL", "https://"],
        ),
        (
            "VAULT_TOKEN_FILE at a missing file",
            base(&[
                ("VAULT_TOKEN", String::new()),
                ("VAULT_TOKEN_FILE", missing.clone()),
            ]),
            &["VAULT_TOKEN_FILE", "cannot be read"],
        ),
        (
            "VAULT_CACERT that is no certificate",
            base(&[("VAULT_CACERT", not_pem)]),
            &["VAULT_CACERT", "PEM"],
        ),
        (
            "no KUBECONFIG and not in a pod",
            vec![("VAULT_ADDR", addr.clone()), ("VAULT_TOKEN", token.clone())],
            &["KUBECONFIG", "not running in a pod", "set KUBECONFIG"],
        ),
        ("an empty environment", vec![], &["VAULT_TOKEN"]),
    ];
    for (what, env, names) in cases {
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        for format in ["text", "json"] {
            let (code, stdout, stderr) = run_with(&env, &["probe", "--format", format]);
            assert_eq!(code, 1, "{what}: exit {code}\n{stdout}\n{stderr}");
            assert!(
                stdout.is_empty(),
                "{what}: no verdict is printed:\n{stdout}"
            );
            let said: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
            assert_eq!(said.len(), 1, "{what}: one sentence:\n{stderr}");
            for name in names {
                assert!(
                    said[0].contains(name),
                    "{what}: {name} missing from {stderr}"
                );
            }
            assert!(!said[0].contains(&token), "{what}: the token leaked");
        }
    }
    lab.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_vault_port_is_a_verdict_that_says_its_reason_once_per_line() {
    common::init_crypto();
    let lab = Lab::start(Scenario::ReviewerJwtExpired, LabOptions::default())
        .await
        .expect("lab");
    let (_dir, files) = common::lab_files(&lab);
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let vault = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let env = [
        ("VAULT_ADDR", vault.as_str()),
        ("VAULT_TOKEN", "root"),
        ("KUBECONFIG", files.kubeconfig.to_str().unwrap()),
        ("VAULT_TRIAGE_CONFIG", files.config.to_str().unwrap()),
        ("VAULT_TRIAGE_LOG", "warn"),
    ];
    let (code, stdout, stderr) = run_with(&env, &["probe"]);
    assert_eq!(code, 2, "{stdout}\n{stderr}");
    assert!(stdout.contains("verdict vault_unreachable"), "{stdout}");
    assert!(
        !stdout.contains("/v1/"),
        "no request URL in what people read:\n{stdout}"
    );
    for line in stdout.lines() {
        assert!(
            line.matches("refused").count() <= 1,
            "the reason is said once per line: {line}"
        );
    }
    // The checks that failed for one reason share one line under "Could not check".
    let unchecked: Vec<&str> = stdout
        .split("Could not check:")
        .nth(1)
        .expect("a Could not check section")
        .lines()
        .filter(|l| l.contains("refused"))
        .collect();
    assert_eq!(unchecked.len(), 1, "{stdout}");
    assert!(
        unchecked[0].contains("Vault health") && unchecked[0].contains("canary login"),
        "{stdout}"
    );
    lab.shutdown().await;
}

#[test]
fn usage_errors_exit_1_not_the_diagnosis_code_and_help_exits_0() {
    for args in [
        &["probe", "--format", "yaml"][..],
        &["probe", "--formt", "json"],
        &["probe", "extra"],
        &["no-such-command"],
        &[],
    ] {
        let (code, stdout, stderr) = run_with(&[], args);
        assert_eq!(code, 1, "{args:?}: exit {code}\n{stdout}\n{stderr}");
        assert!(
            stderr.contains("error:") || stderr.contains("Usage:"),
            "{args:?}: {stderr}"
        );
    }
    for args in [&["--help"][..], &["probe", "--help"], &["--version"]] {
        let (code, stdout, stderr) = run_with(&[], args);
        assert_eq!(code, 0, "{args:?}: {stderr}");
        assert!(!stdout.is_empty(), "{args:?}");
    }
}
