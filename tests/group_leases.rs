//! Group leases (issue 35), on both backends: a supervisor holds its jobs through one lease,
//! its row in `supervisors`, renewed in one statement however many jobs it holds; a job goes
//! to another once that lease runs out, and fencing holds per job; a submitter's job keeps a
//! lease of its own; a supervisor never runs beside one of another lease protocol.

mod common;

use std::time::{Duration, Instant};

use tether::app::App;
use tether::engine::{EngineError, EnsureRequest, Supervisor};
use tether::model::{JobId, Millis};
use tether::state::TaskInstanceId;
use tokio_util::sync::CancellationToken;

use common::procs::{Setup, Sim};
use common::{app_for, quick_sim, spec, TestDb};

fn request(task: &str) -> EnsureRequest {
    EnsureRequest {
        task_instance: TaskInstanceId::new("etl", "r1", task, -1),
        try_number: 1,
        name: "main".into(),
        provider: "databricks".into(),
        spec: spec(task),
    }
}

/// `n` running jobs, nobody holding them, and the app that made them (lease `lease`).
async fn running_jobs(db: &TestDb, n: usize, lease: &str) -> (App, Vec<JobId>) {
    let sim = quick_sim().await;
    sim.configure(|c| c.running = Duration::from_secs(600));
    // The simulator lives as long as the test: leaked on purpose.
    let url = sim.url();
    std::mem::forget(sim);
    let app = app_for(db, &url, lease, "").await;
    let mut ids = Vec::new();
    for i in 0..n {
        ids.push(
            app.engine
                .ensure(&request(&format!("job{i}")))
                .await
                .unwrap()
                .job
                .id,
        );
    }
    (app, ids)
}

/// A job a supervisor claims is held through its group lease (no lease time of its own); no
/// one else may claim it while that lease is alive, and anyone may once it has run out,
/// which moves the epoch on and fences the first holder's writes. A holder whose lease ran
/// out and comes back keeps the jobs nobody claimed meanwhile, at the same epoch.
async fn a_group_held_job_is_claimable_once_its_supervisors_lease_runs_out(db: TestDb) {
    let (app, ids) = running_jobs(&db, 2, "30s").await;
    let (jobs, members) = (app.engine.jobs(), app.engine.members());
    let t0 = Millis::from(chrono::Utc::now());
    let since = t0.plus(-30_000);
    members
        .renew("A", t0, t0.plus(1_000), true, since)
        .await
        .unwrap();
    members
        .renew("B", t0, t0.plus(60_000), true, since)
        .await
        .unwrap();
    let held = jobs
        .claim_batch("A", t0, None, 10, None, false)
        .await
        .unwrap();
    assert_eq!(held.len(), 2);
    for id in &ids {
        let job = jobs.get(*id).await.unwrap().unwrap();
        assert_eq!(job.lease_owner.as_deref(), Some("A"));
        assert_eq!(job.lease_expires_at, None, "held through A's group lease");
    }
    assert_eq!(jobs.lease_digest_of("A", t0).await.unwrap().0, 2);
    assert!(jobs
        .claim_batch("B", t0.plus(999), None, 10, None, false)
        .await
        .unwrap()
        .is_empty());
    assert!(
        jobs.claim(ids[0], "B", t0.plus(999), t0.plus(5_000))
            .await
            .unwrap()
            .is_none(),
        "A's group lease is alive"
    );
    // A's lease runs out (its renewals failed): B takes one job.
    let t1 = t0.plus(1_001);
    assert!(jobs.leases_of("A", t1).await.unwrap().is_empty());
    let taken = jobs
        .claim_batch("B", t1, None, 1, None, false)
        .await
        .unwrap();
    assert_eq!(taken.len(), 1);
    let taken = &taken[0];
    let before = held.iter().find(|h| h.id == taken.id).unwrap();
    assert_eq!(taken.lease_epoch, before.lease_epoch.next());
    let stale = tether::jobs::Lease {
        job_id: taken.id,
        owner: "A".into(),
        epoch: before.lease_epoch,
    };
    assert!(
        !jobs.release(&stale).await.unwrap(),
        "A's write is fenced off"
    );
    // A comes back: the job nobody claimed is still its own, at the same epoch.
    members
        .renew("A", t1, t1.plus(1_000), true, since)
        .await
        .unwrap();
    let kept = jobs.leases_of("A", t1).await.unwrap();
    let other = held.iter().find(|h| h.id != taken.id).unwrap();
    assert_eq!(kept.len(), 1);
    assert_eq!(
        (kept[0].job_id, kept[0].epoch),
        (other.id, other.lease_epoch)
    );
    // A supervisor that left (no row) holds nothing.
    members.leave("A").await.unwrap();
    assert!(jobs.leases_of("A", t1).await.unwrap().is_empty());
    let freed = jobs
        .claim_batch("B", t1, None, 10, None, false)
        .await
        .unwrap();
    assert_eq!(freed.len(), 1);
    assert_eq!(freed[0].id, other.id);
}

