#!/usr/bin/env python3
"""Agent vs plain rclone on the same data, in the same run, against a real S3 server.

    python3 bench/agent_vs_rclone.py [--rounds 5] [--small-files 10000] [--large-files 3] [--large-mib 32]

Builds nothing: pass --agent (default: target/release/volume-syncing-controller, built by
`cargo build --release -p vsc-agent`). Needs rclone on PATH (tools/install-test-tools.sh).
Starts `rclone serve s3` on 127.0.0.1, makes a tree of small files plus a few large ones,
then per round times, alternating who goes first:
  upload     agent `sync-to-remote`           vs `rclone sync --create-empty-src-dirs --metadata`
  no-change  the same again (the sidecar's periodic case: nothing to transfer)
  one-change the same after one file was rewritten
  full-sync  the agent's periodic full sync of the unchanged tree (--full-sync-interval)
             vs the same plain sync again
  restore    agent `remote-to-local-sync`     vs `rclone sync ... remote -> local`
and prints medians, the agent/rclone ratio, and peak RSS of the agent process itself beside
rclone's. Then one more round, untimed, with `RCLONE_DUMP=headers`, counts the HTTP
requests each side sent per phase (exact: every request rclone makes is dumped). Timings on
a shared machine are noisy: read the medians and the ratio.
"""
import argparse
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_support import add_agent_argument, environments, start_s3, tools  # noqa: E402


def make_tree(root, small, large, large_mib):
    rng = random.Random(42)
    for i in range(small):
        d = os.path.join(root, f"dir{i % 100:03d}")
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, f"file{i:05d}.txt"), "wb") as f:
            f.write(rng.randbytes(rng.randint(200, 4096)))
    for i in range(large):
        with open(os.path.join(root, f"large{i}.bin"), "wb") as f:
            for _ in range(large_mib):
                f.write(rng.randbytes(1024 * 1024))


def rewrite_one_file(data, who, round_no):
    """A change for the one-change phase: one small file rewritten (a new size, new bytes)."""
    path = os.path.join(data, "dir000", "file00000.txt")
    with open(path, "wb") as f:
        f.write(f"changed for {who} in round {round_no}\n".encode() * (round_no + 2))


def run_measured(argv, env, watch_hwm):
    """Wall seconds, peak RSS (KiB) of the process itself (not its children), and the
    number of HTTP requests in its log (non-zero only with RCLONE_DUMP=headers)."""
    # stderr into a file, not a pipe: a dump of every request would fill a pipe nobody
    # reads while the process is waited for, and both would hang.
    log = tempfile.TemporaryFile()
    start = time.perf_counter()
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=log)
    peak = [0]
    stop = threading.Event()

    def poll():
        while not stop.is_set():
            try:
                with open(f"/proc/{proc.pid}/status") as f:
                    for line in f:
                        if line.startswith("VmHWM:"):
                            peak[0] = max(peak[0], int(line.split()[1]))
            except OSError:
                return
            time.sleep(0.02)

    poller = threading.Thread(target=poll) if watch_hwm else None
    if poller:
        poller.start()
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - start
    stop.set()
    if poller:
        poller.join()
    log.seek(0)
    stderr = log.read().decode(errors="replace")
    log.close()
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"{argv[0]} failed:\n{stderr[-3000:]}")
    # Without polling, wait4's ru_maxrss is the peak of the process (KiB on Linux).
    return elapsed, (peak[0] if watch_hwm else usage.ru_maxrss), stderr.count("HTTP REQUEST")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--small-files", type=int, default=10000)
    parser.add_argument("--large-files", type=int, default=3)
    parser.add_argument("--large-mib", type=int, default=32)
    add_agent_argument(parser)
    args = parser.parse_args()
    agent, rclone = tools(args)

    work = tempfile.mkdtemp(prefix="vsc-bench-")
    server_root = os.path.join(work, "s3")
    os.makedirs(os.path.join(server_root, "bench"))
    data = os.path.join(work, "data")
    make_tree(data, args.small_files, args.large_files, args.large_mib)
    server, port = start_s3(rclone, server_root)
    try:
        agent_env, rclone_env = environments(work, port, rclone)
        flags = ["--create-empty-src-dirs", "--metadata"]

        phases = {"upload": {}, "no-change": {}, "one-change": {}, "full-sync": {}, "restore": {}}
        requests = {phase: {} for phase in phases}
        rss = {"agent": [], "rclone": []}
        # The last round counts requests; dumping them costs time, so it is not timed.
        for round_no in range(args.rounds + 1):
            counting = round_no == args.rounds
            order = ["agent", "rclone"] if round_no % 2 == 0 else ["rclone", "agent"]
            for who in order:
                prefix = f"bench/{who}-{round_no}"
                restore_dir = os.path.join(work, f"restore-{who}-{round_no}")
                dump = {"RCLONE_DUMP": "headers"} if counting else {}
                if who == "agent":
                    # -vv: the agent passes rclone's debug log (where the dump goes) through.
                    verbose = ["-vv"] if counting else []
                    upload = [agent, "sync-to-remote", *verbose, "-s", data, "-d", prefix]
                    steps = {
                        "upload": upload,
                        "no-change": upload,
                        "one-change": upload,
                        # The periodic full sync of the unchanged tree (made due by the
                        # pause before it); plain rclone has only its one kind of sync.
                        "full-sync": [*upload, "--full-sync-interval", "1s"],
                        "restore": [agent, "remote-to-local-sync", *verbose, "-s", prefix, "-d", restore_dir],
                    }
                    env = {**agent_env, **dump}
                else:
                    target = f"remote:/{prefix}"
                    upload = [rclone, "sync", *flags, data, target]
                    steps = {
                        "upload": upload,
                        "no-change": upload,
                        "one-change": upload,
                        "full-sync": upload,
                        "restore": [rclone, "sync", *flags, target, restore_dir],
                    }
                    env = {**rclone_env, **dump}
                for phase, argv in steps.items():
                    if phase == "one-change":
                        rewrite_one_file(data, who, round_no)
                    if phase == "full-sync":
                        time.sleep(1.1)
                    seconds, peak, sent = run_measured(argv, env, watch_hwm=(who == "agent" and not counting))
                    if counting:
                        requests[phase][who] = sent
                    else:
                        phases[phase].setdefault(who, []).append(seconds)
                        rss[who].append(peak)
                shutil.rmtree(restore_dir, ignore_errors=True)

        print(f"data: {args.small_files} small files + {args.large_files} x {args.large_mib} MiB; {args.rounds} rounds; rclone serve s3 on 127.0.0.1")
        print(f"{'phase':<10} {'agent median s':>15} {'rclone median s':>16} {'ratio':>7} {'agent requests':>15} {'rclone requests':>16}")
        for phase, by in phases.items():
            a, r = statistics.median(by["agent"]), statistics.median(by["rclone"])
            sent = requests[phase]
            print(f"{phase:<10} {a:>15.3f} {r:>16.3f} {a / r:>7.3f} {sent['agent']:>15} {sent['rclone']:>16}")
        print(f"peak RSS: agent process {max(rss['agent']) / 1024:.1f} MiB (its rclone child not counted), plain rclone {max(rss['rclone']) / 1024:.1f} MiB")
    finally:
        server.kill()
        server.wait()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
