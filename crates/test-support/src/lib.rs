//! Real parts shared by the agent's integration tests and the end-to-end tests: finding the
//! installed tools, and a real S3 server (`rclone serve s3`) on 127.0.0.1 with real keys.

use std::fs;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const ACCESS_KEY: &str = "AKIAVSCTESTKEY000001";
pub const SECRET_KEY: &str = "vscTestSecretKey/0123456789abcdefghijklmn";

/// Finds an installed tool: `$VSC_TOOLS_DIR/bin` (default `~/.cache/volume-syncing-controller/bin`,
/// where `tools/install-test-tools.sh` puts them), then `PATH`. Panics naming the install step.
pub mod fault_proxy;

pub fn tool(name: &str) -> PathBuf {
    let tools_dir = std::env::var_os("VSC_TOOLS_DIR")
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME")
                .map(|home| PathBuf::from(home).join(".cache/volume-syncing-controller"))
        });
    let path_dirs = std::env::var_os("PATH")
        .map(|paths| std::env::split_paths(&paths).collect::<Vec<_>>())
        .unwrap_or_default();
    tools_dir
        .map(|dir| dir.join("bin"))
        .into_iter()
        .chain(path_dirs)
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
        .unwrap_or_else(|| {
            panic!("`{name}` is required for these tests and was not found: run `bash tools/install-test-tools.sh` (installs rclone, kubectl, helm, etcd, kube-apiserver, promtool and actionlint into ~/.cache/volume-syncing-controller/bin)")
        })
}

/// The rclone the tests use: `VSC_RCLONE_BINARY`, else [`tool`]`("rclone")`.
pub fn rclone_binary() -> PathBuf {
    std::env::var_os("VSC_RCLONE_BINARY").map_or_else(|| tool("rclone"), PathBuf::from)
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port on 127.0.0.1")
}

/// `GET path` over HTTP/1.0 to `127.0.0.1:port`: the status code and the body. Nothing
/// listening yet (e.g. an agent still starting) reads as status 0.
pub fn http_get(port: u16, path: &str) -> (u16, String) {
    use std::io::{Read as _, Write as _};
    let Ok(mut stream) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
        return (0, String::new());
    };
    let mut response = String::new();
    if write!(stream, "GET {path} HTTP/1.0\r\n\r\n").is_err()
        || stream.read_to_string(&mut response).is_err()
    {
        return (0, String::new());
    }
    let code = response
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (code, body)
}

/// Waits until `condition` holds, up to `limit`.
pub fn eventually(limit: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if condition() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    condition()
}

/// `rclone serve s3` over a temporary directory; each top-level directory is a bucket.
pub struct S3Server {
    pub root: tempfile::TempDir,
    pub endpoint: String,
    access_key: String,
    secret_key: String,
    child: Child,
}

impl S3Server {
    /// A server that accepts [`ACCESS_KEY`] and [`SECRET_KEY`].
    pub fn start() -> S3Server {
        S3Server::start_with_keys(ACCESS_KEY, SECRET_KEY)
    }

    /// A server that accepts these keys (e.g. the example keys of a README).
    pub fn start_with_keys(access_key: &str, secret_key: &str) -> S3Server {
        let root = tempfile::tempdir().expect("tempdir for the S3 server");
        for _attempt in 0..5 {
            let port = free_port();
            let mut child = Command::new(rclone_binary())
                .args(["serve", "s3", "--addr"])
                .arg(format!("127.0.0.1:{port}"))
                .arg("--auth-key")
                .arg(format!("{access_key},{secret_key}"))
                .arg(root.path())
                .env("RCLONE_CONFIG", "/dev/null")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap_or_else(|e| {
                    panic!(
                        "cannot start rclone serve s3 ({e}): run `bash tools/install-test-tools.sh`"
                    )
                });
            let ready = eventually(Duration::from_secs(10), || {
                TcpStream::connect(("127.0.0.1", port)).is_ok()
                    || child.try_wait().ok().flatten().is_some()
            });
            if ready && child.try_wait().ok().flatten().is_none() {
                return S3Server {
                    endpoint: format!("http://127.0.0.1:{port}"),
                    root,
                    access_key: access_key.to_string(),
                    secret_key: secret_key.to_string(),
                    child,
                };
            }
            let _ = child.kill();
        }
        panic!("rclone serve s3 did not start");
    }

