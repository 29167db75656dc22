//! Turns `REMOTE_*` / `ENCRYPTED_*` variables and `--param` / `--enc-param` flags into an
//! rclone config file, and decides which rclone path a `-s`/`-d` remote path means.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fs;
use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};

use vsc_types::contract::{
    ENCRYPTED_ENV_PREFIX, ENCRYPTED_REMOTE_NAME, REMOTE_ENV_PREFIX, REMOTE_NAME,
};
use vsc_types::obscure;

use crate::error::{AgentError, Result};

/// Where one config line came from, so that an error can name it. Never the value: it may
/// be a secret.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Origin {
    Env(String),
    /// The `position`-th (from 1) `flag` argument, and its key once that is known valid.
    Flag {
        flag: &'static str,
        position: usize,
        key: Option<String>,
    },
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Origin::Env(name) => write!(f, "environment variable {name}"),
            Origin::Flag {
                flag,
                key: Some(key),
                ..
            } => write!(f, "{flag} '{key}=…'"),
            Origin::Flag {
                flag,
                position,
                key: None,
            } => write!(f, "{flag} argument #{position}"),
        }
    }
}

#[derive(Debug, Clone)]
struct Entry {
    value: String,
    origin: Origin,
}

/// The `key = value` lines of one rclone section; later sources override earlier ones.
#[derive(Debug, Clone, Default)]
struct Section {
    entries: BTreeMap<String, Entry>,
}

impl Section {
    fn set(&mut self, key: String, value: String, origin: Origin) {
        if let Some(previous) = self.entries.get(&key) {
            tracing::debug!(key, overridden = %previous.origin, by = %origin, "rclone option given twice; the later one wins");
        }
        self.entries.insert(key, Entry { value, origin });
    }

    fn get(&self, key: &str) -> Option<&Entry> {
        self.entries.get(key)
    }

    fn remove(&mut self, key: &str) -> Option<Entry> {
        self.entries.remove(key)
    }

    fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    fn render(&self, name: &str, out: &mut String) {
        out.push_str(&format!("[{name}]\n"));
        // `type` first: it is what a human reading the file looks for.
        if let Some(entry) = self.entries.get("type") {
            out.push_str(&format!("type = {}\n", quoted(&entry.value)));
        }
        for (key, entry) in self.entries.iter().filter(|(key, _)| *key != "type") {
            out.push_str(&format!("{key} = {}\n", quoted(&entry.value)));
        }
    }
}

/// `value` as rclone's config parser reads it back exactly. It takes a value that starts with
/// `` ` `` or `"""` for a quoted one: unclosed, it fails to load the file and prints the line
/// (a secret, maybe); closed, it keeps what is between the quotes. Wrapped in backticks, it
/// keeps everything between the first and the last one: any single-line value, exactly.
fn quoted(value: &str) -> std::borrow::Cow<'_, str> {
    if value.starts_with('`') || value.starts_with("\"\"\"") {
        format!("`{value}`").into()
    } else {
        value.into()
    }
}

/// The rclone remotes described by the environment and the `-p` / `-e` flags.
#[derive(Debug, Clone, Default)]
pub struct RemoteParams {
    remote: Section,
    encrypted: Section,
}

impl RemoteParams {
    /// Collects `REMOTE_*` / `ENCRYPTED_*` from `env`, then applies `params` (`-p`) and
    /// `enc_params` (`-e`), which override the environment key by key.
    pub fn collect(
        env: impl IntoIterator<Item = (OsString, OsString)>,
        params: &[String],
        enc_params: &[String],
    ) -> Result<Self> {
        let mut collected = RemoteParams::default();
        let mut env: Vec<(OsString, OsString)> = env.into_iter().collect();
        env.sort();
        for (name, value) in env {
            let Some(name_str) = name.to_str() else {
                continue;
            };
            let (section, key_part) = if let Some(rest) = name_str.strip_prefix(REMOTE_ENV_PREFIX) {
                (&mut collected.remote, rest)
            } else if let Some(rest) = name_str.strip_prefix(ENCRYPTED_ENV_PREFIX) {
                (&mut collected.encrypted, rest)
            } else {
                continue;
            };
            let origin = Origin::Env(name_str.to_string());
            let value = value
                .into_string()
                .map_err(|_| AgentError::invalid(format!("{origin} is not valid UTF-8")))?;
            let key = validate_key(key_part, &origin)?;
            validate_value(&value, &origin)?;
            section.set(key, value, origin);
        }
        for (flag, raw_list, section) in [
            ("--param", params, &mut collected.remote),
            ("--enc-param", enc_params, &mut collected.encrypted),
        ] {
            for (index, raw) in raw_list.iter().enumerate() {
                let mut origin = Origin::Flag {
                    flag,
                    position: index + 1,
                    key: None,
                };
                let (key, value) = raw.split_once('=').ok_or_else(|| {
                    AgentError::invalid(format!(
                        "{origin} has no '=': it must look like 'key=value' (its text is not shown: it may be a secret)"
                    ))
                })?;
                let key = validate_key(key.trim(), &origin)?;
                if let Origin::Flag { key: known, .. } = &mut origin {
                    *known = Some(key.clone());
                }
                let value = value.trim().to_string();
                validate_value(&value, &origin)?;
                section.set(key.to_ascii_lowercase(), value, origin);
            }
        }
        collected.resolve_plain_passwords()?;
        collected.validate()?;
        Ok(collected)
    }

