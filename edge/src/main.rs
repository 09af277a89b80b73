//! `guardian-edge`: the edge appliance agent. `init` installs an install package and makes
//! the edge's own keys (and the LAN web app's local admin token, printed once;
//! `local-token --rotate` makes a new one), `status` shows them and the enrollment, `run` runs the cameras and
//! connects to the vm, delivering events, sealed clips and telemetry until SIGTERM or SIGINT; `camera add|list|remove` manages cameras; `detect` runs the
//! detector on a photograph; `import-clip`, `archive-file` and `emit-test-event` queue things
//! by hand.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Result, ensure};
use clap::{Parser, Subcommand};
use rand::Rng;

use guardian_edge::config::EdgeConfig;
use guardian_edge::data_dir::Installed;
use guardian_edge::detect::locate;
use guardian_edge::{agent, install};
use guardian_node::clock::{Clock, SystemClock};
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
    /// Check an install package's signature, install it into a new data directory and make
    /// the edge's own keys (ed25519 and age); again on the same package it changes nothing.
    Init {
        /// The package from `guardian-vm package edge`.
        #[arg(long)]
        package: PathBuf,
        /// The data directory (created).
        #[arg(long)]
        data: PathBuf,
        /// Turn on discovery (`[discovery] enabled`): the edge scans its LAN for ONVIF, RTSP
        /// and USB cameras and reports them to the vm. Installed edges (the ISO, the systemd
        /// instructions) use it; off, nothing is sent to the LAN's hosts.
        #[arg(long)]
        discovery: bool,
    },
    /// The local admin token of the LAN web app (`[http] listen`): `--rotate` makes a new one
    /// and prints it once (the old one stops working, its sessions end); without, says
    /// whether one exists. Only its SHA-256 is kept.
    LocalToken {
        /// The data directory.
        #[arg(long)]
        data: PathBuf,
        /// Make a new token.
        #[arg(long)]
        rotate: bool,
    },
    /// Show the edge's keys (peer id, fingerprints, age recipient), the owner's archive key
    /// id and whether it has enrolled.
    Status {
        /// The data directory.
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
    /// the archive; a running edge sends it to the vm. Prints the event id and the objects'
    /// CIDs.
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
    /// Record FILE (an MP4) as an event of CAMERA, as if the camera had recorded it: sealed
    /// into the edge's clip store (so the owner can play it remotely), delivered to the vm,
    /// and queued for the archive with `--archive`. Prints the event id.
    ImportClip {
        /// The data directory.
        #[arg(long)]
        data: PathBuf,
        /// The camera id.
        #[arg(long)]
        camera: String,
        /// The category.
        #[arg(long, default_value = "person")]
        category: String,
        /// Also seal it into the archive outbox.
        #[arg(long)]
        archive: bool,
        /// The clip.
        file: PathBuf,
    },
    /// Manage cameras in `edge.toml`; a running edge applies changes within seconds.
    Camera {
        #[command(subcommand)]
        action: CameraCommand,
    },
    /// Run the detector on a photograph (PNG or JPEG) and print what it finds, one JSON
    /// object per line (label, score, box in fractions of the image).
    Detect {
        /// The data directory (for edge.toml's detector settings); defaults apply without.
        #[arg(long)]
        data: Option<PathBuf>,
        /// The photograph.
        image: PathBuf,
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
        /// Send it as an event that goes on (`open`, revision 1, no clip yet), as a camera
        /// does when the object is confirmed.
        #[arg(long)]
        open: bool,
    },
}

