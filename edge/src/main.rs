//! `guardian-edge`: the edge appliance agent. `init` installs an install package, `run`
//! connects to the vm and delivers events and telemetry until SIGTERM or SIGINT,
//! `emit-test-event` puts an event in the outbox (until cameras land).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Result, ensure};
use clap::{Parser, Subcommand};
use rand::Rng;

use guardian_edge::{agent, install, now_ms};
use protocols::messages::Category;
use protocols::messages::events::EventRecord;

#[derive(Parser)]
#[command(name = "guardian-edge", version, about = "The edge appliance agent")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Check an install package's signature and install it into a new data directory.
    Init {
        /// The package from `guardian-vm package edge`.
        #[arg(long)]
        package: PathBuf,
        /// The data directory (created).
        #[arg(long)]
        data: PathBuf,
    },
    /// Connect to the vm, enroll on first contact, deliver events and telemetry.
    Run {
        /// The data directory.
        #[arg(long)]
        data: PathBuf,
    },
    /// Seal FILE as an event's clip (and optionally a snapshot) for the owner and queue it for
    /// the archive; a running edge sends it to the vm. Prints the event id and the clip's CID.
    ArchiveFile {
        /// The data directory.
        #[arg(long)]
        data: PathBuf,
        /// The camera id.
        #[arg(long)]
        camera: String,
        /// The category.
        #[arg(long, default_value = "person")]
        category: String,
        /// A snapshot file to seal with it.
        #[arg(long)]
        snapshot: Option<PathBuf>,
        /// The clip.
        file: PathBuf,
    },
    /// Put a test event into the outbox; a running edge delivers it. Prints its id.
    EmitTestEvent {
        /// The data directory.
        #[arg(long)]
        data: PathBuf,
        /// The camera id.
        #[arg(long)]
        camera: String,
        /// The category (person, car, ...).
        #[arg(long, default_value = "person")]
        category: String,
        /// The score, 0 to 1.
        #[arg(long, default_value_t = 0.9)]
        score: f32,
    },
}

fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Init { package, data } => {
            let p = install::install(&package, &data)?;
            println!(
                "installed edge {} ({})",
                p.info.edge_name, p.info.edge_peer_id
            );
            println!("tenant {}, vm {}", p.info.tenant_id, p.info.vm_peer_id);
            for a in &p.info.vm_addresses {
                println!("vm address: {a}");
            }
            println!("next: guardian-edge run --data {}", data.display());
        }
        Command::Run { data } => {
            let rt = tokio::runtime::Runtime::new()?;
            rt.block_on(agent::run(&data, guardian_node::process::shutdown_signal()))?;
        }
        Command::ArchiveFile {
            data,
            camera,
            category,
            snapshot,
            file,
        } => {
            let installed = agent::Installed::load(&data)?;
            let record = test_record(&installed, &camera, &category, 0.9)?;
            let mut store = installed.store()?;
            let m = guardian_edge::archive::seal_event(
                &data,
                &mut store,
                &installed.info,
                &installed.key,
                guardian_edge::archive::EventToSeal {
                    record,
                    clip: &file,
                    snapshot: snapshot.as_deref(),
                },
                now_ms(),
            )?;
            println!("event: {}", m.event_id);
            for o in &m.objects {
                println!("{}: {} ({} bytes)", o.kind, o.cid, o.size);
            }
        }
        Command::EmitTestEvent {
            data,
            camera,
            category,
            score,
        } => {
            let installed = agent::Installed::load(&data)?;
            let record = test_record(&installed, &camera, &category, score)?;
            let (now, event_id) = (now_ms(), record.event_id.clone());
            installed.store()?.enqueue_event(&record, now)?;
            println!("{event_id}");
        }
    }
    Ok(())
}

/// An event record for a command-line event (test event or archived file), ending now.
fn test_record(
    installed: &agent::Installed,
    camera: &str,
    category: &str,
    score: f32,
) -> Result<EventRecord> {
    ensure!(
        protocols::messages::valid_id(camera),
        "--camera must be 1 to 48 characters of a-z, 0-9 and -"
    );
    ensure!((0.0..=1.0).contains(&score), "--score must be 0 to 1");
    let now = now_ms();
    let category: Category =
        serde_json::from_value(serde_json::Value::String(category.to_lowercase()))?;
    Ok(EventRecord {
        event_id: format!("ev-{now:x}-{:08x}", rand::thread_rng().r#gen::<u32>()),
        tenant_id: installed.info.tenant_id.clone(),
        edge_id: installed.peer_id(),
        camera_id: camera.to_owned(),
        started_at_ms: now.saturating_sub(5_000),
        ended_at_ms: now,
        category,
        score_milli: (score * 1000.0).round() as u16,
        clip_id: None,
        snapshot_id: None,
    })
}

fn main() -> ExitCode {
    guardian_node::process::init_logging();
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("guardian-edge: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
