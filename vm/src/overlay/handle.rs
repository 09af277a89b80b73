//! The running overlay as the rest of the vm sees it: the settings, the vm's public key, the
//! device (or why it could not be brought up), and which peers are on it. Shared through
//! [`crate::state::VmState`]; imports nothing of the vm but its configuration.
//!
//! Whoever changes peers (the negotiation, the owner's device API, the reconciliation) holds
//! [`Overlay::changes`] across its database write and its device change, so one never applies
//! a stale view over another's.

use std::collections::HashMap;
use std::time::Duration;

use guardian_overlay::device::{DeviceError, OverlayDevice, PeerSpec, PeerStatus};
use guardian_overlay::keys::PublicKey;
use guardian_overlay::transport::Hub;

use crate::config::OverlaySettings;

/// The overlay of a vm with `[wg] enabled`.
pub struct Overlay {
    /// `[wg]`, filled in.
    pub settings: OverlaySettings,
    /// The vm's WireGuard public key.
    pub public_key: PublicKey,
    error: Option<String>,
    hub: Option<Hub>,
    device: tokio::sync::RwLock<Option<OverlayDevice>>,
    /// The peers put on the device, and the index each was given (their allowed IPs).
    applied: std::sync::Mutex<HashMap<PublicKey, u32>>,
    changes: tokio::sync::Mutex<()>,
}

/// What to add and remove to make the device hold the wanted peers.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Plan {
    /// Keys to take off (not wanted, or on with another index).
    pub remove: Vec<PublicKey>,
    /// Keys to put on, with their index.
    pub add: Vec<(PublicKey, u32)>,
}

/// The changes from the device's peers `have` (with the index each was put on with, `None`
/// when the vm did not put it there) to `want`. Pure.
pub fn plan(want: &HashMap<PublicKey, u32>, have: &HashMap<PublicKey, Option<u32>>) -> Plan {
    let mut p = Plan::default();
    for (key, index) in have {
        if want.get(key).is_none_or(|w| Some(*w) != *index) {
            p.remove.push(*key);
        }
    }
    for (key, index) in want {
        if have.get(key).is_none_or(|h| *h != Some(*index)) {
            p.add.push((*key, *index));
        }
    }
    p.remove.sort();
    p.add.sort();
    p
}

impl Overlay {
    /// A running overlay on `device`.
    pub fn running(
        settings: OverlaySettings,
        public_key: PublicKey,
        device: OverlayDevice,
    ) -> Self {
        Overlay {
            settings,
            public_key,
            error: None,
            hub: Some(device.hub().clone()),
            device: tokio::sync::RwLock::new(Some(device)),
            applied: Default::default(),
            changes: Default::default(),
        }
    }

    /// An overlay whose device could not be brought up, and why.
    pub fn failed(settings: OverlaySettings, public_key: PublicKey, error: String) -> Self {
        Overlay {
            settings,
            public_key,
            error: Some(error),
            hub: None,
            device: tokio::sync::RwLock::new(None),
            applied: Default::default(),
            changes: Default::default(),
        }
    }

    /// Why the device is not running (`None` when it runs or ran).
    pub fn error(&self) -> Option<&str> {
        self.error.as_deref()
    }

    /// Whether the device is up (not failed, not stopped).
    pub async fn is_running(&self) -> bool {
        self.device.read().await.is_some()
    }

    /// Where relay streams attach (`None` when the device failed).
    pub fn hub(&self) -> Option<&Hub> {
        self.hub.as_ref()
    }

