//! File-system rules in one place, so every command follows them the same way:
//!
//! - **reads are capped and only of regular files**: a FIFO, a device or a directory named where
//!   a file is expected is refused by kind (never "file not found", never a hang on a FIFO), and
//!   a file over its cap is refused before it is read whole ([`read_capped`]);
//! - **writes are atomic and private when asked**: a temporary file in the same folder, fsync,
//!   rename, fsync of the folder; the temporary file is removed on any failure ([`write_atomic`]);
//! - **state folders are private**: created 0700; an existing one that others may write is
//!   reported ([`create_private_dir`], [`loose_permissions`]).

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Size caps of the files realmctl reads. Real files are far smaller; the caps only stop a
/// mistaken path (a disk image, `/dev/zero`) from eating memory.
pub mod caps {
    /// A realm spec or a playbook.
    pub const SPEC: u64 = 1024 * 1024;
    /// A certificate chain or CA bundle (PEM).
    pub const CERTIFICATE: u64 = 1024 * 1024;
    /// A private key (PEM).
    pub const KEY: u64 = 256 * 1024;
    /// A quota tokens file.
    pub const TOKENS: u64 = 1024 * 1024;
    /// A lock holder file.
    pub const HOLDER: u64 = 64 * 1024;
    /// A list of state folders (`fleet --list`).
    pub const FOLDER_LIST: u64 = 4 * 1024 * 1024;
    /// An artifact read back for verification.
    pub const ARTIFACT: u64 = 64 * 1024 * 1024;
    /// One answer of a cloud API (describe calls are kilobytes; a larger answer is refused
    /// rather than held in memory).
    pub const CLOUD_ANSWER: u64 = 16 * 1024 * 1024;
}

/// Mode of files only their owner may read (secrets, keys, kubeconfig).
pub const PRIVATE_FILE: u32 = 0o600;
/// Mode of private folders (state folders, the demo folder).
pub const PRIVATE_DIR: u32 = 0o700;

/// Why a file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// Nothing at that path.
    #[error("{} does not exist", path.display())]
    NotFound {
        /// The path.
        path: PathBuf,
    },
    /// Something other than a regular file.
    #[error("{} is {kind}, not a regular file", path.display())]
    NotRegular {
        /// The path.
        path: PathBuf,
        /// What it is, e.g. "a directory", "a named pipe (FIFO)".
        kind: &'static str,
    },
    /// Larger than the cap for its kind of file.
    #[error("{} is {size} bytes, more than the {max} bytes a file of this kind may have", path.display())]
    TooLarge {
        /// The path.
        path: PathBuf,
        /// Its size (at least).
        size: u64,
        /// The cap.
        max: u64,
    },
    /// Not valid UTF-8 where text was expected.
    #[error("{} is not UTF-8 text", path.display())]
    NotText {
        /// The path.
        path: PathBuf,
    },
    /// Any other I/O error (permissions, ...).
    #[error("cannot read {}: {source}", path.display())]
    Io {
        /// The path.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
}

impl ReadError {
    /// The path the error is about.
    pub fn path(&self) -> &Path {
        match self {
            ReadError::NotFound { path }
            | ReadError::NotRegular { path, .. }
            | ReadError::TooLarge { path, .. }
            | ReadError::NotText { path }
            | ReadError::Io { path, .. } => path,
        }
    }
}

/// What a non-regular file is, in words.
fn kind_of(ft: std::fs::FileType) -> &'static str {
    if ft.is_symlink() {
        "a symbolic link"
    } else if ft.is_dir() {
        "a directory"
    } else if ft.is_fifo() {
        "a named pipe (FIFO)"
    } else if ft.is_char_device() {
        "a character device"
    } else if ft.is_block_device() {
        "a block device"
    } else if ft.is_socket() {
        "a socket"
    } else {
        "not a regular file"
    }
}

