//! One writer per realm: the install lock of a state folder.
//!
//! Two files in the private (0700) state folder: `<state>/lock` is held with an exclusive OS
//! file lock (`flock`) for as long as the holder runs, so the kernel itself guarantees there
//! are never two holders of that file and releases the lock when a process dies;
//! `<state>/lock.json` (0600) says who holds it: lock id, host, pid, the process's start time
//! and the machine's boot id, written atomically.
//!
//! A free `flock` alone does not prove the lock is stale: someone may have removed `lock` while
//! an install runs. A lock is called stale only when its holder process is verifiably gone (same
//! host: no process with that pid and start time since that boot). An unreadable or corrupt
//! `lock.json` is reported as such and never silently taken over. Only
//! `realmctl unlock --lock-id ID` clears a stale lock, because a killed install may have left
//! work half done that an operator should look at first.
//!
//! The state folder must be on a file system with working `flock` (any local one).

use std::fs::{File, OpenOptions, TryLockError};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::fsutil;

/// The file held with the OS lock.
pub const LOCK_FILE: &str = "lock";
/// The file naming the holder.
pub const HOLDER_FILE: &str = "lock.json";

/// Who holds (or held) the lock.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Holder {
    /// Random id; `unlock` must name it.
    pub lock_id: String,
    /// Host name.
    pub host: String,
    /// Process id.
    pub pid: u32,
    /// The process's start time (clock ticks since boot), to tell it from a later process that
    /// reuses the pid.
    #[serde(default)]
    pub start_ticks: Option<u64>,
    /// The boot id of the host when the lock was taken.
    #[serde(default)]
    pub boot_id: Option<String>,
    /// Since when (RFC 3339).
    pub since: String,
    /// Operator.
    pub operator: String,
    /// The command that took it.
    pub command: String,
}

impl Holder {
    /// This process as a holder.
    pub fn me(operator: &str, command: &str, since: String) -> Self {
        Holder {
            lock_id: new_lock_id(),
            host: host_name(),
            pid: std::process::id(),
            start_ticks: start_ticks(std::process::id()),
            boot_id: boot_id(),
            since,
            operator: operator.to_owned(),
            command: command.to_owned(),
        }
    }
}

impl std::fmt::Display for Holder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "`{}` by {} on host {} (pid {}) since {}, lock id {}",
            self.command, self.operator, self.host, self.pid, self.since, self.lock_id
        )
    }
}

/// Whether a holder process still runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Liveness {
    /// It runs.
    Alive,
    /// It is gone.
    Gone,
    /// It cannot be known from here (another host).
    Unknown,
}

/// Why the lock could not be taken or cleared.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// A live process holds it.
    #[error("{} is locked: {holder} is running\n  help: wait for it to finish; only one install may write a realm's state at a time", dir.display())]
    Held {
        /// The state folder.
        dir: PathBuf,
        /// Who holds it.
        holder: Box<Holder>,
    },
    /// A live process holds the OS lock but its holder file was not readable.
    #[error("{} is locked by a running process (holder file unreadable)\n  help: wait for it to finish", dir.display())]
    HeldUnknown {
        /// The state folder.
        dir: PathBuf,
    },
    /// The holder file exists but cannot be read or understood.
    #[error("the lock holder file {} cannot be read: {detail}; realmctl will not guess whether an install is running\n  help: make sure no realmctl install is running for this state folder on any host, then run `realmctl unlock --state {} --unreadable`", path.display(), dir.display())]
    Unreadable {
        /// The state folder.
        dir: PathBuf,
        /// The holder file.
        path: PathBuf,
        /// What is wrong with it.
        detail: String,
    },
    /// The holder died without releasing.
    #[error("{} has a stale lock: {holder}, and {why}\n  help: check the journal (`realmctl status --state {}`), then run `realmctl unlock --state {} --lock-id {}`", dir.display(), dir.display(), dir.display(), holder.lock_id)]
    Stale {
        /// The state folder.
        dir: PathBuf,
        /// Who held it.
        holder: Box<Holder>,
        /// How its death is known (or why it cannot be).
        why: String,
    },
    /// `unlock` named a different lock id.
    #[error("the lock of {} has id {actual}, not {given}\n  help: copy the lock id from the error that reported the stale lock", dir.display())]
    WrongId {
        /// The state folder.
        dir: PathBuf,
        /// The id given.
        given: String,
        /// The id of the lock.
        actual: String,
    },
    /// `unlock` found nothing to clear.
    #[error("{} is not locked", dir.display())]
    NotLocked {
        /// The state folder.
        dir: PathBuf,
    },
    /// `unlock --unreadable` found a readable holder file.
    #[error("the lock holder file of {} is readable: {holder}\n  help: use `realmctl unlock --lock-id {}` once that process is gone", dir.display(), holder.lock_id)]
    Readable {
        /// The state folder.
        dir: PathBuf,
        /// Who holds it.
        holder: Box<Holder>,
    },
    /// File system error.
    #[error("lock: {0}")]
    Io(#[from] fsutil::PathError),
}

