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

fn log_count(path: &Path, needle: &str) -> usize {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .matches(needle)
        .count()
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

#[test]
fn kill9_of_vm_and_edge_mid_transfer_archives_each_clip_once() {
    let root = tempfile::tempdir().unwrap();
    let mut vm = Vm::init(root.path(), "vm");
    vm.start();
    let mut edge = Edge::install(&vm.package("home", None), &root.path().join("edge"));
    let mut events = Vec::new();
    // 9 MiB each: above the 8 MiB part size, so every upload is multipart.
    for i in 0..5 {
        let f = root.path().join(format!("clip{i}.mp4"));
        std::fs::write(&f, pseudo_random(9 << 20, i + 1)).unwrap();
        events.push(archive(&edge, &f));
    }
    events.sort();
    edge.start();
    let (vm_log, edge_log) = (vm.log(), edge.log());
    let logs = [vm_log.as_path(), edge_log.as_path()];

    // The vm dies (SIGKILL) right after its first archived event, with the next in flight.
    wait_for("a first archived event", WAIT, &logs, || {
        log_count(&vm_log, "event archived") >= 1
    });
    vm.kill9();
    std::thread::sleep(Duration::from_millis(500));
    vm.start();

    // The edge dies (SIGKILL) while it sends the next ones.
    let before = log_count(&vm_log, "event archived");
    wait_for("another archived event", WAIT, &logs, || {
        log_count(&vm_log, "event archived") > before
    });
    edge.kill9();
    std::thread::sleep(Duration::from_millis(500));
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
        std::fs::read_dir(edge.dir.join("archive")).unwrap().count() == 0
    });
}

#[test]
fn an_s3_outage_grows_the_backlog_then_drains() {
    let root = tempfile::tempdir().unwrap();
    let s3_port = free_port();
    let s3_dir = root.path().join("s3");
    let mut s3 = S3Server::start(s3_port, s3_dir.clone());
    let mut vm = Vm::init(root.path(), "vm");
    let config = vm.dir.join("vm.toml");
    let text = std::fs::read_to_string(&config)
        .unwrap()
        .replace("interval_secs = 30", "interval_secs = 1")
        .replace(
            "endpoint = \"\"",
            &format!("endpoint = \"http://127.0.0.1:{s3_port}\""),
        )
        .replace("access_key = \"\"", &format!("access_key = \"{AK}\""))
        .replace("secret_key = \"\"", &format!("secret_key = \"{SK}\""));
    std::fs::write(&config, text).unwrap();
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
