//! Keeping the bot's own Vault token alive while `serve` runs.
//!
//! A bot whose own token expires is locked out of Vault exactly when it is needed, so `serve`
//! looks its token up (`auth/token/lookup-self`) from time to time and renews it
//! (`auth/token/renew-self`) once half of its TTL has passed, as Vault Agent does. A token that
//! cannot be renewed (not renewable, or at its max TTL) is reported in the log well before it
//! expires; a token Vault no longer accepts is reported as an error. The state is also a gauge
//! (`vault_triage_vault_token_ttl_seconds`) and a counter of renewals by outcome.
//!
//! [`assess`] and [`next_check`] are pure; [`tend`] makes the calls; [`keep_alive`] loops.

use std::time::Duration;

use super::client::VaultClient;
use super::error::VaultError;
use super::types::TokenInfo;

/// The shortest pause between two checks.
pub const MIN_CHECK_EVERY: Duration = Duration::from_secs(1);
/// The longest pause between two checks.
pub const MAX_CHECK_EVERY: Duration = Duration::from_secs(3600);
/// The pause after Vault could not be asked.
pub const RETRY_EVERY: Duration = Duration::from_secs(30);
/// The pause after Vault rejected the token (it may be replaced in the token file meanwhile).
pub const REJECTED_RETRY_EVERY: Duration = Duration::from_secs(300);
/// A token that cannot be renewed is reported once it has less than this left.
pub const WARN_BEFORE: Duration = Duration::from_secs(7 * 24 * 3600);

/// What a lookup says about the token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenHealth {
    /// The token never expires (TTL 0, e.g. a root token).
    NoExpiry,
    /// Valid for `ttl`; nothing to do yet.
    Valid { ttl: Duration },
    /// Renewable and past half of its TTL: renew now.
    RenewNow { ttl: Duration },
    /// Cannot be renewed and expires within [`WARN_BEFORE`]: it must be replaced.
    Expiring { ttl: Duration },
}

/// Decides what to do with the token `lookup-self` described.
pub fn assess(info: &TokenInfo) -> TokenHealth {
    // A TTL of 0 means "never expires" only without an expiry time; otherwise the token has
    // less than a second left.
    if info.ttl <= 0 && info.expire_time.is_none() {
        return TokenHealth::NoExpiry;
    }
    let ttl = Duration::from_secs(info.ttl.max(0) as u64);
    let full = info.period.unwrap_or(info.creation_ttl).max(info.ttl) as u64;
    if info.renewable && ttl.as_secs() * 2 <= full {
        TokenHealth::RenewNow { ttl }
    } else if !info.renewable && ttl <= WARN_BEFORE {
        TokenHealth::Expiring { ttl }
    } else {
        TokenHealth::Valid { ttl }
    }
}

/// How long to wait before the next look: a quarter of what is left, so a renewable token is
/// renewed when between a half and about a third of its TTL is left, and never misses it.
pub fn next_check(health: TokenHealth) -> Duration {
    match health {
        TokenHealth::NoExpiry => MAX_CHECK_EVERY,
        TokenHealth::Valid { ttl }
        | TokenHealth::Expiring { ttl }
        | TokenHealth::RenewNow { ttl } => (ttl / 4).clamp(MIN_CHECK_EVERY, MAX_CHECK_EVERY),
    }
}

/// What one round did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tended {
    /// Looked up; no renewal was due.
    Checked(TokenHealth),
    /// Renewed: the TTL before and after.
    Renewed { before: Duration, after: Duration },
    /// A renewal was due but did not extend the TTL (the token is at its max TTL) or failed.
    RenewalFailed { ttl: Duration, reason: String },
    /// Vault no longer accepts the token (403): expired, revoked or never valid.
    Rejected(VaultError),
    /// Vault could not be asked (down, slow, TLS).
    Unanswered(VaultError),
}

impl Tended {
    /// The TTL the token has now, when known (0 for a token that never expires).
    pub fn ttl(&self) -> Option<Duration> {
        match self {
            Tended::Checked(TokenHealth::NoExpiry) => Some(Duration::ZERO),
            Tended::Checked(
                TokenHealth::Valid { ttl }
                | TokenHealth::RenewNow { ttl }
                | TokenHealth::Expiring { ttl },
            ) => Some(*ttl),
            Tended::Renewed { after, .. } => Some(*after),
            Tended::RenewalFailed { ttl, .. } => Some(*ttl),
            Tended::Rejected(_) | Tended::Unanswered(_) => None,
        }
    }

