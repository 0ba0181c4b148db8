"""What N deferred tasks cost Airflow's triggerer: through tether, and through Airflow's own
Databricks trigger, side by side on one real Airflow 3.3.2 deployment.

    cd clients/python
    TETHER_BIN=/path/to/tether $VENV/bin/python -m tests.deployment.triggerer_cost --tasks 200

One deployment (``harness.py``: API server, scheduler, DAG processor, triggerer, LocalExecutor;
``tether serve`` on SQLite) and two Databricks simulators whose runs last an hour: one behind
tether, one behind Airflow's ``databricks_default`` connection. For each side in turn:

1. a fresh triggerer is started on an empty trigger table and left until its RSS is steady;
   its process tree's RSS is the baseline;
2. N mapped deferred tasks are started (``cost_tether``: ``TetherJobOperator(deferrable=True)``;
   ``cost_airflow``: ``DatabricksSubmitRunOperator(deferrable=True)``) and waited for until
   all N are deferred and every trigger has had a poll period to start polling;
3. over a window: the triggerer tree's CPU-seconds per second, its RSS (and PSS) added to the
   baseline, and the provider calls per minute the side's simulator counted; for the tether
   side also ``tether serve``'s CPU and RSS, since it does the polling there;
4. the triggerer is stopped and the tasks are marked failed (no trigger runs, so nothing is
   cancelled), so that the other side starts from an empty triggerer.

Both sides poll every ``--cadence`` seconds (tether's ``poll_initial`` = ``poll_max``; the
operator's ``polling_period_seconds``). Figures are printed one per line, then the ratios;
nothing is asserted. RSS is the sum over the triggerer's processes (``airflow triggerer``
and its trigger runner), read from ``/proc``.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import psutil

from ..conftest import tether_bin
from .harness import Account, Deployment, Sim, deploy, eventually

BENCH_DAGS = Path(__file__).parent / "bench_dags"


@dataclass(frozen=True)
class Tree:
    """A process tree at one moment: CPU-seconds (user + system), RSS and PSS in MiB."""

    cpu: float
    rss: float
    pss: float


def tree(pid: int) -> Tree:
    cpu = rss = pss = 0.0
    root = psutil.Process(pid)
    for p in [root, *root.children(recursive=True)]:
        try:
            times = p.cpu_times()
            memory = p.memory_full_info()
        except psutil.NoSuchProcess:
            continue
        cpu += times.user + times.system
        rss += memory.rss / 2**20
        pss += memory.pss / 2**20
    return Tree(cpu, rss, pss)


@dataclass(frozen=True)
class Side:
    name: str
    dag_id: str
    task_id: str
    sim: str


@dataclass(frozen=True)
class Figures:
    cpu_per_s: float
    rss_added: float
    pss_added: float
    rss_baseline: float
    calls_per_min: float
    serve_cpu_per_s: float
    serve_rss: float


def at_rest(d: Deployment) -> int:
    """Starts a fresh triggerer on an empty trigger table and returns its pid once its RSS is
    steady. The last side's triggers (their tasks marked failed) are first removed by a
    triggerer of their own (``clean_unused``), which is then replaced, so that the measured
    one never loaded any trigger class."""
    if "triggerer" in d.processes:
        d.stop("triggerer")
    if d.metadata("SELECT count(*) FROM trigger"):
        d.airflow("triggerer")
        eventually(
            "the last side's triggers removed",
            lambda: d.metadata("SELECT count(*) FROM trigger") == 0,
            limit=300,
        )
        d.stop("triggerer")
    d.airflow("triggerer")
    pid = d.processes["triggerer"].pid
    time.sleep(20)  # imports, the trigger runner, the first heartbeat
    last = [tree(pid).rss]

    def steady() -> bool:
        time.sleep(5)
        now = tree(pid).rss
        steady = abs(now - last[0]) < 1.0
        last[0] = now
        return steady

    eventually("the triggerer at rest", steady, limit=120)
    return pid


def processes(pid: int) -> str:
    """Each process of the tree and its RSS: where the memory sits."""
    root = psutil.Process(pid)
    parts = []
    for p in [root, *root.children(recursive=True)]:
        with contextlib.suppress(psutil.NoSuchProcess):
            name = " ".join(p.cmdline()[1:3]) or p.name()
            parts.append(f"{p.pid} ({name}) {p.memory_info().rss / 2**20:.1f} MiB")
    return ", ".join(parts)


def measure(d: Deployment, side: Side, tasks: int, cadence: float, window: float) -> Figures:
    triggerer = at_rest(d)
    baseline = tree(triggerer)
    print(f"{side.name}: triggerer at rest: {processes(triggerer)}", flush=True)
    started = time.monotonic()
    d.trigger(side.dag_id, "r1")

    def all_deferred() -> bool:
        tis = d.tis(side.dag_id, "r1")
        failed = [ti["map_index"] for ti in tis if ti["state"] == "failed"]
        if failed:
            raise AssertionError(f"{side.name}: tasks {failed} failed (see the task logs)")
        return len(tis) == tasks and all(ti["state"] == "deferred" for ti in tis)

    eventually(f"{tasks} deferred {side.name} tasks", all_deferred, limit=1800)
    print(f"{side.name}: {tasks} tasks deferred in {time.monotonic() - started:.0f} s", flush=True)
    time.sleep(cadence + 5)  # every trigger has polled (or long-polled) once
    serve = psutil.Process(d.processes["tether"].pid)
    before, calls_before = tree(triggerer), d.sim(side.sim)["requests"]
    serve_before = serve.cpu_times()
    time.sleep(window)
    after, calls_after = tree(triggerer), d.sim(side.sim)["requests"]
    serve_after = serve.cpu_times()
    print(f"{side.name}: triggerer with {tasks} triggers: {processes(triggerer)}", flush=True)
    figures = Figures(
        cpu_per_s=(after.cpu - before.cpu) / window,
        rss_added=after.rss - baseline.rss,
        pss_added=after.pss - baseline.pss,
        rss_baseline=baseline.rss,
        calls_per_min=(calls_after - calls_before) * 60 / window,
        serve_cpu_per_s=(
            serve_after.user + serve_after.system - serve_before.user - serve_before.system
        )
        / window,
        serve_rss=serve.memory_info().rss / 2**20,
    )
    # Stop the triggerer first: marking the tasks failed then runs no trigger's on_kill, so
    # nothing is cancelled and the next side starts from an empty triggerer.
    d.stop("triggerer")
    path = f"/dags/{side.dag_id}/dagRuns/r1/taskInstances/{side.task_id}"
    d.api("PATCH", path, {"new_state": "failed"})
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=200, help="deferred tasks per side")
    parser.add_argument("--cadence", type=int, default=30, help="polling period, seconds")
    parser.add_argument("--window", type=float, default=120.0, help="seconds measured per side")
    parser.add_argument(
        "--postgres",
        default=os.environ.get(
            "TETHER_TEST_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/postgres"
        ),
        help="a PostgreSQL admin URL: Airflow's metadata goes to a database created there",
    )
    args = parser.parse_args()
    # SIGTERM (a CI time-out, say) stops the deployment on the way out, as Ctrl-C does.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    os.environ["TETHER_BENCH_TASKS"] = str(args.tasks)
    os.environ["TETHER_BENCH_CADENCE"] = str(args.cadence)
    cadence = f"{args.cadence}s"
    sides = [
        Side("tether", "cost_tether", "job", "behind_tether"),
        Side("airflow", "cost_airflow", "submit", "behind_airflow"),
    ]
    print(
        f"triggerer benchmark: {args.tasks} deferred tasks per side, polled every "
        f"{args.cadence} s, measured over {args.window:.0f} s",
        flush=True,
    )
    with (
        tempfile.TemporaryDirectory(prefix="tether-triggerer-cost-") as folder,
        deploy(
            args.postgres,
            Path(folder),
            tether_bin(),
            dags=BENCH_DAGS,
            sims={
                "behind_tether": Sim(pending="1s", running="3600s"),
                "behind_airflow": Sim(pending="1s", running="3600s"),
            },
            accounts={"databricks": Account("behind_tether", cadence, cadence)},
            airflow_databricks_sim="behind_airflow",
            max_wait="60s",
        ) as d,
    ):
        figures = {
            side.name: measure(d, side, args.tasks, args.cadence, args.window) for side in sides
        }
    t, a = figures["tether"], figures["airflow"]
    for name, f in figures.items():
        print(f"{name}: triggerer CPU {f.cpu_per_s:.4f} CPU-s/s")
        print(
            f"{name}: triggerer RSS added {f.rss_added:.1f} MiB (PSS {f.pss_added:.1f} MiB) "
            f"over a baseline of {f.rss_baseline:.1f} MiB"
        )
        print(f"{name}: provider calls {f.calls_per_min:.1f}/min")
    print(f"tether: tether serve CPU {t.serve_cpu_per_s:.4f} CPU-s/s, RSS {t.serve_rss:.1f} MiB")
    print(f"ratio (Airflow / tether): triggerer CPU {ratio(a.cpu_per_s, t.cpu_per_s)}")
    print(f"ratio (Airflow / tether): triggerer RSS added {ratio(a.rss_added, t.rss_added)}")
    print(f"ratio (Airflow / tether): provider calls {ratio(a.calls_per_min, t.calls_per_min)}")


def ratio(theirs: float, ours: float) -> str:
    return f"{theirs / ours:.1f}x" if ours > 0 else "n/a (tether's figure is 0)"


if __name__ == "__main__":
    main()
