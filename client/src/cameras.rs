//! `guardian cameras set|list|remove`: cameras configured at the vm, with the password
//! sealed here, on the owner's machine, to the edge's own recipient (bound to the camera and
//! host), so the vm never sees it ([`protocols::credential`]).

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
    /// The main stream, with or without user information.
    pub url: &'a str,
    /// The user name, if not in the URL.
    pub username: Option<&'a str>,
    /// The password, if not in the URL.
    pub password: Option<&'a str>,
    /// The substream.
    pub substream: Option<&'a str>,
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
    let parts = credential::split_userinfo(w.url);
    if parts.username.is_some() && w.username.is_some() {
        bail!("give the user name either in the URL or with --username");
    }
    let username = w.username.map(str::to_owned).or(parts.username);
    let password = w
        .password
        .map(|p| zeroize::Zeroizing::new(p.to_owned()))
        .or(parts.password);
    let host = credential::host(&parts.url).unwrap_or_default();
    let sealed = password
        .map(|p| credential::seal(recipient, w.id, &host, &p))
        .transpose()?;
    if sealed.is_some() && username.is_none() {
        bail!("a password needs a user name (--username)");
    }
    let mut source = json!({ "url": parts.url });
    if let Some(u) = username {
        source["username"] = json!(u);
    }
    if let Some(s) = sealed {
        source["password_sealed"] = json!(s);
    }
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
        "{:<20} {:<10} {:<10} {:<8} {:>5}  {}\n",
        "ID", "STATE", "REASON", "CONFIG", "FPS", "URL"
    );
    for c in answer["cameras"].as_array().into_iter().flatten() {
        let s = |v: &Value| v.as_str().unwrap_or("-").to_owned();
        out += &format!(
            "{:<20} {:<10} {:<10} {:<8} {:>5}  {}\n",
            s(&c["id"]),
            s(&c["state"]),
            s(&c["reason"]),
            s(&c["config_state"]),
            c["fps"].as_f64().map_or("-".into(), |f| format!("{f:.1}")),
            s(&c["source"]["url"]),
        );
    }
    out
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
            url: "rtsp://admin:s3cret-pw@192.0.2.9:554/main",
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
            url: "rtsp://h/x",
            password: Some("pw"),
            ..w
        };
        assert!(body(&no_user, &peer, &recipient).is_err());
    }
}
