//! `guardian wg device add|list|remove`: the owner's phones and laptops on the vm's WireGuard
//! overlay (`docs/overlay.md`). The device's key pair is made here, on the owner's machine;
//! only its public key goes to the vm (`POST /api/v1/wg/devices`), and the wg-quick
//! configuration with the private key is written only to the owner's file or terminal.
//!
//! Parsing the vm's answers and rendering the configuration, the QR code and the device table
//! are pure; [`overlay`], [`register`], [`list`] and [`remove`] are the calls to the vm, and
//! [`add`] makes the key pair and registers it.

use std::net::Ipv6Addr;

use anyhow::{Context, Result, anyhow, bail, ensure};
use guardian_overlay::quick::DeviceConfig;
use guardian_overlay::{OverlayPrefixes, PeerAddresses, PublicKey, SecretKey};
use serde::Deserialize;
use serde_json::{Value, json};
use zeroize::Zeroizing;

use crate::api::{ApiError, VmApi};

/// Persistent keepalive when the vm does not say (keeps a NAT mapping open).
pub const DEFAULT_KEEPALIVE_SECS: u16 = 25;

/// `GET /api/v1/wg` as the vm answers it (all but `enabled` may be absent when it is off).
#[derive(Debug, Clone, Deserialize)]
struct WgAnswer {
    enabled: bool,
    /// Why the vm's device is not running, when it was meant to.
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    public_key: Option<String>,
    #[serde(default)]
    endpoint: Option<String>,
    #[serde(default)]
    prefix_v6: Option<String>,
    #[serde(default)]
    range_v4: Option<String>,
    #[serde(default)]
    keepalive_secs: Option<u16>,
}

/// The vm's side of the overlay: what a device's configuration needs from it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Overlay {
    /// The vm's WireGuard public key.
    pub public_key: PublicKey,
    /// The vm's UDP endpoint, `host:port`.
    pub endpoint: String,
    /// The overlay's prefixes (what a device routes through the vm).
    pub prefixes: OverlayPrefixes,
    /// Persistent keepalive, seconds.
    pub keepalive_secs: u16,
}

/// One device as the vm lists it (`POST` answers the same without the last two).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Device {
    /// Its name.
    pub name: String,
    /// Its WireGuard public key (base64).
    pub public_key: String,
    /// Its IPv6 overlay address (a `/len` suffix is tolerated).
    pub overlay_ip: String,
    /// Its IPv4 overlay address (a `/len` suffix is tolerated).
    pub overlay_ipv4: String,
    /// When it was added, ms since the epoch.
    #[serde(default)]
    pub created_ms: Option<u64>,
    /// Its last handshake with the vm, ms since the epoch.
    #[serde(default)]
    pub last_handshake_ms: Option<u64>,
    /// Where its packets last came from, `ip:port`.
    #[serde(default)]
    pub endpoint: Option<String>,
}

impl Device {
    /// Its two overlay addresses.
    pub fn addresses(&self) -> Result<PeerAddresses> {
        Ok(PeerAddresses {
            v6: address(&self.overlay_ip, "overlay_ip")?,
            v4: address(&self.overlay_ipv4, "overlay_ipv4")?,
        })
    }
}

/// The overlay from `GET /api/v1/wg`'s answer; an error when it is off on this vm.
pub fn parse_overlay(answer: &Value) -> Result<Overlay> {
    let a: WgAnswer = serde_json::from_value(answer.clone())
        .context("unreadable overlay settings from the vm")?;
    if !a.enabled {
        match a.error.filter(|e| !e.trim().is_empty()) {
            Some(e) => bail!("the WireGuard overlay is off on this vm: {e}"),
            None => bail!(
                "the WireGuard overlay is off on this vm: turn it on in the vm's [wg] settings \
                 first"
            ),
        }
    }
    let field = |v: Option<String>, name: &str| {
        v.filter(|s| !s.trim().is_empty())
            .ok_or_else(|| anyhow!("the vm's overlay settings have no {name}"))
    };
    let public_key = PublicKey::from_base64(&field(a.public_key, "public_key")?)
        .context("the vm's WireGuard public key")?;
    let endpoint = field(a.endpoint, "endpoint")?.trim().to_owned();
    check_endpoint(&endpoint)?;
    let prefixes = OverlayPrefixes::new(
        "",
        &field(a.prefix_v6, "prefix_v6")?,
        &field(a.range_v4, "range_v4")?,
    )
    .context("the vm's overlay prefixes")?;
    Ok(Overlay {
        public_key,
        endpoint,
        prefixes,
        keepalive_secs: a.keepalive_secs.unwrap_or(DEFAULT_KEEPALIVE_SECS),
    })
}

