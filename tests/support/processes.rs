//! The processes tests start: each carries the test process's mark in its environment, so
//! that a test can find (and end) everything it started, and a later run can end what a run
//! killed outright left behind. Also what a process's status says about its memory.

use std::path::Path;
use std::process::Command;

/// Marks every process a test starts (and, through the environment, everything those start)
/// with the test process's id: `<pid>` or `<pid>:<tag>`.
pub const OWNER_ENV: &str = "TIDINGS_TEST_OWNER";

/// This test process's mark; the first call also ends what earlier runs left behind.
pub fn owner_mark() -> String {
    static REAPED: std::sync::Once = std::sync::Once::new();
    REAPED.call_once(reap_orphans);
    std::process::id().to_string()
}

/// The live (not zombie) processes whose environment carries exactly this mark.
pub fn marked(mark: &str) -> Vec<u32> {
    let wanted = format!("{OWNER_ENV}={mark}");
    processes()
        .filter(|(_, env)| env.contains(&wanted))
        .map(|(pid, _)| pid)
        .collect()
}

/// Every live process with its environment (zombies and unreadable ones left out).
fn processes() -> impl Iterator<Item = (u32, Vec<String>)> {
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let pid: u32 = entry.file_name().to_str()?.parse().ok()?;
            let stat = std::fs::read_to_string(entry.path().join("stat")).ok()?;
            let state = stat.rsplit_once(')')?.1.split_whitespace().next()?;
            if state == "Z" {
                return None;
            }
            let environ = std::fs::read(entry.path().join("environ")).ok()?;
            let env = environ
                .split(|b| *b == 0)
                .map(|v| String::from_utf8_lossy(v).into_owned())
                .collect();
            Some((pid, env))
        })
}

/// A test run killed outright (SIGKILL, a CI time limit) runs no clean-up: on the next run,
/// kill whatever carries the mark of a test process that no longer exists.
fn reap_orphans() {
    let prefix = format!("{OWNER_ENV}=");
    for (pid, env) in processes() {
        let Some(owner) = env.iter().find_map(|e| e.strip_prefix(&prefix)) else {
            continue;
        };
        let owner = owner.split(':').next().unwrap_or_default();
        if !Path::new(&format!("/proc/{owner}")).exists() {
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
        }
    }
}

/// A `Vm*` line of a process's status (`VmRSS`, `VmHWM`, …), in KiB.
pub fn status_kib(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("/proc status");
    status
        .lines()
        .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("no {field} in {status}"))
}

/// The peak resident memory of a process (VmHWM), in bytes.
pub fn peak_memory(pid: u32) -> u64 {
    status_kib(pid, "VmHWM") * 1024
}
