//! Vault HTTP client (reqwest): the calls the probes and the remediation make.
//!
//! `client` holds [`VaultClient`] and one method per Vault endpoint; `types` the response
//! shapes we read (the reviewer JWT is never among them: Vault never returns it); `error`
//! the typed failure ([`VaultError`]) the diagnosis branches on; `monitor` the
//! `sys/monitor` stream held open while a canary login runs.

mod client;
mod error;
mod monitor;
mod types;

pub use client::VaultClient;
pub use error::VaultError;
pub use monitor::MonitorStream;
pub use types::{AuthConfig, AuthMount, Health, LoginSuccess, Role, SecretRead, TokenInfo};
