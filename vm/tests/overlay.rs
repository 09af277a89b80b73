//! The WireGuard overlay at the vm, with the real binary (`docs/overlay.md`): the device comes
//! up on a TUN interface that Debian's `wg` reads through the UAPI socket; the owner's devices
//! are registered, listed and removed through the API and the CLI (a running vm applies the
//! CLI's changes within seconds); a stock WireGuard (`wireguard-go`) with a device's key
//! completes a handshake the API then shows; a taken interface name leaves the vm running
//! without the overlay, saying why; the interface goes with the vm.
//!
//! An edge's key offer over libp2p is left to the netsim tests (it needs an edge with the
//! overlay); its decision is unit-tested in `vm/src/overlay/negotiate.rs`.
//!
//! Needs root (TUN devices, `ip`): without it, or without `/dev/net/tun`, each test says
//! SKIPPED and passes, as the netsim tests do.

mod support;

use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use guardian_overlay::keys::{PublicKey, SecretKey};
use serde_json::{Value, json};
use support::*;

/// Root and a TUN device, or a SKIPPED line on stderr (written straight there: the harness
/// captures `eprintln!` of passing tests).
fn can_run(test: &str) -> bool {
    let root = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(2).map(|euid| euid == "0"))
        })
        .unwrap_or(false);
    let tun = Path::new("/dev/net/tun").exists();
    if root && tun {
        return true;
    }
    use std::io::Write;
    let _ = writeln!(
        std::io::stderr(),
        "SKIPPED {test}: the overlay tests need root and /dev/net/tun (TUN devices, `ip`)"
    );
    false
}

static NEXT: AtomicU32 = AtomicU32::new(0);

/// An interface name no other test uses (at most 15 characters).
fn interface(prefix: &str) -> String {
    let n = NEXT.fetch_add(1, Ordering::SeqCst);
    format!("{prefix}{}x{n}", std::process::id() % 100_000)
}

/// A vm with the overlay on: its own interface, UDP port and IPv4 range.
fn overlay_vm(root: &Path, name: &str, iface: &str) -> (Vm, u16) {
    let vm = Vm::init(root, name);
    let port = free_port();
    let n = NEXT.fetch_add(1, Ordering::SeqCst);
    let octet = 100 + (std::process::id() + n) % 100;
    vm.edit_config(|c| {
        c.wg.enabled = true;
        c.wg.interface = iface.to_owned();
        c.wg.listen_port = port;
        c.wg.range_v4 = format!("10.{octet}.0.0/16");
    });
    (vm, port)
}

