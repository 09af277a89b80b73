//! Points the embedding at the built bundle: `$GUARDIAN_WEB_DIST`, else
//! `$GUARDIAN_CACHE/web/dist` (default `/var/cache/private-ai-guardian/web/dist`), built by
//! `scripts/setup.d/70-web.sh`. Without a bundle the crate embeds `missing/`, a page that says
//! how to build it (`guardian_web::BUILT` is then false).

use std::path::PathBuf;

fn main() {
    println!("cargo:rerun-if-env-changed=GUARDIAN_WEB_DIST");
    println!("cargo:rerun-if-env-changed=GUARDIAN_CACHE");
    let dist = std::env::var_os("GUARDIAN_WEB_DIST")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            let cache = std::env::var_os("GUARDIAN_CACHE")
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from("/var/cache/private-ai-guardian"));
            cache.join("web").join("dist")
        });
    let built = dist.join("index.html").is_file();
    let folder = if built {
        dist.clone()
    } else {
        PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets it")).join("missing")
    };
    // The folder and each file in it: a rebuilt bundle (new names included) rebuilds this crate.
    println!("cargo:rerun-if-changed={}", dist.display());
    println!("cargo:rerun-if-changed={}", dist.join("assets").display());
    println!(
        "cargo:rerun-if-changed={}",
        dist.join("index.html").display()
    );
    println!("cargo:rustc-env=GUARDIAN_WEB_FOLDER={}", folder.display());
    println!("cargo:rustc-check-cfg=cfg(guardian_web_built)");
    if built {
        println!("cargo:rustc-cfg=guardian_web_built");
    }
}