/// Checks that `path` is a regular file (following symlinks) without opening it.
pub fn check_regular(path: &Path) -> Result<(), ReadError> {
    match std::fs::metadata(path) {
        Ok(m) if m.is_file() => Ok(()),
        Ok(m) => Err(ReadError::NotRegular {
            path: path.to_owned(),
            kind: kind_of(m.file_type()),
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(ReadError::NotFound {
            path: path.to_owned(),
        }),
        Err(source) => Err(ReadError::Io {
            path: path.to_owned(),
            source,
        }),
    }
}

/// Reads a regular file of at most `max` bytes. Opens without blocking (a FIFO swapped in
/// after the check cannot hang the read), then checks the opened file itself.
pub fn read_capped(path: &Path, max: u64) -> Result<Vec<u8>, ReadError> {
    let io = |source: std::io::Error| {
        if source.kind() == std::io::ErrorKind::NotFound {
            ReadError::NotFound {
                path: path.to_owned(),
            }
        } else {
            ReadError::Io {
                path: path.to_owned(),
                source,
            }
        }
    };
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
        .map_err(io)?;
    let meta = file.metadata().map_err(io)?;
    if !meta.is_file() {
        return Err(ReadError::NotRegular {
            path: path.to_owned(),
            kind: kind_of(meta.file_type()),
        });
    }
    if meta.len() > max {
        return Err(ReadError::TooLarge {
            path: path.to_owned(),
            size: meta.len(),
            max,
        });
    }
    let mut buf = Vec::with_capacity(usize::try_from(meta.len()).unwrap_or(0));
    // The file may grow while being read: never read past the cap.
    file.take(max + 1).read_to_end(&mut buf).map_err(io)?;
    if buf.len() as u64 > max {
        return Err(ReadError::TooLarge {
            path: path.to_owned(),
            size: buf.len() as u64,
            max,
        });
    }
    Ok(buf)
}

/// [`read_capped`] as UTF-8 text.
pub fn read_capped_string(path: &Path, max: u64) -> Result<String, ReadError> {
    String::from_utf8(read_capped(path, max)?).map_err(|_| ReadError::NotText {
        path: path.to_owned(),
    })
}

/// An I/O error with the path it happened on.
#[derive(Debug, thiserror::Error)]
#[error("{}: {}", path.display(), describe_io(source))]
pub struct PathError {
    /// The path.
    pub path: PathBuf,
    /// The error.
    pub source: std::io::Error,
}

/// An I/O error in words, with "no space left on device" spelled out.
pub fn describe_io(e: &std::io::Error) -> String {
    if e.raw_os_error() == Some(libc::ENOSPC) || e.kind() == std::io::ErrorKind::StorageFull {
        "no space left on device".into()
    } else {
        e.to_string()
    }
}

fn at(path: &Path) -> impl Fn(std::io::Error) -> PathError + '_ {
    move |source| PathError {
        path: path.to_owned(),
        source,
    }
}

/// Writes `bytes` to `path` atomically with `mode` (e.g. [`PRIVATE_FILE`]): a temporary file
/// beside it, fsync, rename over `path`, fsync of the folder. On any failure the temporary file
/// is removed and `path` is untouched. The parent folder must exist.
pub fn write_atomic(path: &Path, bytes: &[u8], mode: u32) -> Result<(), PathError> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let result = (|| {
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&tmp)
            .map_err(at(&tmp))?;
        f.write_all(bytes).map_err(at(&tmp))?;
        f.sync_all().map_err(at(&tmp))?;
        std::fs::rename(&tmp, path).map_err(at(path))
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
        return result;
    }
    sync_dir(dir);
    Ok(())
}

/// Why a document could not be written where the user asked.
#[derive(Debug, thiserror::Error)]
pub enum DocumentError {
    /// Something other than a regular file is at the path (a symbolic link, a FIFO, a folder):
    /// writing through it would overwrite another file or block forever.
    #[error("{} is {kind}; refusing to write through it\n  help: name a new file, or a regular file to replace", path.display())]
    NotRegular {
        /// The path.
        path: PathBuf,
        /// What is there.
        kind: &'static str,
    },
    /// The write failed.
    #[error("cannot write {}: {}", .0.path.display(), describe_io(&.0.source))]
    Write(#[from] PathError),
}

/// Writes a document the user asked for (a report) to `path`, readable by others (0644):
/// atomically, and never through a symbolic link or into a FIFO, device or folder already
/// there (`lstat`, not `stat`: a link is refused, not followed).
pub fn write_document(path: &Path, bytes: &[u8]) -> Result<(), DocumentError> {
    match std::fs::symlink_metadata(path) {
        Ok(m) if !m.file_type().is_file() => {
            return Err(DocumentError::NotRegular {
                path: path.to_owned(),
                kind: kind_of(m.file_type()),
            });
        }
        _ => {}
    }
    write_atomic(path, bytes, 0o644)?;
    Ok(())
}

/// fsyncs a folder so a rename or a new file in it survives a power loss (best effort: some
/// file systems refuse to sync folders).
pub fn sync_dir(dir: &Path) {
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
}

/// Creates `dir` (and missing parents) with mode 0700. An existing folder is left as it is.
pub fn create_private_dir(dir: &Path) -> Result<(), PathError> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(PRIVATE_DIR)
        .create(dir)
        .map_err(at(dir))
}

/// The mode of `dir` when group or others may write it (someone else could then replace the
/// journal, the lock or the artifacts); `None` when only the owner may.
pub fn loose_permissions(dir: &Path) -> Option<u32> {
    let mode = std::fs::metadata(dir).ok()?.permissions().mode() & 0o7777;
    (mode & 0o022 != 0).then_some(mode)
}

