//! `guardian-edge init --package FILE --data DIR`: checks the package's signature and
//! installs it: the edge's own keys, made here (`edge.key` and `edge.age`, mode 0600; the
//! package holds none), what the package says (`package.json`), a default `edge.toml` and the
//! database.
//!
//! Running it again is harmless: with the package already installed it changes nothing and
//! reports the same keys; after an interrupted run it keeps the keys already made and
//! finishes. A data directory holding another package's edge is refused.

use std::path::Path;

use anyhow::{Context, Result, bail};
use protocols::package::{InstallPackage, PackageInfo};

use crate::config::EdgeConfig;
use crate::data_dir::paths;
use crate::keys::{self, EdgeKeys, Made};
use crate::store::Store;

/// What `init` did.
pub struct Installation {
    /// What the package says.
    pub info: PackageInfo,
    /// The edge's keys.
    pub keys: EdgeKeys,
    /// Which keys were made now (the others were kept).
    pub made: Made,
    /// The package was installed already: nothing changed.
    pub already_installed: bool,
}

/// Installs `package` into `data`.
pub fn install(package: &Path, data: &Path) -> Result<Installation> {
    let file = std::fs::File::open(package)
        .with_context(|| format!("cannot open the install package {}", package.display()))?;
    let pkg = InstallPackage::from_tar(std::io::BufReader::new(file))
        .with_context(|| format!("refusing {}", package.display()))?;
    let installed = data.join(paths::PACKAGE);
    if installed.exists() {
        let same = std::fs::read(&installed)
            .ok()
            .and_then(|b| serde_json::from_slice::<PackageInfo>(&b).ok())
            .is_some_and(|info| info == pkg.info);
        if !same {
            bail!(
                "{} already holds an edge installed from another package (found {}); use a new directory",
                data.display(),
                paths::PACKAGE
            );
        }
        return Ok(Installation {
            info: pkg.info,
            keys: EdgeKeys::load(data)?,
            made: Made {
                signing: false,
                age: false,
            },
            already_installed: true,
        });
    }
    std::fs::create_dir_all(data).with_context(|| format!("cannot create {}", data.display()))?;
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(data, std::fs::Permissions::from_mode(0o700))?;
    }
    let (keys, made) = keys::load_or_make(data)?;
    let config = data.join(paths::CONFIG);
    if !config.exists() {
        std::fs::write(&config, EdgeConfig::default().to_toml())?;
    }
    Store::open(&data.join(paths::DB))?;
    // Last: its presence marks a complete install.
    std::fs::write(&installed, serde_json::to_vec_pretty(&pkg.info)?)?;
    Ok(Installation {
        info: pkg.info,
        keys,
        made,
        already_installed: false,
    })
}