    /// Whether a crypt remote is layered over `remote` (any `ENCRYPTED_*` / `-e` given).
    pub fn encryption_enabled(&self) -> bool {
        !self.encrypted.is_empty()
    }

    /// `ENCRYPTED_PASSWORD_PLAIN` / `ENCRYPTED_PASSWORD2_PLAIN`: obscured here, as rclone needs.
    fn resolve_plain_passwords(&mut self) -> Result<()> {
        for (plain_key, key) in [
            ("password_plain", "password"),
            ("password2_plain", "password2"),
        ] {
            if let Some(plain) = self.encrypted.remove(plain_key) {
                if let Some(existing) = self.encrypted.get(key) {
                    return Err(AgentError::invalid(format!(
                        "both {} and {} are set; give the crypt {key} once, either plain or rclone-obscured",
                        plain.origin, existing.origin
                    )));
                }
                if plain.value.is_empty() {
                    return Err(empty_password(&plain.origin, key));
                }
                let origin = plain.origin.clone();
                self.encrypted
                    .set(key.to_string(), obscure::obscure(&plain.value), origin);
            }
        }
        Ok(())
    }

    fn validate(&self) -> Result<()> {
        if self.remote.get("type").is_none() && self.remote.is_empty() {
            return Err(AgentError::invalid(
                "no rclone remote is configured: set REMOTE_TYPE (and the other REMOTE_<KEY> variables of your backend), or pass -p type=<backend>",
            ));
        }
        match self.remote.get("type") {
            None => {
                return Err(AgentError::invalid(
                    "REMOTE_TYPE is not set: name the rclone backend, e.g. REMOTE_TYPE=s3 (or -p type=s3)",
                ));
            }
            // rclone would only say it "didn't find section in config file".
            Some(kind) if kind.value.is_empty() => {
                return Err(AgentError::invalid(format!(
                    "{} is empty: name the rclone backend, e.g. REMOTE_TYPE=s3 (an empty Secret key?)",
                    kind.origin
                )));
            }
            Some(_) => {}
        }
        if !self.encryption_enabled() {
            return Ok(());
        }
        if let Some(kind) = self.encrypted.get("type")
            && kind.value != "crypt"
        {
            return Err(AgentError::invalid(format!(
                "{} is set to another type, but the encrypted remote is always of type 'crypt'; remove it (its value is not shown: errors never show one)",
                kind.origin
            )));
        }
        for key in ["password", "password2"] {
            let Some(entry) = self.encrypted.get(key) else {
                continue;
            };
            if entry.value.is_empty() {
                return Err(empty_password(&entry.origin, key));
            }
            match obscure::reveal(&entry.value) {
                Err(_) => {
                    return Err(AgentError::invalid(format!(
                        "{} is not rclone-obscured (make it with `rclone obscure`), or pass the plain value as ENCRYPTED_{}_PLAIN",
                        entry.origin,
                        key.to_ascii_uppercase()
                    )));
                }
                // rclone reads an unset password2 as "no salt" (its built-in one), and takes
                // an empty one the same way. Unset stays allowed; an explicitly empty value is
                // refused like an empty password: it is what an empty Secret key gives, and
                // the operator always sets a salt, so it means a lost one, not "no salt".
                Ok(revealed) if revealed.is_empty() => {
                    return Err(empty_password(&entry.origin, key));
                }
                Ok(_) => {}
            }
        }
        if self.encrypted.get("password").is_none() {
            return Err(AgentError::invalid(
                "encryption is on (an ENCRYPTED_* variable or -e flag is set) but no password is given: set ENCRYPTED_PASSWORD (rclone-obscured) or ENCRYPTED_PASSWORD_PLAIN",
            ));
        }
        Ok(())
    }

