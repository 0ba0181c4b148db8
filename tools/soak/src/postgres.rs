//! The soak's own PostgreSQL server: a throwaway cluster made with `initdb` in the soak's
//! folder, on a port of its own (never the shared server), that the chaos loop crashes
//! (`pg_ctl stop -m immediate`: the server dies without a checkpoint, and recovers from its
//! WAL on the next start) and starts again.
//!
//! PostgreSQL refuses to run as root: run as root, the cluster belongs to the `postgres` user.

use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use crate::error::Error;

/// A cluster in `<folder>/pg`, listening on 127.0.0.1 only.
#[derive(Debug)]
pub struct Cluster {
    data: PathBuf,
    log: PathBuf,
    bin: PathBuf,
    port: u16,
    /// Who runs the server: `None` for this process' own user.
    run_as: Option<(u32, u32)>,
}

/// The folder holding `initdb` and `pg_ctl`: the `PATH`'s, else the newest Debian install.
fn bin_dir() -> Result<PathBuf, Error> {
    let on_path = std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path)
            .find(|dir| dir.join("initdb").is_file() && dir.join("pg_ctl").is_file())
    });
    if let Some(dir) = on_path {
        return Ok(dir);
    }
    let mut installed: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let version = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").is_file().then_some((version, bin))
        })
        .collect();
    installed.sort();
    installed.pop().map(|(_, bin)| bin).ok_or_else(|| {
        Error::Usage(
            "the soak starts its own PostgreSQL server, but neither the PATH nor \
             /usr/lib/postgresql/*/bin holds initdb and pg_ctl (Debian: apt-get install postgresql)"
                .into(),
        )
    })
}

fn io(context: String) -> impl FnOnce(std::io::Error) -> Error {
    move |source| Error::Io { context, source }
}

/// The role (and database) the soak's supervisors connect as.
pub const ROLE: &str = "tether";

impl Cluster {
    /// Makes a new cluster in `<folder>/pg` (trust authentication, user `postgres`).
    pub async fn create(folder: &Path, port: u16) -> Result<Self, Error> {
        let bin = bin_dir()?;
        let root = folder.join("pg");
        std::fs::create_dir_all(&root).map_err(io(format!("creating {}", root.display())))?;
        let run_as = if nix::unistd::geteuid().is_root() {
            let user = nix::unistd::User::from_name("postgres")
                .ok()
                .flatten()
                .ok_or_else(|| {
                    Error::Usage(
                        "running as root, the soak's PostgreSQL server needs a `postgres` user \
                         (PostgreSQL refuses to run as root)"
                            .into(),
                    )
                })?;
            // The server's user must reach its folder.
            for dir in [folder, root.as_path()] {
                nix::unistd::chown(dir, Some(user.uid), Some(user.gid)).map_err(|e| {
                    Error::Usage(format!(
                        "giving {} to the postgres user: {e}",
                        dir.display()
                    ))
                })?;
            }
            Some((user.uid.as_raw(), user.gid.as_raw()))
        } else {
            None
        };
        let cluster = Self {
            data: root.join("data"),
            log: root.join("server.log"),
            bin,
            port,
            run_as,
        };
        cluster
            .tool(
                "initdb",
                &[
                    "-D",
                    &cluster.data.display().to_string(),
                    "-U",
                    "postgres",
                    "-A",
                    "trust",
                    "-E",
                    "UTF8",
                    "--no-sync",
                    "--no-instructions",
                ],
            )
            .await?;
        Ok(cluster)
    }

    /// The admin URL.
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// The supervisors' URL: role [`ROLE`] on its own database, as the book's operating pages
    /// say to run tether (not as a superuser, whose connections ignore a role's limit and may
    /// take the slots reserved for an operator).
    pub fn tether_url(&self) -> String {
        format!("postgres://{ROLE}@127.0.0.1:{}/{ROLE}", self.port)
    }

    /// The supervisors' database, read as the admin.
    pub fn admin_tether_url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{ROLE}", self.port)
    }

    /// Makes role [`ROLE`] and its database (owned by it).
    pub async fn create_role(&self) -> Result<(), Error> {
        self.admin(&[
            &format!("CREATE ROLE {ROLE} LOGIN"),
            &format!("CREATE DATABASE {ROLE} OWNER {ROLE}"),
        ])
        .await
    }

    /// Refuses [`ROLE`]'s connections (its limit set to 0) and ends the open ones, as a server
    /// out of connection slots does to a client; [`Cluster::allow_connections`] undoes it.
    pub async fn refuse_connections(&self) -> Result<(), Error> {
        self.admin(&[
            &format!("ALTER ROLE {ROLE} CONNECTION LIMIT 0"),
            &format!(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = '{ROLE}'"
            ),
        ])
        .await
    }

    /// Lets [`ROLE`] connect again.
    pub async fn allow_connections(&self) -> Result<(), Error> {
        self.admin(&[&format!("ALTER ROLE {ROLE} CONNECTION LIMIT -1")])
            .await
    }

    async fn admin(&self, statements: &[&str]) -> Result<(), Error> {
        use sqlx::{Connection, Executor};
        let failed = |e: sqlx::Error| Error::Usage(format!("the soak's PostgreSQL: {e}"));
        let mut conn = sqlx::PgConnection::connect(&self.url())
            .await
            .map_err(failed)?;
        for sql in statements {
            conn.execute(*sql).await.map_err(failed)?;
        }
        let _ = conn.close().await;
        Ok(())
    }

    /// Starts the server and waits until it accepts connections.
    pub async fn start(&self) -> Result<(), Error> {
        // fsync off: a crash here is the server process dying (the WAL it wrote is in the
        // page cache), not the machine; synchronous_commit stays on, so that every commit
        // the server acknowledged survives the crash.
        let options = format!(
            "-p {} -c listen_addresses=127.0.0.1 -c unix_socket_directories='' -c fsync=off \
             -c max_connections=200",
            self.port
        );
        self.tool(
            "pg_ctl",
            &[
                "-D",
                &self.data.display().to_string(),
                "-l",
                &self.log.display().to_string(),
                "-w",
                "-t",
                "60",
                "-o",
                &options,
                "start",
            ],
        )
        .await
    }

    /// Kills the server as a crash would (`-m immediate`: no checkpoint, recovery on start).
    pub async fn crash(&self) -> Result<(), Error> {
        self.stop_mode("immediate").await
    }

    /// Stops the server cleanly, at the end.
    pub async fn stop(&self) -> Result<(), Error> {
        self.stop_mode("fast").await
    }

    async fn stop_mode(&self, mode: &str) -> Result<(), Error> {
        self.tool(
            "pg_ctl",
            &[
                "-D",
                &self.data.display().to_string(),
                "-m",
                mode,
                "-w",
                "stop",
            ],
        )
        .await
    }

    async fn tool(&self, name: &str, args: &[&str]) -> Result<(), Error> {
        let program = self.bin.join(name);
        let mut cmd = std::process::Command::new(&program);
        cmd.args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if let Some((uid, gid)) = self.run_as {
            cmd.uid(uid).gid(gid).env("HOME", "/tmp");
        }
        let described = format!("{} {}", program.display(), args.join(" "));
        let out = tokio::process::Command::from(cmd)
            .output()
            .await
            .map_err(io(format!("running {described}")))?;
        if out.status.success() {
            return Ok(());
        }
        Err(Error::Usage(format!(
            "{described} failed ({}): {}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout).trim(),
            String::from_utf8_lossy(&out.stderr).trim()
        )))
    }
}
