#!/usr/bin/env python3
"""Write a reproducible single-layer OCI image archive from a root directory.

No registry, no daemon, no container engine: the layer is a tar of ROOTFS, and the image
config, manifest and index are written here. The archive is an OCI image layout in a tar
(`oci-layout`, `index.json`, `blobs/sha256/...`); its index names the image with the
`io.containerd.image.name` annotation, so

    ctr -n k8s.io images import OUT.tar

imports it under that name, ready for a kubelet with `imagePullPolicy: IfNotPresent`.

Reproducible: entries sorted, every mtime fixed (SOURCE_DATE_EPOCH, default 0), owner
0:0 unless --chown names another, no user/group names, file modes as on disk, gzip with
no name and a fixed time. The same ROOTFS and options give the same bytes, so the same
digests. (The uncompressed layer's digest, the `diff_id`, depends only on the inputs; the
compressed one also on the zlib build.)

Regular files, directories and symbolic links are taken; a hard link is stored as a copy;
any other file type is an error.

On success prints one JSON object on stdout:
    {"name": ..., "names": [...], "archive": ..., "digest": <manifest digest>,
     "config": ..., "layer": ..., "diff_id": ..., "platform": "linux/amd64"}

Example (the project's agent image, see scripts/build-images.sh):
    tools/oci-image.py ROOT --name ghcr.io/riotkit-org/volume-syncing-controller:0.1.0 \\
        --output agent.oci.tar --entrypoint '["/usr/bin/volume-syncing-controller"]' \\
        --user 65532:65532 --workdir /tmp --env PATH=/usr/bin:/bin \\
        --chown /home/nonroot=65532:65532
"""

import argparse
import datetime
import gzip
import hashlib
import json
import os
import platform
import stat
import sys
import tarfile
import tempfile

LAYOUT = {"imageLayoutVersion": "1.0.0"}
MEDIA_INDEX = "application/vnd.oci.image.index.v1+json"
MEDIA_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MEDIA_CONFIG = "application/vnd.oci.image.config.v1+json"
MEDIA_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
ARCHITECTURES = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}


def fail(message):
    print(f"oci-image.py: error: {message}", file=sys.stderr)
    sys.exit(2)


