//! `guardian cameras set|list|remove|discovered|discover|snapshot`: cameras configured at
//! the vm, with the password sealed here, on the owner's machine, to the edge's own
//! recipient (bound to the camera and host), so the vm never sees it
//! ([`protocols::credential`]); what the edges found on their LANs; and a camera's current
//! picture, sealed by its edge and opened here.

use anyhow::{Context, Result, anyhow, bail};
use protocols::credential;
use serde_json::{Value, json};

use crate::api::VmApi;

/// What `set` was given.
pub struct Wanted<'a> {
    /// The camera id.
    pub id: &'a str,
    /// Its name (default: the id).
    pub name: Option<&'a str>,
    /// The edge (peer id or name); `None` when the tenant has one.
    pub edge: Option<&'a str>,
    /// The main stream, with or without user information (or an ONVIF camera).
    pub source: Source<'a>,
    /// The user name, if not in the URL.
    pub username: Option<&'a str>,
    /// The password, if not in the URL.
    pub password: Option<&'a str>,
    /// The substream.
    pub substream: Option<&'a str>,
}

/// Where a camera's video comes from.
#[derive(Clone, Copy)]
pub enum Source<'a> {
    /// A stream URL, with or without user information.
    Url(&'a str),
    /// An ONVIF camera.
    Onvif {
        /// Its device service URL.
        xaddr: &'a str,
        /// The profile recorded (default: the largest).
        profile: Option<&'a str>,
        /// The profile decoded for detection.
        substream_profile: Option<&'a str>,
    },
}

/// The edge's own recipient from `GET /api/v1/devices`' answer: the named edge (peer id or
/// name) or the only one.
pub fn edge_recipient(devices: &Value, edge: Option<&str>) -> Result<(String, String)> {
    let list = devices["devices"]
        .as_array()
        .ok_or_else(|| anyhow!("the vm's device list is not a list"))?;
    let found: Vec<&Value> = match edge {
        Some(e) => list
            .iter()
            .filter(|d| d["peer_id"] == e || d["name"] == e)
            .collect(),
        None => list.iter().collect(),
    };
    let d = match found.as_slice() {
        [d] => *d,
        [] => bail!("no such edge is enrolled"),
        _ => bail!("several edges match: give --edge with its peer id"),
    };
    let recipient = d["age_recipient"].as_str().ok_or_else(|| {
        anyhow!("the edge was enrolled before edges made their own keys: it cannot take a password")
    })?;
    Ok((
        d["peer_id"].as_str().unwrap_or_default().to_owned(),
        recipient.to_owned(),
    ))
}

/// The `PUT` body, the password sealed to `recipient` (the edge's) for this camera and host.
pub fn body(w: &Wanted<'_>, edge_peer: &str, recipient: &str) -> Result<Value> {
    let (base, in_url_user, in_url_password) = match w.source {
        Source::Url(url) => {
            let parts = credential::split_userinfo(url);
            (parts.url, parts.username, parts.password)
        }
        Source::Onvif { xaddr, .. } => {
            let parts = credential::split_userinfo(xaddr);
            if parts.username.is_some() {
                bail!("give the ONVIF user with --username, not in the URL");
            }
            (parts.url, None, None)
        }
    };
    if in_url_user.is_some() && w.username.is_some() {
        bail!("give the user name either in the URL or with --username");
    }
    let username = w.username.map(str::to_owned).or(in_url_user);
    let password = w
        .password
        .map(|p| zeroize::Zeroizing::new(p.to_owned()))
        .or(in_url_password);
    // The host the password is bound to: the stream's, or the ONVIF device service's.
    let host = credential::host(&base).unwrap_or_default();
    let sealed = password
        .map(|p| credential::seal(recipient, w.id, &host, &p))
        .transpose()?;
    if sealed.is_some() && username.is_none() {
        bail!("a password needs a user name (--username)");
    }
    let mut source = match w.source {
        Source::Url(_) => json!({ "url": base }),
        Source::Onvif {
            profile,
            substream_profile,
            ..
        } => {
            let mut o = json!({ "xaddr": base });
            if let Some(p) = profile {
                o["profile"] = json!(p);
            }
            if let Some(p) = substream_profile {
                o["substream_profile"] = json!(p);
            }
            o
        }
    };
    if let Some(u) = username {
        source["username"] = json!(u);
    }
    if let Some(s) = sealed {
        source["password_sealed"] = json!(s);
    }
    let source = match w.source {
        Source::Url(_) => source,
        Source::Onvif { .. } => json!({ "onvif": source }),
    };
    let mut body = json!({ "edge": edge_peer, "source": source });
    if let Some(n) = w.name {
        body["name"] = json!(n);
    }
    if let Some(s) = w.substream {
        body["substream"] = json!(credential::split_userinfo(s).url);
    }
    Ok(body)
}

