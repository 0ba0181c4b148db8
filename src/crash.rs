//! Crash points: the named places where the crash tests make a process die, as a machine
//! failure would, to prove that tether loses nothing there.
//!
//! Built on the `fail` crate, and compiled in only with the `failpoints` feature, which the
//! test build turns on (the dev-dependency of this package on itself); a binary built by
//! `cargo build` or `cargo run`, and so every release build, has none: [`crash_point`] is an
//! empty function there and no environment variable can reach it (`.ci/run` checks that the
//! names are absent from such a binary).
//!
//! In a test build, `FAILPOINTS=<point>=return` (the `fail` crate's syntax; `;` separates
//! several) makes the process SIGKILL itself when it reaches `<point>`. Other actions of the
//! crate (`sleep(ms)`, `pause`, `1*return`, ...) work too.

/// Every crash point, in the order a job meets them. The crash tests go through this list.
pub const POINTS: &[&str] = &[
    // `ensure`: before the write-ahead intent is committed (nothing recorded yet).
    "before_intent",
    // `ensure`: the intent is committed; the provider has not been called.
    "after_intent",
    // `ensure`: the provider accepted the submission; its handle is not recorded.
    "after_submit",
    // a poll saw a terminal state; it is not recorded yet.
    "before_terminal_record",
    // the supervisor is renewing its leases (its group lease renewed, or `tether run`'s own not
    // yet; the leases held not yet compared with the database's).
    "during_renewal",
    // the supervisor claimed leases; it has not polled the jobs.
    "during_claim",
    // an explicit cancel is recorded; the provider has not been asked.
    "after_cancel_recorded",
    // the garbage collector deleted one batch; more are due.
    "during_gc",
];

/// Dies here (SIGKILL) if the test that started this process asked for it; nothing in a
/// build without the `failpoints` feature.
#[cfg(feature = "failpoints")]
pub fn crash_point(point: &'static str) {
    debug_assert!(POINTS.contains(&point), "unlisted crash point {point}");
    fail::fail_point!(point, |_| {
        tracing::error!(point, "crash point reached: killing this process (SIGKILL)");
        let _ = nix::sys::signal::kill(nix::unistd::Pid::this(), nix::sys::signal::Signal::SIGKILL);
    });
}

/// Dies here (SIGKILL) if the test that started this process asked for it; nothing in a
/// build without the `failpoints` feature.
#[cfg(not(feature = "failpoints"))]
#[inline(always)]
pub fn crash_point(_point: &'static str) {}

/// Reads `FAILPOINTS` once at start-up (test builds only). The returned guard lives as long
/// as the process.
#[cfg(feature = "failpoints")]
pub fn setup() -> Option<fail::FailScenario<'static>> {
    Some(fail::FailScenario::setup())
}

/// Reads `FAILPOINTS` once at start-up (test builds only). The returned guard lives as long
/// as the process.
#[cfg(not(feature = "failpoints"))]
pub fn setup() -> Option<()> {
    None
}
