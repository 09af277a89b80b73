//! Sealed thumbnails (issue 15), with the release binaries: an event recorded with a picture
//! snapshot has a thumbnail about 320 px wide, sealed by the edge to the owner's key, which
//! reaches the vm beside the event's record; `GET /api/v1/events/{id}/thumbnail` serves the
//! age file (its CID the event's `thumbnail_cid`) while the edge is offline; stock `age` opens
//! it to a JPEG; nothing the vm holds has a run of that JPEG.

mod support;

use std::time::Duration;

use support::*;

const WAIT: Duration = Duration::from_secs(40);

#[test]
fn an_events_sealed_thumbnail_is_served_by_the_vm_with_the_edge_offline() {
    let root = tempfile::tempdir().unwrap();
    let mut vm = Vm::init(root.path(), "vm");
    vm.start();
    let mut edge = Edge::install(&vm.package("home", None), &root.path().join("edge"));
    edge.start();
    let clip = root.path().join("clip.mp4");
    std::fs::write(&clip, pseudo_random(200_000, 0x7b)).unwrap();
    let picture = photos().join("astronaut.png");
    let (event, _) = archive_file(&edge, "porch", &clip, Some(&picture));

    let url = format!("{}/api/v1/events/{event}/thumbnail", vm.http);
    let auth = format!("Bearer {}", vm.token);
    let get = || match ureq::get(&url).set("Authorization", &auth).call() {
        Ok(r) => {
            let etag = r.header("etag").map(str::to_owned);
            let ct = r.header("content-type").map(str::to_owned);
            let mut body = Vec::new();
            std::io::Read::read_to_end(&mut r.into_reader(), &mut body).unwrap();
            (200, etag, ct, body)
        }
        Err(ureq::Error::Status(code, _)) => (code, None, None, Vec::new()),
        Err(e) => panic!("{e}"),
    };
    let (vm_log, edge_log) = (vm.log(), edge.log());
    wait_for(
        "the thumbnail at the vm",
        WAIT,
        &[&vm_log, &edge_log],
        || get().0 == 200 && vm.event_ids().contains(&event),
    );
    edge.stop();

    let (status, etag, ct, sealed) = get();
    assert_eq!(status, 200);
    assert_eq!(ct.as_deref(), Some("application/octet-stream"));
    assert!(sealed.starts_with(b"age-encryption.org/v1\n"));
    let cid = protocols::ContentId::of_bytes(&sealed).to_string();
    assert_eq!(etag, Some(format!("\"{cid}\"")));
    let (_, events) = vm.get("/api/v1/events?limit=1000");
    let record = events["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["event_id"] == event.as_str())
        .unwrap()
        .clone();
    assert_eq!(record["thumbnail_cid"], cid.as_str());
    assert!(record["snapshot_cid"].is_string());
    // Exactly the edge's sealed file, which the owner's key opens to a small JPEG.
    let on_edge = edge.dir.join("clips/porch").join(&event);
    assert!(std::fs::read(on_edge.join("thumbnail.jpg.age")).unwrap() == sealed);
    let file = root.path().join("thumbnail.jpg.age");
    std::fs::write(&file, &sealed).unwrap();
    let jpeg = age_open(&file);
    let picture = image::load_from_memory(&jpeg).unwrap();
    assert_eq!(
        image::guess_format(&jpeg).unwrap(),
        image::ImageFormat::Jpeg
    );
    assert_eq!((picture.width(), picture.height()), (320, 320));
    assert!(jpeg.len() < 64 * 1024, "{} bytes", jpeg.len());
    // The vm holds only the sealed bytes.
    vm.stop();
    let middle = &jpeg[jpeg.len() / 2..jpeg.len() / 2 + 256];
    assert_eq!(
        files_holding(&vm.dir, middle),
        Vec::<std::path::PathBuf>::new()
    );

    // An unknown event has none.
    vm.start();
    let (status, body) = vm.get("/api/v1/events/ev-none/thumbnail");
    assert_eq!((status, body["error"].as_str()), (404, Some("not_found")));
}
