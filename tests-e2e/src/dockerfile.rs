//! Dockerfile.agent and Dockerfile.operator read without a container engine: instructions
//! by stage, and what the final stage's image is (its config on top of the base image's, and
//! the paths it copies in). tests/dockerfiles.rs checks the Dockerfiles with it; tests/images.rs
//! compares the images scripts/build-images.sh builds with what the Dockerfiles declare.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;

use crate::helm::repo_root;

#[derive(Debug)]
pub struct Instruction {
    /// Index of the stage (FROM) it belongs to; ARGs before the first FROM have None.
    pub stage: Option<usize>,
    pub keyword: String,
    pub args: String,
}

#[derive(Debug)]
pub struct Dockerfile {
    pub instructions: Vec<Instruction>,
    /// (base image, stage name)
    pub stages: Vec<(String, Option<String>)>,
}

impl Dockerfile {
    /// Reads `name` from the repository root.
    pub fn read(name: &str) -> Dockerfile {
        let text =
            fs::read_to_string(repo_root().join(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
        Dockerfile::parse(&text)
    }

    pub fn parse(text: &str) -> Dockerfile {
        let mut logical = Vec::new();
        let mut current = String::new();
        for line in text.lines() {
            let trimmed = line.trim();
            if current.is_empty() && (trimmed.is_empty() || trimmed.starts_with('#')) {
                continue;
            }
            if let Some(continued) = trimmed.strip_suffix('\\') {
                current.push_str(continued);
                current.push(' ');
            } else {
                current.push_str(trimmed);
                logical.push(std::mem::take(&mut current));
            }
        }
        let mut instructions = Vec::new();
        let mut stages = Vec::new();
        for line in logical {
            let (keyword, args) = line.split_once(' ').unwrap_or((line.as_str(), ""));
            let keyword = keyword.to_uppercase();
            if keyword == "FROM" {
                let words: Vec<&str> = args.split_whitespace().collect();
                let name = match words.as_slice() {
                    [_, as_word, name] if as_word.eq_ignore_ascii_case("as") => {
                        Some(name.to_string())
                    }
                    _ => None,
                };
                stages.push((words[0].to_string(), name));
            }
            instructions.push(Instruction {
                stage: stages.len().checked_sub(1),
                keyword,
                args: args.trim().to_string(),
            });
        }
        Dockerfile {
            instructions,
            stages,
        }
    }

    pub fn stage_index(&self, name: &str) -> usize {
        self.stages
            .iter()
            .position(|(_, n)| n.as_deref() == Some(name))
            .unwrap_or_else(|| panic!("no stage named {name}"))
    }

    pub fn in_stage(&self, stage: usize, keyword: &str) -> Vec<&str> {
        self.instructions
            .iter()
            .filter(|i| i.stage == Some(stage) && i.keyword == keyword)
            .map(|i| i.args.as_str())
            .collect()
    }

    pub fn final_stage(&self) -> usize {
        self.stages.len() - 1
    }

    pub fn arg_default(&self, name: &str) -> Option<String> {
        self.instructions
            .iter()
            .filter(|i| i.keyword == "ARG")
            .find_map(|i| {
                i.args
                    .strip_prefix(&format!("{name}="))
                    .map(|v| v.trim_matches('"').to_string())
            })
    }

    /// The final stage's base image.
    pub fn final_base(&self) -> &str {
        &self.stages[self.final_stage()].0
    }

    /// The config of the image the final stage produces: its base image's config with the
    /// stage's ENV, USER, WORKDIR, EXPOSE, LABEL, ENTRYPOINT and CMD applied in order, as
    /// `docker build` does.
    pub fn final_config(&self, base: &ImageConfig) -> ImageConfig {
        let mut config = base.clone();
        let last = self.final_stage();
        for instruction in self.instructions.iter().filter(|i| i.stage == Some(last)) {
            let args = instruction.args.as_str();
            match instruction.keyword.as_str() {
                "ENV" => {
                    for (key, value) in key_values(args) {
                        config
                            .env
                            .retain(|e| e.split('=').next() != Some(key.as_str()));
                        config.env.push(format!("{key}={value}"));
                    }
                }
                "LABEL" => config.labels.extend(key_values(args)),
                "USER" => config.user = args.to_string(),
                "WORKDIR" => {
                    config.workdir = if args.starts_with('/') {
                        args.to_string()
                    } else {
                        format!("{}/{args}", config.workdir.trim_end_matches('/'))
                    }
                }
                "EXPOSE" => config
                    .exposed_ports
                    .extend(args.split_whitespace().map(|p| {
                        if p.contains('/') {
                            p.to_string()
                        } else {
                            format!("{p}/tcp")
                        }
                    })),
                "ENTRYPOINT" => {
                    config.entrypoint = Some(exec_form(args, "ENTRYPOINT"));
                    // An ENTRYPOINT resets the CMD inherited from the base.
                    config.cmd = None;
                }
                "CMD" => config.cmd = Some(exec_form(args, "CMD")),
                _ => {}
            }
        }
        config
    }

    /// The image paths the final stage copies in (COPY/ADD destinations: a destination
    /// ending in `/` receives each source under its file name).
    pub fn final_copied_paths(&self) -> BTreeSet<String> {
        let last = self.final_stage();
        let mut paths = BTreeSet::new();
        for args in self
            .in_stage(last, "COPY")
            .into_iter()
            .chain(self.in_stage(last, "ADD"))
        {
            let (_, sources, destination) = parse_copy(args);
            if destination.ends_with('/') {
                for source in sources {
                    let name = source
                        .trim_end_matches('/')
                        .rsplit('/')
                        .next()
                        .unwrap_or("");
                    paths.insert(format!("{destination}{name}"));
                }
            } else {
                paths.insert(destination);
            }
        }
        paths
    }
}

/// `COPY [--from=x] [--chown..] src... dst` as (from, sources, destination).
pub fn parse_copy(args: &str) -> (Option<String>, Vec<String>, String) {
    let mut from = None;
    let mut paths = Vec::new();
    for word in args.split_whitespace() {
        if let Some(stage) = word.strip_prefix("--from=") {
            from = Some(stage.to_string());
        } else if !word.starts_with("--") {
            paths.push(word.to_string());
        }
    }
    let destination = paths.pop().expect("COPY destination");
    (from, paths, destination)
}

/// `A=b C="d e"` (or the legacy `A b c`) as pairs.
fn key_values(args: &str) -> Vec<(String, String)> {
    let first = args.split_whitespace().next().unwrap_or("");
    if !first.contains('=') {
        let (key, value) = args.split_once(' ').unwrap_or((args, ""));
        return vec![(key.to_string(), value.trim().to_string())];
    }
    let mut pairs = Vec::new();
    let mut word = String::new();
    let mut words = Vec::new();
    let mut quoted = false;
    for c in args.chars() {
        match c {
            '"' => quoted = !quoted,
            c if c.is_whitespace() && !quoted => {
                if !word.is_empty() {
                    words.push(std::mem::take(&mut word));
                }
            }
            c => word.push(c),
        }
    }
    if !word.is_empty() {
        words.push(word);
    }
    for word in words {
        let (key, value) = word
            .split_once('=')
            .unwrap_or_else(|| panic!("`{word}` in `{args}` is not KEY=VALUE"));
        pairs.push((key.to_string(), value.to_string()));
    }
    pairs
}

fn exec_form(args: &str, keyword: &str) -> Vec<String> {
    serde_json::from_str(args)
        .unwrap_or_else(|e| panic!("{keyword} {args}: not in exec (JSON) form: {e}"))
}

/// The parts of an OCI image config (`config` in the image's config blob) that a
/// Dockerfile sets.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ImageConfig {
    pub user: String,
    pub env: Vec<String>,
    pub workdir: String,
    pub entrypoint: Option<Vec<String>>,
    pub cmd: Option<Vec<String>>,
    pub exposed_ports: BTreeSet<String>,
    pub labels: BTreeMap<String, String>,
}

impl ImageConfig {
    /// From the `config` object of an OCI image config.
    pub fn from_oci(config: &serde_json::Value) -> ImageConfig {
        let strings = |key: &str| -> Option<Vec<String>> {
            config[key].as_array().map(|items| {
                items
                    .iter()
                    .map(|v| v.as_str().expect("string").to_string())
                    .collect()
            })
        };
        ImageConfig {
            user: config["User"].as_str().unwrap_or("").to_string(),
            env: strings("Env").unwrap_or_default(),
            workdir: config["WorkingDir"].as_str().unwrap_or("").to_string(),
            entrypoint: strings("Entrypoint"),
            cmd: strings("Cmd"),
            exposed_ports: config["ExposedPorts"]
                .as_object()
                .map(|ports| ports.keys().cloned().collect())
                .unwrap_or_default(),
            labels: config["Labels"]
                .as_object()
                .map(|labels| {
                    labels
                        .iter()
                        .map(|(k, v)| (k.clone(), v.as_str().expect("label").to_string()))
                        .collect()
                })
                .unwrap_or_default(),
        }
    }
}

/// One path the base image provides: what an image built on it may rely on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BasePath {
    pub path: &'static str,
    pub directory: bool,
    /// Permission bits (with setuid/setgid/sticky).
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
}