    /// `remote_path` as this config means it. On a local remote (directly, or under a crypt
    /// remote that wraps it), a relative path is relative to `cwd`, as for `rclone sync src
    /// ./remote`: `remote:/./remote` would be `/remote`, at the filesystem root.
    pub fn resolve(
        &self,
        remote_path: &RemotePath,
        cwd: impl FnOnce() -> std::io::Result<PathBuf>,
    ) -> Result<RemotePath> {
        let local = self.remote.get("type").is_some_and(|t| t.value == "local");
        let inside_crypt = self.encryption_enabled() && self.encrypted.get("remote").is_some();
        if !local || inside_crypt || !remote_path.relative {
            return Ok(remote_path.clone());
        }
        let cwd = cwd().map_err(|e| AgentError::io("cannot read the working directory", ".", e))?;
        let resolved = remote_path.under(&cwd)?;
        tracing::info!(given = %remote_path.path, path = %resolved, "the remote is a local directory: a relative remote path is relative to the working directory");
        Ok(resolved)
    }

    /// Renders the config file for a run on `remote_path` (the `-s`/`-d` remote side).
    pub fn render(&self, remote_path: &RemotePath) -> String {
        let mut out = String::new();
        self.remote.render(REMOTE_NAME, &mut out);
        if self.encryption_enabled() {
            let mut encrypted = self.encrypted.clone();
            encrypted.set(
                "type".to_string(),
                "crypt".to_string(),
                Origin::Env("(implied)".into()),
            );
            if encrypted.get("remote").is_none() {
                encrypted.set(
                    "remote".to_string(),
                    remote_path.inside(REMOTE_NAME),
                    Origin::Env("(implied)".into()),
                );
            }
            out.push('\n');
            encrypted.render(ENCRYPTED_REMOTE_NAME, &mut out);
        }
        out
    }

    /// The rclone path that `remote_path` means under this config.
    ///
    /// Without encryption: `remote:/<path>`. With encryption and no `ENCRYPTED_REMOTE`, the
    /// crypt remote wraps `remote:/<path>` itself, so the target is `remote_encrypted:`.
    /// With `ENCRYPTED_REMOTE` set, the path is taken inside the crypt remote.
    pub fn target(&self, remote_path: &RemotePath) -> String {
        target_for(
            self.encryption_enabled(),
            self.encrypted.get("remote").is_some(),
            remote_path,
        )
    }
}

/// An empty crypt password derives a key anyone can derive: "encrypted" data that anyone can
/// read.
fn empty_password(origin: &Origin, key: &str) -> AgentError {
    let what = if key == "password" {
        "the crypt password"
    } else {
        "the crypt salt (password2)"
    };
    AgentError::invalid(format!(
        "{origin} is empty, so {what} would be empty and the uploaded data readable by anyone (an empty Secret key?); set it, or unset the variable{}",
        if key == "password" {
            " and all ENCRYPTED_* to upload unencrypted"
        } else {
            " for rclone's default salt"
        }
    ))
}

/// Whether an rclone path (as [`RemoteParams::target`] returns) is on the crypt remote.
pub fn is_encrypted_target(target: &str) -> bool {
    target
        .strip_prefix(ENCRYPTED_REMOTE_NAME)
        .is_some_and(|rest| rest.starts_with(':'))
}

fn target_for(encrypted: bool, explicit_crypt_remote: bool, remote_path: &RemotePath) -> String {
    match (encrypted, explicit_crypt_remote) {
        (false, _) => remote_path.inside(REMOTE_NAME),
        (true, false) => format!("{ENCRYPTED_REMOTE_NAME}:"),
        (true, true) => remote_path.inside(ENCRYPTED_REMOTE_NAME),
    }
}

fn validate_key(key: &str, origin: &Origin) -> Result<String> {
    let valid = !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if !valid {
        // A variable's name is no secret; an argument's text before '=' might be one.
        let shown = match origin {
            Origin::Env(_) => format!(" '{key}'"),
            Origin::Flag { .. } => String::new(),
        };
        return Err(AgentError::invalid(format!(
            "{origin}: the rclone option name{shown} must be letters, digits and '_' only"
        )));
    }
    Ok(key.to_ascii_lowercase())
}

fn validate_value(value: &str, origin: &Origin) -> Result<()> {
    match vsc_types::contract::config_value_problem(value) {
        Some(problem) => Err(AgentError::invalid(format!("{origin} {problem}"))),
        None => Ok(()),
    }
}

/// A path on the remote side, as given to `-s` / `-d` (e.g. `bucket/some/dir`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemotePath {
    path: String,
    /// Given without a leading `/` (`./remote`, `bucket/dir`).
    relative: bool,
}

impl RemotePath {
    /// Validates a user-given remote path; `flag` names it in errors.
    pub fn parse(raw: &str, flag: &str) -> Result<Self> {
        if raw.contains(['\n', '\r', '\0']) {
            return Err(AgentError::invalid(format!(
                "{flag}: the remote path contains a line break"
            )));
        }
        if raw.split('/').any(|segment| segment == "..") {
            return Err(AgentError::invalid(format!(
                "{flag}: the remote path '{raw}' contains '..'; give the path it means"
            )));
        }
        let trimmed = raw.trim_matches('/');
        Ok(RemotePath {
            path: trimmed.to_string(),
            relative: !raw.is_empty() && !raw.starts_with('/'),
        })
    }

