//! An edge's data directory: the file names inside it ([`paths`]) and the installed edge
//! loaded from it ([`Installed`]: configuration, install package, the edge's own keys, the
//! key slots it applied, database).

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
    pub use crate::key_slots::FILE as KEY_SLOTS;
    pub use crate::keys::paths::{AGE_KEY, KEY};
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
    /// The edge's ed25519 key.
    pub key: ed25519_dalek::SigningKey,
    /// The edge's age identity.
    pub age: age::x25519::Identity,
    /// The household's key slots this edge runs (shared by clones: the agent applies new
    /// lists, the cameras seal with them).
    pub key_slots: crate::key_slots::KeySlots,
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
        anyhow::ensure!(
            info.format == protocols::package::FORMAT,
            "{} was installed from a package of format {:?}, and this agent needs {:?} (edges \
             now make their own keys): make a new package with `guardian-vm package edge` and \
             install it into a new directory",
            data.display(),
            info.format,
            protocols::package::FORMAT
        );
        let keys = crate::keys::EdgeKeys::load(data)?;
        let key_slots = crate::key_slots::KeySlots::load(data, &info)?;
        Ok(Installed {
            key_slots,
            data: data.to_path_buf(),
            config: EdgeConfig::load(&data.join(paths::CONFIG))?,
            info,
            key: keys.signing,
            age: keys.age,
        })
    }

    /// The edge's own keys (public halves and fingerprints).
    pub fn keys(&self) -> crate::keys::EdgeKeys {
        crate::keys::EdgeKeys {
            signing: self.key.clone(),
            age: self.age.clone(),
        }
    }

    /// The edge's age recipient (`age1...`).
    pub fn age_recipient(&self) -> String {
        self.age.to_public().to_string()
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
