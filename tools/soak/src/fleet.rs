//! The soak's supervisors: `tether serve` processes sharing one database, each with its own
//! config (its own API port) and log, that the chaos loop SIGKILLs and restarts, or SIGSTOPs
//! and resumes.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use tokio::process::{Child, Command};

use crate::error::Error;

/// The message a supervisor logs when a write or renewal of a lease it no longer holds is
/// refused (the fencing check of `src/db/jobs.rs`).
const FENCED: &str = "lease lost";

/// Debian's libfaketime (package `faketime`), which sets a supervisor's clock off.
pub const LIBFAKETIME: &str = "/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1";

/// One supervisor's place in the fleet.
#[derive(Debug)]
struct Slot {
    config: PathBuf,
    log: PathBuf,
    /// Its own environment, over the fleet's (a clock set off by libfaketime).
    env: Vec<(String, String)>,
    child: Option<Child>,
    stopped: bool,
}

/// The supervisors.
#[derive(Debug)]
pub struct Fleet {
    binary: PathBuf,
    env: Vec<(String, String)>,
    slots: Vec<Slot>,
}

impl Fleet {
    /// `configs[i]` is supervisor i's config file; `env` is set for every process (the
    /// log filter, the providers' credentials).
    pub fn new(
        binary: PathBuf,
        env: Vec<(String, String)>,
        folder: &Path,
        configs: Vec<PathBuf>,
    ) -> Self {
        let slots = configs
            .into_iter()
            .enumerate()
            .map(|(i, config)| Slot {
                config,
                log: folder.join(format!("supervisor-{i}.log")),
                env: Vec::new(),
                child: None,
                stopped: false,
            })
            .collect();
        Self { binary, env, slots }
    }

    /// Sets `key` for supervisor `i` from its next start on.
    pub fn set_env(&mut self, i: usize, key: &str, value: &str) {
        self.slots[i].env.push((key.to_string(), value.to_string()));
    }

    /// How many supervisors.
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// Starts supervisor `i` (its log is appended to: one file over all its lives).
    pub fn start(&mut self, i: usize) -> Result<(), Error> {
        let slot = &mut self.slots[i];
        let io = |source| Error::Io {
            context: format!("starting supervisor {i} ({})", slot.log.display()),
            source,
        };
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&slot.log)
            .map_err(io)?;
        let child = Command::new(&self.binary)
            .arg("--config")
            .arg(&slot.config)
            .arg("serve")
            .env("NO_COLOR", "1")
            .env_remove("FAILPOINTS")
            .envs(self.env.iter().chain(&slot.env).map(|(k, v)| (k, v)))
            .stdout(Stdio::null())
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .map_err(io)?;
        slot.child = Some(child);
        slot.stopped = false;
        Ok(())
    }

    /// SIGKILLs supervisor `i` and reaps it.
    pub async fn kill(&mut self, i: usize) {
        if let Some(mut child) = self.slots[i].child.take() {
            let _ = child.start_kill();
            let _ = child.wait().await;
        }
        self.slots[i].stopped = false;
    }

    /// SIGSTOPs supervisor `i`; false if it is not running.
    pub fn pause(&mut self, i: usize) -> bool {
        self.signal(i, Signal::SIGSTOP) && {
            self.slots[i].stopped = true;
            true
        }
    }

    /// SIGCONTs supervisor `i`.
    pub fn resume(&mut self, i: usize) {
        if self.signal(i, Signal::SIGCONT) {
            self.slots[i].stopped = false;
        }
    }

    fn signal(&self, i: usize, signal: Signal) -> bool {
        let Some(pid) = self.slots[i].child.as_ref().and_then(Child::id) else {
            return false;
        };
        kill(Pid::from_raw(pid as i32), signal).is_ok()
    }

    /// Whether supervisor `i` runs (not killed, not stopped).
    pub fn is_running(&self, i: usize) -> bool {
        self.slots[i].child.is_some() && !self.slots[i].stopped
    }

    /// The process ids of the supervisors that run now.
    pub fn running_pids(&self) -> Vec<u32> {
        self.slots
            .iter()
            .filter(|s| !s.stopped)
            .filter_map(|s| s.child.as_ref().and_then(Child::id))
            .collect()
    }

    /// Stops every supervisor (SIGCONT first for a stopped one, then SIGTERM, and SIGKILL
    /// after `grace`).
    pub async fn shutdown(&mut self, grace: std::time::Duration) {
        for i in 0..self.slots.len() {
            self.resume(i);
            self.signal(i, Signal::SIGTERM);
        }
        for slot in &mut self.slots {
            if let Some(mut child) = slot.child.take() {
                if tokio::time::timeout(grace, child.wait()).await.is_err() {
                    let _ = child.start_kill();
                    let _ = child.wait().await;
                }
            }
        }
    }

    /// Writes and renewals refused by fencing, over every life of every supervisor.
    pub fn fenced_writes(&self) -> u64 {
        self.slots
            .iter()
            .map(|s| {
                std::fs::read_to_string(&s.log)
                    .unwrap_or_default()
                    .lines()
                    .filter(|l| l.contains(FENCED))
                    .count() as u64
            })
            .sum()
    }

    /// Lines of the supervisors' logs that contain `needle`, with the supervisor's number.
    pub fn log_lines(&self, needle: &str) -> Vec<String> {
        self.slots
            .iter()
            .enumerate()
            .flat_map(|(i, s)| {
                std::fs::read_to_string(&s.log)
                    .unwrap_or_default()
                    .lines()
                    .filter(|l| l.contains(needle))
                    .map(|l| format!("supervisor {i}: {l}"))
                    .collect::<Vec<_>>()
            })
            .collect()
    }
}
