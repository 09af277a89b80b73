//! An edge's data directory: the file names inside it ([`paths`]) and the installed edge
//! loaded from it ([`Installed`]: configuration, install package, key, database).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use protocols::package::PackageInfo;

use crate::config::EdgeConfig;
use crate::store::{Store, StoreError};

/// File names inside an edge's data directory.
pub mod paths {
    /// The configuration.
    pub const CONFIG: &str = "edge.toml";
    /// What the install package said (tenant, vm, recipient, token).
    pub const PACKAGE: &str = "package.json";
    /// The edge's key (libp2p identity, manifest signatures).
    pub const KEY: &str = "edge.key";
    /// The database.
    pub const DB: &str = "edge.sqlite";
}

/// An installed edge, loaded from its data directory.
pub struct Installed {
    /// The data directory.
    pub data: PathBuf,
    /// `edge.toml`.
    pub config: EdgeConfig,
    /// What the package said.
    pub info: PackageInfo,
    /// The edge's key.
    pub key: ed25519_dalek::SigningKey,
}

impl Installed {
    /// Loads `data`, which `guardian-edge init` made.
    pub fn load(data: &Path) -> Result<Self> {
        let package = data.join(paths::PACKAGE);
        if !package.exists() {
            anyhow::bail!(
                "{} holds no edge: run `guardian-edge init --package FILE --data {}` first",
                data.display(),
                data.display()
            );
        }
        let info: PackageInfo = serde_json::from_slice(&std::fs::read(&package)?)
            .with_context(|| format!("cannot read {}", package.display()))?;
        Ok(Installed {
            data: data.to_path_buf(),
            config: EdgeConfig::load(&data.join(paths::CONFIG))?,
            info,
            key: guardian_node::identity::read_key(&data.join(paths::KEY))?,
        })
    }

    /// The edge's peer id.
    pub fn peer_id(&self) -> String {
        protocols::signed::peer_id_of(&self.key.verifying_key())
    }

    /// Opens the database.
    pub fn store(&self) -> Result<Store, StoreError> {
        Store::open(&self.data.join(paths::DB))
    }
}
