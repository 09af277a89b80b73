//! `guardian`, the owner's command-line tool: derives the owner's archive key from the
//! passphrase, seals and opens objects in the age format, prints CIDs and verifies signed
//! event manifests, fetches archived clips and plays clips from the edge. Every output file is
//! written to a temporary file beside it and renamed into place only when the whole operation
//! succeeded.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand};

use guardian_client::{Secret, commands, play};
use protocols::KdfParams;

#[derive(Parser)]
#[command(
    name = "guardian",
    version,
    about = "The owner's tool for Private AI Guardian"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum WebCommand {
    /// Compare the web app served at URL (the vm's or the edge's) with this release's bundle,
    /// file by file, and its Content-Security-Policy; exit status 1 if anything differs.
    Verify {
        /// The app's address, such as `https://vm.example.net` or `http://192.168.1.20:8480`.
        url: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum Command {
    /// The owner's archive key, derived from the secret and the tenant id.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Cameras configured at the vm and pushed to their edge; passwords are sealed here to
    /// the edge's own key, so the vm never sees them.
    #[command(subcommand)]
    Cameras(CamerasCommand),
    /// Seal FILE for one or more recipients; prints the CID of the sealed file.
    Seal {
        /// An age X25519 recipient (`age1...`); repeat for several.
        #[arg(short, long = "recipient", required = true)]
        recipients: Vec<String>,
        /// The plaintext file.
        input: PathBuf,
        /// Where to write the sealed file.
        #[arg(short, long)]
        output: PathBuf,
    },
    /// Open (decrypt) a sealed file with the owner's key.
    Open {
        #[command(flatten)]
        key: KeyArgs,
        /// The sealed file.
        input: PathBuf,
        /// Where to write the plaintext.
        #[arg(short, long)]
        output: PathBuf,
    },
    /// Fetch an archived object by CID from the vm: check its CID and the edge's signed
    /// manifest, decrypt it with the owner's key, and write the plaintext.
    Fetch {
        /// The vm's API URL, such as `http://127.0.0.1:8080`.
        #[arg(long, env = "GUARDIAN_VM")]
        vm: String,
        /// The owner's API token.
        #[arg(long, env = "GUARDIAN_TOKEN", hide_env_values = true)]
        token: String,
        #[command(flatten)]
        key: KeyArgs,
        /// The CID of the sealed object.
        cid: String,
        /// Where to write the plaintext.
        #[arg(short, long)]
        output: PathBuf,
    },
    /// Play an event's clip from the edge that recorded it, through the vm's relay (direct
    /// when hole punching succeeds), into a file or stdout; resumes after a dropped
    /// connection. The clip arrives sealed: it is checked against the edge's signed manifest
    /// and decrypted while it streams (the owner's key from `--tenant` and `--secret-file`, or
    /// an age identity file), or kept sealed with `--sealed`. Prints a report (stderr when the
    /// clip goes to stdout).
    Play {
        /// The vm's API URL, such as `http://127.0.0.1:8080`.
        #[arg(long, env = "GUARDIAN_VM")]
        vm: String,
        /// The owner's API token.
        #[arg(long, env = "GUARDIAN_TOKEN", hide_env_values = true)]
        token: String,
        /// The event.
        event_id: String,
        /// Where to write the clip; `-` for stdout (to pipe into a player).
        #[arg(short, long)]
        output: String,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
        /// Use this playback token (from `POST /api/v1/events/{id}/play`) for the first
        /// attempt instead of asking the vm for one.
        #[arg(long)]
        play_token: Option<String>,
        /// Resumes allowed after the stream breaks.
        #[arg(long, default_value_t = 5)]
        retries: u32,
        /// Stay on the vm's relay: no hole punching, no direct connection.
        #[arg(long)]
        relay_only: bool,
        /// Seconds allowed for the dial and for the edge's first answer, each.
        #[arg(long, default_value_t = 15)]
        connect_timeout: u64,
        /// Write the sealed age file as served, without decrypting (no key needed).
        #[arg(long, conflicts_with_all = ["identity_file", "tenant"])]
        sealed: bool,
        /// An age identity file (`AGE-SECRET-KEY-1...`, as `guardian keys identity` prints)
        /// to decrypt with, instead of deriving the key.
        #[arg(long, conflicts_with = "tenant")]
        identity_file: Option<PathBuf>,
        /// The tenant id, to derive the owner's key (with `--secret-file` or a prompt).
        #[arg(long)]
        tenant: Option<String>,
        /// A file holding the owner's secret; without it the secret is asked for.
        #[arg(long, requires = "tenant")]
        secret_file: Option<PathBuf>,
        /// Argon2id memory in KiB, as stored with the tenant.
        #[arg(long, default_value_t = KdfParams::default().memory_kib)]
        kdf_memory_kib: u32,
        /// Argon2id passes, as stored with the tenant.
        #[arg(long, default_value_t = KdfParams::default().iterations)]
        kdf_iterations: u32,
    },
    /// Print the CID of a file (CIDv1, raw, sha2-256, base32).
    Cid {
        /// The file.
        file: PathBuf,
    },
    /// The web app: check that a server gives out this release's.
    #[command(subcommand)]
    Web(WebCommand),
    /// The WireGuard overlay: the owner's phones and laptops join it through the vm, with
    /// the stock WireGuard apps.
    #[command(subcommand)]
    Wg(WgCommand),
    /// Verify a signed event manifest, and the sealed objects it names.
    Verify {
        /// The manifest (`manifest.json`).
        manifest: PathBuf,
        /// The edge's public key: its peer id (`12D3KooW...`), 64 hex digits, or a file
        /// holding either.
        #[arg(long)]
        edge_key: String,
        /// Sealed objects to check: `clip.mp4.age` and `snapshot.jpg.age` by name, or
        /// `clip=PATH` / `snapshot=PATH`.
        objects: Vec<String>,
    },
}

#[derive(Subcommand)]
enum WgCommand {
    /// Devices (phones, laptops) on the vm's overlay.
    #[command(subcommand)]
    Device(WgDeviceCommand),
}

#[derive(Subcommand)]
enum WgDeviceCommand {
    /// Make a key pair here, register its public key at the vm (the private key never
    /// leaves this machine) and give the device's wg-quick configuration, with a QR code of
    /// it for the WireGuard app.
    Add {
        #[command(flatten)]
        vm: VmArgs,
        /// The device's name.
        #[arg(long)]
        name: String,
        /// Write the configuration to this file (mode 0600; the QR code then goes to stdout)
        /// instead of stdout (the QR code then goes to stderr).
        #[arg(short, long)]
        output: Option<PathBuf>,
        /// Print no QR code.
        #[arg(long)]
        no_qr: bool,
    },
    /// List the devices, with their addresses and last handshake.
    List {
        #[command(flatten)]
        vm: VmArgs,
        /// Print the vm's answer as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Remove a device: it leaves the vm's WireGuard device at once.
    Remove {
        #[command(flatten)]
        vm: VmArgs,
        /// The device's name.
        #[arg(long)]
        name: String,
    },
}

fn wg(command: WgDeviceCommand) -> Result<()> {
    use guardian_client::wg;
    match command {
        WgDeviceCommand::Add {
            vm,
            name,
            output,
            no_qr,
        } => {
            // An unwritable destination fails before anything is registered.
            let file = output
                .as_deref()
                .map(|path| -> Result<_> {
                    use std::os::unix::fs::PermissionsExt;
                    let mut f = guardian_client::output::AtomicFile::create(path)?;
                    f.file()
                        .set_permissions(std::fs::Permissions::from_mode(0o600))?;
                    Ok((f, path))
                })
                .transpose()?;
            let added = wg::add(&vm.api(), &name)?;
            let summary = format!(
                "added WireGuard device {name}: {}",
                wg::show(&added.addresses)
            );
            match file {
                Some((mut f, path)) => {
                    use std::io::Write;
                    f.file()
                        .write_all(added.config.as_bytes())
                        .and_then(|()| f.file().flush())
                        .map_err(anyhow::Error::from)
                        .and_then(|()| f.commit())
                        .with_context(|| {
                            format!(
                                "the device {name:?} is registered at the vm but its \
                                 configuration was not written; remove it with `guardian wg \
                                 device remove --name {name}` and add it again"
                            )
                        })?;
                    if !no_qr {
                        print!("{}", wg::qr(&added.config)?.as_str());
                    }
                    println!(
                        "{summary}; its configuration (with its private key) is in {}",
                        path.display()
                    );
                }
                None => {
                    print!("{}", added.config.as_str());
                    if !no_qr {
                        eprint!("{}", wg::qr(&added.config)?.as_str());
                    }
                    eprintln!(
                        "{summary}; the configuration holds its private key: import it on that \
                         device only"
                    );
                }
            }
        }
        WgDeviceCommand::List { vm, json } => {
            let answer = wg::list(&vm.api())?;
            if json {
                println!("{}", serde_json::to_string_pretty(&answer)?);
            } else {
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)?
                    .as_millis() as u64;
                print!("{}", wg::describe(&wg::parse_devices(&answer)?, now));
            }
        }
        WgDeviceCommand::Remove { vm, name } => {
            wg::remove(&vm.api(), &name)?;
            println!("removed WireGuard device {name}");
        }
    }
    Ok(())
}

#[derive(Subcommand)]
enum KeysCommand {
    /// Print the recipient (`age1...`), its key id, and the owner signing key (for
    /// `guardian-vm package edge --owner-signing-key`) for the secret and tenant. A member
    /// runs it with their own passphrase and gives the owner the recipient.
    Init {
        #[command(flatten)]
        key: KeyArgs,
    },
    /// The household's key slots: members whose keys open new clips, signed here with the
    /// owner signing key (never by the vm) and sent to every edge through the vm.
    #[command(subcommand)]
    Slots(SlotsCommand),
    /// Print the age identity (`AGE-SECRET-KEY-1...`), usable with `age -d -i`. Keep it safe.
    Identity {
        #[command(flatten)]
        key: KeyArgs,
    },
}

#[derive(Subcommand)]
enum SlotsCommand {
    /// Add a member's key: new clips of the cameras it may open are sealed to it too.
    Add {
        #[command(flatten)]
        vm: VmArgs,
        #[command(flatten)]
        key: KeyArgs,
        /// The member's name.
        #[arg(long)]
        name: String,
        /// The member's recipient (`age1...`, from their `guardian keys init`).
        #[arg(long)]
        recipient: String,
        /// A camera it may open; repeat for several; none means every camera.
        #[arg(long = "camera")]
        cameras: Vec<String>,
    },
    /// Show the list (checked against your signing key) and the version each edge runs.
    List {
        #[command(flatten)]
        vm: VmArgs,
        #[command(flatten)]
        key: KeyArgs,
        /// Print the vm's answer as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Remove a member: clips sealed after the edges apply it are not sealed to them.
    Remove {
        #[command(flatten)]
        vm: VmArgs,
        #[command(flatten)]
        key: KeyArgs,
        /// The member's name.
        #[arg(long)]
        name: String,
    },
}

#[derive(Subcommand)]
enum CamerasCommand {
    /// Add or replace a camera.
    Set {
        #[command(flatten)]
        vm: VmArgs,
        /// The camera id (a-z, 0-9, -).
        #[arg(long)]
        id: String,
        /// Its main stream, such as `rtsp://192.168.1.20:554/stream1` (user and password may
        /// be in it; they are taken out and the password sealed).
        #[arg(long, required_unless_present = "onvif", conflicts_with = "onvif")]
        url: Option<String>,
        /// An ONVIF camera's device service, such as
        /// `http://192.168.1.20/onvif/device_service` (as `cameras discovered` lists it): the
        /// edge asks it for the stream URLs, with --username and --password-file.
        #[arg(long)]
        onvif: Option<String>,
        /// The ONVIF profile recorded (default: the camera's largest).
        #[arg(long, requires = "onvif")]
        profile: Option<String>,
        /// The ONVIF profile decoded for detection (such as the camera's substream).
        #[arg(long, requires = "onvif")]
        substream_profile: Option<String>,
        /// A human name (default: the id).
        #[arg(long)]
        name: Option<String>,
        /// The edge (peer id or name); needed when the tenant has several.
        #[arg(long)]
        edge: Option<String>,
        /// The camera's user name.
        #[arg(long)]
        username: Option<String>,
        /// A file holding the camera's password (one trailing newline is ignored).
        #[arg(long)]
        password_file: Option<PathBuf>,
        /// A lower-resolution stream for detection.
        #[arg(long, conflicts_with = "onvif")]
        substream: Option<String>,
    },
    /// List the cameras the edges found on their LANs (ONVIF, RTSP, USB), with what the vm
    /// knows of each.
    Discovered {
        #[command(flatten)]
        vm: VmArgs,
        /// Print the vm's answer as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Ask the edges (or one) to scan their LANs now; `discovered` shows the findings when
    /// the scan ends.
    Discover {
        #[command(flatten)]
        vm: VmArgs,
        /// The edge (peer id or name); every edge by default.
        #[arg(long)]
        edge: Option<String>,
    },
    /// Save a camera's current picture (sealed by its edge, opened here) as a JPEG.
    Snapshot {
        #[command(flatten)]
        vm: VmArgs,
        #[command(flatten)]
        key: KeyArgs,
        /// The camera id.
        #[arg(long)]
        id: String,
        /// Where to write the JPEG.
        #[arg(long, short)]
        output: PathBuf,
    },
    /// List the cameras with their live state.
    List {
        #[command(flatten)]
        vm: VmArgs,
        /// Print the vm's answer as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Remove a camera (its recorded events stay).
    Remove {
        #[command(flatten)]
        vm: VmArgs,
        /// The camera id.
        #[arg(long)]
        id: String,
    },
}

fn cameras(command: CamerasCommand) -> Result<()> {
    use guardian_client::cameras;
    match command {
        CamerasCommand::Set {
            vm,
            id,
            url,
            onvif,
            profile,
            substream_profile,
            name,
            edge,
            username,
            password_file,
            substream,
        } => {
            let source = match (&url, &onvif) {
                (_, Some(xaddr)) => cameras::Source::Onvif {
                    xaddr,
                    profile: profile.as_deref(),
                    substream_profile: substream_profile.as_deref(),
                },
                (Some(url), None) => cameras::Source::Url(url),
                (None, None) => anyhow::bail!("give --url or --onvif"),
            };
            let password = password_file
                .map(|p| Secret::from_file(&p))
                .transpose()?
                .map(|s| String::from_utf8(s.expose().to_vec()))
                .transpose()
                .map_err(|_| anyhow::anyhow!("the password file is not UTF-8"))?
                .map(zeroize::Zeroizing::new);
            let answer = cameras::set(
                &vm.api(),
                &cameras::Wanted {
                    id: &id,
                    name: name.as_deref(),
                    edge: edge.as_deref(),
                    source,
                    username: username.as_deref(),
                    password: password.as_ref().map(|p| p.as_str()),
                    substream: substream.as_deref(),
                },
            )?;
            print!(
                "{}",
                cameras::describe(&serde_json::json!({ "cameras": [answer] }))
            );
        }
        CamerasCommand::List { vm, json } => {
            let answer: serde_json::Value = vm.api().get("/api/v1/cameras")?.into_json()?;
            if json {
                println!("{}", serde_json::to_string_pretty(&answer)?);
            } else {
                print!("{}", cameras::describe(&answer));
            }
        }
        CamerasCommand::Remove { vm, id } => {
            vm.api().delete(&format!("/api/v1/cameras/{id}"))?;
            println!("removed camera {id}");
        }
        CamerasCommand::Discovered { vm, json } => {
            let answer: serde_json::Value =
                vm.api().get("/api/v1/cameras/discovered")?.into_json()?;
            if json {
                println!("{}", serde_json::to_string_pretty(&answer)?);
            } else {
                print!("{}", cameras::describe_discovered(&answer));
            }
        }
        CamerasCommand::Discover { vm, edge } => {
            let body = match &edge {
                Some(e) => serde_json::json!({ "edge": e }),
                None => serde_json::json!({}),
            };
            let answer: serde_json::Value = vm
                .api()
                .post_json("/api/v1/cameras/discover", body)?
                .into_json()?;
            for e in answer["edges"].as_array().into_iter().flatten() {
                println!(
                    "edge {}: {}",
                    e["edge_name"].as_str().unwrap_or("-"),
                    e["outcome"].as_str().unwrap_or("-")
                );
            }
        }
        CamerasCommand::Snapshot {
            vm,
            key,
            id,
            output,
        } => {
            let owner = key.derive()?;
            let (jpeg, w, h) = cameras::snapshot(&vm.api(), &id, owner.identity())?;
            guardian_client::output::write_atomic(&output, &jpeg)?;
            println!(
                "camera {id}: {w}x{h}, {} bytes, written to {}",
                jpeg.len(),
                output.display()
            );
        }
    }
    Ok(())
}

#[derive(Args)]
struct VmArgs {
    /// The vm's API URL, such as `http://127.0.0.1:8080`.
    #[arg(long, env = "GUARDIAN_VM")]
    vm: String,
    /// The owner's API token.
    #[arg(long, env = "GUARDIAN_TOKEN", hide_env_values = true)]
    token: String,
}

impl VmArgs {
    fn api(&self) -> guardian_client::api::VmApi {
        guardian_client::api::VmApi::new(
            &self.vm,
            &self.token,
            guardian_client::api::Timeouts::REQUEST,
        )
    }
}

#[derive(Args)]
struct KeyArgs {
    /// The tenant id.
    #[arg(long)]
    tenant: String,
    /// A file holding the owner's secret (one trailing newline is ignored). Without it, the
    /// secret is asked for on the terminal.
    #[arg(long)]
    secret_file: Option<PathBuf>,
    /// Argon2id memory in KiB, as stored with the tenant.
    #[arg(long, default_value_t = KdfParams::default().memory_kib)]
    kdf_memory_kib: u32,
    /// Argon2id passes, as stored with the tenant.
    #[arg(long, default_value_t = KdfParams::default().iterations)]
    kdf_iterations: u32,
}

impl KeyArgs {
    fn secret(&self) -> Result<Secret> {
        match &self.secret_file {
            Some(path) => Secret::from_file(path),
            None => Secret::prompt(),
        }
    }

    fn params(&self) -> KdfParams {
        KdfParams {
            memory_kib: self.kdf_memory_kib,
            iterations: self.kdf_iterations,
            ..KdfParams::default()
        }
    }

    fn derive(&self) -> Result<protocols::OwnerKey> {
        commands::derive_key(&self.secret()?, &self.tenant, &self.params())
    }

    fn derive_signing(&self) -> Result<protocols::OwnerSigningKey> {
        commands::derive_signing_key(&self.secret()?, &self.tenant, &self.params())
    }
}

fn slots(command: SlotsCommand) -> Result<()> {
    use guardian_client::slots;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_millis() as u64;
    let (vm, key) = match &command {
        SlotsCommand::Add { vm, key, .. }
        | SlotsCommand::List { vm, key, .. }
        | SlotsCommand::Remove { vm, key, .. } => (vm, key),
    };
    let signing = key.derive_signing()?;
    let api = vm.api();
    let current = slots::current(&api, signing.signing_key())?;
    let next = match &command {
        SlotsCommand::List { json, .. } => {
            if *json {
                println!("{}", serde_json::to_string_pretty(&current.answer)?);
            } else {
                print!("{}", slots::describe(&current.answer));
            }
            return Ok(());
        }
        SlotsCommand::Add {
            name,
            recipient,
            cameras,
            ..
        } => slots::add(
            current.list.as_ref(),
            &key.tenant,
            protocols::key_slots::KeySlot {
                name: name.clone(),
                recipient: recipient.trim().to_owned(),
                cameras: slots::cameras(cameras),
                added_at_ms: now,
            },
            now,
        )?,
        SlotsCommand::Remove { name, .. } => {
            slots::remove(current.list.as_ref(), &key.tenant, name, now)?
        }
    };
    let answer = slots::upload(&api, signing.signing_key(), &next)?;
    print!("{}", slots::describe(&answer));
    Ok(())
}

fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Keys(KeysCommand::Init { key }) => {
            let k = key.derive()?;
            println!("recipient: {}", k.recipient());
            println!("key id: {}", k.key_id());
            let s = key.derive_signing()?;
            println!("owner signing key: {}", s.public_hex());
            println!("owner signing key fingerprint: {}", s.fingerprint());
        }
        Command::Keys(KeysCommand::Slots(command)) => slots(command)?,
        Command::Cameras(command) => cameras(command)?,
        Command::Wg(WgCommand::Device(command)) => wg(command)?,
        Command::Keys(KeysCommand::Identity { key }) => {
            let k = key.derive()?;
            println!("{}", k.identity_string().as_str());
        }
        Command::Seal {
            recipients,
            input,
            output,
        } => {
            let summary = commands::seal_file(&input, &output, &recipients)?;
            println!("{}", summary.cid);
        }
        Command::Open { key, input, output } => {
            let k = key.derive()?;
            commands::open_file(&input, &output, k.identity())?;
        }
        Command::Fetch {
            vm,
            token,
            key,
            cid,
            output,
        } => {
            let cid: protocols::ContentId = cid.parse().map_err(|e| anyhow::anyhow!("{e}"))?;
            let k = key.derive()?;
            let fetched = guardian_client::fetch::fetch(&vm, &token, &cid, k.identity(), &output)?;
            println!("{fetched}");
        }
        Command::Play {
            vm,
            token,
            event_id,
            output,
            json,
            play_token,
            retries,
            relay_only,
            connect_timeout,
            sealed,
            identity_file,
            tenant,
            secret_file,
            kdf_memory_kib,
            kdf_iterations,
        } => {
            init_logging();
            let mut opts = play::PlayOptions::new(&vm, &token, &event_id);
            opts.identity = match (sealed, identity_file, tenant) {
                (true, _, _) => None,
                (false, Some(f), _) => Some(play::Identity(commands::read_identity_file(&f)?)),
                (false, None, Some(tenant)) => {
                    let key = KeyArgs {
                        tenant,
                        secret_file,
                        kdf_memory_kib,
                        kdf_iterations,
                    }
                    .derive()?;
                    Some(play::Identity(key.identity().clone()))
                }
                (false, None, None) => anyhow::bail!(
                    "to decrypt the clip give --tenant (with --secret-file) or --identity-file; --sealed keeps the age file"
                ),
            };
            opts.play_token = play_token;
            opts.retries = retries;
            opts.prefer_direct = !relay_only;
            opts.connect_timeout = std::time::Duration::from_secs(connect_timeout.max(1));
            let to_stdout = output == "-";
            let out = if to_stdout {
                play::Output::Stdout
            } else {
                play::Output::File(PathBuf::from(&output))
            };
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()?;
            let report = runtime.block_on(play::play(&opts, out))?;
            let text = if json {
                serde_json::to_string(&report)?
            } else {
                format!(
                    "ok: event {}: {} bytes, first byte after {} ms, {} ({}), {:.1} MB/s ({} bytes relayed, {} direct), {} resumes, written to {}",
                    report.event_id,
                    report.bytes,
                    report.first_byte_ms,
                    if report.relayed {
                        "relayed by the vm"
                    } else {
                        "direct"
                    },
                    match report.direct_after_ms {
                        Some(ms) if report.switched_to_direct =>
                            format!("direct after {ms} ms, stream moved to it"),
                        Some(ms) => format!("direct after {ms} ms"),
                        None => "no direct connection".into(),
                    },
                    report.throughput / 1e6,
                    report.relayed_bytes,
                    report.direct_bytes,
                    report.resumes,
                    if to_stdout { "stdout" } else { &report.output },
                )
            };
            if to_stdout {
                eprintln!("{text}");
            } else {
                println!("{text}");
            }
        }
        Command::Cid { file } => {
            println!("{}", commands::cid_of_file(&file)?);
        }
        Command::Web(WebCommand::Verify { url, json }) => {
            let v = guardian_client::web::verify(&url, std::time::Duration::from_secs(30))?;
            if json {
                println!("{}", serde_json::to_string_pretty(&v)?);
            } else {
                print!("{}", guardian_client::web::render(&v));
            }
            if !v.ok {
                std::process::exit(1);
            }
        }
        Command::Verify {
            manifest,
            edge_key,
            objects,
        } => {
            let report = commands::verify_manifest(&manifest, &edge_key, &objects)?;
            println!("{report}");
        }
    }
    Ok(())
}

/// Logs to stderr, warnings only unless `GUARDIAN_LOG` says otherwise.
fn init_logging() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("GUARDIAN_LOG")
                .unwrap_or_else(|_| "warn,libp2p=error".into()),
        )
        .with_writer(std::io::stderr)
        .init();
}

fn main() -> ExitCode {
    // Keys and decrypted clips are the owner's alone.
    guardian_node::files::private_by_default();
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // One line: the error and its causes, outermost first.
            eprintln!("guardian: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    fn wg_device(args: &[&str]) -> Result<WgDeviceCommand, clap::Error> {
        let mut all = vec!["guardian", "wg", "device"];
        all.extend(args);
        match Cli::try_parse_from(all)?.command {
            Command::Wg(WgCommand::Device(c)) => Ok(c),
            _ => panic!("not a wg device command"),
        }
    }

    #[test]
    fn wg_device_arguments() {
        let vm = ["--vm", "http://vm:8080", "--token", "T"];
        let add = |rest: &[&str]| wg_device(&[&["add"], &vm[..], rest].concat());
        match add(&["--name", "phone"]).unwrap() {
            WgDeviceCommand::Add {
                vm,
                name,
                output,
                no_qr,
            } => {
                assert_eq!((vm.vm.as_str(), vm.token.as_str()), ("http://vm:8080", "T"));
                assert_eq!(name, "phone");
                assert_eq!(output, None);
                assert!(!no_qr);
            }
            _ => panic!("not add"),
        }
        match add(&["--name", "laptop", "-o", "laptop.conf", "--no-qr"]).unwrap() {
            WgDeviceCommand::Add { output, no_qr, .. } => {
                assert_eq!(output, Some(PathBuf::from("laptop.conf")));
                assert!(no_qr);
            }
            _ => panic!("not add"),
        }
        assert!(add(&[]).is_err(), "--name is required");
        match wg_device(&[&["list"], &vm[..], &["--json"]].concat()).unwrap() {
            WgDeviceCommand::List { json, .. } => assert!(json),
            _ => panic!("not list"),
        }
        match wg_device(&[&["remove"], &vm[..], &["--name", "phone"]].concat()).unwrap() {
            WgDeviceCommand::Remove { name, .. } => assert_eq!(name, "phone"),
            _ => panic!("not remove"),
        }
        assert!(wg_device(&[&["remove"], &vm[..]].concat()).is_err());
    }
}
