//! `kubernetes_host` as the bot sees it: reachability, TLS with the configured CA, and the
//! configured CA compared with the cluster's (`kube-root-ca.crt`).

use std::time::Duration;

use base64::Engine as _;

use crate::evidence::Reachability;

/// Tries `GET <kubernetes_host>/version`. Any HTTP answer, even 401, means reachable.
pub async fn check_kube_api(host: &str, ca_pem: Option<&str>, timeout: Duration) -> Reachability {
    let base = if host.contains("://") {
        host.trim_end_matches('/').to_string()
    } else {
        format!("https://{}", host.trim_end_matches('/'))
    };
    let mut builder = reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout);
    if let Some(pem) = ca_pem.filter(|p| !p.trim().is_empty()) {
        match reqwest::Certificate::from_pem_bundle(pem.as_bytes()) {
            Ok(certs) => {
                builder = builder.tls_built_in_root_certs(false);
                for c in certs {
                    builder = builder.add_root_certificate(c);
                }
            }
            Err(e) => {
                return Reachability::TlsFailed {
                    detail: format!("the configured kubernetes_ca_cert cannot be read: {e}"),
                };
            }
        }
    }
    let client = match builder.build() {
        Ok(c) => c,
        Err(e) => {
            return Reachability::NoAnswer {
                detail: crate::error_chain(&e),
            };
        }
    };
    match client.get(format!("{base}/version")).send().await {
        Ok(resp) => Reachability::Answered {
            status: resp.status().as_u16(),
        },
        Err(e) => {
            let detail = crate::error_chain(&e);
            let lower = detail.to_ascii_lowercase();
            if e.is_timeout() {
                Reachability::NoAnswer {
                    detail: format!("no answer within {} ms", timeout.as_millis()),
                }
            } else if lower.contains("certificate")
                || lower.contains("unknownissuer")
                || lower.contains("tls")
            {
                Reachability::TlsFailed { detail }
            } else {
                Reachability::NoAnswer { detail }
            }
        }
    }
}

/// The DER bodies of every certificate in a PEM bundle.
fn certificates(pem: &str) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut body = String::new();
    let mut inside = false;
    for line in pem.lines().map(str::trim) {
        if line.starts_with("-----BEGIN CERTIFICATE") {
            inside = true;
            body.clear();
        } else if line.starts_with("-----END CERTIFICATE") {
            if let Ok(der) = base64::engine::general_purpose::STANDARD.decode(body.as_bytes()) {
                out.push(der);
            }
            inside = false;
        } else if inside {
            body.push_str(line);
        }
    }
    out
}

/// True when the two PEM bundles have at least one certificate in common.
pub fn ca_bundles_share_a_certificate(configured: &str, cluster: &str) -> bool {
    let cluster = certificates(cluster);
    certificates(configured).iter().any(|c| cluster.contains(c))
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "-----BEGIN CERTIFICATE-----\nQUJD\n-----END CERTIFICATE-----\n";
    const B: &str = "-----BEGIN CERTIFICATE-----\nREVG\n-----END CERTIFICATE-----\n";

    #[test]
    fn bundles_match_on_any_shared_certificate() {
        assert!(ca_bundles_share_a_certificate(A, A));
        assert!(ca_bundles_share_a_certificate(&format!("{B}{A}"), A));
        assert!(!ca_bundles_share_a_certificate(B, A));
        assert!(!ca_bundles_share_a_certificate("", A));
    }

    #[tokio::test]
    async fn a_closed_port_is_no_answer() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        drop(l);
        let r = check_kube_api(
            &format!("http://127.0.0.1:{port}"),
            None,
            Duration::from_secs(2),
        )
        .await;
        assert!(matches!(r, Reachability::NoAnswer { .. }), "{r:?}");
    }
}