#[derive(Subcommand)]
enum CameraCommand {
    /// Add a camera with the defaults (person and vehicles at 5 fps, 5 s pre- and post-roll).
    Add {
        /// The data directory.
        #[arg(long)]
        data: PathBuf,
        /// Camera id (a-z, 0-9, -).
        #[arg(long)]
        id: String,
        /// Main stream: rtsp://, file://, v4l2:///dev/videoN or test://.
        #[arg(long)]
        url: String,
        /// Lower-resolution stream for detection.
        #[arg(long)]
        substream: Option<String>,
        /// Human name (defaults to the id).
        #[arg(long)]
        name: Option<String>,
        /// RTSP transport: tcp or udp.
        #[arg(long, default_value = "tcp")]
        transport: String,
    },
    /// List cameras with the running edge's view of each.
    List {
        /// The data directory.
        #[arg(long)]
        data: PathBuf,
    },
    /// Remove a camera (its recorded events stay).
    Remove {
        /// The data directory.
        #[arg(long)]
        data: PathBuf,
        /// Camera id.
        #[arg(long)]
        id: String,
    },
}

fn camera(action: CameraCommand) -> Result<()> {
    use guardian_edge::config::CameraSettings;
    match action {
        CameraCommand::Add {
            data,
            id,
            url,
            substream,
            name,
            transport,
        } => {
            let path = data.join(guardian_edge::paths::CONFIG);
            let mut c = EdgeConfig::load(&path)?;
            ensure!(
                !c.cameras.iter().any(|x| x.id == id),
                "camera {id} already exists (remove it first)"
            );
            let cam = CameraSettings {
                name: name.unwrap_or_else(|| id.clone()),
                id,
                url,
                substream,
                transport,
                ..Default::default()
            };
            cam.validate()?;
            println!(
                "added camera {} ({})",
                cam.id,
                guardian_edge::video::supervisor::redact(&cam.url)
            );
            c.cameras.push(cam);
            c.save(&path)?;
        }
        CameraCommand::List { data } => {
            let c = EdgeConfig::load(&data.join(guardian_edge::paths::CONFIG))?;
            let statuses = guardian_edge::store::Store::open(&data.join(guardian_edge::paths::DB))?
                .camera_statuses()?;
            let now = SystemClock.wall_ms();
            println!(
                "{:<20} {:<12} {:>6}  {:<40} LAST ERROR",
                "ID", "STATE", "FPS", "URL"
            );
            for cam in &c.cameras {
                let s = statuses.iter().find(|s| s.camera_id == cam.id);
                let (state, fps, err) = match s {
                    // A status older than 10 s: the agent is not running.
                    Some(s) if now.saturating_sub(s.updated_at_ms) < 10_000 => (
                        s.state.clone(),
                        format!("{:.1}", s.fps_milli as f64 / 1000.0),
                        s.last_error.clone().unwrap_or_default(),
                    ),
                    _ if !cam.enabled => ("disabled".into(), "-".into(), String::new()),
                    _ => ("not running".into(), "-".into(), String::new()),
                };
                println!(
                    "{:<20} {:<12} {:>6}  {:<40} {}",
                    cam.id,
                    state,
                    fps,
                    guardian_edge::video::supervisor::redact(&cam.url),
                    err
                );
            }
        }
        CameraCommand::Remove { data, id } => {
            let path = data.join(guardian_edge::paths::CONFIG);
            let mut c = EdgeConfig::load(&path)?;
            let before = c.cameras.len();
            c.cameras.retain(|x| x.id != id);
            ensure!(c.cameras.len() < before, "no camera {id}");
            c.save(&path)?;
            println!("removed camera {id}");
        }
    }
    Ok(())
}

