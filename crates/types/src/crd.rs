//! The `PodFilesystemSync` custom resource (`riotkit.org/v1alpha1`).
//!
//! The schema is generated from these types (`PodFilesystemSync::crd()`); the committed YAML
//! in `crds/` is checked against it by `crates/types/tests/crd_yaml.rs`. Every field carries
//! a doc comment, which becomes its description for `kubectl explain`.
//!
//! Rules that span fields are written twice: as CEL `x-kubernetes-validations` in the schema
//! (the API server rejects a bad resource at `kubectl apply`) and in [`PodFilesystemSync::validate`]
//! (the reconciler reports them in a condition and the webhook denies a Pod with them, which
//! also covers resources stored before a rule existed).

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;

use k8s_openapi::api::core::v1::ResourceRequirements;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, LabelSelector, MicroTime, Time};
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::contract::{
    self, ENV_ENCRYPTED_PASSWORD, ENV_ENCRYPTED_PASSWORD2, INIT_CONTAINER_NAME,
    SIDECAR_CONTAINER_NAME, config_value_problem, is_config_env,
};
use crate::schedule::Schedule;

/// API group of the custom resource.
pub const GROUP: &str = "riotkit.org";
/// API version of the custom resource.
pub const VERSION: &str = "v1alpha1";
/// Type of the condition that summarises whether the resource is usable.
pub const CONDITION_READY: &str = "Ready";
/// Type of the condition that says whether the Pods' latest syncs succeeded.
pub const CONDITION_SYNCED: &str = "Synced";
/// Type of the condition about the `riotkit.org/sync-requested-at` annotation (present only
/// while the annotation is).
pub const CONDITION_SYNC_REQUESTED: &str = "SyncRequested";
/// `SyncRequested=True`: the sidecars are told of the request when they next ask (10 s).
pub const REASON_SYNC_REQUESTED: &str = "Requested";
/// `SyncRequested=False`: the annotation is not an RFC 3339 time.
pub const REASON_INVALID_SYNC_REQUEST: &str = "InvalidSyncRequest";
/// `Synced=Unknown`: no Pod has reported a sync yet.
pub const REASON_NO_REPORTS: &str = "NoReports";
/// `Synced=True`: every reporting Pod's last sync succeeded.
pub const REASON_SYNCED: &str = "Synced";
/// `Synced=Unknown`: a Pod's last sync failed, fewer times in a row than the threshold.
pub const REASON_RETRYING: &str = "Retrying";
/// `Synced=False` (and a Warning Event): a Pod's last syncs failed, as many in a row as the
/// threshold.
pub const REASON_SYNC_FAILING: &str = "SyncFailing";
/// Normal Event: a Pod whose syncs were failing synced again.
pub const REASON_SYNC_RECOVERED: &str = "SyncRecovered";
/// `Synced=False`: no Pod reported a successful sync for three schedule periods.
pub const REASON_NO_RECENT_SUCCESS: &str = "NoRecentSuccess";
/// Failures in a row that make a Pod's syncs "failing" when
/// `healthCheck.unhealthyAfterFailures` is not set.
pub const DEFAULT_FAILING_AFTER: u32 = 3;
/// Pods whose last syncs `status.pods` keeps (the oldest reporter is dropped first).
pub const MAX_REPORTED_PODS: usize = 20;
/// Suffix of the encryption Secret's name when `automaticEncryption.secretName` is not set.
pub const ENCRYPTION_SECRET_SUFFIX: &str = "-encryption";
/// Env names the operator sets itself in the injected containers; `spec.env` may not set them.
pub const RESERVED_ENV_NAMES: [&str; 6] = [
    contract::ENV_LOCAL_PATH,
    contract::ENV_REMOTE_PATH,
    contract::ENV_PID_PATH,
    contract::ENV_REPORT_URL,
    contract::ENV_REPORT_RESOURCE,
    contract::ENV_REPORT_TOKEN_FILE,
];

/// Largest uid/gid Kubernetes accepts in a security context.
const MAX_ID: i64 = 2_147_483_647;
/// Longest localPath / remotePath accepted (PATH_MAX).
const MAX_PATH_LEN: usize = 4096;

