//! Lease-based leader election (coordination.k8s.io/v1), so that with several replicas only
//! one reconciles (writes statuses, creates Secrets) while all of them serve the webhook.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::api::{Api, ObjectMeta, PostParams};

pub struct LeaderElection {
    pub leases: Api<Lease>,
    pub lease_name: String,
    pub identity: String,
    /// A holder that has not renewed for this long has lost the lease.
    pub lease_duration: Duration,
    pub renew_every: Duration,
}

/// What one look at the Lease decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Turn {
    Leading,
    Following,
}

impl LeaderElection {
    /// Keeps `is_leader` up to date until `stop` resolves, then releases the lease if held.
    pub async fn run(
        self,
        is_leader: Arc<AtomicBool>,
        stop: impl std::future::Future<Output = ()>,
    ) {
        tokio::pin!(stop);
        loop {
            let turn = match self.try_acquire_or_renew().await {
                Ok(turn) => turn,
                Err(e) => {
                    tracing::warn!(error = %e, lease = %self.lease_name, "leader election: lease update failed");
                    Turn::Following
                }
            };
            let was = is_leader.swap(turn == Turn::Leading, Ordering::SeqCst);
            if was != (turn == Turn::Leading) {
                tracing::info!(identity = %self.identity, leading = turn == Turn::Leading, "leadership changed");
            }
            tokio::select! {
                () = tokio::time::sleep(self.renew_every) => {}
                () = &mut stop => break,
            }
        }
        if is_leader.swap(false, Ordering::SeqCst)
            && let Err(e) = self.release().await
        {
            tracing::warn!(error = %e, "could not release the lease; another replica takes over when it expires");
        }
    }

    fn spec(&self, now: Timestamp, transitions: i32) -> LeaseSpec {
        LeaseSpec {
            holder_identity: Some(self.identity.clone()),
            lease_duration_seconds: Some(
                i32::try_from(self.lease_duration.as_secs()).unwrap_or(i32::MAX),
            ),
            acquire_time: Some(MicroTime(now)),
            renew_time: Some(MicroTime(now)),
            lease_transitions: Some(transitions),
            ..LeaseSpec::default()
        }
    }

    async fn try_acquire_or_renew(&self) -> Result<Turn, kube::Error> {
        let now = Timestamp::now();
        let Some(mut lease) = self.leases.get_opt(&self.lease_name).await? else {
            let lease = Lease {
                metadata: ObjectMeta {
                    name: Some(self.lease_name.clone()),
                    ..ObjectMeta::default()
                },
                spec: Some(self.spec(now, 0)),
            };
            return match self.leases.create(&PostParams::default(), &lease).await {
                Ok(_) => Ok(Turn::Leading),
                Err(e) if crate::conflict::another_writer_won(&e) => Ok(Turn::Following),
                Err(e) => Err(e),
            };
        };
        let spec = lease.spec.clone().unwrap_or_default();
        let held_by_me = spec.holder_identity.as_deref() == Some(self.identity.as_str());
        let expired = match (&spec.renew_time, spec.lease_duration_seconds) {
            (Some(MicroTime(renewed)), Some(seconds)) => {
                *renewed + SignedDuration::from_secs(i64::from(seconds)) < now
            }
            _ => true,
        };
        let free = spec.holder_identity.as_deref().is_none_or(str::is_empty);
        if !(held_by_me || expired || free) {
            return Ok(Turn::Following);
        }
        let transitions = spec.lease_transitions.unwrap_or(0) + i32::from(!held_by_me);
        let mut new_spec = self.spec(now, transitions);
        if held_by_me {
            new_spec.acquire_time = spec.acquire_time;
        }
        lease.spec = Some(new_spec);
        // The resourceVersion in `lease` makes this a compare-and-swap: of two replicas
        // taking over at once, one gets a conflict.
        match self
            .leases
            .replace(&self.lease_name, &PostParams::default(), &lease)
            .await
        {
            Ok(_) => Ok(Turn::Leading),
            Err(e) if crate::conflict::another_writer_won(&e) => Ok(Turn::Following),
            Err(e) => Err(e),
        }
    }

    async fn release(&self) -> Result<(), kube::Error> {
        let Some(mut lease) = self.leases.get_opt(&self.lease_name).await? else {
            return Ok(());
        };
        if let Some(spec) = lease.spec.as_mut()
            && spec.holder_identity.as_deref() == Some(self.identity.as_str())
        {
            spec.holder_identity = None;
            spec.renew_time = None;
            self.leases
                .replace(&self.lease_name, &PostParams::default(), &lease)
                .await?;
            tracing::info!("released the lease");
        }
        Ok(())
    }
}
