//! The SQLite database's own small ext4 volume (a loop-mounted image), so the harness can fill
//! its disk and make its files read-only under a running coupond.
//!
//! Both faults must reach the server's open files: a ballast file takes every free block of the
//! volume (the writes coupond makes next fail with "disk full"), and `chattr +i` makes the database
//! and its WAL immutable, which ext4 enforces on file descriptors already open (tmpfs and a
//! read-only bind mount do not: both only refuse new opens). Needs root and a loop device.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context};

pub struct Volume {
    image: PathBuf,
    mount: PathBuf,
    frozen: Vec<PathBuf>,
}

impl Volume {
    /// An ext4 volume of `megabytes`, mounted at `dir/volume`.
    pub fn create(dir: &Path, megabytes: u64) -> anyhow::Result<Volume> {
        if !crate::postgres::is_root() {
            bail!("mounting a volume needs root");
        }
        let image = dir.join("volume.ext4");
        let mount = dir.join("volume");
        File::create(&image)?.set_len(megabytes << 20)?;
        // No blocks reserved for root: coupond runs as root here, and must find the disk full too.
        run(Command::new("mkfs.ext4").args(["-q", "-F", "-m", "0"]).arg(&image))?;
        fs::create_dir_all(&mount)?;
        run(Command::new("mount").args(["-o", "loop"]).arg(&image).arg(&mount))?;
        Ok(Volume {
            image,
            mount,
            frozen: Vec::new(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.mount
    }

    fn ballast(&self) -> PathBuf {
        self.mount.join("ballast")
    }

    /// Takes every free block: a large preallocation, then writes until the disk refuses.
    pub fn fill(&self) -> anyhow::Result<u64> {
        let path = self.ballast();
        // fallocate keeps what it could allocate when the volume runs out; it fails, as expected.
        let _ = Command::new("fallocate").args(["-l", "64G"]).arg(&path).output();
        let mut file = OpenOptions::new().create(true).append(true).open(&path)?;
        for chunk in [1 << 20, 4096, 512] {
            let zeros = vec![0u8; chunk];
            while file.write_all(&zeros).and_then(|_| file.sync_data()).is_ok() {}
        }
        Ok(fs::metadata(&path).map(|m| m.len()).unwrap_or(0))
    }

    pub fn drain(&self) {
        let _ = fs::remove_file(self.ballast());
    }

    /// Makes these files immutable, as far as each exists.
    pub fn freeze(&mut self, files: &[PathBuf]) -> anyhow::Result<()> {
        for file in files.iter().filter(|f| f.exists()) {
            run(Command::new("chattr").arg("+i").arg(file))?;
            self.frozen.push(file.clone());
        }
        Ok(())
    }

    pub fn thaw(&mut self) {
        for file in self.frozen.drain(..) {
            let _ = run(Command::new("chattr").arg("-i").arg(&file));
        }
    }

    /// Undoes every fault (idempotent).
    pub fn heal(&mut self) {
        self.thaw();
        self.drain();
    }
}

impl Drop for Volume {
    fn drop(&mut self) {
        self.heal();
        let _ = run(Command::new("umount").arg(&self.mount));
        let _ = fs::remove_file(&self.image);
    }
}

fn run(command: &mut Command) -> anyhow::Result<()> {
    let out = command.output().with_context(|| format!("running {command:?}"))?;
    if !out.status.success() {
        bail!(
            "{:?} failed ({}): {}",
            command,
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}
