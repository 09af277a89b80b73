//! `guardian-edge init --package FILE --data DIR`: checks the package's signature and
//! installs it: the edge key (mode 0600), what the package says (`package.json`), a default
//! `edge.toml` and the database.

use std::path::Path;

use anyhow::{Context, Result, bail};
use guardian_node::identity::write_key;
use protocols::package::InstallPackage;

use crate::config::EdgeConfig;
use crate::data_dir::paths;
use crate::store::Store;

/// Installs `package` into `data`; refuses a data directory that already holds an edge.
pub fn install(package: &Path, data: &Path) -> Result<InstallPackage> {
    let file = std::fs::File::open(package)
        .with_context(|| format!("cannot open the install package {}", package.display()))?;
    let pkg = InstallPackage::from_tar(std::io::BufReader::new(file))
        .with_context(|| format!("refusing {}", package.display()))?;
    if data.join(paths::PACKAGE).exists() {
        bail!(
            "{} already holds an edge (found {}); use a new directory",
            data.display(),
            paths::PACKAGE
        );
    }
    std::fs::create_dir_all(data).with_context(|| format!("cannot create {}", data.display()))?;
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(data, std::fs::Permissions::from_mode(0o700))?;
    }
    write_key(&data.join(paths::KEY), &pkg.edge_key)?;
    let config = data.join(paths::CONFIG);
    if !config.exists() {
        std::fs::write(&config, EdgeConfig::default().to_toml())?;
    }
    Store::open(&data.join(paths::DB))?;
    // Last: its presence marks a complete install.
    std::fs::write(
        data.join(paths::PACKAGE),
        serde_json::to_vec_pretty(&pkg.info)?,
    )?;
    Ok(pkg)
}