    /// When to look again.
    pub fn next_check(&self) -> Duration {
        match self {
            Tended::Checked(health) => next_check(*health),
            Tended::Renewed { after, .. } => next_check(TokenHealth::Valid { ttl: *after }),
            Tended::RenewalFailed { ttl, .. } => next_check(TokenHealth::Expiring { ttl: *ttl }),
            Tended::Rejected(_) => REJECTED_RETRY_EVERY,
            Tended::Unanswered(_) => RETRY_EVERY,
        }
    }
}

/// How far two TTLs Vault reports a moment apart may differ without anything having changed
/// (whole seconds, rounded, with the time between the two calls).
const ROUNDING: Duration = Duration::from_secs(2);

/// One round: look the token up and renew it when due.
pub async fn tend(vault: &VaultClient) -> Tended {
    let info = match vault.lookup_self().await {
        Ok(info) => info,
        Err(e) if e.status() == Some(403) => return Tended::Rejected(e),
        Err(e) => return Tended::Unanswered(e),
    };
    let health = assess(&info);
    let TokenHealth::RenewNow { ttl: before } = health else {
        return Tended::Checked(health);
    };
    match vault.renew_self().await {
        // A real renewal restores the full TTL, at least twice what was left; a token at its
        // max TTL gets back what it had, give or take the seconds of rounding between the
        // lookup and the renewal (which a short TTL must not mistake for an extension).
        Ok(seconds)
            if Duration::from_secs(seconds) >= before.mul_f64(1.5)
                && Duration::from_secs(seconds) > before + ROUNDING =>
        {
            Tended::Renewed {
                before,
                after: Duration::from_secs(seconds),
            }
        }
        Ok(seconds) => Tended::RenewalFailed {
            ttl: Duration::from_secs(seconds),
            reason: "the renewal did not extend the TTL: the token has reached its max TTL".into(),
        },
        Err(e) if e.status() == Some(403) => Tended::Rejected(e),
        Err(e) => Tended::RenewalFailed {
            ttl: before,
            reason: e.to_string(),
        },
    }
}

/// Logs and records one round.
pub fn report(round: &Tended) {
    if let Some(ttl) = round.ttl() {
        crate::metrics::set(
            crate::metrics::TOKEN_TTL,
            crate::metrics::TOKEN_TTL_HELP,
            &[],
            ttl.as_secs_f64(),
        );
    }
    let outcome = match round {
        Tended::Checked(TokenHealth::Expiring { ttl }) => {
            tracing::warn!(
                ttl = %humantime::format_duration(*ttl),
                "the bot's own Vault token cannot be renewed and expires soon; replace it (see deploy/vault/bot-auth.md)"
            );
            return;
        }
        Tended::Checked(health) => {
            tracing::debug!(?health, "the bot's own Vault token was checked");
            return;
        }
        Tended::Renewed { before, after } => {
            tracing::info!(
                before = %humantime::format_duration(*before),
                after = %humantime::format_duration(*after),
                "renewed the bot's own Vault token"
            );
            "renewed"
        }
        Tended::RenewalFailed { ttl, reason } => {
            tracing::warn!(
                ttl = %humantime::format_duration(*ttl),
                reason = %reason,
                "could not renew the bot's own Vault token; replace it before it expires"
            );
            "failed"
        }
        Tended::Rejected(e) => {
            tracing::error!(error = %e, "Vault no longer accepts the bot's own token (expired or revoked): triages cannot read Vault's auth config until it is replaced");
            "rejected"
        }
        Tended::Unanswered(e) => {
            tracing::warn!(error = %e, "could not check the bot's own Vault token");
            return;
        }
    };
    crate::metrics::inc(
        "vault_triage_vault_token_renewals_total",
        "Renewals of the bot's own Vault token, by outcome.",
        &[("outcome", outcome)],
    );
}

