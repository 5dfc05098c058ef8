//! `vault-triage lab` (the simulated Vault + Kubernetes API, with the environment to use it;
//! with `--clusters`, a fleet of simulated clusters sharing one Vault; in the background when
//! its output is captured by `eval "$(vault-triage lab)"`, stopped by `vault-triage lab stop`)
//! and `vault-triage demo` (the whole story against it).

use std::io::{BufRead as _, BufReader, IsTerminal as _};
use std::os::unix::process::CommandExt as _;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::Context as _;

use crate::config::{DemoArgs, LabAction, LabArgs};
use crate::lab::{Fault, Fleet, Lab, LabFiles, LabOptions, Scenario, Side};

fn parse_scenario(name: &str) -> anyhow::Result<Option<Scenario>> {
    if name == "help" {
        return Ok(None);
    }
    name.parse::<Scenario>()
        .map(Some)
        .map_err(|e| anyhow::anyhow!("{e}"))
}

/// What `--clusters` expects.
const CLUSTERS_EXPECTED: &str =
    "(--clusters takes NAME[=SCENARIO],... such as prod-a,prod-b=reviewer-jwt-expired)";

/// `prod-a,prod-b=reviewer-jwt-expired`: the clusters of `--clusters` in order (a cluster
/// without `=SCENARIO` is healthy), checked as a fleet.
fn parse_clusters(spec: &str) -> anyhow::Result<Vec<(String, Scenario)>> {
    let mut clusters = Vec::new();
    for entry in spec.split(',').map(str::trim) {
        let (name, scenario) = match entry.split_once('=') {
            None if entry.is_empty() => {
                anyhow::bail!("--clusters {spec:?}: an empty entry {CLUSTERS_EXPECTED}")
            }
            None => (entry, Scenario::Healthy),
            Some((name, scenario)) => {
                let (name, scenario) = (name.trim(), scenario.trim());
                if scenario.is_empty() {
                    anyhow::bail!(
                        "--clusters {spec:?}: cluster {name:?} has `=` but no scenario {CLUSTERS_EXPECTED}"
                    );
                }
                let scenario = scenario
                    .parse::<Scenario>()
                    .map_err(|e| anyhow::anyhow!("--clusters {spec:?}: cluster {name:?}: {e}"))?;
                (name, scenario)
            }
        };
        clusters.push((name.to_string(), scenario));
    }
    Fleet::check(&clusters)
        .map_err(|e| anyhow::anyhow!("--clusters {spec:?}: {e} {CLUSTERS_EXPECTED}"))?;
    Ok(clusters)
}

/// What `vault-triage lab` is asked to serve.
enum Wanted {
    One(Scenario),
    Fleet(Vec<(String, Scenario)>),
}

/// What `vault-triage lab` serves: one lab, or a fleet whose first lab is the Vault.
#[allow(clippy::large_enum_variant)] // one value per run
enum Served {
    One(Lab),
    Fleet(Fleet),
}

impl Served {
    /// The lab whose Vault the bot uses (where `--fault` applies).
    fn vault_lab(&self) -> &Lab {
        match self {
            Served::One(lab) => lab,
            Served::Fleet(fleet) => fleet.vault_lab(),
        }
    }

    fn write_files(&self, dir: &std::path::Path) -> anyhow::Result<LabFiles> {
        match self {
            Served::One(lab) => lab.write_files(dir),
            Served::Fleet(fleet) => fleet.write_files(dir),
        }
    }

    fn exports(&self, files: &LabFiles) -> Vec<(String, String)> {
        match self {
            Served::One(lab) => lab.exports(files),
            Served::Fleet(fleet) => fleet.exports(files),
        }
    }

