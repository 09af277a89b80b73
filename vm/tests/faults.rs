//! Faults with real processes: `kill -9` of the vm during uploads and of the edge during
//! sends still archives every clip exactly once; an S3 outage grows the edge's backlog,
//! telemetry shows it, and it drains when S3 returns.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use support::*;

const WAIT: Duration = Duration::from_secs(90);

fn archive(edge: &Edge, file: &Path) -> String {
    let out = ok(Command::new(bin("guardian-edge"))
        .args(["archive-file", "--camera", "yard", "--data"])
        .arg(&edge.dir)
        .arg(file));
    out.lines()
        .find_map(|l| l.strip_prefix("event: "))
        .unwrap()
        .to_owned()
}

fn archived_events(vm: &Vm) -> Vec<String> {
    let (status, body) = vm.get("/api/v1/archive?camera=yard&limit=1000");
    assert_eq!(status, 200, "{body}");
    let mut ids: Vec<String> = body["objects"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|o| o["kind"] == "clip")
        .map(|o| o["event_id"].as_str().unwrap().to_owned())
        .collect();
    ids.sort();
    ids
}

/// An s3s-fs server outside the vm, in its own thread and runtime, that the test can stop and
/// start again on the same port and data.
struct S3Server {
    stop: Option<std::sync::mpsc::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

const AK: &str = "faulttestaccess";
const SK: &str = "faulttestsecretkey0123456789";

impl S3Server {
    fn start(port: u16, dir: PathBuf) -> S3Server {
        let (stop_tx, stop_rx) = std::sync::mpsc::channel::<()>();
        let (ready_tx, ready_rx) = std::sync::mpsc::channel::<()>();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Runtime::new().unwrap();
            rt.block_on(async move {
                let config = guardian_vm::storage::S3Config {
                    embedded_listen: format!("127.0.0.1:{port}"),
                    access_key: AK.into(),
                    secret_key: SK.into(),
                    ..Default::default()
                };
                let storage = guardian_vm::storage::Storage::start(&config, &dir)
                    .await
                    .unwrap();
                ready_tx.send(()).unwrap();
                tokio::task::spawn_blocking(move || {
                    let _ = stop_rx.recv();
                })
                .await
                .unwrap();
                drop(storage);
            });
        });
        ready_rx.recv_timeout(Duration::from_secs(10)).unwrap();
        S3Server {
            stop: Some(stop_tx),
            thread: Some(thread),
        }
    }

    fn stop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Waits (polling every 5 ms: a multipart upload is in flight for a fraction of a second)
/// until `archived(vm)` has held and the vm's embedded S3 holds a multipart upload, other
/// than those in `except`, with at least one part stored; that upload.
fn upload_in_flight(
    vm: &Vm,
    except: &[UploadInFlight],
    archived: impl Fn(&Vm) -> bool,
    logs: &[&Path],
) -> UploadInFlight {
    let (mut archived_seen, mut found) = (false, None);
    wait_for_every(
        "an archived event and then a multipart upload in flight",
        WAIT,
        Duration::from_millis(5),
        logs,
        || {
            archived_seen = archived_seen || archived(vm);
            found = uploads_in_flight(&vm.s3_root())
                .into_iter()
                .find(|u| u.parts >= 1 && !except.iter().any(|e| e.upload_id == u.upload_id));
            archived_seen && found.is_some()
        },
    );
    found.expect("found")
}

