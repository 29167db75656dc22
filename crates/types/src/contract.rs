//! Names users and the two binaries rely on. Changing one of these is a breaking change.

/// `REMOTE_<KEY>=value` becomes `key = value` in the `[remote]` section of the rclone config.
pub const REMOTE_ENV_PREFIX: &str = "REMOTE_";
/// `ENCRYPTED_<KEY>=value` becomes `key = value` in the `[remote_encrypted]` (crypt) section.
pub const ENCRYPTED_ENV_PREFIX: &str = "ENCRYPTED_";

/// Whether the environment variable `name` becomes a value of the rclone config.
pub fn is_config_env(name: &str) -> bool {
    name.starts_with(REMOTE_ENV_PREFIX) || name.starts_with(ENCRYPTED_ENV_PREFIX)
}

/// What makes a value impossible to write into rclone's config file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ConfigValueProblem {
    #[error(
        "contains a line break; rclone config values are single lines (a Secret made with `echo` often ends in a newline: use `echo -n` or `printf`)"
    )]
    LineBreak,
    #[error("starts or ends with white space, which rclone's config file cannot keep; remove it")]
    OuterWhiteSpace,
}

/// Why rclone's config cannot hold `value`, if it cannot. The agent refuses such a value;
/// the operator refuses it before a Pod is made.
pub fn config_value_problem(value: &str) -> Option<ConfigValueProblem> {
    if value.contains(['\n', '\r', '\0']) {
        Some(ConfigValueProblem::LineBreak)
    } else if value != value.trim() {
        Some(ConfigValueProblem::OuterWhiteSpace)
    } else {
        None
    }
}

/// Name of the rclone remote built from `REMOTE_*`.
pub const REMOTE_NAME: &str = "remote";
/// Name of the rclone crypt remote built from `ENCRYPTED_*`, layered over [`REMOTE_NAME`].
pub const ENCRYPTED_REMOTE_NAME: &str = "remote_encrypted";

/// The crypt password, rclone-obscured (as rclone's own config stores it).
pub const ENV_ENCRYPTED_PASSWORD: &str = "ENCRYPTED_PASSWORD";
/// The crypt salt ("password2" in rclone), rclone-obscured.
pub const ENV_ENCRYPTED_PASSWORD2: &str = "ENCRYPTED_PASSWORD2";
/// The crypt password in plain text; the agent obscures it itself.
pub const ENV_ENCRYPTED_PASSWORD_PLAIN: &str = "ENCRYPTED_PASSWORD_PLAIN";
/// The crypt salt in plain text; the agent obscures it itself.
pub const ENV_ENCRYPTED_PASSWORD2_PLAIN: &str = "ENCRYPTED_PASSWORD2_PLAIN";
/// What the crypt remote wraps. Unset: `remote:<the -s/-d remote path>`.
pub const ENV_ENCRYPTED_REMOTE: &str = "ENCRYPTED_REMOTE";

/// Label a Pod carries to opt in to the admission webhook.
pub const POD_OPT_IN_LABEL: &str = "riotkit.org/volume-syncing-controller";
/// Pod annotation overriding `syncOptions.permissions.uid`.
pub const POD_UID_ANNOTATION: &str = "riotkit.org/volume-user-id";
/// Pod annotation overriding `syncOptions.permissions.gid`.
pub const POD_GID_ANNOTATION: &str = "riotkit.org/volume-group-id";

/// Pod annotation: restore the remote as it was at this RFC 3339 time (needs the trash).
pub const RESTORE_AS_OF_ANNOTATION: &str = "riotkit.org/restore-as-of";
/// PodFilesystemSync annotation: the fingerprint of a lost encryption key, to make a new one
/// in its place (an explicit act: what was encrypted with the old key stays unreadable).
pub const NEW_ENCRYPTION_KEY_ANNOTATION: &str = "riotkit.org/new-encryption-key";
/// PodFilesystemSync annotation: an RFC 3339 time. Each sidecar of the resource whose last
/// upload started before it runs one more (`kubectl pfss sync-now`, or set in a manifest).
pub const SYNC_REQUESTED_AT_ANNOTATION: &str = "riotkit.org/sync-requested-at";

/// Why a [`SYNC_REQUESTED_AT_ANNOTATION`] value asks for nothing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "annotation {SYNC_REQUESTED_AT_ANNOTATION}: '{value}' is not an RFC 3339 time (e.g. 2026-11-24T18:00:00Z); no sync is requested"
)]
pub struct SyncRequestError {
    pub value: String,
}

/// The time a [`SYNC_REQUESTED_AT_ANNOTATION`] value asks a sync for.
pub fn parse_sync_requested_at(
    value: &str,
) -> Result<chrono::DateTime<chrono::Utc>, SyncRequestError> {
    chrono::DateTime::parse_from_rfc3339(value.trim())
        .map(|time| time.with_timezone(&chrono::Utc))
        .map_err(|_| SyncRequestError {
            value: value.to_string(),
        })
}
/// Pod annotation (`"true"`): with `syncOptions.writers: one`, this Pod is preferred as the
/// primary writer of its remote path (granted a free lease first; a holder without it yields).
pub const PREFER_PRIMARY_ANNOTATION: &str = "riotkit.org/prefer-primary";

