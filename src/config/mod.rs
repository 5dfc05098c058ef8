//! Configuration: the command line, the environment and the TOML file, in one place.
//!
//! This is the only module that reads the process environment (through clap's `env`
//! attributes) or the config file, and it imports no other module of the crate: everything
//! else receives typed values. [`Cli`] is what was asked, [`ConnectionArgs`] resolves into
//! [`VaultSettings`] and a kubeconfig path, [`FileConfig`] is the strict TOML file of design
//! §4. [`Secret`] wraps every secret as soon as it is read; [`Platform`] names the chat
//! platforms.

mod cli;
mod clusters;
mod file;
mod platform;
mod secret;

pub use cli::*;
pub use clusters::{Cluster, ClusterSection, DEFAULT_CLUSTER};
pub use file::*;
pub use platform::Platform;
pub use secret::Secret;