/// `host:port` (an IPv6 host in brackets), as wg-quick's `Endpoint` takes it.
fn check_endpoint(endpoint: &str) -> Result<()> {
    let ok = endpoint.rsplit_once(':').is_some_and(|(host, port)| {
        let host_ok = match host.strip_prefix('[') {
            Some(inner) => inner
                .strip_suffix(']')
                .is_some_and(|a| a.parse::<Ipv6Addr>().is_ok()),
            None => !host.is_empty() && !host.contains([':', '[', ']', '/']),
        };
        host_ok && !host.contains(char::is_whitespace) && port.parse::<u16>().is_ok_and(|p| p != 0)
    });
    ensure!(
        ok,
        "the vm's WireGuard endpoint {endpoint:?} is not host:port"
    );
    Ok(())
}

/// An address, with or without a `/len` suffix.
fn address<A: std::str::FromStr>(text: &str, what: &str) -> Result<A> {
    let bare = text.trim().split('/').next().unwrap_or_default();
    bare.parse()
        .map_err(|_| anyhow!("the vm gave the device an unreadable {what}: {text:?}"))
}

/// The body of `POST /api/v1/wg/devices`: the name and the public key, nothing else.
pub fn register_body(name: &str, public: &PublicKey) -> Value {
    json!({ "name": name, "public_key": public.to_base64() })
}

/// The wg-quick configuration of the device the vm registered, with its private `key`.
/// Checks that the vm registered this key and gave addresses inside the overlay.
pub fn render_config(
    overlay: &Overlay,
    device: &Device,
    key: &SecretKey,
) -> Result<Zeroizing<String>> {
    let registered = PublicKey::from_base64(&device.public_key)
        .context("the vm's answer has an unreadable public key")?;
    ensure!(
        registered == key.public(),
        "the vm registered another public key ({registered}) than the one sent ({})",
        key.public()
    );
    let addresses = device.addresses()?;
    ensure!(
        in_overlay(&overlay.prefixes, addresses),
        "the vm gave the device addresses {}, {} outside its overlay {}",
        addresses.v6,
        addresses.v4,
        overlay.prefixes.cidrs().join(", ")
    );
    Ok(Zeroizing::new(
        DeviceConfig {
            private_key: key,
            addresses,
            vm_public_key: overlay.public_key,
            endpoint: &overlay.endpoint,
            prefixes: overlay.prefixes,
            keepalive_secs: overlay.keepalive_secs,
        }
        .render(),
    ))
}

/// Whether both addresses are in the overlay's prefixes, and neither is the vm's.
fn in_overlay(p: &OverlayPrefixes, a: PeerAddresses) -> bool {
    let v6 = a.v6.segments()[..4] == p.v6.segments()[..4];
    let mask = u32::MAX << (32 - u32::from(p.v4.len));
    let v4 = u32::from(a.v4) & mask == u32::from(p.v4.network);
    let vm = p.vm();
    v6 && v4 && a.v6 != vm.v6 && a.v4 != vm.v4
}

/// `text` as a QR code in Unicode half blocks, two modules per character cell, with its quiet
/// zone; light modules are drawn (for a terminal with a dark background, as `qrencode -t UTF8`).
pub fn qr(text: &str) -> Result<Zeroizing<String>> {
    use qrcode::render::unicode::Dense1x2;
    let code = qrcode::QrCode::new(text.as_bytes())
        .map_err(|e| anyhow!("the configuration does not fit in a QR code: {e}"))?;
    let mut image = code
        .render::<Dense1x2>()
        .dark_color(Dense1x2::Light)
        .light_color(Dense1x2::Dark)
        .quiet_zone(true)
        .build();
    image.push('\n');
    Ok(Zeroizing::new(image))
}

