//! A process started inside a lab namespace: its output in files, stopped (SIGTERM, then
//! SIGKILL) when dropped.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::error::{Error, Result};

/// How long a process has to stop after SIGTERM before SIGKILL.
pub const STOP_GRACE: Duration = Duration::from_secs(10);

/// A running (or exited) process of the lab.
pub struct Proc {
    name: String,
    child: Child,
    out: PathBuf,
    log: PathBuf,
}

impl Proc {
    pub(crate) fn spawn(name: &str, mut cmd: Command, dir: &Path) -> Result<Proc> {
        let out = dir.join(format!("{name}.out"));
        let log = dir.join(format!("{name}.log"));
        let open = |p: &Path| {
            File::options()
                .create(true)
                .append(true)
                .open(p)
                .map_err(|e| Error::io(format!("opening {}", p.display()), e))
        };
        let child = cmd
            .stdin(Stdio::null())
            .stdout(open(&out)?)
            .stderr(open(&log)?)
            .spawn()
            .map_err(|e| Error::io(format!("starting {name} ({cmd:?})"), e))?;
        tracing::debug!(%name, pid = child.id(), "started");
        Ok(Proc {
            name: name.to_owned(),
            child,
            out,
            log,
        })
    }

    /// The name it was started under.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Its stdout file.
    pub fn out_path(&self) -> &Path {
        &self.out
    }

    /// Its stderr file.
    pub fn log_path(&self) -> &Path {
        &self.log
    }

    /// What it printed on stdout so far.
    pub fn stdout(&self) -> String {
        std::fs::read_to_string(&self.out).unwrap_or_default()
    }

    /// What it printed on stderr so far.
    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The last `n` lines of its stderr, for failure messages.
    pub fn log_tail(&self, n: usize) -> String {
        let text = self.stderr();
        let lines: Vec<&str> = text.lines().collect();
        let from = lines.len().saturating_sub(n);
        format!(
            "--- {} ({}):\n{}",
            self.name,
            self.log.display(),
            lines[from..].join("\n")
        )
    }

    /// The exit code, if it has exited (-1 for a signal).
    pub fn exited(&mut self) -> Option<i32> {
        self.child
            .try_wait()
            .ok()
            .flatten()
            .map(|s| s.code().unwrap_or(-1))
    }

    /// Waits up to `timeout` for it to exit by itself.
    pub fn wait_exit(&mut self, timeout: Duration) -> Result<i32> {
        let start = Instant::now();
        loop {
            if let Some(code) = self.exited() {
                return Ok(code);
            }
            if start.elapsed() > timeout {
                return Err(Error::Timeout {
                    what: format!("{} to exit", self.name),
                    after: timeout,
                });
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGTERM, then SIGKILL after [`STOP_GRACE`]; returns the exit code if it exited by
    /// itself.
    pub fn stop(&mut self) -> Option<i32> {
        if let Some(code) = self.exited() {
            return Some(code);
        }
        let _ = kill(Pid::from_raw(self.child.id() as i32), Signal::SIGTERM);
        match self.wait_exit(STOP_GRACE) {
            Ok(code) => Some(code),
            Err(_) => {
                tracing::warn!(name = %self.name, "did not stop on SIGTERM; killing it");
                self.kill9();
                None
            }
        }
    }

    /// SIGKILL, as a power cut would.
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.stop();
    }
}