fn detect(data: Option<PathBuf>, image: PathBuf) -> Result<()> {
    use guardian_edge::detect::{labels, runtime::Detector};
    let (config, dir) = match &data {
        Some(d) => (
            EdgeConfig::load(&d.join(guardian_edge::paths::CONFIG))?,
            d.clone(),
        ),
        None => (EdgeConfig::default(), PathBuf::from(".")),
    };
    let settings = guardian_edge::video::supervisor::detector_settings(&config.detector, &dir);
    let detector = Detector::start(&settings)?;
    let img = image::open(&image)
        .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", image.display()))?
        .to_rgb8();
    let (w, h) = img.dimensions();
    let t0 = SystemClock.monotonic();
    // As a camera's whole-frame look: letterboxed when not square.
    let dets = detector.detect_region(
        &img.into_raw(),
        w,
        h,
        None,
        std::time::Duration::from_secs(30),
    )?;
    let ms = (SystemClock.monotonic() - t0).as_secs_f64() * 1000.0;
    for d in &dets {
        println!(
            "{}",
            serde_json::json!({
                "label": labels::COCO.get(d.class).copied().unwrap_or("?"),
                "score": (d.score * 1000.0).round() / 1000.0,
                "box": [d.bbox.x0, d.bbox.y0, d.bbox.x1, d.bbox.y1],
            })
        );
    }
    eprintln!(
        "{} detections in {ms:.1} ms (first call includes compiling for this size)",
        dets.len()
    );
    Ok(())
}

fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Init {
            package,
            data,
            discovery,
        } => {
            let done = install::install(&package, &data)?;
            let config_path = data.join(guardian_edge::paths::CONFIG);
            if discovery {
                let mut config = EdgeConfig::load(&config_path)?;
                if !config.discovery.enabled {
                    config.discovery.enabled = true;
                    config.save(&config_path)?;
                }
            }
            if done.already_installed {
                println!(
                    "edge {} was installed from this package already: nothing changed",
                    done.info.edge_name
                );
            } else {
                println!("installed edge {}", done.info.edge_name);
            }
            print_identity(&done.keys, &done.info);
            let kept_some = !done.made.signing || !done.made.age;
            if !done.already_installed && kept_some {
                println!("(kept the keys an earlier init made)");
            }
            for a in &done.info.vm_addresses {
                println!("vm address: {a}");
            }
            if guardian_edge::local_token::exists(&data) {
                println!(
                    "local admin token for the LAN web app: kept (`guardian-edge local-token --rotate --data {}` makes a new one)",
                    data.display()
                );
            } else {
                let token = guardian_edge::local_token::make(&data)?;
                println!("local admin token for the LAN web app: {token}");
                println!(
                    "(shown once; only its hash is kept. [http] listen in edge.toml turns the LAN web app on)"
                );
            }
            let config = EdgeConfig::load(&data.join(guardian_edge::paths::CONFIG))?;
            let model = locate::locate_model(&config.detector.model, &data);
            let found = model.path.as_ref().is_some_and(|p| p.is_file());
            println!(
                "detector model: {}{}",
                model.describe(),
                if found {
                    ""
                } else {
                    ": missing, run scripts/setup.sh or set detector.model"
                }
            );
            println!(
                "OpenVINO: {}",
                locate::locate_library(&config.detector.openvino_lib).describe()
            );
            if EdgeConfig::load(&config_path)?.discovery.enabled {
                println!(
                    "discovery: on (the edge scans its LAN for cameras and reports them to the vm)"
                );
            } else {
                println!(
                    "discovery: off ([discovery] enabled = true, or init --discovery, turns it on)"
                );
            }
            println!("next: guardian-edge run --data {}", data.display());
        }
        Command::Status { data } => status(&data)?,
        Command::LocalToken { data, rotate } => {
            // Only an installed edge has a token.
            Installed::load(&data)?;
            if rotate {
                let token = guardian_edge::local_token::make(&data)?;
                println!("local admin token for the LAN web app: {token}");
                println!("(shown once; the previous token no longer signs in)");
            } else if guardian_edge::local_token::exists(&data) {
                println!(
                    "a local admin token exists (only its hash is kept); --rotate makes a new one"
                );
            } else {
                println!("no local admin token; --rotate makes one");
            }
        }
        Command::Run { data } => {
            let rt = tokio::runtime::Runtime::new()?;
            rt.block_on(async {
                let shutdown = guardian_node::process::shutdown_on_signal();
                agent::run(&data, shutdown, SystemClock::shared()).await
            })?;
        }
        Command::ArchiveFile {
            data,
            camera,
            category,
            snapshot,
            file,
        } => {
            let installed = Installed::load(&data)?;
            let record = test_record(&installed, &camera, &category, 0.9)?;
            let sealed = record_file(&installed, record, &file, snapshot.as_deref(), true)?;
            println!("event: {}", sealed.record.event_id);
            for o in &sealed.manifest.objects {
                println!("{}: {} ({} bytes)", o.kind, o.cid, o.size);
            }
        }
        Command::ImportClip {
            data,
            camera,
            category,
            archive,
            file,
        } => {
            let installed = Installed::load(&data)?;
            let record = test_record(&installed, &camera, &category, 0.9)?;
            let event_id = import_clip(&installed, record, &file, archive)?;
            println!("{event_id}");
        }
        Command::Camera { action } => camera(action)?,
        Command::Detect { data, image } => detect(data, image)?,
        Command::EmitTestEvent {
            data,
            camera,
            category,
            score,
            open,
        } => {
            let installed = Installed::load(&data)?;
            let mut record = test_record(&installed, &camera, &category, score)?;
            if open {
                record.state = protocols::messages::events::EventState::Open;
                record.revision = 1;
                record.confirmed_at_ms = record.ended_at_ms;
            }
            let (now, event_id) = (SystemClock.wall_ms(), record.event_id.clone());
            installed.store()?.enqueue_event(&record, now)?;
            println!("{event_id}");
        }
    }
    Ok(())
}

