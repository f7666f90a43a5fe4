"""Does the Dask worker's statistical profiler (every 10 ms by default) explain the sharded embed's CPU overhead?

Run: nice -n 5 .venv/bin/python research/dask_profiler_overhead.py [--clips 600]
Two LocalClusters (2 workers, 1 thread each), profiler on and off, each warmed by one run; then runs
alternate. Prints clips per CPU second of the worker processes plus this process.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

from embed_executors import make_clips, timed  # noqa: E402


def main() -> None:
    import dask
    from distributed import Client, LocalCluster

    parser = argparse.ArgumentParser()
    parser.add_argument("--clips", type=int, default=600)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        manifest = make_clips(Path(tmp) / "clips", args.clips)
        for profile in (True, False):
            with dask.config.set({"distributed.worker.profile.enabled": profile}), \
                    LocalCluster(n_workers=2, threads_per_worker=1, dashboard_address=None) as cluster, \
                    Client(cluster) as client:
                pids = list(client.run(os.getpid).values())
                timed(manifest, Path(tmp) / f"warm-{profile}", cluster.scheduler_address, pids)
                for r in range(args.rounds):
                    row = timed(manifest, Path(tmp) / f"{profile}-{r}", cluster.scheduler_address, pids)
                    print(f"profiler {'on ' if profile else 'off'} clips/cpu s {row['clips_per_cpu_s']:>7} "
                          f"clips/s {row['clips_per_s']:>7} load {row['load_avg_1min_before']}", flush=True)
        local = [timed(manifest, Path(tmp) / f"local-{r}", "local", []) for r in range(args.rounds)]
        for row in local:
            print(f"local        clips/cpu s {row['clips_per_cpu_s']:>7} clips/s {row['clips_per_s']:>7} "
                  f"load {row['load_avg_1min_before']}")


if __name__ == "__main__":
    main()
