//! The `tether` binary end to end: state commands, exit codes and error messages, on a fresh
//! SQLite file with no other set-up.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

fn tether(data: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tether"))
        .args(args)
        .env(
            "TETHER_DATABASE_URL",
            format!("sqlite://{}/tether.db", data.display()),
        )
        .env_remove("TETHER_CONFIG")
        .output()
        .expect("run tether")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn code(o: &Output) -> i32 {
    o.status.code().expect("exited")
}

const TI: [&str; 6] = ["--dag", "etl", "--run", "manual__1", "--task", "load"];

#[test]
fn set_get_list_delete_on_a_fresh_sqlite_file() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("new/folder");
    let set = tether(
        &data,
        &[&["state", "set", "cursor", r#"{"offset": 10}"#][..], &TI].concat(),
    );
    assert_eq!(code(&set), 0, "{}", stderr(&set));
    assert!(
        stdout(&set).starts_with("cursor: version 1, expires 20"),
        "{}",
        stdout(&set)
    );
    assert!(data.join("tether.db").exists());

    // `tether migrate` names the key namespace the database made, the same each time.
    let migrate = tether(&data, &["migrate"]);
    assert_eq!(code(&migrate), 0, "{}", stderr(&migrate));
    assert!(
        stdout(&migrate).contains("idempotency keys are derived in the namespace ")
            && stdout(&migrate).contains("(made by this database)"),
        "{}",
        stdout(&migrate)
    );
    let json = tether(&data, &["migrate", "--json"]);
    let info: serde_json::Value = serde_json::from_str(&stdout(&json)).unwrap();
    let ns = info["key_namespace"]["value"].as_str().unwrap().to_string();
    assert!(stdout(&migrate).contains(&ns), "{}", stdout(&migrate));
    assert_eq!(info["key_namespace"]["source"], "database");

    let get = tether(&data, &[&["state", "get", "cursor"][..], &TI].concat());
    assert_eq!(code(&get), 0, "{}", stderr(&get));
    assert_eq!(stdout(&get), "{\"offset\":10}\n");

    let json = tether(
        &data,
        &[&["state", "get", "cursor", "--json"][..], &TI].concat(),
    );
    let entry: serde_json::Value = serde_json::from_str(&stdout(&json)).unwrap();
    assert_eq!(entry["version"], 1);
    assert_eq!(entry["value"]["offset"], 10);
    assert!(entry["expires_at"].is_string());

    let wm = tether(
        &data,
        &[
            "state",
            "set",
            "wm",
            "\"2026-11-24\"",
            "--asset",
            "s3://lake/orders",
            "--retention",
            "never",
        ],
    );
    assert_eq!(code(&wm), 0, "{}", stderr(&wm));
    assert!(stdout(&wm).contains("never expires"));

    let list = tether(&data, &[&["state", "list"][..], &TI].concat());
    assert_eq!(code(&list), 0);
    let out = stdout(&list);
    assert!(out.starts_with("KEY"), "{out}");
    assert!(
        out.contains("cursor") && out.contains("{\"offset\":10}"),
        "{out}"
    );
    assert!(
        !out.contains("wm"),
        "asset state is not task-instance state: {out}"
    );

    let list = tether(
        &data,
        &["state", "list", "--asset", "s3://lake/orders", "--json"],
    );
    let entries: Vec<serde_json::Value> = serde_json::from_str(&stdout(&list)).unwrap();
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0]["key"], "wm");

    let stdin_set = Command::new(env!("CARGO_BIN_EXE_tether"))
        .args([&["state", "set", "big", "-"][..], &TI].concat())
        .env(
            "TETHER_DATABASE_URL",
            format!("sqlite://{}/tether.db", data.display()),
        )
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            child.stdin.take().unwrap().write_all(b"[1, 2, 3]\n")?;
            child.wait_with_output()
        })
        .unwrap();
    assert_eq!(code(&stdin_set), 0);

    let del = tether(&data, &[&["state", "delete", "cursor"][..], &TI].concat());
    assert_eq!(code(&del), 0);
    let gone = tether(&data, &[&["state", "get", "cursor"][..], &TI].concat());
    assert_eq!(code(&gone), 3);
    assert_eq!(
        stderr(&gone).trim(),
        "error: key \"cursor\" not found in task instance etl/manual__1/load"
    );
}

