//! Kubernetes through the engine, on both backends: a Job deleted before tether's first read
//! of it (a `ttlSecondsAfterFinished` of 0 on a quick Job, a person's `kubectl delete`) was
//! made, since the create's answer was the stored object: it ends `outcome_unknown` after
//! `not_found_grace`, never `lost`, and no retry creates it again.

mod common;

use std::time::Duration;

use tether::app::App;
use tether::config::Config;
use tether::engine::{EnsureAction, EnsureRequest};
use tether::state::TaskInstanceId;
use tether_kubernetes::sim::{SimConfig, Simulator};
use tether_provider::JobState;

use common::{config_toml, until_all_done, TestDb};

fn request(try_number: i64) -> EnsureRequest {
    EnsureRequest {
        task_instance: TaskInstanceId::new("etl", "manual__1", "deleted", -1),
        try_number,
        name: "main".into(),
        provider: "k8s".into(),
        spec: tether::registry::simulators("kubernetes")
            .unwrap()
            .sample_spec("kubernetes", "deleted"),
    }
}

async fn a_job_deleted_before_its_first_read_is_never_created_again(db: TestDb) {
    let sim = Simulator::start(
        SimConfig {
            running: Duration::from_secs(600),
            ..SimConfig::default()
        },
        ([127, 0, 0, 1], 0).into(),
    )
    .await
    .unwrap();
    let text = format!(
        "{}\n[providers.k8s]\nkind = \"kubernetes\"\nkubeconfig = \"{}\"\n\
         poll_initial = \"2s\"\npoll_max = \"2s\"\nnot_found_grace = \"1s\"\nrequest_timeout = \"2s\"\n",
        config_toml(&db, "http://127.0.0.1:9", "3s", ""),
        sim.kubeconfig().display()
    );
    let app = App::open(Config::from_toml(&text, "test").expect("config"))
        .await
        .expect("open app");
    let job = app.engine.ensure(&request(1)).await.unwrap().job;
    let handle = job.handle.clone().expect("created");
    let (ns, name) = (
        handle.get_str("ns").unwrap(),
        handle.get_str("name").unwrap(),
    );
    assert!(
        sim.delete("batch", "jobs", &ns, &name),
        "deleted before any read"
    );
    let done = until_all_done(&app, &[job.id], Duration::from_secs(20)).await;
    assert_eq!(done[0].state, JobState::OutcomeUnknown, "{:?}", done[0]);
    let again = app.engine.ensure(&request(2)).await.unwrap();
    assert_eq!(again.action, EnsureAction::Finished, "{again:?}");
    assert_eq!(sim.stats().common.submissions, 1, "created once");
    app.db.close().await;
}

on_both_backends!(a_job_deleted_before_its_first_read_is_never_created_again);