    /// Creates a bucket and returns its directory on the server's disk.
    pub fn bucket(&self, name: &str) -> PathBuf {
        let dir = self.root.path().join(name);
        fs::create_dir_all(&dir).expect("bucket dir");
        dir
    }

    /// The `REMOTE_*` environment a user would set for this server.
    pub fn remote_env(&self) -> Vec<(String, String)> {
        self.remote_env_for("Other")
    }

    /// [`Self::remote_env`] with rclone's S3 `provider` set to `provider` (`Minio`, `Other`).
    /// rclone's quirks differ by provider: with `Minio`, a CreateBucket answered
    /// `409 BucketAlreadyExists` (as this server answers for an existing bucket) is an error.
    pub fn remote_env_for(&self, provider: &str) -> Vec<(String, String)> {
        vec![
            ("REMOTE_TYPE".into(), "s3".into()),
            ("REMOTE_PROVIDER".into(), provider.into()),
            ("REMOTE_ACCESS_KEY_ID".into(), self.access_key.clone()),
            ("REMOTE_SECRET_ACCESS_KEY".into(), self.secret_key.clone()),
            ("REMOTE_ENDPOINT".into(), self.endpoint.clone()),
            ("REMOTE_ACL".into(), "private".into()),
        ]
    }

    /// Deletes the object `bucket/key` through the S3 API, as a loss at the remote side
    /// (the server lists from a cache, so a file removed from its disk stays listed).
    pub fn delete_object(&self, path: &str) {
        delete_object_with(&self.remote_env(), path);
    }

    /// Stops the server (the remote "goes away").
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Deletes one object (`bucket/key`) through the S3 API of the server that `remote_env`
/// (`REMOTE_*`, as a user sets them) configures: a server serving a directory caches its
/// listing, so deleting the file on its disk is not seen at once.
pub fn delete_object_with(remote_env: &[(String, String)], path: &str) {
    let status = Command::new(rclone_binary())
        .arg("deletefile")
        .arg(format!("server:{path}"))
        .env("RCLONE_CONFIG", "/dev/null")
        .envs(remote_env.iter().map(|(key, value)| {
            let option = key.trim_start_matches("REMOTE_");
            (format!("RCLONE_CONFIG_SERVER_{option}"), value)
        }))
        .status()
        .expect("run rclone deletefile");
    assert!(
        status.success(),
        "rclone deletefile server:{path}: {status}"
    );
}

/// Writes `files` (relative path -> contents) under `root`.
pub fn write_tree(root: &Path, files: &[(&str, &str)]) {
    for (relative, contents) in files {
        let path = root.join(relative);
        fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        fs::write(path, contents).expect("write");
    }
}

/// The agent's local record at the top of a directory it restored or uploaded.
pub const LOCAL_RECORD_NAME: &str = ".volume-syncing-controller.local.json";

/// Every file under `root` as (relative path, contents), sorted; the agent's local record
/// left out (it is the agent's, not the user's data: a restored tree is compared without it).
pub fn read_tree(root: &Path) -> Vec<(String, String)> {
    let mut files = read_every_file(root);
    files.retain(|(path, _)| path != LOCAL_RECORD_NAME);
    files
}

/// Every file under `root`, the agent's own included: what a server stores.
pub fn read_every_file(root: &Path) -> Vec<(String, String)> {
    let mut files = Vec::new();
    collect(root, root, &mut files);
    files.sort();
    files
}

fn collect(root: &Path, dir: &Path, files: &mut Vec<(String, String)>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            collect(root, &path, files);
        } else if path.extension().is_some_and(|e| e == "partial") {
            // rclone's local backend (behind `rclone serve s3`) writes `*.partial` then renames
            // it: not an object yet.
        } else {
            let relative = path
                .strip_prefix(root)
                .expect("under root")
                .display()
                .to_string();
            // A server may rename a file it is writing while we walk: skip what vanished.
            let Ok(bytes) = fs::read(&path) else { continue };
            let contents = String::from_utf8_lossy(&bytes).into_owned();
            files.push((relative, contents));
        }
    }
}