/// What the images' base, `gcr.io/distroless/static-debian12:nonroot`, is: its config
/// (GoogleContainerTools/distroless, base/base.bzl: the nonroot variant of `static`) and
/// the files the agent and the operator rely on. scripts/build-images.sh rebuilds this base
/// from the host's files; tests/images.rs holds it to this description.
pub struct BaseImage {
    pub name: &'static str,
    pub config: ImageConfig,
    pub paths: Vec<BasePath>,
    /// Users (`name:uid:gid`) of /etc/passwd.
    pub users: Vec<&'static str>,
}

pub const NONROOT: u32 = 65532;

pub fn distroless_static_nonroot() -> BaseImage {
    let dir = |path, mode, uid| BasePath {
        path,
        directory: true,
        mode,
        uid,
        gid: uid,
    };
    let file = |path| BasePath {
        path,
        directory: false,
        mode: 0o644,
        uid: 0,
        gid: 0,
    };
    BaseImage {
        name: "gcr.io/distroless/static-debian12:nonroot",
        config: ImageConfig {
            user: NONROOT.to_string(),
            env: vec![
                "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into(),
                "SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt".into(),
            ],
            workdir: "/home/nonroot".into(),
            ..ImageConfig::default()
        },
        paths: vec![
            dir("/tmp", 0o1777, 0),
            dir("/home/nonroot", 0o700, NONROOT),
            dir("/root", 0o700, 0),
            file("/etc/passwd"),
            file("/etc/group"),
            file("/etc/nsswitch.conf"),
            file("/etc/ssl/certs/ca-certificates.crt"),
            file("/usr/share/zoneinfo/Etc/UTC"),
            file("/usr/share/zoneinfo/Europe/Warsaw"),
        ],
        users: vec!["root:0:0", "nobody:65534:65534", "nonroot:65532:65532"],
    }
}
