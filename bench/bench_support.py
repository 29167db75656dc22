"""What the benchmarks share: the agent and rclone to compare, a real S3 server on
127.0.0.1, and the environments that point both at it."""
import os
import shutil
import socket
import subprocess
import sys
import time

ACCESS_KEY = "AKIABENCHMARKKEY0001"
SECRET_KEY = "benchmarkSecretKey/0123456789abcdefghijk"
DEFAULT_AGENT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "target", "release", "volume-syncing-controller")


def add_agent_argument(parser):
    parser.add_argument("--agent", default=DEFAULT_AGENT, help="the agent binary (default: target/release)")


def tools(args):
    """The agent and rclone binaries, or exit naming the install step."""
    agent = os.path.abspath(args.agent)
    rclone = shutil.which("rclone")
    if not rclone:
        sys.exit("rclone not on PATH: run `bash tools/install-test-tools.sh` and add its bin/ to PATH")
    if not os.access(agent, os.X_OK):
        sys.exit(f"{agent} missing: run `cargo build --release -p vsc-agent`")
    return agent, rclone


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_s3(rclone, root):
    """`rclone serve s3` of `root` on a free loopback port: (process, port)."""
    port = free_port()
    server = subprocess.Popen(
        [rclone, "serve", "s3", "--addr", f"127.0.0.1:{port}", "--auth-key", f"{ACCESS_KEY},{SECRET_KEY}", root],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env={**os.environ, "RCLONE_CONFIG": "/dev/null"})
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return server, port
        except OSError:
            time.sleep(0.1)
    server.kill()
    sys.exit("rclone serve s3 did not start")


def environments(work, port, rclone, pid_name="agent.pid"):
    """(agent env, plain rclone env): the same S3 remote, the agent's from REMOTE_*
    variables, plain rclone's from a config file in `work`."""
    remote = {
        "REMOTE_TYPE": "s3", "REMOTE_PROVIDER": "Other", "REMOTE_ACCESS_KEY_ID": ACCESS_KEY,
        "REMOTE_SECRET_ACCESS_KEY": SECRET_KEY, "REMOTE_ENDPOINT": f"http://127.0.0.1:{port}",
    }
    base = {k: v for k, v in os.environ.items() if not k.startswith(("REMOTE_", "ENCRYPTED_", "RCLONE_"))}
    agent_env = {**base, **remote, "VSC_RCLONE_BINARY": rclone, "VSC_PID_PATH": os.path.join(work, pid_name)}
    conf = os.path.join(work, "rclone.conf")
    with open(conf, "w") as f:
        f.write("[remote]\n" + "".join(f"{k[len('REMOTE_'):].lower()} = {v}\n" for k, v in remote.items()))
    return agent_env, {**base, "RCLONE_CONFIG": conf}