/// Injected init container that restores the volume before the app starts.
pub const INIT_CONTAINER_NAME: &str = "init-volume-restore";
/// Injected sidecar that keeps syncing the volume to the remote.
pub const SIDECAR_CONTAINER_NAME: &str = "volume-syncing-sidecar";

/// Path of the agent binary inside its image.
pub const AGENT_BINARY_PATH: &str = "/usr/bin/volume-syncing-controller";
/// Default path of the rendered rclone config inside the agent image.
pub const DEFAULT_CONFIG_PATH: &str = "/etc/volume-syncing-controller/rclone.conf";
/// Default PID file of a running agent, read by `interrupt`.
pub const DEFAULT_PID_PATH: &str = "/run/volume-syncing-controller.pid";

/// Settings of the agent that the operator sets in injected containers (each also a flag).
/// The local directory (`--src` of sync-to-remote, `--dst` of remote-to-local-sync).
pub const ENV_LOCAL_PATH: &str = "VSC_LOCAL_PATH";
/// The remote path (`--dst` of sync-to-remote, `--src` of remote-to-local-sync).
pub const ENV_REMOTE_PATH: &str = "VSC_REMOTE_PATH";
/// The agent's PID file, read by `interrupt`.
pub const ENV_PID_PATH: &str = "VSC_PID_PATH";
/// The rclone config path (`-c/--config-path`); the seed's documented default in a Pod is
/// [`DEFAULT_CONFIG_PATH`]. Prefixed like every agent setting: an application's own
/// `CONFIG_PATH` in the same container was read as the agent's, and its file removed.
pub const ENV_CONFIG_PATH: &str = "VSC_CONFIG_PATH";
/// The Pod's name and namespace (downward API), named in sync reports: with hostNetwork the
/// hostname is the node's.
pub const ENV_POD_NAME: &str = "POD_NAME";
pub const ENV_POD_NAMESPACE: &str = "POD_NAMESPACE";
/// How long the agent's running and final sync may take after SIGTERM
/// (`--final-sync-timeout`, e.g. `25s`); the operator derives it from the Pod's
/// `terminationGracePeriodSeconds`.
pub const ENV_FINAL_SYNC_TIMEOUT: &str = "VSC_FINAL_SYNC_TIMEOUT";
/// What the agent keeps in hand of the Pod's grace period: time to log why it stopped and
/// exit before the kubelet kills it.
pub const FINAL_SYNC_MARGIN_SECONDS: i64 = 5;
/// The Kubernetes default `terminationGracePeriodSeconds`.
pub const DEFAULT_GRACE_PERIOD_SECONDS: i64 = 30;
/// The agent's log format (`text` or `json`).
pub const ENV_LOG_FORMAT: &str = "VSC_LOG_FORMAT";

/// How the agent and the operator write their logs: the operator's `--log-format` and
/// `--agent-log-format`, the agent's `--log-format` / [`ENV_LOG_FORMAT`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
pub enum LogFormat {
    /// Lines for people.
    #[default]
    Text,
    /// One JSON object per line, fields flattened (for log collectors).
    Json,
}

impl LogFormat {
    /// The value of [`ENV_LOG_FORMAT`] that selects this format.
    pub fn as_str(self) -> &'static str {
        match self {
            LogFormat::Text => "text",
            LogFormat::Json => "json",
        }
    }
}
/// Where the agent reports its syncs, about which resource, with which token (a file: the
/// kubelet rotates the token in place).
pub const ENV_REPORT_URL: &str = "VSC_REPORT_URL";
pub const ENV_REPORT_RESOURCE: &str = "VSC_REPORT_RESOURCE";
pub const ENV_REPORT_TOKEN_FILE: &str = "VSC_REPORT_TOKEN_FILE";
/// The projected volume holding the Pod's report token, where the agent containers mount it,
/// and the file in it.
pub const REPORT_TOKEN_VOLUME: &str = "vsc-report-token";
pub const REPORT_TOKEN_DIR: &str = "/var/run/secrets/volume-syncing-controller";
pub const REPORT_TOKEN_FILE_NAME: &str = "report-token";
/// How long a report token lives; the kubelet renews it at 80% of that.
pub const REPORT_TOKEN_EXPIRATION_SECONDS: i64 = 3600;

/// The audience of a Pod's report token: it names the one PodFilesystemSync the token may
/// report about, so the API server's TokenReview proves both the Pod (the token is bound to
/// it) and the resource (the audience is in the immutable Pod spec the webhook wrote).
pub fn report_audience(namespace: &str, name: &str) -> String {
    format!("volume-syncing-controller.riotkit.org/{namespace}/{name}")
}

