//! Kubernetes watch events end to end, on both backends: `[events.k8s]` (kind
//! `kubernetes-watch`) watches the Jobs tether made on the simulated API server (kube-rs'
//! watcher: list, then watch from its version with bookmarks, resume, re-list after 410 Gone).
//! A Job whose next poll is ten minutes away is recorded within seconds of its end, by a
//! supervisor in another process than the one whose watch heard it; after the server forgot
//! the versions the watch would resume from and closed every watch, the end is still heard.

mod common;

use std::time::Duration;

use tether::app::App;
use tether::config::Config;
use tether::engine::EnsureRequest;
use tether::jobs::Phase;
use tether::state::TaskInstanceId;
use tether_kubernetes::sim::{SimConfig, Simulator};
use tether_provider::JobState;

use common::{config_toml, serve_parts, until, Served, TestDb};

async fn sim(running: Duration) -> Simulator {
    Simulator::start(
        SimConfig {
            pending: Duration::from_millis(300),
            running,
            bookmark_every: Duration::from_millis(500),
            ..SimConfig::default()
        },
        ([127, 0, 0, 1], 0).into(),
    )
    .await
    .unwrap()
}

/// An app with a Kubernetes account on the simulator, polled every `poll` at most, and the
/// watch as `[events.k8s]`.
async fn app(db: &TestDb, sim: &Simulator, poll: &str) -> App {
    let kubeconfig = sim.kubeconfig().display().to_string();
    let text = format!(
        "{}\n[providers.k8s]\nkind = \"kubernetes\"\nkubeconfig = \"{kubeconfig}\"\n\
         poll_initial = \"{poll}\"\npoll_max = \"{poll}\"\npoll_max_with_events = \"{poll}\"\n\
         request_timeout = \"2s\"\n\n\
         [events.k8s]\nkind = \"kubernetes-watch\"\nkubeconfig = \"{kubeconfig}\"\naccounts = [\"k8s\"]\n",
        config_toml(db, "http://127.0.0.1:9", "3s", ""),
    );
    App::open(Config::from_toml(&text, "test").expect("config"))
        .await
        .expect("open app")
}

fn request(task: &str) -> EnsureRequest {
    EnsureRequest {
        task_instance: TaskInstanceId::new("etl", "manual__1", task, -1),
        try_number: 1,
        name: "main".into(),
        provider: "k8s".into(),
        spec: tether::registry::simulators("kubernetes")
            .unwrap()
            .sample_spec("kubernetes", task),
    }
}

/// The watch hears the end: the process that watches holds no job; the one that holds the
/// job hears of it through the database (its next poll was ten minutes away).
async fn a_job_end_is_recorded_from_the_watch(db: TestDb) {
    let sim = sim(Duration::from_millis(1500)).await;
    let holder = app(&db, &sim, "10m").await;
    let reader = app(&db, &sim, "10m").await;
    let served = Served::start(&holder, |stop| {
        let mut tasks = serve_parts(&holder, stop, false);
        tasks.extend(serve_parts(&reader, stop, true));
        tasks
    });
    let id = holder
        .engine
        .ensure(&request("watched"))
        .await
        .unwrap()
        .job
        .id;
    let (record, took) = until(&holder, id, Duration::from_secs(20), |j| {
        j.phase == Phase::Terminal
    })
    .await;
    assert_eq!(
        record.state,
        JobState::Succeeded,
        "{record:?} after {took:?}"
    );
    assert!(
        took < Duration::from_secs(6),
        "recorded {took:?} after submission (the Job takes about 2 s)"
    );
    assert!(sim.stats().watch_requests >= 1, "{:?}", sim.stats());
    served.stop().await;
}

/// The server forgets the versions a watch would resume from (etcd's compaction) and ends
/// every watch: the watcher lists again and the end is still heard within seconds.
async fn a_watch_resumes_after_410_gone(db: TestDb) {
    let sim = sim(Duration::from_secs(4)).await;
    let app = app(&db, &sim, "10m").await;
    let served = Served::start(&app, |stop| serve_parts(&app, stop, true));
    let id = app.engine.ensure(&request("resumed")).await.unwrap().job.id;
    until(&app, id, Duration::from_secs(10), |j| {
        j.state == JobState::Running
    })
    .await;
    // The watch is open (the event reader starts it at its first receive).
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while sim.stats().watch_requests == 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "no watch: {:?}",
            sim.stats()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let lists = sim.stats().list_requests;
    sim.compact();
    sim.close_watches();
    let (record, took) = until(&app, id, Duration::from_secs(20), |j| {
        j.phase == Phase::Terminal
    })
    .await;
    assert_eq!(
        record.state,
        JobState::Succeeded,
        "{record:?} after {took:?}"
    );
    assert!(
        took < Duration::from_secs(8),
        "recorded {took:?} after it ran"
    );
    assert!(
        sim.stats().list_requests > lists,
        "the watcher listed again after 410 Gone: {:?}",
        sim.stats()
    );
    served.stop().await;
}

on_both_backends!(
    a_job_end_is_recorded_from_the_watch,
    a_watch_resumes_after_410_gone
);
