//! `guardian-vm package edge --format iso`: a cloud-init NoCloud seed. Read back with xorriso
//! (an independent ISO 9660 reader): the volume label is `cidata`; meta-data, user-data, the
//! signed package and the agent are on it; user-data is cloud-config that installs the unit and
//! enrolls with `guardian-edge init`; the package from the ISO passes the edge's signature
//! check, and a tampered one does not. With `--detector`, the seed carries the detector bundle
//! (`scripts/detector-bundle.sh`) and installs it where the edge finds it unconfigured.

mod support;

use std::process::Command;

use support::*;

#[test]
fn the_iso_seed_holds_a_signed_package_and_cloud_config() {
    let root = tempfile::tempdir().unwrap();
    let vm = Vm::init(root.path(), "vm");
    let iso = root.path().join("home.iso");
    let bundle = root.path().join("detector");
    ok(Command::new(repo().join("scripts/detector-bundle.sh")).arg(&bundle));
    ok(Command::new(bin("guardian-vm"))
        .args([
            "package",
            "edge",
            "--format",
            "iso",
            "--name",
            "Front Door",
            "--recipient",
            RECIPIENT,
            "--data",
        ])
        .arg(&vm.dir)
        .arg("--detector")
        .arg(&bundle)
        .arg("--out")
        .arg(&iso));
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&iso).unwrap().permissions().mode() & 0o777,
        0o600,
        "holds a key"
    );

    let info = Command::new("xorriso")
        .args(["-indev"])
        .arg(&iso)
        .args(["-pvd_info"])
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&info.stdout).to_string() + &String::from_utf8_lossy(&info.stderr);
    assert!(text.contains("Volume Id    : cidata"), "{text}");

    let out = root.path().join("seed");
    let x = Command::new("xorriso")
        .args(["-osirrox", "on", "-indev"])
        .arg(&iso)
        .args(["-extract", "/"])
        .arg(&out)
        .output()
        .unwrap();
    assert!(x.status.success(), "{}", String::from_utf8_lossy(&x.stderr));
    let mut names: Vec<String> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "detector",
            "edge-package.tar",
            "guardian-edge",
            "meta-data",
            "user-data"
        ]
    );

    let user_data = std::fs::read_to_string(out.join("user-data")).unwrap();
    assert!(user_data.starts_with("#cloud-config\n"));
    for needle in [
        "/etc/systemd/system/guardian-edge.service",
        "ExecStart=/usr/local/bin/guardian-edge run --data /var/lib/guardian/edge",
        "guardian-edge init --discovery --package /var/lib/guardian/edge-package.tar",
        "enable, --now, guardian-edge.service",
        "cp -R /mnt/cidata/detector/. /usr/lib/private-ai-guardian/",
        &vm.tenant_id,
        RECIPIENT,
    ] {
        assert!(
            user_data.contains(needle),
            "no {needle} in user-data:\n{user_data}"
        );
    }
    // YAML that parses, with the structure cloud-init reads.
    let py = Command::new("/usr/bin/python3")
        .args([
            "-c",
            "import sys, yaml; d = yaml.safe_load(open(sys.argv[1])); \
               assert d['write_files'][0]['path'].endswith('guardian-edge.service'); \
               assert len(d['runcmd']) == 4; print('ok')",
        ])
        .arg(out.join("user-data"))
        .output()
        .unwrap();
    assert!(
        py.status.success(),
        "{}",
        String::from_utf8_lossy(&py.stderr)
    );
    let meta = std::fs::read_to_string(out.join("meta-data")).unwrap();
    assert!(
        meta.contains("local-hostname: guardian-front-door"),
        "{meta}"
    );
    // The bundle holds the model set-up made and the OpenVINO C library, as the edge looks
    // for them under /usr/lib/private-ai-guardian.
    let model = out.join("detector/models/nanodet-m-416");
    for f in ["nanodet.xml", "nanodet.bin", "model.json"] {
        assert_eq!(
            std::fs::read(model.join(f)).unwrap(),
            std::fs::read(cache().join("models/nanodet-m-416").join(f)).unwrap(),
            "{f}"
        );
    }
    let lib = openvino_lib();
    assert_eq!(
        std::fs::metadata(out.join("detector/openvino").join(lib.file_name().unwrap()))
            .unwrap()
            .len(),
        std::fs::metadata(&lib).unwrap().len()
    );
    assert!(
        out.join("detector/openvino/libopenvino_intel_cpu_plugin.so")
            .is_file()
    );
    // The binary on the seed is the edge agent.
    let v = ok(Command::new(out.join("guardian-edge")).arg("--version"));
    assert!(v.starts_with("guardian-edge "), "{v}");

    // The package off the ISO installs (its signature checks); a flipped byte does not.
    let edge = Edge::install(&out.join("edge-package.tar"), &root.path().join("edge"));
    assert!(edge.dir.join("package.json").exists());
    let mut bytes = std::fs::read(out.join("edge-package.tar")).unwrap();
    let i = bytes.windows(6).position(|w| w == b"tenant").unwrap() + 10;
    bytes[i] ^= 0x01;
    let bad = root.path().join("bad.tar");
    std::fs::write(&bad, bytes).unwrap();
    let r = Command::new(bin("guardian-edge"))
        .args(["init", "--package"])
        .arg(&bad)
        .arg("--data")
        .arg(root.path().join("edge2"))
        .output()
        .unwrap();
    assert!(!r.status.success());
}