/// The lines `init` and `status` both print: the edge's own keys and the owner's key id.
fn print_identity(keys: &guardian_edge::keys::EdgeKeys, info: &protocols::package::PackageInfo) {
    println!("edge peer id: {}", keys.peer_id());
    println!("edge key fingerprint: {}", keys.signing_fingerprint());
    println!("age recipient: {}", keys.age_recipient());
    println!("age recipient fingerprint: {}", keys.age_fingerprint());
    println!("owner archive key id: {}", info.archive_key_id);
    match info.owner_signing_key() {
        Ok(Some(k)) => println!(
            "owner signing key fingerprint: {} (compare with `guardian keys init`)",
            protocols::signed::fingerprint(k.as_bytes())
        ),
        Ok(None) => println!("owner signing key: none in the package (key-slot lists are refused)"),
        Err(e) => println!("owner signing key: {e}"),
    }
    println!("tenant {}, vm {}", info.tenant_id, info.vm_peer_id);
}

/// `guardian-edge status`.
fn status(data: &std::path::Path) -> Result<()> {
    let installed = Installed::load(data)?;
    println!("edge {}", installed.info.edge_name);
    print_identity(&installed.keys(), &installed.info);
    match installed.key_slots.applied() {
        Some(list) => println!(
            "key slots: version {}, {}",
            list.version,
            if list.slots.is_empty() {
                "no member".to_owned()
            } else {
                list.slots
                    .iter()
                    .map(|s| s.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            }
        ),
        None => println!(
            "key slots: none applied (clips are sealed to the owner alone; lowest version accepted {})",
            installed.info.key_slots_min_version
        ),
    }
    match guardian_edge::link::LinkState::load(data)? {
        Some(l) if l.connected => println!(
            "vm link: connected since Unix ms {} over {}{}",
            l.since_ms,
            l.address.as_deref().unwrap_or("?"),
            if l.relayed { " (relayed)" } else { "" }
        ),
        Some(l) => println!("vm link: down since Unix ms {}", l.since_ms),
        None => println!("vm link: the agent has not run"),
    }
    match installed.store()?.device_config()? {
        Some(d) => {
            println!("enrolled: yes, device {}", d.device_id);
            if d.archive_key_id != installed.info.archive_key_id {
                println!("owner archive key id from the vm: {}", d.archive_key_id);
            }
        }
        None => {
            let token = installed.info.token()?.peek()?;
            println!(
                "enrolled: not yet (token valid until Unix ms {}; connects as enrollment peer {})",
                token.expires_at_ms,
                token.enrollment_peer_id()
            );
        }
    }
    Ok(())
}

/// Records `file` as an event of `record`'s camera, sealed as the camera's clips are (with
/// `snapshot` as its snapshot), queued for the vm and, when `archive`, for the archive.
fn import_clip(
    installed: &Installed,
    record: EventRecord,
    file: &std::path::Path,
    archive: bool,
) -> Result<String> {
    Ok(record_file(installed, record, file, None, archive)?
        .record
        .event_id)
}

/// Seals `clip` (and `snapshot`) into the event's folder and writes the rows.
fn record_file(
    installed: &Installed,
    record: EventRecord,
    clip: &std::path::Path,
    snapshot: Option<&std::path::Path>,
    archive: bool,
) -> Result<guardian_edge::sealed::SealedEvent> {
    use anyhow::Context;
    use protocols::manifest::ObjectKind;
    let meta =
        std::fs::metadata(clip).with_context(|| format!("cannot read {}", clip.display()))?;
    ensure!(meta.is_file(), "{} is not a file", clip.display());
    let mut input = std::fs::File::open(clip)?;
    let snapshot = snapshot
        .map(|p| std::fs::read(p).with_context(|| format!("cannot read {}", p.display())))
        .transpose()?;
    // A picture snapshot gives the event its timeline thumbnail; other bytes are sealed as
    // they are, without one.
    let thumbnail = snapshot.as_deref().and_then(|s| {
        guardian_edge::video::finish::thumbnail_of(s)
            .inspect_err(|e| eprintln!("no thumbnail: the snapshot is {e}"))
            .ok()
    });
    let sealed = guardian_edge::sealed::seal_event(
        &installed.data,
        &guardian_edge::sealed::Recipients::parse(
            &installed.key_slots.recipients_for(&record.camera_id),
        )?,
        &installed.key,
        record,
        guardian_edge::sealed::Plain {
            clip: Some(&mut input),
            snapshot: snapshot.as_deref(),
            thumbnail: thumbnail.as_deref(),
        },
        !installed.config.storage.sealed_at_rest,
        SystemClock.wall_ms(),
    )?;
    installed.store()?.insert_event(
        &guardian_edge::store::LocalEvent {
            record: sealed.record.clone(),
            track_json: "[]".into(),
            clip_path: sealed.path(ObjectKind::Clip).map(str::to_owned),
            snapshot_path: sealed.path(ObjectKind::Snapshot).map(str::to_owned),
            thumbnail_path: sealed.path(ObjectKind::Thumbnail).map(str::to_owned),
            objects_dir: Some(sealed.dir.clone()),
            manifest_json: Some(sealed.manifest_json.clone()),
            bytes: sealed.bytes,
        },
        archive,
        SystemClock.wall_ms(),
    )?;
    Ok(sealed)
}

/// An event record for a command-line event (test event or archived file), ending now.
fn test_record(
    installed: &Installed,
    camera: &str,
    category: &str,
    score: f32,
) -> Result<EventRecord> {
    ensure!(
        protocols::messages::valid_id(camera),
        "--camera must be 1 to 48 characters of a-z, 0-9 and -"
    );
    ensure!((0.0..=1.0).contains(&score), "--score must be 0 to 1");
    let now = SystemClock.wall_ms();
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
        clip_cid: None,
        snapshot_cid: None,
        thumbnail_cid: None,
        truncated: false,
        ..Default::default()
    })
}

fn main() -> ExitCode {
    guardian_node::process::init_logging();
    // Keys, databases, configurations and stored objects are the service user's alone.
    guardian_node::files::private_by_default();
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("guardian-edge: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
