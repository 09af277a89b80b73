//! Link impairment behind one call: delay, jitter, loss and rate for the packets crossing a
//! link one way. With `sch_netem` in the kernel that is one `tc netem` qdisc on the sending
//! interface; without it (this project's machines) rate is a `tbf` qdisc there, and delay and
//! loss act on the *receiving* interface: a userspace NFQUEUE delay line ([`crate::delay`])
//! and an nftables `numgen random` drop on its ingress hook. There the sender cannot see them:
//! a drop on its output path would fail its `send` with EPERM, and a packet held there would
//! still count against its socket's send budget (see [`crate::delay`]).

use std::sync::OnceLock;
use std::time::Duration;

use crate::cmd;
use crate::delay::DelayLine;
use crate::error::{Error, Result};

/// What to do to packets leaving one end of a link.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Impairment {
    /// Added one-way delay.
    pub delay: Duration,
    /// Uniform jitter around the delay (no reordering).
    pub jitter: Duration,
    /// Share of packets dropped, 0.0 to 1.0.
    pub loss: f64,
    /// Rate limit in kbit/s (none if `None`).
    pub rate_kbit: Option<u32>,
}

impl Impairment {
    /// Whether it changes anything.
    pub fn is_none(&self) -> bool {
        self.delay.is_zero()
            && self.jitter.is_zero()
            && self.loss <= 0.0
            && self.rate_kbit.is_none()
    }

    fn check(&self) -> Result<()> {
        if !(0.0..=1.0).contains(&self.loss) {
            return Err(Error::Invalid(format!(
                "loss {} is not in 0..=1",
                self.loss
            )));
        }
        if self.rate_kbit == Some(0) {
            return Err(Error::Invalid(
                "a rate of 0 kbit/s: cut the link instead".into(),
            ));
        }
        Ok(())
    }
}

/// Which mechanism the kernel allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// `tc qdisc netem`.
    Netem,
    /// tbf + nftables + NFQUEUE.
    Emulated,
}

static BACKEND: OnceLock<Backend> = OnceLock::new();

/// Probes once whether `sch_netem` exists (in the throw-away namespace `scratch_ns`).
pub(crate) fn backend(scratch_ns: &str) -> Backend {
    *BACKEND.get_or_init(|| {
        let ok = cmd::run(
            "tc",
            &[
                "-n", scratch_ns, "qdisc", "add", "dev", "lo", "root", "netem", "delay", "1ms",
            ],
        )
        .is_ok();
        if ok {
            let _ = cmd::run(
                "tc",
                &["-n", scratch_ns, "qdisc", "del", "dev", "lo", "root"],
            );
        }
        let b = if ok {
            Backend::Netem
        } else {
            Backend::Emulated
        };
        tracing::info!(backend = ?b, "link impairment backend");
        b
    })
}

/// The impairment in force on one interface, to undo it.
pub(crate) struct Applied {
    ns: String,
    iface: String,
    qdisc: bool,
    nft_table: Option<(String, String)>,
    delay: Option<DelayLine>,
}

fn ms(d: Duration) -> String {
    format!("{}us", d.as_micros())
}

/// Applies `imp` to packets sent from `iface` in `ns` to `peer_iface` in `peer_ns` (the two
/// ends of a veth pair); `queue` is a queue number free in `peer_ns`, for the delay line.
pub(crate) fn apply(
    backend: Backend,
    (ns, iface): (&str, &str),
    (peer_ns, peer_iface): (&str, &str),
    queue: u16,
    imp: &Impairment,
) -> Result<Applied> {
    imp.check()?;
    let mut applied = Applied {
        ns: ns.to_owned(),
        iface: iface.to_owned(),
        qdisc: false,
        nft_table: None,
        delay: None,
    };
    if imp.is_none() {
        return Ok(applied);
    }
    if backend == Backend::Netem {
        let mut args: Vec<String> = ["-n", ns, "qdisc", "replace", "dev", iface, "root", "netem"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        if !imp.delay.is_zero() || !imp.jitter.is_zero() {
            args.extend(["delay".into(), ms(imp.delay), ms(imp.jitter)]);
        }
        if imp.loss > 0.0 {
            args.extend(["loss".into(), format!("{}%", imp.loss * 100.0)]);
        }
        if let Some(r) = imp.rate_kbit {
            args.extend(["rate".into(), format!("{r}kbit")]);
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        cmd::run("tc", &args)?;
        applied.qdisc = true;
        return Ok(applied);
    }
    if let Some(r) = imp.rate_kbit {
        // A burst of 100 ms at the rate (at least two full frames); a queue of 500 ms.
        let burst = (u64::from(r) * 1000 / 8 / 10).max(3028);
        cmd::run(
            "tc",
            &[
                "-n",
                ns,
                "qdisc",
                "replace",
                "dev",
                iface,
                "root",
                "tbf",
                "rate",
                &format!("{r}kbit"),
                "burst",
                &burst.to_string(),
                "latency",
                "500ms",
            ],
        )?;
        applied.qdisc = true;
    }
    if imp.loss > 0.0 {
        let table = format!("gns_loss_{peer_iface}");
        let threshold = (imp.loss * 1_000_000.0).round() as u64;
        cmd::nft(
            peer_ns,
            &format!(
                "table netdev {table} {{\n  chain in {{\n    type filter hook ingress device \"{peer_iface}\" priority 0; policy accept;\n    \
                 numgen random mod 1000000 < {threshold} drop\n  }}\n}}\n"
            ),
        )?;
        applied.nft_table = Some((peer_ns.to_owned(), table));
    }
    if !imp.delay.is_zero() || !imp.jitter.is_zero() {
        applied.delay = Some(DelayLine::start(
            peer_ns, peer_iface, queue, imp.delay, imp.jitter,
        )?);
    }
    Ok(applied)
}

impl Applied {
    /// Undoes the impairment.
    pub(crate) fn clear(mut self) -> Result<()> {
        let mut first_err = None;
        if let Some(d) = self.delay.take()
            && let Err(e) = d.stop()
        {
            first_err.get_or_insert(e);
        }
        if let Some((ns, t)) = self.nft_table.take()
            && let Err(e) = cmd::nft(&ns, &format!("delete table netdev {t}\n"))
        {
            first_err.get_or_insert(e);
        }
        if self.qdisc
            && let Err(e) = cmd::run(
                "tc",
                &["-n", &self.ns, "qdisc", "del", "dev", &self.iface, "root"],
            )
        {
            first_err.get_or_insert(e);
        }
        first_err.map_or(Ok(()), Err)
    }
}
