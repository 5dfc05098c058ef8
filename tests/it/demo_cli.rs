//! `vault-triage demo` tells the whole story against the built-in lab.

use std::process::Command;

/// Fails unless every needle appears in `text`, each after the one before.
fn says_in_order(text: &str, needles: &[&str]) {
    let mut at = 0;
    for needle in needles {
        match text[at..].find(needle) {
            Some(i) => at += i + needle.len(),
            None => panic!("{needle:?} missing (or out of order) in:\n{text}"),
        }
    }
}

#[test]
fn the_demo_tells_the_story_from_alert_to_resolution() {
    let out = Command::new(env!("CARGO_BIN_EXE_vault-triage"))
        .arg("demo")
        .env("VAULT_TRIAGE_LOG", "warn")
        .output()
        .expect("running the demo");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let in_order = [
        "VaultPermissionDenied",
        "reviewer_jwt_expired",
        "Rotate reviewer token",
        "token_reviewer_jwt: *** → *** (fresh token for vault/vault-auth",
        "refused, only she sees: \"you requested this change; someone else must approve it\"",
        "bob (slack) approves: 1 of 2",
        "quorum reached",
        "verify: canary login through auth/kubernetes succeeds (200)",
        "Re-triage: healthy",
        "CronJob production/nightly-report: CronJob: its next run logs in afresh",
        "successfully rolled out",
        "StatefulSet production/ledger-db rolled out (2/2 updated)",
        "DaemonSet production/log-shipper rolled out (3/3 updated)",
        "8 of 8 workloads rolled out",
        "Resolved",
        "Audit trail",
        "approved by carol via discord",
    ];
    says_in_order(&text, &in_order);
    assert!(
        !text.contains("eyJ"),
        "a token leaked into the demo:\n{text}"
    );
}

#[test]
fn a_scenario_without_an_automated_fix_stops_at_the_manual_steps() {
    let out = Command::new(env!("CARGO_BIN_EXE_vault-triage"))
        .args(["demo", "--scenario", "policy-denied"])
        .env("VAULT_TRIAGE_LOG", "warn")
        .output()
        .expect("running the demo");
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("policy_denied"), "{text}");
    assert!(
        text.contains("No automated fix fits this verdict"),
        "{text}"
    );
}

#[test]
fn the_demo_prints_the_messages_it_would_post_on_slack_and_discord() {
    for (platform, needle) in [("slack", "\"blocks\""), ("discord", "\"embeds\"")] {
        let out = Command::new(env!("CARGO_BIN_EXE_vault-triage"))
            .args(["demo", "--chat", platform])
            .env("VAULT_TRIAGE_LOG", "warn")
            .output()
            .expect("running the demo");
        assert!(out.status.success());
        let text = String::from_utf8_lossy(&out.stdout);
        let chat = &text[text
            .find("What the bot posts on")
            .unwrap_or_else(|| panic!("no chat part:\n{text}"))..];
        assert!(chat.contains(needle), "{platform}: {chat}");
        assert!(chat.contains("Rotate reviewer token"), "{platform}: {chat}");
        assert!(
            chat.contains("the approval card, updated to its final state"),
            "{platform}"
        );
        assert!(!chat.contains("eyJ"), "{platform}: a token leaked");
    }
}

#[test]
fn the_fleet_demo_fixes_the_failing_cluster_and_shows_the_fleet_before_and_after() {
    let out = Command::new(env!("CARGO_BIN_EXE_vault-triage"))
        .args([
            "demo",
            "--clusters",
            "prod-a,prod-b=reviewer-jwt-expired,prod-c",
        ])
        .env("VAULT_TRIAGE_LOG", "warn")
        .output()
        .expect("running the demo");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let in_order = [
        "Fleet: 3 clusters · 1 with a fault",
        "🔴 prod-b  reviewer_jwt_expired",
        "Cluster prod-b fails (reviewer_jwt_expired)",
        "cluster prod-b",
        "verify: canary login through auth/kubernetes-prod-b succeeds (200)",
        "Resolved",
        "in cluster prod-b proposed by alice",
        "Fleet: 3 clusters · 0 with a fault",
        "🟢 prod-b  healthy",
    ];
    says_in_order(&text, &in_order);
    // The fix went to prod-b's mount; the other clusters' mounts were never touched.
    assert!(text.contains("auth/kubernetes-prod-b/config"), "{text}");
    assert!(!text.contains("auth/kubernetes-prod-a"), "{text}");
    assert!(!text.contains("auth/kubernetes-prod-c"), "{text}");
}
