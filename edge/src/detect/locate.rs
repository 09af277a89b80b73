//! Where the detector's files are when `edge.toml` does not say: the model's IR and the
//! OpenVINO C library that `scripts/setup.sh` installed, so an edge set up by hand runs with
//! nothing configured.
//!
//! Search order, first found wins (each a [`Source`], which `guardian-edge init` prints):
//! 1. the configuration (`detector.model`, `detector.openvino_lib`), taken as given;
//! 2. the environment (`GUARDIAN_MODEL`, `GUARDIAN_OPENVINO_LIB`), taken as given;
//! 3. the data directory: `<data>/models/<model>` (an owner's own copy);
//! 4. the cache folder set-up fills (`$GUARDIAN_CACHE`, default
//!    `/var/cache/private-ai-guardian`): `models/<model>`, and the OpenVINO wheel's `libs/`
//!    in `venv-openvino` (any Python version);
//! 5. the system: [`SYSTEM_DIR`]`/models/<model>` and `/openvino/`, where the ISO and a
//!    systemd install put the bundle `scripts/detector-bundle.sh` makes.
//!
//! For the library, nothing found means the system's own search (`ld.so`), which is what an
//! OpenVINO installed from a distribution package needs. The choice is [`choose`], a pure
//! function over the candidates and a file test; [`locate`] feeds it the real file system.

use std::path::{Path, PathBuf};

/// The cache folder when `GUARDIAN_CACHE` is unset.
pub const DEFAULT_CACHE: &str = "/var/cache/private-ai-guardian";
/// Where an installed edge's detector bundle lives.
pub const SYSTEM_DIR: &str = "/usr/lib/private-ai-guardian";
/// The models set-up makes, by the name `detector.model` may give, relative to a `models/`
/// folder. The first is the default (chosen by `make bench-recall`).
pub const MODELS: &[(&str, &str)] = &[
    ("nanodet", "nanodet-m-416/nanodet.xml"),
    ("centernet", "centernet-mbv3-512/centernet.xml"),
    ("movenet", "movenet-multipose-256/movenet.xml"),
];
/// The default model, relative to a `models/` folder.
pub const DEFAULT_MODEL: &str = MODELS[0].1;
/// The OpenVINO C library's file name (versioned names start with it).
pub const LIBRARY_NAME: &str = "libopenvino_c.so";

/// Where a path came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// `edge.toml`.
    Config,
    /// An environment variable.
    Environment,
    /// The data directory.
    DataDir,
    /// The set-up cache folder.
    Cache,
    /// The system bundle ([`SYSTEM_DIR`]).
    System,
    /// Not found: the library is left to the system's search (the model is then missing).
    SystemSearch,
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Source::Config => "edge.toml",
            Source::Environment => "the environment",
            Source::DataDir => "the data directory",
            Source::Cache => "the set-up cache",
            Source::System => SYSTEM_DIR,
            Source::SystemSearch => "the system's library search",
        })
    }
}

/// A path and where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Located {
    /// The path (`None`: the system's library search).
    pub path: Option<PathBuf>,
    /// Where it came from.
    pub source: Source,
}

impl Located {
    /// For messages: the path, or what finds it.
    pub fn describe(&self) -> String {
        match &self.path {
            Some(p) => format!("{} (from {})", p.display(), self.source),
            None => self.source.to_string(),
        }
    }
}

/// The first candidate that is given (config, environment: taken as is) or exists (the
/// searched places); `None` when none does.
pub fn choose(candidates: &[(Source, PathBuf)], exists: impl Fn(&Path) -> bool) -> Option<Located> {
    candidates
        .iter()
        .find(|(source, p)| matches!(source, Source::Config | Source::Environment) || exists(p))
        .map(|(source, p)| Located {
            path: Some(p.clone()),
            source: *source,
        })
}

/// The places a model is looked for, in order: `configured` is a path (taken as given), a
/// name of [`MODELS`] (looked for like the default `model`), or empty.
pub fn model_candidates(
    configured: &str,
    env: Option<PathBuf>,
    data: &Path,
    cache: &Path,
    model: &str,
) -> Vec<(Source, PathBuf)> {
    let mut c = Vec::new();
    let mut model = model;
    if let Some((_, rel)) = MODELS.iter().find(|(name, _)| *name == configured) {
        model = rel;
    } else if !configured.is_empty() {
        c.push((Source::Config, PathBuf::from(configured)));
    }
    if let Some(e) = env {
        c.push((Source::Environment, e));
    }
    c.push((Source::DataDir, data.join("models").join(model)));
    c.push((Source::Cache, cache.join("models").join(model)));
    c.push((
        Source::System,
        Path::new(SYSTEM_DIR).join("models").join(model),
    ));
    c
}

