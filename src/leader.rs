//! Leader election through a Kubernetes Lease (`coordination.k8s.io/v1`).
//!
//! One replica holds the Lease and does the stateful work (Socket Mode, the Discord gateway,
//! automatic triage, approvals and executions); the others forward what reaches them to it.
//! The holder renews every third of the Lease duration; a Lease not renewed for its duration may be taken
//! over. Writes use the API server's optimistic concurrency (`resourceVersion`), so two
//! replicas can never both win the same round. The leader's address rides in an annotation so
//! followers know where to forward.

use std::time::Duration;

use chrono::{DateTime, Utc};
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::api::{Api, PostParams};
use tokio::sync::watch;

/// How long a Lease stays valid without renewal (default; `--lease-seconds`).
pub const LEASE_DURATION: Duration = Duration::from_secs(15);
/// Annotation carrying the leader's internal URL.
pub const ADDRESS_ANNOTATION: &str = "vault-triage.io/leader-address";

/// This replica's part.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Role {
    Leader,
    /// `leader` is the holder's address, when one is known and alive.
    Follower {
        leader: Option<String>,
    },
}

/// What to do with the Lease this round. Pure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Create,
    Renew,
    TakeOver,
    Follow {
        holder: String,
        address: Option<String>,
    },
}

fn time(t: &Option<MicroTime>) -> Option<DateTime<Utc>> {
    t.as_ref().and_then(|t| {
        DateTime::from_timestamp(t.0.as_second(), t.0.subsec_nanosecond().max(0) as u32)
    })
}

/// Decides from the current Lease (if any), our identity and the time.
pub fn decide(lease: Option<&Lease>, me: &str, now: DateTime<Utc>) -> Decision {
    let Some(lease) = lease else {
        return Decision::Create;
    };
    let spec = lease.spec.clone().unwrap_or_default();
    let holder = spec.holder_identity.clone().unwrap_or_default();
    if holder == me {
        return Decision::Renew;
    }
    let duration = chrono::Duration::seconds(
        spec.lease_duration_seconds
            .unwrap_or(LEASE_DURATION.as_secs() as i32) as i64,
    );
    let alive = !holder.is_empty()
        && time(&spec.renew_time).is_some_and(|renewed| renewed + duration > now);
    if alive {
        Decision::Follow {
            holder,
            address: lease
                .metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get(ADDRESS_ANNOTATION))
                .cloned(),
        }
    } else {
        Decision::TakeOver
    }
}

fn micro(now: DateTime<Utc>) -> Option<MicroTime> {
    k8s_openapi::jiff::Timestamp::from_second(now.timestamp())
        .ok()
        .map(MicroTime)
}

/// Who we are and where the Lease lives.
#[derive(Debug, Clone)]
pub struct Elector {
    pub namespace: String,
    pub name: String,
    pub identity: String,
    /// Our internal URL, for followers to forward to.
    pub address: String,
    pub duration: Duration,
}

impl Elector {
    fn ours(&self, now: DateTime<Utc>, base: Option<Lease>, transitions: i32) -> Lease {
        let mut lease = base.unwrap_or_else(|| Lease {
            metadata: ObjectMeta {
                name: Some(self.name.clone()),
                namespace: Some(self.namespace.clone()),
                ..Default::default()
            },
            spec: None,
        });
        let previous = lease.spec.clone().unwrap_or_default();
        let acquire = if previous.holder_identity.as_deref() == Some(&self.identity) {
            previous.acquire_time
        } else {
            micro(now)
        };
        lease
            .metadata
            .annotations
            .get_or_insert_with(Default::default)
            .insert(ADDRESS_ANNOTATION.into(), self.address.clone());
        lease.spec = Some(LeaseSpec {
            holder_identity: Some(self.identity.clone()),
            lease_duration_seconds: Some(self.duration.as_secs() as i32),
            acquire_time: acquire,
            renew_time: micro(now),
            lease_transitions: Some(transitions),
            ..Default::default()
        });
        lease
    }

    /// One round: read the Lease, decide, write. Errors count as "not leader".
    pub async fn round(&self, api: &Api<Lease>) -> Role {
        let now = Utc::now();
        let current = match api.get_opt(&self.name).await {
            Ok(l) => l,
            Err(e) => {
                tracing::warn!(error = %e, "leader election: the Lease could not be read");
                return Role::Follower { leader: None };
            }
        };
        let transitions = current
            .as_ref()
            .and_then(|l| l.spec.as_ref())
            .and_then(|s| s.lease_transitions)
            .unwrap_or(0);
        let written = match decide(current.as_ref(), &self.identity, now) {
            Decision::Follow { address, .. } => return Role::Follower { leader: address },
            Decision::Create => {
                api.create(&PostParams::default(), &self.ours(now, None, 0))
                    .await
            }
            Decision::Renew => {
                api.replace(
                    &self.name,
                    &PostParams::default(),
                    &self.ours(now, current, transitions),
                )
                .await
            }
            Decision::TakeOver => {
                api.replace(
                    &self.name,
                    &PostParams::default(),
                    &self.ours(now, current, transitions + 1),
                )
                .await
            }
        };
        match written {
            Ok(_) => Role::Leader,
            Err(e) => {
                // 409: someone else won this round.
                tracing::debug!(error = %e, "leader election: lost the round");
                Role::Follower { leader: None }
            }
        }
    }

    /// Runs rounds forever, publishing the role; steps down when a renewal fails for longer than
    /// the Lease duration.
    pub async fn run(self, client: kube::Client, tx: watch::Sender<Role>) {
        let api: Api<Lease> = Api::namespaced(client, &self.namespace);
        loop {
            let role = self.round(&api).await;
            if *tx.borrow() != role {
                tracing::info!(identity = %self.identity, role = ?role, "leadership changed");
            }
            let _ = tx.send(role);
            // Renew (or look) three times per Lease duration.
            tokio::time::sleep(self.duration / 3).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lease(holder: &str, renewed: DateTime<Utc>, address: &str) -> Lease {
        let mut annotations = std::collections::BTreeMap::new();
        annotations.insert(ADDRESS_ANNOTATION.to_string(), address.to_string());
        Lease {
            metadata: ObjectMeta {
                name: Some("vault-triage".into()),
                annotations: Some(annotations),
                ..Default::default()
            },
            spec: Some(LeaseSpec {
                holder_identity: Some(holder.into()),
                lease_duration_seconds: Some(15),
                renew_time: micro(renewed),
                ..Default::default()
            }),
        }
    }

    fn t(s: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + s, 0).unwrap()
    }

    #[test]
    fn no_lease_is_created() {
        assert_eq!(decide(None, "a", t(0)), Decision::Create);
    }

    #[test]
    fn our_lease_is_renewed() {
        assert_eq!(
            decide(Some(&lease("a", t(0), "http://a")), "a", t(100)),
            Decision::Renew
        );
    }

    #[test]
    fn a_live_lease_of_another_replica_is_followed() {
        assert_eq!(
            decide(Some(&lease("b", t(0), "http://b:8080")), "a", t(10)),
            Decision::Follow {
                holder: "b".into(),
                address: Some("http://b:8080".into())
            }
        );
    }

    #[test]
    fn an_expired_lease_is_taken_over() {
        assert_eq!(
            decide(Some(&lease("b", t(0), "http://b")), "a", t(16)),
            Decision::TakeOver
        );
    }
}
