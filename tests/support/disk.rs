//! A small filesystem of the test's own, to fill up.

use std::path::Path;
use std::process::{Command, Stdio};

use super::skip_unless_ci;

/// A small tmpfs of the test's own, to put a hub's data folder on and fill up. Unmounted
/// (lazily: the hub may still hold files) when dropped, also when the test fails.
pub struct SmallDisk {
    dir: tempfile::TempDir,
}

impl SmallDisk {
    /// None (outside CI) when mounting is not possible here: it needs root.
    pub fn mount(megabytes: u32) -> Option<SmallDisk> {
        let dir = tempfile::tempdir().expect("temp dir");
        let mounted = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={megabytes}m"), "tmpfs"])
            .arg(dir.path())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !mounted && skip_unless_ci("mounting a tmpfs needs root") {
            return None;
        }
        Some(SmallDisk { dir })
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Writes a ballast file until the disk is full.
    pub fn fill(&self) {
        use std::io::Write as _;
        let mut ballast = std::fs::File::create(self.path().join("ballast")).expect("ballast");
        let chunk = vec![0x55u8; 64 * 1024];
        while ballast.write_all(&chunk).is_ok() {}
        while ballast.write_all(&[0x55]).is_ok() {}
    }

    /// Removes the ballast.
    pub fn free(&self) {
        std::fs::remove_file(self.path().join("ballast")).expect("removing the ballast");
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(self.path()).status();
    }
}