    /// `scenario S on URL`, or each cluster with its scenario and URL.
    fn describe(&self) -> String {
        match self {
            Served::One(lab) => format!("scenario {} on {}", lab.scenario(), lab.base_url()),
            Served::Fleet(fleet) => {
                let clusters = fleet
                    .clusters()
                    .iter()
                    .filter_map(|(name, scenario)| {
                        let lab = fleet.lab(name)?;
                        Some(format!("{name} ({scenario}) on {}", lab.base_url()))
                    })
                    .collect::<Vec<_>>()
                    .join(", ");
                format!(
                    "clusters {clusters}, with the Vault on {}",
                    fleet.vault_lab().base_url()
                )
            }
        }
    }

    async fn shutdown(self) {
        match self {
            Served::One(lab) => lab.shutdown().await,
            Served::Fleet(fleet) => fleet.shutdown().await,
        }
    }
}

#[allow(clippy::print_stdout)] // the command's own output
fn print_scenarios() {
    println!("Scenarios (one per verdict code):");
    for s in Scenario::ALL {
        let marker = if *s == Scenario::default() {
            " (default)"
        } else {
            ""
        };
        println!("  {:<24} {}{marker}", s.name(), s.description());
    }
}

/// The line a foreground lab prints (when its output is captured) once its exports are out:
/// the background launcher stops reading there.
const READY_LINE: &str = "# lab ready";
/// How a background lab is found again by `vault-triage lab stop`.
const PID_VAR: &str = "VAULT_TRIAGE_LAB_PID";
#[allow(clippy::print_stdout)] // the command's own output: `eval "$(vault-triage lab)"`
pub async fn command_lab(args: LabArgs) -> anyhow::Result<i32> {
    if args.action == Some(LabAction::Stop) {
        return stop_background_lab();
    }
    // Checked before a background lab starts, so a bad value fails here.
    let wanted = match args.clusters.as_deref() {
        Some(spec) => Wanted::Fleet(parse_clusters(spec)?), // `--scenario` is ignored
        None => match parse_scenario(&args.scenario)? {
            Some(scenario) => Wanted::One(scenario),
            None => {
                print_scenarios();
                return Ok(0);
            }
        },
    };
    let captured = !std::io::stdout().is_terminal();
    if captured && !args.foreground {
        return start_in_background(&args);
    }
    let faults = args
        .faults
        .iter()
        .map(|spec| parse_fault(spec))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let opts = LabOptions {
        listen: args.listen,
        latency: Duration::from_millis(args.latency_ms),
        bulk_workloads: args.bulk_workloads,
        bulk_external_secrets: args.bulk_external_secrets,
        bulk_pods: args.bulk_pods,
    };
    let lab = match wanted {
        Wanted::One(scenario) => Served::One(Lab::start(scenario, opts).await?),
        Wanted::Fleet(clusters) => Served::Fleet(Fleet::start(&clusters, opts).await?),
    };
    for (side, fault) in faults {
        lab.vault_lab().set_fault(side, Some(fault));
    }
    let (dir, owned) = match &args.dir {
        Some(d) => (d.clone(), args.remove_dir_on_exit),
        None => (new_lab_dir(), true),
    };
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let files = lab.write_files(&dir)?;
    for (name, value) in lab.exports(&files) {
        println!("export {name}={}", shell_quote(&value));
    }
    if captured {
        println!("{READY_LINE}");
    }
    eprintln!(
        "lab: {} (latency {} ms); files in {}. Ctrl-C stops it.",
        lab.describe(),
        args.latency_ms,
        dir.display()
    );
    super::shutdown_signal().await;
    lab.shutdown().await;
    if owned {
        let _ = std::fs::remove_dir_all(&dir);
    }
    Ok(0)
}

/// A new temporary directory name for the lab's files.
fn new_lab_dir() -> PathBuf {
    std::env::temp_dir().join(format!("vault-triage-lab-{}", std::process::id()))
}