/// Restores a directory of selected Pods from rclone remote storage before the app starts
/// (init container `init-volume-restore`) and keeps syncing it back while the Pod runs
/// (sidecar `volume-syncing-sidecar`). Pods opt in with the label
/// `riotkit.org/volume-syncing-controller: "true"` and are matched by `spec.podSelector` in the
/// same namespace.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[kube(
    group = "riotkit.org",
    version = "v1alpha1",
    kind = "PodFilesystemSync",
    plural = "podfilesystemsyncs",
    singular = "podfilesystemsync",
    shortname = "pfss",
    namespaced,
    status = "PodFilesystemSyncStatus",
    derive = "PartialEq",
    doc = "Restores a directory of selected Pods from rclone remote storage before the app starts and keeps syncing it back while the Pod runs.",
    printcolumn = r#"{"name":"Remote path","type":"string","jsonPath":".spec.remotePath","description":"Remote path (a template) the directory is synced with"}"#,
    printcolumn = r#"{"name":"Local path","type":"string","jsonPath":".spec.localPath","description":"Directory inside the Pod"}"#,
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status","description":"Whether the resource is valid and its Secrets exist"}"#,
    printcolumn = r#"{"name":"Synced","type":"string","jsonPath":".status.conditions[?(@.type==\"Synced\")].status","description":"Whether the Pods' latest syncs succeeded (Unknown: no report yet, or retrying)"}"#,
    printcolumn = r#"{"name":"Primary","type":"string","jsonPath":".status.primaries[0].pod","description":"The Pod that uploads (syncOptions.writers: one; the first remote path's)"}"#,
    printcolumn = r#"{"name":"Last sync","type":"date","jsonPath":".status.lastSyncTime","description":"When a Pod last reported a successful sync to the remote"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#,
    printcolumn = r#"{"name":"Selector","type":"string","jsonPath":".spec.podSelector","priority":1,"description":"Which Pods of the namespace are selected"}"#
)]
#[serde(rename_all = "camelCase")]
#[schemars(transform = kubernetes_schema)]
pub struct PodFilesystemSyncSpec {
    /// Selects the Pods (in this resource's namespace) whose directory is synced. Pods must
    /// also carry the label `riotkit.org/volume-syncing-controller: "true"`. An empty selector
    /// selects nothing. A Pod selected by two resources is rejected.
    #[schemars(extend("x-kubernetes-validations" = [{
        "rule": "(has(self.matchLabels) && size(self.matchLabels) > 0) || (has(self.matchExpressions) && size(self.matchExpressions) > 0)",
        "message": "an empty podSelector selects no Pods: set matchLabels or matchExpressions"
    }]))]
    pub pod_selector: LabelSelector,

    /// Absolute path of the directory inside the Pod's containers to restore and sync, e.g.
    /// `/var/www/riotkit/wp-content`. A volume of the Pod must be mounted at or above it; that
    /// mount is copied into the injected containers. A system directory (`/srv`, `/etc`,
    /// `/var/lib`, ...; the agent's restore refuses them) is not Ready unless
    /// `syncOptions.cleanUp.forceLocal`: use a directory below it.
    #[schemars(length(min = 2, max = 4096))]
    #[schemars(extend("x-kubernetes-validations" = [
        {"rule": "self.startsWith('/')", "message": "localPath must be an absolute path"},
        {"rule": "!self.matches('(^|/)\\\\.\\\\.(/|$)')", "message": "localPath must not contain '..'"}
    ]))]
    pub local_path: String,

    /// Path on the rclone remote, e.g. `/example-org-bucket/wordpress`. A Jinja2 (minijinja)
    /// template rendered per Pod with `pod` in context: both the Kubernetes shape
    /// (`{{ pod.metadata.annotations["subdir"] }}`) and the Go shape of the original
    /// (`{{ pod.ObjectMeta.Annotations["subdir"] }}`) work. An undefined value is an error,
    /// never an empty string. The rendered path may not contain `..` and must start with the
    /// template's text before its first `{{`.
    #[schemars(length(min = 1, max = 4096))]
    pub remote_path: String,

    /// Where the restore init container goes among the Pod's init containers.
    #[serde(default)]
    pub init_container_placement: InitContainerPlacement,

    /// How and when the directory is synced.
    #[serde(default)]
    pub sync_options: SyncOptions,

    /// Environment of the injected containers; values are templates like `remotePath`.
    /// `REMOTE_<KEY>` becomes `<key>` in the rclone remote's config (e.g. `REMOTE_TYPE: s3`),
    /// `ENCRYPTED_<KEY>` configures the crypt layer. Keep credentials in a Secret and list it
    /// in `envFromSecrets`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<String, String>,

    /// Secrets whose keys become environment variables of the injected containers (envFrom),
    /// e.g. `REMOTE_ACCESS_KEY_ID` and `REMOTE_SECRET_ACCESS_KEY`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub env_from_secrets: Vec<SecretReference>,

    /// End-to-end encryption with a key the operator generates and keeps in a Secret.
    #[serde(default)]
    pub automatic_encryption: AutomaticEncryption,

    /// Verbose logs of the agent (`-v`), e.g. every transferred file.
    #[serde(default)]
    pub debug: bool,

    /// Resource requests and limits of the injected containers. Unset: the operator's
    /// defaults (Helm value `agent.resources`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourceRequirements>,

    /// Health and metrics of the sync sidecar.
    #[serde(default)]
    pub health_check: HealthCheck,

    /// How the sync sidecar is injected. `auto`: as a native sidecar (an init container with
    /// `restartPolicy: Always`, so its last sync runs after the app stopped) when the cluster
    /// supports it (Kubernetes >= 1.29), else as a regular container. `native` and `classic`
    /// force one way.
    #[serde(default)]
    pub sidecar_mode: SidecarMode,
}

/// Where the restore init container goes among the Pod's init containers.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = [{
    "rule": "(has(self.placement) && (self.placement == 'before' || self.placement == 'after')) ? (has(self.containerReference) && size(self.containerReference) > 0) : (!has(self.containerReference) || size(self.containerReference) == 0)",
    "message": "placement before/after needs containerReference; first/last must not set it",
    "fieldPath": ".containerReference"
}]))]
pub struct InitContainerPlacement {
    /// Name of the Pod's init container that `before`/`after` refer to. Must be empty for
    /// `first`/`last`. A name the Pod does not have rejects the Pod.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 63))]
    pub container_reference: Option<String>,

    /// `first` or `last` among the init containers, or `before`/`after` the one named in
    /// `containerReference`.
    #[serde(default)]
    pub placement: Placement,
}

/// Position of the restore init container.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Placement {
    First,
    #[default]
    Last,
    Before,
    After,
}

