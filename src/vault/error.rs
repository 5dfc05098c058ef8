//! [`VaultError`]: why a Vault call failed, typed so the diagnosis can branch on it.

use crate::evidence::ProbeError;

/// A failed Vault call.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum VaultError {
    /// No connection: refused, DNS failure, reset.
    #[error("Vault is unreachable: {0}")]
    Unreachable(String),
    /// No answer within the call's timeout.
    #[error("Vault did not answer within {0} ms")]
    Timeout(u64),
    /// TLS handshake or certificate failure.
    #[error("TLS to Vault failed: {0}")]
    Tls(String),
    /// Vault answered with an error status; `errors` is its `errors` array.
    #[error("Vault answered {status}: {}", errors.join("; "))]
    Api { status: u16, errors: Vec<String> },
    /// Vault answered something this client cannot read.
    #[error("unexpected answer from Vault: {0}")]
    Decode(String),
}

impl VaultError {
    /// Builds the error for a non-success HTTP answer from its body.
    pub(crate) fn from_response(status: u16, body: &str) -> Self {
        #[derive(serde::Deserialize)]
        struct Errors {
            #[serde(default)]
            errors: Vec<String>,
        }
        let errors = serde_json::from_str::<Errors>(body)
            .map(|e| e.errors.iter().map(|m| one_line(m)).collect())
            .unwrap_or_else(|_| {
                let trimmed = body.trim();
                if trimmed.is_empty() {
                    Vec::new()
                } else {
                    vec![trimmed.chars().take(300).collect()]
                }
            });
        VaultError::Api { status, errors }
    }

    /// Classifies a transport error from reqwest.
    pub(crate) fn from_transport(err: &reqwest::Error, timeout_ms: u64) -> Self {
        if err.is_timeout() {
            return VaultError::Timeout(timeout_ms);
        }
        let chain = crate::error_chain(err);
        let lower = chain.to_ascii_lowercase();
        if lower.contains("certificate") || lower.contains("tls") || lower.contains("handshake") {
            VaultError::Tls(root_cause(err))
        } else if err.is_decode() {
            VaultError::Decode(chain)
        } else {
            VaultError::Unreachable(root_cause(err))
        }
    }

    /// The HTTP status, when Vault answered at all.
    pub fn status(&self) -> Option<u16> {
        match self {
            VaultError::Api { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// The first error message Vault gave, if any.
    pub fn message(&self) -> Option<&str> {
        match self {
            VaultError::Api { errors, .. } => errors.first().map(String::as_str),
            _ => None,
        }
    }

    /// True when Vault never answered (the network or TLS failed, or it timed out).
    pub fn is_no_answer(&self) -> bool {
        matches!(
            self,
            VaultError::Unreachable(_) | VaultError::Timeout(_) | VaultError::Tls(_)
        )
    }
}

/// Vault's multi-error text (`1 error occurred:\n\t* permission denied\n\n`) as one line
/// (`permission denied`); several errors are joined with `; `.
pub(crate) fn one_line(message: &str) -> String {
    let head = message.lines().next().unwrap_or_default().trim();
    let items: Vec<&str> = message
        .lines()
        .filter_map(|l| l.trim_start().strip_prefix("* "))
        .map(str::trim)
        .collect();
    if head.ends_with("occurred:") && !items.is_empty() {
        items.join("; ")
    } else {
        message.split_whitespace().collect::<Vec<_>>().join(" ")
    }
}

/// What went wrong on the wire, without the request's URL (the evidence names the address
/// once) or reqwest's wrapping: `tcp connect error: Connection refused (os error 111)`.
fn root_cause(err: &reqwest::Error) -> String {
    let mut cause: &(dyn std::error::Error + 'static) = err;
    let mut parent = None;
    while let Some(next) = cause.source() {
        parent = Some(cause);
        cause = next;
    }
    let text = cause.to_string();
    // An io::Error's text alone ("Connection refused (os error 111)") loses what failed.
    match parent.map(|p| p.to_string()) {
        Some(p) if p.ends_with(&text) && !p.contains("http://") && !p.contains("https://") => p,
        Some(p) if p.len() < 40 && !p.contains("://") => format!("{p}: {text}"),
        _ => text,
    }
}

/// The evidence model's view of a failed call.
impl From<VaultError> for ProbeError {
    fn from(e: VaultError) -> Self {
        match e {
            VaultError::Unreachable(d) | VaultError::Tls(d) => ProbeError::NoAnswer { detail: d },
            VaultError::Timeout(ms) => ProbeError::Timeout { after_ms: ms },
            VaultError::Api { status, errors } => ProbeError::Status {
                code: status,
                message: errors.join("; "),
            },
            VaultError::Decode(d) => ProbeError::Other { detail: d },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vault_error_bodies_are_read_into_their_messages() {
        let e = VaultError::from_response(403, "{\"errors\":[\"permission denied\"]}\n");
        assert_eq!(e.status(), Some(403));
        assert_eq!(e.message(), Some("permission denied"));
    }

    #[test]
    fn vaults_multi_error_text_becomes_one_line() {
        let e = VaultError::from_response(
            403,
            "{\"errors\":[\"1 error occurred:\\n\\t* permission denied\\n\\n\"]}",
        );
        assert_eq!(e.message(), Some("permission denied"));
        assert_eq!(one_line("2 errors occurred:\n\t* a\n\t* b\n\n"), "a; b");
        assert_eq!(
            one_line("invalid role name \"x\""),
            "invalid role name \"x\""
        );
    }

    #[tokio::test]
    async fn a_refused_connection_is_said_once_without_the_url() {
        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = closed.local_addr().unwrap();
        drop(closed);
        let err = reqwest::get(format!("http://{addr}/v1/sys/health"))
            .await
            .unwrap_err();
        let e = VaultError::from_transport(&err, 1000);
        let text = e.to_string();
        assert!(text.contains("onnection refused"), "{text}");
        assert!(!text.contains("/v1/sys/health"), "{text}");
        assert_eq!(text.matches("refused").count(), 1, "{text}");
    }

    #[test]
    fn a_non_json_error_body_is_kept_short() {
        let body = "x".repeat(1000);
        let e = VaultError::from_response(502, &body);
        assert_eq!(e.message().unwrap().len(), 300);
    }
}
