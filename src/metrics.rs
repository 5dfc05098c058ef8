//! Prometheus metrics: a small process-wide registry of counters, gauges and histograms,
//! rendered in the text exposition format at `/metrics`.
//!
//! Metric and label names are fixed strings chosen here; label values come from code (verdict
//! codes, probe names, statuses), never from user input, so cardinality stays bounded.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use crate::config::Platform;
use crate::diagnosis::{Action, VerdictCode};

/// Histogram buckets in seconds.
pub const BUCKETS: [f64; 12] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

type Labels = Vec<(&'static str, String)>;

#[derive(Default)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    sum: f64,
    count: u64,
}

#[derive(Default)]
struct Registry {
    counters: BTreeMap<(&'static str, Labels), u64>,
    gauges: BTreeMap<(&'static str, Labels), f64>,
    histograms: BTreeMap<(&'static str, Labels), Histogram>,
    help: BTreeMap<&'static str, (&'static str, &'static str)>,
}

fn registry() -> &'static Mutex<Registry> {
    static R: OnceLock<Mutex<Registry>> = OnceLock::new();
    R.get_or_init(|| Mutex::new(Registry::declared()))
}

/// The probes of a triage, as `vault_triage_probe_*{probe}` name them.
pub const PROBES: [&str; 12] = [
    "vault_health",
    "auth_mount",
    "auth_config",
    "canary_role",
    "canary_token",
    "canary_review",
    "canary_login",
    "vault_debug_log",
    "secret_read",
    "reviewer",
    "kube_api",
    "workloads",
];
const APPROVAL_OUTCOMES: [&str; 4] = ["recorded", "quorum", "denied", "refused"];
const REMEDIATION_OUTCOMES: [&str; 3] = ["succeeded", "failed", "invalidated"];
const RENEWAL_OUTCOMES: [&str; 3] = ["renewed", "failed", "rejected"];
/// Why a chat API call is retried.
pub const RETRY_REASONS: [&str; 4] = ["rate_limited", "server_error", "unreachable", "timeout"];

impl Registry {
    /// Every documented family with its known series at zero, so dashboards and alerts work
    /// before the first event. The token TTL is NaN until the first check of the token.
    fn declared() -> Registry {
        let mut r = Registry::default();
        let mut counter = |name, help, pairs: &[(&'static str, &str)]| {
            r.help.entry(name).or_insert((help, "counter"));
            r.counters.entry((name, labels(pairs))).or_insert(0);
        };
        for outcome in APPROVAL_OUTCOMES {
            counter(APPROVALS, APPROVALS_HELP, &[("outcome", outcome)]);
        }
        for outcome in RENEWAL_OUTCOMES {
            counter(RENEWALS, RENEWALS_HELP, &[("outcome", outcome)]);
        }
        for platform in Platform::ALL {
            counter(
                CHAT_ERRORS,
                CHAT_ERRORS_HELP,
                &[("platform", platform.as_str()), ("error", "unavailable")],
            );
            for reason in RETRY_REASONS {
                counter(
                    CHAT_RETRIES,
                    CHAT_RETRIES_HELP,
                    &[("platform", platform.as_str()), ("reason", reason)],
                );
            }
        }
        r.help
            .insert(WEBHOOK_REQUESTS, (WEBHOOK_REQUESTS_HELP, "counter"));
        r.help.insert(TOKEN_TTL, (TOKEN_TTL_HELP, "gauge"));
        r.gauges.insert((TOKEN_TTL, Vec::new()), f64::NAN);
        r
    }
}

/// Every series labelled with `cluster`, at zero, for the cluster named `cluster`: `serve`
/// declares its cluster before it serves (the cluster's name is in the config).
pub fn declare_cluster(cluster: &str) {
    with(|r| r.declare_cluster(cluster));
}

impl Registry {
    fn declare_cluster(&mut self, cluster: &str) {
        let mut counter = |name, help, pairs: &[(&'static str, &str)]| {
            self.help.entry(name).or_insert((help, "counter"));
            self.counters.entry((name, labels(pairs))).or_insert(0);
        };
        for code in VerdictCode::ALL {
            counter(
                TRIAGES,
                TRIAGES_HELP,
                &[("cluster", cluster), ("verdict", code.as_str())],
            );
        }
        for probe in PROBES {
            counter(
                PROBE_FAILURES,
                PROBE_FAILURES_HELP,
                &[("cluster", cluster), ("probe", probe)],
            );
        }
        for action in Action::ALL {
            for outcome in REMEDIATION_OUTCOMES {
                counter(
                    REMEDIATIONS,
                    REMEDIATIONS_HELP,
                    &[
                        ("cluster", cluster),
                        ("action", action.as_str()),
                        ("outcome", outcome),
                    ],
                );
            }
        }
        let mut histogram = |name, help, pairs: &[(&'static str, &str)]| {
            self.help.entry(name).or_insert((help, "histogram"));
            self.histograms.entry((name, labels(pairs))).or_default();
        };
        histogram(TRIAGE_SECONDS, TRIAGE_SECONDS_HELP, &[("cluster", cluster)]);
        for probe in PROBES {
            histogram(
                PROBE_SECONDS,
                PROBE_SECONDS_HELP,
                &[("cluster", cluster), ("probe", probe)],
            );
        }
    }
}

const TRIAGES: &str = "vault_triage_triages_total";
const TRIAGES_HELP: &str = "Triages by verdict code.";
const TRIAGE_SECONDS: &str = "vault_triage_triage_duration_seconds";
const TRIAGE_SECONDS_HELP: &str = "Wall time of a triage.";
const PROBE_SECONDS: &str = "vault_triage_probe_duration_seconds";
const PROBE_SECONDS_HELP: &str = "Duration of each probe.";
const PROBE_FAILURES: &str = "vault_triage_probe_failures_total";
const PROBE_FAILURES_HELP: &str = "Probes that got no usable answer.";
const APPROVALS: &str = "vault_triage_approvals_total";
const APPROVALS_HELP: &str = "Approval clicks by outcome.";
const REMEDIATIONS: &str = "vault_triage_remediations_total";
const REMEDIATIONS_HELP: &str = "Remediations by action and outcome.";
const CHAT_ERRORS: &str = "vault_triage_chat_api_errors_total";
const CHAT_ERRORS_HELP: &str = "Chat API errors by platform and error.";
const CHAT_RETRIES: &str = "vault_triage_chat_api_retries_total";
const CHAT_RETRIES_HELP: &str = "Chat API retries by platform and reason.";
/// The bot's own Vault token: seconds left (0: never expires; NaN: not checked yet).
pub const TOKEN_TTL: &str = "vault_triage_vault_token_ttl_seconds";
pub const TOKEN_TTL_HELP: &str =
    "Seconds left on the bot's own Vault token (0: never expires; NaN: not checked yet).";
const RENEWALS: &str = "vault_triage_vault_token_renewals_total";
const RENEWALS_HELP: &str = "Renewals of the bot's own Vault token, by outcome.";

fn with<T>(f: impl FnOnce(&mut Registry) -> T) -> T {
    let mut r = registry().lock().unwrap_or_else(|p| p.into_inner());
    f(&mut r)
}

fn labels(pairs: &[(&'static str, &str)]) -> Labels {
    pairs
        .iter()
        .map(|(k, v)| (*k, v.chars().take(64).collect()))
        .collect()
}

/// Adds one to a counter.
pub fn inc(name: &'static str, help: &'static str, pairs: &[(&'static str, &str)]) {
    with(|r| {
        r.help.entry(name).or_insert((help, "counter"));
        *r.counters.entry((name, labels(pairs))).or_default() += 1;
    });
}

/// Sets a gauge.
pub fn set(name: &'static str, help: &'static str, pairs: &[(&'static str, &str)], value: f64) {
    with(|r| {
        r.help.entry(name).or_insert((help, "gauge"));
        r.gauges.insert((name, labels(pairs)), value);
    });
}

/// Records a duration in a histogram.
pub fn observe(
    name: &'static str,
    help: &'static str,
    pairs: &[(&'static str, &str)],
    d: Duration,
) {
    let v = d.as_secs_f64();
    with(|r| {
        r.help.entry(name).or_insert((help, "histogram"));
        let h = r.histograms.entry((name, labels(pairs))).or_default();
        for (i, b) in BUCKETS.iter().enumerate() {
            if v <= *b {
                h.counts[i] += 1;
            }
        }
        h.sum += v;
        h.count += 1;
    });
}

fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn label_text(l: &Labels, extra: Option<(&str, String)>) -> String {
    let mut parts: Vec<String> = l
        .iter()
        .map(|(k, v)| format!("{k}=\"{}\"", escape(v)))
        .collect();
    if let Some((k, v)) = extra {
        parts.push(format!("{k}=\"{v}\""));
    }
    if parts.is_empty() {
        String::new()
    } else {
        format!("{{{}}}", parts.join(","))
    }
}

/// The text exposition format.
pub fn render() -> String {
    with(|r| {
        sync_webhooks(r);
        r.text()
    })
}

impl Registry {
    /// A fresh process's `/metrics` (tests).
    #[cfg(test)]
    fn declared_text() -> String {
        let mut r = Registry::declared();
        r.declare_cluster("default");
        sync_webhooks(&mut r);
        r.text()
    }

    fn text(&self) -> String {
        let r = self;
        let mut out = String::new();
        for (name, (help, kind)) in &r.help {
            let _ = writeln!(out, "# HELP {name} {help}");
            let _ = writeln!(out, "# TYPE {name} {kind}");
            for ((n, l), v) in r.counters.iter().filter(|((n, _), _)| n == name) {
                let _ = writeln!(out, "{n}{} {v}", label_text(l, None));
            }
            for ((n, l), v) in r.gauges.iter().filter(|((n, _), _)| n == name) {
                let _ = writeln!(out, "{n}{} {v}", label_text(l, None));
            }
            for ((n, l), h) in r.histograms.iter().filter(|((n, _), _)| n == name) {
                for (i, b) in BUCKETS.iter().enumerate() {
                    let _ = writeln!(
                        out,
                        "{n}_bucket{} {}",
                        label_text(l, Some(("le", b.to_string()))),
                        h.counts[i]
                    );
                }
                let _ = writeln!(
                    out,
                    "{n}_bucket{} {}",
                    label_text(l, Some(("le", "+Inf".into()))),
                    h.count
                );
                let _ = writeln!(out, "{n}_sum{} {}", label_text(l, None), h.sum);
                let _ = writeln!(out, "{n}_count{} {}", label_text(l, None), h.count);
            }
        }
        out
    }
}

/// The value of a counter (tests).
pub fn counter_value(name: &'static str, pairs: &[(&'static str, &str)]) -> u64 {
    with(|r| {
        sync_webhooks(r);
        r.counters.get(&(name, labels(pairs))).copied().unwrap_or(0)
    })
}

// The bot's metrics, one function each so names and help stay in one place.

/// One probe of a finished triage: its name, how long it took (when it ran) and whether it
/// got no usable answer.
pub struct ProbeTiming {
    pub probe: &'static str,
    pub ms: Option<u64>,
    pub failed: bool,
}

/// A finished triage of `cluster`: its verdict code, wall time and probes.
pub fn triage(cluster: &str, verdict: &str, duration_ms: u64, probes: &[ProbeTiming]) {
    inc(
        TRIAGES,
        TRIAGES_HELP,
        &[("cluster", cluster), ("verdict", verdict)],
    );
    observe(
        TRIAGE_SECONDS,
        TRIAGE_SECONDS_HELP,
        &[("cluster", cluster)],
        Duration::from_millis(duration_ms),
    );
    for p in probes {
        if let Some(ms) = p.ms {
            observe(
                PROBE_SECONDS,
                PROBE_SECONDS_HELP,
                &[("cluster", cluster), ("probe", p.probe)],
                Duration::from_millis(ms),
            );
        }
        if p.failed {
            inc(
                PROBE_FAILURES,
                PROBE_FAILURES_HELP,
                &[("cluster", cluster), ("probe", p.probe)],
            );
        }
    }
}

/// An approval click's outcome: `recorded`, `quorum`, `denied`, `refused`.
pub fn approval(outcome: &str) {
    inc(APPROVALS, APPROVALS_HELP, &[("outcome", outcome)]);
}

/// A remediation's end: `succeeded`, `failed`, `invalidated`.
/// A remediation's outcome in `cluster`: `succeeded`, `failed`, `invalidated`.
pub fn remediation(cluster: &str, action: &str, outcome: &str) {
    inc(
        REMEDIATIONS,
        REMEDIATIONS_HELP,
        &[
            ("cluster", cluster),
            ("action", action),
            ("outcome", outcome),
        ],
    );
}

const WEBHOOK_REQUESTS: &str = "vault_triage_webhook_requests_total";
const WEBHOOK_REQUESTS_HELP: &str = "Inbound requests by source and HTTP status.";
/// Sources counted without a lock, in the order of [`WEBHOOKS`]: the alert sources, then
/// every chat platform.
const WEBHOOK_SOURCES: [&str; 2 + Platform::ALL.len()] = {
    let mut out = [""; 2 + Platform::ALL.len()];
    out[0] = "alertmanager";
    out[1] = "grafana";
    let mut i = 0;
    while i < Platform::ALL.len() {
        out[2 + i] = Platform::ALL[i].as_str();
        i += 1;
    }
    out
};
/// Statuses counted without a lock; others take the registry's lock.
const WEBHOOK_STATUSES: [u16; 11] = [200, 202, 204, 400, 401, 403, 404, 413, 429, 500, 503];

/// Every inbound request is counted, so the common cases are plain atomics (the intake path
/// stays free of the registry's lock); they join the registry when it is read.
static WEBHOOKS: [[AtomicU64; WEBHOOK_STATUSES.len()]; WEBHOOK_SOURCES.len()] =
    [const { [const { AtomicU64::new(0) }; WEBHOOK_STATUSES.len()] }; WEBHOOK_SOURCES.len()];

/// A webhook or chat request answered with `status`.
pub fn webhook(source: &str, status: u16) {
    let slot = WEBHOOK_SOURCES
        .iter()
        .position(|s| *s == source)
        .and_then(|i| {
            WEBHOOK_STATUSES
                .iter()
                .position(|s| *s == status)
                .map(|j| &WEBHOOKS[i][j])
        });
    match slot {
        Some(counter) => {
            counter.fetch_add(1, Ordering::Relaxed);
        }
        None => inc(
            WEBHOOK_REQUESTS,
            WEBHOOK_REQUESTS_HELP,
            &[("source", source), ("status", &status.to_string())],
        ),
    }
}

/// Copies the lock-free webhook counters into the registry (before it is read).
fn sync_webhooks(r: &mut Registry) {
    for (i, source) in WEBHOOK_SOURCES.iter().enumerate() {
        for (j, status) in WEBHOOK_STATUSES.iter().enumerate() {
            let n = WEBHOOKS[i][j].load(Ordering::Relaxed);
            r.help
                .entry(WEBHOOK_REQUESTS)
                .or_insert((WEBHOOK_REQUESTS_HELP, "counter"));
            r.counters.insert(
                (
                    WEBHOOK_REQUESTS,
                    labels(&[("source", source), ("status", &status.to_string())]),
                ),
                n,
            );
        }
    }
}

/// A chat API call that failed (`error` is the platform's error code or `http_<status>`).
pub fn chat_error(platform: Platform, error: &str) {
    inc(
        CHAT_ERRORS,
        CHAT_ERRORS_HELP,
        &[("platform", platform.as_str()), ("error", error)],
    );
}

/// A chat API call retried (429 or 5xx).
/// One retry of a chat API call; `reason` is one of [`RETRY_REASONS`].
pub fn chat_retry(platform: Platform, reason: &'static str) {
    inc(
        CHAT_RETRIES,
        CHAT_RETRIES_HELP,
        &[("platform", platform.as_str()), ("reason", reason)],
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_and_histograms_render_in_the_text_format() {
        inc(
            "vault_triage_test_total",
            "A test counter.",
            &[("kind", "a\"b")],
        );
        observe(
            "vault_triage_test_seconds",
            "A test histogram.",
            &[],
            Duration::from_millis(30),
        );
        let text = render();
        assert!(
            text.contains("# TYPE vault_triage_test_total counter"),
            "{text}"
        );
        assert!(
            text.contains("vault_triage_test_total{kind=\"a\\\"b\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("vault_triage_test_seconds_bucket{le=\"0.05\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("vault_triage_test_seconds_bucket{le=\"0.025\"} 0"),
            "{text}"
        );
        assert!(text.contains("vault_triage_test_seconds_count 1"), "{text}");
        assert_eq!(
            counter_value("vault_triage_test_total", &[("kind", "a\"b")]),
            1
        );
    }

    #[test]
    fn every_family_the_readme_documents_has_a_sample_from_the_start() {
        let readme = include_str!("../README.md");
        let row = readme
            .lines()
            .find(|l| l.starts_with("| `GET /metrics`"))
            .expect("the README's /metrics row");
        let families: Vec<&str> = row
            .split('`')
            .filter_map(|t| t.split('{').next())
            .filter(|t| t.starts_with("vault_triage_"))
            .collect();
        assert!(families.len() >= 10, "{families:?}");
        let text = Registry::declared_text();
        for family in families {
            assert!(
                text.lines().any(|l| !l.starts_with('#')
                    && (l.starts_with(&format!("{family} "))
                        || l.starts_with(&format!("{family}{{"))
                        || l.starts_with(&format!("{family}_bucket{{")))),
                "{family} has no sample at start:\n{text}"
            );
        }
        assert!(text.contains(
            "vault_triage_chat_api_retries_total{platform=\"slack\",reason=\"unreachable\"} 0"
        ));
        assert!(text.contains("vault_triage_vault_token_ttl_seconds NaN"));
    }

    #[test]
    fn a_declared_cluster_has_its_series_at_zero_and_triages_count_under_it() {
        declare_cluster("prod-eu-test");
        let text = render();
        assert!(
            text.contains(
                "vault_triage_triages_total{cluster=\"prod-eu-test\",verdict=\"reviewer_jwt_expired\"} 0"
            ),
            "{text}"
        );
        assert!(text.contains(
            "vault_triage_remediations_total{cluster=\"prod-eu-test\",action=\"restart-deployments\",outcome=\"failed\"} 0"
        ));
        triage("prod-eu-test", "healthy", 40, &[]);
        assert_eq!(
            counter_value(
                TRIAGES,
                &[("cluster", "prod-eu-test"), ("verdict", "healthy")]
            ),
            1
        );
    }

    #[test]
    fn a_gauge_shows_its_last_value() {
        set("vault_triage_test_gauge", "A test gauge.", &[], 12.0);
        set("vault_triage_test_gauge", "A test gauge.", &[], 7.5);
        let text = render();
        assert!(
            text.contains("# TYPE vault_triage_test_gauge gauge"),
            "{text}"
        );
        assert!(text.contains("vault_triage_test_gauge 7.5\n"), "{text}");
        assert!(!text.contains("vault_triage_test_gauge 12"), "{text}");
    }

    #[test]
    fn webhook_requests_are_counted_with_or_without_the_lock() {
        let before = |status: &str| {
            counter_value(
                "vault_triage_webhook_requests_total",
                &[("source", "grafana"), ("status", status)],
            )
        };
        let (ok, odd) = (before("200"), before("418"));
        webhook("grafana", 200);
        webhook("grafana", 200);
        webhook("grafana", 418);
        assert_eq!(before("200"), ok + 2);
        assert_eq!(before("418"), odd + 1);
        let text = render();
        assert!(
            text.contains("vault_triage_webhook_requests_total{source=\"grafana\",status=\"200\"}"),
            "{text}"
        );
        assert_eq!(
            text.matches("# TYPE vault_triage_webhook_requests_total counter")
                .count(),
            1,
            "{text}"
        );
    }
}
