//! The README's "Try it on a local cluster": its one command as written
//! (`scripts/try-local-cluster.sh`), then the tear-down it names. Runs after, never beside,
//! tests/real_node/main.rs: test binaries run one at a time, and both use the node's address and
//! the seed's S3 port.

use std::path::Path;
use std::process::{Command, Output};

use vsc_e2e::helm::repo_root;
use vsc_e2e::real_node::missing_prerequisite;

fn run(script: &str, args: &[&str], cluster_dir: &Path) -> Output {
    Command::new("bash")
        .arg(repo_root().join(script))
        .args(args)
        .env("VSC_CLUSTER_DIR", cluster_dir)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {script}: {e}"))
}

#[test]
fn try_it_shows_the_data_surviving_a_replaced_pod_and_down_gives_the_host_back() {
    if let Some(missing) = missing_prerequisite() {
        panic!("{missing}");
    }
    let work = tempfile::Builder::new()
        .prefix("vsc-try-")
        .tempdir()
        .expect("temp dir");
    let cluster_dir = work.path().join("cluster");
    let tried = run("scripts/try-local-cluster.sh", &[], &cluster_dir);
    let down = run("scripts/local-cluster.sh", &["down"], &cluster_dir);
    let (stdout, stderr) = (
        String::from_utf8_lossy(&tried.stdout),
        String::from_utf8_lossy(&tried.stderr),
    );
    assert!(
        tried.status.success(),
        "scripts/try-local-cluster.sh failed:\n{stdout}\n{stderr}"
    );
    assert!(
        stdout
            .lines()
            .any(|l| l.starts_with("cloud-press") && l.contains("True")),
        "kubectl get pfss did not show cloud-press Ready:\n{stdout}"
    );
    let visits = stdout.lines().filter(|l| l.contains(" UTC ")).count();
    assert!(
        visits >= 2 && stdout.contains("visits.txt"),
        "the replacement Pod did not see the first Pod's visit ({visits} visits):\n{stdout}\n{stderr}"
    );
    assert!(
        down.status.success(),
        "local-cluster.sh down did not give the host back:\n{}",
        String::from_utf8_lossy(&down.stderr)
    );
}