/// A submitter's job (an intent whose submitter died) keeps a lease of its own: a live
/// supervisor's group lease does not cover it, and it is claimed once its own lease has run
/// out, not before. `tether run`'s supervisor holds its one job under a lease of its own too,
/// and `tether serve`'s through its group lease.
async fn a_submitters_job_keeps_its_own_lease(db: TestDb) {
    let sim = quick_sim().await;
    sim.configure(|c| c.running = Duration::from_secs(600));
    let app = app_for(&db, &sim.url(), "2s", "").await;
    let orphan = common::orphan_intent(&app, &request("orphan"), 2_500).await;
    let (jobs, members) = (app.engine.jobs(), app.engine.members());
    let now = Millis::from(chrono::Utc::now());
    members
        .renew("A", now, now.plus(60_000), true, now)
        .await
        .unwrap();
    assert!(jobs
        .claim_batch("A", now, None, 10, None, false)
        .await
        .unwrap()
        .is_empty());
    let job = jobs.get(orphan.id).await.unwrap().unwrap();
    assert_eq!(job.lease_owner.as_deref(), Some("dead-worker"));
    assert!(job.lease_expires_at.is_some());
    assert_eq!(jobs.leases_of("dead-worker", now).await.unwrap().len(), 1);
    let later = now.plus(3_000);
    assert!(jobs
        .leases_of("dead-worker", later)
        .await
        .unwrap()
        .is_empty());
    assert_eq!(
        jobs.claim_batch("A", later, None, 10, None, false)
            .await
            .unwrap()
            .len(),
        1
    );
    members.leave("A").await.unwrap();
    jobs.release_all("A").await.unwrap();

    // `tether run` (one job) and `tether serve` (all of them), on two other jobs.
    let one = app.engine.ensure(&request("one")).await.unwrap().job.id;
    let stop = CancellationToken::new();
    let run = tokio::spawn(Supervisor::for_job(app.engine.clone(), one).run(stop.clone()));
    let job = until_held(&app, one, app.engine.owner()).await;
    assert!(job.lease_expires_at.is_some(), "{job:?}");
    stop.cancel();
    run.await.unwrap();
    let all = app.engine.ensure(&request("all")).await.unwrap().job.id;
    let stop = CancellationToken::new();
    let serve = tokio::spawn(Supervisor::new(app.engine.clone()).run(stop.clone()));
    let job = until_held(&app, all, app.engine.owner()).await;
    assert_eq!(job.lease_expires_at, None, "{job:?}");
    stop.cancel();
    serve.await.unwrap();
    let job = app.engine.jobs().get(all).await.unwrap().unwrap();
    assert_eq!(job.lease_owner, None, "released on shutdown");
}