/// Placement resolved against its container reference.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EffectivePlacement<'a> {
    First,
    Last,
    Before(&'a str),
    After(&'a str),
}

/// What triggers a sync to the remote.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum SyncMethod {
    #[default]
    Scheduler,
    Fsnotify,
}

/// How the sync sidecar is injected (the CRD's `sidecarMode`, the operator's
/// `--sidecar-mode`).
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
#[serde(rename_all = "lowercase")]
pub enum SidecarMode {
    #[default]
    Auto,
    Native,
    Classic,
}

impl SidecarMode {
    /// Whether the sidecar becomes a native sidecar, given whether the cluster supports them.
    pub fn is_native(self, cluster_supports_native: bool) -> bool {
        match self {
            SidecarMode::Auto => cluster_supports_native,
            SidecarMode::Native => true,
            SidecarMode::Classic => false,
        }
    }
}

/// A sync an injected container reported.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SyncReportStatus {
    /// When the operator received the report.
    pub time: Time,
    /// The reporting Pod.
    pub pod: String,
    /// `to-remote` (the sidecar) or `to-local` (the restore).
    pub direction: String,
    /// Whether the sync succeeded.
    pub success: bool,
    /// The error, when it failed.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
}

/// The latest syncs one Pod reported.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PodSyncStatus {
    /// The Pod's name.
    pub name: String,
    /// Direction of its last report: `to-remote` (the sidecar) or `to-local` (the restore).
    pub direction: String,
    /// When the operator received its last report.
    pub last_report_time: Time,
    /// When the agent sent its last report (microseconds): a report not newer than this is
    /// a replay and is refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_report_sent_at: Option<MicroTime>,
    /// When it last reported a successful sync (either direction).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_success_time: Option<Time>,
    /// Its failed syncs since the last success; 0 when its last sync succeeded.
    #[serde(default)]
    pub consecutive_failures: u32,
    /// When its last failed sync was reported.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_failure_time: Option<Time>,
    /// The error of its last failed sync (kept after a success, with `lastFailureTime`).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub last_error: String,
}

/// Limits checked before a sync may delete anything (the agent's deletion plan).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Safety {
    /// Refuse a sync that would delete more than this percentage of the destination's files
    /// (nothing is touched; 100 turns the check off).
    #[serde(default = "default_max_delete_percent")]
    #[schemars(range(min = 0, max = 100))]
    pub max_delete_percent: u8,

    /// Refuse a sync that would delete more than this many files. 0: no limit.
    #[serde(default)]
    pub max_delete_files: u64,

    /// A file, relative to localPath, that must exist before an upload: its absence means
    /// the volume is not mounted, and the upload is refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 1024))]
    pub require_sentinel: Option<String>,

    /// Restore even when the remote's last upload did not complete (it may hold a partial
    /// tree). Off: such a restore is refused and the Pod does not start.
    #[serde(default)]
    pub allow_incomplete_restore: bool,
}

fn default_max_delete_percent() -> u8 {
    50
}

impl Default for Safety {
    fn default() -> Self {
        Safety {
            max_delete_percent: default_max_delete_percent(),
            max_delete_files: 0,
            require_sentinel: None,
            allow_incomplete_restore: false,
        }
    }
}

/// Versions of the remote files a sync deleted or overwrote, under
/// `<remotePath>/.volume-syncing-controller.trash/`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Trash {
    /// Keep deleted and overwritten files.
    #[serde(default)]
    pub enabled: bool,
    /// Purge versions older than this many days. 0: no age limit.
    #[serde(default = "default_trash_days")]
    pub retention_days: u32,
    /// Keep only the newest this many versions. 0: no count limit.
    #[serde(default)]
    pub keep: u32,
}

fn default_trash_days() -> u32 {
    30
}

impl Default for Trash {
    fn default() -> Self {
        Trash {
            enabled: false,
            retention_days: default_trash_days(),
            keep: 0,
        }
    }
}

/// Health and metrics of the sync sidecar.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct HealthCheck {
    /// Mark the sidecar unhealthy (its liveness probe fails, so kubelet restarts it) once
    /// this many syncs in a row have failed. 0: never. Also the failures in a row after
    /// which a Pod's reports make the resource `Synced=False` (reason `SyncFailing`; 0: 3).
    #[serde(default)]
    #[schemars(range(min = 0, max = 1000))]
    pub unhealthy_after_failures: u32,

    /// Port of the sidecar's `/healthz`, `/readyz` and Prometheus `/metrics`. Unset: not
    /// served, unless `unhealthyAfterFailures` is set (then 9841).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 65535))]
    pub port: Option<u16>,
}

/// Sidecar status port when health checks need one and none is given.
pub const DEFAULT_STATUS_PORT: u16 = 9841;

impl HealthCheck {
    /// The port the sidecar serves its status on, if any.
    pub fn effective_port(&self) -> Option<u16> {
        self.port
            .or((self.unhealthy_after_failures > 0).then_some(DEFAULT_STATUS_PORT))
    }
}

/// How and when the directory is synced.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = [{
    "rule": "!has(self.method) || self.method != 'scheduler' || (has(self.schedule) && size(self.schedule) > 0)",
    "message": "method scheduler needs a schedule",
    "fieldPath": ".schedule"
}]))]
pub struct SyncOptions {
    /// `scheduler`: sync on `schedule`. `fsnotify`: sync when files change (at most once per
    /// `maxOneSyncPerMinutes`), and also on `schedule` when one is set, as a safety net.
    /// Every sync waits for the previous one to finish.
    #[serde(default)]
    pub method: SyncMethod,