/// `set`: the camera stored at the vm; its answer.
pub fn set(api: &VmApi, w: &Wanted<'_>) -> Result<Value> {
    let devices: Value = api
        .get("/api/v1/devices")?
        .into_json()
        .context("the vm's device list")?;
    let (peer, recipient) = edge_recipient(&devices, w.edge)?;
    let body = body(w, &peer, &recipient)?;
    Ok(api
        .put_json(&format!("/api/v1/cameras/{}", w.id), body)?
        .into_json()?)
}

/// One line per camera of `GET /api/v1/cameras`' answer.
pub fn describe(answer: &Value) -> String {
    let mut out = format!(
        "{:<20} {:<10} {:<12} {:<8} {:>5} {:>9}  {}\n",
        "ID", "STATE", "REASON", "CONFIG", "FPS", "SIZE", "SOURCE"
    );
    for c in answer["cameras"].as_array().into_iter().flatten() {
        let s = |v: &Value| v.as_str().unwrap_or("-").to_owned();
        let size = match (c["width"].as_u64(), c["height"].as_u64()) {
            (Some(w), Some(h)) => format!("{w}x{h}"),
            _ => "-".into(),
        };
        out += &format!(
            "{:<20} {:<10} {:<12} {:<8} {:>5} {:>9}  {}\n",
            s(&c["id"]),
            s(&c["state"]),
            s(&c["reason"]),
            s(&c["config_state"]),
            c["fps"].as_f64().map_or("-".into(), |f| format!("{f:.1}")),
            size,
            c["source"]["url"]
                .as_str()
                .or(c["source"]["onvif"]["xaddr"].as_str())
                .unwrap_or("-"),
        );
    }
    out
}

/// One line per camera of `GET /api/v1/cameras/discovered`' answer, and a line per edge
/// whose discovery is off or had errors.
pub fn describe_discovered(answer: &Value) -> String {
    let mut out = format!(
        "{:<6} {:<16} {:<28} {:<6} {:<24} {}\n",
        "KIND", "ADDRESS", "MAKER / MODEL", "AUTH", "STREAMS", "CONFIGURED AS"
    );
    let s = |v: &Value| v.as_str().unwrap_or("-").to_owned();
    for c in answer["cameras"].as_array().into_iter().flatten() {
        let streams: Vec<String> = c["profiles"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|p| match (p["width"].as_u64(), p["height"].as_u64()) {
                (Some(w), Some(h)) => format!("{w}x{h}"),
                _ => s(&p["token"]),
            })
            .collect();
        let configured: Vec<String> = c["configured_as"]
            .as_array()
            .into_iter()
            .flatten()
            .map(s)
            .collect();
        out += &format!(
            "{:<6} {:<16} {:<28} {:<6} {:<24} {}\n",
            s(&c["kind"]),
            s(&c["address"]),
            format!("{} / {}", s(&c["manufacturer"]), s(&c["model"])),
            if c["needs_credentials"].as_bool() == Some(true) {
                "yes"
            } else {
                "no"
            },
            if streams.is_empty() {
                "-".into()
            } else {
                streams.join(" ")
            },
            if configured.is_empty() {
                "-".into()
            } else {
                configured.join(",")
            },
        );
    }
    for e in answer["edges"].as_array().into_iter().flatten() {
        if e["enabled"].as_bool() == Some(false) {
            out += &format!(
                "edge {}: discovery is off ([discovery] enabled = true in its edge.toml)\n",
                s(&e["edge_name"])
            );
        }
        for err in e["errors"].as_array().into_iter().flatten() {
            out += &format!("edge {}: {}\n", s(&e["edge_name"]), s(err));
        }
    }
    out
}