/// The places the OpenVINO library is looked for, in order; `wheel_libs` are the cache's
/// wheel folders (`venv-openvino/lib/python*/site-packages/openvino/libs`).
pub fn library_candidates(
    configured: &str,
    env: Option<PathBuf>,
    wheel_libs: &[PathBuf],
    versioned: impl Fn(&Path) -> Option<PathBuf>,
) -> Vec<(Source, PathBuf)> {
    let mut c = Vec::new();
    if !configured.is_empty() {
        c.push((Source::Config, PathBuf::from(configured)));
    }
    if let Some(e) = env {
        c.push((Source::Environment, e));
    }
    for dir in wheel_libs {
        c.extend(versioned(dir).map(|p| (Source::Cache, p)));
    }
    let system = Path::new(SYSTEM_DIR).join("openvino");
    c.extend(versioned(&system).map(|p| (Source::System, p)));
    c
}

/// The cache folder: `$GUARDIAN_CACHE`, else [`DEFAULT_CACHE`].
pub fn cache_dir() -> PathBuf {
    std::env::var_os("GUARDIAN_CACHE")
        .filter(|v| !v.is_empty())
        .map_or_else(|| PathBuf::from(DEFAULT_CACHE), PathBuf::from)
}

/// The model `detector.model` names, or the one found.
pub fn locate_model(configured: &str, data: &Path) -> Located {
    let env = std::env::var_os("GUARDIAN_MODEL")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from);
    let candidates = model_candidates(configured, env, data, &cache_dir(), DEFAULT_MODEL);
    choose(&candidates, Path::is_file).unwrap_or(Located {
        // Missing everywhere: report the data directory's path (the detector's error says
        // to run set-up).
        path: Some(data.join("models").join(DEFAULT_MODEL)),
        source: Source::DataDir,
    })
}

/// The second look's model, `detector.verify_model`: a name of [`MODELS`] looked for like
/// the default model (not in the environment, which names the first model), or a path;
/// `None` when it is `off` or empty, found nowhere, or the first model itself (`main`).
pub fn locate_verifier(configured: &str, main: &Path, data: &Path) -> Option<PathBuf> {
    let candidates = verifier_candidates(configured, data, &cache_dir());
    let found = candidates.into_iter().find(|p| p.is_file())?;
    let same = |a: &Path, b: &Path| match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    };
    (!same(&found, main)).then_some(found)
}

/// Where [`locate_verifier`] looks, in order.
pub fn verifier_candidates(configured: &str, data: &Path, cache: &Path) -> Vec<PathBuf> {
    if configured.is_empty() || configured == "off" {
        return Vec::new();
    }
    match MODELS.iter().find(|(name, _)| *name == configured) {
        Some((_, rel)) => model_candidates("", None, data, cache, rel)
            .into_iter()
            .map(|(_, p)| p)
            .collect(),
        None => vec![PathBuf::from(configured)],
    }
}

/// The library `detector.openvino_lib` names, or the one found, or the system's search.
pub fn locate_library(configured: &str) -> Located {
    let env = std::env::var_os("GUARDIAN_OPENVINO_LIB")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from);
    let candidates = library_candidates(
        configured,
        env,
        &wheel_lib_dirs(&cache_dir()),
        versioned_library,
    );
    choose(&candidates, Path::is_file).unwrap_or(Located {
        path: None,
        source: Source::SystemSearch,
    })
}

/// `venv-openvino/lib/python*/site-packages/openvino/libs` folders under `cache`.
fn wheel_lib_dirs(cache: &Path) -> Vec<PathBuf> {
    let lib = cache.join("venv-openvino/lib");
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(&lib)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("python"))
        .map(|e| e.path().join("site-packages/openvino/libs"))
        .filter(|d| d.is_dir())
        .collect();
    dirs.sort();
    dirs
}

/// The versioned C library in `dir` (`libopenvino_c.so.NNNN`; the loader needs the real
/// file, not an unversioned link in another folder), else the unversioned one.
fn versioned_library(dir: &Path) -> Option<PathBuf> {
    let names: Vec<String> = std::fs::read_dir(dir)
        .ok()?
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    pick_library(&names).map(|n| dir.join(n))
}

