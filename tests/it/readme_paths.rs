//! The README's paths as a newcomer takes them: its lab walk-through, run line by line in a
//! shell exactly as written, with the built binary as `vault-triage` on the `PATH`.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const README: &str = include_str!("../../README.md");
const WALK_THROUGH: &str = "<!-- lab walk-through -->";

/// The lines of the fenced block that follows `marker` in the README.
fn block_after(marker: &str) -> Vec<String> {
    let (_, rest) = README
        .split_once(marker)
        .unwrap_or_else(|| panic!("the README has no {marker}"));
    let rest = rest.trim_start();
    let rest = rest.strip_prefix("```sh\n").expect("a ```sh block follows");
    let (block, _) = rest.split_once("```").expect("the block ends");
    block.lines().map(str::to_string).collect()
}

/// Whether the process runs (a zombie waiting for its new parent to reap it does not).
fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|stat| {
            stat.rsplit_once(") ")
                .is_some_and(|(_, rest)| !rest.starts_with('Z'))
        })
        .unwrap_or(false)
}

#[test]
fn the_readmes_lab_lines_run_as_written_in_one_shell() {
    let lines = block_after(WALK_THROUGH);
    assert!(
        lines[0].starts_with("eval \"$(vault-triage lab"),
        "{lines:?}"
    );
    // Each line as written, then its exit status; after the eval, what it exported.
    let mut script = String::new();
    for (i, line) in lines.iter().enumerate() {
        script.push_str(line);
        script.push('\n');
        script.push_str(&format!("echo \"@@ {i} rc=$?\"\n"));
        if i == 0 {
            script.push_str("echo \"@@ env KUBECONFIG=$KUBECONFIG PID=$VAULT_TRIAGE_LAB_PID\"\n");
        }
    }
    let bin = PathBuf::from(env!("CARGO_BIN_EXE_vault-triage"));
    let home = tempfile::tempdir().unwrap();
    let path = format!(
        "{}:{}",
        bin.parent().unwrap().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let started = Instant::now();
    let mut child = Command::new("bash")
        .args(["-c", &script])
        .env_clear()
        .env("PATH", path)
        .env("HOME", home.path())
        .env("TMPDIR", home.path())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("bash");
    // The shell must end: `eval "$(…)"` returns once the lab has printed its exports.
    let out = loop {
        if child.try_wait().unwrap().is_some() {
            break child.wait_with_output().unwrap();
        }
        if started.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!(
                "the README's lines did not finish within 60 s:\n{}\n{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    let all = format!("{stdout}\n--- stderr\n{stderr}");
    let rc = |i: usize| -> i32 {
        let tag = format!("@@ {i} rc=");
        stdout
            .lines()
            .find_map(|l| l.strip_prefix(&tag))
            .unwrap_or_else(|| panic!("line {i} never ran:\n{all}"))
            .parse()
            .unwrap()
    };
    let env_line = stdout
        .lines()
        .find_map(|l| l.strip_prefix("@@ env "))
        .unwrap_or_else(|| panic!("{all}"));
    let kubeconfig = env_line
        .split(' ')
        .find_map(|kv| kv.strip_prefix("KUBECONFIG="))
        .unwrap();
    let pid: u32 = env_line
        .split(' ')
        .find_map(|kv| kv.strip_prefix("PID="))
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no VAULT_TRIAGE_LAB_PID exported:\n{all}"));
    let lab_dir = Path::new(kubeconfig).parent().unwrap().to_path_buf();
    let mut failures = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let want = if line.starts_with("vault-triage probe") {
            2
        } else {
            0
        };
        if rc(i) != want {
            failures.push(format!("{line:?} exited {} (expected {want})", rc(i)));
        }
    }
    assert!(failures.is_empty(), "{failures:#?}\n{all}");
    assert!(
        stdout.contains("reviewer token expired"),
        "the probe names the cause:\n{all}"
    );
    assert!(
        stdout.contains("production") && stdout.contains("billing-worker"),
        "kubectl lists the lab's deployments:\n{all}"
    );
    // `lab stop` ended the background lab and removed its temporary directory.
    assert!(!alive(pid), "the lab (pid {pid}) still runs");
    assert!(
        !lab_dir.exists(),
        "{} is left behind after lab stop",
        lab_dir.display()
    );
}

#[test]
fn a_captured_lab_exports_its_pid_and_a_stop_line_and_kill_stops_it_too() {
    let bin = env!("CARGO_BIN_EXE_vault-triage");
    let home = tempfile::tempdir().unwrap();
    let out = Command::new(bin)
        .args(["lab", "--scenario", "healthy"])
        .env("TMPDIR", home.path())
        .stdin(Stdio::null())
        .output()
        .expect("lab");
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    for var in [
        "VAULT_ADDR",
        "VAULT_TOKEN",
        "KUBECONFIG",
        "VAULT_TRIAGE_CONFIG",
    ] {
        assert!(text.contains(&format!("export {var}=")), "{var}:\n{text}");
    }
    let pid: u32 = text
        .lines()
        .find_map(|l| l.strip_prefix("export VAULT_TRIAGE_LAB_PID="))
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no pid:\n{text}"));
    assert!(text.contains("vault-triage lab stop"), "{text}");
    assert!(text.contains(&format!("kill {pid}")), "{text}");
    assert!(alive(pid), "the lab keeps serving after its exports");
    let dir = text
        .lines()
        .find_map(|l| l.strip_prefix("export KUBECONFIG="))
        .map(|p| {
            Path::new(p.trim_matches('\''))
                .parent()
                .unwrap()
                .to_path_buf()
        })
        .unwrap();
    assert!(dir.join("lab.log").exists());

    // The printed kill line stops it as well, and it cleans up after itself.
    let killed = Command::new("kill").arg(pid.to_string()).status().unwrap();
    assert!(killed.success());
    let deadline = Instant::now() + Duration::from_secs(10);
    while (alive(pid) || dir.exists()) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(!alive(pid), "the lab ignores SIGTERM");
    assert!(!dir.exists(), "{} left behind", dir.display());

    // Stopping again says there is nothing to stop, and fails.
    let again = Command::new(bin)
        .args(["lab", "stop"])
        .env("VAULT_TRIAGE_LAB_PID", pid.to_string())
        .output()
        .unwrap();
    assert_eq!(again.status.code(), Some(1), "{again:?}");
    assert!(
        String::from_utf8_lossy(&again.stderr).contains("no lab runs"),
        "{again:?}"
    );
}
