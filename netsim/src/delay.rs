//! A userspace delay line on NFQUEUE, for kernels without `sch_netem`: packets *arriving* on
//! an interface are queued to this process (an `iptables-nft -t mangle -A PREROUTING -i IFACE
//! -j NFQUEUE --queue-bypass` rule), held for the delay (plus jitter), then accepted in order.
//!
//! Why on arrival, at the far end of the link, and not as the sender's packets leave: a packet
//! held on its sender's egress still counts against its socket (TCP Small Queues, UDP send
//! buffers), so a 20 ms hold there throttled TCP to 2 Mbit/s and UDP to 25 Mbit/s on a
//! 100 Mbit/s link. Across the veth the packet no longer belongs to the sender's socket, and
//! the sender sees a link with the delay, as it would.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rand::Rng;

use crate::cmd;
use crate::error::{Error, Result};
use crate::netns;

/// Packets held at most; past that the kernel lets packets through (fail open).
const QUEUE_MAX_LEN: u32 = 8192;
/// How often the line looks for new packets and due verdicts.
const TICK: Duration = Duration::from_millis(1);

/// A running delay line on one interface of one namespace.
pub(crate) struct DelayLine {
    ns: String,
    rule: Vec<String>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<Result<Result<()>>>>,
}

impl DelayLine {
    /// Starts holding packets that arrive on `iface` in `ns` for `delay` ± `jitter`, through
    /// queue number `queue` (of `ns`).
    pub(crate) fn start(
        ns: &str,
        iface: &str,
        queue: u16,
        delay: Duration,
        jitter: Duration,
    ) -> Result<DelayLine> {
        let stop = Arc::new(AtomicBool::new(false));
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let thread = {
            let stop = stop.clone();
            netns::spawn(ns, &format!("delay-{iface}"), move || {
                run(queue, delay, jitter, &stop, ready_tx)
            })?
        };
        match ready_rx.recv_timeout(Duration::from_secs(5)) {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                let _ = thread.join();
                return Err(e);
            }
            Err(_) => {
                stop.store(true, Ordering::Relaxed);
                let r = thread.join();
                return Err(match r {
                    Ok(Err(e)) => e,
                    _ => Error::Timeout {
                        what: format!("the delay line on {ns}/{iface} to bind queue {queue}"),
                        after: Duration::from_secs(5),
                    },
                });
            }
        }
        let rule: Vec<String> = [
            "-t",
            "mangle",
            "PREROUTING",
            "-i",
            iface,
            "-j",
            "NFQUEUE",
            "--queue-num",
            &queue.to_string(),
            "--queue-bypass",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let line = DelayLine {
            ns: ns.to_owned(),
            rule,
            stop,
            thread: Some(thread),
        };
        line.iptables("-A")?;
        Ok(line)
    }

    fn iptables(&self, op: &str) -> Result<()> {
        // iptables-nft wants the table flag before the operation.
        let mut args: Vec<&str> = vec![&self.rule[0], &self.rule[1], op];
        args.extend(self.rule[2..].iter().map(String::as_str));
        cmd::run_in(&self.ns, "iptables-nft", &args).map(|_| ())
    }

    /// Removes the rule and stops the thread (held packets are let through).
    pub(crate) fn stop(mut self) -> Result<()> {
        let r = self.iptables("-D");
        self.halt();
        r
    }

    fn halt(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            match t.join() {
                Ok(Ok(Err(e))) | Ok(Err(e)) => tracing::warn!(error = %e, "delay line failed"),
                Err(_) => tracing::warn!("delay line panicked"),
                _ => {}
            }
        }
    }
}

impl Drop for DelayLine {
    fn drop(&mut self) {
        self.halt();
    }
}

fn run(
    queue_num: u16,
    delay: Duration,
    jitter: Duration,
    stop: &AtomicBool,
    ready: std::sync::mpsc::Sender<Result<()>>,
) -> Result<()> {
    let setup = || -> std::io::Result<nfq::Queue> {
        let mut q = nfq::Queue::open()?;
        q.bind(queue_num)?;
        q.set_fail_open(queue_num, true)?;
        q.set_queue_max_len(queue_num, QUEUE_MAX_LEN)?;
        // Only the verdict matters: copy the headers, not the payloads.
        q.set_copy_range(queue_num, 64)?;
        q.set_nonblocking(true);
        Ok(q)
    };
    let mut q = match setup() {
        Ok(q) => {
            let _ = ready.send(Ok(()));
            q
        }
        Err(e) => {
            let err = Error::io(format!("binding NFQUEUE {queue_num}"), e);
            let _ = ready.send(Err(Error::Invalid(err.to_string())));
            return Err(err);
        }
    };
    let mut rng = rand::thread_rng();
    let mut held: VecDeque<(Instant, nfq::Message)> = VecDeque::new();
    let mut last_due = Instant::now();
    loop {
        let stopping = stop.load(Ordering::Relaxed);
        loop {
            match q.recv() {
                Ok(msg) => {
                    let extra = if jitter.is_zero() {
                        0.0
                    } else {
                        rng.gen_range(-1.0..=1.0) * jitter.as_secs_f64()
                    };
                    let hold = (delay.as_secs_f64() + extra).max(0.0);
                    // Never before the previous packet: a delay line does not reorder.
                    let due = (Instant::now() + Duration::from_secs_f64(hold)).max(last_due);
                    last_due = due;
                    held.push_back((due, msg));
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(e) if e.raw_os_error() == Some(nix::libc::EINTR) => continue,
                Err(e) => return Err(Error::io("reading NFQUEUE", e)),
            }
        }
        let now = Instant::now();
        while let Some((due, _)) = held.front() {
            if *due > now && !stopping {
                break;
            }
            let (_, mut msg) = held.pop_front().expect("front exists");
            msg.set_verdict(nfq::Verdict::Accept);
            q.verdict(msg)
                .map_err(|e| Error::io("sending an NFQUEUE verdict", e))?;
        }
        if stopping {
            return Ok(());
        }
        std::thread::sleep(TICK);
    }
}
