//! The edge's ONVIF client and RTSP probe against the ONVIF camera stand-in
//! (`edge/tools/onvif_standin.py`, written apart from the client, from the ONVIF and
//! WS-Security specifications): a camera that wants a WS-Security digest for everything but
//! its time and capabilities, with a main and a substream profile in front of the RTSP
//! stand-in, which wants RTSP digest authentication. On loopback (no multicast: the
//! WS-Discovery probe runs in netsim's LAN, `netsim/tests/cameras.rs`).

mod support;

use std::net::Ipv4Addr;

use guardian_edge::discover::onvif::{self, Login, OnvifError};
use guardian_edge::discover::rtsp;
use support::StandIn;

fn line(standin: &StandIn, prefix: &str) -> String {
    let text = standin.proc.log_text();
    text.lines()
        .find_map(|l| l.strip_prefix(prefix))
        .unwrap_or_else(|| panic!("no {prefix} line in\n{text}"))
        .trim()
        .to_owned()
}

fn now_ms() -> u64 {
    protocols::now_ms()
}

#[test]
fn an_onvif_camera_asked_without_with_wrong_and_with_right_credentials() {
    let dir = tempfile::tempdir().unwrap();
    let standin = StandIn::start(
        dir.path(),
        &[
            "--user",
            "admin",
            "--password",
            "s3cret",
            "--sub-path",
            "/sub",
            "--onvif-port",
            "0",
            "--no-person",
            "--start",
            "launch",
            "--maker",
            "Acme",
            "--model",
            "Door 2",
        ],
    );
    // READY is printed first; the SUBSTREAM and ONVIF lines follow it at once.
    support::wait_for(
        "the ONVIF line",
        std::time::Duration::from_secs(10),
        &[&standin.proc.log],
        || standin.proc.log_text().contains("\nONVIF "),
    );
    let xaddr = line(&standin, "ONVIF ");
    let sub_url = line(&standin, "SUBSTREAM ");
    let main_url = standin.urls[0].clone();

    let anonymous = onvif::inspect(&xaddr, None, now_ms()).unwrap();
    assert!(anonymous.needs_credentials, "{anonymous:?}");
    assert_eq!(anonymous.info, None);
    assert!(anonymous.profiles.is_empty());
    assert_eq!(anonymous.credentials_accepted, None);

    let wrong = Login {
        username: "admin",
        password: "guess",
    };
    let refused = onvif::inspect(&xaddr, Some(wrong), now_ms()).unwrap();
    assert_eq!(refused.credentials_accepted, Some(false));
    assert!(matches!(
        onvif::resolve(&xaddr, wrong, "", "", now_ms()),
        Err(OnvifError::Unauthorized)
    ));

    let right = Login {
        username: "admin",
        password: "s3cret",
    };
    let seen = onvif::inspect(&xaddr, Some(right), now_ms()).unwrap();
    assert_eq!(seen.credentials_accepted, Some(true));
    let info = seen.info.clone().unwrap();
    assert_eq!(
        (info.manufacturer.as_str(), info.model.as_str()),
        ("Acme", "Door 2")
    );
    let sizes: Vec<(Option<u32>, Option<u32>, Option<&str>)> = seen
        .profiles
        .iter()
        .map(|(p, uri)| (p.width, p.height, uri.as_deref()))
        .collect();
    assert!(
        sizes.contains(&(Some(1280), Some(720), Some(main_url.as_str()))),
        "{sizes:?}"
    );
    assert!(
        sizes.contains(&(Some(640), Some(360), Some(sub_url.as_str()))),
        "{sizes:?}"
    );

    // The largest profile by default; the substream by its token.
    let sub_token = seen
        .profiles
        .iter()
        .find(|(p, _)| p.width == Some(640))
        .map(|(p, _)| p.token.clone())
        .unwrap();
    let (main, sub) = onvif::resolve(&xaddr, right, "", &sub_token, now_ms()).unwrap();
    assert_eq!(
        (main.as_str(), sub.as_deref()),
        (main_url.as_str(), Some(sub_url.as_str()))
    );
    let missing = onvif::resolve(&xaddr, right, "nope", "", now_ms());
    assert!(
        matches!(missing, Err(OnvifError::Camera(ref m)) if m.contains("no profile")),
        "{missing:?}"
    );

    // A camera whose clock is 40 minutes off still takes the digest: it is made at the
    // camera's time, learnt from GetSystemDateAndTime.
    let skewed = onvif::inspect(&xaddr, Some(right), now_ms() - 40 * 60 * 1000).unwrap();
    assert_eq!(skewed.credentials_accepted, Some(true));

    // The RTSP probe finds the same camera wanting credentials.
    let port: u16 = main_url
        .trim_start_matches("rtsp://127.0.0.1:")
        .split('/')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let paths = ["/", "/cam"].map(String::from);
    let host = rt
        .block_on(rtsp::probe_one(Ipv4Addr::LOCALHOST, port, &paths))
        .expect("the stand-in speaks RTSP");
    assert!(host.needs_credentials, "{host:?}");
}