    /// Held by whoever changes peers, across its database write and its device change.
    pub async fn changes(&self) -> tokio::sync::MutexGuard<'_, ()> {
        self.changes.lock().await
    }

    /// A peer's allowed IPs at the vm: its two host routes.
    pub fn allowed_ips(&self, index: u32) -> Result<Vec<String>, DeviceError> {
        self.settings
            .prefixes
            .peer(index)
            .map(|a| a.host_routes())
            .map_err(|e| DeviceError::Invalid(e.to_string()))
    }

    /// Puts `key` on the device with the addresses of `index`, unless it is there already
    /// with them (its learned endpoint and session are kept then). `false` when the device
    /// is not running.
    pub async fn put_peer(&self, key: PublicKey, index: u32) -> Result<bool, DeviceError> {
        let device = self.device.read().await;
        let Some(device) = device.as_ref() else {
            return Ok(false);
        };
        let on = self.applied_index(&key) == Some(index) && device.peer(&key).await.is_some();
        if !on {
            device
                .set_peer(&PeerSpec {
                    public_key: key,
                    endpoint: None,
                    allowed_ips: self.allowed_ips(index)?,
                    keepalive: None,
                })
                .await?;
            self.applied
                .lock()
                .expect("not poisoned")
                .insert(key, index);
        }
        Ok(true)
    }

    /// Takes `key` off the device at once (its sessions go with it).
    pub async fn drop_peer(&self, key: &PublicKey) -> Result<(), DeviceError> {
        let device = self.device.read().await;
        if let Some(device) = device.as_ref() {
            device.remove_peer(key).await?;
        }
        self.applied.lock().expect("not poisoned").remove(key);
        Ok(())
    }

    /// Makes the device hold exactly `want` (key → index); how many peers were added and
    /// removed. Hold [`Overlay::changes`] from reading `want` until this returns.
    pub async fn sync(
        &self,
        want: &HashMap<PublicKey, u32>,
    ) -> Result<(usize, usize), DeviceError> {
        let have: HashMap<PublicKey, Option<u32>> = self
            .peers()
            .await
            .into_iter()
            .map(|p| (p.public_key, self.applied_index(&p.public_key)))
            .collect();
        let plan = plan(want, &have);
        for key in &plan.remove {
            self.drop_peer(key).await?;
        }
        for (key, index) in &plan.add {
            self.put_peer(*key, *index).await?;
        }
        Ok((plan.add.len(), plan.remove.len()))
    }

    fn applied_index(&self, key: &PublicKey) -> Option<u32> {
        self.applied.lock().expect("not poisoned").get(key).copied()
    }

    /// Every peer's state on the device (empty when it is not running).
    pub async fn peers(&self) -> Vec<PeerStatus> {
        match self.device.read().await.as_ref() {
            Some(d) => d.peers().await,
            None => Vec::new(),
        }
    }

    /// Takes the device and its interface down (within `within`; later calls do nothing).
    pub async fn stop(&self, within: Duration) {
        let Ok(mut device) = tokio::time::timeout(within, self.device.write()).await else {
            tracing::warn!("the WireGuard device is busy; not stopped");
            return;
        };
        if let Some(d) = device.take() {
            if tokio::time::timeout(within, d.stop()).await.is_err() {
                tracing::warn!("the WireGuard device did not stop in time");
            } else {
                tracing::info!(interface = %self.settings.interface, "WireGuard overlay stopped");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(n: u8) -> PublicKey {
        PublicKey([n; 32])
    }

    #[test]
    fn the_plan_adds_what_is_missing_and_removes_what_is_not_wanted() {
        let want: HashMap<_, _> = [(key(1), 1), (key(2), 2), (key(3), 3)].into();
        let have: HashMap<_, _> = [
            (key(1), Some(1)), // kept as it is
            (key(2), Some(5)), // another index: off and on again
            (key(4), Some(4)), // removed from the table
            (key(5), None),    // put there by hand
        ]
        .into();
        assert_eq!(
            plan(&want, &have),
            Plan {
                remove: vec![key(2), key(4), key(5)],
                add: vec![(key(2), 2), (key(3), 3)],
            }
        );
        assert_eq!(
            plan(&want, &want.iter().map(|(k, i)| (*k, Some(*i))).collect()),
            Plan::default()
        );
        assert_eq!(plan(&HashMap::new(), &HashMap::new()), Plan::default());
    }
}
