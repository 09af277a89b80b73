//! The owner's client library behind the `guardian` command: reading the owner's secret,
//! the file operations of each subcommand (seal, open, CID, manifest verification), and
//! fetching archived objects from the vm ([`fetch`]), playing clips from the edge
//! ([`play`]), the household's key slots ([`slots`]), cameras configured at the vm with
//! passwords sealed to the edge ([`cameras`]) and the owner's devices on the WireGuard
//! overlay ([`wg`]); every output file is written atomically ([`output`]).
//!
//! Layers, bottom up: [`output`]; [`commands`] (on `output`); [`api`], the vm's HTTP API;
//! [`fetch`] (on `api`, `commands`), [`play`] (on `api`, `output`, the node), [`slots`],
//! [`cameras`] and [`wg`] (on `api`).

pub mod api;
pub mod cameras;
pub mod commands;
pub mod fetch;
pub mod output;
pub mod play;
pub mod slots;
pub mod web;
pub mod wg;

use std::path::Path;

use anyhow::{Context, Result, bail};
use zeroize::Zeroizing;

/// The owner's secret (passphrase), wiped from memory when dropped.
pub struct Secret(Zeroizing<Vec<u8>>);

impl Secret {
    /// Wraps bytes.
    pub fn new(bytes: Vec<u8>) -> Self {
        Secret(Zeroizing::new(bytes))
    }

    /// Reads a secret file; one trailing `\n` or `\r\n` is not part of the secret.
    pub fn from_file(path: &Path) -> Result<Self> {
        let mut bytes = Zeroizing::new(
            std::fs::read(path)
                .with_context(|| format!("cannot read the secret file {}", path.display()))?,
        );
        if bytes.last() == Some(&b'\n') {
            bytes.pop();
            if bytes.last() == Some(&b'\r') {
                bytes.pop();
            }
        }
        if bytes.is_empty() {
            bail!("the secret file {} is empty", path.display());
        }
        Ok(Secret(Zeroizing::new(bytes.to_vec())))
    }

    /// Asks for the secret on the terminal, without echo.
    pub fn prompt() -> Result<Self> {
        let s = rpassword::prompt_password("Owner secret: ").context(
            "no --secret-file was given and the secret cannot be asked for on a terminal",
        )?;
        let s = Zeroizing::new(s);
        if s.is_empty() {
            bail!("the secret is empty");
        }
        Ok(Secret(Zeroizing::new(s.as_bytes().to_vec())))
    }

    /// The secret's bytes.
    pub fn expose(&self) -> &[u8] {
        &self.0
    }
}