async fn until_held(app: &App, id: JobId, owner: &str) -> tether::jobs::JobRecord {
    let start = Instant::now();
    loop {
        let job = app.engine.jobs().get(id).await.unwrap().unwrap();
        if job.lease_owner.as_deref() == Some(owner) {
            return job;
        }
        assert!(start.elapsed() < Duration::from_secs(10), "never claimed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A row as a tether from before group leases writes it (no protocol, no lease).
async fn old_supervisor_row(app: &App, owner: &str, seen_at: Millis) {
    sqlx::query("INSERT INTO supervisors (owner, seen_at) VALUES ($1, $2)")
        .bind(owner)
        .bind(seen_at.0)
        .execute(app.db.pool())
        .await
        .unwrap();
}

/// A supervisor refuses to start beside a live one of the old lease protocol, claiming
/// nothing; one long dead does not count. One that is running stops at its next renewal when
/// such a one appears, handing its jobs back.
async fn a_supervisor_refuses_to_run_beside_an_older_protocol(db: TestDb) {
    let (app, ids) = running_jobs(&db, 3, "1s").await;
    let now = Millis::from(chrono::Utc::now());
    old_supervisor_row(&app, "long-gone", now.plus(-3_600_000)).await;
    old_supervisor_row(&app, "old-tether", now).await;
    let stop = CancellationToken::new();
    let refused = tokio::time::timeout(
        Duration::from_secs(10),
        Supervisor::new(app.engine.clone()).supervise(stop.clone()),
    )
    .await
    .expect("it stops by itself")
    .unwrap_err();
    let message = refused.to_string();
    assert!(
        matches!(refused, EngineError::LeaseProtocol { ref owner, .. } if owner == "old-tether"),
        "{refused:?}"
    );
    assert!(
        message.contains("old-tether") && message.contains("Stop all supervisors, migrate, start"),
        "{message}"
    );
    for id in &ids {
        let job = app.engine.jobs().get(*id).await.unwrap().unwrap();
        assert_eq!(job.lease_owner, None, "nothing claimed: {job:?}");
    }

    // The old one is gone (stopped): a supervisor runs and claims; then another old one
    // appears (it was started by mistake).
    sqlx::query("DELETE FROM supervisors WHERE owner = 'old-tether'")
        .execute(app.db.pool())
        .await
        .unwrap();
    let supervisor = tokio::spawn(Supervisor::new(app.engine.clone()).supervise(stop.clone()));
    for id in &ids {
        until_held(&app, *id, app.engine.owner()).await;
    }
    let seen = Millis::from(chrono::Utc::now());
    old_supervisor_row(&app, "old-again", seen).await;
    let refused = tokio::time::timeout(Duration::from_secs(10), supervisor)
        .await
        .expect("it stops by itself at a renewal")
        .unwrap()
        .unwrap_err();
    assert!(refused.to_string().contains("old-again"), "{refused}");
    for id in &ids {
        let job = app.engine.jobs().get(*id).await.unwrap().unwrap();
        assert_eq!(job.lease_owner, None, "handed back: {job:?}");
    }
}

/// Renewing a supervisor's leases writes one row, its own in `supervisors`, however many jobs
/// it holds: a trigger counts the rows each statement updates while a supervisor holds 5 jobs,
/// then 150, for a few renewals each (their polls write nothing: the jobs keep running).
async fn renewal_writes_one_row_whatever_the_job_count(db: TestDb) {
    let (app, ids) = running_jobs(&db, 150, "1s").await;
    let counting = match db.backend {
        "postgres" => vec![
            "CREATE TABLE touched (tbl TEXT NOT NULL)",
            "CREATE FUNCTION count_touched() RETURNS trigger AS $$ BEGIN \
             INSERT INTO touched VALUES (TG_TABLE_NAME); RETURN NULL; END; $$ LANGUAGE plpgsql",
            "CREATE TRIGGER jobs_touched AFTER UPDATE ON jobs FOR EACH ROW \
             EXECUTE FUNCTION count_touched()",
            "CREATE TRIGGER supervisors_touched AFTER INSERT OR UPDATE ON supervisors \
             FOR EACH ROW EXECUTE FUNCTION count_touched()",
        ],
        _ => vec![
            "CREATE TABLE touched (tbl TEXT NOT NULL)",
            "CREATE TRIGGER jobs_touched AFTER UPDATE ON jobs BEGIN \
             INSERT INTO touched VALUES ('jobs'); END",
            "CREATE TRIGGER supervisors_touched AFTER UPDATE ON supervisors BEGIN \
             INSERT INTO touched VALUES ('supervisors'); END",
            "CREATE TRIGGER supervisors_inserted AFTER INSERT ON supervisors BEGIN \
             INSERT INTO touched VALUES ('supervisors'); END",
        ],
    };
    for sql in counting {
        sqlx::query(sql).execute(app.db.pool()).await.unwrap();
    }
    let touched = |tbl: &'static str| {
        let pool = app.db.pool().clone();
        async move {
            sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM touched WHERE tbl = $1")
                .bind(tbl)
                .fetch_one(&pool)
                .await
                .unwrap()
        }
    };
    // The other 145 are finished first, so the supervisor holds 5.
    let few = 5;
    sqlx::query("UPDATE jobs SET phase = 'terminal' WHERE id > $1")
        .bind(ids[few - 1].0)
        .execute(app.db.pool())
        .await
        .unwrap();
    let mut per_renewal = Vec::new();
    for held in [few, ids.len()] {
        if held == ids.len() {
            sqlx::query("UPDATE jobs SET phase = 'active' WHERE phase = 'terminal'")
                .execute(app.db.pool())
                .await
                .unwrap();
        }
        let stop = CancellationToken::new();
        let supervisor = tokio::spawn(Supervisor::new(app.engine.clone()).run(stop.clone()));
        for id in &ids[..held] {
            until_held(&app, *id, app.engine.owner()).await;
        }
        // Every job polled once (its first poll may record what it learnt).
        tokio::time::sleep(Duration::from_secs(2)).await;
        let (jobs0, sups0) = (touched("jobs").await, touched("supervisors").await);
        // A renewal every third of a second: about 9 in 3 s.
        tokio::time::sleep(Duration::from_secs(3)).await;
        let (jobs1, sups1) = (touched("jobs").await, touched("supervisors").await);
        stop.cancel();
        supervisor.await.unwrap();
        assert_eq!(jobs1 - jobs0, 0, "holding {held}: no job row written");
        let renewals = sups1 - sups0;
        assert!(
            (5..=15).contains(&renewals),
            "holding {held}: {renewals} rows of supervisors written in 3 s"
        );
        per_renewal.push(renewals);
    }
    println!("supervisors rows written in 3 s, holding 5 and 150 jobs: {per_renewal:?}");
}

/// A claim finds the jobs of a supervisor whose row has run out by searching, not walking.
/// Jobs whose holder has no row at all are found only by a thorough claim (a supervisor's
/// first, then every ten minutes), and no supervisor of this protocol leaves any: leaving,
/// and forgetting a supervisor not seen for a day, hand its jobs back.
async fn jobs_of_a_supervisor_with_no_row_are_found_by_a_thorough_claim(db: TestDb) {
    let (app, _ids) = running_jobs(&db, 3, "30s").await;
    let (jobs, members) = (app.engine.jobs(), app.engine.members());
    let t0 = Millis::from(chrono::Utc::now());
    let since = t0.plus(-30_000);
    members
        .renew("A", t0, t0.plus(60_000), true, since)
        .await
        .unwrap();
    assert_eq!(
        jobs.claim_batch("A", t0, None, 10, None, false)
            .await
            .unwrap()
            .len(),
        3
    );
    // A's row goes by hand: its jobs are out of the indexes' reach.
    sqlx::query("DELETE FROM supervisors WHERE owner = 'A'")
        .execute(&mut *app.db.acquire().await.unwrap())
        .await
        .unwrap();
    members
        .renew("B", t0, t0.plus(60_000), true, since)
        .await
        .unwrap();
    assert!(jobs
        .claim_batch("B", t0, None, 10, None, false)
        .await
        .unwrap()
        .is_empty());
    assert_eq!(
        jobs.claim_batch("B", t0, None, 10, None, true)
            .await
            .unwrap()
            .len(),
        3,
        "a thorough claim walks every unfinished job"
    );
    // B is not seen for a day: the next supervisor to start forgets it and hands its jobs
    // back, and a plain claim finds them.
    let t1 = t0.plus(86_400_000 + 61_000);
    assert!(members
        .other_protocol("C", t1, t1.plus(-30_000))
        .await
        .unwrap()
        .is_none());
    assert_eq!(
        members.lease_expiry("B").await.unwrap(),
        None,
        "B forgotten"
    );
    members
        .renew("C", t1, t1.plus(60_000), true, t1.plus(-30_000))
        .await
        .unwrap();
    assert_eq!(
        jobs.claim_batch("C", t1, None, 10, None, false)
            .await
            .unwrap()
            .len(),
        3
    );
}

on_both_backends!(
    a_group_held_job_is_claimable_once_its_supervisors_lease_runs_out,
    a_submitters_job_keeps_its_own_lease,
    a_supervisor_refuses_to_run_beside_an_older_protocol,
    renewal_writes_one_row_whatever_the_job_count,
    jobs_of_a_supervisor_with_no_row_are_found_by_a_thorough_claim,
);

/// `tether serve` beside a live supervisor of the old protocol: it exits non-zero at once,
/// saying whom it found and what to do.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_exits_beside_an_older_protocol() {
    let db = TestDb::sqlite().await;
    let sim = Sim::start("databricks", &[]).await;
    let setup = Setup::new(&db, "databricks", &sim, "2s");
    let app = setup.app().await;
    old_supervisor_row(&app, "old-tether", Millis::from(chrono::Utc::now())).await;
    let mut serve = setup.serve().spawn().unwrap();
    let status = tokio::time::timeout(Duration::from_secs(20), serve.wait())
        .await
        .expect("serve exits by itself")
        .unwrap();
    let err = setup.read("serve.err");
    assert!(!status.success(), "{status:?}\n{err}");
    assert!(
        err.contains("old-tether") && err.contains("Stop all supervisors, migrate, start"),
        "{err}"
    );
}
