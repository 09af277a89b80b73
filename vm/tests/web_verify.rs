//! `guardian web verify URL` against the app the vm serves (this release's: exit 0) and against
//! a server whose page was changed (exit 1, the page named as different), with stock Python as
//! that other server.

mod support;

use std::process::{Command, Stdio};
use std::time::Duration;

use support::*;

#[test]
fn the_vms_app_is_this_releases_and_a_changed_page_is_caught() {
    let root = tempfile::tempdir().unwrap();
    let mut vm = Vm::init(root.path(), "vm");
    vm.start();
    let log = vm.log();
    wait_for("the vm's page", Duration::from_secs(20), &[&log], || {
        ureq::get(&format!("{}/", vm.http)).call().is_ok()
    });

    let out = Command::new(bin("guardian"))
        .args(["web", "verify", &vm.http])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("is this release's"), "{text}");
    assert!(
        !text.contains("DIFFERENT") && !text.contains("MISSING"),
        "{text}"
    );

    // Another server: the same page with one more script.
    let page = ureq::get(&format!("{}/", vm.http))
        .call()
        .unwrap()
        .into_string()
        .unwrap();
    let site = root.path().join("site");
    std::fs::create_dir_all(&site).unwrap();
    std::fs::write(
        site.join("index.html"),
        page.replace(
            "</head>",
            "<script src=\"/assets/steal.js\"></script></head>",
        ),
    )
    .unwrap();
    let port = free_port();
    let mut server = Command::new("python3")
        .args([
            "-m",
            "http.server",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
        ])
        .current_dir(&site)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let url = format!("http://127.0.0.1:{port}");
    wait_for("the other server", Duration::from_secs(20), &[], || {
        ureq::get(&format!("{url}/")).call().is_ok()
    });
    let out = Command::new(bin("guardian"))
        .args(["web", "verify", &url, "--json"])
        .output()
        .unwrap();
    let _ = server.kill();
    let _ = server.wait();
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["ok"], false);
    let files = v["files"].as_array().unwrap();
    let page_check = files.iter().find(|f| f["path"] == "/").unwrap();
    assert!(page_check["served"].is_string());
    assert_ne!(page_check["served"], page_check["expected"]);
    assert!(v["csp"].is_null(), "python serves no policy");
}
