//! [`TokenSource`]: where the bot's own Vault token comes from for each request.
//!
//! `VAULT_TOKEN` is fixed for the life of the process. `VAULT_TOKEN_FILE` is a file that Vault
//! Agent (or an operator) may rewrite at any time, e.g. after a re-login: it is checked on
//! every request and re-read when its modification time or size changed, so a replaced token
//! is picked up without a restart. A file that becomes unreadable or empty keeps the last good
//! token (with a warning) rather than sending none.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use crate::config::{Secret, TokenSetting};

/// The bot's Vault token: none, fixed, or read from a file that may change.
#[derive(Clone, Default)]
pub enum TokenSource {
    /// No token (only unauthenticated calls such as `sys/health` work).
    #[default]
    None,
    /// A token given once (`VAULT_TOKEN`, or a canary's client token).
    Fixed(Secret),
    /// A token file, re-read when it changes (`VAULT_TOKEN_FILE`).
    File(Arc<TokenFile>),
}

impl std::fmt::Debug for TokenSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TokenSource::None => f.write_str("TokenSource::None"),
            TokenSource::Fixed(_) => f.write_str("TokenSource::Fixed(***)"),
            TokenSource::File(file) => write!(f, "TokenSource::File({})", file.path.display()),
        }
    }
}

impl TokenSource {
    /// The source a [`TokenSetting`] names; a token file is read once now (an error at start).
    pub fn from_setting(setting: &TokenSetting) -> anyhow::Result<Self> {
        match setting {
            TokenSetting::None => Ok(TokenSource::None),
            TokenSetting::Fixed(token) => Ok(TokenSource::Fixed(token.clone())),
            TokenSetting::File(path) => TokenSource::file(path),
        }
    }

    /// Reads the token file once now; a missing, unreadable or empty file is an error here
    /// (at start), and only a warning later.
    pub fn file(path: &Path) -> anyhow::Result<Self> {
        let (stamp, token) = read(path).map_err(|e| {
            anyhow::anyhow!(
                "VAULT_TOKEN_FILE {} cannot be read ({e:#}): point it at the file holding the bot's Vault token",
                path.display()
            )
        })?;
        Ok(TokenSource::File(Arc::new(TokenFile {
            path: path.to_path_buf(),
            last: Mutex::new(Loaded { stamp, token }),
        })))
    }

    /// The token to send now.
    pub fn current(&self) -> Option<Secret> {
        match self {
            TokenSource::None => None,
            TokenSource::Fixed(token) => Some(token.clone()),
            TokenSource::File(file) => Some(file.current()),
        }
    }
}

/// A token file and the token last read from it.
pub struct TokenFile {
    path: PathBuf,
    last: Mutex<Loaded>,
}

struct Loaded {
    stamp: Stamp,
    token: Secret,
}

/// What tells a rewritten file apart: modification time and size.
type Stamp = (Option<SystemTime>, u64);

impl TokenFile {
    fn current(&self) -> Secret {
        let mut last = self.last.lock().unwrap_or_else(|p| p.into_inner());
        let stamp = match std::fs::metadata(&self.path) {
            Ok(m) => (m.modified().ok(), m.len()),
            Err(e) => {
                tracing::warn!(path = %self.path.display(), error = %e, "the Vault token file cannot be read; using the token read before");
                return last.token.clone();
            }
        };
        if stamp != last.stamp {
            match read(&self.path) {
                Ok((stamp, token)) => {
                    tracing::info!(path = %self.path.display(), "the Vault token file changed; using the new token");
                    *last = Loaded { stamp, token };
                }
                Err(e) => {
                    tracing::warn!(path = %self.path.display(), error = %format!("{e:#}"), "the Vault token file changed but holds no usable token; using the token read before");
                    // Do not re-read on every request until the file changes again.
                    last.stamp = stamp;
                }
            }
        }
        last.token.clone()
    }
}

fn read(path: &Path) -> anyhow::Result<(Stamp, Secret)> {
    let meta = std::fs::metadata(path)?;
    let raw = std::fs::read_to_string(path)?;
    let token = raw.trim();
    anyhow::ensure!(!token.is_empty(), "the file is empty");
    Ok(((meta.modified().ok(), meta.len()), Secret::new(token)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rewritten_token_file_is_picked_up_and_a_broken_one_keeps_the_last_token() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token");
        // Each write changes the size, so the change is seen whatever the mtime granularity.
        std::fs::write(&path, "s.first\n").unwrap();
        let source = TokenSource::file(&path).unwrap();
        assert_eq!(source.current().unwrap().expose(), "s.first");

        std::fs::write(&path, "s.second-token\n").unwrap();
        assert_eq!(source.current().unwrap().expose(), "s.second-token");

        // Emptied (Agent truncates before writing): the last good token stays.
        std::fs::write(&path, "").unwrap();
        assert_eq!(source.current().unwrap().expose(), "s.second-token");

        // Gone: the last good token stays.
        std::fs::remove_file(&path).unwrap();
        assert_eq!(source.current().unwrap().expose(), "s.second-token");

        // Back with a new token.
        std::fs::write(&path, "s.third").unwrap();
        assert_eq!(source.current().unwrap().expose(), "s.third");
    }

    #[test]
    fn a_missing_or_empty_file_is_an_error_at_start() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token");
        assert!(TokenSource::file(&path).is_err());
        std::fs::write(&path, "  \n").unwrap();
        let err = TokenSource::file(&path).err().unwrap();
        assert!(format!("{err:#}").contains("empty"), "{err:#}");
    }

    #[test]
    fn debug_never_shows_the_token() {
        let shown = format!("{:?}", TokenSource::Fixed(Secret::new("s.secret")));
        assert!(!shown.contains("s.secret"), "{shown}");
    }
}
