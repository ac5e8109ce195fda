//! A real PostgreSQL server for tests: `initdb` into a temporary directory,
//! `pg_ctl start` on an ephemeral port on 127.0.0.1 (its socket in the same
//! directory), stopped and removed on drop.
//!
//! The binaries come from `pg_config --bindir` or
//! `/usr/lib/postgresql/*/bin` (Debian does not put them on PATH). Without
//! them a test fails when `CI` is set and is skipped (saying why) otherwise.
//! PostgreSQL refuses to run as root: as root, the server runs as the
//! `postgres` user (which Debian's package creates).

use std::path::PathBuf;
use std::process::Command;

use super::harness::TempDir;

/// The password of the test server's user (given to the gateway through
/// `secret_env`, like an operator would).
pub const PG_PASSWORD: &str = "pg-test-password";
/// The test server's user.
pub const PG_USER: &str = "gw";

pub struct Postgres {
    bindir: PathBuf,
    dir: TempDir,
    pub port: u16,
    as_postgres: bool,
}

/// Where the server binaries are, if installed.
fn bindir() -> Option<PathBuf> {
    let from_config = Command::new("pg_config")
        .arg("--bindir")
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()));
    let mut candidates: Vec<PathBuf> = from_config.into_iter().collect();
    if let Ok(dirs) = std::fs::read_dir("/usr/lib/postgresql") {
        let mut versions: Vec<PathBuf> = dirs.flatten().map(|d| d.path().join("bin")).collect();
        versions.sort();
        candidates.extend(versions.into_iter().rev());
    }
    candidates
        .into_iter()
        .find(|d| d.join("initdb").is_file() && d.join("pg_ctl").is_file())
}

fn is_root() -> bool {
    use std::os::unix::fs::MetadataExt;
    // Our own process's owner: the owner of /proc/self.
    std::fs::metadata("/proc/self")
        .map(|m| m.uid() == 0)
        .unwrap_or(false)
}

impl Postgres {
    /// Starts a server, or `None` (skip) when PostgreSQL is not installed
    /// and `CI` is not set.
    pub fn start() -> Option<Self> {
        let Some(bindir) = bindir() else {
            if std::env::var_os("CI").is_some() {
                panic!(
                    "PostgreSQL server binaries not found (pg_config --bindir, /usr/lib/postgresql/*/bin); \
                     install Debian's `postgresql` package"
                );
            }
            eprintln!("skipped: PostgreSQL server binaries not found (install `postgresql`)");
            return None;
        };
        let dir = TempDir::new("pg");
        let as_postgres = is_root();
        if as_postgres {
            let ok = Command::new("chown")
                .args(["-R", "postgres:", dir.0.to_str().unwrap()])
                .status()
                .unwrap()
                .success();
            assert!(ok, "chown of the PostgreSQL test directory failed");
        }
        let pwfile = dir.0.join("pw");
        std::fs::write(&pwfile, PG_PASSWORD).unwrap();
        let mut this = Self {
            bindir,
            dir,
            port: 0,
            as_postgres,
        };
        if as_postgres {
            Command::new("chown")
                .args(["postgres:", pwfile.to_str().unwrap()])
                .status()
                .unwrap();
        }
        let data = this.dir.0.join("data");
        this.run_ok(
            "initdb",
            &[
                "-D",
                data.to_str().unwrap(),
                "-U",
                PG_USER,
                "--pwfile",
                pwfile.to_str().unwrap(),
                "--auth-host=scram-sha-256",
                "--auth-local=trust",
                "-E",
                "UTF8",
                "--no-sync",
            ],
        );
        // Ephemeral port: the kernel's choice, released for the server to take.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        this.port = port;
        let opts = format!(
            "-p {port} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200",
            this.dir.0.display()
        );
        let log = this.dir.0.join("log");
        this.run_ok(
            "pg_ctl",
            &[
                "-D",
                data.to_str().unwrap(),
                "-l",
                log.to_str().unwrap(),
                "-o",
                &opts,
                "-w",
                "-t",
                "60",
                "start",
            ],
        );
        Some(this)
    }

    fn command(&self, tool: &str) -> Command {
        let path = self.bindir.join(tool);
        if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(path);
            c
        } else {
            Command::new(path)
        }
    }

    fn run_ok(&self, tool: &str, args: &[&str]) {
        let out = self.command(tool).args(args).output().unwrap();
        assert!(
            out.status.success(),
            "{tool} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Creates database `name` and returns its URL (no password in it).
    pub fn create_db(&self, name: &str) -> String {
        self.sql("postgres", &format!("CREATE DATABASE {name}"));
        format!("postgres://{PG_USER}@127.0.0.1:{}/{name}", self.port)
    }

    /// Runs `sql` in database `db` through the socket (trusted) and
    /// returns psql's unaligned output.
    pub fn sql(&self, db: &str, sql: &str) -> String {
        let out = self
            .command("psql")
            .args([
                "-h",
                self.dir.0.to_str().unwrap(),
                "-p",
                &self.port.to_string(),
            ])
            .args([
                "-U",
                PG_USER,
                "-d",
                db,
                "-At",
                "-v",
                "ON_ERROR_STOP=1",
                "-c",
                sql,
            ])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "psql failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// The `[store]` section for database `url`, the password from
    /// `secret_file` (as an operator would give it).
    pub fn store_section(&self, url: &str) -> String {
        format!(
            "[store]\nbackend = \"postgres\"\nurl = \"{url}\"\nsecret_file = \"{}\"\nlease_secs = 15\n",
            self.dir.0.join("pw").display()
        )
    }

    /// The store settings of database `url` (the password from the file).
    pub fn store_config(&self, url: &str, lease_secs: u64) -> gateway::store::config::StoreConfig {
        let mut cfg: gateway::store::config::StoreConfig =
            toml::from_str(self.store_section(url).trim_start_matches("[store]\n")).unwrap();
        cfg.lease_secs = lease_secs;
        cfg
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let data = self.dir.0.join("data");
        let _ = self
            .command("pg_ctl")
            .args([
                "-D",
                data.to_str().unwrap(),
                "-m",
                "immediate",
                "-w",
                "stop",
            ])
            .output();
    }
}
