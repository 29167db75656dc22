//! Journey step 8: three replicas of a Deployment share one remote path (`syncOptions.writers:
//! one`, the default). Their sidecars reach the operator's writer lease through kube-proxy and
//! the S3 server through a proxy that logs every request by Pod address. The primary is
//! killed mid-upload, then cut from the operator, then the Deployment is scaled down and up.
//! After each step the remote holds exactly what the primary of the moment has, nothing the
//! primaries uploaded is lost, and the request log shows one writer at a time.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use libtest_mimic::Failed;
use vsc_e2e::real_node::{LocalCluster, NodeS3, SEED_S3_PORT, pod_processes, poll};
use vsc_e2e::s3_request_log::{LoggedRequest, S3RequestLog};

use super::storage_and_health::{pause_process, pfss, ready};
use super::{Network, app_namespace, check, deployment, files_under, logs, world};

const NAMESPACE: &str = "replicas";
const APP: &str = "replicas";
const BUCKET: &str = "replicas-bucket";
const SIDECAR: &str = "volume-syncing-sidecar";
const RESTORE: &str = "init-volume-restore";
/// The operator's Service, where the sidecars ask for the writer lease (main.rs).
const OPERATOR_IP: &str = "10.96.0.90";
/// Request bodies through the logged proxy go at 2 MiB/s: a 16 MiB upload takes 8 s.
const BODY_BYTES_PER_SECOND: u64 = 2 * 1024 * 1024;
const BIG_FILE_MIB: u32 = 16;
/// What a sidecar logs when another Pod is the primary, and when its lease ran out.
const HOLDING: &str = "another Pod is the primary writer: holding uploads";
const RAN_OUT: &str = "the writer lease ran out unrenewed";
/// The writer lease lasts 30 s; a takeover also restores and starts a Pod.
const TAKEOVER_LIMIT: Duration = Duration::from_secs(120);

/// A running replica.
#[derive(Clone, Debug)]
struct Replica {
    name: String,
    uid: String,
    ip: IpAddr,
}

pub fn one_writer_among_three_replicas() -> Result<(), Failed> {
    let world = world()?;
    let (cluster, s3) = (&world.cluster, &world.s3);
    let log = S3RequestLog::start(
        &format!("{}:0", cluster.node_ip),
        &format!("127.0.0.1:{SEED_S3_PORT}"),
        BODY_BYTES_PER_SECOND,
    )?;
    app_namespace(cluster, NAMESPACE)?;
    cluster.kubectl(
        &["apply", "-n", NAMESPACE, "-f", "-"],
        Some(&pfss(
            APP,
            "/data",
            &format!("/{BUCKET}/app"),
            &format!("http://{}", log.address),
            "",
        )),
    )?;
    cluster.kubectl(
        &["apply", "-f", "-"],
        Some(&deployment(NAMESPACE, APP, "/data", Network::Pod, None)),
    )?;
    let mut run = Run {
        cluster,
        s3,
        primaries: Vec::new(),
        seen: BTreeMap::new(),
    };
    run.scale(3)?;
    let first = run.next_primary(None)?;
    run.others_hold(&first)?;
    let second = run.kill_mid_upload(&first, &log)?;
    let third = run.cut_from_the_operator(&second)?;
    run.scale(1)?;
    let remaining = run.replicas()?;
    let fourth = run.next_primary(Some(&third).filter(|t| t.name != remaining[0].name))?;
    run.scale(3)?;
    run.others_hold(&fourth)?;
    run.one_writer_at_a_time(&log)
}

struct Run<'a> {
    cluster: &'a LocalCluster,
    s3: &'a NodeS3,
    /// Every primary in turn, as the status named them.
    primaries: Vec<String>,
    /// Every replica seen, by address (the request log's key).
    seen: BTreeMap<IpAddr, String>,
}

