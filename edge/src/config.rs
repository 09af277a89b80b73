//! `edge.toml`: the edge's configuration. Every key is optional; `guardian-edge init` writes
//! the defaults, documented in the README.

use std::path::Path;

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

/// The whole file.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EdgeConfig {
    /// libp2p settings.
    pub p2p: P2pConfig,
    /// Event outbox settings.
    pub outbox: OutboxConfig,
    /// Telemetry settings.
    pub telemetry: TelemetryConfig,
    /// Archive sending settings.
    pub archive: ArchiveConfig,
}

/// Archive sending settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ArchiveConfig {
    /// Sealed events sent to the vm at once (1-8): one's transfer overlaps the vm's upload of
    /// another.
    pub concurrency: usize,
}

impl Default for ArchiveConfig {
    fn default() -> Self {
        ArchiveConfig { concurrency: 2 }
    }
}

/// libp2p settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct P2pConfig {
    /// Listen addresses; port 0 lets the system choose.
    pub listen: Vec<String>,
}

impl Default for P2pConfig {
    fn default() -> Self {
        P2pConfig {
            listen: vec![
                "/ip4/0.0.0.0/udp/0/quic-v1".into(),
                "/ip4/0.0.0.0/tcp/0".into(),
            ],
        }
    }
}

/// Event outbox settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OutboxConfig {
    /// Events per batch (at most 256).
    pub batch_size: u32,
    /// Seconds between checks of the outbox and retries after a failure.
    pub poll_millis: u64,
}

impl Default for OutboxConfig {
    fn default() -> Self {
        OutboxConfig {
            batch_size: 64,
            poll_millis: 500,
        }
    }
}

/// Telemetry settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TelemetryConfig {
    /// Seconds between reports until the vm asks for another interval.
    pub interval_secs: u32,
}

impl Default for TelemetryConfig {
    fn default() -> Self {
        TelemetryConfig { interval_secs: 30 }
    }
}

impl EdgeConfig {
    /// Reads `edge.toml`.
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        let c: EdgeConfig = toml::from_str(&text)
            .with_context(|| format!("invalid configuration in {}", path.display()))?;
        anyhow::ensure!(
            (1..=256).contains(&c.outbox.batch_size),
            "outbox.batch_size must be 1 to 256"
        );
        Ok(c)
    }

    /// The file's text.
    pub fn to_toml(&self) -> String {
        format!(
            "# guardian-edge configuration; every key is documented in README.md (\"edge.toml\").\n{}",
            toml::to_string_pretty(self).expect("serializable")
        )
    }
}
