//! `guardian-vm`: the tenant's private cloud node. `init` creates the tenant, `package edge`
//! writes an edge's install package, `run` serves libp2p and the HTTP API until SIGTERM or
//! SIGINT, `wg device add|list|remove` manages the owner's devices on the WireGuard overlay.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail, ensure};
use clap::{Parser, Subcommand, ValueEnum};
use guardian_node::{Clock, SystemClock};

use guardian_vm::overlay::devices;
use guardian_vm::{provision, service};

/// Where `wg` commands find the data directory when `--data` is not given.
const DEFAULT_DATA: &str = "/var/lib/guardian/vm";

#[derive(Parser)]
#[command(
    name = "guardian-vm",
    version,
    about = "The tenant's private cloud node"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Create the tenant in a new data directory and print the owner's API token (once).
    Init {
        /// The data directory (created).
        #[arg(long)]
        data: PathBuf,
        /// The public host name (or IP) edges dial.
        #[arg(long)]
        fqdn: String,
        /// libp2p listen addresses (repeat); default QUIC and TCP on port 4001.
        #[arg(long)]
        listen: Vec<String>,
        /// HTTP API listen address; default 127.0.0.1:8080.
        #[arg(long)]
        http_listen: Option<String>,
        /// Turn the WireGuard overlay on (`[wg] enabled = true`; it needs root or
        /// CAP_NET_ADMIN and /dev/net/tun when the vm runs).
        #[arg(long)]
        wg: bool,
        /// The overlay's UDP port (`[wg] listen_port`); default 51820.
        #[arg(long)]
        wg_port: Option<u16>,
        /// The overlay's TUN interface (`[wg] interface`); default guardian0.
        #[arg(long)]
        wg_interface: Option<String>,
    },
    /// Install packages.
    #[command(subcommand)]
    Package(PackageCommand),
    /// Serve libp2p and the HTTP API until SIGTERM or SIGINT.
    Run {
        /// The data directory.
        #[arg(long)]
        data: PathBuf,
    },
    /// The WireGuard overlay.
    #[command(subcommand)]
    Wg(WgCommand),
}

#[derive(Subcommand)]
enum WgCommand {
    /// The owner's devices (phones, laptops with the WireGuard apps). The commands write the
    /// database; a running vm applies them to its WireGuard device within 2 s.
    #[command(subcommand)]
    Device(DeviceCommand),
}

#[derive(Subcommand)]
enum DeviceCommand {
    /// Register a device's public key (made on the device, `wg genkey | wg pubkey`) and print
    /// its addresses and the vm's side of its configuration.
    Add {
        /// The device's name (a-z, 0-9 and -, 1 to 48 characters).
        #[arg(long)]
        name: String,
        /// The device's WireGuard public key (base64).
        #[arg(long)]
        public_key: String,
        /// The data directory.
        #[arg(long, env = "GUARDIAN_DATA", default_value = DEFAULT_DATA)]
        data: PathBuf,
    },
    /// List the registered devices.
    List {
        /// The data directory.
        #[arg(long, env = "GUARDIAN_DATA", default_value = DEFAULT_DATA)]
        data: PathBuf,
    },
    /// Remove a device (it is cut off the overlay).
    Remove {
        /// The device's name.
        #[arg(long)]
        name: String,
        /// The data directory.
        #[arg(long, env = "GUARDIAN_DATA", default_value = DEFAULT_DATA)]
        data: PathBuf,
    },
}