impl Run<'_> {
    /// The Ready replicas not being deleted.
    fn replicas(&mut self) -> Result<Vec<Replica>, Failed> {
        let pods = self
            .cluster
            .get_json(&["pods", "-n", NAMESPACE, "-l", &format!("app={APP}")])
            .ok_or("no Pods listed")?;
        let replicas: Vec<Replica> = pods["items"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|pod| ready(pod))
            .filter_map(|pod| {
                Some(Replica {
                    name: pod["metadata"]["name"].as_str()?.to_string(),
                    uid: pod["metadata"]["uid"].as_str()?.to_string(),
                    ip: pod["status"]["podIP"].as_str()?.parse().ok()?,
                })
            })
            .collect();
        for replica in &replicas {
            self.seen.insert(replica.ip, replica.name.clone());
        }
        Ok(replicas)
    }

    /// Scales the Deployment and waits until exactly `count` Pods remain, all Ready.
    fn scale(&mut self, count: usize) -> Result<(), Failed> {
        let replicas = format!("--replicas={count}");
        self.cluster.kubectl(
            &["scale", "deployment", "-n", NAMESPACE, APP, &replicas],
            None,
        )?;
        let cluster = self.cluster;
        poll(
            Duration::from_secs(180),
            &format!("{count} Ready Pods of {APP} and no other"),
            || {
                let pods =
                    cluster.get_json(&["pods", "-n", NAMESPACE, "-l", &format!("app={APP}")])?;
                let all = pods["items"].as_array()?.len();
                let ready = self.replicas().ok()?.len();
                (all == count && ready == count).then_some(())
            },
        )
        .map_err(|e| {
            format!(
                "{e}\n{}\n{}",
                cluster.describe(NAMESPACE),
                self.restore_logs()
            )
            .into()
        })
    }

    /// The restore's log in each Pod of the app (what a Pod stuck in its init container
    /// says).
    fn restore_logs(&self) -> String {
        let pods = self.cluster.kubectl_ok(
            &[
                "get",
                "pods",
                "-n",
                NAMESPACE,
                "-l",
                &format!("app={APP}"),
                "-o",
                "name",
            ],
            None,
        );
        pods.lines()
            .map(|pod| {
                let pod = pod.trim_start_matches("pod/");
                format!(
                    "--- restore in {pod}:\n{}",
                    logs(self.cluster, NAMESPACE, pod, RESTORE)
                )
            })
            .collect()
    }

    /// Waits for the status to name a primary other than `old` (any when None), then for
    /// the remote to hold exactly that Pod's view, which keeps all that was uploaded before.
    fn next_primary(&mut self, old: Option<&Replica>) -> Result<Replica, Failed> {
        let cluster = self.cluster;
        let old_name = old.map(|o| o.name.clone());
        let name = poll(TAKEOVER_LIMIT, "the status to name a new primary", || {
            let pfss = cluster.get_json(&["pfss", "-n", NAMESPACE, APP])?;
            let primaries = pfss["status"]["primaries"].as_array()?;
            let [primary] = &primaries[..] else {
                return None;
            };
            let pod = primary["pod"].as_str()?;
            (Some(pod) != old_name.as_deref()).then(|| pod.to_string())
        })
        .map_err(|e| format!("{e}\n{}", self.sidecar_logs()))?;
        let primary = self
            .replicas()?
            .into_iter()
            .find(|r| r.name == name)
            .ok_or_else(|| format!("the primary {name} is not a Ready replica"))?;
        let uploaded_before = self.remote_files();
        self.remote_is_the_view_of(&primary)?;
        let now = self.remote_files();
        let lost: Vec<_> = uploaded_before
            .keys()
            .filter(|name| !now.contains_key(*name))
            .collect();
        check(lost.is_empty(), || {
            format!("after {name} took over, the remote lost {lost:?}")
        })?;
        self.primaries.push(name);
        Ok(primary)
    }

    /// The remote, without the agent's own record and trash.
    fn remote_files(&self) -> BTreeMap<String, Vec<u8>> {
        user_files(self.s3.bucket(BUCKET).join("app"))
    }

    fn remote_is_the_view_of(&self, primary: &Replica) -> Result<(), Failed> {
        let volume = self.cluster.state.join(format!(
            "kubelet/pods/{}/volumes/kubernetes.io~empty-dir/data",
            primary.uid
        ));
        let mut last = (BTreeMap::new(), BTreeMap::new());
        poll(
            Duration::from_secs(60),
            &format!("the remote to hold exactly what {} has", primary.name),
            || {
                last = (user_files(volume.clone()), self.remote_files());
                (!last.0.is_empty() && last.0 == last.1).then_some(())
            },
        )
        .map_err(|e| {
            let names =
                |files: &BTreeMap<String, Vec<u8>>| files.keys().cloned().collect::<Vec<_>>();
            format!(
                "{e}: the primary has {:?}, the remote {:?}\n{}",
                names(&last.0),
                names(&last.1),
                self.sidecar_logs()
            )
            .into()
        })
    }

    /// Every replica but the primary says it holds its uploads.
    fn others_hold(&mut self, primary: &Replica) -> Result<(), Failed> {
        let others: Vec<Replica> = self
            .replicas()?
            .into_iter()
            .filter(|r| r.name != primary.name)
            .collect();
        for other in &others {
            poll(
                Duration::from_secs(30),
                &format!("{} to hold its uploads", other.name),
                || {
                    logs(self.cluster, NAMESPACE, &other.name, SIDECAR)
                        .contains(HOLDING)
                        .then_some(())
                },
            )?;
        }
        check(others.len() == 2, || {
            format!("two replicas besides {primary:?}: {others:?}")
        })
    }

    /// SIGKILL for every process of the primary while it sends a big file, and the Pod
    /// deleted at once (a crash, a node gone): the next primary takes over only when the
    /// lease has run out, and the half-sent file never reaches the remote.
    fn kill_mid_upload(
        &mut self,
        primary: &Replica,
        log: &S3RequestLog,
    ) -> Result<Replica, Failed> {
        let write = format!("dd if=/dev/urandom of=/data/big.bin bs=1M count={BIG_FILE_MIB}");
        self.cluster.kubectl(
            &[
                "exec",
                "-n",
                NAMESPACE,
                &primary.name,
                "-c",
                "app",
                "--",
                "sh",
                "-c",
                &write,
            ],
            None,
        )?;
        poll(
            Duration::from_secs(60),
            "the primary sending big.bin",
            || {
                log.requests()
                    .iter()
                    .any(|r| {
                        r.client == primary.ip
                            && r.method == "PUT"
                            && r.path.contains("big.bin")
                            && r.ended.is_none()
                    })
                    .then_some(())
            },
        )?;
        for (pid, comm) in pod_processes(&primary.uid) {
            if comm != "pause" {
                // A process may exit by itself in between (a shell's child): not an error.
                let _ = std::process::Command::new("kill")
                    .args(["-9", &pid])
                    .stderr(std::process::Stdio::null())
                    .status();
            }
        }
        self.cluster.kubectl(
            &[
                "delete",
                "pod",
                "-n",
                NAMESPACE,
                &primary.name,
                "--grace-period=0",
                "--force",
            ],
            None,
        )?;
        let next = self.next_primary(Some(primary))?;
        check(!self.remote_files().contains_key("big.bin"), || {
            "the killed primary's half-sent big.bin is at the remote".to_string()
        })?;
        self.record_completed_by(&next)?;
        Ok(next)
    }

    /// The remote's completion record says `primary` finished an upload: the killed
    /// primary's unfinished one no longer refuses the restore of every new Pod.
    fn record_completed_by(&self, primary: &Replica) -> Result<(), Failed> {
        let path = self
            .s3
            .bucket(BUCKET)
            .join("app/.volume-syncing-controller.json");
        let mut last = String::new();
        poll(
            Duration::from_secs(60),
            &format!("a completion record by {}", primary.name),
            || {
                last = std::fs::read_to_string(&path).unwrap_or_default();
                let record: serde_json::Value = serde_json::from_str(&last).ok()?;
                (record["writer"]["host"] == primary.name.as_str()
                    && record["completed_at"].is_string())
                .then_some(())
            },
        )
        .map_err(|e| format!("{e}; the record: {last}\n{}", self.sidecar_logs()).into())
    }

    /// The primary's Pod loses its route to the operator (a blackhole route in its network
    /// namespace): it stops uploading before its lease runs out, another Pod takes over, and
    /// once the route is back the old primary holds.
    fn cut_from_the_operator(&mut self, primary: &Replica) -> Result<Replica, Failed> {
        let pause = pause_process(&primary.uid)
            .ok_or_else(|| format!("no pause process for {}", primary.name))?;
        let route = |action: &str| {
            let status = std::process::Command::new("nsenter")
                .args(["-t", &pause, "-n", "ip", "route", action, "blackhole"])
                .arg(format!("{OPERATOR_IP}/32"))
                .status();
            check(status.is_ok_and(|s| s.success()), || {
                format!(
                    "nsenter ip route {action} blackhole {OPERATOR_IP} in {}",
                    primary.name
                )
            })
        };
        route("add")?;
        let next = self.next_primary(Some(primary));
        route("del")?;
        let next = next?;
        let old_log = logs(self.cluster, NAMESPACE, &primary.name, SIDECAR);
        check(old_log.contains(RAN_OUT), || {
            format!("the cut primary never said its lease ran out:\n{old_log}")
        })?;
        poll(
            Duration::from_secs(60),
            "the old primary to hold once the route is back",
            || {
                let log = logs(self.cluster, NAMESPACE, &primary.name, SIDECAR);
                log[log.rfind(RAN_OUT)?..].contains(HOLDING).then_some(())
            },
        )?;
        Ok(next)
    }

    /// The request log: the replicas that changed the remote, in turn, were primaries, in
    /// the order the status named them (a primary with nothing new to send sends nothing),
    /// and each one's last write had ended before the next one's first began. The init
    /// containers' restores and the holding sidecars sent no write.
    fn one_writer_at_a_time(&self, log: &S3RequestLog) -> Result<(), Failed> {
        let writes: Vec<LoggedRequest> = log
            .requests()
            .into_iter()
            .filter(LoggedRequest::writes)
            .collect();
        let writer = |request: &LoggedRequest| {
            self.seen
                .get(&request.client)
                .cloned()
                .unwrap_or_else(|| request.client.to_string())
        };
        let mut turns: Vec<(String, &LoggedRequest, &LoggedRequest)> = Vec::new();
        for request in &writes {
            match turns.last_mut() {
                Some((pod, _, last)) if *pod == writer(request) => *last = request,
                _ => turns.push((writer(request), request, request)),
            }
        }
        let names: Vec<&String> = turns.iter().map(|(pod, _, _)| pod).collect();
        let mut primaries = self.primaries.iter();
        check(
            names.iter().all(|name| primaries.any(|p| p == *name)),
            || {
                format!(
                    "the S3 request log's writers in turn {names:?} are not primaries in turn {:?}",
                    self.primaries
                )
            },
        )?;
        for pair in turns.windows(2) {
            let ((before, _, last), (after, first, _)) = (&pair[0], &pair[1]);
            check(
                last.ended.is_some_and(|ended| ended <= first.started),
                || {
                    format!(
                        "{after} wrote ({} {}) before {before}'s write ({} {}) had ended",
                        first.method, first.path, last.method, last.path
                    )
                },
            )?;
        }
        check(!turns.is_empty(), || {
            "no write reached the S3 server".to_string()
        })
    }

    fn sidecar_logs(&self) -> String {
        self.seen
            .values()
            .map(|pod| {
                format!(
                    "--- {pod}:\n{}",
                    logs(self.cluster, NAMESPACE, pod, SIDECAR)
                )
            })
            .collect()
    }
}

/// The files under `dir` but the agent's own (its records and trash), and the partial file
/// `rclone serve s3` leaves on its disk when a client dies mid-PUT (an S3 server keeps no
/// object of a PUT that never ended).
fn user_files(dir: PathBuf) -> BTreeMap<String, Vec<u8>> {
    files_under(&dir)
        .into_iter()
        .filter(|(name, _)| {
            !name.starts_with(".volume-syncing-controller") && !name.contains(".rclone_temp_put_")
        })
        .collect()
}
