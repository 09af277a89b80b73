//! The state of the edge's link to its vm, kept in `vm-link.json` for `guardian-edge status`
//! and for tests to wait on: whether a connection is open, since when, over which address.
//! [`LinkState::next`] is the pure step from one node event to the next state; the agent
//! writes the file when it changes.

use std::path::Path;

use anyhow::{Context, Result};
use guardian_node::{NodeEvent, PeerId};
use serde::{Deserialize, Serialize};

/// The file's name in the data directory.
pub const FILE: &str = "vm-link.json";

/// The vm link as the agent last saw it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkState {
    /// A connection to the vm is open.
    pub connected: bool,
    /// When the link last changed, Unix ms.
    pub since_ms: u64,
    /// The remote address of the connection that opened last (while connected).
    pub address: Option<String>,
    /// Through the relay rather than direct (while connected).
    pub relayed: bool,
}

impl LinkState {
    /// Not connected, from `now_ms`.
    pub fn down(now_ms: u64) -> Self {
        LinkState {
            connected: false,
            since_ms: now_ms,
            address: None,
            relayed: false,
        }
    }

    /// The state after `event` at `now_ms`, when it changes the link to `vm`.
    pub fn next(&self, vm: &PeerId, event: &NodeEvent, now_ms: u64) -> Option<LinkState> {
        match event {
            NodeEvent::Connected {
                peer,
                address,
                relayed,
                ..
            } if peer == vm => Some(LinkState {
                connected: true,
                since_ms: if self.connected {
                    self.since_ms
                } else {
                    now_ms
                },
                address: Some(address.to_string()),
                relayed: *relayed,
            }),
            NodeEvent::Disconnected {
                peer, remaining: 0, ..
            } if peer == vm && self.connected => Some(LinkState::down(now_ms)),
            _ => None,
        }
    }

    /// Writes `data/vm-link.json` atomically.
    pub fn save(&self, data: &Path) -> Result<()> {
        use std::io::Write;
        let path = data.join(FILE);
        let mut tmp = tempfile::NamedTempFile::new_in(data)?;
        tmp.write_all(&serde_json::to_vec_pretty(self)?)?;
        tmp.persist(&path)
            .with_context(|| format!("cannot write {}", path.display()))?;
        Ok(())
    }

    /// Reads `data/vm-link.json`; `None` when the agent has not run.
    pub fn load(data: &Path) -> Result<Option<LinkState>> {
        match std::fs::read(data.join(FILE)) {
            Ok(b) => Ok(Some(serde_json::from_slice(&b).context("vm-link.json")?)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e.into()),
        }
    }
}

/// Keeps `data/vm-link.json` up to date from the node's `events` until `stop`, and records
/// the link down when stopping (a stopped agent holds no connection). A lagging receiver
/// (events missed) rereads nothing: the next connection event sets the state again.
pub async fn watch(
    data: std::path::PathBuf,
    vm: PeerId,
    mut events: tokio::sync::broadcast::Receiver<NodeEvent>,
    clock: guardian_node::SharedClock,
    stop: guardian_node::Shutdown,
) {
    let mut state = LinkState::down(clock.wall_ms());
    let save = |s: &LinkState| {
        if let Err(e) = s.save(&data) {
            tracing::warn!(error = %format!("{e:#}"), "cannot record the vm link's state");
        }
    };
    save(&state);
    loop {
        let event = tokio::select! {
            _ = stop.wait() => {
                save(&LinkState::down(clock.wall_ms()));
                return;
            }
            e = events.recv() => e,
        };
        match event {
            Ok(e) => {
                if let Some(next) = state.next(&vm, &e, clock.wall_ms()) {
                    if next.connected != state.connected {
                        tracing::info!(connected = next.connected, "vm link changed");
                    }
                    state = next;
                    save(&state);
                }
            }
            Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
            Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn connected(peer: PeerId) -> NodeEvent {
        NodeEvent::Connected {
            peer,
            address: "/ip4/127.0.0.1/udp/1/quic-v1".parse().unwrap(),
            relayed: false,
            inbound: false,
        }
    }

    #[test]
    fn the_link_follows_the_vms_connections_only() {
        let (vm, other) = (PeerId::random(), PeerId::random());
        let s = LinkState::down(0);
        assert_eq!(s.next(&vm, &connected(other), 5), None);
        let up = s.next(&vm, &connected(vm), 10).unwrap();
        assert!(up.connected);
        assert_eq!(up.since_ms, 10);
        // A second connection keeps the time the link came up.
        assert_eq!(up.next(&vm, &connected(vm), 20).unwrap().since_ms, 10);
        let one_left = NodeEvent::Disconnected {
            peer: vm,
            remaining: 1,
        };
        assert_eq!(up.next(&vm, &one_left, 30), None);
        let gone = NodeEvent::Disconnected {
            peer: vm,
            remaining: 0,
        };
        let down = up.next(&vm, &gone, 40).unwrap();
        assert_eq!(down, LinkState::down(40));
        assert_eq!(down.next(&vm, &gone, 50), None);
    }

    #[test]
    fn the_file_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(LinkState::load(dir.path()).unwrap(), None);
        let s = LinkState::down(7);
        s.save(dir.path()).unwrap();
        assert_eq!(LinkState::load(dir.path()).unwrap(), Some(s));
    }
}
