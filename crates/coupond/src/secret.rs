//! The JWT secret: from the configuration, else generated once (from the OS's CSPRNG) into
//! `<data_dir>/jwt-secret`, readable by its owner only, and read from there afterwards. Never logged.

use std::fs::OpenOptions;
use std::io::{ErrorKind, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

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
    match std::fs::read_to_string(&path) {
        Ok(secret) => return checked(&path, &secret),
        Err(e) if e.kind() == ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    }
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng
        .try_fill_bytes(&mut bytes)
        .context("reading the OS random source")?;
    let fresh: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    // Write a private file of our own, then link it into place: the link appears whole or not at
    // all, so two processes starting together both end up reading the one secret that won.
    let staged = config.data_dir.join(format!(".{FILE}.{}", std::process::id()));
    let mut file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&staged)
        .with_context(|| format!("creating {}", staged.display()))?;
    file.write_all(fresh.as_bytes())
        .and_then(|_| file.sync_all())
        .with_context(|| format!("writing {}", staged.display()))?;
    let linked = std::fs::hard_link(&staged, &path);
    let _ = std::fs::remove_file(&staged);
    match linked {
        Ok(()) => {}
        Err(e) if e.kind() == ErrorKind::AlreadyExists => {}
        Err(e) => return Err(e).with_context(|| format!("creating {}", path.display())),
    }
    let secret = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    checked(&path, &secret)
}

fn checked(path: &Path, secret: &str) -> anyhow::Result<JwtSecret> {
    let secret = secret.trim();
    if secret.len() < MIN_LEN {
        bail!(
            "{} holds fewer than {MIN_LEN} bytes; remove it to generate a new one",
            path.display()
        );
    }
    Ok(JwtSecret::new(secret.as_bytes()))
}