/// A held lock; dropping it releases it.
#[derive(Debug)]
pub struct Guard {
    file: File,
    dir: PathBuf,
    holder: Holder,
}

impl Guard {
    /// Who holds it (this process).
    pub fn holder(&self) -> &Holder {
        &self.holder
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        // Remove the holder file while still holding the OS lock, then release it.
        let _ = std::fs::remove_file(self.dir.join(HOLDER_FILE));
        let _ = self.file.unlock();
    }
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> LockError + '_ {
    move |source| {
        LockError::Io(fsutil::PathError {
            path: path.to_owned(),
            source,
        })
    }
}

/// What the holder file says.
enum HolderFile {
    None,
    Holder(Holder),
    Unreadable(String),
}

fn holder_file(dir: &Path) -> HolderFile {
    let path = dir.join(HOLDER_FILE);
    match fsutil::read_capped(&path, fsutil::caps::HOLDER) {
        Ok(bytes) => match serde_json::from_slice(&bytes) {
            Ok(h) => HolderFile::Holder(h),
            Err(e) => HolderFile::Unreadable(format!("not a lock holder record ({e})")),
        },
        Err(fsutil::ReadError::NotFound { .. }) => HolderFile::None,
        Err(e) => HolderFile::Unreadable(e.to_string()),
    }
}

/// Reads the holder file, if there is a readable one.
pub fn read_holder(dir: &Path) -> Option<Holder> {
    match holder_file(dir) {
        HolderFile::Holder(h) => Some(h),
        _ => None,
    }
}

/// Takes the OS lock of `dir/lock` if it is free, making sure the file locked is the one at the
/// path (not one removed meanwhile).
fn try_os_lock(dir: &Path) -> Result<Option<File>, LockError> {
    fsutil::create_private_dir(dir)?;
    let path = dir.join(LOCK_FILE);
    for _ in 0..10 {
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(fsutil::PRIVATE_FILE)
            .open(&path)
            .map_err(io(&path))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => return Ok(None),
            Err(TryLockError::Error(e)) => return Err(io(&path)(e)),
        }
        let ours = file.metadata().map_err(io(&path))?;
        match std::fs::metadata(&path) {
            Ok(now) if now.ino() == ours.ino() && now.dev() == ours.dev() => return Ok(Some(file)),
            _ => continue, // replaced or removed while we locked it: lock the file there now
        }
    }
    Err(io(&path)(std::io::Error::other(
        "the lock file keeps being replaced",
    )))
}

