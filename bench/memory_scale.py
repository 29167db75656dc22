#!/usr/bin/env python3
"""Peak memory as the tree grows: the agent, the rclone it runs, and plain rclone, on the
same data in the same run, against a real S3 server (`rclone serve s3` on 127.0.0.1).

    python3 bench/memory_scale.py [--files 10000 100000] [--agent PATH]

For each tree size: a full upload (agent `sync-to-remote` vs `rclone sync`), an idle tick
(the same again), and a restore into an empty directory (agent `remote-to-local-sync` vs
`rclone sync` back). Prints per phase the wall time and the peak RSS of the agent process,
of the biggest rclone process it started, and of plain rclone, with the ratio of the
agent's total (itself + its rclone) to plain rclone's, and how each grows per 1,000 files.
Builds nothing: `cargo build --release -p vsc-agent` first, rclone on PATH.
"""
import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from agent_vs_rclone import make_tree  # noqa: E402
from bench_support import add_agent_argument, environments, start_s3, tools  # noqa: E402


def vm_hwm_kib(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def descendants(pid):
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            children = [int(c) for c in f.read().split()]
    except OSError:
        return []
    found = list(children)
    for child in children:
        found.extend(descendants(child))
    return found


def run_watched(argv, env):
    """Wall seconds, the process's own peak RSS and the largest peak RSS of any process it
    started (KiB; polled every 20 ms, so a child that lives shorter may be missed)."""
    log = tempfile.TemporaryFile()
    start = time.perf_counter()
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=log)
    own, child = [0], [0]
    stop = threading.Event()

    def poll():
        while not stop.is_set():
            own[0] = max(own[0], vm_hwm_kib(proc.pid))
            for pid in descendants(proc.pid):
                child[0] = max(child[0], vm_hwm_kib(pid))
            time.sleep(0.02)

    poller = threading.Thread(target=poll)
    poller.start()
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - start
    stop.set()
    poller.join()
    if os.waitstatus_to_exitcode(status) != 0:
        log.seek(0)
        sys.exit(f"{argv[0]} failed:\n{log.read().decode(errors='replace')[-3000:]}")
    log.close()
    # wait4's ru_maxrss is the largest of the process and every descendant it waited for:
    # it stands for the process itself only when it started none.
    return elapsed, own[0] if child[0] else max(own[0], usage.ru_maxrss), child[0]


def measure(agent, rclone, files, work):
    root = os.path.join(work, f"s3-{files}")
    os.makedirs(os.path.join(root, "bench"))
    data = os.path.join(work, f"data-{files}")
    make_tree(data, files, 0, 0)
    server, port = start_s3(rclone, root)
    try:
        agent_env, rclone_env = environments(work, port, rclone, f"agent-{files}.pid")
        flags = ["--create-empty-src-dirs", "--metadata"]
        steps = [
            ("upload", [agent, "sync-to-remote", "-s", data, "-d", "bench/agent"],
             [rclone, "sync", *flags, data, "remote:/bench/rclone"]),
            ("idle", [agent, "sync-to-remote", "-s", data, "-d", "bench/agent"],
             [rclone, "sync", *flags, data, "remote:/bench/rclone"]),
            ("restore", [agent, "remote-to-local-sync", "-s", "bench/agent", "-d", os.path.join(work, "restore-agent")],
             [rclone, "sync", *flags, "remote:/bench/rclone", os.path.join(work, "restore-rclone")]),
        ]
        rows = []
        for phase, agent_argv, rclone_argv in steps:
            a_time, a_own, a_child = run_watched(agent_argv, agent_env)
            r_time, r_own, _ = run_watched(rclone_argv, rclone_env)
            rows.append((files, phase, a_time, r_time, a_own, a_child, r_own))
        return rows
    finally:
        server.kill()
        server.wait()
        for path in (root, data, os.path.join(work, "restore-agent"), os.path.join(work, "restore-rclone")):
            shutil.rmtree(path, ignore_errors=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--files", type=int, nargs="+", default=[10000, 100000])
    add_agent_argument(parser)
    args = parser.parse_args()
    agent, rclone = tools(args)
    work = tempfile.mkdtemp(prefix="vsc-bench-")
    mib = lambda kib: kib / 1024  # noqa: E731
    try:
        rows = [row for files in args.files for row in measure(agent, rclone, files, work)]
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print("files    phase    agent s  rclone s  time ratio  agent MiB  its rclone MiB  plain rclone MiB  memory ratio")
    for files, phase, a_time, r_time, a_own, a_child, r_own in rows:
        print(f"{files:<8} {phase:<8} {a_time:>7.2f} {r_time:>9.2f} {a_time / r_time:>11.2f} {mib(a_own):>10.1f} {mib(a_child):>15.1f} {mib(r_own):>17.1f} {(a_own + a_child) / max(r_own, 1):>13.2f}")
    if len(args.files) >= 2:
        small, large = min(args.files), max(args.files)
        for phase in ("upload", "restore"):
            at = {row[0]: row for row in rows if row[1] == phase}
            per_k = lambda col: (at[large][col] - at[small][col]) / ((large - small) / 1000) / 1024  # noqa: E731
            print(f"{phase}: growth per 1,000 files: agent {per_k(4):.2f} MiB, its rclone {per_k(5):.2f} MiB, plain rclone {per_k(6):.2f} MiB")


if __name__ == "__main__":
    main()
