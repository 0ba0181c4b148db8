//! Prometheus metrics: what the engine, the state store and the API count, in one registry.
//!
//! Counters and histograms are process-wide statics registered on first use; gauges that
//! describe the database (jobs by state and provider) are computed when `/metrics` is read.

use std::sync::LazyLock;

use prometheus::{
    Encoder, Gauge, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry, TextEncoder,
};

/// The registry `/metrics` renders.
pub static REGISTRY: LazyLock<Registry> = LazyLock::new(Registry::new);

fn counter(name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    let c = IntCounterVec::new(Opts::new(name, help), labels).expect("valid metric");
    REGISTRY
        .register(Box::new(c.clone()))
        .expect("registered once");
    c
}

fn histogram(name: &str, help: &str, labels: &[&str]) -> HistogramVec {
    let h = HistogramVec::new(
        HistogramOpts::new(name, help).buckets(vec![
            0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
        ]),
        labels,
    )
    .expect("valid metric");
    REGISTRY
        .register(Box::new(h.clone()))
        .expect("registered once");
    h
}

/// Status polls, by provider and outcome (`ok`, `transient`, `permanent`, `not_found`, or
/// `listed`: answered by a coalesced sweep, without a call of its own).
pub static POLLS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    counter(
        "tether_polls_total",
        "Status polls by provider and outcome",
        &["provider", "outcome"],
    )
});

/// Provider calls made by coalesced sweeps (list calls answering for many jobs).
pub static SWEEP_CALLS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    counter(
        "tether_sweep_calls_total",
        "Provider list calls made by coalesced polling sweeps, by provider",
        &["provider"],
    )
});

/// Provider events, by source and what became of them: `matched` (a job of the source's
/// accounts was marked due now), `known` (its job already records the state it reports),
/// `unmatched` (about a job tether does not track, or no longer
/// active), `foreign` (not about a job of tether's kinds), `unreadable`.
pub static EVENTS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    counter(
        "tether_events_total",
        "Provider events received, by source and outcome (matched, known, unmatched, foreign, unreadable)",
        &["source", "outcome"],
    )
});

/// Calls to the event sources themselves (an SQS queue's `ReceiveMessage` and
/// `DeleteMessageBatch`), by source and call (`receive`, `acknowledge`): what events cost in
/// calls beside the providers' own.
pub static EVENT_SOURCE_CALLS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    counter(
        "tether_event_source_calls_total",
        "Calls to the provider event sources, by source and call (receive, acknowledge)",
        &["source", "call"],
    )
});

/// Seconds from a provider event's own time to the job being marked due now, by source.
pub static EVENT_LAG: LazyLock<HistogramVec> = LazyLock::new(|| {
    let h = HistogramVec::new(
        HistogramOpts::new(
            "tether_event_lag_seconds",
            "Seconds from a provider event's time to its job being marked due, by source",
        )
        .buckets(vec![0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0]),
        &["source"],
    )
    .expect("valid metric");
    REGISTRY
        .register(Box::new(h.clone()))
        .expect("registered once");
    h
});

/// Provider errors, by provider, call and kind.
pub static PROVIDER_ERRORS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    counter(
        "tether_provider_errors_total",
        "Provider call failures by provider, call and kind",
        &["provider", "call", "kind"],
    )
});

/// Calls that waited for the provider account's rate limiter.
pub static RATE_LIMIT_WAITS: LazyLock<IntGaugeVec> = LazyLock::new(|| {
    let g = IntGaugeVec::new(
        Opts::new(
            "tether_rate_limit_waits",
            "Provider calls that waited for the rate limiter (since start)",
        ),
        &["provider"],
    )
    .expect("valid metric");
    REGISTRY
        .register(Box::new(g.clone()))
        .expect("registered once");
    g
});

/// Remote jobs found carrying the key of a job tether already tracks (duplicate
/// submissions), by provider. Each one is also recorded on its job and in its event log.
pub static DUPLICATES: LazyLock<IntCounterVec> = LazyLock::new(|| {
    counter(
        "tether_duplicate_submissions_total",
        "Remote jobs found with the idempotency key of a job tether already tracks",
        &["provider"],
    )
});

/// Jobs that ended `outcome_unknown` (the provider forgot them after it had reported them,
/// before tether read their end), by provider: each waits for a person (`tether jobs resolve`).
pub static OUTCOME_UNKNOWN: LazyLock<IntCounterVec> = LazyLock::new(|| {
    counter(
        "tether_jobs_outcome_unknown_total",
        "Jobs the provider forgot after reporting them, before tether read their end",
        &["provider"],
    )
});

