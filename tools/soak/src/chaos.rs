//! The soak's chaos loop: every few seconds one fault, picked at random — a supervisor
//! SIGKILLed and started again, one SIGSTOPped for longer than its lease and resumed, the
//! PostgreSQL server crashed and started again, or refusing the supervisors' connections for a
//! while, or the simulators throttling (with a
//! Retry-After that outlives a lease), failing, answering slowly, dropping connections,
//! losing a submission's answer after making the job, or refusing cancels (so that a cancel
//! the API could not send has to be sent by the supervisor holding the job).

use std::sync::Arc;
use std::time::Duration;

use rand::rngs::StdRng;
use rand::Rng as _;
use tokio::sync::Mutex;
use tokio::time::Instant;

use tether_provider::registry::{RunningSim, SimCalls, SimFault, SimFaultKind};

use super::fleet::Fleet;
use super::postgres::Cluster;

/// What the chaos did.
#[derive(Debug, Default, Clone)]
pub struct Tally {
    /// Supervisors SIGKILLed (each started again).
    pub kills: u64,
    /// Supervisors SIGSTOPped for longer than the lease (each resumed).
    pub stops: u64,
    /// PostgreSQL crashes (each followed by a start).
    pub db_restarts: u64,
    /// Periods of 1.5 leases in which PostgreSQL refused the supervisors' connections (and
    /// ended their open ones).
    pub db_refusals: u64,
    /// Periods of throttling at both simulators.
    pub throttles: u64,
    /// Bursts of 500 and 503 answers.
    pub errors: u64,
    /// Bursts of answers slower than the request timeout.
    pub slow: u64,
    /// Bursts of connections dropped mid-answer.
    pub drops: u64,
    /// Bursts of submissions made but answered 500.
    pub lost_answers: u64,
    /// Bursts of cancel requests answered 500.
    pub refused_cancels: u64,
    /// The faults that could not be made (a failed `pg_ctl`), as text.
    pub failures: Vec<String>,
}

/// The things the chaos acts on.
pub struct Chaos {
    /// The supervisors.
    pub fleet: Arc<Mutex<Fleet>>,
    /// The database server.
    pub cluster: Arc<Cluster>,
    /// The providers' simulators.
    pub sims: Vec<Arc<dyn RunningSim>>,
    /// The supervisors' lease.
    pub lease: Duration,
}

impl Chaos {
    /// Makes faults until `until`; returns what it did and when the last fault ended.
    pub async fn run(&self, until: Instant, rng: &mut StdRng) -> (Tally, Instant) {
        let mut tally = Tally::default();
        let mut last_end = Instant::now();
        let mut pending: Vec<tokio::task::JoinHandle<Instant>> = Vec::new();
        while Instant::now() < until {
            let pause = Duration::from_millis(rng.random_range(1_500..4_000));
            tokio::time::sleep(pause).await;
            match rng.random_range(0..100) {
                0..20 => last_end = last_end.max(self.kill(rng, &mut tally).await),
                20..35 => {
                    if let Some(resumed) = self.stop(rng, &mut tally).await {
                        pending.push(resumed);
                    }
                }
                35..43 => last_end = last_end.max(self.restart_database(rng, &mut tally).await),
                43..49 => last_end = last_end.max(self.refuse_connections(&mut tally).await),
                49..57 => {
                    tally.throttles += 1;
                    pending.push(self.throttle());
                }
                57..70 => {
                    tally.errors += 1;
                    self.errors();
                    last_end = Instant::now();
                }
                70..80 => {
                    tally.slow += 1;
                    self.slow();
                    last_end = Instant::now();
                }
                80..90 => {
                    tally.drops += 1;
                    self.drops();
                    last_end = Instant::now();
                }
                90..95 => {
                    tally.lost_answers += 1;
                    self.lost_answers();
                    last_end = Instant::now();
                }
                _ => {
                    tally.refused_cancels += 1;
                    self.refused_cancels(rng);
                    last_end = Instant::now();
                }
            }
        }
        for task in pending {
            if let Ok(end) = task.await {
                last_end = last_end.max(end);
            }
        }
        (tally, last_end)
    }

    async fn kill(&self, rng: &mut StdRng, tally: &mut Tally) -> Instant {
        let mut fleet = self.fleet.lock().await;
        let i = rng.random_range(0..fleet.len());
        fleet.kill(i).await;
        tally.kills += 1;
        drop(fleet);
        tokio::time::sleep(Duration::from_millis(rng.random_range(200..2_000))).await;
        let mut fleet = self.fleet.lock().await;
        if let Err(e) = fleet.start(i) {
            tally
                .failures
                .push(format!("restarting supervisor {i}: {e}"));
        }
        Instant::now()
    }

    /// SIGSTOPs a running supervisor (none if one is stopped already) for twice the lease;
    /// the task resumes it and returns when.
    async fn stop(
        &self,
        rng: &mut StdRng,
        tally: &mut Tally,
    ) -> Option<tokio::task::JoinHandle<Instant>> {
        let mut fleet = self.fleet.lock().await;
        let running: Vec<usize> = (0..fleet.len()).filter(|&i| fleet.is_running(i)).collect();
        if running.len() < fleet.len() {
            return None;
        }
        let i = running[rng.random_range(0..running.len())];
        if !fleet.pause(i) {
            return None;
        }
        tally.stops += 1;
        let fleet = self.fleet.clone();
        let stopped_for = self.lease * 2;
        Some(tokio::spawn(async move {
            tokio::time::sleep(stopped_for).await;
            fleet.lock().await.resume(i);
            Instant::now()
        }))
    }

