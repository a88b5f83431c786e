//! The JWT secret: from the configuration, else generated once (from the OS's CSPRNG) into
//! `<data_dir>/jwt-secret`, readable by its owner only. Never logged.

use std::fs::OpenOptions;
use std::io::{ErrorKind, Write};
use std::os::unix::fs::OpenOptionsExt;

use anyhow::{bail, Context};
use coupon_server::JwtSecret;
use rand::TryRngCore;

use crate::config::Config;

const FILE: &str = "jwt-secret";
const MIN_LEN: usize = 32;

pub fn load(config: &Config) -> anyhow::Result<JwtSecret> {
    if let Some(secret) = &config.jwt_secret {
        if secret.len() < MIN_LEN {
            bail!("COUPOND_JWT_SECRET must be at least {MIN_LEN} bytes");
        }
        return Ok(JwtSecret::new(secret.as_bytes()));
    }
    let path = config.data_dir.join(FILE);
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng
        .try_fill_bytes(&mut bytes)
        .context("reading the OS random source")?;
    let fresh: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    // create_new: if two processes start at once, one writes and both read the same secret.
    match OpenOptions::new().write(true).create_new(true).mode(0o600).open(&path) {
        Ok(mut file) => file
            .write_all(fresh.as_bytes())
            .with_context(|| format!("writing {}", path.display()))?,
        Err(e) if e.kind() == ErrorKind::AlreadyExists => {}
        Err(e) => return Err(e).with_context(|| format!("creating {}", path.display())),
    }
    let secret = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let secret = secret.trim();
    if secret.len() < MIN_LEN {
        bail!(
            "{} holds fewer than {MIN_LEN} bytes; remove it to generate a new one",
            path.display()
        );
    }
    Ok(JwtSecret::new(secret.as_bytes()))
}
