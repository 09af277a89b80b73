//! Cameras found and configured from afar (issue 17), with the release binaries in netsim:
//! an edge behind a home NAT scans its LAN, where an ONVIF camera (the stand-in: WS-Discovery,
//! SOAP with WS-Security digest, RTSP with digest authentication, a main stream and a
//! substream) sits beside it; the owner, who never logs into the edge, sees it in
//! `GET /api/v1/cameras/discovered` and configures it through the vm's API:
//!
//! - a wrong password → `failed`, reason `unauthorized`; the right one → streaming, and the
//!   scan now shows its profiles (main and substream) with the credentials accepted;
//! - recording and person events start without touching the edge;
//! - a zone change applies live: with the zone above the floor a person walking through
//!   makes no event, and moved back (while the edge was offline: it gets the change on
//!   reconnect) events come again;
//! - a camera deleted at the vm stops on the edge;
//! - the camera leaving the LAN (its WS-Discovery Bye) drops it from the findings, and its
//!   return (Hello) brings it back, with no scan asked.

use std::time::Duration;

use guardian_netsim::NatProfile;
use guardian_netsim::cameras::{CAMERA_USER, CameraLab, OnvifCamera};
use guardian_netsim::guardian::wait_for;
use serde_json::json;

const PASSWORD: &str = "door-camera-password";
/// A person every 20 s: 6 s of empty room, 5 s walking through, 9 s empty again.
const SCHEDULE: &str = "empty:6,person:5,empty:9";
const WAIT: Duration = Duration::from_secs(90);

fn now_s() -> f64 {
    protocols::now_ms() as f64 / 1000.0
}

