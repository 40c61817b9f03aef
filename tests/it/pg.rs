//! A throw-away PostgreSQL cluster for the tests: `initdb` in a temp dir (as `nobody` when the
//! tests run as root, since PostgreSQL refuses root), `postgres` listening on 127.0.0.1 on a
//! free port with no Unix socket, password (SCRAM) authentication over TCP. Started by the test
//! that uses it, killed when dropped. Debian's `postgresql-15` provides the binaries;
//! `scripts/test.sh` installs it when missing. Shared with `benches/quota.rs` (self-contained).

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The superuser of every test cluster.
pub const USER: &str = "realmctl";

/// A running (or stopped) test cluster.
pub struct Pg {
    _root: tempfile::TempDir,
    data: PathBuf,
    bin: PathBuf,
    port: u16,
    password: String,
    extra: Vec<String>,
    child: Option<Child>,
}

/// The newest `/usr/lib/postgresql/<v>/bin`.
fn bin_dir() -> PathBuf {
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .expect("PostgreSQL server binaries: run ./scripts/test.sh (installs postgresql-15)")
        .filter_map(|e| {
            let e = e.ok()?;
            let v: u32 = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").exists().then_some((v, bin))
        })
        .collect();
    found.sort();
    found
        .pop()
        .expect("no /usr/lib/postgresql/<v>/bin/initdb")
        .1
}

/// Root cannot run PostgreSQL: run it as `nobody` then.
fn run_as() -> Option<(u32, u32)> {
    (rustix::process::geteuid().is_root()).then_some((65534, 65534))
}

fn as_owner(c: &mut Command) -> &mut Command {
    if let Some((uid, gid)) = run_as() {
        c.uid(uid).gid(gid);
    }
    c.env("LC_ALL", "C").env_remove("PGPASSWORD")
}

fn chown(p: &Path) {
    if let Some((uid, gid)) = run_as() {
        std::os::unix::fs::chown(p, Some(uid), Some(gid)).unwrap();
    }
}

impl Pg {
    /// A new cluster, started, with `password` for [`USER`] and extra server settings
    /// (`-c name=value`).
    pub fn start_with(password: &str, settings: &[&str]) -> Pg {
        let mut pg = Self::init(password, settings);
        pg.restart();
        pg
    }

