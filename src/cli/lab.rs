//! `vault-triage lab` (the simulated Vault + Kubernetes API, with the environment to use it)
//! and `vault-triage demo` (the whole story against it).

use std::time::Duration;

use anyhow::Context as _;

use crate::config::{DemoArgs, LabArgs};
use crate::lab::{Fault, Lab, LabOptions, Scenario, Side};

fn parse_scenario(name: &str) -> anyhow::Result<Option<Scenario>> {
    if name == "help" {
        return Ok(None);
    }
    name.parse::<Scenario>()
        .map(Some)
        .map_err(|e| anyhow::anyhow!("{e}"))
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

#[allow(clippy::print_stdout)] // the command's own output: `eval "$(vault-triage lab)"`
pub async fn command_lab(args: LabArgs) -> anyhow::Result<i32> {
    let Some(scenario) = parse_scenario(&args.scenario)? else {
        print_scenarios();
        return Ok(0);
    };
    let lab = Lab::start(
        scenario,
        LabOptions {
            listen: args.listen,
            latency: Duration::from_millis(args.latency_ms),
        },
    )
    .await?;
    for spec in &args.faults {
        let (side, fault) = parse_fault(spec)?;
        lab.set_fault(side, Some(fault));
    }
    let dir = match args.dir {
        Some(d) => d,
        None => std::env::temp_dir().join(format!("vault-triage-lab-{}", std::process::id())),
    };
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let files = lab.write_files(&dir)?;
    for (name, value) in lab.exports(&files) {
        println!("export {name}={}", shell_quote(&value));
    }
    eprintln!(
        "lab: scenario {} on {} (latency {} ms); files in {}. Ctrl-C stops it.",
        scenario,
        lab.base_url(),
        args.latency_ms,
        dir.display()
    );
    super::shutdown_signal().await;
    lab.shutdown().await;
    Ok(0)
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
    crate::demo::run(scenario, args.chat).await?;
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
    fn exports_are_quoted_only_when_the_shell_needs_it() {
        assert_eq!(
            shell_quote("http://127.0.0.1:8200"),
            "http://127.0.0.1:8200"
        );
        assert_eq!(shell_quote("/tmp/a b"), "'/tmp/a b'");
        assert_eq!(shell_quote("it's"), "'it'\\''s'");
    }
}