    /// `name:/path`, the form the original tool used (`remote:/testbucket/dir`).
    pub fn inside(&self, remote_name: &str) -> String {
        format!("{remote_name}:/{}", self.path)
    }

    /// A relative path as the same path under `dir` (absolute); an absolute one as it is.
    fn under(&self, dir: &Path) -> Result<RemotePath> {
        if !self.relative {
            return Ok(self.clone());
        }
        let dir = dir.to_str().ok_or_else(|| {
            AgentError::invalid(format!(
                "the working directory {} is not valid UTF-8; give the remote path as an absolute path",
                dir.display()
            ))
        })?;
        let below: Vec<&str> = self.path.split('/').filter(|s| *s != ".").collect();
        let joined = format!("{}/{}", dir.trim_end_matches('/'), below.join("/"));
        Ok(RemotePath {
            path: joined.trim_matches('/').to_string(),
            relative: false,
        })
    }
}

impl std::fmt::Display for RemotePath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "/{}", self.path)
    }
}

/// The start of the first line of every config the agent writes; what follows is
/// `<pid>)` and [`HEADER_END`]. rclone ignores `#` lines.
const HEADER_START: &str = "# written by volume-syncing-controller (pid ";
const HEADER_END: &str = "; removed when that run exits";

/// The name of the private directories of runs without `--config-path`, in the temp dir.
pub const PRIVATE_DIR_PREFIX: &str = "volume-syncing-controller-";
/// The config's name inside such a directory.
pub const CONFIG_FILE_NAME: &str = "rclone.conf";

/// The pid in the agent's header line, when `text` is a config the agent wrote.
pub fn writer_pid(text: &str) -> Option<u32> {
    split_header(text).map(|(pid, _)| pid)
}

fn header(pid: u32) -> String {
    format!("{HEADER_START}{pid}){HEADER_END}\n")
}

/// The writer's pid in the agent's header line of `text`, and the rest of the file.
fn split_header(text: &str) -> Option<(u32, &str)> {
    let (first, rest) = text.split_once('\n')?;
    let pid = first
        .strip_prefix(HEADER_START)?
        .strip_suffix(HEADER_END)?
        .strip_suffix(')')?
        .parse()
        .ok()?;
    Some((pid, rest))
}

/// What to do with a file already at `--config-path`.
#[derive(Debug, PartialEq, Eq)]
enum AtConfigPath {
    /// Nothing there, or what a killed run left: write ours (and remove it on exit).
    Write,
    /// The config this run would write, by a running agent: use it, keep it.
    Share,
    /// Someone else's file: touch nothing.
    Refuse(String),
}

fn decide(path: &Path, existing: Option<&str>, body: &str) -> AtConfigPath {
    let Some(existing) = existing else {
        return AtConfigPath::Write;
    };
    let own_pid = std::process::id();
    match split_header(existing) {
        // A pid equal to ours is not another live writer: in a container a killed earlier
        // agent was pid 1, as this one is.
        Some((pid, _)) if pid == own_pid || !crate::pidfile::is_alive(pid) => AtConfigPath::Write,
        Some((_, rest)) if rest == body => AtConfigPath::Share,
        Some((pid, _)) => AtConfigPath::Refuse(format!(
            "the rclone config at --config-path {} was written by a running agent (pid {pid}) for different settings; it is left as it is. Give this run another --config-path, or the same environment and flags as that agent (if pid {pid} is no agent, the file is a stale one: remove it)",
            path.display()
        )),
        // Identical but without our header: nothing this run would change; keep it as it is.
        None if existing == body => AtConfigPath::Share,
        None => AtConfigPath::Refuse(format!(
            "--config-path {} is a file the agent did not write; it is left as it is. Pass --no-template to use it as the rclone config, or choose another --config-path",
            path.display()
        )),
    }
}

/// The file at `--config-path`, if there is one (its text as far as it is UTF-8).
fn read_config_path(path: &Path) -> Result<Option<String>> {
    match fs::read(path) {
        Ok(bytes) => Ok(Some(String::from_utf8_lossy(&bytes).into_owned())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(AgentError::io(
            "cannot read the file at --config-path",
            path,
            e,
        )),
    }
}

/// Removes a config left by a run that no longer runs; one already gone is no error.
fn remove_stale_config(path: &Path) -> Result<()> {
    match fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(AgentError::io("cannot replace the config file", path, e)),
    }
}

/// A config file on disk for the lifetime of a run; removed on drop when written by us.
#[derive(Debug)]
pub struct ConfigFile {
    path: PathBuf,
    remove_on_drop: bool,
    _private_dir: Option<tempfile::TempDir>,
}