/// Restore targets that would put the operating system or other users at risk: a restore
/// mirrors the remote, so it deletes whatever else the directory holds. The list is what a
/// system is made of, not what a Pod mounts volumes at: the root, the top-level directories
/// of the Filesystem Hierarchy Standard (and of common distributions: merged `/usr`,
/// multilib, Nix, snaps), the hierarchies of `/usr`, `/usr/local` and `/var`, and the shared
/// runtime directories. Their subdirectories stay allowed (`/srv/data`, `/var/lib/myapp`,
/// `/usr/share/nginx/html`, `/mnt/volume`, `/home/user/app`): that is where volumes go, and
/// a directory with files in it that the agent does not own is refused anyway. The agent
/// checks every spelling (symlinks resolved); the webhook warns about a `localPath` here.
pub const FORBIDDEN_RESTORE_ROOTS: &[&str] = &[
    "/",
    // FHS 3.0 top level, and the ones distributions add.
    "/bin",
    "/boot",
    "/dev",
    "/etc",
    "/home",
    "/lib",
    "/lib32",
    "/lib64",
    "/libx32",
    "/lost+found",
    "/media",
    "/mnt",
    "/nix",
    "/opt",
    "/proc",
    "/root",
    "/run",
    "/sbin",
    "/snap",
    "/srv",
    "/sys",
    "/tmp",
    "/usr",
    "/var",
    // The /usr hierarchy (FHS 4.1).
    "/usr/bin",
    "/usr/games",
    "/usr/include",
    "/usr/lib",
    "/usr/lib32",
    "/usr/lib64",
    "/usr/libexec",
    "/usr/libx32",
    "/usr/local",
    "/usr/sbin",
    "/usr/share",
    "/usr/src",
    // Debian-style multiarch library directories.
    "/usr/lib/x86_64-linux-gnu",
    "/usr/lib/aarch64-linux-gnu",
    "/usr/lib/i386-linux-gnu",
    "/usr/lib/arm-linux-gnueabihf",
    // The /usr/local hierarchy (FHS 4.9).
    "/usr/local/bin",
    "/usr/local/etc",
    "/usr/local/games",
    "/usr/local/include",
    "/usr/local/lib",
    "/usr/local/libexec",
    "/usr/local/man",
    "/usr/local/sbin",
    "/usr/local/share",
    "/usr/local/src",
    // The /var hierarchy (FHS 5).
    "/var/account",
    "/var/backups",
    "/var/cache",
    "/var/crash",
    "/var/games",
    "/var/lib",
    "/var/local",
    "/var/lock",
    "/var/log",
    "/var/mail",
    "/var/opt",
    "/var/run",
    "/var/spool",
    "/var/tmp",
    "/var/yp",
    // Shared memory and runtime directories of every process or user.
    "/dev/shm",
    "/dev/pts",
    "/dev/mqueue",
    "/run/lock",
    "/run/shm",
    "/run/user",
];

/// Kernel interfaces: no directory at or below them holds data to restore.
pub const FORBIDDEN_RESTORE_TREES: &[&str] = &["/proc", "/sys"];

/// The forbidden restore root `path` names as written (`.`, `..`, `//` and a trailing `/`
/// folded; symlinks are not resolved).
pub fn forbidden_restore_root(path: &str) -> Option<&'static str> {
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            name => parts.push(name),
        }
    }
    let normalized = format!("/{}", parts.join("/"));
    FORBIDDEN_RESTORE_ROOTS
        .iter()
        .copied()
        .find(|root| *root == normalized)
        .or_else(|| {
            FORBIDDEN_RESTORE_TREES
                .iter()
                .copied()
                .find(|tree| normalized == *tree || normalized.starts_with(&format!("{tree}/")))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sync_request_is_an_rfc_3339_time_and_a_bad_one_names_the_annotation() {
        let time = parse_sync_requested_at("2026-11-24T19:00:00+01:00").expect("valid");
        assert_eq!(time.to_rfc3339(), "2026-11-24T18:00:00+00:00");
        let error = parse_sync_requested_at("now please").expect_err("invalid");
        let text = error.to_string();
        assert!(
            text.contains(SYNC_REQUESTED_AT_ANNOTATION) && text.contains("'now please'"),
            "{text}"
        );
    }

    #[test]
    fn forbidden_restore_roots_are_found_as_written() {
        for (path, root) in [
            ("/", "/"),
            ("//", "/"),
            ("/srv/", "/srv"),
            ("/srv/data/..", "/srv"),
            ("/usr//share/.", "/usr/share"),
            ("/var/lib", "/var/lib"),
            ("/proc/self", "/proc"),
        ] {
            assert_eq!(forbidden_restore_root(path), Some(root), "{path}");
        }
        for path in [
            "/srv/data",
            "/usr/share/nginx/html",
            "/var/lib/myapp",
            "/data",
            "/processes",
        ] {
            assert_eq!(forbidden_restore_root(path), None, "{path}");
        }
    }
}
