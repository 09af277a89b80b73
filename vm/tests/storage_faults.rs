//! The vm's database unwritable for a while, with the real binaries: events an enrolled edge
//! sends meanwhile are refused as "storage unavailable" (retryable), stay in the edge's
//! outbox (attempts counted, not parked), and once the database takes writes again every
//! one arrives exactly once and the outbox empties. Two ways to make it unwritable: another
//! process holding SQLite's write lock past the vm's busy timeout, and (as root) a full disk:
//! the vm's data directory on a small tmpfs filled with a filler file, then freed.

mod support;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use support::*;

/// Events sent while the database is unwritable.
const N: usize = 6;
const WAIT: Duration = Duration::from_secs(60);

/// A running vm and an enrolled, connected edge that delivered one event already.
struct Running {
    vm: Vm,
    edge: Edge,
    first: String,
}

fn start(root: &Path) -> Running {
    let mut vm = Vm::init(root, "vm");
    vm.start();
    let mut edge = Edge::install(&vm.package("home", None), &root.join("edge"));
    edge.start();
    let first = edge.emit("porch");
    let (vm_log, edge_log) = (vm.log(), edge.log());
    wait_for(
        "the edge enrolled and its first event stored",
        WAIT,
        &[&vm_log, &edge_log],
        || vm.event_ids() == [first.clone()],
    );
    Running { vm, edge, first }
}

impl Running {
    fn logs(&self) -> [PathBuf; 2] {
        [self.vm.log(), self.edge.log()]
    }

    /// Sends [`N`] events while the database cannot be written and waits until each has been
    /// refused at least once and kept for a retry; their ids.
    fn send_while_unwritable(&self) -> Vec<String> {
        let sent: Vec<String> = (0..N).map(|_| self.edge.emit("porch")).collect();
        let logs = self.logs();
        let logs: Vec<&Path> = logs.iter().map(|p| p.as_path()).collect();
        wait_for(
            "every event refused at least once and kept in the edge's outbox",
            WAIT,
            &logs,
            || {
                let rows = self.edge.outbox();
                rows.len() == N && rows.iter().all(|r| r.attempts >= 1)
            },
        );
        let rows = self.edge.outbox();
        let mut queued: Vec<String> = rows.iter().map(|r| r.event_id.clone()).collect();
        queued.sort();
        let mut want = sent.clone();
        want.sort();
        assert_eq!(queued, want, "the outbox holds what was sent");
        assert!(
            rows.iter().all(|r| r.refused_reason.is_none()),
            "a storage failure parked events: {rows:?}"
        );
        // The vm received them and stored none: it refused them (a transport failure would
        // not count them received).
        let metrics = self.vm.metrics();
        let received = metric(&metrics, "guardian_vm_events_received_total").unwrap();
        let stored = metric(&metrics, "guardian_vm_events_stored_total").unwrap();
        assert_eq!(stored, 1.0, "only the first event was stored: {metrics}");
        assert!(
            received >= (1 + N) as f64,
            "the vm did not receive the events it could not store: {metrics}"
        );
        assert_eq!(self.vm.event_ids(), std::slice::from_ref(&self.first));
        sent
    }

    /// Waits until the vm holds the first event and `sent`, each once, and the edge's outbox
    /// is empty.
    fn all_arrive_exactly_once(&self, sent: &[String]) {
        let logs = self.logs();
        let logs: Vec<&Path> = logs.iter().map(|p| p.as_path()).collect();
        let mut want: Vec<String> = sent.iter().chain([&self.first]).cloned().collect();
        want.sort();
        wait_for("every event on the vm", WAIT, &logs, || {
            let mut got = self.vm.event_ids();
            got.sort();
            got == want
        });
        wait_for("the edge's outbox to empty", WAIT, &logs, || {
            self.edge.outbox().is_empty()
        });
        let mut got = self.vm.event_ids();
        got.sort();
        assert_eq!(got, want, "every event exactly once");
        let metrics = self.vm.metrics();
        assert_eq!(
            metric(&metrics, "guardian_vm_events_stored_total"),
            Some((1 + N) as f64),
            "each event stored for the first time once: {metrics}"
        );
        let log = std::fs::read_to_string(self.edge.log()).unwrap();
        assert!(
            log.contains("the vm cannot take events for now; will retry"),
            "the edge does not say why it retries"
        );
        assert!(!log.contains("parked"), "the edge parked events");
    }
}

#[test]
fn events_sent_while_the_database_is_locked_arrive_exactly_once() {
    let root = tempfile::tempdir().unwrap();
    let r = start(root.path());

    // Another process takes SQLite's write lock on the vm's database and keeps it: the vm's
    // writes wait out its 10 s busy timeout and fail.
    let lock = rusqlite::Connection::open(r.vm.db_path()).unwrap();
    lock.busy_timeout(Duration::from_secs(10)).unwrap();
    lock.execute_batch("BEGIN IMMEDIATE").unwrap();
    let held = Instant::now();
    let sent = r.send_while_unwritable();
    lock.execute_batch("ROLLBACK").unwrap();
    drop(lock);
    eprintln!("write lock held for {:?}", held.elapsed());

    r.all_arrive_exactly_once(&sent);
}

/// A tmpfs mounted on a directory, unmounted when dropped.
struct Tmpfs(PathBuf);

impl Tmpfs {
    /// Mounts a tmpfs of `size` on `dir` (created); `Err` with the reason when it cannot
    /// (not root, or no mount permission in this container).
    fn mount(dir: &Path, size: &str) -> Result<Tmpfs, String> {
        std::fs::create_dir_all(dir).unwrap();
        let out = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0700"),
                "tmpfs",
            ])
            .arg(dir)
            .output()
            .map_err(|e| e.to_string())?;
        if out.status.success() {
            Ok(Tmpfs(dir.to_path_buf()))
        } else {
            Err(String::from_utf8_lossy(&out.stderr).trim().to_owned())
        }
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// Writes `path` until the file system is full; the bytes written.
fn fill(path: &Path) -> u64 {
    let mut f = std::fs::File::create(path).unwrap();
    let chunk = vec![0x5au8; 64 << 10];
    let mut written = 0u64;
    loop {
        match f.write(&chunk) {
            Ok(0) => break,
            Ok(n) => written += n as u64,
            Err(e) if e.raw_os_error() == Some(28) => break, // ENOSPC
            Err(e) => panic!("{}: {e}", path.display()),
        }
    }
    let _ = f.sync_all();
    written
}

#[test]
fn events_sent_while_the_disk_is_full_arrive_exactly_once() {
    let root = tempfile::tempdir().unwrap();
    // The vm's data directory on its own small file system (its log stays outside).
    let mount = match Tmpfs::mount(&root.path().join("vm"), "16m") {
        Ok(m) => m,
        Err(why) => {
            eprintln!("skipped: cannot mount a tmpfs for the vm's data (needs root): {why}");
            return;
        }
    };
    let r = start(root.path());
    assert!(r.vm.dir.starts_with(&mount.0));

    let filler = r.vm.dir.join("filler");
    let filled = fill(&filler);
    assert!(filled > 0);
    eprintln!("filled the vm's disk with {filled} bytes");
    let sent = r.send_while_unwritable();
    std::fs::remove_file(&filler).unwrap();

    r.all_arrive_exactly_once(&sent);
    // The vm and edge stop before the tmpfs is unmounted.
    drop(r);
    drop(mount);
}