/// `eval "$(vault-triage lab)"`: starts the lab as a background process of its own (its own
/// process group, output to `lab.log` in its directory), prints its exports with the pid and
/// how to stop it, and returns, so the shell's `eval` gets its input and goes on.
#[allow(clippy::print_stdout)] // the command's own output
fn start_in_background(args: &LabArgs) -> anyhow::Result<i32> {
    let (dir, owned) = match &args.dir {
        Some(d) => (d.clone(), false),
        None => (new_lab_dir(), true),
    };
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let log_path = dir.join("lab.log");
    let log = std::fs::File::create(&log_path)
        .with_context(|| format!("creating {}", log_path.display()))?;
    let mut cmd = Command::new(std::env::current_exe().context("finding the binary")?);
    cmd.args(["lab", "--foreground", "--scenario", &args.scenario])
        .args(["--listen", &args.listen.to_string()])
        .args(["--latency-ms", &args.latency_ms.to_string()])
        .args(["--bulk-workloads", &args.bulk_workloads.to_string()])
        .args([
            "--bulk-external-secrets",
            &args.bulk_external_secrets.to_string(),
        ])
        .args(["--bulk-pods", &args.bulk_pods.to_string()])
        .arg("--dir")
        .arg(&dir);
    if let Some(clusters) = &args.clusters {
        cmd.args(["--clusters", clusters]);
    }
    for f in &args.faults {
        cmd.args(["--fault", f]);
    }
    if owned {
        cmd.arg("--remove-dir-on-exit");
    }
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(log)
        .process_group(0);
    let mut child = cmd.spawn().context("starting the lab in the background")?;
    let out = child.stdout.take().context("the lab's output")?;
    let mut exports = Vec::new();
    for line in BufReader::new(out).lines() {
        let line = line.context("reading the lab's output")?;
        if line == READY_LINE {
            for e in &exports {
                println!("{e}");
            }
            let pid = child.id();
            println!("export {PID_VAR}={pid}");
            println!(
                "# the lab serves in the background (pid {pid}, log {}); stop it with: vault-triage lab stop   (or: kill {pid})",
                log_path.display()
            );
            return Ok(0);
        }
        exports.push(line);
    }
    let status = child.wait().context("waiting for the lab")?;
    let log = std::fs::read_to_string(&log_path).unwrap_or_default();
    if owned {
        let _ = std::fs::remove_dir_all(&dir);
    }
    anyhow::bail!(
        "the lab did not start ({status}): {}",
        log.lines().last().unwrap_or("no output")
    )
}

/// `vault-triage lab stop`: the background lab of this shell (`VAULT_TRIAGE_LAB_PID`).
#[allow(clippy::print_stdout)] // the command's own output
fn stop_background_lab() -> anyhow::Result<i32> {
    let pid: u32 = std::env::var(PID_VAR)
        .ok()
        .and_then(|p| p.trim().parse().ok())
        .with_context(|| {
            format!(
                "{PID_VAR} is not set: run `vault-triage lab stop` in the shell that ran eval \"$(vault-triage lab)\""
            )
        })?;
    let proc = PathBuf::from(format!("/proc/{pid}"));
    let cmdline = std::fs::read(proc.join("cmdline")).unwrap_or_default();
    let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
    if !(runs(pid) && cmdline.contains("vault-triage") && cmdline.contains(" lab ")) {
        anyhow::bail!("no lab runs as pid {pid} (it has stopped already)");
    }
    let killed = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .context("running kill")?;
    anyhow::ensure!(killed.success(), "kill -TERM {pid} failed");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while runs(pid) && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    anyhow::ensure!(!runs(pid), "the lab (pid {pid}) did not stop within 10 s");
    println!("# the lab (pid {pid}) stopped");
    println!("unset {PID_VAR}");
    Ok(0)
}

/// Whether a process runs (a zombie waiting for its new parent to reap it does not).
fn runs(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|stat| {
            stat.rsplit_once(") ")
                .is_some_and(|(_, rest)| !rest.starts_with('Z'))
        })
        .unwrap_or(false)
}