/// Of a folder's file names, the C library to load: the highest versioned
/// `libopenvino_c.so.N`, else `libopenvino_c.so`.
pub fn pick_library(names: &[String]) -> Option<&str> {
    let prefix = format!("{LIBRARY_NAME}.");
    names
        .iter()
        .filter_map(|n| {
            let v = n.strip_prefix(&prefix)?;
            v.split('.')
                .map(str::parse::<u32>)
                .collect::<Result<Vec<_>, _>>()
                .ok()
                .map(|v| (v, n.as_str()))
        })
        .max()
        .map(|(_, n)| n)
        .or_else(|| {
            names
                .iter()
                .find(|n| *n == LIBRARY_NAME)
                .map(String::as_str)
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> PathBuf {
        PathBuf::from(s)
    }

    #[test]
    fn the_configuration_wins_then_the_environment_then_the_first_that_exists() {
        let data = p("/d");
        let cache = p("/c");
        let all = model_candidates(
            "/my/model.xml",
            Some(p("/env.xml")),
            &data,
            &cache,
            "m/m.xml",
        );
        assert_eq!(
            choose(&all, |_| false),
            Some(Located {
                path: Some(p("/my/model.xml")),
                source: Source::Config
            }),
            "given paths are taken as given (a typo must show as an error, not be skipped)"
        );
        let searched = model_candidates("", None, &data, &cache, "m/m.xml");
        let only_cache = |x: &Path| x == Path::new("/c/models/m/m.xml");
        assert_eq!(choose(&searched, only_cache).unwrap().source, Source::Cache);
        let both = |x: &Path| x.starts_with("/c") || x.starts_with("/d");
        assert_eq!(choose(&searched, both).unwrap().source, Source::DataDir);
        let system = |x: &Path| x.starts_with(SYSTEM_DIR);
        assert_eq!(choose(&searched, system).unwrap().source, Source::System);
        assert_eq!(choose(&searched, |_| false), None);
    }

    #[test]
    fn a_model_named_in_the_configuration_is_searched_like_the_default() {
        let c = model_candidates("centernet", None, &p("/d"), &p("/c"), DEFAULT_MODEL);
        assert_eq!(
            c[0],
            (
                Source::DataDir,
                p("/d/models/centernet-mbv3-512/centernet.xml")
            )
        );
        assert_eq!(
            c[1],
            (
                Source::Cache,
                p("/c/models/centernet-mbv3-512/centernet.xml")
            )
        );
        assert!(c.iter().all(|(s, _)| *s != Source::Config));
    }

    #[test]
    fn the_second_look_s_model_is_searched_by_name_or_taken_as_a_path_or_off() {
        let c = verifier_candidates("centernet", &p("/d"), &p("/c"));
        assert_eq!(c[0], p("/d/models/centernet-mbv3-512/centernet.xml"));
        assert_eq!(c[1], p("/c/models/centernet-mbv3-512/centernet.xml"));
        assert_eq!(
            verifier_candidates("/m/v.xml", &p("/d"), &p("/c")),
            [p("/m/v.xml")]
        );
        assert!(verifier_candidates("off", &p("/d"), &p("/c")).is_empty());
        assert!(verifier_candidates("", &p("/d"), &p("/c")).is_empty());
        // Not found, or the first model itself: no second look.
        assert_eq!(
            locate_verifier("/nowhere/v.xml", Path::new("/m.xml"), &p("/d")),
            None
        );
        let dir = tempfile::tempdir().unwrap();
        let m = dir.path().join("m.xml");
        std::fs::write(&m, b"<net/>").unwrap();
        assert_eq!(locate_verifier(m.to_str().unwrap(), &m, &p("/d")), None);
        let other = dir.path().join("v.xml");
        std::fs::write(&other, b"<net/>").unwrap();
        assert_eq!(
            locate_verifier(other.to_str().unwrap(), &m, &p("/d")),
            Some(other)
        );
    }

    #[test]
    fn every_model_name_is_searched_and_nanodet_stays_the_default() {
        let names: Vec<&str> = MODELS.iter().map(|(n, _)| *n).collect();
        assert_eq!(names, ["nanodet", "centernet", "movenet"]);
        assert_eq!(DEFAULT_MODEL, "nanodet-m-416/nanodet.xml");
        let c = model_candidates("movenet", None, &p("/d"), &p("/c"), DEFAULT_MODEL);
        assert_eq!(
            c[1],
            (
                Source::Cache,
                p("/c/models/movenet-multipose-256/movenet.xml")
            )
        );
    }

    #[test]
    fn the_library_is_the_highest_versioned_file() {
        let names: Vec<String> = [
            "libopenvino.so.2641",
            "libopenvino_c.so",
            "libopenvino_c.so.2541",
            "libopenvino_c.so.2641",
            "libopenvino_c.so.x",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        assert_eq!(pick_library(&names), Some("libopenvino_c.so.2641"));
        let unversioned = vec!["libopenvino_c.so".to_string()];
        assert_eq!(pick_library(&unversioned), Some("libopenvino_c.so"));
        assert_eq!(pick_library(&["libtbb.so.12".to_string()]), None);
        let c = library_candidates("", None, &[p("/w1"), p("/w2")], |d| {
            (d == Path::new("/w2")).then(|| d.join("libopenvino_c.so.2641"))
        });
        assert_eq!(c, vec![(Source::Cache, p("/w2/libopenvino_c.so.2641"))]);
    }

    #[test]
    fn set_up_s_cache_is_found_without_configuration() {
        // The real folders, as `scripts/setup.sh` left them (skipped where set-up has not run).
        let cache = cache_dir();
        if !cache.join("models").join(DEFAULT_MODEL).is_file() {
            eprintln!("skipped: no set-up cache at {}", cache.display());
            return;
        }
        let dirs = wheel_lib_dirs(&cache);
        assert!(!dirs.is_empty(), "the OpenVINO wheel's libs/");
        assert!(versioned_library(&dirs[0]).is_some_and(|l| l.is_file()));
    }
}