/// Whether the file system holding `dir` has (almost) no space left for an unprivileged write.
/// SQLite reports a full disk as `SQLITE_FULL` or as an I/O error (growing its WAL index, say);
/// this is how callers tell the operator which it was.
pub fn no_space_left(dir: &Path) -> bool {
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    rustix::fs::statvfs(dir).is_ok_and(|s| s.f_bavail.saturating_mul(s.f_frsize) < 64 * 1024)
}

/// Whether a SQLite error on a file in `dir` is the disk being full.
pub fn sqlite_disk_full(dir: Option<&Path>, e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(rusqlite::ErrorCode::DiskFull | rusqlite::ErrorCode::SystemIoFailure)
    ) && dir.is_some_and(no_space_left)
}

#[cfg(test)]
mod tests {

    /// Regression (issue #16): `report -o` and `preflight --report` followed a symbolic link
    /// over an existing file and blocked on a FIFO.
    #[test]
    fn documents_are_never_written_through_links_or_into_fifos() {
        let d = tempfile::tempdir().unwrap();
        let victim = d.path().join("victim");
        std::fs::write(&victim, "keep me").unwrap();
        let link = d.path().join("report.html");
        std::os::unix::fs::symlink(&victim, &link).unwrap();
        let e = write_document(&link, b"report").unwrap_err();
        assert!(e.to_string().contains("is a symbolic link"), "{e}");
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "keep me");
        let fifo = d.path().join("fifo.md");
        assert!(
            std::process::Command::new("mkfifo")
                .arg(&fifo)
                .status()
                .unwrap()
                .success()
        );
        let e = write_document(&fifo, b"report").unwrap_err();
        assert!(e.to_string().contains("named pipe"), "{e}");
        let fresh = d.path().join("new.md");
        write_document(&fresh, b"one").unwrap();
        write_document(&fresh, b"two").unwrap();
        assert_eq!(std::fs::read_to_string(&fresh).unwrap(), "two");
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&fresh).unwrap().permissions().mode() & 0o777,
            0o644
        );
    }

    use super::*;

    #[test]
    fn reads_refuse_what_is_not_a_regular_file_or_too_large() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("a.txt");
        std::fs::write(&f, "hello").unwrap();
        assert_eq!(read_capped(&f, 5).unwrap(), b"hello");
        assert!(matches!(
            read_capped(&f, 4),
            Err(ReadError::TooLarge {
                size: 5,
                max: 4,
                ..
            })
        ));
        assert!(matches!(
            read_capped(dir.path(), 10),
            Err(ReadError::NotRegular {
                kind: "a directory",
                ..
            })
        ));
        assert!(matches!(
            read_capped(&dir.path().join("missing"), 10),
            Err(ReadError::NotFound { .. })
        ));
        let e = read_capped(Path::new("/dev/zero"), 10).unwrap_err();
        assert!(
            e.to_string().contains("a character device"),
            "{e}: /dev/zero is refused, not read"
        );
    }

    #[test]
    fn a_fifo_is_refused_without_blocking() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("pipe");
        let ok = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap();
        assert!(ok.success());
        let e = read_capped(&fifo, 10).unwrap_err();
        assert!(e.to_string().contains("named pipe"), "{e}");
        assert!(check_regular(&fifo).is_err());
    }

    #[test]
    fn atomic_writes_set_the_mode_and_leave_no_temporary_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("secret.json");
        write_atomic(&p, b"{}", PRIVATE_FILE).unwrap();
        let mode = std::fs::metadata(&p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        write_atomic(&p, b"[]", PRIVATE_FILE).unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"[]");
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["secret.json"]);
        // A failing rename (the target is a folder) leaves no temporary file behind.
        let target = dir.path().join("sub");
        std::fs::create_dir(&target).unwrap();
        std::fs::write(target.join("x"), "x").unwrap();
        assert!(write_atomic(&target, b"x", PRIVATE_FILE).is_err());
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 2);
    }

    #[test]
    fn private_folders_are_0700_and_loose_ones_are_reported() {
        let dir = tempfile::tempdir().unwrap();
        let s = dir.path().join("state/acme");
        create_private_dir(&s).unwrap();
        let mode = std::fs::metadata(&s).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700);
        assert_eq!(loose_permissions(&s), None);
        std::fs::set_permissions(&s, std::fs::Permissions::from_mode(0o777)).unwrap();
        assert_eq!(loose_permissions(&s), Some(0o777));
    }

    #[test]
    fn enospc_is_named() {
        let e = std::io::Error::from_raw_os_error(libc::ENOSPC);
        assert_eq!(describe_io(&e), "no space left on device");
    }
}