def canonical(value):
    """JSON with sorted keys and no spaces: the bytes that are hashed."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


class Digesting:
    """A write-only file object that hashes and counts what passes through it."""

    def __init__(self, sink=None):
        self.sink = sink
        self.hash = hashlib.sha256()
        self.size = 0

    def write(self, data):
        self.hash.update(data)
        self.size += len(data)
        if self.sink is not None:
            self.sink.write(data)
        return len(data)

    def tell(self):
        return self.size

    def flush(self):
        if self.sink is not None:
            self.sink.flush()

    def digest(self):
        return "sha256:" + self.hash.hexdigest()


def key_value(text, what):
    if "=" not in text:
        fail(f"{what} {text!r}: expected KEY=VALUE")
    key, value = text.split("=", 1)
    if not key:
        fail(f"{what} {text!r}: empty key")
    return key, value


def json_list(text, what):
    try:
        value = json.loads(text)
    except json.JSONDecodeError as e:
        fail(f"{what} {text!r} is not JSON ({e}); use the exec form, e.g. '[\"/usr/bin/app\", \"--flag\"]'")
    if not (isinstance(value, list) and all(isinstance(v, str) for v in value)):
        fail(f"{what} {text!r}: expected a JSON array of strings")
    return value


def port(text):
    number, _, protocol = text.partition("/")
    protocol = protocol or "tcp"
    if not number.isdigit() or not 0 < int(number) < 65536 or protocol not in ("tcp", "udp", "sctp"):
        fail(f"--expose {text!r}: expected PORT or PORT/tcp|udp|sctp")
    return f"{int(number)}/{protocol}"


def image_path(text):
    """'/home/nonroot/' -> 'home/nonroot' (paths inside the layer have no leading slash)."""
    parts = [p for p in text.split("/") if p not in ("", ".")]
    if ".." in parts:
        fail(f"path {text!r} must not contain '..'")
    return "/".join(parts)


def owners(specs):
    result = {}
    for spec in specs:
        path, ids = key_value(spec, "--chown")
        uid, sep, gid = ids.partition(":")
        if not sep or not uid.isdigit() or not gid.isdigit():
            fail(f"--chown {spec!r}: expected PATH=UID:GID with numeric ids")
        result[image_path(path)] = (int(uid), int(gid))
    return result


def owner_of(path, chowns):
    """The owner set by the longest --chown path that is PATH or one of its parents."""
    best, ids = -1, (0, 0)
    for prefix, owner in chowns.items():
        if prefix == "" or path == prefix or path.startswith(prefix + "/"):
            if len(prefix) > best:
                best, ids = len(prefix), owner
    return ids


def walk(rootfs):
    """Every path under ROOTFS, relative, parents before children, siblings by name."""
    entries = []
    for directory, dirs, files in os.walk(rootfs, followlinks=False):
        dirs.sort()
        for name in dirs + files:
            full = os.path.join(directory, name)
            entries.append(os.path.relpath(full, rootfs).replace(os.sep, "/"))
    return sorted(entries, key=lambda p: p.split("/"))


def write_layer(rootfs, chowns, mtime, level, out):
    """Tar ROOTFS into OUT through gzip; returns (diff_id, layer digest, layer size)."""
    compressed = Digesting(out)
    with gzip.GzipFile(filename="", mode="wb", fileobj=compressed, mtime=mtime, compresslevel=level) as gz:
        uncompressed = Digesting(gz)
        with tarfile.open(fileobj=uncompressed, mode="w", format=tarfile.PAX_FORMAT) as tar:
            for rel in walk(rootfs):
                full = os.path.join(rootfs, rel)
                st = os.lstat(full)
                info = tarfile.TarInfo(rel)
                info.mode = stat.S_IMODE(st.st_mode)
                info.mtime = mtime
                info.uid, info.gid = owner_of(rel, chowns)
                info.uname = info.gname = ""
                if stat.S_ISDIR(st.st_mode):
                    info.type = tarfile.DIRTYPE
                    tar.addfile(info)
                elif stat.S_ISLNK(st.st_mode):
                    info.type = tarfile.SYMTYPE
                    info.linkname = os.readlink(full)
                    tar.addfile(info)
                elif stat.S_ISREG(st.st_mode):
                    info.type = tarfile.REGTYPE
                    info.size = st.st_size
                    with open(full, "rb") as f:
                        tar.addfile(info, f)
                else:
                    fail(f"{full}: not a regular file, directory or symbolic link")
    return uncompressed.digest(), compressed.digest(), compressed.size


def parse_args(argv):
    parser = argparse.ArgumentParser(
        prog="oci-image.py",
        description=__doc__.split("\n\n")[0],
        epilog="\n\n".join(__doc__.split("\n\n")[1:]),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("rootfs", metavar="ROOTFS", help="directory that becomes the image's /")
    parser.add_argument(
        "--name", action="append", required=True, metavar="REF",
        help="image name, e.g. ghcr.io/org/app:1.0 (io.containerd.image.name); repeat for more names",
    )
    parser.add_argument("--output", "-o", required=True, metavar="OUT.tar", help="archive to write (replaced atomically)")
    parser.add_argument("--entrypoint", metavar="JSON", help='ENTRYPOINT in exec form: \'["/usr/bin/app"]\'')
    parser.add_argument("--cmd", metavar="JSON", help="CMD in exec form (default arguments of the entrypoint)")
    parser.add_argument("--user", default="", metavar="UID[:GID]", help="user the container runs as (numeric for runAsNonRoot)")
    parser.add_argument("--workdir", default="/", metavar="DIR", help="working directory (default /)")
    parser.add_argument("--env", action="append", default=[], metavar="KEY=VALUE", help="environment variable, in order; repeatable")
    parser.add_argument("--expose", action="append", default=[], metavar="PORT[/PROTO]", help="exposed port (tcp unless given); repeatable")
    parser.add_argument("--label", action="append", default=[], metavar="KEY=VALUE", help="image label; repeatable")
    parser.add_argument(
        "--chown", action="append", default=[], metavar="PATH=UID:GID",
        help="owner of PATH (image path) and everything under it; everything else is 0:0; repeatable",
    )
    parser.add_argument(
        "--name-by-digest", action="store_true",
        help="also name the image REPO@sha256:<manifest digest> for each --name, so a digest-pinned reference resolves after import",
    )
    parser.add_argument("--architecture", default=ARCHITECTURES.get(platform.machine(), platform.machine()), help="image architecture (default: this machine's)")
    parser.add_argument("--os", default="linux", help="image OS (default linux)")
    parser.add_argument("--compression-level", type=int, default=6, choices=range(1, 10), metavar="1-9", help="gzip level (default 6)")
    args = parser.parse_args(argv)
    if not os.path.isdir(args.rootfs):
        fail(f"{args.rootfs}: not a directory")
    return args


def main(argv):
    args = parse_args(argv)
    epoch = os.environ.get("SOURCE_DATE_EPOCH", "0")
    if not epoch.isdigit():
        fail(f"SOURCE_DATE_EPOCH={epoch!r} is not a number of seconds")
    mtime = int(epoch)
    created = datetime.datetime.fromtimestamp(mtime, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    chowns = owners(args.chown)
    env = [f"{k}={v}" for k, v in (key_value(e, "--env") for e in args.env)]
    labels = dict(key_value(label, "--label") for label in args.label)
    workdir = "/" + image_path(args.workdir)
    if not os.path.isdir(os.path.join(args.rootfs, image_path(args.workdir))):
        print(f"oci-image.py: warning: --workdir {workdir} is not a directory in {args.rootfs}; the runtime creates it owned by root", file=sys.stderr)

    out_dir = os.path.dirname(os.path.abspath(args.output))
    os.makedirs(out_dir, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out_dir, prefix=".oci-image.") as work:
        layer_path = os.path.join(work, "layer")
        with open(layer_path, "wb") as out:
            diff_id, layer_digest, layer_size = write_layer(args.rootfs, chowns, mtime, args.compression_level, out)

        config = {"User": args.user, "WorkingDir": workdir}
        if env:
            config["Env"] = env
        if args.entrypoint is not None:
            config["Entrypoint"] = json_list(args.entrypoint, "--entrypoint")
        if args.cmd is not None:
            config["Cmd"] = json_list(args.cmd, "--cmd")
        if args.expose:
            config["ExposedPorts"] = {p: {} for p in sorted({port(p) for p in args.expose})}
        if labels:
            config["Labels"] = labels
        image_config = canonical({
            "created": created,
            "architecture": args.architecture,
            "os": args.os,
            "config": config,
            "rootfs": {"type": "layers", "diff_ids": [diff_id]},
            "history": [{"created": created, "created_by": "tools/oci-image.py"}],
        })
        config_digest = "sha256:" + hashlib.sha256(image_config).hexdigest()
        manifest = canonical({
            "schemaVersion": 2,
            "mediaType": MEDIA_MANIFEST,
            "config": {"mediaType": MEDIA_CONFIG, "digest": config_digest, "size": len(image_config)},
            "layers": [{"mediaType": MEDIA_LAYER, "digest": layer_digest, "size": layer_size}],
        })
        manifest_digest = "sha256:" + hashlib.sha256(manifest).hexdigest()

        names = list(dict.fromkeys(args.name))
        if args.name_by_digest:
            names += [repository(n) + "@" + manifest_digest for n in args.name]
            names = list(dict.fromkeys(names))
        descriptors = []
        for name in names:
            annotations = {"io.containerd.image.name": name}
            tag = tag_of(name)
            if tag:
                annotations["org.opencontainers.image.ref.name"] = tag
            descriptors.append({
                "mediaType": MEDIA_MANIFEST,
                "digest": manifest_digest,
                "size": len(manifest),
                "platform": {"architecture": args.architecture, "os": args.os},
                "annotations": annotations,
            })
        index = canonical({"schemaVersion": 2, "mediaType": MEDIA_INDEX, "manifests": descriptors})

        partial = os.path.join(work, "archive.tar")
        with tarfile.open(partial, mode="w", format=tarfile.USTAR_FORMAT) as tar:
            def add_bytes(name, data):
                info = fixed(tarfile.TarInfo(name), mtime)
                info.size = len(data)
                tar.addfile(info, _Reader(data))

            def add_dir(name):
                info = fixed(tarfile.TarInfo(name), mtime)
                info.type = tarfile.DIRTYPE
                info.mode = 0o755
                tar.addfile(info)

            add_bytes("oci-layout", canonical(LAYOUT))
            add_bytes("index.json", index)
            add_dir("blobs")
            add_dir("blobs/sha256")
            blobs = {config_digest: image_config, manifest_digest: manifest}
            for digest in sorted([*blobs, layer_digest]):
                name = "blobs/sha256/" + digest.split(":", 1)[1]
                if digest == layer_digest:
                    info = fixed(tarfile.TarInfo(name), mtime)
                    info.size = layer_size
                    with open(layer_path, "rb") as f:
                        tar.addfile(info, f)
                else:
                    add_bytes(name, blobs[digest])
        os.replace(partial, args.output)

    print(json.dumps({
        "name": names[0],
        "names": names,
        "archive": args.output,
        "digest": manifest_digest,
        "config": config_digest,
        "layer": layer_digest,
        "diff_id": diff_id,
        "platform": f"{args.os}/{args.architecture}",
    }, sort_keys=True))


class _Reader:
    def __init__(self, data):
        self.data, self.offset = data, 0

    def read(self, size=-1):
        end = len(self.data) if size < 0 else self.offset + size
        chunk = self.data[self.offset:end]
        self.offset += len(chunk)
        return chunk


def fixed(info, mtime):
    info.mtime = mtime
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    info.mode = 0o644
    return info


def repository(name):
    """'ghcr.io/org/app:1.0' -> 'ghcr.io/org/app' (a registry port is not a tag)."""
    name = name.split("@", 1)[0]
    last = name.rsplit("/", 1)[-1]
    return name[: len(name) - len(last)] + last.split(":", 1)[0]


def tag_of(name):
    if "@" in name:
        return ""
    last = name.rsplit("/", 1)[-1]
    return last.split(":", 1)[1] if ":" in last else "latest"


if __name__ == "__main__":
    main(sys.argv[1:])
