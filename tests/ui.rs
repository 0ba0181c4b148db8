//! The web view in a real browser: Debian's Chromium, headless, driven over WebDriver
//! (`chromedriver`, from the `chromium-driver` package, which `.ci/run` installs) by
//! fantoccini. A seeded database (jobs of two DAGs, one of them lost) behind a live API: the
//! list shows the jobs and the counts per state, the lost job stands out, the filters work,
//! the list picks up a new job by itself, a job page shows its event log, the state browser
//! shows a task instance's keys, a task token sees only its own DAG's jobs, and the pages
//! carry the security headers. A screenshot of each page is kept in
//! `$CARGO_TARGET_TMPDIR/ui-screenshots/`.

mod common;

use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;
use tether::api::{router, ApiState};
use tether::app::App;
use tether::engine::{EnsureRequest, Supervisor};
use tether::jobs::Phase;
use tether::model::JobId;
use tether::state::TaskInstanceId;
use tether_provider::JobState;
use tokio_util::sync::CancellationToken;

use common::{app_for, quick_sim, spec, TestDb};

const ADMIN: &str = "admin-token-for-the-ui-tests-01234";

fn request(dag: &str, task: &str) -> EnsureRequest {
    EnsureRequest {
        task_instance: TaskInstanceId::new(dag, "r1", task, -1),
        try_number: 1,
        name: "main".into(),
        provider: "databricks".into(),
        spec: spec(task),
    }
}