/// `[("a", "1")]` as owned, sorted pairs, to compare with [`read_tree`].
pub fn owned(files: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = files
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
    v.sort();
    v
}

/// `binaries` in a world-readable directory under the temp dir, so that an unprivileged user
/// can run them wherever the checkout and the tool cache live (often under root's home):
/// hard links where they can be (no copy of ~200 MB per test), copies otherwise. The holders
/// in one process share the directory (one per set of binaries); the last one dropped
/// removes it, also when its test panicked, and the next one makes it again at the same
/// path, so the paths stay valid for the whole process.
pub struct WorldExecutables {
    binaries: Vec<PathBuf>,
    paths: Vec<PathBuf>,
}

struct SharedBinaryDir {
    dir: PathBuf,
    holders: usize,
}

fn shared_binary_dirs() -> std::sync::MutexGuard<'static, Vec<(Vec<PathBuf>, SharedBinaryDir)>> {
    static DIRS: std::sync::Mutex<Vec<(Vec<PathBuf>, SharedBinaryDir)>> =
        std::sync::Mutex::new(Vec::new());
    DIRS.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl WorldExecutables {
    pub fn new(binaries: &[PathBuf]) -> WorldExecutables {
        let mut dirs = shared_binary_dirs();
        let index = if let Some(index) = dirs.iter().position(|(key, _)| key == binaries) {
            index
        } else {
            let dir = std::env::temp_dir().join(format!(
                "vsc-test-bin-{}-{}",
                std::process::id(),
                dirs.len()
            ));
            let entry = SharedBinaryDir { dir, holders: 0 };
            dirs.push((binaries.to_vec(), entry));
            dirs.len() - 1
        };
        let shared = &mut dirs[index].1;
        let paths: Vec<PathBuf> = binaries
            .iter()
            .map(|source| shared.dir.join(source.file_name().expect("binary name")))
            .collect();
        if shared.holders == 0 {
            populate(&shared.dir, binaries, &paths);
        }
        shared.holders += 1;
        WorldExecutables {
            binaries: binaries.to_vec(),
            paths,
        }
    }

    pub fn paths(&self) -> &[PathBuf] {
        &self.paths
    }
}

fn populate(dir: &Path, binaries: &[PathBuf], targets: &[PathBuf]) {
    if let Err(e) = try_populate(dir, binaries, targets) {
        let _ = fs::remove_dir_all(dir);
        panic!("binaries anyone can run in {}: {e}", dir.display());
    }
}

fn try_populate(dir: &Path, binaries: &[PathBuf], targets: &[PathBuf]) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt as _;
    let _ = fs::remove_dir_all(dir);
    fs::create_dir_all(dir)?;
    fs::set_permissions(dir, fs::Permissions::from_mode(0o755))?;
    for (source, target) in binaries.iter().zip(targets) {
        // The file itself, not a symlink to it (rclone is one, into the tool venv).
        let source = fs::canonicalize(source)?;
        let anyone_runs = fs::metadata(&source)?.permissions().mode() & 0o005 == 0o005;
        if anyone_runs && fs::hard_link(&source, target).is_ok() {
            continue;
        }
        fs::copy(&source, target)?;
        fs::set_permissions(target, fs::Permissions::from_mode(0o755))?;
    }
    Ok(())
}

impl Clone for WorldExecutables {
    fn clone(&self) -> WorldExecutables {
        WorldExecutables::new(&self.binaries)
    }
}

impl Drop for WorldExecutables {
    fn drop(&mut self) {
        let mut dirs = shared_binary_dirs();
        if let Some((_, shared)) = dirs.iter_mut().find(|(key, _)| *key == self.binaries) {
            shared.holders -= 1;
            if shared.holders == 0 {
                let _ = fs::remove_dir_all(&shared.dir);
            }
        }
    }
}

/// Whether the tests run as root (CI does): then agents run as unprivileged users.
pub fn running_as_root() -> bool {
    use std::os::unix::fs::MetadataExt as _;
    fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}
