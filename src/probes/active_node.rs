//! `sys/monitor` from the node that can stream it (facts/vault-ha.md): a standby answers 400
//! "streaming not supported", and only the active node logs the plugin's reason for a login
//! (logins are forwarded to it). The active node is `[vault] active_addr` when set, else the
//! `leader_address` of `sys/leader`, asked only when `VAULT_ADDR` turns out to be a standby;
//! it is reached with the same token, CA and namespace.

use crate::evidence::{MonitorNode, NodeFound, ProbeError};
use crate::vault::{MonitorStream, VaultClient, VaultError};

/// A standby's refusal to stream.
fn is_standby_refusal(e: &VaultError) -> bool {
    e.status() == Some(400)
        && e.message()
            .is_some_and(|m| m.contains("streaming not supported"))
}

/// Opens the DEBUG log stream at the node that can serve it; says which node that is.
pub async fn open_monitor(
    vault: &VaultClient,
    active_addr: Option<&str>,
) -> Result<(MonitorStream, MonitorNode), ProbeError> {
    if let Some(addr) = active_addr.map(str::trim).filter(|a| !a.is_empty()) {
        let node = MonitorNode {
            addr: addr.trim_end_matches('/').to_string(),
            found: NodeFound::Configured,
        };
        return match vault.at(addr).monitor_debug().await {
            Ok(stream) => Ok((stream, node)),
            Err(e) => Err(ProbeError::Other {
                detail: format!(
                    "the active node {} (vault.active_addr) did not stream sys/monitor: {e}",
                    node.addr
                ),
            }),
        };
    }
    let refusal = match vault.monitor_debug().await {
        Ok(stream) => {
            let node = MonitorNode {
                addr: vault.addr().to_string(),
                found: NodeFound::VaultAddr,
            };
            return Ok((stream, node));
        }
        Err(e) if is_standby_refusal(&e) => e,
        Err(e) => return Err(e.into()),
    };
    let leader = match vault.leader().await {
        Ok(l) => l,
        Err(e) => {
            return Err(ProbeError::Other {
                detail: format!(
                    "VAULT_ADDR is a standby, which cannot stream sys/monitor, and sys/leader did not name the active node: {e}"
                ),
            });
        }
    };
    let addr = leader.leader_address.trim().trim_end_matches('/');
    if !leader.ha_enabled || leader.is_self || addr.is_empty() {
        return Err(refusal.into());
    }
    match vault.at(addr).monitor_debug().await {
        Ok(stream) => Ok((
            stream,
            MonitorNode {
                addr: addr.to_string(),
                found: NodeFound::SysLeader,
            },
        )),
        Err(e) => Err(ProbeError::Other {
            detail: format!(
                "VAULT_ADDR is a standby, which cannot stream sys/monitor, and the active node {addr} (from sys/leader) did not: {e}"
            ),
        }),
    }
}