fn screenshots() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("ui-screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// `chromedriver` on a free port, or `None` (and a note) when it is not installed outside CI.
async fn chromedriver() -> Option<(tokio::process::Child, String)> {
    if which("chromedriver").is_none() || which("chromium").is_none() {
        assert!(
            std::env::var_os("CI").is_none(),
            "chromium and chromedriver are required under CI (apt-get install chromium chromium-driver)"
        );
        eprintln!("SKIPPED ui: chromium or chromedriver is not installed");
        return None;
    }
    let port = common::free_port();
    let child = tokio::process::Command::new("chromedriver")
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let url = format!("http://127.0.0.1:{port}");
    let start = Instant::now();
    while reqwest::get(format!("{url}/status")).await.is_err() {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "chromedriver did not start"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Some((child, url))
}

fn which(program: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|d| d.join(program))
        .find(|p| p.is_file())
}

async fn browser(driver: &str) -> Client {
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        json!({"args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                         "--window-size=1400,900"]}),
    );
    // fantoccini's TLS (unused here: chromedriver speaks plain HTTP) asks for a provider.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut builder = ClientBuilder::rustls().expect("rustls roots");
    builder.capabilities(caps);
    builder.connect(driver).await.expect("a WebDriver session")
}

/// Waits until `css` matches exactly `n` elements; their texts.
async fn rows(c: &Client, css: &str, n: usize) -> Vec<String> {
    let start = Instant::now();
    loop {
        let found = c.find_all(Locator::Css(css)).await.unwrap();
        if found.len() == n {
            let mut texts = Vec::new();
            for e in found {
                texts.push(e.text().await.unwrap());
            }
            return texts;
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "{css}: {} elements, expected {n}\n{}",
            found.len(),
            c.source().await.unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn text_of(c: &Client, css: &str) -> String {
    match c
        .wait()
        .at_most(Duration::from_secs(20))
        .for_element(Locator::Css(css))
        .await
    {
        Ok(e) => e.text().await.unwrap(),
        Err(e) => panic!("{css}: {e}\n{}", c.source().await.unwrap_or_default()),
    }
}

async fn shot(c: &Client, name: &str) {
    let png = c.screenshot().await.unwrap();
    std::fs::write(screenshots().join(name), png).unwrap();
}

async fn log_in(c: &Client, url: &str, token: &str) {
    c.goto(&format!("{url}/ui")).await.unwrap();
    let input = c
        .wait()
        .for_element(Locator::Css("#login-token"))
        .await
        .unwrap();
    input.send_keys(token).await.unwrap();
    c.find(Locator::Css("#login-submit"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
}

async fn seed(app: &App, sim: &tether_databricks::sim::Simulator) -> (JobId, JobId) {
    let load = app
        .engine
        .ensure(&request("etl", "load"))
        .await
        .unwrap()
        .job
        .id;
    let ghost = app
        .engine
        .ensure(&request("etl", "ghost"))
        .await
        .unwrap()
        .job;
    sim.configure(|c| c.running = Duration::from_secs(300));
    app.engine
        .ensure(&request("etl", "transform"))
        .await
        .unwrap();
    app.engine
        .ensure(&request("other", "report"))
        .await
        .unwrap();
    // The ghost's run disappears at the provider: tether marks it lost.
    sim.delete_run(ghost.handle.as_ref().unwrap().get_i64("run_id").unwrap());
    let stop = CancellationToken::new();
    let sup = tokio::spawn(Supervisor::new(app.engine.clone()).run(stop.clone()));
    let start = Instant::now();
    loop {
        let l = app.engine.jobs().get(load).await.unwrap().unwrap();
        let g = app.engine.jobs().get(ghost.id).await.unwrap().unwrap();
        if l.phase == Phase::Terminal && g.state == JobState::Lost {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(30), "{l:?}\n{g:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    stop.cancel();
    sup.await.unwrap();
    (load, ghost.id)
}

async fn the_web_view_in_a_real_browser(db: TestDb) {
    let Some((_driver, driver_url)) = chromedriver().await else {
        return;
    };
    let sim = quick_sim().await;
    let extra = format!(
        "\n[api]\nadmin_token_sha256 = [\"{}\"]\nsigning_key = \"ui-test-signing-key-0123456789abcdef\"\n",
        tether::api::auth::hash_token(ADMIN)
    );
    let app = app_for(&db, &sim.url(), "2s", &extra).await;
    let (load, _ghost) = seed(&app, &sim).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let state = ApiState::new(app.clone());
    let keys = state.keys.clone();
    tokio::spawn(async move { axum::serve(listener, router(state)).await.unwrap() });

    // The security headers.
    let page = reqwest::get(format!("{url}/ui")).await.unwrap();
    let csp = page.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        csp.contains("frame-ancestors 'none'") && csp.contains("script-src 'self'"),
        "{csp}"
    );
    assert_eq!(page.headers()["x-frame-options"], "DENY");
    // On every answer under /ui, the router's fallbacks included.
    let http = reqwest::Client::new();
    for (method, path) in [
        (reqwest::Method::GET, "/ui/nope"),
        (reqwest::Method::GET, "/ui/assets/nope.js"),
        (reqwest::Method::POST, "/ui"),
        (reqwest::Method::GET, "/ui/assets/app.js"),
    ] {
        let answer = http
            .request(method.clone(), format!("{url}{path}"))
            .send()
            .await
            .unwrap();
        let headers = answer.headers();
        assert_eq!(
            headers
                .get("content-security-policy")
                .map(|v| v.to_str().unwrap()),
            Some(csp.as_str()),
            "{method} {path}"
        );
        for (name, value) in [
            ("x-frame-options", "DENY"),
            ("x-content-type-options", "nosniff"),
            ("referrer-policy", "no-referrer"),
        ] {
            assert_eq!(headers[name], value, "{method} {path}: {name}");
        }
    }

    let c = browser(&driver_url).await;
    log_in(&c, &url, ADMIN).await;
    let all = rows(&c, "#jobs-table tbody tr[data-job]", 4).await;
    assert!(
        all.iter()
            .any(|r| r.contains("other") && r.contains("report")),
        "{all:?}"
    );
    let counts = text_of(&c, "#count-lost").await;
    assert_eq!(counts, "lost 1");
    assert_eq!(
        rows(&c, "#jobs-table tbody tr.row-lost", 1).await.len(),
        1,
        "the lost job stands out"
    );
    shot(&c, "jobs.png").await;
    let token_in_url = c.current_url().await.unwrap().to_string().contains(ADMIN);
    assert!(!token_in_url, "the token is never in the URL");

    // The list picks up a new job by itself (no reload).
    app.engine.ensure(&request("etl", "late")).await.unwrap();
    rows(&c, "#jobs-table tbody tr[data-job]", 5).await;

    // Filters.
    let dag = c.find(Locator::Css("#filter-dag_id")).await.unwrap();
    dag.send_keys("other").await.unwrap();
    c.find(Locator::Css("#filter-apply"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let only = rows(&c, "#jobs-table tbody tr[data-job]", 1).await;
    assert!(only[0].contains("report"), "{only:?}");
    c.goto(&format!("{url}/ui?state=lost")).await.unwrap();
    let lost = rows(&c, "#jobs-table tbody tr[data-job]", 1).await;
    assert!(lost[0].contains("ghost"), "{lost:?}");

    // A job page and its events.
    c.goto(&format!("{url}/ui/jobs/{load}")).await.unwrap();
    let events = rows(
        &c,
        "#job-events li",
        app.engine.jobs().events(load).await.unwrap().len(),
    )
    .await;
    assert!(events.iter().any(|e| e.contains("submitted")), "{events:?}");
    assert!(events.iter().any(|e| e.contains("finished")), "{events:?}");
    let summary = text_of(&c, "#job-summary").await;
    assert!(
        summary.contains("run_id") && summary.contains("succeeded"),
        "{summary}"
    );
    let link = c.find(Locator::Css("#provider-link")).await.unwrap();
    let href = link.attr("href").await.unwrap().unwrap_or_default();
    assert!(
        href.starts_with(&sim.url()),
        "the run page is a link: {href}"
    );
    shot(&c, "job.png").await;

    // The state browser.
    c.goto(&format!(
        "{url}/ui/state?scope=task-instance&dag_id=etl&run_id=r1&task_id=load"
    ))
    .await
    .unwrap();
    let keys_shown = rows(&c, "#state-table tbody tr", 1).await;
    assert!(keys_shown[0].contains("tether.job.main"), "{keys_shown:?}");
    shot(&c, "state.png").await;
    // A scope's keys come a page (100) at a time: "More keys" shows the next.
    let many = tether::state::Scope::task("etl", "many");
    for i in 0..105 {
        app.state
            .set(
                &many,
                &format!("k{i:03}"),
                serde_json::json!(i),
                Default::default(),
            )
            .await
            .unwrap();
    }
    c.goto(&format!(
        "{url}/ui/state?scope=task&dag_id=etl&task_id=many"
    ))
    .await
    .unwrap();
    let first = rows(&c, "#state-table tbody tr", 100).await;
    assert!(first[99].starts_with("k099"), "{:?}", first[99]);
    c.find(Locator::Css("#state-more"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let all = rows(&c, "#state-table tbody tr", 105).await;
    assert!(all[104].starts_with("k104"), "{:?}", all[104]);
    assert_eq!(
        c.find(Locator::Css("#state-more"))
            .await
            .unwrap()
            .attr("hidden")
            .await
            .unwrap()
            .as_deref(),
        Some("true"),
        "no more pages: the button hides"
    );
    // A map index from the query string cannot make the page fetch another path (here
    // /v1/tokens, with the admin's token): it must be an integer.
    c.goto(&format!(
        "{url}/ui/state?scope=task-instance&dag_id=x&run_id=r&task_id=t\
         &map_index=-1/../../../../../../tokens%3Fx%3D"
    ))
    .await
    .unwrap();
    let refused = text_of(&c, "#error").await;
    assert!(
        refused.contains("the map index must be an integer"),
        "{refused}"
    );
    assert!(rows(&c, "#state-table tbody tr", 0).await.is_empty());

    // A provider's `javascript:` run page is shown, never linked.
    sim.configure(|c| c.run_page_url = Some("javascript:alert(document.domain)".into()));
    let hostile = app
        .engine
        .ensure(&request("etl", "hostile"))
        .await
        .unwrap()
        .job
        .id;
    let stop = CancellationToken::new();
    let sup = tokio::spawn(Supervisor::new(app.engine.clone()).run(stop.clone()));
    let start = Instant::now();
    while app
        .engine
        .jobs()
        .get(hostile)
        .await
        .unwrap()
        .unwrap()
        .url
        .is_none()
    {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "no run page seen"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    stop.cancel();
    sup.await.unwrap();
    c.goto(&format!("{url}/ui/jobs/{hostile}")).await.unwrap();
    let start = Instant::now();
    while !text_of(&c, "#job-summary").await.contains("javascript:") {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "the job page shows no handle"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let links = c.find_all(Locator::Css("#job-summary a")).await.unwrap();
    assert!(links.is_empty(), "a javascript: run page became a link");
    shot(&c, "hostile-link.png").await;

    // A task token of dag `other` sees its own jobs only.
    c.find(Locator::Css("#logout"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let claims = tether::api::tokens::claims_for(
        serde_json::from_value(json!({"dag_id": "other"})).unwrap(),
        600,
        chrono::Utc::now().timestamp(),
    )
    .unwrap();
    let (task_token, _) = keys.sign(&claims);
    log_in(&c, &url, &task_token).await;
    let own = rows(&c, "#jobs-table tbody tr[data-job]", 1).await;
    assert!(own[0].contains("report"), "{own:?}");
    c.goto(&format!("{url}/ui/jobs/{load}")).await.unwrap();
    let refused = text_of(&c, "#error").await;
    assert!(refused.contains("lacks the scope"), "{refused}");
    shot(&c, "forbidden.png").await;
    c.close().await.unwrap();
}

on_both_backends!(the_web_view_in_a_real_browser);
