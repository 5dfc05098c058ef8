//! `vault-triage audit` from a terminal: a state directory that does not exist or holds no
//! state is an error (exit 1, nothing created), not an empty trail.

use std::process::Command;

use vault_triage::config::StateSection;
use vault_triage::store::Store;

fn audit(state_dir: &std::path::Path) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_vault-triage"))
        .args(["audit", "--state-dir"])
        .arg(state_dir)
        .env_remove("VAULT_TRIAGE_CONFIG")
        .env_remove("VAULT_TRIAGE_STATE_URL")
        .env("VAULT_TRIAGE_LOG", "warn")
        .output()
        .expect("running vault-triage");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_audit_of_a_directory_without_state_says_so_and_creates_nothing() {
    let scratch = tempfile::tempdir().unwrap();
    let missing = scratch.path().join("no-such-dir");
    let (code, stdout, stderr) = audit(&missing);
    assert_eq!(code, 1, "{stdout}{stderr}");
    assert!(stderr.contains("does not exist"), "{stderr}");
    assert!(stderr.contains(&missing.display().to_string()), "{stderr}");
    assert!(!missing.exists(), "the audit created {}", missing.display());

    let empty = scratch.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let (code, _, stderr) = audit(&empty);
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("holds no state"), "{stderr}");
    assert_eq!(std::fs::read_dir(&empty).unwrap().count(), 0);

    // A real (empty) state is an empty trail: exit 0.
    let state = scratch.path().join("state");
    let store = Store::open(&StateSection {
        dir: state.clone(),
        ..StateSection::default()
    })
    .await
    .unwrap();
    drop(store);
    let (code, stdout, stderr) = audit(&state);
    assert_eq!(code, 0, "{stdout}{stderr}");
}
