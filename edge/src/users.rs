//! The household's users, synced by the vm in the configuration's users section
//! ([`UsersSection`]): checked and stored ([`apply`]) for the LAN web app's sign-in
//! ([`crate::lan`]). The edge never sees a password, only its Argon2id hash.

use std::path::Path;

use anyhow::{Context, Result};
use protocols::messages::config::UsersSection;

use crate::store::{Store, UsersApplied};

/// The most memory a user's password hash may take to check, KiB (256 MiB).
pub const MAX_MEMORY_KIB: u32 = 256 * 1024;

/// Checks a users section (its form, and that every hash is an Argon2id PHC string the edge
/// can verify with) and stores it in the edge's database under `data`, unless the stored
/// revision is the same or newer.
pub fn apply(data: &Path, section: &UsersSection) -> Result<UsersApplied> {
    check(section)?;
    let mut store = Store::open(&data.join(crate::paths::DB)).context("the edge's database")?;
    Ok(store.replace_users(section)?)
}

/// [`UsersSection::validate`], and each hash parsed as Argon2id.
pub fn check(section: &UsersSection) -> Result<()> {
    section.validate().map_err(anyhow::Error::msg)?;
    for u in &section.users {
        let parsed = argon2::PasswordHash::new(&u.password_phc)
            .map_err(|e| anyhow::anyhow!("user {}: password_phc does not parse: {e}", u.name))?;
        anyhow::ensure!(
            parsed.algorithm.as_str() == "argon2id" && parsed.hash.is_some(),
            "user {}: password_phc is not an Argon2id hash",
            u.name
        );
        let params = argon2::Params::try_from(&parsed)
            .map_err(|e| anyhow::anyhow!("user {}: password_phc parameters: {e}", u.name))?;
        // Each sign-in runs this hash: bounded, so a pushed list cannot exhaust the edge.
        anyhow::ensure!(
            params.m_cost() <= MAX_MEMORY_KIB && params.t_cost() <= 16 && params.p_cost() <= 16,
            "user {}: password_phc asks for more than {MAX_MEMORY_KIB} KiB, 16 passes or 16 lanes",
            u.name
        );
    }
    Ok(())
}