/// `vault=hang`, `kubernetes=503`.
fn parse_fault(spec: &str) -> anyhow::Result<(Side, Fault)> {
    let (side, kind) = spec
        .split_once('=')
        .ok_or_else(|| anyhow::anyhow!("--fault {spec:?}: expected SIDE=KIND, e.g. vault=hang"))?;
    let side = match side {
        "vault" => Side::Vault,
        "kubernetes" | "kube" => Side::Kubernetes,
        other => anyhow::bail!("--fault: unknown side {other:?} (vault or kubernetes)"),
    };
    let fault = match kind {
        "hang" => Fault::Hang,
        code => match code.parse::<u16>() {
            Ok(c) if (400..600).contains(&c) => Fault::Status(c),
            _ => anyhow::bail!("--fault: unknown kind {code:?} (hang or an HTTP status 400-599)"),
        },
    };
    Ok((side, fault))
}

fn shell_quote(s: &str) -> String {
    if s.chars()
        .all(|c| c.is_ascii_alphanumeric() || "/:._-=,@".contains(c))
    {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

pub async fn command_demo(args: DemoArgs) -> anyhow::Result<i32> {
    let Some(scenario) = parse_scenario(&args.scenario)? else {
        print_scenarios();
        return Ok(0);
    };
    match args.clusters.as_deref().filter(|s| !s.trim().is_empty()) {
        Some(spec) => crate::demo::run_fleet(&parse_clusters(spec)?, args.chat).await?,
        None => crate::demo::run(scenario, args.chat).await?,
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn faults_parse_and_bad_ones_say_what_is_expected() {
        assert!(matches!(
            parse_fault("vault=hang"),
            Ok((Side::Vault, Fault::Hang))
        ));
        assert!(matches!(
            parse_fault("kubernetes=503"),
            Ok((Side::Kubernetes, Fault::Status(503)))
        ));
        for bad in ["vault", "dns=hang", "vault=200", "vault=slow"] {
            let err = parse_fault(bad).unwrap_err().to_string();
            assert!(err.contains("--fault"), "{bad}: {err}");
        }
    }

    #[test]
    fn clusters_parse_in_order_and_a_cluster_without_a_scenario_is_healthy() {
        let clusters = parse_clusters("prod-a, prod-b=reviewer-jwt-expired,eu=role_not_found")
            .expect("parses");
        assert_eq!(
            clusters,
            [
                ("prod-a".to_string(), Scenario::Healthy),
                ("prod-b".to_string(), Scenario::ReviewerJwtExpired),
                ("eu".to_string(), Scenario::RoleNotFound),
            ]
        );
        assert_eq!(
            parse_clusters("solo=vault-sealed").expect("parses"),
            [("solo".to_string(), Scenario::VaultSealed)]
        );
    }

    #[test]
    fn bad_cluster_specs_say_what_is_expected() {
        for (bad, reason) in [
            ("", "empty entry"),
            ("a,,b", "empty entry"),
            ("a,", "empty entry"),
            ("a=", "no scenario"),
            ("a=nope", "unknown scenario `nope`"),
            ("Prod", "lowercase letters"),
            ("=healthy", "lowercase letters"),
            ("a,a", "given twice"),
            (
                "a,b=vault-sealed",
                "give `vault-sealed` to the first cluster",
            ),
        ] {
            let err = parse_clusters(bad).unwrap_err().to_string();
            assert!(err.starts_with("--clusters "), "{bad}: {err}");
            assert!(err.contains(reason), "{bad}: {err}");
            if !reason.starts_with("unknown scenario") {
                assert!(err.contains("NAME[=SCENARIO]"), "{bad}: {err}");
            }
        }
    }

    #[test]
    fn exports_are_quoted_only_when_the_shell_needs_it() {
        assert_eq!(
            shell_quote("http://127.0.0.1:8200"),
            "http://127.0.0.1:8200"
        );
        assert_eq!(shell_quote("/tmp/a b"), "'/tmp/a b'");
        assert_eq!(shell_quote("it's"), "'it'\\''s'");
    }
}
