//! Entering a network namespace: a thread that runs a closure inside one (sockets it opens stay
//! in that namespace), and the `pre_exec` hook that starts a child process inside one.

use std::fs::File;
use std::os::fd::AsFd;
use std::path::PathBuf;
use std::process::Command;

use crate::error::{Error, Result};

/// Where `ip netns add NAME` mounts the namespace.
pub fn path(ns: &str) -> PathBuf {
    PathBuf::from("/run/netns").join(ns)
}

/// Moves the calling thread into the namespace `ns`. Network namespaces are per thread, so
/// only call this on a thread made for it.
fn enter(ns: &str) -> Result<()> {
    let file = File::open(path(ns)).map_err(|e| Error::io(format!("opening netns {ns}"), e))?;
    nix::sched::setns(file.as_fd(), nix::sched::CloneFlags::CLONE_NEWNET).map_err(|e| {
        Error::io(
            format!("entering netns {ns}"),
            std::io::Error::from_raw_os_error(e as i32),
        )
    })
}

/// Spawns a thread inside `ns` running `f`.
pub fn spawn<T: Send + 'static>(
    ns: &str,
    name: &str,
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<std::thread::JoinHandle<Result<T>>> {
    let ns = ns.to_owned();
    std::thread::Builder::new()
        .name(name.to_owned())
        .spawn(move || {
            enter(&ns)?;
            Ok(f())
        })
        .map_err(|e| Error::io("spawning a thread", e))
}

/// Runs `f` inside `ns` on a fresh thread and returns its result.
pub fn run<T: Send + 'static>(ns: &str, f: impl FnOnce() -> T + Send + 'static) -> Result<T> {
    spawn(ns, "netns", f)?
        .join()
        .map_err(|_| Error::Invalid(format!("a thread in netns {ns} panicked")))?
}

/// Makes `cmd` start inside `ns` (setns in the child before exec).
pub fn command_in(cmd: &mut Command, ns: &str) -> Result<()> {
    use std::os::unix::process::CommandExt;
    let file = File::open(path(ns)).map_err(|e| Error::io(format!("opening netns {ns}"), e))?;
    // SAFETY: between fork and exec the closure only calls setns(2), which is
    // async-signal-safe, on a descriptor opened before the fork.
    unsafe {
        cmd.pre_exec(move || {
            nix::sched::setns(file.as_fd(), nix::sched::CloneFlags::CLONE_NEWNET)
                .map_err(|e| std::io::Error::from_raw_os_error(e as i32))
        });
    }
    Ok(())
}