#[derive(Subcommand)]
enum PackageCommand {
    /// Write an edge's install package (the vm's identity and addresses, a single-use
    /// enrollment token, the owner's public keys), signed by the tenant key. The edge makes
    /// its own keys at `guardian-edge init`.
    Edge {
        /// The data directory.
        #[arg(long)]
        data: PathBuf,
        /// The edge's name.
        #[arg(long)]
        name: String,
        /// The owner's archive recipient (`age1...`, from `guardian keys init`).
        #[arg(long)]
        recipient: String,
        /// The owner's signing key (64 hex digits or a peer id, from `guardian keys init`):
        /// the only key whose key-slot lists the edge applies. The first package that names
        /// one sets the tenant's; without it the edge seals to `--recipient` alone.
        #[arg(long)]
        owner_signing_key: Option<String>,
        /// Where to write the package.
        #[arg(long)]
        out: PathBuf,
        /// How long the enrollment token is valid, seconds (default from vm.toml: 7 days).
        #[arg(long)]
        valid_secs: Option<u64>,
        /// Package format.
        #[arg(long, value_enum, default_value_t = Format::Tar)]
        format: Format,
        /// With `--format iso`: the guardian-edge binary to put on the seed (default: the one
        /// beside this guardian-vm, if any).
        #[arg(long)]
        edge_binary: Option<PathBuf>,
        /// With `--format iso`: the detector bundle (models and OpenVINO, made by
        /// `scripts/detector-bundle.sh`) to install on the edge (default:
        /// /usr/lib/private-ai-guardian on this machine, if it holds one).
        #[arg(long)]
        detector: Option<PathBuf>,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum Format {
    /// A signed tar archive (`guardian-edge init --package FILE`).
    Tar,
    /// A cloud-init NoCloud seed ISO (volume `cidata`) that installs and enrolls the edge on
    /// first boot.
    Iso,
}

fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Init {
            data,
            fqdn,
            listen,
            http_listen,
            wg,
            wg_port,
            wg_interface,
        } => {
            let mut overlay = guardian_vm::config::WgConfig {
                enabled: wg,
                ..Default::default()
            };
            if let Some(p) = wg_port {
                overlay.listen_port = p;
            }
            if let Some(i) = wg_interface {
                overlay.interface = i;
            }
            let done =
                provision::init_with(&data, &fqdn, &listen, http_listen.as_deref(), overlay)?;
            println!("tenant id: {}", done.tenant_id);
            println!("vm peer id: {}", done.vm_peer_id);
            for a in &done.addresses {
                println!("edges dial: {a}");
            }
            println!("owner API token: {}", done.owner_token);
            println!("(shown once; keep it: it opens the HTTP API)");
            println!(
                "configuration: {}",
                data.join(guardian_vm::paths::CONFIG).display()
            );
        }
        Command::Package(PackageCommand::Edge {
            data,
            name,
            recipient,
            owner_signing_key,
            out,
            valid_secs,
            format,
            edge_binary,
            detector,
        }) => {
            let beside = std::env::current_exe()
                .ok()
                .map(|p| p.with_file_name("guardian-edge"))
                .filter(|p| p.is_file());
            let edge_binary = edge_binary.or(beside);
            let detector = detector.or_else(|| {
                let system = PathBuf::from(guardian_vm::iso::DETECTOR_DIR);
                (system.join("models").is_dir() && system.join("openvino").is_dir())
                    .then_some(system)
            });
            let format = match format {
                Format::Tar => provision::PackageFormat::Tar,
                Format::Iso => provision::PackageFormat::Iso {
                    edge_binary: edge_binary.as_deref(),
                    detector: detector.as_deref(),
                },
            };
            let p = provision::package_edge(
                &data,
                &name,
                provision::Owner {
                    recipient: &recipient,
                    signing_key: owner_signing_key.as_deref(),
                },
                &out,
                valid_secs,
                format,
            )?;
            println!("package: {}", p.path.display());
            // The edge makes its own key at `guardian-edge init`; until it enrolls it connects
            // as this identity, derived from the token's secret.
            println!("enrollment peer id: {}", p.enrollment_peer_id);
            println!(
                "enrollment token valid until (Unix ms): {}",
                p.expires_at_ms
            );
        }
        Command::Run { data } => {
            let rt = tokio::runtime::Runtime::new()?;
            rt.block_on(async {
                let shutdown = guardian_node::process::shutdown_on_signal();
                service::run(&data, shutdown).await
            })?;
            // Blocking-pool work left behind (a database call) must not hold the exit.
            rt.shutdown_timeout(std::time::Duration::from_millis(500));
        }
        Command::Wg(WgCommand::Device(c)) => match c {
            DeviceCommand::Add {
                name,
                public_key,
                data,
            } => print!("{}", wg_device_add(&data, &name, &public_key)?),
            DeviceCommand::List { data } => print!("{}", wg_device_list(&data)?),
            DeviceCommand::Remove { name, data } => {
                let dir = provision::DataDir::open(&data)?;
                let removed = dir
                    .db
                    .with(|c| guardian_vm::db::delete_overlay_device(c, &name))?;
                if removed.is_none() {
                    bail!("no WireGuard device named {name:?} (see `guardian-vm wg device list`)");
                }
                println!(
                    "removed {name}; a running vm takes it off its WireGuard device within 2 s"
                );
            }
        },
    }
    Ok(())
}

