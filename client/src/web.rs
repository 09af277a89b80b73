//! `guardian web verify URL`: is the web app a server gives out this release's? A page served
//! by a compromised vm could be changed to steal the passphrase typed into it; this compares
//! every file of the app the server gives at URL with the bundle built into this binary
//! (byte for byte, by SHA-256), and the page's Content-Security-Policy with the release's (a
//! weaker policy could let other scripts in). The page names only the release's assets, so a
//! page that matches loads nothing else.

use anyhow::{Context, Result};
use sha2::{Digest, Sha256};

/// One file's check.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct FileCheck {
    /// Its URL path.
    pub path: String,
    /// The release's SHA-256.
    pub expected: String,
    /// What the server gave (`None`: not served).
    pub served: Option<String>,
}

/// The result of a verification.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Verification {
    /// The URL checked.
    pub url: String,
    /// The release's bundle hash.
    pub bundle_sha256: String,
    /// Each file.
    pub files: Vec<FileCheck>,
    /// The page's Content-Security-Policy as served.
    pub csp: Option<String>,
    /// Whether everything matched.
    pub ok: bool,
}

/// Fetches every file of the release from `base` and compares.
pub fn verify(base: &str, timeout: std::time::Duration) -> Result<Verification> {
    let base = base.trim_end_matches('/');
    anyhow::ensure!(
        guardian_web::BUILT,
        "this guardian was built without the web app (run scripts/setup.sh 70-web and rebuild)"
    );
    let agent = ureq::AgentBuilder::new().timeout(timeout).build();
    let mut files = Vec::new();
    let mut csp = None;
    for (path, expected) in guardian_web::files() {
        let url = format!("{base}{path}");
        let served = match agent.get(&url).call() {
            Ok(r) => {
                if path == "/" {
                    csp = r.header("content-security-policy").map(str::to_owned);
                }
                let mut body = Vec::new();
                std::io::Read::read_to_end(&mut r.into_reader(), &mut body)
                    .with_context(|| format!("reading {url}"))?;
                Some(data_encoding::HEXLOWER.encode(&Sha256::digest(&body)))
            }
            Err(ureq::Error::Status(_, _)) => None,
            Err(e) => return Err(e).with_context(|| format!("fetching {url}")),
        };
        files.push(FileCheck {
            path,
            expected,
            served,
        });
    }
    let ok = files
        .iter()
        .all(|f| f.served.as_deref() == Some(f.expected.as_str()))
        && csp.as_deref() == Some(guardian_web::CSP);
    Ok(Verification {
        url: base.to_owned(),
        bundle_sha256: guardian_web::bundle_sha256(),
        files,
        csp,
        ok,
    })
}

/// The report as text.
pub fn render(v: &Verification) -> String {
    let mut out = String::new();
    for f in &v.files {
        let state = match &f.served {
            Some(s) if *s == f.expected => "ok",
            Some(_) => "DIFFERENT",
            None => "MISSING",
        };
        out.push_str(&format!("{state:<9} {}  {}\n", f.expected, f.path));
    }
    let csp_ok = v.csp.as_deref() == Some(guardian_web::CSP);
    out.push_str(&format!(
        "{:<9} Content-Security-Policy{}\n",
        if csp_ok { "ok" } else { "DIFFERENT" },
        if csp_ok {
            String::new()
        } else {
            format!(": {:?}", v.csp)
        }
    ));
    out.push_str(&format!("release bundle sha256: {}\n", v.bundle_sha256));
    out.push_str(if v.ok {
        "the web app served there is this release's: the passphrase can be typed into it\n"
    } else {
        "the web app served there is NOT this release's: do not type your passphrase into it\n"
    });
    out
}