    /// When to sync: cron with seconds (`0 30 * * * *`), 5-field cron (`*/5 * * * *`),
    /// `@hourly`, or `@every 5m`. Required with method `scheduler`; may be empty with
    /// `fsnotify`. Checked by the agent's own parser: one it rejects makes the resource
    /// Ready=False.
    #[serde(default = "default_schedule")]
    #[schemars(length(max = 256))]
    pub schedule: String,

    /// With method `fsnotify`: at most one sync per this many minutes (a number or a numeric
    /// string, e.g. `"15"`). Unset: the agent's default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("x-kubernetes-validations" = [{
        "rule": "type(self) == string ? self.matches('^[0-9]{1,6}$') : (self >= 0 && self <= 999999)",
        "message": "maxOneSyncPerMinutes must be a whole number of minutes"
    }]))]
    pub max_one_sync_per_minutes: Option<IntOrNumericString>,

    /// User and group the injected containers run as. Pod annotations
    /// `riotkit.org/volume-user-id` / `riotkit.org/volume-group-id` override them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub permissions: Option<Permissions>,

    /// Whether files deleted on one side are deleted on the other (sync) or kept (copy), and
    /// whether the safety valves may be skipped.
    #[serde(default)]
    pub clean_up: CleanUp,

    /// Limits checked before a sync may delete anything, in either direction.
    #[serde(default)]
    pub safety: Safety,

    /// Keep the remote files a sync deletes or overwrites, to restore an earlier state.
    #[serde(default)]
    pub trash: Trash,

    /// Which containers are injected.
    #[serde(default)]
    pub allowed_directions: AllowedDirections,

    /// What the restore does the first time a (rendered) remotePath is used, when the remote
    /// holds nothing yet. `true`: restore as always; into an empty volume that is a no-op, but
    /// over a volume that already holds files the restore refuses and the Pod does not start,
    /// so that a wrong remote never empties a volume. `false`: keep the volume's files (e.g. a
    /// PersistentVolume with data); the sidecar then uploads them. Decided per Pod by the
    /// agent from the remote itself, so it holds per remotePath, across resources and clusters.
    #[serde(default = "default_true")]
    pub restore_remote_on_first_run: bool,

    /// How many Pods may upload to one (rendered) remotePath at once. `one` (default): the
    /// sidecars of Pods that share it elect a primary through a Lease the operator keeps
    /// (needs the operator's `--report-url` and `--namespace`, as the chart sets them); every
    /// Pod restores at start, only the primary uploads, the others hold their uploads until
    /// the primary goes away and its lease expires (30 s), then one takes over, first
    /// restoring what the old primary uploaded last. The Pod annotation `riotkit.org/prefer-primary: "true"` prefers a Pod. `every`:
    /// each Pod uploads its own view (the last one wins; only for remote paths that differ
    /// per Pod, or a single Pod).
    #[serde(default)]
    pub writers: Writers,
}

/// `syncOptions.writers`.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Writers {
    #[default]
    One,
    Every,
}

impl Default for SyncOptions {
    fn default() -> Self {
        Self {
            method: SyncMethod::default(),
            schedule: default_schedule(),
            max_one_sync_per_minutes: None,
            permissions: None,
            clean_up: CleanUp::default(),
            safety: Safety::default(),
            trash: Trash::default(),
            allowed_directions: AllowedDirections::default(),
            restore_remote_on_first_run: true,
            writers: Writers::default(),
        }
    }
}

/// User and group ids of the injected containers.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Permissions {
    /// User id (runAsUser), a number or a numeric string such as `"1001"`. It should own the
    /// directory: the restore refuses a directory owned by another user.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("x-kubernetes-validations" = [{
        "rule": "type(self) == string ? self.matches('^[0-9]{1,10}$') : (self >= 0 && self <= 2147483647)",
        "message": "uid must be a number between 0 and 2147483647"
    }]))]
    pub uid: Option<IntOrNumericString>,

    /// Group id (runAsGroup), a number or a numeric string such as `"1001"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("x-kubernetes-validations" = [{
        "rule": "type(self) == string ? self.matches('^[0-9]{1,10}$') : (self >= 0 && self <= 2147483647)",
        "message": "gid must be a number between 0 and 2147483647"
    }]))]
    pub gid: Option<IntOrNumericString>,
}

/// Sync versus copy, and the safety valves.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CleanUp {
    /// `true`: files deleted locally are deleted on the remote (sync). `false`: copy only.
    #[serde(default = "default_true")]
    pub remote: bool,
    /// `true`: on restore, local files missing on the remote are deleted (sync). `false`: copy only.
    #[serde(default = "default_true")]
    pub local: bool,
    /// Skip the safety valve that refuses to sync an empty local directory over the remote
    /// (which would clear the remote copy).
    #[serde(default)]
    pub force_remote: bool,
    /// Skip the restore's safety valves (empty remote over local files, system directories,
    /// directories owned by another user).
    #[serde(default)]
    pub force_local: bool,
}

impl Default for CleanUp {
    fn default() -> Self {
        Self {
            remote: true,
            local: true,
            force_remote: false,
            force_local: false,
        }
    }
}

/// Which of the two containers are injected.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AllowedDirections {
    /// Inject the sidecar `volume-syncing-sidecar` that syncs TO the remote while the Pod runs
    /// and once more when it stops.
    #[serde(default = "default_true")]
    pub to_remote: bool,
    /// Inject the init container `init-volume-restore` that restores FROM the remote before
    /// the app starts.
    #[serde(default = "default_true")]
    pub from_remote: bool,
}