/// `name` as one URL path segment (RFC 3986: everything but unreserved characters escaped).
pub fn path_segment(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for b in name.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out += &format!("%{b:02X}");
        }
    }
    out
}

/// The devices of `GET /api/v1/wg/devices`' answer.
pub fn parse_devices(answer: &Value) -> Result<Vec<Device>> {
    let list = answer
        .get("devices")
        .ok_or_else(|| anyhow!("the vm's answer has no device list"))?;
    serde_json::from_value(list.clone()).context("unreadable device list from the vm")
}

/// One line per device, times relative to `now_ms`.
pub fn describe(devices: &[Device], now_ms: u64) -> String {
    if devices.is_empty() {
        return "no WireGuard devices at this vm (add one with `guardian wg device add`)\n".into();
    }
    let row = |c: [&str; 7]| {
        format!(
            "{:<16} {:<24} {:<15} {:<10} {:<22} {:<10} {}\n",
            c[0], c[1], c[2], c[3], c[4], c[5], c[6]
        )
    };
    let mut out = row([
        "NAME",
        "IPV6",
        "IPV4",
        "HANDSHAKE",
        "ENDPOINT",
        "ADDED",
        "PUBLIC KEY",
    ]);
    for d in devices {
        let bare = |s: &str| s.split('/').next().unwrap_or_default().to_owned();
        out += &row([
            &d.name,
            &bare(&d.overlay_ip),
            &bare(&d.overlay_ipv4),
            &d.last_handshake_ms
                .map_or_else(|| "never".into(), |t| ago(t, now_ms)),
            d.endpoint.as_deref().unwrap_or("-"),
            &d.created_ms.map_or_else(|| "-".into(), |t| ago(t, now_ms)),
            &d.public_key,
        ]);
    }
    out
}

/// `12s ago`, `5m ago`, `3h ago`, `2d ago` (`now` for a time at or after `now_ms`).
pub fn ago(then_ms: u64, now_ms: u64) -> String {
    let s = now_ms.saturating_sub(then_ms) / 1000;
    match s {
        0 => "now".into(),
        1..60 => format!("{s}s ago"),
        60..3600 => format!("{}m ago", s / 60),
        3600..86_400 => format!("{}h ago", s / 3600),
        _ => format!("{}d ago", s / 86_400),
    }
}

/// `GET /api/v1/wg`: the vm's overlay, or why it cannot take devices.
pub fn overlay(api: &VmApi) -> Result<Overlay> {
    let answer: Value = match api.get("/api/v1/wg") {
        Ok(r) => r
            .into_json()
            .context("unreadable overlay settings from the vm")?,
        Err(ApiError::Status { status: 404, .. }) => {
            bail!("this vm has no WireGuard overlay API (an older release?)")
        }
        Err(e) => return Err(e.into()),
    };
    parse_overlay(&answer)
}

/// `POST /api/v1/wg/devices`: registers the public key under `name`; the vm's answer.
pub fn register(api: &VmApi, name: &str, public: &PublicKey) -> Result<Device> {
    match api.post_json("/api/v1/wg/devices", register_body(name, public)) {
        Ok(r) => r
            .into_json()
            .context("unreadable answer from the vm to the new device"),
        Err(ApiError::Status {
            status: 409,
            message,
            ..
        }) => bail!(
            "the vm already has a device named {name:?} or with this key ({message}): choose \
             another name, or remove the old device first"
        ),
        Err(e) => Err(e.into()),
    }
}

/// `GET /api/v1/wg/devices`: the vm's answer as is.
pub fn list(api: &VmApi) -> Result<Value> {
    api.get("/api/v1/wg/devices")?
        .into_json()
        .context("unreadable device list from the vm")
}

/// `DELETE /api/v1/wg/devices/{name}`.
pub fn remove(api: &VmApi, name: &str) -> Result<()> {
    match api.delete(&format!("/api/v1/wg/devices/{}", path_segment(name))) {
        Ok(_) => Ok(()),
        Err(ApiError::Status { status: 404, .. }) => {
            bail!("the vm has no WireGuard device named {name:?} (see `guardian wg device list`)")
        }
        Err(e) => Err(e.into()),
    }
}

