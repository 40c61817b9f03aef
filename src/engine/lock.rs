//! One writer per realm: the install lock of a state folder.
//!
//! Two files: `<state>/lock` is held with an exclusive OS file lock (`flock`) for as long as the
//! holder runs, so the kernel itself guarantees there are never two holders and releases the
//! lock when a process dies; `<state>/lock.json` says who holds it (lock id, host, pid, since
//! when), written atomically by rename. A `lock.json` whose file lock is free was left by a
//! process that died: the lock is stale, and only `realmctl unlock --lock-id ID` (which must
//! name it) clears it, because a killed install may have left work half done that an operator
//! should look at first.
//!
//! The state folder must be on a file system with working `flock` (any local one).

use std::fs::{File, OpenOptions, TryLockError};
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

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
    /// Since when (RFC 3339).
    pub since: String,
    /// Operator.
    pub operator: String,
    /// The command that took it.
    pub command: String,
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

/// Why the lock could not be taken or cleared.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// A live process holds it.
    #[error("{} is locked: {holder} is running\n  help: wait for it to finish; only one install may write a realm's state at a time", dir.display())]
    Held {
        /// The state folder.
        dir: PathBuf,
        /// Who holds it (if it could be read).
        holder: Box<Holder>,
    },
    /// A live process holds it but its holder file was not readable.
    #[error("{} is locked by a running process (holder file unreadable)\n  help: wait for it to finish", dir.display())]
    HeldUnknown {
        /// The state folder.
        dir: PathBuf,
    },
    /// The holder died without releasing.
    #[error("{} has a stale lock: {holder}, and that process is gone\n  help: check the journal (`realmctl status --state {}`), then run `realmctl unlock --state {} --lock-id {}`", dir.display(), dir.display(), dir.display(), holder.lock_id)]
    Stale {
        /// The state folder.
        dir: PathBuf,
        /// Who held it.
        holder: Box<Holder>,
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
    /// File system error.
    #[error("lock {}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
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
    move |source| LockError::Io {
        path: path.to_owned(),
        source,
    }
}

fn open_lock_file(dir: &Path) -> Result<File, LockError> {
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let path = dir.join(LOCK_FILE);
    OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(io(&path))
}

/// Reads the holder file, if there is one.
pub fn read_holder(dir: &Path) -> Result<Option<Holder>, LockError> {
    let path = dir.join(HOLDER_FILE);
    match std::fs::read(&path) {
        Ok(bytes) => Ok(serde_json::from_slice(&bytes).ok()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io(&path)(e)),
    }
}

/// Whether the OS lock is free; `Some(file)` holds it when it was.
fn try_os_lock(dir: &Path) -> Result<Option<File>, LockError> {
    let file = open_lock_file(dir)?;
    match file.try_lock() {
        Ok(()) => Ok(Some(file)),
        Err(TryLockError::WouldBlock) => Ok(None),
        Err(TryLockError::Error(e)) => Err(io(&dir.join(LOCK_FILE))(e)),
    }
}

fn held(dir: &Path) -> LockError {
    // The holder writes its file right after taking the OS lock; give it a moment.
    for _ in 0..50 {
        if let Ok(Some(h)) = read_holder(dir) {
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

/// Takes the lock of `dir` for `holder`, or says who has it.
pub fn acquire(dir: &Path, holder: Holder) -> Result<Guard, LockError> {
    let Some(file) = try_os_lock(dir)? else {
        return Err(held(dir));
    };
    if let Some(old) = read_holder(dir)? {
        return Err(LockError::Stale {
            dir: dir.to_owned(),
            holder: Box::new(old),
        });
    }
    write_holder(dir, &holder)?;
    Ok(Guard {
        file,
        dir: dir.to_owned(),
        holder,
    })
}

fn write_holder(dir: &Path, holder: &Holder) -> Result<(), LockError> {
    let tmp = dir.join("lock.json.tmp");
    let path = dir.join(HOLDER_FILE);
    let mut f = File::create(&tmp).map_err(io(&tmp))?;
    f.write_all(&serde_json::to_vec_pretty(holder).expect("holder serialises"))
        .map_err(io(&tmp))?;
    f.sync_all().map_err(io(&tmp))?;
    std::fs::rename(&tmp, &path).map_err(io(&path))?;
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// Clears a stale lock whose id is `lock_id`; refuses while its holder runs. Returns the old
/// holder and keeps the OS lock until the returned guard is dropped, so the caller can journal
/// the takeover before anyone else starts.
pub fn take_over(dir: &Path, lock_id: &str, by: Holder) -> Result<(Holder, Guard), LockError> {
    let Some(file) = try_os_lock(dir)? else {
        return Err(held(dir));
    };
    let Some(old) = read_holder(dir)? else {
        return Err(LockError::NotLocked {
            dir: dir.to_owned(),
        });
    };
    if old.lock_id != lock_id {
        return Err(LockError::WrongId {
            dir: dir.to_owned(),
            given: lock_id.to_owned(),
            actual: old.lock_id,
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

/// A fresh random lock id.
pub fn new_lock_id() -> String {
    use ring::rand::{SecureRandom, SystemRandom};
    let mut b = [0u8; 8];
    SystemRandom::new()
        .fill(&mut b)
        .expect("the system random source works");
    super::journal::hex(&b)
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
            host: host_name(),
            pid: std::process::id(),
            since: "2026-11-23T10:00:00Z".into(),
            operator: "ops".into(),
            command: "install".into(),
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
    fn a_left_holder_file_is_stale_and_only_its_id_clears_it() {
        let dir = tempfile::tempdir().unwrap();
        let g = acquire(dir.path(), me("dead")).unwrap();
        // A killed process: the OS lock goes, the holder file stays.
        g.file.unlock().unwrap();
        std::mem::forget(g);
        match acquire(dir.path(), me("new")) {
            Err(e @ LockError::Stale { .. }) => {
                let msg = e.to_string();
                assert!(msg.contains("--lock-id dead"), "{msg}");
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
    fn take_over_refuses_a_live_holder() {
        let dir = tempfile::tempdir().unwrap();
        let _g = acquire(dir.path(), me("live")).unwrap();
        assert!(matches!(
            take_over(dir.path(), "live", me("ops")),
            Err(LockError::Held { .. })
        ));
    }
}