/// `wg device add`: registers the key; what to print.
fn wg_device_add(data: &Path, name: &str, public_key: &str) -> Result<String> {
    let dir = provision::DataDir::open(data)?;
    ensure!(
        dir.config.wg.enabled,
        "the WireGuard overlay is off: set [wg] enabled = true in {} and restart the vm first",
        data.join(guardian_vm::paths::CONFIG).display()
    );
    let settings = dir.config.overlay_settings()?;
    let vm_key = guardian_vm::data_dir::wg_key(data)?.public();
    let key = devices::check(name, public_key)?;
    let now = SystemClock.wall_ms();
    let row = dir.db.with(|c| {
        Ok(devices::register(
            c,
            &settings.prefixes,
            &vm_key,
            name,
            &key,
            now,
        ))
    })??;
    let view = devices::view(&settings.prefixes, &row).context("the device has no address")?;
    let cidrs = settings.prefixes.cidrs().join(", ");
    Ok(format!(
        "device: {name}\n\
         overlay addresses: {v6}, {v4}\n\
         vm public key: {vm_key}\n\
         vm endpoint: {endpoint}\n\
         allowed ips: {cidrs}\n\
         persistent keepalive: {keepalive}\n\
         (a running vm puts the device on its WireGuard device within 2 s)\n\
         \n\
         The device's wg-quick configuration (its private key stays on the device):\n\
         [Interface]\n\
         PrivateKey = <the device's private key>\n\
         Address = {v6}/128, {v4}/32\n\
         \n\
         [Peer]\n\
         PublicKey = {vm_key}\n\
         Endpoint = {endpoint}\n\
         AllowedIPs = {cidrs}\n\
         PersistentKeepalive = {keepalive}\n",
        v6 = view.overlay_ip,
        v4 = view.overlay_ipv4,
        endpoint = settings.endpoint,
        keepalive = settings.keepalive_secs,
    ))
}

/// `wg device list`: one line per device.
fn wg_device_list(data: &Path) -> Result<String> {
    let dir = provision::DataDir::open(data)?;
    let settings = dir.config.overlay_settings()?;
    let rows = dir.db.with(|c| guardian_vm::db::overlay_peers(c))?;
    let devices: Vec<_> = rows
        .iter()
        .filter(|r| r.kind == guardian_vm::db::OverlayKind::Device)
        .filter_map(|r| devices::view(&settings.prefixes, r))
        .collect();
    if devices.is_empty() {
        return Ok("no WireGuard devices (add one with `guardian-vm wg device add`)\n".into());
    }
    let mut out = format!(
        "{:<20} {:<28} {:<16} {:<14} {}\n",
        "NAME", "IPV6", "IPV4", "ADDED (ms)", "PUBLIC KEY"
    );
    for d in devices {
        out += &format!(
            "{:<20} {:<28} {:<16} {:<14} {}\n",
            d.name, d.overlay_ip, d.overlay_ipv4, d.created_ms, d.public_key
        );
    }
    Ok(out)
}

fn main() -> ExitCode {
    guardian_node::process::init_logging();
    // Keys, databases, configurations and stored objects are the service user's alone.
    guardian_node::files::private_by_default();
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("guardian-vm: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