    async fn restart_database(&self, rng: &mut StdRng, tally: &mut Tally) -> Instant {
        if let Err(e) = self.cluster.crash().await {
            tally.failures.push(format!("crashing PostgreSQL: {e}"));
            return Instant::now();
        }
        tally.db_restarts += 1;
        tokio::time::sleep(Duration::from_millis(rng.random_range(500..3_000))).await;
        // A start can fail while the old server's socket lingers: try again.
        for attempt in 0..5 {
            match self.cluster.start().await {
                Ok(()) => break,
                Err(e) if attempt == 4 => tally.failures.push(format!("starting PostgreSQL: {e}")),
                Err(_) => tokio::time::sleep(Duration::from_secs(1)).await,
            }
        }
        Instant::now()
    }

    /// PostgreSQL refuses the supervisors' connections for 1.5 leases and ends their open
    /// ones, as a server out of connection slots would.
    async fn refuse_connections(&self, tally: &mut Tally) -> Instant {
        if let Err(e) = self.cluster.refuse_connections().await {
            tally.failures.push(format!("refusing connections: {e}"));
            return Instant::now();
        }
        tally.db_refusals += 1;
        tokio::time::sleep(self.lease * 3 / 2).await;
        for attempt in 0..5 {
            match self.cluster.allow_connections().await {
                Ok(()) => break,
                Err(e) if attempt == 4 => tally.failures.push(format!("allowing connections: {e}")),
                Err(_) => tokio::time::sleep(Duration::from_secs(1)).await,
            }
        }
        Instant::now()
    }

    /// Every simulator throttles every request for 1.5 leases, with a Retry-After longer
    /// than a lease; the task returns when the throttle has lapsed.
    fn throttle(&self) -> tokio::task::JoinHandle<Instant> {
        let retry_after = self.lease + Duration::from_secs(1);
        let lasting = self.lease * 3 / 2;
        self.all(
            SimFaultKind::Throttle(Some(retry_after)),
            u32::MAX,
            SimCalls::All,
            Some(lasting),
        );
        tokio::spawn(async move {
            tokio::time::sleep(lasting).await;
            Instant::now()
        })
    }

    /// `kind` at every simulator, for the next `times` requests of the kind `calls` names
    /// (made within `lasting`, when given).
    fn all(&self, kind: SimFaultKind, times: u32, calls: SimCalls, lasting: Option<Duration>) {
        for sim in &self.sims {
            sim.inject(SimFault {
                kind: kind.clone(),
                times,
                calls,
                lasting,
            });
        }
    }

    /// 500s then 503s for the next 15 requests each, within one lease. Every burst of
    /// provider faults lasts at most a lease however few requests meet it: counted only in
    /// requests, bursts queued a few seconds apart added up, and with tether's sweeps making
    /// few calls a simulator answered nothing but faults for minutes (a 2026-12-07 soak:
    /// every call failed from 20 s into the chaos to a minute after it, longer than
    /// `--forget-after`, and jobs that ended then were forgotten unread). The soak's outages
    /// are to stay shorter than the retention it gives the services.
    fn errors(&self) {
        let lasting = Some(self.lease);
        self.all(SimFaultKind::ServerError, 15, SimCalls::All, lasting);
        self.all(
            SimFaultKind::Unavailable(Some(Duration::from_secs(2))),
            15,
            SimCalls::All,
            lasting,
        );
    }

    fn slow(&self) {
        // Longer than the supervisors' request timeout.
        let late = Duration::from_secs(3);
        self.all(
            SimFaultKind::Delay(late),
            10,
            SimCalls::All,
            Some(self.lease),
        );
    }

    fn drops(&self) {
        self.all(SimFaultKind::Drop, 10, SimCalls::All, Some(self.lease));
    }

    /// The next four submissions are made but answered 500, however long they take to come.
    fn lost_answers(&self) {
        self.all(
            SimFaultKind::FailAfterProcessing,
            4,
            SimCalls::Submits,
            None,
        );
    }

    /// The next five cancel requests at one simulator, picked at random, are answered 500:
    /// every attempt of one cancel call (`max_retries` 4), so the first call fails (the API's,
    /// usually) and the supervisor holding the job has to send the cancel. (Bursts of ten
    /// stacked with the 500/503 bursts delayed cancels by up to 39 s in runs whose logs show
    /// nothing but faults and retries, near the minute a run lasts. Aimed at every simulator,
    /// the refusals stacked up once cancels spread over ten kinds, one or two per simulator:
    /// each cancel then met every refusal of the run, and two 2026-12-02 soaks saw cancels
    /// refused until their jobs ended. The soak is to test tether, not the number of
    /// refusals.)
    fn refused_cancels(&self, rng: &mut StdRng) {
        let sim = &self.sims[rng.random_range(0..self.sims.len())];
        sim.inject(SimFault {
            kind: SimFaultKind::ServerError,
            times: 5,
            calls: SimCalls::Cancels,
            lasting: None,
        });
    }
}