/// A device made and registered: its configuration and addresses.
pub struct Added {
    /// As the vm registered it.
    pub device: Device,
    /// Its addresses.
    pub addresses: PeerAddresses,
    /// The wg-quick text (holds the private key).
    pub config: Zeroizing<String>,
}

impl std::fmt::Debug for Added {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the configuration: it holds the private key.
        f.debug_struct("Added")
            .field("device", &self.device)
            .field("addresses", &self.addresses)
            .finish_non_exhaustive()
    }
}

/// Makes a key pair, registers its public key as `name` and renders the configuration. The
/// overlay is read (and checked) before anything is registered.
pub fn add(api: &VmApi, name: &str) -> Result<Added> {
    let overlay = overlay(api)?;
    let key = SecretKey::generate();
    let device = register(api, name, &key.public())?;
    let after = || {
        format!(
            "the device {name:?} is registered at the vm but its answer cannot be used; remove \
             it with `guardian wg device remove --name {name}`"
        )
    };
    let config = render_config(&overlay, &device, &key).with_context(after)?;
    let addresses = device.addresses().with_context(after)?;
    Ok(Added {
        device,
        addresses,
        config,
    })
}

/// Both addresses, for messages.
pub fn show(a: &PeerAddresses) -> String {
    format!("{}, {}", a.v6, a.v4)
}

#[cfg(test)]
mod tests {
    use std::io::{BufRead, BufReader, Read, Write};
    use std::net::TcpListener;

    use super::*;
    use crate::api::Timeouts;

    fn wg_answer() -> Value {
        json!({
            "enabled": true,
            "public_key": SecretKey::from_bytes([9; 32]).public().to_base64(),
            "endpoint": "vm.example.org:51820",
            "prefix_v6": "fd12:3456:789a::/64",
            "range_v4": "10.77.0.0/16",
            "vm_address": "fd12:3456:789a::1",
            "vm_address_v4": "10.77.0.1",
            "keepalive_secs": 25
        })
    }

    fn device_json(key: &SecretKey) -> Value {
        json!({
            "name": "phone",
            "public_key": key.public().to_base64(),
            "overlay_ip": "fd12:3456:789a::3",
            "overlay_ipv4": "10.77.0.3",
            "created_ms": 1_700_000_000_000u64
        })
    }

    fn device(key: &SecretKey) -> Device {
        serde_json::from_value(device_json(key)).unwrap()
    }

    #[test]
    fn the_overlay_is_read_from_the_vm_answer() {
        let o = parse_overlay(&wg_answer()).unwrap();
        assert_eq!(o.public_key, SecretKey::from_bytes([9; 32]).public());
        assert_eq!(o.endpoint, "vm.example.org:51820");
        assert_eq!(o.prefixes.cidrs(), ["fd12:3456:789a::/64", "10.77.0.0/16"]);
        assert_eq!(o.keepalive_secs, 25);
        let mut a = wg_answer();
        a.as_object_mut().unwrap().remove("keepalive_secs");
        assert_eq!(parse_overlay(&a).unwrap().keepalive_secs, 25);
    }

    #[test]
    fn an_overlay_that_is_off_or_broken_is_refused() {
        let off = parse_overlay(&json!({"enabled": false})).unwrap_err();
        assert!(format!("{off:#}").contains("overlay is off"), "{off:#}");
        let stopped = json!({"enabled": false, "error": "the WireGuard device is stopped"});
        let off = parse_overlay(&stopped).unwrap_err();
        assert_eq!(
            off.to_string(),
            "the WireGuard overlay is off on this vm: the WireGuard device is stopped"
        );
        for (field, value) in [
            ("public_key", json!("short")),
            ("public_key", Value::Null),
            ("endpoint", json!("vm.example.org")),
            ("endpoint", json!("vm.example.org:0")),
            ("endpoint", json!("fd00::1:51820")),
            ("endpoint", json!("")),
            ("prefix_v6", json!("2001:db8::/64")),
            ("range_v4", json!("8.8.8.0/24")),
        ] {
            let mut a = wg_answer();
            a[field] = value.clone();
            assert!(parse_overlay(&a).is_err(), "{field} = {value}");
        }
        assert!(parse_overlay(&json!({"public_key": "x"})).is_err());
        let mut a = wg_answer();
        a["endpoint"] = json!("[fd00::1]:51820");
        assert_eq!(parse_overlay(&a).unwrap().endpoint, "[fd00::1]:51820");
        a["endpoint"] = json!("203.0.113.7:51820");
        assert!(parse_overlay(&a).is_ok());
    }

