//! PostgreSQL for the tests: a fresh database per test on the server the suite names, or a
//! server of the test's own to stop and start.

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

use super::{free_port, owner_mark, runtime, skip_unless_ci, uuid_like, OWNER_ENV};

/// A PostgreSQL database made for one test, dropped after it.
pub struct PgDatabase {
    pub url: String,
    admin: String,
    name: String,
}

impl PgDatabase {
    /// A fresh database, or None when `TIDINGS_TEST_POSTGRES` is unset outside CI. In CI
    /// (CI set) a missing PostgreSQL fails the test instead of skipping it.
    pub fn create() -> Option<PgDatabase> {
        let admin = match std::env::var("TIDINGS_TEST_POSTGRES") {
            Ok(url) => url,
            Err(_) if std::env::var("CI").is_ok_and(|v| !v.is_empty()) => {
                panic!("TIDINGS_TEST_POSTGRES is not set in CI: the PostgreSQL tests must run")
            }
            Err(_) => {
                eprintln!("note: TIDINGS_TEST_POSTGRES unset; skipping the PostgreSQL half");
                return None;
            }
        };
        let name = format!("tidings_e2e_{}", uuid_like());
        runtime().block_on(async {
            use sqlx::Connection as _;
            let mut conn = sqlx::PgConnection::connect(&admin)
                .await
                .expect("connecting to TIDINGS_TEST_POSTGRES");
            sqlx::query(&format!("CREATE DATABASE {name}"))
                .execute(&mut conn)
                .await
                .expect("CREATE DATABASE");
        });
        let base = admin
            .rsplit_once('/')
            .map(|(b, _)| b.to_string())
            .unwrap_or(admin.clone());
        Some(PgDatabase {
            url: format!("{base}/{name}"),
            admin,
            name,
        })
    }
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        let (admin, name) = (self.admin.clone(), self.name.clone());
        runtime().block_on(async move {
            use sqlx::Connection as _;
            if let Ok(mut conn) = sqlx::PgConnection::connect(&admin).await {
                let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .execute(&mut conn)
                    .await;
            }
        });
    }
}

/// A PostgreSQL server of the test's own, on its own port and data folder, that the test
/// stops and starts: `initdb` and `pg_ctl` from Debian's packages, run as the `postgres`
/// user (initdb refuses root). Stopped for good when dropped.
pub struct PgServer {
    dir: tempfile::TempDir,
    bin: PathBuf,
    pub port: u16,
}

impl PgServer {
    /// A fresh cluster, started. None (outside CI) when PostgreSQL's programs or root are
    /// missing.
    pub fn start() -> Option<PgServer> {
        let bin = std::fs::read_dir("/usr/lib/postgresql")
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path().join("bin"))
            .filter(|bin| bin.join("initdb").exists())
            .max_by_key(|bin| {
                bin.parent()
                    .and_then(|v| v.file_name())
                    .and_then(|v| v.to_str())
                    .and_then(|v| v.parse::<u32>().ok())
            });
        let Some(bin) = bin else {
            skip_unless_ci("PostgreSQL's initdb is not in /usr/lib/postgresql/*/bin");
            return None;
        };
        let dir = tempfile::tempdir().expect("temp dir");
        let owned = Command::new("chown")
            .args(["postgres:postgres"])
            .arg(dir.path())
            .status()
            .is_ok_and(|s| s.success());
        if !owned
            && skip_unless_ci(
                "the PostgreSQL server's folder cannot be given to the postgres user (not root?)",
            )
        {
            return None;
        }
        let server = PgServer {
            dir,
            bin,
            port: free_port(),
        };
        let out = server
            .as_postgres("initdb")
            .args([
                "-A",
                "trust",
                "-U",
                "postgres",
                "-E",
                "UTF8",
                "--no-sync",
                "-D",
            ])
            .arg(server.data())
            .output()
            .expect("running initdb");
        assert!(
            out.status.success(),
            "initdb failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        server.resume();
        Some(server)
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn as_postgres(&self, program: &str) -> Command {
        let mut cmd = Command::new("runuser");
        cmd.args(["-u", "postgres", "--"])
            .arg(self.bin.join(program))
            .env(OWNER_ENV, owner_mark());
        cmd.stdout(Stdio::null());
        cmd
    }

    fn pg_ctl(&self, args: &[&str]) -> Output {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off",
            self.port,
            self.dir.path().display()
        );
        self.as_postgres("pg_ctl")
            .arg("-D")
            .arg(self.data())
            .arg("-l")
            .arg(self.dir.path().join("server.log"))
            .args(["-o", &options, "-w", "-t", "60"])
            .args(args)
            .output()
            .expect("running pg_ctl")
    }

    /// `postgres://postgres@127.0.0.1:PORT/postgres`.
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// Stops the server (fast shutdown: connections are cut).
    pub fn stop(&self) {
        let out = self.pg_ctl(&["-m", "fast", "stop"]);
        assert!(
            out.status.success(),
            "pg_ctl stop: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Starts the server (again) and waits until it accepts connections.
    pub fn resume(&self) {
        let out = self.pg_ctl(&["start"]);
        assert!(
            out.status.success(),
            "pg_ctl start: {}\n{}",
            String::from_utf8_lossy(&out.stderr),
            std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
        );
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        let _ = self.pg_ctl(&["-m", "immediate", "stop"]);
    }
}