impl ConfigFile {
    /// Writes `body` (the rendered config) under the agent's header line, mode 0600, to
    /// `path`, or into a fresh private directory when `path` is `None`. A file already at
    /// `path` is never overwritten or removed unless the agent wrote it: one left by a run
    /// that no longer runs is replaced; one holding exactly `body` from a running agent is
    /// used as it is and kept (in a Pod, `kubectl exec ... -c
    /// /etc/volume-syncing-controller/rclone.conf` uses the sidecar's config, with the same
    /// environment, and must not delete it); anything else is refused.
    pub fn write(path: Option<&Path>, body: &str) -> Result<Self> {
        match path {
            Some(path) => Self::write_at(path, body),
            None => Self::write_private(body),
        }
    }

    /// Without `--config-path`: a fresh directory of this run's own in the temp dir, so no
    /// other run's file is in the way; what killed runs left there is cleared first.
    fn write_private(body: &str) -> Result<Self> {
        crate::stale_configs::remove_left_by_killed_runs(&std::env::temp_dir());
        let dir = tempfile::Builder::new()
            .prefix(PRIVATE_DIR_PREFIX)
            .tempdir()
            .map_err(|e| {
                AgentError::io(
                    "cannot create a private directory in",
                    std::env::temp_dir(),
                    e,
                )
            })?;
        let path = dir.path().join(CONFIG_FILE_NAME);
        create(&path, body)?;
        Ok(ConfigFile {
            path,
            remove_on_drop: true,
            _private_dir: Some(dir),
        })
    }