/// `snapshot`: the camera's current picture, sealed by its edge, opened with `identity`;
/// the JPEG and its size.
pub fn snapshot(
    api: &VmApi,
    id: &str,
    identity: &age::x25519::Identity,
) -> Result<(Vec<u8>, u32, u32)> {
    let r = api.get(&format!("/api/v1/cameras/{id}/snapshot"))?;
    let num = |h: &str| r.header(h).and_then(|v| v.parse().ok()).unwrap_or(0);
    let (w, h) = (num("x-guardian-width"), num("x-guardian-height"));
    let mut sealed = Vec::new();
    use std::io::Read;
    r.into_reader()
        .take(8 * 1024 * 1024)
        .read_to_end(&mut sealed)?;
    let mut jpeg = Vec::new();
    protocols::seal::open(sealed.as_slice(), &mut jpeg, identity)
        .context("cannot open the snapshot (is it sealed to this key?)")?;
    Ok((jpeg, w, h))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_password_leaves_sealed_to_the_edge_for_its_camera_and_host() {
        let edge = age::x25519::Identity::generate();
        let devices = json!({"devices": [{"peer_id": "12D3", "name": "home",
            "age_recipient": edge.to_public().to_string()}]});
        let (peer, recipient) = edge_recipient(&devices, None).unwrap();
        assert_eq!(peer, "12D3");
        let w = Wanted {
            id: "porch",
            name: Some("Porch"),
            edge: None,
            source: Source::Url("rtsp://admin:s3cret-pw@192.0.2.9:554/main"),
            username: None,
            password: None,
            substream: Some("rtsp://admin:s3cret-pw@192.0.2.9:554/sub"),
        };
        let b = body(&w, &peer, &recipient).unwrap();
        assert!(!b.to_string().contains("s3cret-pw"), "{b}");
        assert_eq!(b["source"]["url"], "rtsp://192.0.2.9:554/main");
        assert_eq!(b["substream"], "rtsp://192.0.2.9:554/sub");
        let sealed = b["source"]["password_sealed"].as_str().unwrap();
        assert_eq!(
            credential::open(&edge, sealed, "porch", "192.0.2.9")
                .unwrap()
                .as_str(),
            "s3cret-pw"
        );
        assert!(edge_recipient(&devices, Some("shop")).is_err());
        let old = json!({"devices": [{"peer_id": "p", "name": "n", "age_recipient": null}]});
        assert!(edge_recipient(&old, None).is_err());
        let no_user = Wanted {
            source: Source::Url("rtsp://h/x"),
            password: Some("pw"),
            ..w
        };
        assert!(body(&no_user, &peer, &recipient).is_err());
        let onvif = Wanted {
            source: Source::Onvif {
                xaddr: "http://192.0.2.9:8080/onvif/device_service",
                profile: Some("main"),
                substream_profile: None,
            },
            username: Some("admin"),
            password: Some("s3cret-pw"),
            substream: None,
            ..w
        };
        let b = body(&onvif, &peer, &recipient).unwrap();
        assert!(!b.to_string().contains("s3cret-pw"), "{b}");
        let o = &b["source"]["onvif"];
        assert_eq!(o["xaddr"], "http://192.0.2.9:8080/onvif/device_service");
        assert_eq!(o["profile"], "main");
        assert_eq!(o["username"], "admin");
        let sealed = o["password_sealed"].as_str().unwrap();
        assert!(credential::open(&edge, sealed, "porch", "192.0.2.9").is_ok());
    }
}
