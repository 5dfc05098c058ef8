//! `vault-triage probe` over several clusters with one Vault (`[[clusters]]`, design §11.2),
//! against the lab's fleet: every cluster triaged, the worst on top, exit 2 when any has a
//! fault, `--cluster` for one, and each cluster's debug line its own.

use std::process::Command;

use serde_json::Value;
use vault_triage::lab::{Fleet, LabOptions, Scenario};

fn probe(fleet: &Fleet, files: &vault_triage::lab::LabFiles, args: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_vault-triage"))
        .arg("probe")
        .args(args)
        .envs(fleet.exports(files))
        .env_remove("VAULT_TRIAGE_CLUSTER")
        .env("VAULT_TRIAGE_LOG", "warn")
        .output()
        .expect("running vault-triage");
    (
        out.status.code().unwrap_or(-1),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probe_triages_every_cluster_and_puts_the_worst_on_top() {
    crate::support::init_crypto();
    let clusters = [
        ("prod-a".to_string(), Scenario::Healthy),
        ("prod-b".to_string(), Scenario::ReviewerJwtExpired),
        ("prod-c".to_string(), Scenario::RoleBindingMismatch),
    ];
    let fleet = Fleet::start(&clusters, LabOptions::default())
        .await
        .expect("fleet");
    let dir = tempfile::tempdir().unwrap();
    let files = fleet.write_files(dir.path()).unwrap();

    let (code, out) = probe(&fleet, &files, &["--format", "json"]);
    assert_eq!(code, 2, "{out}");
    let json: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    assert_eq!(json["cluster"], "prod-b", "the first cluster with a fault");
    assert_eq!(json["verdict"]["code"], "reviewer_jwt_expired");
    let got: Vec<(String, String)> = json["clusters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["cluster"].as_str().unwrap().to_string(),
                c["verdict"]["code"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            ("prod-b".into(), "reviewer_jwt_expired".into()),
            ("prod-c".into(), "role_binding_mismatch".into()),
            ("prod-a".into(), "healthy".into()),
        ]
    );
    for c in json["clusters"].as_array().unwrap() {
        assert_eq!(c["verdict"]["confidence"], "high", "{}", c["cluster"]);
        assert_eq!(
            c["evidence"]["target"]["auth_mount"],
            format!("kubernetes-{}", c["cluster"].as_str().unwrap())
        );
    }
    // prod-b's failing login logged its reason at the same time; prod-c must not take it.
    let prod_c = &json["clusters"][1]["evidence"]["vault_log"];
    assert!(
        !prod_c.to_string().contains("service account unauthorized"),
        "{prod_c}"
    );
    // The fleet status: prod-b's reviewer expired, so it is the soonest.
    assert_eq!(json["fleet"][0]["cluster"], "prod-b");
    assert_eq!(json["fleet"].as_array().unwrap().len(), 3);

    // Text: one line per cluster, then the detail of each failing one.
    let (code, text) = probe(&fleet, &files, &[]);
    assert_eq!(code, 2, "{text}");
    assert!(
        text.starts_with("Fleet: 3 clusters · 2 with a fault"),
        "{text}"
    );
    assert!(text.contains("── cluster prod-b ──") && text.contains("── cluster prod-c ──"));
    assert!(!text.contains("── cluster prod-a ──"), "{text}");

    // One cluster: the single-cluster JSON and its own exit code.
    let (code, out) = probe(&fleet, &files, &["--format", "json", "--cluster", "prod-a"]);
    assert_eq!(code, 0, "{out}");
    let json: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(json["verdict"]["code"], "healthy");
    assert!(json.get("clusters").is_none());
    let (code, out) = probe(&fleet, &files, &["--cluster", "prod-x"]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("prod-a, prod-b, prod-c"), "{out}");
    fleet.shutdown().await;
}