impl Default for AllowedDirections {
    fn default() -> Self {
        Self {
            to_remote: true,
            from_remote: true,
        }
    }
}

/// A Secret whose keys become environment variables of the injected containers.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecretReference {
    /// Name of the Secret.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
    /// Namespace of the Secret: empty or the Pod's own namespace (a Pod cannot read Secrets of
    /// other namespaces).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 63))]
    pub namespace: Option<String>,
}

/// End-to-end encryption with an operator-generated key.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AutomaticEncryption {
    /// Encrypt file contents and names (rclone crypt) before they leave the Pod. The operator
    /// creates the key Secret when absent and never replaces an existing key. Back that Secret
    /// up: without it the remote data cannot be read.
    #[serde(default)]
    pub enabled: bool,
    /// Name of the Secret (in this namespace) holding the key (`ENCRYPTED_PASSWORD`,
    /// `ENCRYPTED_PASSWORD2`). Unset: `<resource name>-encryption`. Deleting the resource
    /// leaves the Secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 253))]
    #[schemars(extend("x-kubernetes-validations" = [{
        "rule": "self.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$')",
        "message": "secretName must be a valid Secret name (lowercase letters, digits, '-' and '.')"
    }]))]
    pub secret_name: Option<String>,
}

/// A number or a string of digits (`1001` or `"1001"`): the seed's examples use both.
/// Serialized back in the form it was given.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(untagged)]
pub enum IntOrNumericString {
    Int(i64),
    String(String),
}

impl IntOrNumericString {
    /// The number, or `None` when the string is not a plain non-negative decimal number.
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            IntOrNumericString::Int(n) => Some(*n),
            IntOrNumericString::String(s) => {
                let s = s.trim();
                if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
                    return None;
                }
                s.parse().ok()
            }
        }
    }
}

impl fmt::Display for IntOrNumericString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IntOrNumericString::Int(n) => write!(f, "{n}"),
            IntOrNumericString::String(s) => f.write_str(s),
        }
    }
}

impl From<i64> for IntOrNumericString {
    fn from(n: i64) -> Self {
        IntOrNumericString::Int(n)
    }
}

impl JsonSchema for IntOrNumericString {
    fn schema_name() -> Cow<'static, str> {
        "IntOrNumericString".into()
    }

    fn inline_schema() -> bool {
        true
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "description": "A number or a string of digits.",
            "x-kubernetes-int-or-string": true,
        })
    }
}

/// Observed state, written by the operator.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(transform = kubernetes_schema)]
pub struct PodFilesystemSyncStatus {
    /// The `metadata.generation` the status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,

    /// `Ready`: whether the resource is valid and its Secrets exist (reason and message say
    /// what is wrong); it says nothing about the data. `Synced`: whether the Pods' latest
    /// syncs succeeded, from their reports: `True` when every reporting Pod's last sync
    /// succeeded, `False` with reason `SyncFailing` when a Pod's last syncs failed
    /// (`healthCheck.unhealthyAfterFailures` in a row, else 3) or `NoRecentSuccess` when no
    /// Pod synced successfully for three schedule periods, `Unknown` with reason `NoReports`
    /// before any report or `Retrying` after fewer failures than that.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
    pub conditions: Vec<Condition>,

    /// When a Pod last reported a successful sync to the remote.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_sync_time: Option<Time>,

    /// The last sync an injected container reported (when the operator runs with
    /// `--report-url`), successful or not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_report: Option<SyncReportStatus>,

    /// The latest syncs of each Pod that reported (at most 20 Pods, by name; the Pod that
    /// reported least recently is dropped first). A Pod not heard from for three schedule
    /// periods (deleted, most likely) stays listed but no longer counts for `Synced`, whose
    /// message names it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["name"]))]
    pub pods: Vec<PodSyncStatus>,

    /// The automatic-encryption key the operator last saw in its Secret: if that Secret
    /// goes, no new key is made silently (the resource is not Ready until the Secret is
    /// restored, or a new key is asked for by name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encryption_key: Option<EncryptionKeyStatus>,

    /// The primary writer of each remote path (`syncOptions.writers: one`): the Pod whose
    /// sidecar was last granted the writer lease, and since when. The Lease itself, in the
    /// operator's namespace (`kubectl get lease -l riotkit.org/podfilesystemsync=<name>`),
    /// says whether it is still renewed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["remotePath"]))]
    pub primaries: Vec<PrimaryStatus>,
}

/// The Pod that holds a remote path's writer lease.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PrimaryStatus {
    /// The resolved remote path.
    pub remote_path: String,
    /// The primary Pod's name.
    pub pod: String,
    /// When it was granted the lease.
    pub since: Time,
}

/// Names an encryption key without revealing it.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct EncryptionKeyStatus {
    /// The Secret that holds the key.
    pub secret_name: String,
    /// The first 16 hex digits of SHA-256 over the revealed password and salt.
    pub fingerprint: String,
}

/// `Ready=False` reason when the Secret of a known encryption key is gone.
pub const REASON_ENCRYPTION_SECRET_LOST: &str = "EncryptionSecretLost";

/// A problem with one field of the resource, e.g. `spec.localPath: must be an absolute path`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldError {
    /// JSON path of the field, e.g. `spec.initContainerPlacement.containerReference`.
    pub field: String,
    /// What is wrong.
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

impl std::error::Error for FieldError {}