#[test]
fn exit_codes_name_what_is_wrong() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    let first = tether(
        data,
        &[&["state", "set", "k", "1", "--if-version", "0"][..], &TI].concat(),
    );
    assert_eq!(code(&first), 0, "{}", stderr(&first));

    let conflict = tether(
        data,
        &[&["state", "set", "k", "2", "--if-version", "0"][..], &TI].concat(),
    );
    assert_eq!(code(&conflict), 4);
    assert!(
        stderr(&conflict).contains("expected absent, found version 1"),
        "{}",
        stderr(&conflict)
    );

    let cases: &[(&[&str], i32, &str)] = &[
        (&["state", "set", "k", "NaN", "--asset", "a"], 2, "not JSON"),
        (
            &["state", "set", "k", "null", "--asset", "a"],
            2,
            "null cannot be stored",
        ),
        (
            &[
                "state", "set", "k", "1", "--dag", "a b", "--run", "r", "--task", "t",
            ],
            2,
            "invalid dag_id",
        ),
        (
            &["state", "set", "k", "1", "--dag", "d", "--task", "t"],
            2,
            "needs --run",
        ),
        (
            &[
                "state",
                "set",
                "k",
                "1",
                "--asset",
                "a",
                "--retention",
                "soon",
            ],
            2,
            "not a retention",
        ),
        (
            &["state", "get", "k", "--asset", "a", "--dag", "d"],
            2,
            "cannot be used with",
        ),
        (&["state", "get", "k"], 2, "give a scope"),
        (
            &["state", "get", "", "--asset", "a"],
            2,
            "invalid key: must not be empty",
        ),
        (&["state", "frobnicate"], 2, "unrecognized subcommand"),
    ];
    for (args, want, message) in cases {
        let out = tether(data, args);
        assert_eq!(code(&out), *want, "{args:?}: {}", stderr(&out));
        assert!(stderr(&out).contains(message), "{args:?}: {}", stderr(&out));
    }

    let big = "x".repeat(70_000);
    let too_big = tether(
        data,
        &["state", "set", "k", &format!("\"{big}\""), "--asset", "a"],
    );
    assert_eq!(code(&too_big), 2);
    assert!(
        stderr(&too_big).contains("value is 70002 bytes of JSON; the limit is 65535 bytes"),
        "{}",
        stderr(&too_big)
    );
}

#[test]
fn gc_reports_what_it_removed() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    for key in ["a", "b"] {
        let out = tether(
            data,
            &[&["state", "set", key, "1", "--retention", "1s"][..], &TI].concat(),
        );
        assert_eq!(code(&out), 0, "{}", stderr(&out));
    }
    let kept = tether(data, &["state", "set", "wm", "1", "--asset", "orders"]);
    assert_eq!(code(&kept), 0);
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let gc = tether(data, &["gc"]);
    assert_eq!(code(&gc), 0, "{}", stderr(&gc));
    assert!(
        stdout(&gc).starts_with("removed 2 expired keys (task_instance 2, task 0, asset 0)"),
        "{}",
        stdout(&gc)
    );
    let gc = tether(data, &["gc", "--json"]);
    let report: serde_json::Value = serde_json::from_str(&stdout(&gc)).unwrap();
    assert_eq!(report["task_instance"], 0);
    let wm = tether(data, &["state", "get", "wm", "--asset", "orders"]);
    assert_eq!(stdout(&wm), "1\n");
}

