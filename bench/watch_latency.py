#!/usr/bin/env python3
"""`--watch`: how long a change takes to reach the remote, and how many syncs a burst costs,
against a real S3 server (`rclone serve s3` on 127.0.0.1).

    python3 bench/watch_latency.py [--changes 20] [--files 1000] [--burst 50] [--agent PATH]

Starts `sync-to-remote --watch` on a tree of `--files` small files, then `--changes` times
writes one new file and waits until the S3 server has stored it: prints p50 / p95 of
change -> on the remote, beside the agent's settle time (1 s of quiet). Then writes `--burst`
files at once and counts the syncs the agent ran for them (goal: one per burst).
"""
import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from agent_vs_rclone import make_tree  # noqa: E402
from bench_support import add_agent_argument, environments, start_s3, tools  # noqa: E402

SETTLE_SECONDS = 1.0


def wait_for(path, limit):
    deadline = time.perf_counter() + limit
    while time.perf_counter() < deadline:
        if os.path.exists(path):
            return True
        time.sleep(0.005)
    return False


def finished_syncs(log_path):
    with open(log_path, errors="replace") as f:
        return f.read().count("sync finished")


def wait_quiet(log_path, seconds):
    """Waits until the agent's log has not grown for `seconds`."""
    size, since = -1, time.perf_counter()
    while time.perf_counter() - since < seconds:
        now = os.path.getsize(log_path)
        if now != size:
            size, since = now, time.perf_counter()
        time.sleep(0.05)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--changes", type=int, default=20)
    parser.add_argument("--files", type=int, default=1000)
    parser.add_argument("--burst", type=int, default=50)
    add_agent_argument(parser)
    args = parser.parse_args()
    agent, rclone = tools(args)
    work = tempfile.mkdtemp(prefix="vsc-bench-")
    root = os.path.join(work, "s3")
    os.makedirs(os.path.join(root, "bench"))
    data = os.path.join(work, "data")
    make_tree(data, args.files, 0, 0)
    server, port = start_s3(rclone, root)
    log_path = os.path.join(work, "agent.log")
    env, _ = environments(work, port, rclone)
    with open(log_path, "w") as log:
        watcher = subprocess.Popen([agent, "sync-to-remote", "--watch", "-s", data, "-d", "bench/watched"],
                                   env=env, stdout=log, stderr=log)
    try:
        stored = os.path.join(root, "bench", "watched")
        if not wait_for(os.path.join(stored, "dir000", "file00000.txt"), 300):
            sys.exit("the first upload never arrived")
        wait_quiet(log_path, 2.0)
        latencies = []
        for i in range(args.changes):
            name = f"changed-{i}.txt"
            started = time.perf_counter()
            with open(os.path.join(data, name), "w") as f:
                f.write(f"change {i}\n")
            if not wait_for(os.path.join(stored, name), 60):
                sys.exit(f"{name} never reached the remote")
            latencies.append(time.perf_counter() - started)
            wait_quiet(log_path, 1.5)
        before = finished_syncs(log_path)
        for i in range(args.burst):
            with open(os.path.join(data, f"burst-{i}.txt"), "w") as f:
                f.write(f"burst {i}\n")
        if not wait_for(os.path.join(stored, f"burst-{args.burst - 1}.txt"), 120):
            sys.exit("the burst never reached the remote")
        wait_quiet(log_path, 3.0)
        burst_syncs = finished_syncs(log_path) - before
    finally:
        watcher.terminate()
        watcher.wait()
        server.kill()
        server.wait()
        shutil.rmtree(work, ignore_errors=True)
    latencies.sort()
    p95 = latencies[min(len(latencies) - 1, round(0.95 * (len(latencies) - 1)))]
    print(f"tree of {args.files} files, {args.changes} single-file changes, rclone serve s3 on 127.0.0.1")
    print(f"change -> on the remote: p50 {statistics.median(latencies):.2f} s, p95 {p95:.2f} s "
          f"(settle {SETTLE_SECONDS:.0f} s; goal: settle + 1 s at p50)")
    print(f"a burst of {args.burst} new files: {burst_syncs} sync(s) (goal: 1)")


if __name__ == "__main__":
    main()
