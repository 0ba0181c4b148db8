//! The edge catalog of declared providers (`kind = "http"`, see [`tether_provider::edges`]).
//! A declared API's own edges are its description's to state: `not_found_grace`,
//! `forgotten_after` and `on_forgotten` in its account table (`config/livy.toml` names Livy's
//! `livy.server.session.state-retain.sec`; `config/dbt-cloud.toml` dbt Cloud's 365 days).

use tether_provider::edges::{Edge, Edges, Topic, UNDOCUMENTED_GRACE};

/// What tether assumes of a declared API that states nothing.
pub static DECLARED: Edges = Edges {
    kind: "http",
    visible_after_create: UNDOCUMENTED_GRACE,
    forgotten_after: None,
    entries: &[
        Edge {
            topic: Topic::Consistency,
            says: "declared by the description (not_found_grace)",
            tether: "two minutes unless the description says otherwise",
            source: "the account's table",
        },
        Edge {
            topic: Topic::Retention,
            says: "declared by the description (forgotten_after): Livy keeps an ended batch livy.server.session.state-retain.sec (600 s by default); dbt Cloud keeps run history 365 days",
            tether: "a job seen and then gone is outcome_unknown",
            source: "Apache Livy LivyConf.scala; docs.getdbt.com run-visibility",
        },
        Edge {
            topic: Topic::MayHaveRun,
            says: "any 5xx, timeout or cut connection on the submit",
            tether: "the submit is sent once; a lost answer is reconciled by the declared find before anything is sent again",
            source: "the declared submit's `idempotent` flag",
        },
        Edge {
            topic: Topic::Throttling,
            says: "429 and 503, with Retry-After if given",
            tether: "not processed: waits and sends again",
            source: "RFC 9110 section 15.6.4, RFC 6585 section 4",
        },
    ],
};