/// Lease events: `claimed`, `lost`, `released`.
pub static LEASES: LazyLock<IntCounterVec> = LazyLock::new(|| {
    counter(
        "tether_leases_total",
        "Job leases claimed, lost and released",
        &["event"],
    )
});

/// Database failures that passed (answered 503 or retried), by reason: `unreachable`,
/// `no_connection`, `disk_full`, `storage`, `busy`.
pub static DB_UNAVAILABLE: LazyLock<IntCounterVec> = LazyLock::new(|| {
    counter(
        "tether_database_unavailable_total",
        "Requests that found the database unavailable (answered 503), by reason",
        &["reason"],
    )
});

/// This process's clock minus the database's, in seconds, as last measured (see
/// `engine::clock`).
pub static CLOCK_SKEW: LazyLock<Gauge> = LazyLock::new(|| {
    let g = Gauge::new(
        "tether_clock_skew_seconds",
        "This process's clock minus the database's, as measured at the last heartbeat",
    )
    .expect("valid metric");
    REGISTRY
        .register(Box::new(g.clone()))
        .expect("registered once");
    g
});

/// Long polls (`/v1/jobs/{id}/wait`, `/v1/jobs/wait`) open now, and those refused (429) since
/// start because too many were.
pub static WAITS_IN_FLIGHT: LazyLock<IntGauge> = LazyLock::new(|| {
    let g = IntGauge::new(
        "tether_api_waits_in_flight",
        "Long polls open now (api.max_waits caps them)",
    )
    .expect("valid metric");
    REGISTRY
        .register(Box::new(g.clone()))
        .expect("registered once");
    g
});

/// Long polls refused (429) because too many were open, in total or with one token.
pub static WAITS_REFUSED: LazyLock<IntCounterVec> = LazyLock::new(|| {
    counter(
        "tether_api_waits_refused_total",
        "Long polls refused (429): too many open, in total or with one token",
        &["limit"],
    )
});

/// Task-state operations by operation and result.
pub static STATE_OPS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    counter(
        "tether_state_operations_total",
        "Task-state operations by operation and result",
        &["op", "result"],
    )
});

/// Task-state operation latency.
pub static STATE_LATENCY: LazyLock<HistogramVec> = LazyLock::new(|| {
    histogram(
        "tether_state_operation_seconds",
        "Task-state operation latency",
        &["op"],
    )
});

/// HTTP request latency by route and status.
pub static HTTP_LATENCY: LazyLock<HistogramVec> = LazyLock::new(|| {
    histogram(
        "tether_http_request_seconds",
        "HTTP request latency by route and status",
        &["route", "status"],
    )
});

/// Jobs by state and provider (set when `/metrics` is read).
pub static JOBS: LazyLock<IntGaugeVec> = LazyLock::new(|| {
    let g = IntGaugeVec::new(
        Opts::new("tether_jobs", "Jobs by state and provider"),
        &["state", "provider"],
    )
    .expect("valid metric");
    REGISTRY
        .register(Box::new(g.clone()))
        .expect("registered once");
    g
});

/// Makes sure every static is registered, so that `/metrics` lists each family from the start.
pub fn init() {
    LazyLock::force(&POLLS);
    LazyLock::force(&PROVIDER_ERRORS);
    LazyLock::force(&SWEEP_CALLS);
    LazyLock::force(&EVENTS);
    LazyLock::force(&EVENT_SOURCE_CALLS);
    LazyLock::force(&EVENT_LAG);
    LazyLock::force(&RATE_LIMIT_WAITS);
    LazyLock::force(&LEASES);
    LazyLock::force(&DUPLICATES);
    LazyLock::force(&OUTCOME_UNKNOWN);
    LazyLock::force(&DB_UNAVAILABLE);
    LazyLock::force(&CLOCK_SKEW);
    LazyLock::force(&STATE_OPS);
    LazyLock::force(&STATE_LATENCY);
    LazyLock::force(&HTTP_LATENCY);
    LazyLock::force(&JOBS);
    LazyLock::force(&WAITS_IN_FLIGHT);
    LazyLock::force(&WAITS_REFUSED);
}

/// The registry in Prometheus' text format.
pub fn render() -> String {
    let mut buf = Vec::new();
    TextEncoder::new()
        .encode(&REGISTRY.gather(), &mut buf)
        .expect("text encoding cannot fail");
    String::from_utf8(buf).expect("prometheus text is UTF-8")
}

/// Times a task-state operation and counts its result.
pub fn observe_state<T, E>(op: &'static str, started: std::time::Instant, result: &Result<T, E>) {
    STATE_LATENCY
        .with_label_values(&[op])
        .observe(started.elapsed().as_secs_f64());
    STATE_OPS
        .with_label_values(&[op, if result.is_ok() { "ok" } else { "error" }])
        .inc();
}