fn held(dir: &Path) -> LockError {
    // The holder writes its file right after taking the OS lock; give it a moment.
    for _ in 0..50 {
        if let Some(h) = read_holder(dir) {
            return LockError::Held {
                dir: dir.to_owned(),
                holder: Box::new(h),
            };
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    LockError::HeldUnknown {
        dir: dir.to_owned(),
    }
}

/// Decides what a recorded holder whose OS lock is free means: still held (its process runs,
/// e.g. `lock` was removed under it), or stale.
fn judge(dir: &Path, old: Holder) -> LockError {
    match liveness(&old) {
        Liveness::Alive => LockError::Held {
            dir: dir.to_owned(),
            holder: Box::new(old),
        },
        Liveness::Gone => LockError::Stale {
            dir: dir.to_owned(),
            holder: Box::new(old),
            why: "that process is gone".into(),
        },
        Liveness::Unknown => LockError::Stale {
            dir: dir.to_owned(),
            why: format!(
                "it was taken on host {}, whose processes realmctl cannot see from here: make sure it is not running there",
                old.host
            ),
            holder: Box::new(old),
        },
    }
}

/// Takes the lock of `dir` for `holder`, or says who has it.
pub fn acquire(dir: &Path, holder: Holder) -> Result<Guard, LockError> {
    let Some(file) = try_os_lock(dir)? else {
        return Err(held(dir));
    };
    match holder_file(dir) {
        HolderFile::None => {}
        HolderFile::Holder(old) => return Err(judge(dir, old)),
        HolderFile::Unreadable(detail) => {
            return Err(LockError::Unreadable {
                dir: dir.to_owned(),
                path: dir.join(HOLDER_FILE),
                detail,
            });
        }
    }
    write_holder(dir, &holder)?;
    Ok(Guard {
        file,
        dir: dir.to_owned(),
        holder,
    })
}

fn write_holder(dir: &Path, holder: &Holder) -> Result<(), LockError> {
    let bytes = serde_json::to_vec_pretty(holder).expect("holder serialises");
    fsutil::write_atomic(&dir.join(HOLDER_FILE), &bytes, fsutil::PRIVATE_FILE)?;
    Ok(())
}

/// Clears a stale lock whose id is `lock_id`; refuses while its holder runs. Returns the old
/// holder and keeps the OS lock until the returned guard is dropped, so the caller can journal
/// the takeover before anyone else starts.
pub fn take_over(dir: &Path, lock_id: &str, by: Holder) -> Result<(Holder, Guard), LockError> {
    let Some(file) = try_os_lock(dir)? else {
        return Err(held(dir));
    };
    let old = match holder_file(dir) {
        HolderFile::None => {
            return Err(LockError::NotLocked {
                dir: dir.to_owned(),
            });
        }
        HolderFile::Unreadable(detail) => {
            return Err(LockError::Unreadable {
                dir: dir.to_owned(),
                path: dir.join(HOLDER_FILE),
                detail,
            });
        }
        HolderFile::Holder(h) => h,
    };
    if old.lock_id != lock_id {
        return Err(LockError::WrongId {
            dir: dir.to_owned(),
            given: lock_id.to_owned(),
            actual: old.lock_id,
        });
    }
    if liveness(&old) == Liveness::Alive {
        return Err(LockError::Held {
            dir: dir.to_owned(),
            holder: Box::new(old),
        });
    }
    write_holder(dir, &by)?;
    Ok((
        old,
        Guard {
            file,
            dir: dir.to_owned(),
            holder: by,
        },
    ))
}

/// Clears an unreadable holder file (the operator has made sure nothing runs); the OS lock must
/// be free. Returns what was wrong with the file.
pub fn take_over_unreadable(dir: &Path, by: Holder) -> Result<(String, Guard), LockError> {
    let Some(file) = try_os_lock(dir)? else {
        return Err(held(dir));
    };
    let detail = match holder_file(dir) {
        HolderFile::None => {
            return Err(LockError::NotLocked {
                dir: dir.to_owned(),
            });
        }
        HolderFile::Holder(h) => {
            return Err(LockError::Readable {
                dir: dir.to_owned(),
                holder: Box::new(h),
            });
        }
        HolderFile::Unreadable(detail) => detail,
    };
    write_holder(dir, &by)?;
    Ok((
        detail,
        Guard {
            file,
            dir: dir.to_owned(),
            holder: by,
        },
    ))
}

/// Whether the process a holder names still runs.
pub fn liveness(h: &Holder) -> Liveness {
    if h.host != host_name() {
        return Liveness::Unknown;
    }
    if let (Some(theirs), Some(ours)) = (&h.boot_id, boot_id())
        && *theirs != ours
    {
        return Liveness::Gone; // the machine rebooted since
    }
    match (start_ticks(h.pid), h.start_ticks) {
        (None, _) => Liveness::Gone,
        (Some(now), Some(then)) if now != then => Liveness::Gone, // pid reused
        _ => Liveness::Alive,
    }
}

/// A process's start time in clock ticks since boot (`/proc/<pid>/stat`, field 22).
fn start_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces and parentheses: fields resume after the last `)`.
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(19)?.parse().ok()
}

fn boot_id() -> Option<String> {
    std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .ok()
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
}

/// A fresh random lock id.
pub fn new_lock_id() -> String {
    let mut b = [0u8; 8];
    crate::crypto::random(&mut b);
    crate::crypto::hex(&b)
}

/// This machine's host name.
pub fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .map(|s| s.trim().to_owned())
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "unknown-host".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn me(id: &str) -> Holder {
        Holder {
            lock_id: id.into(),
            ..Holder::me("ops", "install", "2026-11-23T10:00:00Z".into())
        }
    }

    /// A holder whose process is gone: a child that has exited.
    fn dead(id: &str) -> Holder {
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        let ticks = start_ticks(pid);
        child.wait().unwrap();
        Holder {
            pid,
            start_ticks: ticks.or(Some(1)),
            ..me(id)
        }
    }

    #[test]
    fn second_acquire_names_the_holder_and_release_frees_it() {
        let dir = tempfile::tempdir().unwrap();
        let g = acquire(dir.path(), me("a1")).unwrap();
        match acquire(dir.path(), me("b2")) {
            Err(LockError::Held { holder, .. }) => assert_eq!(holder.lock_id, "a1"),
            other => panic!("{other:?}"),
        }
        drop(g);
        assert!(!dir.path().join(HOLDER_FILE).exists());
        acquire(dir.path(), me("c3")).unwrap();
    }

    #[test]
    fn a_left_holder_file_of_a_dead_process_is_stale_and_only_its_id_clears_it() {
        let dir = tempfile::tempdir().unwrap();
        write_holder(dir.path(), &dead("dead")).unwrap();
        match acquire(dir.path(), me("new")) {
            Err(e @ LockError::Stale { .. }) => {
                let msg = e.to_string();
                assert!(msg.contains("--lock-id dead"), "{msg}");
                assert!(msg.contains("that process is gone"), "{msg}");
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            take_over(dir.path(), "wrong", me("ops")),
            Err(LockError::WrongId { .. })
        ));
        let (old, guard) = take_over(dir.path(), "dead", me("ops")).unwrap();
        assert_eq!(old.lock_id, "dead");
        drop(guard);
        acquire(dir.path(), me("new")).unwrap();
    }

    #[test]
    fn a_removed_lock_file_does_not_let_a_second_holder_in_while_the_first_lives() {
        // Regression (issue #8): removing <state>/lock during an install let a second one run,
        // and unlock succeeded while the holder was alive.
        let dir = tempfile::tempdir().unwrap();
        let _g = acquire(dir.path(), me("live")).unwrap();
        std::fs::remove_file(dir.path().join(LOCK_FILE)).unwrap();
        match acquire(dir.path(), me("second")) {
            Err(LockError::Held { holder, .. }) => assert_eq!(holder.lock_id, "live"),
            other => panic!("{other:?}"),
        }
        match take_over(dir.path(), "live", me("ops")) {
            Err(LockError::Held { .. }) => {}
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_corrupt_holder_file_is_reported_and_never_taken_over_silently() {
        let dir = tempfile::tempdir().unwrap();
        fsutil::create_private_dir(dir.path()).unwrap();
        std::fs::write(dir.path().join(HOLDER_FILE), "{not json").unwrap();
        let e = acquire(dir.path(), me("new")).unwrap_err();
        assert!(matches!(e, LockError::Unreadable { .. }), "{e}");
        assert_eq!(
            std::fs::read_to_string(dir.path().join(HOLDER_FILE)).unwrap(),
            "{not json",
            "left as it was"
        );
        assert!(matches!(
            take_over(dir.path(), "x", me("ops")),
            Err(LockError::Unreadable { .. })
        ));
        let (detail, g) = take_over_unreadable(dir.path(), me("ops")).unwrap();
        assert!(detail.contains("not a lock holder record"), "{detail}");
        drop(g);
        acquire(dir.path(), me("new")).unwrap();
    }

    #[test]
    fn a_holder_file_that_is_a_folder_is_unreadable_not_absent() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join(HOLDER_FILE)).unwrap();
        assert!(matches!(
            acquire(dir.path(), me("new")),
            Err(LockError::Unreadable { .. })
        ));
    }

    #[test]
    fn liveness_follows_the_process_and_its_start_time() {
        assert_eq!(liveness(&me("x")), Liveness::Alive);
        assert_eq!(liveness(&dead("x")), Liveness::Gone);
        let reused = Holder {
            start_ticks: start_ticks(std::process::id()).map(|t| t + 1),
            ..me("x")
        };
        assert_eq!(liveness(&reused), Liveness::Gone, "same pid, other process");
        let elsewhere = Holder {
            host: "another-host".into(),
            ..me("x")
        };
        assert_eq!(liveness(&elsewhere), Liveness::Unknown);
    }

    #[test]
    fn lock_files_are_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("s");
        let _g = acquire(&state, me("a")).unwrap();
        for (p, want) in [
            (state.clone(), 0o700),
            (state.join(LOCK_FILE), 0o600),
            (state.join(HOLDER_FILE), 0o600),
        ] {
            let mode = std::fs::metadata(&p).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, want, "{}", p.display());
        }
    }
}