    /// A new cluster that accepts only TLS connections (`hostssl` with SCRAM), serving
    /// `cert_pem` (the chain) and `key_pem`.
    pub fn start_tls(password: &str, cert_pem: &str, key_pem: &str) -> Pg {
        use std::os::unix::fs::PermissionsExt;
        let mut pg = Self::init(password, &["ssl=on"]);
        for (name, text) in [("server.crt", cert_pem), ("server.key", key_pem)] {
            let f = pg.data.join(name);
            std::fs::write(&f, text).unwrap();
            std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o600)).unwrap();
            chown(&f);
        }
        std::fs::write(
            pg.data.join("pg_hba.conf"),
            "hostssl all all 127.0.0.1/32 scram-sha-256\n",
        )
        .unwrap();
        pg.restart();
        pg
    }

    /// An initialised cluster, not started.
    fn init(password: &str, settings: &[&str]) -> Pg {
        let root = tempfile::tempdir().unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(root.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let data = root.path().join("data");
        std::fs::create_dir(&data).unwrap();
        std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o700)).unwrap();
        chown(&data);
        let pwfile = root.path().join("pw");
        std::fs::write(&pwfile, password).unwrap();
        std::fs::set_permissions(&pwfile, std::fs::Permissions::from_mode(0o644)).unwrap();
        let bin = bin_dir();
        let out = as_owner(Command::new(bin.join("initdb")).args([
            "--no-sync",
            "--locale=C",
            "--encoding=UTF8",
            "--auth-local=scram-sha-256",
            "--auth-host=scram-sha-256",
            "-U",
            USER,
        ]))
        .arg(format!("--pwfile={}", pwfile.display()))
        .arg("-D")
        .arg(&data)
        .output()
        .unwrap();
        assert!(
            out.status.success(),
            "initdb failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        std::fs::remove_file(&pwfile).unwrap();
        Pg {
            _root: root,
            data,
            bin,
            port: free_port(),
            password: password.to_owned(),
            extra: settings.iter().map(|s| (*s).to_owned()).collect(),
            child: None,
        }
    }

    /// A new cluster with a fixed test password and default settings (fsync on).
    pub fn start() -> Pg {
        Self::start_with("pg-test-password", &[])
    }

    /// The superuser's password.
    pub fn password(&self) -> &str {
        &self.password
    }

    /// The TCP port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `postgres://realmctl@127.0.0.1:PORT/DB` (no password: give it through `PGPASSWORD`).
    pub fn url(&self, db: &str) -> String {
        format!("postgres://{USER}@127.0.0.1:{}/{db}", self.port)
    }

    /// The URL with the password in it.
    pub fn url_with_password(&self, db: &str) -> String {
        format!(
            "postgres://{USER}:{}@127.0.0.1:{}/{db}",
            self.password, self.port
        )
    }

    /// Creates database `name` and returns its URL (password-less).
    pub fn create_db(&self, name: &str) -> String {
        self.psql("postgres", &format!("CREATE DATABASE {name}"));
        self.url(name)
    }

    /// Runs `sql` with psql on `db`; its unaligned, tuples-only output.
    pub fn psql(&self, db: &str, sql: &str) -> String {
        let out = self.psql_raw(db, sql);
        assert!(
            out.status.success(),
            "psql {sql}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap().trim().to_owned()
    }

    /// psql's full output (for statements expected to fail).
    pub fn psql_raw(&self, db: &str, sql: &str) -> std::process::Output {
        Command::new(self.bin.join("psql"))
            .args(["-X", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1"])
            .args([
                "-p",
                &self.port.to_string(),
                "-U",
                USER,
                "-d",
                db,
                "-c",
                sql,
            ])
            .env("PGPASSWORD", &self.password)
            .env("PGCONNECT_TIMEOUT", "5")
            .output()
            .unwrap()
    }

    fn log_path(&self) -> PathBuf {
        self.data.with_file_name("postgres.log")
    }

    /// What the server wrote to its log (stderr) so far.
    pub fn log(&self) -> Vec<u8> {
        std::fs::read(self.log_path()).unwrap_or_default()
    }

    /// The postmaster's process id.
    pub fn postmaster_pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    /// The binary directory (pgbench, psql).
    pub fn bin(&self) -> &Path {
        &self.bin
    }

    /// Starts the server (again) on the same data and port; waits until it accepts queries.
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "already running");
        let mut c = Command::new(self.bin.join("postgres"));
        as_owner(&mut c)
            .arg("-D")
            .arg(&self.data)
            .args(["-p", &self.port.to_string()])
            .args(["-c", "listen_addresses=127.0.0.1"])
            .args(["-c", "unix_socket_directories="])
            .args(["-c", "max_connections=200"]);
        for s in &self.extra {
            c.args(["-c", s]);
        }
        // The server's log is kept (appended across restarts) so leak tests can scan it.
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())
            .unwrap();
        self.child = Some(
            c.stdout(Stdio::null())
                .stderr(Stdio::from(log))
                .spawn()
                .unwrap(),
        );
        let t0 = Instant::now();
        loop {
            if self.psql_raw("postgres", "SELECT 1").status.success() {
                return;
            }
            assert!(
                t0.elapsed() < Duration::from_secs(30),
                "PostgreSQL did not start within 30 s"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Fast shutdown (SIGINT: open transactions are aborted, clients disconnected); waits for
    /// the server to exit.
    pub fn stop(&mut self) {
        let mut child = self.child.take().expect("running");
        let pid = rustix::process::Pid::from_raw(child.id() as i32).unwrap();
        rustix::process::kill_process(pid, rustix::process::Signal::INT).unwrap();
        child.wait().unwrap();
    }
}

impl Drop for Pg {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            // SIGQUIT: immediate shutdown, the server's children exit with it.
            if let Some(pid) = rustix::process::Pid::from_raw(c.id() as i32) {
                let _ = rustix::process::kill_process(pid, rustix::process::Signal::QUIT);
            }
            let t0 = Instant::now();
            while t0.elapsed() < Duration::from_secs(5) {
                if let Ok(Some(_)) = c.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// A free loopback port (bound, then released).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}
