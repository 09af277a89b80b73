//! The owner's web app as the binaries serve it: the bundle `scripts/setup.d/70-web.sh` builds
//! (esbuild, from `web/src` and the pinned `web/package-lock.json`) into the cache folder,
//! embedded at compile time (rust-embed), the headers every page and asset carries, and the
//! release hash `guardian web verify URL` compares a served app with.
//!
//! The app is `index.html` at `/` and files under `/assets/`; routing inside the app is by the
//! URL's hash, so nothing else is served. See `docs/web.md`.

use rust_embed::RustEmbed;
use sha2::{Digest, Sha256};

#[cfg(feature = "serve")]
mod serve;
#[cfg(feature = "serve")]
pub use serve::routes;

#[derive(RustEmbed)]
#[folder = "$GUARDIAN_WEB_FOLDER"]
struct Bundle;

/// Whether the real bundle is embedded (false: a page saying how to build it).
pub const BUILT: bool = cfg!(guardian_web_built);

/// The Content-Security-Policy of every page and asset: only this origin, no inline script,
/// WebAssembly for Argon2id, decrypted media as `blob:` URLs, no framing.
pub const CSP: &str = "default-src 'none'; script-src 'self' 'wasm-unsafe-eval'; \
worker-src 'self'; connect-src 'self'; img-src 'self' blob:; media-src 'self' blob:; \
style-src 'self'; font-src 'self'; manifest-src 'self'; base-uri 'none'; \
form-action 'self'; frame-ancestors 'none'";

/// The headers of every page and asset (besides `Content-Type` and caching).
pub const HEADERS: [(&str, &str); 4] = [
    ("content-security-policy", CSP),
    ("x-content-type-options", "nosniff"),
    ("x-frame-options", "DENY"),
    ("referrer-policy", "no-referrer"),
];

/// One file of the app.
#[derive(Debug, Clone)]
pub struct Asset {
    /// Its URL path (`/` for the page, `/assets/...` for the rest).
    pub path: String,
    /// Its bytes.
    pub body: std::borrow::Cow<'static, [u8]>,
    /// Its media type.
    pub content_type: &'static str,
    /// Lower-case hex SHA-256 of the bytes.
    pub sha256: String,
    /// Whether it may be cached for long (assets are named by the bundle's release; the page
    /// is not).
    pub immutable: bool,
}

/// The file served at a URL path, if any.
pub fn asset(url_path: &str) -> Option<Asset> {
    let name = file_name(url_path)?;
    let file = Bundle::get(name)?;
    Some(Asset {
        path: url_path.to_owned(),
        sha256: data_encoding::HEXLOWER.encode(&file.metadata.sha256_hash()),
        body: file.data,
        content_type: content_type(name),
        immutable: name != "index.html",
    })
}

/// The bundle's file for a URL path: `/` is `index.html`, `/assets/x` is `assets/x`; anything
/// else (dot segments, other folders) is none.
pub fn file_name(url_path: &str) -> Option<&str> {
    if url_path == "/" || url_path == "/index.html" {
        return Some("index.html");
    }
    let rest = url_path.strip_prefix("/assets/")?;
    let ok = !rest.is_empty()
        && rest.split('/').all(|seg| {
            !seg.is_empty()
                && seg != "."
                && seg != ".."
                && seg
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
        });
    ok.then(|| &url_path[1..])
}

/// The media type of a bundle file, from its extension.
pub fn content_type(name: &str) -> &'static str {
    match name.rsplit('.').next().unwrap_or("") {
        "html" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "json" => "application/json",
        "wasm" => "application/wasm",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "ico" => "image/x-icon",
        "txt" => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

/// Every file of the app as `(URL path, hex SHA-256)`, in path order.
pub fn files() -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Bundle::iter()
        .filter_map(|name| {
            let file = Bundle::get(&name)?;
            let path = if name == "index.html" {
                "/".to_owned()
            } else {
                format!("/{name}")
            };
            Some((
                path,
                data_encoding::HEXLOWER.encode(&file.metadata.sha256_hash()),
            ))
        })
        .collect();
    out.sort();
    out
}

/// The release hash of the bundle: SHA-256 over the lines `<hex sha256>  <URL path>\n` of
/// [`files`] in path order (what `sha256sum` prints, so it can be recomputed by hand).
pub fn bundle_sha256() -> String {
    release_hash(&files())
}

/// The release hash of a list of `(URL path, hex SHA-256)` (see [`bundle_sha256`]).
pub fn release_hash(files: &[(String, String)]) -> String {
    let mut sorted: Vec<&(String, String)> = files.iter().collect();
    sorted.sort();
    let mut h = Sha256::new();
    for (path, sha) in sorted {
        h.update(format!("{sha}  {path}\n").as_bytes());
    }
    data_encoding::HEXLOWER.encode(&h.finalize())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_map_to_bundle_files_and_nothing_else() {
        assert_eq!(file_name("/"), Some("index.html"));
        assert_eq!(file_name("/assets/app.js"), Some("assets/app.js"));
        assert_eq!(file_name("/assets/../secret"), None);
        assert_eq!(file_name("/assets/"), None);
        assert_eq!(file_name("/assets//x"), None);
        assert_eq!(file_name("/api/v1/events"), None);
        assert_eq!(file_name("/etc/passwd"), None);
        assert_eq!(file_name("/assets/a%2e%2e"), None);
    }

    #[test]
    fn the_page_is_served_and_hashed() {
        let page = asset("/").expect("index.html is always embedded");
        assert!(page.content_type.starts_with("text/html"));
        assert!(!page.immutable);
        assert!(files().iter().any(|(p, _)| p == "/"));
        assert_eq!(bundle_sha256().len(), 64);
    }

    #[test]
    fn the_release_hash_does_not_depend_on_order_and_sees_every_byte() {
        let a = vec![
            ("/".to_owned(), "aa".to_owned()),
            ("/assets/app.js".to_owned(), "bb".to_owned()),
        ];
        let mut b = a.clone();
        b.reverse();
        assert_eq!(release_hash(&a), release_hash(&b));
        let mut c = a.clone();
        c[1].1 = "bc".into();
        assert_ne!(release_hash(&a), release_hash(&c));
    }

    #[test]
    fn the_policy_allows_no_inline_script_and_no_other_origin() {
        assert!(!CSP.contains("unsafe-inline"));
        assert!(!CSP.contains("'unsafe-eval'"));
        assert!(!CSP.contains("http"));
        assert!(CSP.contains("frame-ancestors 'none'"));
    }
}