/// Fits the generated schema to Kubernetes: doc comments are wrapped at 100 columns and
/// `kubectl explain` wraps again, so the hard line breaks inside a paragraph are joined
/// (paragraph breaks stay); and the unsigned formats schemars writes (`uint32`), which the
/// API server does not know and warns about on every install, are dropped (the `minimum`
/// beside them keeps the rule).
fn kubernetes_schema(schema: &mut schemars::Schema) {
    fn visit_map(map: &mut serde_json::Map<String, serde_json::Value>) {
        if map
            .get("format")
            .and_then(serde_json::Value::as_str)
            .is_some_and(|format| format.starts_with("uint"))
        {
            map.remove("format");
        }
        for (key, child) in map.iter_mut() {
            match (key.as_str(), child) {
                ("description", serde_json::Value::String(text)) => {
                    *text = text
                        .split("\n\n")
                        .map(|paragraph| {
                            paragraph
                                .split('\n')
                                .map(str::trim)
                                .collect::<Vec<_>>()
                                .join(" ")
                        })
                        .collect::<Vec<_>>()
                        .join("\n\n");
                }
                ("default" | "enum" | "example", _) => {}
                (_, child) => visit(child),
            }
        }
    }
    fn visit(value: &mut serde_json::Value) {
        match value {
            serde_json::Value::Object(map) => visit_map(map),
            serde_json::Value::Array(items) => items.iter_mut().for_each(visit),
            _ => {}
        }
    }
    if let Some(object) = schema.as_object_mut() {
        visit_map(object);
    }
}

fn default_true() -> bool {
    true
}

fn default_schedule() -> String {
    "@every 15m".to_string()
}

impl InitContainerPlacement {
    /// The placement with its reference, or the field that makes it invalid.
    pub fn effective(&self) -> Result<EffectivePlacement<'_>, FieldError> {
        let reference = self
            .container_reference
            .as_deref()
            .map(str::trim)
            .filter(|r| !r.is_empty());
        let field = "spec.initContainerPlacement.containerReference";
        match (self.placement, reference) {
            (Placement::First, None) => Ok(EffectivePlacement::First),
            (Placement::Last, None) => Ok(EffectivePlacement::Last),
            (Placement::First | Placement::Last, Some(_)) => Err(FieldError::new(
                field,
                "must be empty when placement is first or last (set placement to before or after)",
            )),
            (Placement::Before | Placement::After, None) => Err(FieldError::new(
                field,
                "placement before/after needs the name of an init container",
            )),
            (_, Some(name)) if name == INIT_CONTAINER_NAME || name == SIDECAR_CONTAINER_NAME => {
                Err(FieldError::new(
                    field,
                    format!("cannot refer to the injected container {name}"),
                ))
            }
            (Placement::Before, Some(name)) => Ok(EffectivePlacement::Before(name)),
            (Placement::After, Some(name)) => Ok(EffectivePlacement::After(name)),
        }
    }
}

impl Permissions {
    /// The uid as a number; `Ok(None)` when unset.
    pub fn uid(&self) -> Result<Option<i64>, FieldError> {
        parse_id(self.uid.as_ref(), "spec.syncOptions.permissions.uid")
    }

    /// The gid as a number; `Ok(None)` when unset.
    pub fn gid(&self) -> Result<Option<i64>, FieldError> {
        parse_id(self.gid.as_ref(), "spec.syncOptions.permissions.gid")
    }
}

fn parse_id(value: Option<&IntOrNumericString>, field: &str) -> Result<Option<i64>, FieldError> {
    let Some(value) = value else { return Ok(None) };
    match value.as_i64() {
        Some(id) if (0..=MAX_ID).contains(&id) => Ok(Some(id)),
        _ => Err(FieldError::new(
            field,
            format!("'{value}' is not a number between 0 and {MAX_ID}"),
        )),
    }
}

/// Parses a uid/gid given as text (e.g. a Pod annotation), with the same rules as the spec.
pub fn parse_numeric_id(text: &str) -> Option<i64> {
    IntOrNumericString::String(text.to_string())
        .as_i64()
        .filter(|id| (0..=MAX_ID).contains(id))
}

impl SyncOptions {
    /// `maxOneSyncPerMinutes` as a number; `Ok(None)` when unset.
    pub fn min_minutes_between_syncs(&self) -> Result<Option<u32>, FieldError> {
        let Some(value) = &self.max_one_sync_per_minutes else {
            return Ok(None);
        };
        value
            .as_i64()
            .and_then(|n| u32::try_from(n).ok())
            .filter(|n| *n <= 999_999)
            .map(Some)
            .ok_or_else(|| {
                FieldError::new(
                    "spec.syncOptions.maxOneSyncPerMinutes",
                    format!("'{value}' is not a whole number of minutes"),
                )
            })
    }
}

