//! The conformance suite against every provider kind of the registry with a simulator: each
//! scenario of `tether_testkit`, run for each kind in turn (and for `http`, once per example
//! API: Livy and dbt Cloud).

use std::time::Duration;

use tether_testkit::{capture_logs, kinds, targets, Subject};

/// Runs `scenario` against a fresh simulator of every kind, four kinds at a time (each its own
/// simulator and adapter; the scenarios mostly wait on the simulators' clocks); jobs run for
/// `running` unless the scenario moves them itself.
macro_rules! for_every_kind {
    ($name:ident, $running:expr) => {
        #[tokio::test]
        async fn $name() {
            use futures_util::StreamExt as _;
            capture_logs();
            let kinds = kinds();
            assert!(kinds.len() >= 13, "the registry's simulators: {kinds:?}");
            futures_util::stream::iter(targets())
                .for_each_concurrent(AT_ONCE, |(kind, api)| async move {
                    eprintln!("{}: {kind} {}", stringify!($name), api.unwrap_or_default());
                    let subject =
                        Subject::start_api(kind, api, Duration::from_millis(100), $running).await;
                    tether_testkit::$name(&subject).await;
                })
                .await;
        }
    };
}

/// Kinds a scenario runs against at once.
const AT_ONCE: usize = 4;

for_every_kind!(submit_and_deduplicate, Duration::from_secs(600));
for_every_kind!(documented_states, Duration::from_secs(600));
for_every_kind!(unknown_states_are_never_final, Duration::from_secs(600));
for_every_kind!(lost_submit_answer, Duration::from_secs(600));
for_every_kind!(cancel, Duration::from_secs(600));
for_every_kind!(lost_cancel_answer, Duration::from_secs(600));
for_every_kind!(coalesced_sweep, Duration::from_secs(600));
for_every_kind!(throttling, Duration::from_secs(600));
for_every_kind!(not_found, Duration::from_secs(600));
for_every_kind!(secrets_stay_out, Duration::from_secs(600));
for_every_kind!(new_job_reads_as_documented, Duration::from_secs(600));

/// Runs an edge scenario against every target, on SQLite and on PostgreSQL.
macro_rules! for_every_kind_on_both_backends {
    ($name:ident) => {
        mod $name {
            use tether_testkit::{capture_logs, for_every_target, Backend};

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                capture_logs();
                for_every_target(Backend::Sqlite, |target, db| {
                    tether_testkit::$name(target, db)
                })
                .await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                capture_logs();
                for_every_target(Backend::Postgres, |target, db| {
                    tether_testkit::$name(target, db)
                })
                .await;
            }
        }
    };
}

for_every_kind_on_both_backends!(key_namespaces);
for_every_kind_on_both_backends!(invisible_after_create);
for_every_kind_on_both_backends!(cancel_while_invisible);
for_every_kind_on_both_backends!(lost_answer_while_invisible);
for_every_kind_on_both_backends!(forgotten_after_end);