    /// At `--config-path`, deciding on what is already there (see [`ConfigFile::write`]).
    fn write_at(path: &Path, body: &str) -> Result<Self> {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            fs::create_dir_all(parent)
                .map_err(|e| AgentError::io("cannot create the config directory", parent, e))?;
        }
        // Twice at most: an agent starting beside this one may create the file in between.
        for _ in 0..2 {
            let existing = read_config_path(path)?;
            match decide(path, existing.as_deref(), body) {
                AtConfigPath::Share => {
                    tracing::debug!(path = %path.display(), "the rclone config at --config-path is the one this run would write: using it, and keeping it");
                    return Ok(ConfigFile::at(path, false));
                }
                AtConfigPath::Refuse(message) => return Err(AgentError::invalid(message)),
                AtConfigPath::Write => {}
            }
            if existing.is_some() {
                tracing::info!(path = %path.display(), "replacing the rclone config left by an agent that no longer runs");
                remove_stale_config(path)?;
            }
            match create(path, body) {
                Ok(()) => return Ok(ConfigFile::at(path, true)),
                // Another agent created it since it was read: decide again on its file.
                Err(AgentError::Io { source, .. })
                    if source.kind() == std::io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(e),
            }
        }
        Err(AgentError::invalid(format!(
            "--config-path {}: another run keeps replacing it; give this run a --config-path of its own",
            path.display()
        )))
    }

    /// The config at `--config-path`, not in a private directory.
    fn at(path: &Path, remove_on_drop: bool) -> Self {
        ConfigFile {
            path: path.to_path_buf(),
            remove_on_drop,
            _private_dir: None,
        }
    }

    /// Uses a config file that is already there (`--no-template`); it is never removed.
    pub fn existing(path: &Path) -> Result<Self> {
        let metadata = fs::metadata(path).map_err(|e| {
            AgentError::io("--no-template: cannot read the rclone config at", path, e)
        })?;
        if !metadata.is_file() {
            return Err(AgentError::invalid(format!(
                "--no-template: {} is not a file",
                path.display()
            )));
        }
        Ok(ConfigFile {
            path: path.to_path_buf(),
            remove_on_drop: false,
            _private_dir: None,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The `type` of the `[remote]` section: the backend the agent syncs with.
    pub fn remote_backend(&self) -> Option<String> {
        let text = fs::read_to_string(&self.path).ok()?;
        let section = format!("[{REMOTE_NAME}]");
        let mut lines = text.lines().map(str::trim);
        lines.find(|line| *line == section)?;
        lines
            .take_while(|line| !line.starts_with('['))
            .filter_map(|line| line.split_once('='))
            .find(|(key, _)| key.trim() == "type")
            .map(|(_, value)| value.trim().to_string())
    }

    /// The rclone path `remote_path` means in an existing config file (`--no-template`):
    /// inside `remote_encrypted` when the file defines it, else inside `remote`.
    pub fn existing_target(&self, remote_path: &RemotePath) -> Result<String> {
        let text = fs::read_to_string(&self.path)
            .map_err(|e| AgentError::io("cannot read the rclone config", &self.path, e))?;
        let has_crypt = text
            .lines()
            .any(|line| line.trim() == format!("[{ENCRYPTED_REMOTE_NAME}]"));
        Ok(target_for(has_crypt, true, remote_path))
    }
}

/// Creates `path` (which must not exist) with mode 0600: the agent's header, then `body`.
fn create(path: &Path, body: &str) -> Result<()> {
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| AgentError::io("cannot write the rclone config", path, e))?;
    file.write_all(format!("{}{body}", header(std::process::id())).as_bytes())
        .map_err(|e| AgentError::io("cannot write the rclone config", path, e))
}

impl Drop for ConfigFile {
    fn drop(&mut self) {
        if !self.remove_on_drop {
            return;
        }
        // Only while it still carries our header: a file put there since is not ours.
        match fs::read_to_string(&self.path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Ok(text) if split_header(&text).is_none_or(|(pid, _)| pid != std::process::id()) => {
                tracing::warn!(path = %self.path.display(), "left the file at --config-path in place: it is no longer the config this run wrote");
            }
            _ => {
                if let Err(e) = fs::remove_file(&self.path)
                    && e.kind() != std::io::ErrorKind::NotFound
                {
                    tracing::warn!(path = %self.path.display(), error = %e, "could not remove the rclone config, which holds credentials");
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(OsString, OsString)> {
        pairs
            .iter()
            .map(|(k, v)| (OsString::from(k), OsString::from(v)))
            .collect()
    }

    fn path(raw: &str) -> RemotePath {
        RemotePath::parse(raw, "-d").expect("valid path")
    }

    #[test]
    fn env_becomes_the_remote_section_with_values_kept_exactly() {
        let params = RemoteParams::collect(
            env(&[
                ("REMOTE_TYPE", "s3"),
                ("REMOTE_ENV_AUTH", "true"),
                ("REMOTE_FORCE_PATH_STYLE", "1"),
                ("REMOTE_TOKEN", r#"{"access_token":"a,b","expiry":"x"}"#),
                ("HOME", "/root"),
            ]),
            &[],
            &[],
        )
        .expect("valid");
        assert_eq!(
            params.render(&path("bucket")),
            "[remote]\ntype = s3\nenv_auth = true\nforce_path_style = 1\ntoken = {\"access_token\":\"a,b\",\"expiry\":\"x\"}\n"
        );
        assert!(!params.encryption_enabled());
        assert_eq!(params.target(&path("bucket/dir")), "remote:/bucket/dir");
    }

    #[test]
    fn flags_allow_spaces_around_equals_and_override_env() {
        let params = RemoteParams::collect(
            env(&[("REMOTE_TYPE", "s3"), ("REMOTE_ACL", "public")]),
            &["acl = private".into(), "list_chunk=1,000 \"q\"".into()],
            &[],
        )
        .expect("valid");
        let rendered = params.render(&path("b"));
        assert!(rendered.contains("acl = private\n"), "{rendered}");
        assert!(
            rendered.contains("list_chunk = 1,000 \"q\"\n"),
            "{rendered}"
        );
    }

    #[test]
    fn a_newline_in_a_value_is_refused_naming_the_variable() {
        let err =
            RemoteParams::collect(env(&[("REMOTE_TYPE", "s3\n")]), &[], &[]).expect_err("newline");
        let message = err.to_string();
        assert!(message.contains("REMOTE_TYPE"), "{message}");
        assert!(message.contains("line break"), "{message}");
    }

    #[test]
    fn a_flag_without_equals_is_refused_without_echoing_a_secret() {
        let err =
            RemoteParams::collect(env(&[("REMOTE_TYPE", "s3")]), &["secretvalue".into()], &[])
                .expect_err("no =");
        assert!(err.to_string().contains("--param argument #1"), "{err}");
        assert!(!err.to_string().contains("secretvalue"), "{err}");
        let err = RemoteParams::collect(
            env(&[("REMOTE_TYPE", "s3")]),
            &["bad key=supersecret".into()],
            &[],
        )
        .expect_err("bad key");
        assert!(!err.to_string().contains("supersecret"), "{err}");
    }

    #[test]
    fn missing_type_is_a_clear_error() {
        let err = RemoteParams::collect(env(&[("REMOTE_PROVIDER", "Minio")]), &[], &[])
            .expect_err("no type");
        assert!(err.to_string().contains("REMOTE_TYPE"), "{err}");
        let err = RemoteParams::collect(env(&[("REMOTE_TYPE", "s3")]), &["type=".into()], &[])
            .expect_err("empty type");
        assert!(
            err.to_string().contains("--param 'type=…' is empty"),
            "{err}"
        );
    }

    #[test]
    fn crypt_wraps_the_remote_path_when_encrypted_remote_is_unset() {
        let password = obscure::obscure("pw");
        let params = RemoteParams::collect(
            env(&[("REMOTE_TYPE", "s3"), ("ENCRYPTED_PASSWORD", &password)]),
            &[],
            &[],
        )
        .expect("valid");
        let rendered = params.render(&path("/bucket/dir/"));
        assert!(
            rendered.contains("[remote_encrypted]\ntype = crypt\n"),
            "{rendered}"
        );
        assert!(
            rendered.contains("remote = remote:/bucket/dir\n"),
            "{rendered}"
        );
        assert_eq!(params.target(&path("/bucket/dir/")), "remote_encrypted:");
        assert!(is_encrypted_target(&params.target(&path("/bucket/dir/"))));
        assert!(!is_encrypted_target("remote:/bucket/dir"));
    }

    #[test]
    fn values_rclone_would_take_for_quoted_are_written_in_backticks() {
        let params = RemoteParams::collect(
            env(&[
                ("REMOTE_TYPE", "s3"),
                ("REMOTE_SECRET_ACCESS_KEY", "`abc"),
                ("REMOTE_ACCESS_KEY_ID", "\"\"\"x\"\"\""),
                ("REMOTE_ENDPOINT", "a`b\"c"),
            ]),
            &[],
            &[],
        )
        .expect("valid");
        let rendered = params.render(&path("b"));
        assert!(
            rendered.contains("secret_access_key = ``abc`\n"),
            "{rendered}"
        );
        assert!(
            rendered.contains("access_key_id = `\"\"\"x\"\"\"`\n"),
            "{rendered}"
        );
        assert!(rendered.contains("endpoint = a`b\"c\n"), "{rendered}");
    }

    #[test]
    fn an_empty_password_or_an_explicitly_empty_salt_is_refused_by_name() {
        for (name, value) in [
            ("ENCRYPTED_PASSWORD_PLAIN", String::new()),
            ("ENCRYPTED_PASSWORD", obscure::obscure("")),
            ("ENCRYPTED_PASSWORD", String::new()),
            ("ENCRYPTED_PASSWORD2_PLAIN", String::new()),
            ("ENCRYPTED_PASSWORD2", obscure::obscure("")),
        ] {
            let mut vars = vec![("REMOTE_TYPE", "local"), (name, value.as_str())];
            if name.contains("PASSWORD2") {
                vars.push(("ENCRYPTED_PASSWORD_PLAIN", "pw"));
            }
            let err = RemoteParams::collect(env(&vars), &[], &[]).expect_err(name);
            assert!(err.to_string().contains(name), "{err}");
            assert!(err.to_string().contains("empty"), "{err}");
        }
        let err = RemoteParams::collect(
            env(&[("REMOTE_TYPE", "local")]),
            &[],
            &["password_plain=".into()],
        )
        .expect_err("-e password_plain=");
        assert!(
            err.to_string().contains("--enc-param 'password_plain=…'"),
            "{err}"
        );
        // Unset password2: rclone's default salt, as before.
        RemoteParams::collect(
            env(&[("REMOTE_TYPE", "local"), ("ENCRYPTED_PASSWORD_PLAIN", "pw")]),
            &[],
            &[],
        )
        .expect("no salt is allowed");
    }

    #[test]
    fn with_encrypted_remote_set_the_path_is_inside_the_crypt_remote() {
        let password = obscure::obscure("pw");
        let params = RemoteParams::collect(
            env(&[
                ("REMOTE_TYPE", "s3"),
                ("ENCRYPTED_PASSWORD", &password),
                ("ENCRYPTED_REMOTE", "remote:bucket"),
            ]),
            &[],
            &[],
        )
        .expect("valid");
        assert!(
            params
                .render(&path("x"))
                .contains("remote = remote:bucket\n")
        );
        assert_eq!(
            params.target(&path("some/dir")),
            "remote_encrypted:/some/dir"
        );
    }

    #[test]
    fn plain_passwords_are_obscured_and_obscured_ones_are_checked() {
        let params = RemoteParams::collect(
            env(&[
                ("REMOTE_TYPE", "local"),
                ("ENCRYPTED_PASSWORD_PLAIN", "secret one"),
                ("ENCRYPTED_PASSWORD2_PLAIN", "salt"),
            ]),
            &[],
            &[],
        )
        .expect("valid");
        let rendered = params.render(&path("x"));
        assert!(
            !rendered.contains("secret one") && !rendered.contains("_plain"),
            "{rendered}"
        );
        let password_line = rendered
            .lines()
            .find_map(|l| l.strip_prefix("password = "))
            .expect("password line");
        assert_eq!(obscure::reveal(password_line).as_deref(), Ok("secret one"));

        let err = RemoteParams::collect(
            env(&[
                ("REMOTE_TYPE", "local"),
                ("ENCRYPTED_PASSWORD", "plain text!"),
            ]),
            &[],
            &[],
        )
        .expect_err("not obscured");
        assert!(
            err.to_string().contains("ENCRYPTED_PASSWORD_PLAIN"),
            "{err}"
        );
        assert!(!err.to_string().contains("plain text!"), "{err}");
    }

    #[test]
    fn a_crypt_remote_of_another_type_is_refused_by_name_without_its_value() {
        let err = RemoteParams::collect(
            env(&[
                ("REMOTE_TYPE", "local"),
                ("ENCRYPTED_TYPE", "s3-with-token-abc"),
                ("ENCRYPTED_PASSWORD_PLAIN", "pw"),
            ]),
            &[],
            &[],
        )
        .expect_err("type s3");
        assert!(err.to_string().contains("ENCRYPTED_TYPE"), "{err}");
        assert!(!err.to_string().contains("s3-with-token-abc"), "{err}");
    }

    #[test]
    fn encryption_without_a_password_is_refused() {
        let err = RemoteParams::collect(
            env(&[
                ("REMOTE_TYPE", "s3"),
                ("ENCRYPTED_FILENAME_ENCRYPTION", "standard"),
            ]),
            &[],
            &[],
        )
        .expect_err("no password");
        assert!(err.to_string().contains("ENCRYPTED_PASSWORD"), "{err}");
    }

    #[test]
    fn remote_paths_reject_parent_segments() {
        assert!(RemotePath::parse("bucket/../other", "-d").is_err());
        assert_eq!(path("bucket//x/").inside("remote"), "remote:/bucket//x");
        assert_eq!(path("/").inside("remote"), "remote:/");
    }

    #[test]
    fn only_a_file_the_agent_wrote_is_replaced_or_shared() {
        let path = Path::new("/x/rclone.conf");
        let body = "[remote]\ntype = local\n";
        assert_eq!(decide(path, None, body), AtConfigPath::Write);
        let hand_written = decide(path, Some(body.replace("local", "s3").as_str()), body);
        let AtConfigPath::Refuse(message) = hand_written else {
            panic!("{hand_written:?}")
        };
        assert!(
            message.contains("/x/rclone.conf") && message.contains("--no-template"),
            "{message}"
        );
        // Identical without a header: nothing to change, nothing to remove.
        assert_eq!(decide(path, Some(body), body), AtConfigPath::Share);
        // pid 1 runs (init, or this container's agent); no process has pid i32::MAX.
        let live = format!("{}{body}", header(1));
        assert_eq!(decide(path, Some(&live), body), AtConfigPath::Share);
        let AtConfigPath::Refuse(message) = decide(path, Some(&live), "[remote]\n") else {
            panic!("a live writer's different config must be refused")
        };
        assert!(message.contains("pid 1"), "{message}");
        let dead = format!("{}[remote]\ntype = s3\n", header(i32::MAX as u32));
        assert_eq!(decide(path, Some(&dead), body), AtConfigPath::Write);
        let own = format!("{}[remote]\n", header(std::process::id()));
        assert_eq!(decide(path, Some(&own), body), AtConfigPath::Write);
    }

    #[test]
    fn a_relative_path_on_a_local_remote_is_under_the_working_directory() {
        let local =
            RemoteParams::collect(env(&[("REMOTE_TYPE", "local")]), &[], &[]).expect("valid");
        let cwd = || Ok(PathBuf::from("/work/dir/"));
        let resolved = local.resolve(&path("./remote/x"), cwd).expect("utf8");
        assert_eq!(resolved.inside("remote"), "remote:/work/dir/remote/x");
        assert_eq!(
            local
                .resolve(&path("."), cwd)
                .expect("utf8")
                .inside("remote"),
            "remote:/work/dir"
        );
        assert_eq!(
            local
                .resolve(&path("/abs"), cwd)
                .expect("abs")
                .inside("remote"),
            "remote:/abs"
        );
        let s3 = RemoteParams::collect(env(&[("REMOTE_TYPE", "s3")]), &[], &[]).expect("valid");
        assert_eq!(
            s3.resolve(&path("bucket/x"), cwd)
                .expect("s3")
                .inside("remote"),
            "remote:/bucket/x"
        );
        let wrapped = RemoteParams::collect(
            env(&[("REMOTE_TYPE", "local"), ("ENCRYPTED_PASSWORD_PLAIN", "pw")]),
            &[],
            &[],
        )
        .expect("valid");
        let resolved = wrapped.resolve(&path("remote"), cwd).expect("utf8");
        assert!(
            wrapped
                .render(&resolved)
                .contains("remote = remote:/work/dir/remote\n")
        );
    }

    #[test]
    fn config_file_is_private_and_removed_after_use() {
        use std::os::unix::fs::PermissionsExt as _;
        let file = ConfigFile::write(None, "[remote]\ntype = local\n").expect("written");
        let path = file.path().to_path_buf();
        let mode = fs::metadata(&path).expect("exists").permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        drop(file);
        assert!(!path.exists());
    }
}