impl PodFilesystemSync {
    /// Placement of the restore init container.
    pub fn effective_placement(&self) -> Result<EffectivePlacement<'_>, FieldError> {
        self.spec.init_container_placement.effective()
    }

    /// Name of the encryption key Secret, when automatic encryption is enabled.
    pub fn encryption_secret_name(&self) -> Option<String> {
        let encryption = &self.spec.automatic_encryption;
        if !encryption.enabled {
            return None;
        }
        match encryption
            .secret_name
            .as_deref()
            .map(str::trim)
            .filter(|n| !n.is_empty())
        {
            Some(name) => Some(name.to_string()),
            None => Some(format!(
                "{}{ENCRYPTION_SECRET_SUFFIX}",
                self.metadata.name.as_deref().unwrap_or_default()
            )),
        }
    }

    /// Whether the restore init container is injected: `allowedDirections.fromRemote`.
    /// (`restoreRemoteOnFirstRun` is applied by the agent, which sees whether the remote was
    /// ever written.)
    pub fn should_restore(&self) -> bool {
        self.spec.sync_options.allowed_directions.from_remote
    }

    /// The restore refuses a system directory as its target (exit 3: every Pod would stay in
    /// Init): a restore mirrors the remote and would delete what else is there. Only the
    /// explicit `cleanUp.forceLocal` lets it through.
    fn refused_restore_target(&self) -> Option<String> {
        let options = &self.spec.sync_options;
        if !self.should_restore() || options.clean_up.force_local {
            return None;
        }
        let root = crate::contract::forbidden_restore_root(&self.spec.local_path)?;
        Some(format!(
            "'{}' is {root}, a system directory the restore refuses (every selected Pod would \
             stay in Init): use a directory below it (e.g. {}/data), or set \
             syncOptions.cleanUp.forceLocal",
            self.spec.local_path,
            root.trim_end_matches('/')
        ))
    }

    /// Every problem of the spec the schema cannot express or that predates it, each naming
    /// its field. Empty when the resource is valid. Templates are checked by the operator.
    pub fn validate(&self) -> Vec<FieldError> {
        let mut errors = Vec::new();
        let spec = &self.spec;

        validate_selector(&spec.pod_selector, &mut errors);
        if let Err(message) = check_local_path(&spec.local_path) {
            errors.push(FieldError::new("spec.localPath", message));
        } else if let Some(message) = self.refused_restore_target() {
            errors.push(FieldError::new("spec.localPath", message));
        }
        if spec.remote_path.trim().is_empty() {
            errors.push(FieldError::new("spec.remotePath", "must not be empty"));
        } else if spec.remote_path.len() > MAX_PATH_LEN {
            errors.push(FieldError::new(
                "spec.remotePath",
                format!("longer than {MAX_PATH_LEN} characters"),
            ));
        }
        if spec.remote_path.split('/').any(|segment| segment == "..") {
            errors.push(FieldError::new(
                "spec.remotePath",
                "must not contain a '..' segment: the path would leave the place it names",
            ));
        }
        if let Err(e) = self.effective_placement() {
            errors.push(e);
        }
        if let Some(resources) = &spec.resources {
            errors.extend(resource_problems(resources, "spec.resources"));
        }

        validate_sync_options(&spec.sync_options, &mut errors);

        self.validate_env(&mut errors);
        self.validate_env_from_secrets(&mut errors);

        if let Some(name) = self.encryption_secret_name()
            && !is_dns_subdomain(&name)
        {
            errors.push(FieldError::new(
                "spec.automaticEncryption.secretName",
                format!("'{name}' is not a valid Secret name"),
            ));
        }
        errors
    }

    fn validate_env(&self, errors: &mut Vec<FieldError>) {
        for (key, value) in &self.spec.env {
            let field = format!("spec.env.{key}");
            if !is_valid_env_name(key) {
                errors.push(FieldError::new(
                field,
                "not a valid environment variable name (letters, digits, '_', '-', '.'; not starting with a digit)",
            ));
            } else if RESERVED_ENV_NAMES.contains(&key.as_str()) {
                errors.push(FieldError::new(
                    field,
                    "is set by the operator from localPath/remotePath",
                ));
            } else if self.spec.automatic_encryption.enabled
                && (key == ENV_ENCRYPTED_PASSWORD || key == ENV_ENCRYPTED_PASSWORD2)
            {
                errors.push(FieldError::new(
                field,
                "would override the key of automaticEncryption; disable automaticEncryption to bring your own",
            ));
            } else if is_config_env(key)
                && let Some(problem) = config_value_problem(value)
            {
                // The agent would refuse it in every selected Pod.
                errors.push(FieldError::new(field, problem.to_string()));
            }
        }
    }

    fn validate_env_from_secrets(&self, errors: &mut Vec<FieldError>) {
        let own_namespace = self.metadata.namespace.as_deref().filter(|n| !n.is_empty());
        for (i, secret) in self.spec.env_from_secrets.iter().enumerate() {
            if !is_dns_subdomain(&secret.name) {
                errors.push(FieldError::new(
                    format!("spec.envFromSecrets[{i}].name"),
                    format!("'{}' is not a valid Secret name", secret.name),
                ));
            }
            let namespace = secret.namespace.as_deref().filter(|n| !n.is_empty());
            if let (Some(namespace), Some(own)) = (namespace, own_namespace)
                && namespace != own
            {
                errors.push(FieldError::new(
                format!("spec.envFromSecrets[{i}].namespace"),
                format!("must be empty or '{own}': Pods can only read Secrets of their own namespace"),
            ));
            }
        }
    }
}

/// Quantities a Pod would be refused for (the API server's error names neither this
/// resource nor the field), and requests above their limits; fields named under `prefix`
/// (`spec.resources`, or the operator's `--agent-default-resources`).
pub fn resource_problems(resources: &ResourceRequirements, prefix: &str) -> Vec<FieldError> {
    let mut errors = Vec::new();
    let mut values = BTreeMap::new();
    for (kind, map) in [
        ("limits", &resources.limits),
        ("requests", &resources.requests),
    ] {
        for (name, quantity) in map.iter().flatten() {
            let field = format!("{prefix}.{kind}.{name}");
            match quantity_value(&quantity.0) {
                Some(value) => {
                    values.insert((kind, name.as_str()), value);
                }
                None => errors.push(FieldError::new(
                    field,
                    format!(
                        "'{}' is not a Kubernetes quantity (e.g. 512Mi, 0.5, 100m)",
                        quantity.0
                    ),
                )),
            }
        }
    }
    for ((kind, name), request) in &values {
        if *kind == "requests"
            && let Some(limit) = values.get(&("limits", *name))
            && request > limit
        {
            errors.push(FieldError::new(
                format!("{prefix}.requests.{name}"),
                format!("must not be more than {prefix}.limits.{name}"),
            ));
        }
    }
    errors
}

