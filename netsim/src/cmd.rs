//! Runs the system tools the harness drives (`ip`, `nft`, `tc`, `iptables-nft`), each with a
//! timeout, optionally inside a network namespace (`ip netns exec`).

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::error::{Error, Result};

/// How long one tool invocation may take.
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(20);

/// Runs `program args...`, feeding `stdin` if given; returns stdout, or an error carrying
/// stderr when the exit status is not 0.
pub fn run_input(program: &str, args: &[&str], stdin: Option<&str>) -> Result<String> {
    let line = format!("{program} {}", args.join(" "));
    tracing::trace!(command = %line, "run");
    let mut child = Command::new(program)
        .args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                Error::MissingTool(tool_name(program))
            } else {
                Error::io(format!("spawning {line}"), e)
            }
        })?;
    if let Some(text) = stdin {
        let mut pipe = child.stdin.take().expect("piped");
        pipe.write_all(text.as_bytes())
            .map_err(|e| Error::io(format!("writing to {line}"), e))?;
    }
    // Read the pipes on threads so a chatty command cannot block on a full pipe.
    let mut out = child.stdout.take().expect("piped");
    let mut err = child.stderr.take().expect("piped");
    let out_t = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = std::io::Read::read_to_string(&mut out, &mut s);
        s
    });
    let err_t = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = std::io::Read::read_to_string(&mut err, &mut s);
        s
    });
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child
            .try_wait()
            .map_err(|e| Error::io(format!("waiting for {line}"), e))?
        {
            break status;
        }
        if start.elapsed() > COMMAND_TIMEOUT {
            let _ = child.kill();
            let _ = child.wait();
            return Err(Error::Timeout {
                what: line,
                after: COMMAND_TIMEOUT,
            });
        }
        std::thread::sleep(Duration::from_millis(2));
    };
    let stdout = out_t.join().unwrap_or_default();
    let stderr = err_t.join().unwrap_or_default();
    if status.success() {
        Ok(stdout)
    } else {
        Err(Error::Command {
            command: line,
            status: status.to_string(),
            stderr: stderr.trim().to_owned(),
        })
    }
}

/// Runs `program args...`; returns stdout.
pub fn run(program: &str, args: &[&str]) -> Result<String> {
    run_input(program, args, None)
}

/// Runs `program args...` inside the namespace `ns`.
pub fn run_in(ns: &str, program: &str, args: &[&str]) -> Result<String> {
    let mut full = vec!["netns", "exec", ns, program];
    full.extend_from_slice(args);
    run("ip", &full)
}

/// Loads an nftables script into the namespace `ns` (`nft -f -`, atomically).
pub fn nft(ns: &str, script: &str) -> Result<()> {
    run_input("ip", &["netns", "exec", ns, "nft", "-f", "-"], Some(script)).map(|_| ())
}

fn tool_name(program: &str) -> &'static str {
    match program {
        "ip" => "ip (iproute2)",
        "nft" => "nft (nftables)",
        "tc" => "tc (iproute2)",
        "iptables-nft" => "iptables-nft (iptables)",
        _ => "a system tool",
    }
}

/// Whether this process runs as root.
pub fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// Checks that the tools are installed.
pub fn check_tools() -> Result<()> {
    for (tool, name) in [
        ("ip", "ip (iproute2)"),
        ("nft", "nft (nftables)"),
        ("tc", "tc (iproute2)"),
        ("iptables-nft", "iptables-nft (iptables)"),
    ] {
        let found = std::env::var_os("PATH")
            .map(|p| std::env::split_paths(&p).any(|d| d.join(tool).is_file()))
            .unwrap_or(false)
            || ["/usr/sbin", "/sbin", "/usr/bin"]
                .iter()
                .any(|d| std::path::Path::new(d).join(tool).is_file());
        if !found {
            return Err(Error::MissingTool(name));
        }
    }
    Ok(())
}
