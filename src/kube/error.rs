//! [`KubeError`]: why a Kubernetes call failed.

use crate::evidence::ProbeError;

/// A failed Kubernetes call.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum KubeError {
    /// 401: the bearer token was not accepted.
    #[error("Kubernetes rejected the credentials (401 Unauthorized)")]
    Unauthorized,
    /// 403: authenticated but not allowed.
    #[error("Kubernetes forbids it: {0}")]
    Forbidden(String),
    /// Any other API error status.
    #[error("Kubernetes answered {code} {reason}: {message}")]
    Api {
        code: u16,
        reason: String,
        message: String,
    },
    /// No connection to the API server.
    #[error("the Kubernetes API is unreachable: {0}")]
    Unreachable(String),
    /// No answer within the call's timeout.
    #[error("the Kubernetes API did not answer within {0} ms")]
    Timeout(u64),
    /// Client-side setup or decoding failure.
    #[error("Kubernetes client error: {0}")]
    Client(String),
}

impl KubeError {
    pub(crate) fn from_kube(err: kube::Error) -> Self {
        match err {
            kube::Error::Api(status) => match status.code {
                401 => KubeError::Unauthorized,
                403 => KubeError::Forbidden(status.message),
                code => KubeError::Api {
                    code,
                    reason: status.reason,
                    message: status.message,
                },
            },
            kube::Error::HyperError(e) => KubeError::Unreachable(crate::error_chain(&e)),
            kube::Error::Service(e) => KubeError::Unreachable(crate::error_chain(e.as_ref())),
            other => KubeError::Client(crate::error_chain(&other)),
        }
    }

    /// The HTTP status, when the API server answered.
    pub fn code(&self) -> Option<u16> {
        match self {
            KubeError::Unauthorized => Some(401),
            KubeError::Forbidden(_) => Some(403),
            KubeError::Api { code, .. } => Some(*code),
            _ => None,
        }
    }
}

/// The evidence model's view of a failed call.
impl From<KubeError> for ProbeError {
    fn from(e: KubeError) -> Self {
        match e {
            KubeError::Unauthorized => ProbeError::Status {
                code: 401,
                message: "Unauthorized".into(),
            },
            KubeError::Forbidden(m) => ProbeError::Status {
                code: 403,
                message: m,
            },
            KubeError::Api { code, message, .. } => ProbeError::Status { code, message },
            KubeError::Unreachable(d) => ProbeError::NoAnswer { detail: d },
            KubeError::Timeout(ms) => ProbeError::Timeout { after_ms: ms },
            KubeError::Client(d) => ProbeError::Other { detail: d },
        }
    }
}
