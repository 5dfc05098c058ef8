//! Vault HTTP client (reqwest): the calls the probes and the remediation make.
//!
//! `client` holds [`VaultClient`] and one method per Vault endpoint; `types` the answers
//! that stay in the client (the answers the diagnosis reads are `crate::evidence`'s; the
//! reviewer JWT is never among them: Vault never returns it); `error`
//! the typed failure ([`VaultError`]) the diagnosis branches on; `monitor` the
//! `sys/monitor` stream held open while a canary login runs; `token_source` where the bot's
//! own token comes from (fixed, or a file re-read when it changes); `token_care` the renewal
//! of that token while `serve` runs.

mod client;
mod error;
mod monitor;
pub mod token_care;
mod token_source;
mod types;

pub use client::{Leader, VaultClient};
pub use error::VaultError;
pub use monitor::MonitorStream;
pub use token_source::TokenSource;
pub use types::{LoginSuccess, TokenInfo};
