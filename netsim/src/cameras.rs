//! Cameras on an edge's LAN, found and configured from afar: the vm public, an edge behind a
//! home NAT with its detector and discovery on, and beside it on the same LAN (a bridge,
//! [`Lab::host_beside`]) a camera host running the ONVIF camera stand-in
//! (`edge/tools/camera-standin.py --onvif-port`, which answers WS-Discovery, serves SOAP
//! device and media services with WS-Security digest, and RTSP with digest authentication,
//! a main stream and a substream). Nobody touches the edge: the owner drives the vm's API.

use std::process::Command;
use std::time::Duration;

use crate::error::{Error, Result};
use crate::guardian::{Edge, Vm, repo_dir, wait_for};
use crate::lab::{Host, Lab};
use crate::nat::NatProfile;
use crate::process::Proc;
use crate::scenario::{DELIVERY_TIMEOUT, lab_with_vm, wait_enrolled};

/// The ONVIF stand-in's user.
pub const CAMERA_USER: &str = "admin";
/// Its RTSP port.
pub const RTSP_PORT: u16 = 8554;
/// Its ONVIF port.
pub const ONVIF_PORT: u16 = 8080;

/// The camera stand-in on the camera host.
pub struct OnvifCamera {
    /// Its process.
    pub proc: Proc,
    /// Its ONVIF device service (`http://ip:8080/onvif/device_service`).
    pub xaddr: String,
}

impl OnvifCamera {
    /// Starts it on `host` with `password`, a person walking through per `schedule`
    /// (looped, from launch), and waits (up to 30 s) for its ONVIF service; `n` names its
    /// log apart from an earlier run's.
    pub fn start(lab: &Lab, host: &Host, password: &str, schedule: &str, n: u32) -> Result<Self> {
        let mut c = Command::new("/usr/bin/python3");
        c.arg(repo_dir().join("edge/tools/camera-standin.py"))
            .args(["--address", &host.ip.to_string()])
            .args(["--port", &RTSP_PORT.to_string(), "--path", "/cam"])
            .args(["--user", CAMERA_USER, "--password", password])
            .args([
                "--sub-path",
                "/sub",
                "--onvif-port",
                &ONVIF_PORT.to_string(),
            ])
            .args(["--schedule", schedule, "--loop", "--start", "launch"])
            .args(["--maker", "Guardian Labs", "--model", "StandIn-Cam 2"]);
        let proc = lab.spawn(host, &format!("{}-{n}", host.name), c)?;
        let mut xaddr = None;
        wait_for("the ONVIF camera stand-in", Duration::from_secs(30), || {
            xaddr = proc
                .stdout()
                .lines()
                .find_map(|l| l.strip_prefix("ONVIF ").map(|x| x.trim().to_owned()));
            xaddr.is_some()
        })
        .map_err(|e| Error::Invalid(format!("{e}\n{}", proc.log_tail(20))))?;
        Ok(OnvifCamera {
            proc,
            xaddr: xaddr.expect("set when ready"),
        })
    }

    /// Unix times (s) of its lines starting with `what` (`PERSON_ENTER`, `PERSON_EXIT`).
    pub fn times(&self, what: &str) -> Vec<f64> {
        guardian_test_support::standin_times(&self.proc.stdout(), what)
    }
}

/// A vm, an edge behind a NAT with discovery on, and a camera host beside it.
pub struct CameraLab {
    /// The lab.
    pub lab: Lab,
    /// The vm.
    pub vm: Vm,
    /// The edge (enrolled, online).
    pub edge: Edge,
    /// The camera host, on the edge's LAN.
    pub camera_host: Host,
}

impl CameraLab {
    /// Builds it: the edge installed with `init --discovery` as installed edges are, its probe
    /// held to the first 16 addresses of its LAN (the camera is the third), with the
    /// detector; started and enrolled.
    pub fn new(nat: NatProfile) -> Result<CameraLab> {
        let (lab, vm) = lab_with_vm()?;
        let host = lab.host_behind("home", nat)?;
        let camera_host = lab.host_beside("camera", &host)?;
        let pkg = vm.package("home")?;
        let mut edge = Edge::install_with(&lab, host, &pkg, &["--discovery"])?;
        let [a, b, c, _] = edge.host.ip.octets();
        guardian_test_support::edit_toml(
            &edge.dir.join("edge.toml"),
            &[(
                "discovery.subnets",
                toml::Value::Array(vec![toml::Value::String(format!("{a}.{b}.{c}.0/28"))]),
            )],
        );
        edge.with_detector()?;
        edge.start(&lab)?;
        wait_enrolled(&lab, &vm, &edge, DELIVERY_TIMEOUT)?;
        Ok(CameraLab {
            lab,
            vm,
            edge,
            camera_host,
        })
    }

    /// `GET path` (owner token): the JSON body, or an error naming the status.
    pub fn get(&self, path: &str) -> Result<serde_json::Value> {
        let (status, body) = self.vm.get(&self.lab, path)?;
        if status != 200 {
            return Err(Error::Invalid(format!("GET {path}: {status} {body}")));
        }
        Ok(body)
    }

    /// The camera `id` of `GET /api/v1/cameras`.
    pub fn camera(&self, id: &str) -> Option<serde_json::Value> {
        self.get("/api/v1/cameras")
            .ok()?
            .get("cameras")?
            .as_array()?
            .iter()
            .find(|c| c["id"] == id)
            .cloned()
    }

    /// Every camera `GET /api/v1/cameras/discovered` lists.
    pub fn discovered(&self) -> Vec<serde_json::Value> {
        self.get("/api/v1/cameras/discovered")
            .ok()
            .and_then(|d| d["cameras"].as_array().cloned())
            .unwrap_or_default()
    }

    /// The start times (Unix ms) of the events the vm holds for `camera`.
    pub fn event_starts(&self, camera: &str) -> Vec<u64> {
        self.get(&format!("/api/v1/events?camera={camera}&limit=1000"))
            .ok()
            .and_then(|b| b["events"].as_array().cloned())
            .unwrap_or_default()
            .iter()
            .filter_map(|e| e["started_at_ms"].as_u64())
            .collect()
    }
}