    #[test]
    fn the_config_is_rendered_from_the_answers() {
        let overlay = parse_overlay(&wg_answer()).unwrap();
        let key = SecretKey::from_bytes([7; 32]);
        let text = render_config(&overlay, &device(&key), &key).unwrap();
        assert_eq!(
            text.as_str(),
            format!(
                "[Interface]\nPrivateKey = {}\nAddress = fd12:3456:789a::3/128, 10.77.0.3/32\n\n\
                 [Peer]\nPublicKey = {}\nEndpoint = vm.example.org:51820\n\
                 AllowedIPs = fd12:3456:789a::/64, 10.77.0.0/16\nPersistentKeepalive = 25\n",
                key.to_base64(),
                SecretKey::from_bytes([9; 32]).public()
            )
        );
        // Addresses with their prefix length read the same.
        let mut d = device(&key);
        d.overlay_ip = "fd12:3456:789a::3/64".into();
        d.overlay_ipv4 = "10.77.0.3/16".into();
        assert_eq!(render_config(&overlay, &d, &key).unwrap(), text);
    }

    #[test]
    fn a_config_from_a_wrong_answer_is_refused() {
        let overlay = parse_overlay(&wg_answer()).unwrap();
        let key = SecretKey::from_bytes([7; 32]);
        let other = SecretKey::from_bytes([8; 32]);
        let e = render_config(&overlay, &device(&other), &key).unwrap_err();
        assert!(e.to_string().contains("another public key"), "{e}");
        for (field, value) in [
            ("overlay_ip", "fd99::3"),
            ("overlay_ip", "fd12:3456:789a::1"),
            ("overlay_ipv4", "10.78.0.3"),
            ("overlay_ipv4", "10.77.0.1"),
            ("overlay_ipv4", "not an address"),
        ] {
            let mut d = device_json(&key);
            d[field] = json!(value);
            let d: Device = serde_json::from_value(d).unwrap();
            assert!(
                render_config(&overlay, &d, &key).is_err(),
                "{field} = {value}"
            );
        }
    }

    #[test]
    fn only_the_public_key_is_in_the_request() {
        let key = SecretKey::generate();
        let body = register_body("phone", &key.public()).to_string();
        assert!(!body.contains(&key.to_base64()));
        assert_eq!(
            body,
            json!({"name": "phone", "public_key": key.public().to_base64()}).to_string()
        );
    }

    #[test]
    fn the_qr_code_is_a_square_of_half_blocks_with_its_quiet_zone() {
        let text = "[Interface]\nPrivateKey = x\n";
        let image = qr(text).unwrap();
        let modules = qrcode::QrCode::new(text.as_bytes()).unwrap().width() + 8;
        let lines: Vec<&str> = image.lines().collect();
        assert_eq!(lines.len(), modules.div_ceil(2));
        assert!(lines.iter().all(|l| l.chars().count() == modules));
        // Inverted for a dark terminal: the quiet zone is drawn in full blocks.
        assert!(lines[0].chars().all(|c| c == '█'), "{}", lines[0]);
        // A full configuration fits.
        let overlay = parse_overlay(&wg_answer()).unwrap();
        let key = SecretKey::generate();
        assert!(qr(&render_config(&overlay, &device(&key), &key).unwrap()).is_ok());
    }

    #[test]
    fn names_are_escaped_in_the_path() {
        assert_eq!(path_segment("phone-1.a_b~"), "phone-1.a_b~");
        assert_eq!(path_segment("a b/c?d"), "a%20b%2Fc%3Fd");
        assert_eq!(path_segment("é"), "%C3%A9");
    }

