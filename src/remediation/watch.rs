//! The reviewer watch: prevention. On a schedule it checks when the reviewer token Vault uses
//! expires and warns a configurable time before, with the rotate plan ready to approve.
//!
//! The expiry comes from the newest of what the bot knows: the token in the reviewer's
//! Secret, and the token the bot itself minted at its last rotation (journaled). Vault never
//! returns the stored token, so a rotation made outside the bot is seen only through the
//! Secret.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Default warning lead time.
pub const DEFAULT_WARN_BEFORE: std::time::Duration = std::time::Duration::from_secs(7 * 24 * 3600);

/// What the watch concludes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum ReviewerHealth {
    /// Expires after the warning window.
    Fine { expires_at: DateTime<Utc> },
    /// Expires within the warning window: rotate now.
    ExpiresSoon { expires_at: DateTime<Utc> },
    /// Already expired.
    Expired { expires_at: DateTime<Utc> },
    /// No expiry known: a legacy token, Vault's own pod token, or nothing to read.
    Unknown { reason: String },
}

impl ReviewerHealth {
    /// The judgement without its times: `fine`, `expires_soon`, `expired`, `unknown`.
    pub fn kind(&self) -> &'static str {
        match self {
            ReviewerHealth::Fine { .. } => "fine",
            ReviewerHealth::ExpiresSoon { .. } => "expires_soon",
            ReviewerHealth::Expired { .. } => "expired",
            ReviewerHealth::Unknown { .. } => "unknown",
        }
    }

    /// True when people should be told.
    pub fn needs_attention(&self) -> bool {
        matches!(
            self,
            ReviewerHealth::ExpiresSoon { .. } | ReviewerHealth::Expired { .. }
        )
    }

    /// One sentence.
    pub fn describe(&self, reviewer: &str, now: DateTime<Utc>) -> String {
        let when = |t: &DateTime<Utc>| t.format("%Y-%m-%d %H:%M UTC").to_string();
        match self {
            ReviewerHealth::Fine { expires_at } => format!(
                "The reviewer token of {reviewer} expires {} ({}).",
                when(expires_at),
                in_days(now, *expires_at)
            ),
            ReviewerHealth::ExpiresSoon { expires_at } => format!(
                "⚠️ The reviewer token of {reviewer} expires {} ({}). When it does, every new Vault login through Kubernetes auth fails. Rotate it now: the plan is ready to approve.",
                when(expires_at),
                in_days(now, *expires_at)
            ),
            ReviewerHealth::Expired { expires_at } => format!(
                "🔴 The reviewer token of {reviewer} expired {}: new Vault logins through Kubernetes auth fail. Rotate it now.",
                when(expires_at)
            ),
            ReviewerHealth::Unknown { reason } => {
                format!("The reviewer token's expiry is unknown: {reason}.")
            }
        }
    }
}

fn in_days(now: DateTime<Utc>, t: DateTime<Utc>) -> String {
    let secs = (t - now).num_seconds();
    if secs < 0 {
        "already expired".into()
    } else if secs < 2 * 3600 {
        format!("in {} min", secs / 60)
    } else if secs < 2 * 86_400 {
        format!("in {} h", secs / 3600)
    } else {
        format!("in {} days", secs / 86_400)
    }
}

/// Judges the reviewer from the expiries the bot knows.
pub fn assess(
    secret_expiry: Option<DateTime<Utc>>,
    rotated_expiry: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
    warn_before: std::time::Duration,
) -> ReviewerHealth {
    let Some(expires_at) = secret_expiry.max(rotated_expiry) else {
        return ReviewerHealth::Unknown {
            reason: "no expiry to read (legacy token, Vault's own pod token, or no [reviewer] token_secret)".into(),
        };
    };
    let window = chrono::Duration::from_std(warn_before).unwrap_or(chrono::Duration::MAX);
    if expires_at <= now {
        ReviewerHealth::Expired { expires_at }
    } else if expires_at - now <= window {
        ReviewerHealth::ExpiresSoon { expires_at }
    } else {
        ReviewerHealth::Fine { expires_at }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone as _;

    fn t(d: u32, h: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, d, h, 0, 0).unwrap()
    }

    const WEEK: std::time::Duration = DEFAULT_WARN_BEFORE;

    #[test]
    fn a_token_expiring_within_the_window_raises_a_warning() {
        let h = assess(Some(t(30, 12)), None, t(28, 12), WEEK);
        assert_eq!(
            h,
            ReviewerHealth::ExpiresSoon {
                expires_at: t(30, 12)
            }
        );
        assert!(h.needs_attention());
        assert!(
            h.describe("vault/vault-auth", t(28, 12))
                .contains("in 2 days")
        );
    }

    #[test]
    fn a_token_far_from_expiry_is_fine() {
        let h = assess(
            Some(t(28, 12) + chrono::Duration::days(30)),
            None,
            t(28, 12),
            WEEK,
        );
        assert!(matches!(h, ReviewerHealth::Fine { .. }));
        assert!(!h.needs_attention());
    }

    #[test]
    fn the_bots_own_rotation_supersedes_the_stale_secret() {
        let rotated = t(28, 12) + chrono::Duration::days(365);
        let h = assess(Some(t(28, 9)), Some(rotated), t(28, 12), WEEK);
        assert_eq!(
            h,
            ReviewerHealth::Fine {
                expires_at: rotated
            }
        );
    }

    #[test]
    fn an_expired_token_says_so_and_no_expiry_is_unknown() {
        assert!(matches!(
            assess(Some(t(28, 9)), None, t(28, 12), WEEK),
            ReviewerHealth::Expired { .. }
        ));
        assert!(matches!(
            assess(None, None, t(28, 12), WEEK),
            ReviewerHealth::Unknown { .. }
        ));
    }
}