/// The value of a Kubernetes quantity (`512Mi`, `0.5`, `100m`, `1e3`), if it is one and
/// not negative.
pub fn quantity_value(text: &str) -> Option<f64> {
    let number_end = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '+'))
        .unwrap_or(text.len());
    let (number, suffix) = text.split_at(number_end);
    let digits = number.strip_prefix('+').unwrap_or(number);
    if digits.is_empty() || digits == "." || digits.matches('.').count() > 1 || digits.contains('+')
    {
        return None;
    }
    let base: f64 = digits.parse().ok()?;
    let multiplier = match suffix {
        "" => 1.0,
        "n" => 1e-9,
        "u" => 1e-6,
        "m" => 1e-3,
        "k" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "T" => 1e12,
        "P" => 1e15,
        "E" => 1e18,
        "Ki" => 1024f64,
        "Mi" => 1024f64.powi(2),
        "Gi" => 1024f64.powi(3),
        "Ti" => 1024f64.powi(4),
        "Pi" => 1024f64.powi(5),
        "Ei" => 1024f64.powi(6),
        exponent => {
            let power = exponent.strip_prefix(['e', 'E'])?;
            let power: i32 = power.parse().ok()?;
            10f64.powi(power)
        }
    };
    Some(base * multiplier)
}

fn validate_sync_options(options: &SyncOptions, errors: &mut Vec<FieldError>) {
    let schedule = options.schedule.trim();
    if schedule.is_empty() {
        if options.method == SyncMethod::Scheduler {
            errors.push(FieldError::new(
                "spec.syncOptions.schedule",
                "method scheduler needs a schedule",
            ));
        }
    } else if let Err(e) = schedule.parse::<Schedule>() {
        // The sidecar would exit on it: the same parser decides here.
        errors.push(FieldError::new("spec.syncOptions.schedule", e.to_string()));
    }
    if let Err(e) = options.min_minutes_between_syncs() {
        errors.push(e);
    }
    if let Some(sentinel) = &options.safety.require_sentinel
        && (sentinel.starts_with('/') || sentinel.split('/').any(|part| part == ".."))
    {
        errors.push(FieldError::new(
            "spec.syncOptions.safety.requireSentinel",
            "must be a path relative to localPath, without '..'",
        ));
    }
    if let Some(permissions) = &options.permissions {
        errors.extend(permissions.uid().err());
        errors.extend(permissions.gid().err());
    }
}

fn validate_selector(selector: &LabelSelector, errors: &mut Vec<FieldError>) {
    let labels = selector.match_labels.as_ref().map_or(0, BTreeMap::len);
    let expressions = selector.match_expressions.as_deref().unwrap_or_default();
    if labels == 0 && expressions.is_empty() {
        errors.push(FieldError::new(
            "spec.podSelector",
            "an empty selector selects no Pods: set matchLabels or matchExpressions",
        ));
    }
    for (i, requirement) in expressions.iter().enumerate() {
        let values = requirement.values.as_deref().unwrap_or_default();
        let field = format!("spec.podSelector.matchExpressions[{i}]");
        match requirement.operator.as_str() {
            "In" | "NotIn" if values.is_empty() => {
                errors.push(FieldError::new(
                    field,
                    format!("operator {} needs values", requirement.operator),
                ));
            }
            "Exists" | "DoesNotExist" if !values.is_empty() => {
                errors.push(FieldError::new(
                    field,
                    format!("operator {} takes no values", requirement.operator),
                ));
            }
            "In" | "NotIn" | "Exists" | "DoesNotExist" => {}
            other => errors.push(FieldError::new(
                format!("{field}.operator"),
                format!("'{other}' is not one of In, NotIn, Exists, DoesNotExist"),
            )),
        }
    }
}

/// Checks a localPath: absolute, no `..`, not `/`, no control characters.
pub fn check_local_path(path: &str) -> Result<(), String> {
    if !path.starts_with('/') {
        return Err(format!("'{path}' must be an absolute path"));
    }
    if path.split('/').any(|segment| segment == "..") {
        return Err(format!("'{path}' must not contain '..'"));
    }
    if path.chars().any(char::is_control) {
        return Err("must not contain control characters".to_string());
    }
    if path.trim_end_matches('/').is_empty() {
        return Err("must not be the root directory".to_string());
    }
    if path.len() > MAX_PATH_LEN {
        return Err(format!("longer than {MAX_PATH_LEN} characters"));
    }
    Ok(())
}

/// Kubernetes' classic rule for env names: `[-._a-zA-Z][-._a-zA-Z0-9]*`.
pub fn is_valid_env_name(name: &str) -> bool {
    let mut chars = name.chars();
    let Some(first) = chars.next() else {
        return false;
    };
    (first.is_ascii_alphabetic() || matches!(first, '_' | '-' | '.'))
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

/// A DNS-1123 subdomain, the rule for Secret names.
pub fn is_dns_subdomain(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
}
