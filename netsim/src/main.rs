//! `netsim`: build a NAT topology, run a scenario with the project's binaries in it, and print
//! what happened; also the probe peer the matrix runs (`netsim peer`) and the sweep of
//! leftovers (`netsim sweep`). Needs root.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand, ValueEnum};

use guardian_netsim::guardian::Vm;
use guardian_netsim::peer::{self, Mode, PeerOptions};
use guardian_netsim::probe::ProbeServers;
use guardian_netsim::{Impairment, Lab, NatProfile, matrix, scenario};

#[derive(Parser)]
#[command(
    name = "netsim",
    version,
    about = "Network simulation harness of Private AI Guardian"
)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Clone, Copy, ValueEnum)]
enum Scenario {
    /// An edge behind --edge-nat enrolls and delivers events.
    Enroll,
    /// A client behind --client-nat reaches an edge (probe peer) behind --edge-nat through
    /// the vm's relay, then tries to go direct.
    Dcutr,
    /// vm restart, then a 30 s cut of the edge's uplink.
    Outage,
    /// 256 kbit/s, 400 ms, 5% loss uplink: events and a 64 KiB archive.
    Impaired,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run one scenario and print a report.
    Run {
        /// Which.
        scenario: Scenario,
        /// The edge's NAT.
        #[arg(long, default_value = "port-restricted")]
        edge_nat: NatProfile,
        /// The client's NAT (dcutr).
        #[arg(long, default_value = "port-restricted")]
        client_nat: NatProfile,
        /// Outage: how long the uplink is cut (over 60 s, QUIC's idle timeout, the edge has
        /// to reconnect).
        #[arg(long, default_value_t = 30)]
        cut_secs: u64,
        /// Keep the lab's folder (logs) afterwards.
        #[arg(long)]
        keep: bool,
    },
    /// The relay + DCUtR matrix over NAT profiles, as a table.
    Matrix {
        /// Profiles (comma-separated); default all.
        #[arg(long, value_delimiter = ',')]
        nat: Vec<NatProfile>,
        /// Pairs run at once.
        #[arg(long, default_value_t = 49)]
        parallel: usize,
        /// Seconds a dialer waits for a direct connection.
        #[arg(long, default_value_t = 20)]
        settle: u64,
        /// Delay added each way on the vm's link, in ms: the relayed path then takes 4x this
        /// a round trip, the direct path nothing (a far relay, near peers).
        #[arg(long, default_value_t = 0)]
        relay_delay_ms: u64,
        /// Keep the lab's folder (logs) afterwards.
        #[arg(long)]
        keep: bool,
    },
    /// The streaming benchmark: `guardian play` of a clip on an edge (port-restricted NAT)
    /// to a client (another port-restricted NAT), relayed and direct, against iperf3 on the
    /// edge's uplink (default 100 Mbit/s, +20 ms each way), as ratios.
    BenchStream {
        /// Uplink rate, Mbit/s.
        #[arg(long, default_value_t = 100)]
        mbit: u32,
        /// Delay added each way on the uplink, ms.
        #[arg(long, default_value_t = 20)]
        delay_ms: u64,
        /// The clip's size, MiB.
        #[arg(long, default_value_t = 64)]
        clip_mib: usize,
        /// Runs of each kind (the medians are printed).
        #[arg(long, default_value_t = 3)]
        runs: usize,
    },
    /// The overlay benchmark: iperf3 from an edge (port-restricted NAT) to the vm over the
    /// WireGuard overlay against the underlay and against Debian's wireguard-go on the same
    /// two namespaces (a 1 Gbit/s link); then, UDP blocked at the edge's router, over the
    /// stream fallback against TCP (a 100 Mbit/s, +20 ms link); as ratios.
    BenchOverlay {
        /// The fast link's rate, Mbit/s.
        #[arg(long, default_value_t = 1000)]
        mbit: u32,
        /// Delay added each way on the fast link, ms.
        #[arg(long, default_value_t = 0)]
        delay_ms: u64,
        /// The fallback's link rate, Mbit/s.
        #[arg(long, default_value_t = 100)]
        fallback_mbit: u32,
        /// Delay added each way on the fallback's link, ms.
        #[arg(long, default_value_t = 20)]
        fallback_delay_ms: u64,
        /// Seconds of each iperf3 run.
        #[arg(long, default_value_t = 10)]
        secs: u32,
        /// Runs of each kind (the medians are printed).
        #[arg(long, default_value_t = 3)]
        runs: usize,
    },
    /// The alerts benchmark: person events from stand-in cameras on an edge behind a NAT
    /// (20 ms round trip to the vm), from the detector's hit to the webhook and the MQTT
    /// message, p50 and p99, against the event's own delivery to the vm.
    BenchAlerts {
        /// Events measured.
        #[arg(long, default_value_t = 100)]
        events: usize,
        /// Stand-in cameras (a person walks through each every 7 s).
        #[arg(long, default_value_t = 4)]
        cameras: usize,
    },
    /// Check every NAT profile's mapping and filtering with probes.
    Selftest,
    /// Remove namespaces left by interrupted runs.
    Sweep,
    /// The probe peer (used by the matrix): JSON lines on stdout.
    Peer {
        /// An install package of the vm (key, vm address).
        #[arg(long)]
        package: PathBuf,
        /// Listen through the vm's relay.
        #[arg(long, conflicts_with = "dial")]
        listen: bool,
        /// Dial this peer id through the vm's relay.
        #[arg(long)]
        dial: Option<String>,
        /// Stop after this many seconds.
        #[arg(long, default_value_t = 60)]
        timeout: u64,
        /// Dialer: stay this many seconds after going direct.
        #[arg(long, default_value_t = 1)]
        hold: u64,
    },
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    if let Cmd::Peer {
        package,
        listen,
        dial,
        timeout,
        hold,
    } = cli.command
    {
        guardian_node::process::init_logging();
        let mode = match (listen, dial) {
            (true, _) => Mode::Listen,
            (false, Some(p)) => Mode::Dial(p.parse().context("--dial: not a peer id")?),
            (false, None) => bail!("give --listen or --dial PEER"),
        };
        let rt = tokio::runtime::Runtime::new()?;
        return rt
            .block_on(peer::run(
                &package,
                PeerOptions {
                    mode,
                    timeout: Duration::from_secs(timeout),
                    hold: Duration::from_secs(hold),
                },
            ))
            .map_err(Into::into);
    }
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("NETSIM_LOG")
                .unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    if !guardian_netsim::can_run() {
        bail!("netsim needs root (network namespaces, nftables, NFQUEUE)");
    }
    match cli.command {
        Cmd::Sweep => {
            let removed = guardian_netsim::sweep()?;
            println!("removed {} leftover namespaces", removed.len());
            for n in removed {
                println!("  {n}");
            }
        }
        Cmd::Selftest => selftest()?,
        Cmd::BenchStream {
            mbit,
            delay_ms,
            clip_mib,
            runs,
        } => {
            if mbit == 0 || runs == 0 || clip_mib == 0 {
                bail!("--mbit, --runs and --clip-mib must be at least 1");
            }
            let link = Impairment {
                delay: Duration::from_millis(delay_ms),
                rate_kbit: Some(mbit * 1000),
                ..Default::default()
            };
            let t = Instant::now();
            let b = guardian_netsim::playback::bench_stream(link, clip_mib, runs)?;
            println!("{}", b.table());
            println!("({:.0} s)", t.elapsed().as_secs_f64());
        }
        Cmd::BenchOverlay {
            mbit,
            delay_ms,
            fallback_mbit,
            fallback_delay_ms,
            secs,
            runs,
        } => {
            if mbit == 0 || fallback_mbit == 0 || runs == 0 || secs == 0 {
                bail!("--mbit, --fallback-mbit, --secs and --runs must be at least 1");
            }
            let link = |mbit: u32, delay_ms: u64| Impairment {
                delay: Duration::from_millis(delay_ms),
                rate_kbit: Some(mbit * 1000),
                ..Default::default()
            };
            let t = Instant::now();
            let b =
                guardian_netsim::overlay::bench_overlay(guardian_netsim::overlay::BenchOptions {
                    link: link(mbit, delay_ms),
                    fallback_link: link(fallback_mbit, fallback_delay_ms),
                    secs,
                    runs,
                })?;
            println!("{}", b.table());
            println!("({:.0} s)", t.elapsed().as_secs_f64());
        }
        Cmd::BenchAlerts { events, cameras } => {
            if events == 0 || cameras == 0 {
                bail!("--events and --cameras must be at least 1");
            }
            let t = Instant::now();
            let b = guardian_netsim::alerts::bench_alerts(events, cameras)?;
            println!("{}", b.table());
            println!("({:.0} s)", t.elapsed().as_secs_f64());
        }
        Cmd::Matrix {
            nat,
            parallel,
            settle,
            relay_delay_ms,
            keep,
        } => {
            let profiles = if nat.is_empty() {
                NatProfile::ALL.to_vec()
            } else {
                nat
            };
            let (mut lab, vm) = scenario::lab_with_vm()?;
            if keep {
                lab.keep_dir();
            }
            if relay_delay_ms > 0 {
                lab.impair(
                    &vm.host.link,
                    Impairment {
                        delay: Duration::from_millis(relay_delay_ms),
                        ..Default::default()
                    },
                )?;
                println!(
                    "vm link: {relay_delay_ms} ms each way ({:?} backend)",
                    lab.backend()
                );
            }
            let t = Instant::now();
            let results = matrix::run(
                &lab,
                &vm,
                &matrix::all_pairs(&profiles),
                parallel,
                Duration::from_secs(settle),
            )?;
            println!("{}", matrix::table(&results));
            let failed: Vec<String> = results.iter().filter_map(|r| r.check().err()).collect();
            println!(
                "{} pairs in {:.0} s; {} as expected",
                results.len(),
                t.elapsed().as_secs_f64(),
                results.len() - failed.len()
            );
            for f in &failed {
                println!("  unexpected: {f}");
            }
        }
        Cmd::Run {
            scenario: which,
            edge_nat,
            client_nat,
            cut_secs,
            keep,
        } => {
            let (mut lab, mut vm) = scenario::lab_with_vm()?;
            if keep {
                lab.keep_dir();
            }
            println!("lab {} (files in {})", lab.prefix(), lab.dir().display());
            println!("vm {} at {} (public)", vm.peer_id, vm.ip());
            run(&lab, &mut vm, which, (edge_nat, client_nat), cut_secs)?;
        }
        Cmd::Peer { .. } => unreachable!("handled above"),
    }
    Ok(())
}