#[test]
fn kill9_of_vm_and_edge_mid_transfer_archives_each_clip_once() {
    let root = tempfile::tempdir().unwrap();
    let mut vm = Vm::init(root.path(), "vm");
    vm.start();
    let mut edge = Edge::install(&vm.package("home", None), &root.path().join("edge"));
    let mut events = Vec::new();
    // 24 MiB each: three 8 MiB parts (and a small fourth for age's overhead), so every upload
    // is multipart, and one with a part stored still has at least 8 MiB to go.
    for i in 0..5 {
        let f = root.path().join(format!("clip{i}.mp4"));
        std::fs::write(&f, pseudo_random(24 << 20, i + 1)).unwrap();
        events.push(archive(&edge, &f));
    }
    events.sort();
    edge.start();
    let (vm_log, edge_log) = (vm.log(), edge.log());
    let logs = [vm_log.as_path(), edge_log.as_path()];

    // The vm dies (SIGKILL) after its first archived event, in the middle of the next
    // event's multipart upload: the upload is still open in S3 after the kill, so it was in
    // flight when the vm died.
    let cut = upload_in_flight(&vm, &[], |vm| !archived_events(vm).is_empty(), &logs);
    vm.kill9();
    let open = uploads_in_flight(&vm.s3_root());
    assert!(
        open.iter()
            .any(|u| u.upload_id == cut.upload_id && u.parts >= 1),
        "the upload seen before the kill ({cut:?}) was not in flight when the vm died: {open:?}"
    );
    vm.start();
    // The upload the kill left open was journaled: the restart aborts it, its parts go.
    wait_for("the killed upload aborted", WAIT, &logs, || {
        !uploads_in_flight(&vm.s3_root())
            .iter()
            .any(|u| u.upload_id == cut.upload_id)
    });
    let archived_before_restart = archived_events(&vm).len();
    assert!(archived_before_restart < 5, "nothing was left to send");

    // The edge dies (SIGKILL) while it sends the next ones: after another archived event,
    // with a new upload under way.
    let cut2 = upload_in_flight(
        &vm,
        &open,
        |vm| archived_events(vm).len() > archived_before_restart,
        &logs,
    );
    edge.kill9();
    eprintln!("killed the vm during {cut:?} and the edge during {cut2:?}");
    edge.start();

    wait_for("all five clips archived", WAIT, &logs, || {
        archived_events(&vm).len() == 5
    });
    assert_eq!(archived_events(&vm), events, "every clip exactly once");
    // S3 holds exactly one clip and one manifest per event: nothing twice, nothing stray.
    let mut stored: Vec<String> = Vec::new();
    let bucket = vm.dir.join("s3/camera-yard/events");
    for e in std::fs::read_dir(&bucket).unwrap().flatten() {
        for f in std::fs::read_dir(e.path()).unwrap().flatten() {
            stored.push(format!(
                "{}/{}",
                e.file_name().to_string_lossy(),
                f.file_name().to_string_lossy()
            ));
        }
    }
    stored.sort();
    let mut want: Vec<String> = events
        .iter()
        .flat_map(|e| [format!("{e}/clip.mp4.age"), format!("{e}/manifest.json")])
        .collect();
    want.sort();
    assert_eq!(stored, want);
    wait_for("the edge's outbox to empty", WAIT, &logs, || {
        edge.archive_backlog() == 0
    });
    // No part left anywhere (the edge's kill broke a transfer: the vm aborted that upload
    // at once), and health says so.
    assert_eq!(uploads_in_flight(&vm.s3_root()), []);
    let (_, health) = vm.get("/api/v1/health");
    assert_eq!(
        health["archive_stray_uploads"]["parts"]["uploads"], 0,
        "{health}"
    );
    assert_eq!(
        health["archive_stray_uploads"]["unaborted"],
        serde_json::json!([])
    );
}

#[test]
fn an_s3_outage_grows_the_backlog_then_drains() {
    let root = tempfile::tempdir().unwrap();
    let s3_port = free_port();
    let s3_dir = root.path().join("s3");
    let mut s3 = S3Server::start(s3_port, s3_dir.clone());
    let mut vm = Vm::init(root.path(), "vm");
    vm.edit_config(|c| {
        c.telemetry.interval_secs = 1;
        c.s3.endpoint = format!("http://127.0.0.1:{s3_port}");
        c.s3.access_key = AK.into();
        c.s3.secret_key = SK.into();
    });
    vm.start();
    let mut edge = Edge::install(&vm.package("home", None), &root.path().join("edge"));
    edge.start();
    let (vm_log, edge_log) = (vm.log(), edge.log());
    let logs = [vm_log.as_path(), edge_log.as_path()];
    wait_for("the edge enrolled", WAIT, &logs, || vm.devices().len() == 1);

    s3.stop();
    for i in 0..3 {
        let f = root.path().join(format!("c{i}.mp4"));
        std::fs::write(&f, pseudo_random(100_000, i + 7)).unwrap();
        archive(&edge, &f);
    }
    let backlog =
        |vm: &Vm| vm.get("/api/v1/health").1["edges"][0]["archive_backlog_objects"].clone();
    wait_for("telemetry to show a backlog of 3", WAIT, &logs, || {
        backlog(&vm) == 3
    });
    assert!(
        std::fs::read_to_string(&edge_log)
            .unwrap()
            .contains("archive storage is unavailable"),
        "the edge says why it waits"
    );
    assert!(archived_events(&vm).is_empty());

    let _s3 = S3Server::start(s3_port, s3_dir);
    wait_for("the backlog to drain", WAIT, &logs, || {
        archived_events(&vm).len() == 3
    });
    wait_for("telemetry to show no backlog", WAIT, &logs, || {
        backlog(&vm) == 0
    });
}