/// Tends the token forever; a task of `serve`.
pub async fn keep_alive(vault: VaultClient) {
    loop {
        let round = tend(&vault).await;
        report(&round);
        tokio::time::sleep(round.next_check()).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(ttl: i64, creation_ttl: i64, renewable: bool, period: Option<i64>) -> TokenInfo {
        TokenInfo {
            ttl,
            creation_ttl,
            renewable,
            period,
            ..TokenInfo::default()
        }
    }

    const HOUR: i64 = 3600;

    #[test]
    fn a_token_without_ttl_is_left_alone_and_looked_at_hourly() {
        assert_eq!(assess(&info(0, 0, false, None)), TokenHealth::NoExpiry);
        assert_eq!(next_check(TokenHealth::NoExpiry), MAX_CHECK_EVERY);
    }

    #[test]
    fn a_token_in_its_last_second_is_not_mistaken_for_one_that_never_expires() {
        let last_second = TokenInfo {
            expire_time: Some("2026-11-28T16:09:10.3Z".into()),
            ..info(0, 6, true, None)
        };
        assert_eq!(
            assess(&last_second),
            TokenHealth::RenewNow {
                ttl: Duration::ZERO
            }
        );
        let fixed = TokenInfo {
            renewable: false,
            ..last_second
        };
        assert_eq!(
            assess(&fixed),
            TokenHealth::Expiring {
                ttl: Duration::ZERO
            }
        );
    }

    #[test]
    fn a_renewable_token_is_renewed_once_half_its_ttl_has_passed() {
        let fresh = info(32 * 24 * HOUR, 32 * 24 * HOUR, true, None);
        assert!(matches!(assess(&fresh), TokenHealth::Valid { .. }));
        let just_over_half = info(16 * 24 * HOUR + 1, 32 * 24 * HOUR, true, None);
        assert!(matches!(assess(&just_over_half), TokenHealth::Valid { .. }));
        let half = info(16 * 24 * HOUR, 32 * 24 * HOUR, true, None);
        assert!(matches!(assess(&half), TokenHealth::RenewNow { .. }));
    }

    #[test]
    fn a_periodic_token_is_measured_against_its_period() {
        // creation_ttl can be shorter than the period after a renewal with an increment.
        let t = info(10 * HOUR, HOUR, true, Some(768 * HOUR));
        assert!(matches!(assess(&t), TokenHealth::RenewNow { .. }));
        let t = info(500 * HOUR, HOUR, true, Some(768 * HOUR));
        assert!(matches!(assess(&t), TokenHealth::Valid { .. }));
    }

    #[test]
    fn a_token_that_cannot_be_renewed_is_reported_only_when_it_nears_expiry() {
        let far = info(30 * 24 * HOUR, 30 * 24 * HOUR, false, None);
        assert!(matches!(assess(&far), TokenHealth::Valid { .. }));
        let near = info(6 * 24 * HOUR, 30 * 24 * HOUR, false, None);
        assert_eq!(
            assess(&near),
            TokenHealth::Expiring {
                ttl: Duration::from_secs(6 * 24 * 3600)
            }
        );
    }

    #[test]
    fn checks_come_often_enough_never_to_miss_the_renewal_window() {
        // From a fresh token, waiting a quarter of what is left each time reaches the renewal
        // point (half) before a third of the TTL is left, for any TTL the clamps allow.
        for full in [40u64, 600, 3600, 86_400, 768 * 3600] {
            let mut left = full;
            loop {
                let health = assess(&info(left as i64, full as i64, true, None));
                if matches!(health, TokenHealth::RenewNow { .. }) {
                    assert!(left * 3 >= full, "full {full}: renewed only at {left}");
                    break;
                }
                left -= next_check(health).as_secs().min(left);
                assert!(left > 0, "full {full}: expired before renewal");
            }
        }
    }

    #[test]
    fn a_round_says_when_to_look_again() {
        let ttl = Duration::from_secs(400);
        assert_eq!(
            Tended::Renewed {
                before: Duration::from_secs(10),
                after: ttl
            }
            .next_check(),
            Duration::from_secs(100)
        );
        assert_eq!(
            Tended::Checked(TokenHealth::Valid {
                ttl: Duration::from_secs(2)
            })
            .next_check(),
            MIN_CHECK_EVERY
        );
        assert_eq!(
            Tended::Unanswered(VaultError::Timeout(5)).next_check(),
            RETRY_EVERY
        );
        assert_eq!(
            Tended::Checked(TokenHealth::Valid {
                ttl: Duration::from_secs(8)
            })
            .next_check(),
            Duration::from_secs(2)
        );
    }
}
