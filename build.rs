//! The switches that skip the integration tests needing a real OpenBao
//! (`VAULT_TRIAGE_SKIP_OPENBAO=1`), Alertmanager (`VAULT_TRIAGE_SKIP_ALERTMANAGER=1`) or
//! PostgreSQL (`VAULT_TRIAGE_SKIP_POSTGRES=1`) compile those tests as ignored, so a skipped test
//! shows as ignored, never as passed.

fn main() {
    for (var, cfg) in [
        ("VAULT_TRIAGE_SKIP_OPENBAO", "skip_openbao"),
        ("VAULT_TRIAGE_SKIP_ALERTMANAGER", "skip_alertmanager"),
        ("VAULT_TRIAGE_SKIP_POSTGRES", "skip_postgres"),
    ] {
        println!("cargo::rustc-check-cfg=cfg({cfg})");
        println!("cargo::rerun-if-env-changed={var}");
        if std::env::var(var).as_deref() == Ok("1") {
            println!("cargo::rustc-cfg={cfg}");
        }
    }
}