#[test]
fn clear_forget_run_and_task_scope() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    for m in ["0", "1", "2"] {
        let out = tether(
            data,
            &[&["state", "set", "k", m, "--map-index", m][..], &TI].concat(),
        );
        assert_eq!(code(&out), 0, "{}", stderr(&out));
    }
    let task = ["--dag", "etl", "--task", "load", "--task-scope"];
    assert_eq!(
        code(&tether(
            data,
            &[&["state", "set", "wm", "5"][..], &task].concat()
        )),
        0
    );
    let cleared = tether(
        data,
        &[&["state", "clear", "--all-map-indices"][..], &TI].concat(),
    );
    assert_eq!(stdout(&cleared), "removed 3 keys\n", "{}", stderr(&cleared));
    let forget = tether(
        data,
        &["state", "forget-run", "--dag", "etl", "--run", "manual__1"],
    );
    assert_eq!(stdout(&forget), "removed 0 keys\n");
    let wm = tether(data, &[&["state", "get", "wm"][..], &task].concat());
    assert_eq!(stdout(&wm), "5\n");
}

#[test]
fn bad_database_url_and_config_are_one_line_errors() {
    let out = Command::new(env!("CARGO_BIN_EXE_tether"))
        .args(["state", "list", "--asset", "a"])
        .env(
            "TETHER_DATABASE_URL",
            "postgres://bob:hunter2@127.0.0.1:1/tether",
        )
        .output()
        .unwrap();
    assert_eq!(code(&out), 1);
    let err = stderr(&out);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("postgres://bob:******@127.0.0.1:1/tether"),
        "{err}"
    );
    assert!(err.contains("refused"), "{err}");
    assert!(!err.contains("hunter2"), "{err}");

    let out = Command::new(env!("CARGO_BIN_EXE_tether"))
        .args(["migrate", "--database-url", "mysql://bob:hunter2@h/db"])
        .output()
        .unwrap();
    assert_eq!(code(&out), 2);
    assert!(
        stderr(&out).contains("mysql://bob:******@h/db"),
        "{}",
        stderr(&out)
    );
    assert!(!stderr(&out).contains("hunter2"));

    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("tether.toml");
    std::fs::write(&config, "[gc]\nschedule = \"hourly\"\nbatch_size = 0\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_tether"))
        .args(["--config", config.to_str().unwrap(), "migrate"])
        .output()
        .unwrap();
    assert_eq!(code(&out), 2);
    let err = stderr(&out);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("gc.schedule") && err.contains("gc.batch_size"),
        "{err}"
    );
}

#[test]
fn a_half_configured_provider_in_the_environment_is_an_error_not_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    let run = |vars: &[(&str, &str)]| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_tether"));
        cmd.args(["state", "list", "--asset", "a"])
            .env(
                "TETHER_DATABASE_URL",
                format!("sqlite://{}/t.db", dir.path().display()),
            )
            .env_remove("TETHER_CONFIG")
            .env_remove("DATABRICKS_TOKEN")
            .env_remove("DATABRICKS_CLIENT_SECRET");
        for (k, v) in vars {
            cmd.env(k, v);
        }
        cmd.output().unwrap()
    };
    // DATABRICKS_HOST alone (set for other tools) configures nothing.
    let out = run(&[("DATABRICKS_HOST", "https://x.cloud.databricks.com")]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    // A client id without its secret is a one-line usage error naming the field.
    let out = run(&[
        ("DATABRICKS_HOST", "https://x.cloud.databricks.com"),
        ("DATABRICKS_CLIENT_ID", "sp"),
    ]);
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    assert_eq!(stderr(&out).lines().count(), 1, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("providers.databricks.client_secret"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn the_example_configs_are_valid() {
    for file in ["config/tether.toml", "config/tether.postgres.toml"] {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(file);
        if let Err(e) = tether::config::Config::load(&path) {
            panic!("{file}: {e}");
        }
    }
}

/// The main job the README runs: the eviction story on the simulator.
#[test]
fn demo_tells_the_eviction_story() {
    let out = Command::new(env!("CARGO_BIN_EXE_tether"))
        .arg("demo")
        .env_remove("TETHER_CONFIG")
        .env_remove("TETHER_DATABASE_URL")
        .output()
        .unwrap();
    let text = stdout(&out);
    assert_eq!(code(&out), 0, "{text}\n{}", stderr(&out));
    assert!(text.contains("Reattached on try 2"), "{text}");
    assert!(
        text.contains("submissions the workspace received: 1 (tries: 2)"),
        "{text}"
    );
    assert!(
        text.contains("The retry reattached to the running job"),
        "{text}"
    );
}