/// `wg show <iface> <what>`, or its error.
fn wg_show(iface: &str, what: &str) -> Result<String, String> {
    let out = Command::new("wg")
        .args(["show", iface])
        .args((!what.is_empty()).then_some(what))
        .output()
        .map_err(|e| format!("wg (wireguard-tools, scripts/packages/netsim.txt): {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

fn peers(iface: &str) -> String {
    wg_show(iface, "peers").unwrap_or_else(|e| panic!("wg show {iface} peers: {e}"))
}

fn link_exists(iface: &str) -> bool {
    Command::new("ip")
        .args(["link", "show", "dev", iface])
        .output()
        .is_ok_and(|o| o.status.success())
}

fn guardian_vm(args: &[&str], data: &Path) -> std::process::Output {
    Command::new(bin("guardian-vm"))
        .args(args)
        .arg("--data")
        .arg(data)
        .output()
        .unwrap()
}

#[test]
fn the_overlay_runs_and_takes_the_owners_devices() {
    if !can_run("the_overlay_runs_and_takes_the_owners_devices") {
        return;
    }
    let root = tempfile::tempdir().unwrap();
    let iface = interface("gvt");
    let (mut vm, port) = overlay_vm(root.path(), "vm", &iface);
    vm.start();
    let log = vm.log();

    // The vm's side, and its key: made at the first start, 0600, never in the log.
    let (status, wg) = vm.get("/api/v1/wg");
    assert_eq!(status, 200, "{wg}");
    assert_eq!(
        (&wg["enabled"], &wg["error"]),
        (&json!(true), &Value::Null),
        "{wg}"
    );
    assert_eq!(wg["interface"], iface.as_str());
    assert_eq!(wg["endpoint"], format!("127.0.0.1:{port}").as_str());
    assert_eq!(wg["keepalive_secs"], 25);
    let key_file = vm.dir.join("wg.key");
    let secret = std::fs::read_to_string(&key_file).unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&key_file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let vm_key = SecretKey::from_base64(secret.trim()).unwrap().public();
    assert_eq!(wg["public_key"], vm_key.to_base64().as_str());
    let prefix = wg["prefix_v6"]
        .as_str()
        .unwrap()
        .trim_end_matches("/64")
        .to_owned();
    assert!(prefix.starts_with("fd") && prefix.ends_with("::"), "{wg}");
    assert_eq!(wg["vm_address"], format!("{prefix}1").as_str());
    let range = wg["range_v4"].as_str().unwrap().to_owned();
    let v4_base = range.trim_end_matches(".0/16").to_owned();
    assert_eq!(wg["vm_address_v4"], format!("{v4_base}.1").as_str());

    // Debian's `wg` reads the device through its UAPI socket.
    let shown = wg_show(&iface, "").unwrap_or_else(|e| panic!("wg show {iface}: {e}"));
    assert!(
        shown.contains(&format!("listening port: {port}")),
        "{shown}"
    );
    assert!(shown.contains(&vm_key.to_base64()), "{shown}");

    // A device: registered, listed, on the device with its host routes.
    let phone = SecretKey::generate();
    let (status, added) = vm.send(
        "POST",
        "/api/v1/wg/devices",
        Some(&json!({"name": "phone", "public_key": phone.public().to_base64()})),
    );
    assert_eq!(status, 201, "{added}");
    assert_eq!(added["name"], "phone");
    assert_eq!(added["public_key"], phone.public().to_base64().as_str());
    assert_eq!(added["overlay_ip"], format!("{prefix}2").as_str());
    assert_eq!(added["overlay_ipv4"], format!("{v4_base}.2").as_str());
    assert!(added["created_ms"].is_u64());
    assert!(peers(&iface).contains(&phone.public().to_base64()));
    let allowed = wg_show(&iface, "allowed-ips").unwrap();
    assert!(
        allowed.contains(&format!("{prefix}2/128")) && allowed.contains(&format!("{v4_base}.2/32")),
        "{allowed}"
    );
    let other = SecretKey::generate().public().to_base64();
    for (body, want) in [
        (json!({"name": "phone", "public_key": other}), 409),
        (
            json!({"name": "tablet", "public_key": phone.public().to_base64()}),
            409,
        ),
        (
            json!({"name": "tablet", "public_key": vm_key.to_base64()}),
            409,
        ),
        (json!({"name": "Tablet", "public_key": other}), 400),
        (json!({"name": "tablet", "public_key": "c2hvcnQ="}), 400),
        (
            json!({"name": "tablet", "public_key": other, "extra": 1}),
            400,
        ),
    ] {
        let (status, answer) = vm.send("POST", "/api/v1/wg/devices", Some(&body));
        assert_eq!(status, want, "{body} -> {answer}");
        assert!(answer["message"].is_string(), "{answer}");
    }
    let (_, listed) = vm.get("/api/v1/wg/devices");
    assert_eq!(listed["devices"].as_array().unwrap().len(), 1, "{listed}");
    assert_eq!(listed["devices"][0]["name"], "phone");
    assert_eq!(listed["devices"][0]["last_handshake_ms"], Value::Null);

    // A stock WireGuard with the phone's key shakes hands with the vm; the API shows when
    // and from where.
    let client = interface("gvc");
    let client_port = free_port();
    let _wg_go = handshake_client(
        root.path(),
        &client,
        client_port,
        &phone,
        &vm_key,
        port,
        &prefix,
    );
    wait_for(
        "the phone's handshake in the API",
        Duration::from_secs(20),
        &[&log, &root.path().join("wireguard-go.log")],
        || {
            let (_, l) = vm.get("/api/v1/wg/devices");
            l["devices"][0]["last_handshake_ms"].is_u64()
                && l["devices"][0]["endpoint"] == format!("127.0.0.1:{client_port}").as_str()
        },
    );

    // Removed: off the device at once (its handshakes go with it).
    let (status, _) = vm.send("DELETE", "/api/v1/wg/devices/phone", None);
    assert_eq!(status, 204);
    assert!(!peers(&iface).contains(&phone.public().to_base64()));
    let (status, answer) = vm.send("DELETE", "/api/v1/wg/devices/phone", None);
    assert_eq!(status, 404, "{answer}");
    let (_, listed) = vm.get("/api/v1/wg/devices");
    assert_eq!(listed["devices"], json!([]));

    // The CLI writes the database; the running vm puts the device on within seconds, with
    // the next index (a removed device's addresses are never given again).
    let laptop = SecretKey::generate().public().to_base64();
    let out = guardian_vm(
        &[
            "wg",
            "device",
            "add",
            "--name",
            "laptop",
            "--public-key",
            &laptop,
        ],
        &vm.dir,
    );
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains(&format!("overlay addresses: {prefix}3, {v4_base}.3")),
        "{text}"
    );
    assert!(text.contains(&format!("vm public key: {vm_key}")), "{text}");
    assert!(
        text.contains(&format!("Endpoint = 127.0.0.1:{port}")),
        "{text}"
    );
    assert!(
        !text.contains(secret.trim()),
        "the vm's private key printed"
    );
    wait_for(
        "the CLI's device on the running vm's device",
        Duration::from_secs(10),
        &[&log],
        || peers(&iface).contains(&laptop),
    );
    let (_, listed) = vm.get("/api/v1/wg/devices");
    assert_eq!(listed["devices"][0]["name"], "laptop", "{listed}");
    assert_eq!(
        listed["devices"][0]["overlay_ip"],
        format!("{prefix}3").as_str()
    );
    let out = guardian_vm(&["wg", "device", "list"], &vm.dir);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(text.contains("laptop") && text.contains(&laptop), "{text}");
    let out = guardian_vm(
        &[
            "wg",
            "device",
            "add",
            "--name",
            "laptop",
            "--public-key",
            &other,
        ],
        &vm.dir,
    );
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("a device named \"laptop\" exists"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = guardian_vm(&["wg", "device", "remove", "--name", "laptop"], &vm.dir);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    wait_for(
        "the CLI's removal on the running vm's device",
        Duration::from_secs(10),
        &[&log],
        || !peers(&iface).contains(&laptop),
    );
    let out = guardian_vm(&["wg", "device", "remove", "--name", "laptop"], &vm.dir);
    assert!(!out.status.success());

    // The vm's private key never reached its log.
    let logged = std::fs::read_to_string(&log).unwrap();
    assert!(
        !logged.contains(secret.trim()),
        "the vm's private key is in its log"
    );

    // The interface and its socket go with the vm.
    assert_eq!(vm.stop_within(Duration::from_secs(10)), Some(0));
    assert!(!link_exists(&iface), "{iface} is still there");
    assert!(!Path::new(&format!("/var/run/wireguard/{iface}.sock")).exists());
}

/// `wireguard-go` on `iface` with `key`, the vm as its one peer (keepalive every second, so
/// it shakes hands at once).
fn handshake_client(
    root: &Path,
    iface: &str,
    listen_port: u16,
    key: &SecretKey,
    vm_key: &PublicKey,
    vm_port: u16,
    prefix: &str,
) -> Proc {
    let log = root.join("wireguard-go.log");
    let p = Proc::spawn(Command::new("wireguard-go").args(["-f", iface]), &log);
    wait_for(
        "wireguard-go's interface",
        Duration::from_secs(10),
        &[&log],
        || wg_show(iface, "").is_ok(),
    );
    let key_file = root.join("phone.key");
    std::fs::write(&key_file, format!("{}\n", key.to_base64())).unwrap();
    run_ok(
        Command::new("wg")
            .args(["set", iface, "private-key"])
            .arg(&key_file)
            .args([
                "listen-port",
                &listen_port.to_string(),
                "peer",
                &vm_key.to_base64(),
            ])
            .args(["endpoint", &format!("127.0.0.1:{vm_port}")])
            .args(["allowed-ips", &format!("{prefix}1/128")])
            .args(["persistent-keepalive", "1"]),
    );
    run_ok(Command::new("ip").args(["link", "set", "dev", iface, "up"]));
    p
}

#[test]
fn a_taken_interface_name_leaves_the_vm_running_without_the_overlay() {
    if !can_run("a_taken_interface_name_leaves_the_vm_running_without_the_overlay") {
        return;
    }
    let root = tempfile::tempdir().unwrap();
    let iface = interface("gvt");
    let (mut first, port) = overlay_vm(root.path(), "first", &iface);
    first.start();
    let (mut second, _) = overlay_vm(root.path(), "second", &iface);
    second.start();
    let (status, wg) = second.get("/api/v1/wg");
    assert_eq!(status, 200, "{wg}");
    assert_eq!(wg["enabled"], false, "{wg}");
    let error = wg["error"]
        .as_str()
        .unwrap_or_else(|| panic!("no error in {wg}"));
    assert!(error.contains(&iface), "{error}");
    assert!(wg["public_key"].is_string(), "{wg}");
    let log = std::fs::read_to_string(second.log()).unwrap();
    assert!(
        log.contains("the WireGuard overlay is off: its device cannot be brought up"),
        "{log}"
    );
    // The second vm serves on, refusing devices with 503.
    let (status, answer) = second.send(
        "POST",
        "/api/v1/wg/devices",
        Some(&json!({"name": "phone", "public_key": SecretKey::generate().public().to_base64()})),
    );
    assert_eq!(
        (status, &answer["error"]),
        (503, &json!("overlay_off")),
        "{answer}"
    );
    assert_eq!(second.get("/api/v1/devices").0, 200);
    // The first vm's device is untouched: `wg` still reads it through its socket.
    let shown = wg_show(&iface, "listen-port").unwrap_or_else(|e| panic!("wg show {iface}: {e}"));
    assert_eq!(shown.trim(), port.to_string());
    assert_eq!(second.stop_within(Duration::from_secs(10)), Some(0));
    assert!(
        wg_show(&iface, "listen-port").is_ok(),
        "the second vm's exit took the first's socket"
    );
    assert_eq!(first.stop_within(Duration::from_secs(10)), Some(0));
}
