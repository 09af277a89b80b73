//! `guardian-vm`: the tenant's private cloud node. `init` creates the tenant, `package edge`
//! writes an edge's install package, `run` serves libp2p and the HTTP API until SIGTERM or
//! SIGINT.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::{Parser, Subcommand, ValueEnum};

use guardian_vm::{provision, service};

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
        } => {
            let done = provision::init(&data, &fqdn, &listen, http_listen.as_deref())?;
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
    }
    Ok(())
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