#[test]
fn an_onvif_camera_on_the_edge_s_lan_is_found_and_configured_from_the_vm() {
    if !guardian_netsim::can_run_or_say_skipped() {
        return;
    }
    let mut cl = CameraLab::new(NatProfile::PortRestrictedCone).unwrap_or_else(|e| panic!("{e}"));
    let mut camera = OnvifCamera::start(&cl.lab, &cl.camera_host, PASSWORD, SCHEDULE, 1)
        .unwrap_or_else(|e| panic!("{e}"));
    let fail = |cl: &CameraLab, what: &str| -> ! {
        panic!(
            "{what}\n--- edge ---\n{}\n--- vm ---\n{}",
            cl.edge.log_tail(40),
            cl.vm.log_tail(20)
        )
    };
    let xaddr = camera.xaddr.clone();
    let camera_ip = cl.camera_host.ip.to_string();
    let found = |cl: &CameraLab| {
        cl.discovered()
            .into_iter()
            .find(|c| c["address"] == camera_ip.as_str() && c["kind"] == "onvif")
    };

    // Found: the edge's scan at start (or the camera's hello) reports it to the vm.
    let (status, scan) = cl
        .vm
        .send(&cl.lab, "POST", "/api/v1/cameras/discover", None)
        .unwrap();
    assert_eq!(status, 202, "{scan}");
    assert!(
        ["started", "already_running"]
            .contains(&scan["edges"][0]["outcome"].as_str().unwrap_or("")),
        "{scan}"
    );
    // (Its hello may come first; the scan asked for adds what the RTSP probe saw.)
    wait_for("the camera in the findings of the scan", WAIT, || {
        found(&cl).is_some_and(|f| f["rtsp_ports"] == json!([8554]))
    })
    .unwrap_or_else(|e| fail(&cl, &e.to_string()));
    let f = found(&cl).unwrap();
    assert_eq!(f["manufacturer"], "Guardian Labs", "{f}");
    assert_eq!(f["model"], "StandIn-Cam 2", "{f}");
    assert_eq!(f["needs_credentials"], true, "{f}");
    assert_eq!(f["xaddr"], camera.xaddr.as_str(), "{f}");
    assert_eq!(
        f["rtsp_ports"],
        json!([8554]),
        "the RTSP probe found it too: {f}"
    );
    assert_eq!(f["edge_name"], "home");
    let edges = cl.get("/api/v1/cameras/discovered").unwrap()["edges"].clone();
    assert_eq!(edges[0]["enabled"], true, "{edges}");
    assert!(
        edges[0]["scanned"].to_string().contains("rtsp 10."),
        "only the edge's own LAN is probed: {edges}"
    );

    // Configured with the wrong password: refused by the camera, and said so.
    let put = |cl: &CameraLab, password: &str, zones: serde_json::Value| {
        let (status, answer) = cl
            .vm
            .send(
                &cl.lab,
                "PUT",
                "/api/v1/cameras/door",
                Some(json!({
                    "name": "Front door",
                    "source": {"onvif": {"xaddr": xaddr, "username": CAMERA_USER,
                        "password": password, "substream_profile": "sub"}},
                    "detect": {"zones": zones},
                    "record": {"pre_roll_secs": 2, "post_roll_secs": 2}
                })),
            )
            .unwrap();
        assert_eq!(status, 200, "{answer}");
        answer["revision"].as_u64().unwrap()
    };
    put(&cl, "not-the-password", json!([]));
    wait_for("the door camera failed, unauthorized", WAIT, || {
        cl.camera("door")
            .is_some_and(|c| c["state"] == "failed" && c["reason"] == "unauthorized")
    })
    .unwrap_or_else(|e| fail(&cl, &e.to_string()));

    // The right one: it streams, without anyone touching the edge.
    put(&cl, PASSWORD, json!([]));
    wait_for("the door camera streaming", WAIT, || {
        cl.camera("door").is_some_and(|c| {
            c["state"] == "streaming" && c["config_state"] == "applied" && c["width"] == 1280
        })
    })
    .unwrap_or_else(|e| fail(&cl, &e.to_string()));
    // A scan now sees its profiles with the configured credentials.
    let (status, _) = cl
        .vm
        .send(
            &cl.lab,
            "POST",
            "/api/v1/cameras/discover",
            Some(json!({"edge": "home"})),
        )
        .unwrap();
    assert_eq!(status, 202);
    wait_for("the camera's profiles in the findings", WAIT, || {
        found(&cl).is_some_and(|f| {
            f["credentials_accepted"] == true
                && f["profiles"].as_array().is_some_and(|p| p.len() == 2)
        })
    })
    .unwrap_or_else(|e| fail(&cl, &e.to_string()));
    let f = found(&cl).unwrap();
    assert_eq!(f["configured_as"], json!(["door"]));
    let p = &f["profiles"];
    assert_eq!(
        (p[0]["role"].as_str(), p[0]["width"].as_u64()),
        (Some("main"), Some(1280)),
        "{p}"
    );
    assert_eq!(
        (p[1]["role"].as_str(), p[1]["width"].as_u64()),
        (Some("sub"), Some(640)),
        "{p}"
    );
    assert_eq!(p[0]["codec"], "H264");

    // A person walks through: an event at the vm.
    wait_for("a person event of the door camera", WAIT, || {
        !cl.event_starts("door").is_empty()
    })
    .unwrap_or_else(|e| fail(&cl, &e.to_string()));

    // A zone above the floor (the person's feet are near the bottom of the frame): live, no
    // event while it holds. Ground truth: the stand-in's own record of the person's walks.
    let top = json!([{"name": "sky", "points": [[0, 0], [1000, 0], [1000, 400], [0, 400]]}]);
    let revision = put(&cl, PASSWORD, top);
    wait_for("the zone applied", WAIT, || {
        cl.camera("door").is_some_and(|c| {
            c["revision"] == revision && c["config_state"] == "applied" && c["state"] == "streaming"
        })
    })
    .unwrap_or_else(|e| fail(&cl, &e.to_string()));
    // The supervisor restarts the camera within its 2 s tick; count from a little later.
    let from = now_s() + 4.0;
    wait_for("two walks through the room under the zone", WAIT, || {
        camera
            .times("PERSON_EXIT")
            .iter()
            .filter(|&&t| t > from)
            .count()
            >= 2
            && camera.times("PERSON_ENTER").iter().any(|&t| t > from)
    })
    .unwrap();
    // Each walk's event would have closed 2 s (post-roll) after it and reached the vm in a
    // second; a little more for a slow machine.
    let settled = now_s() + 6.0;
    wait_for(
        "the post-roll of the last walk",
        Duration::from_secs(10),
        || now_s() > settled,
    )
    .unwrap();
    let late: Vec<u64> = cl
        .event_starts("door")
        .into_iter()
        .filter(|&t| t as f64 / 1000.0 > from)
        .collect();
    assert!(
        late.is_empty(),
        "events while the zone excluded the floor: {late:?}"
    );

    // The zone moved back to the floor while the edge is offline: it gets it on reconnect,
    // and events come again.
    assert_eq!(cl.edge.stop(), Some(0));
    let floor =
        json!([{"name": "floor", "points": [[0, 500], [1000, 500], [1000, 1000], [0, 1000]]}]);
    let revision = put(&cl, PASSWORD, floor);
    assert_eq!(cl.camera("door").unwrap()["config_state"], "pending");
    cl.edge.start(&cl.lab).unwrap();
    wait_for("the floor zone applied on reconnect", WAIT, || {
        cl.camera("door")
            .is_some_and(|c| c["revision"] == revision && c["config_state"] == "applied")
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", cl.edge.log_tail(40)));
    let back = now_s();
    wait_for("a person event again, in the floor zone", WAIT, || {
        cl.event_starts("door")
            .iter()
            .any(|&t| t as f64 / 1000.0 > back)
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", cl.edge.log_tail(40)));

    // Deleted at the vm: it stops on the edge.
    let (status, _) = cl
        .vm
        .send(&cl.lab, "DELETE", "/api/v1/cameras/door", None)
        .unwrap();
    assert_eq!(status, 204);
    wait_for("the door camera gone from the edge", WAIT, || {
        let text = std::fs::read_to_string(cl.edge.dir.join("edge.toml")).unwrap_or_default();
        let reported = cl
            .get("/api/v1/health")
            .map(|h| h.to_string().contains("\"door\""))
            .unwrap_or(true);
        !text.contains("door") && cl.camera("door").is_none() && !reported
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", cl.edge.log_tail(40)));

    // The camera leaves the LAN (its Bye) and comes back (its Hello): the findings follow,
    // with no scan asked.
    assert_eq!(camera.proc.stop(), Some(0));
    wait_for(
        "the camera gone from the findings after its bye",
        WAIT,
        || found(&cl).is_none(),
    )
    .unwrap_or_else(|e| panic!("{e}\n{}", cl.edge.log_tail(40)));
    camera = OnvifCamera::start(&cl.lab, &cl.camera_host, PASSWORD, SCHEDULE, 2)
        .unwrap_or_else(|e| panic!("{e}"));
    wait_for(
        "the camera back in the findings after its hello",
        WAIT,
        || found(&cl).is_some(),
    )
    .unwrap_or_else(|e| panic!("{e}\n{}", cl.edge.log_tail(40)));
    drop(camera);
}