    #[test]
    fn the_device_table() {
        let answer = json!({"devices": [
            {"name": "phone", "public_key": "PK1=", "overlay_ip": "fd12:3456:789a::3",
             "overlay_ipv4": "10.77.0.3", "created_ms": 1_000_000_000u64,
             "last_handshake_ms": 1_172_710_000u64, "endpoint": "198.51.100.4:40000"},
            {"name": "laptop", "public_key": "PK2=", "overlay_ip": "fd12:3456:789a::4/64",
             "overlay_ipv4": "10.77.0.4", "created_ms": 1_000_000_000u64,
             "last_handshake_ms": null, "endpoint": null}
        ]});
        let devices = parse_devices(&answer).unwrap();
        let now = 1_000_000_000 + 2 * 86_400_000;
        let text = describe(&devices, now);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3, "{text}");
        assert!(lines[0].starts_with("NAME"));
        let phone: Vec<&str> = lines[1].split_whitespace().collect();
        assert_eq!(
            phone,
            [
                "phone",
                "fd12:3456:789a::3",
                "10.77.0.3",
                "1m",
                "ago",
                "198.51.100.4:40000",
                "2d",
                "ago",
                "PK1="
            ]
        );
        let laptop: Vec<&str> = lines[2].split_whitespace().collect();
        assert_eq!(
            laptop,
            [
                "laptop",
                "fd12:3456:789a::4",
                "10.77.0.4",
                "never",
                "-",
                "2d",
                "ago",
                "PK2="
            ]
        );
        assert!(describe(&[], now).starts_with("no WireGuard devices"));
        assert!(parse_devices(&json!({})).is_err());
        assert!(parse_devices(&json!({"devices": [{"name": "x"}]})).is_err());
    }

    #[test]
    fn times_ago() {
        assert_eq!(ago(5_000, 1_000), "now");
        assert_eq!(ago(0, 999), "now");
        assert_eq!(ago(0, 59_000), "59s ago");
        assert_eq!(ago(0, 60_000), "1m ago");
        assert_eq!(ago(0, 3_600_000), "1h ago");
        assert_eq!(ago(0, 86_400_000 * 3), "3d ago");
    }

    /// What the stand-in answers to a request (its request line and body).
    type Answer = Box<dyn FnOnce(&str, &str) -> (u16, String) + Send>;

    fn canned(status: u16, body: Value) -> Answer {
        Box::new(move |_, _| {
            let text = if body.is_null() {
                String::new()
            } else {
                body.to_string()
            };
            (status, text)
        })
    }

    /// A stand-in HTTP server: answers each request with the next answer (one request per
    /// connection) and gives back what it was sent (request line and body).
    fn stand_in(answers: Vec<Answer>) -> (String, std::thread::JoinHandle<Vec<(String, String)>>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let handle = std::thread::spawn(move || {
            let mut seen = Vec::new();
            for answer in answers {
                let (stream, _) = listener.accept().unwrap();
                let mut reader = BufReader::new(stream);
                let mut line = String::new();
                reader.read_line(&mut line).unwrap();
                let mut length = 0;
                loop {
                    let mut h = String::new();
                    reader.read_line(&mut h).unwrap();
                    if h.trim().is_empty() {
                        break;
                    }
                    if let Some((k, v)) = h.split_once(':')
                        && k.eq_ignore_ascii_case("content-length")
                    {
                        length = v.trim().parse().unwrap();
                    }
                }
                let mut request_body = vec![0; length];
                reader.read_exact(&mut request_body).unwrap();
                let line = line.trim().to_owned();
                let request_body = String::from_utf8(request_body).unwrap();
                let (status, body) = answer(&line, &request_body);
                seen.push((line, request_body));
                let mut stream = reader.into_inner();
                write!(
                    stream,
                    "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\n\
                     Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                )
                .unwrap();
            }
            seen
        });
        (base, handle)
    }

    #[test]
    fn add_sends_only_the_public_key_and_renders_the_answer() {
        let (base, server) = stand_in(vec![
            canned(200, wg_answer()),
            Box::new(|_, body| {
                let sent: Value = serde_json::from_str(body).unwrap();
                let answer = json!({
                    "name": sent["name"],
                    "public_key": sent["public_key"],
                    "overlay_ip": "fd12:3456:789a::2",
                    "overlay_ipv4": "10.77.0.2",
                    "created_ms": 1
                });
                (201, answer.to_string())
            }),
        ]);
        let api = VmApi::new(&base, "tok", Timeouts::REQUEST);
        let added = add(&api, "phone").unwrap();
        let seen = server.join().unwrap();
        assert_eq!(seen[0].0, "GET /api/v1/wg HTTP/1.1");
        assert_eq!(seen[1].0, "POST /api/v1/wg/devices HTTP/1.1");
        let sent: Value = serde_json::from_str(&seen[1].1).unwrap();
        assert_eq!(sent.as_object().unwrap().len(), 2, "{sent}");
        assert_eq!(sent["name"], "phone");
        // The private key in the configuration is the pair of the public key sent, and was
        // not sent.
        let private = added
            .config
            .lines()
            .find_map(|l| l.strip_prefix("PrivateKey = "))
            .unwrap();
        assert!(
            !seen
                .iter()
                .any(|(l, b)| l.contains(private) || b.contains(private))
        );
        let private = SecretKey::from_base64(private).unwrap();
        assert_eq!(sent["public_key"], private.public().to_base64());
        assert!(
            added
                .config
                .contains("Address = fd12:3456:789a::2/128, 10.77.0.2/32\n"),
            "{}",
            added.config.as_str()
        );
        assert_eq!(show(&added.addresses), "fd12:3456:789a::2, 10.77.0.2");
        assert_eq!(added.device.name, "phone");
    }

    #[test]
    fn add_explains_a_name_or_key_the_vm_has() {
        let (base, server) = stand_in(vec![
            canned(200, wg_answer()),
            canned(
                409,
                json!({"error": "conflict", "message": "a device named phone exists"}),
            ),
        ]);
        let api = VmApi::new(&base, "tok", Timeouts::REQUEST);
        let e = add(&api, "phone").unwrap_err();
        assert!(
            format!("{e:#}").contains("already has a device named \"phone\""),
            "{e:#}"
        );
        assert!(
            format!("{e:#}").contains("a device named phone exists"),
            "{e:#}"
        );
        assert_eq!(server.join().unwrap().len(), 2);
    }

    #[test]
    fn add_stops_before_registering_when_the_overlay_is_off() {
        let (base, server) = stand_in(vec![canned(200, json!({"enabled": false}))]);
        let api = VmApi::new(&base, "tok", Timeouts::REQUEST);
        let e = add(&api, "phone").unwrap_err();
        assert!(format!("{e:#}").contains("overlay is off"), "{e:#}");
        assert_eq!(server.join().unwrap().len(), 1);
    }

    #[test]
    fn a_wrong_registration_answer_says_how_to_undo_it() {
        let (base, server) = stand_in(vec![
            canned(200, wg_answer()),
            canned(
                201,
                json!({"name": "phone", "public_key": SecretKey::from_bytes([1; 32]).public().to_base64(),
                       "overlay_ip": "fd12:3456:789a::2", "overlay_ipv4": "10.77.0.2"}),
            ),
        ]);
        let api = VmApi::new(&base, "tok", Timeouts::REQUEST);
        let e = format!("{:#}", add(&api, "phone").unwrap_err());
        assert!(e.contains("guardian wg device remove --name phone"), "{e}");
        assert!(e.contains("another public key"), "{e}");
        server.join().unwrap();
    }

    #[test]
    fn remove_names_an_unknown_device() {
        let (base, server) = stand_in(vec![
            canned(
                404,
                json!({"error": "not_found", "message": "no such device"}),
            ),
            canned(204, Value::Null),
        ]);
        let api = VmApi::new(&base, "tok", Timeouts::REQUEST);
        let e = remove(&api, "old phone").unwrap_err();
        assert!(
            e.to_string()
                .contains("no WireGuard device named \"old phone\""),
            "{e}"
        );
        remove(&api, "laptop").unwrap();
        let seen = server.join().unwrap();
        assert_eq!(seen[0].0, "DELETE /api/v1/wg/devices/old%20phone HTTP/1.1");
        assert_eq!(seen[1].0, "DELETE /api/v1/wg/devices/laptop HTTP/1.1");
    }
}