fn run(
    lab: &Lab,
    vm: &mut Vm,
    which: Scenario,
    (edge_nat, client_nat): (NatProfile, NatProfile),
    cut_secs: u64,
) -> Result<()> {
    match which {
        Scenario::Enroll => {
            let r = scenario::enroll_behind_each(lab, vm, &[edge_nat], 5)?;
            for r in r {
                println!(
                    "edge behind {}: enrolled after {:.1} s over {}, 5 events delivered in {:.1} s",
                    r.profile, r.enrolled_s, r.transport, r.delivered_s
                );
            }
        }
        Scenario::Dcutr => {
            let r = matrix::run(
                lab,
                vm,
                &[(client_nat, edge_nat)],
                1,
                Duration::from_secs(20),
            )?;
            let r = &r[0];
            println!(
                "client behind {} -> edge behind {} through the vm's relay:",
                r.client, r.edge
            );
            match r.connect_s {
                Some(t) => println!("  connected after {t:.2} s"),
                None => println!("  never connected: {}", r.error.as_deref().unwrap_or("?")),
            }
            match r.direct_s {
                Some(t) => println!(
                    "  direct after {t:.2} s over {}",
                    r.direct_addr.as_deref().unwrap_or("?")
                ),
                None => println!("  stayed relayed"),
            }
            println!(
                "  expected: {:?}; {}",
                matrix::expectation(r.client, r.edge),
                match r.check() {
                    Ok(()) => "as expected".to_owned(),
                    Err(e) => format!("NOT as expected: {e}"),
                }
            );
        }
        Scenario::Outage => {
            let r = scenario::outage(lab, vm, edge_nat, Duration::from_secs(cut_secs))?;
            println!("edge behind {edge_nat}:");
            println!(
                "  vm restarted: backlog delivered {:.1} s after its start",
                r.after_restart_s
            );
            println!(
                "  uplink cut {:.0} s: backlog delivered {:.1} s after restoring it",
                r.cut_s, r.after_restore_s
            );
            println!(
                "  {} events, each held once; the edge opened {} connection(s) to the vm after the restart, {} after the cut",
                r.events, r.connections_after_restart, r.connections_after_cut
            );
        }
        Scenario::Impaired => {
            let imp = Impairment {
                delay: Duration::from_millis(400),
                jitter: Duration::ZERO,
                loss: 0.05,
                rate_kbit: Some(256),
            };
            let r = scenario::impaired_uplink(
                lab,
                vm,
                edge_nat,
                imp,
                3,
                64 * 1024,
                Duration::from_secs(180),
            )?;
            println!(
                "edge behind {edge_nat}, uplink {imp:?} each way ({:?} backend), over {}:",
                lab.backend(),
                r.transport
            );
            println!(
                "  enrolled after {:.1} s; 3 events in {:.1} s; {} B archived in {:.1} s",
                r.enrolled_s, r.events_s, r.archive_bytes, r.archive_s
            );
        }
    }
    Ok(())
}

fn selftest() -> Result<()> {
    let lab = Lab::new()?;
    let servers = ProbeServers::new(&lab)?;
    let mut bad = 0;
    for p in NatProfile::ALL {
        let host = lab.host_behind(&format!("h-{}", p.name()), p)?;
        let report = servers.probe(&lab, &host)?;
        let verdict = match report.check() {
            Ok(()) => "ok".to_owned(),
            Err(e) => {
                bad += 1;
                format!("WRONG: {e}")
            }
        };
        println!("{}  {verdict}", report.summary());
    }
    if bad > 0 {
        bail!("{bad} profiles do not behave as named");
    }
    Ok(())
}
