"""Airflow's own way to wait, measured: N DatabricksExecutionTrigger in one asyncio event loop.

This is what Airflow's triggerer does for N deferred Databricks tasks: one trigger per run,
each with its own aiohttp session, each calling `runs/get` and then sleeping
`polling_period_seconds`. The script submits N long-running runs to a Databricks simulator
(`tether sim databricks`), starts N triggers of apache-airflow-providers-databricks against
it, lets every trigger poll once (warm-up), then measures over a window:

- CPU-seconds per second of this process (user + system, from getrusage);
- peak RSS (VmHWM from /proc);
- provider calls per minute (from the simulator's own counters).

It prints one line per figure, in the form `tether-bench` prints its own, so that
`tether-bench --compare-airflow` can read them.

With `--end-rate R` (runs per second; `tether-bench --latency --compare-airflow`), runs end
during the window: a helper process (its CPU is not this process's) ends them at the
simulator at that rate (`POST /_sim/runs/end`, which answers each run's `end_time`); when a
run's trigger fires, the time is noted and a new run is submitted with a trigger of its own,
as the next task would defer, so that about N stay waited for. After the window no more runs
end, and the script waits until each ended run's trigger fired (or gives up); `--latency-out`
gets the end and firing times as JSON. Run it with the Python of a virtual
environment holding apache-airflow 3.3.x and apache-airflow-providers-databricks (see the
book's docs/src/performance.md).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import random
import resource
import time
import urllib.request
from typing import Any


def sim_call(base: str, path: str, body: dict[str, Any] | None = None) -> Any:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(
        f"{base}{path}",
        data=data,
        headers={
            "Authorization": "Bearer dapi-sim-token",
            "Content-Type": "application/json",
        },
        method="POST" if data is not None else "GET",
    )
    with urllib.request.urlopen(req, timeout=30) as resp:
        return json.load(resp)


def cpu_seconds() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def peak_rss_mib() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return 0.0


def end_runs(
    base: str, run_ids: list[int], rate: float, window: float, out: multiprocessing.Queue
) -> None:
    """Ends runs of `run_ids`, in a random order, at `rate` per second for `window` seconds;
    puts {run_id: end_time in ms} on `out`. Runs in a process of its own."""
    random.shuffle(run_ids)
    ends: dict[int, float] = {}
    started = time.monotonic()
    asked = 0
    while time.monotonic() - started < window:
        due = int(rate * (time.monotonic() - started))
        batch = run_ids[asked:due]
        asked = max(asked, due)
        if batch:
            answer = sim_call(base, "/_sim/runs/end", {"run_ids": batch})
            for ended in answer["ended"]:
                ends[int(ended["run_id"])] = float(ended["end_time"])
        time.sleep(0.1)
    out.put(ends)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--sim", required=True, help="the simulator's URL, http://127.0.0.1:PORT"
    )
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument(
        "--cadence", type=float, default=30.0, help="polling_period_seconds"
    )
    parser.add_argument("--window", type=float, default=60.0, help="seconds measured")
    parser.add_argument(
        "--end-rate",
        type=float,
        default=0.0,
        help="runs ended per second during the window (0: none end)",
    )
    parser.add_argument(
        "--latency-out", help="with --end-rate: write the end and firing times here (JSON)"
    )
    parser.add_argument(
        "--out",
        help="also write the figures to this file (the triggers log to stdout, as in the triggerer)",
    )
    return parser.parse_args()


async def measure(args: argparse.Namespace) -> list[str]:
    host, port = args.sim.removeprefix("http://").split(":")
    os.environ["AIRFLOW_CONN_DATABRICKS_DEFAULT"] = json.dumps(
        {
            "conn_type": "databricks",
            "host": host,
            "port": int(port),
            "schema": "http",
            "password": "dapi-sim-token",
        }
    )
    # Imported after the connection is set, as the triggerer would have it.
    from airflow.providers.databricks.triggers.databricks import (
        DatabricksExecutionTrigger,
    )

    run_ids = []
    for i in range(args.runs):
        run = sim_call(
            args.sim,
            "/api/2.1/jobs/runs/submit",
            {
                "run_name": f"airflow-bench-{i}",
                "tasks": [{"task_key": "t", "notebook_task": {"notebook_path": "/b"}}],
            },
        )
        run_ids.append(run["run_id"])
    print(
        f"airflow triggers: {args.runs} DatabricksExecutionTrigger in one asyncio loop, "
        f"polling_period_seconds {args.cadence:g}, window {args.window:g}s",
        flush=True,
    )

    fired: dict[int, float] = {}
    tasks: set[asyncio.Task[None]] = set()
    replaced = 0

    async def follow(run_id: int, start_after: float) -> None:
        # Spread over one cadence, as tasks defer one after another (all at once would
        # measure a thundering herd, not the steady state).
        nonlocal replaced
        await asyncio.sleep(start_after)
        trigger = DatabricksExecutionTrigger(
            run_id=run_id,
            databricks_conn_id="databricks_default",
            polling_period_seconds=int(args.cadence),
        )
        async for _event in trigger.run():
            fired[run_id] = time.time() * 1000
            break
        if args.end_rate > 0:
            # The next task defers: a new run and its trigger.
            replaced += 1
            run = await asyncio.to_thread(
                sim_call,
                args.sim,
                "/api/2.1/jobs/runs/submit",
                {
                    "run_name": f"airflow-bench-new-{replaced}",
                    "tasks": [{"task_key": "t", "notebook_task": {"notebook_path": "/b"}}],
                },
            )
            start(run["run_id"], 0.0)

    def start(run_id: int, start_after: float) -> None:
        task = asyncio.create_task(follow(run_id, start_after))
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    spread = args.cadence / max(len(run_ids), 1)
    for i, r in enumerate(run_ids):
        start(r, i * spread)
    # Warm-up: every trigger has started and polled once.
    await asyncio.sleep(args.cadence + 5.0)
    before = sim_call(args.sim, "/_sim/stats")
    ender = None
    if args.end_rate > 0:
        ends_queue: multiprocessing.Queue = multiprocessing.Queue()
        ender = multiprocessing.get_context("fork").Process(
            target=end_runs,
            args=(args.sim, list(run_ids), args.end_rate, args.window, ends_queue),
        )
        ender.start()
    cpu0, t0 = cpu_seconds(), time.monotonic()
    await asyncio.sleep(args.window)
    elapsed = time.monotonic() - t0
    cpu = cpu_seconds() - cpu0
    after = sim_call(args.sim, "/_sim/stats")
    calls = after["requests"] - before["requests"]
    gets = after["get_requests"] - before["get_requests"]
    lists = after["list_requests"] - before["list_requests"]
    submits = after["submit_requests"] - before["submit_requests"]
    lines = [
        f"airflow CPU: {cpu / elapsed:.4f} CPU-s/s",
        f"airflow peak RSS: {peak_rss_mib():.1f} MiB",
        (
            f"airflow provider calls: {calls * 60 / elapsed:.0f} per minute "
            f"({gets * 60 / elapsed:.0f} runs/get)"
        ),
    ]
    if ender is not None:
        ends = await asyncio.to_thread(ends_queue.get)
        await asyncio.to_thread(ender.join)
        # Every ended run's trigger fires within a cadence or two: wait for them.
        deadline = time.monotonic() + 4 * args.cadence + 60
        while time.monotonic() < deadline and not all(r in fired for r in ends):
            await asyncio.sleep(0.2)
        if args.latency_out:
            with open(args.latency_out, "w") as f:
                json.dump(
                    {
                        "cpu": cpu / elapsed,
                        "rss_mib": peak_rss_mib(),
                        "calls_per_minute": calls * 60 / elapsed,
                        "gets_per_minute": gets * 60 / elapsed,
                        "lists_per_minute": lists * 60 / elapsed,
                        "submits_per_minute": submits * 60 / elapsed,
                        "ends": {str(k): v for k, v in ends.items()},
                        "fired": {str(k): v for k, v in fired.items() if k in ends},
                    },
                    f,
                )
    for t in list(tasks):
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    return lines


def main() -> None:
    lines = asyncio.run(measure(parse_args()))
    print("\n".join(lines), flush=True)
    args = parse_args()
    if args.out:
        with open(args.out, "w") as f:
            f.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
