//! `compose/`: Debian's docker-compose parses `docker-compose.yml` with `.env.example` (no
//! Docker engine runs here), and the vm binary, started by the image's entry point with the
//! vm service's environment from that parsed file (its S3 endpoint and keys pointed at the
//! local radosgw instead of the MinIO container), initialises (with the WireGuard overlay on,
//! as the file asks, and the container's NET_ADMIN, TUN device and forwarding sysctls),
//! serves its API, and archives an edge's clip into S3.

mod support;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use support::*;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// The vm service's environment from `docker-compose config`.
fn compose_vm_env() -> HashMap<String, String> {
    let out = Command::new("docker-compose")
        .current_dir(repo())
        .args([
            "-f",
            "compose/docker-compose.yml",
            "--env-file",
            "compose/.env.example",
            "config",
        ])
        .output()
        .expect("docker-compose (scripts/setup.sh installs it)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // docker-compose's own YAML library turns it into JSON.
    let mut py = Command::new("/usr/bin/python3")
        .args([
            "-c",
            "import sys, yaml, json; c = yaml.safe_load(sys.stdin); \
             vm = c['services']['vm']; \
             json.dump({'services': sorted(c['services']), 'volumes': sorted(c.get('volumes') or {}), \
             'env': vm['environment'], 'ports': vm['ports'], 'cap_add': vm.get('cap_add'), \
             'devices': vm.get('devices'), 'sysctls': vm.get('sysctls'), 'user': vm.get('user')}, sys.stdout)",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    py.stdin.take().unwrap().write_all(&out.stdout).unwrap();
    let parsed = py.wait_with_output().unwrap();
    assert!(parsed.status.success());
    let v: serde_json::Value = serde_json::from_slice(&parsed.stdout).unwrap();
    assert_eq!(v["services"], serde_json::json!(["minio", "vm"]));
    assert_eq!(v["volumes"], serde_json::json!(["minio-data", "vm-data"]));
    let ports = v["ports"].to_string();
    assert!(
        ports.contains("4001/udp") || ports.contains("\"protocol\":\"udp\""),
        "{ports}"
    );
    // The WireGuard overlay: its UDP port published, a TUN device, NET_ADMIN, forwarding.
    assert!(ports.contains("51820"), "{ports}");
    assert_eq!(v["cap_add"], serde_json::json!(["NET_ADMIN"]));
    assert!(
        v["devices"].to_string().contains("/dev/net/tun"),
        "{}",
        v["devices"]
    );
    let sysctls = v["sysctls"].to_string();
    for key in ["net.ipv4.ip_forward", "net.ipv6.conf.all.forwarding"] {
        assert!(sysctls.contains(key), "{sysctls}");
    }
    assert_eq!(v["user"], "0:0");
    v["env"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| {
            (
                k.clone(),
                v.as_str().map(str::to_owned).unwrap_or(v.to_string()),
            )
        })
        .collect()
}

#[test]
fn compose_parses_and_its_vm_environment_runs_against_local_s3() {
    let mut env = compose_vm_env();
    assert_eq!(env["GUARDIAN_S3_ENDPOINT"], "http://minio:9000");
    assert_eq!(env["GUARDIAN_S3_ACCESS_KEY"], "guardian-change-me");

    // The local S3 server in MinIO's place.
    let script = repo().join("scripts/radosgw.sh");
    ok(Command::new(&script).arg("start"));
    for line in ok(Command::new(&script).arg("env")).lines() {
        if let Some((k, v)) = line.strip_prefix("export ").and_then(|l| l.split_once('=')) {
            env.insert(
                k.to_owned(),
                v.trim_matches('\'').trim_matches('"').to_owned(),
            );
        }
    }
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("vm");
    let (p2p, http) = (free_port(), free_port());
    env.insert("GUARDIAN_FQDN".into(), "127.0.0.1".into());
    env.insert("GUARDIAN_P2P_PORT".into(), p2p.to_string());
    env.insert("GUARDIAN_HTTP_LISTEN".into(), format!("127.0.0.1:{http}"));
    env.insert("GUARDIAN_DATA".into(), data.display().to_string());
    env.insert(
        "GUARDIAN_VM_BIN".into(),
        bin("guardian-vm").display().to_string(),
    );
    // The overlay on, as the file says, on an interface and port of this test's own.
    assert_eq!(env["GUARDIAN_WG_ENABLED"], "true");
    let wg_port = free_port();
    let wg_interface = format!("gcmp{}", std::process::id() % 100_000);
    env.insert("GUARDIAN_WG_PORT".into(), wg_port.to_string());
    env.insert("GUARDIAN_WG_INTERFACE".into(), wg_interface.clone());
    let log = root.path().join("vm.log");
    let mut cmd = Command::new(repo().join("compose/entrypoint.sh"));
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap())
        .envs(&env);
    let mut vm_proc = Proc::spawn(&mut cmd, &log);
    let url = format!("http://127.0.0.1:{http}");
    wait_for("the vm's API", Duration::from_secs(30), &[&log], || {
        ureq::get(&format!("{url}/healthz")).call().is_ok()
    });
    let text = std::fs::read_to_string(&log).unwrap();
    let token = text
        .lines()
        .find_map(|l| l.strip_prefix("owner API token: "))
        .expect("the entry point prints the owner's token once")
        .trim()
        .to_owned();
    let wg: serde_json::Value = ureq::get(&format!("{url}/api/v1/wg"))
        .set("Authorization", &format!("Bearer {token}"))
        .call()
        .unwrap()
        .into_json()
        .unwrap();
    assert_eq!(wg["interface"], wg_interface.as_str(), "{wg}");
    assert_eq!(
        wg["endpoint"],
        format!("127.0.0.1:{wg_port}").as_str(),
        "{wg}"
    );
    // Up as root; elsewhere off with the reason (the vm serves on either way).
    assert!(
        wg["enabled"] == true || wg["error"].is_string(),
        "the overlay neither runs nor says why: {wg}"
    );

    // An edge archives a clip; it lands in radosgw through the environment's settings.
    let pkg = root.path().join("home.tar");
    ok(Command::new(bin("guardian-vm"))
        .args([
            "package",
            "edge",
            "--name",
            "home",
            "--recipient",
            RECIPIENT,
            "--data",
        ])
        .arg(&data)
        .arg("--out")
        .arg(&pkg));
    let mut edge = Edge::install(&pkg, &root.path().join("edge"));
    edge.start();
    let clip = root.path().join("clip.mp4");
    std::fs::write(&clip, pseudo_random(300_000, 77)).unwrap();
    let camera = format!("compose-{}", std::process::id() % 100_000);
    ok(Command::new(bin("guardian-edge"))
        .args(["archive-file", "--camera", &camera, "--data"])
        .arg(&edge.dir)
        .arg(&clip));
    let edge_log = edge.log();
    wait_for(
        "the clip archived",
        Duration::from_secs(60),
        &[&log, &edge_log],
        || {
            ureq::get(&format!("{url}/api/v1/archive?camera={camera}"))
                .set("Authorization", &format!("Bearer {token}"))
                .call()
                .ok()
                .and_then(|r| r.into_json::<serde_json::Value>().ok())
                .is_some_and(|b| b["objects"].as_array().is_some_and(|o| !o.is_empty()))
        },
    );
    assert!(
        !data.join("s3").exists(),
        "with an endpoint configured the embedded S3 server does not run"
    );
    vm_proc.stop();
}
