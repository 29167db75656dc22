//! `env_config`: arbitrary `REMOTE_*` / `ENCRYPTED_*` variables and `-p` / `-e` flags through
//! the agent's env -> rclone config renderer (`vsc_agent::rclone_config`).
//!
//! Input: `\0`-separated records. `P<key=value>` is a `--param`, `X<key=value>` an
//! `--enc-param`, `D<path>` the remote path (`-d`); any other record is an environment
//! variable `NAME=VALUE`, taken as raw bytes (names and values need not be UTF-8).
//!
//! Asserted: no panic; an accepted config renders one line per option and section, so no
//! value can add a line (or a section) of its own; an error never shows a value, checked by
//! running the same input again with a marker inside every value.

use std::collections::BTreeSet;
use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt as _;

use vsc_agent::rclone_config::{RemoteParams, RemotePath};
use vsc_types::contract::{ENCRYPTED_ENV_PREFIX, REMOTE_ENV_PREFIX};

/// Put inside every value for the second run: an error that shows it shows a value.
const MARKER: &str = "\u{2063}vsc-fuzz-marker-7Qz9";

#[derive(Debug, Default)]
struct Input {
    env: Vec<(Vec<u8>, Vec<u8>)>,
    params: Vec<String>,
    enc_params: Vec<String>,
    remote_path: String,
}

impl Input {
    fn parse(data: &[u8]) -> Input {
        let mut input = Input {
            remote_path: "bucket/dir".to_string(),
            ..Input::default()
        };
        for record in super::records(data) {
            let text = || String::from_utf8_lossy(&record[1..]).into_owned();
            match record.first() {
                Some(b'P') => input.params.push(text()),
                Some(b'X') => input.enc_params.push(text()),
                Some(b'D') => input.remote_path = text(),
                _ => {
                    let (name, value) = match record.iter().position(|b| *b == b'=') {
                        Some(at) => (&record[..at], &record[at + 1..]),
                        None => (record, &[][..]),
                    };
                    input.env.push((name.to_vec(), value.to_vec()));
                }
            }
        }
        input
    }

    /// The same input with [`MARKER`] inside every value (after its first character, so a
    /// value's leading and trailing white space, and its line breaks, stay what they were).
    fn marked(&self) -> Input {
        let env = self
            .env
            .iter()
            .map(|(name, value)| (name.clone(), mark_bytes(value)))
            .collect();
        let flags = |list: &[String]| -> Vec<String> {
            list.iter()
                .map(|raw| match raw.split_once('=') {
                    Some((key, value)) => format!("{key}={}", mark(value)),
                    None => raw.clone(),
                })
                .collect()
        };
        Input {
            env,
            params: flags(&self.params),
            enc_params: flags(&self.enc_params),
            remote_path: self.remote_path.clone(),
        }
    }

    fn collect(&self) -> Result<RemoteParams, String> {
        let env = self.env.iter().map(|(name, value)| {
            (
                OsString::from_vec(name.clone()),
                OsString::from_vec(value.clone()),
            )
        });
        RemoteParams::collect(env, &self.params, &self.enc_params).map_err(|e| e.to_string())
    }

    /// The option keys of `[remote]` and `[remote_encrypted]` this input gives, as the
    /// renderer names them (lower case; `*_plain` as what it becomes; `type` and `remote` of
    /// the crypt remote implied).
    fn expected_keys(&self) -> [BTreeSet<String>; 2] {
        let mut keys = [BTreeSet::new(), BTreeSet::new()];
        for (name, _) in &self.env {
            let Ok(name) = std::str::from_utf8(name) else {
                continue;
            };
            if let Some(key) = name.strip_prefix(REMOTE_ENV_PREFIX) {
                keys[0].insert(key.to_ascii_lowercase());
            } else if let Some(key) = name.strip_prefix(ENCRYPTED_ENV_PREFIX) {
                keys[1].insert(key.to_ascii_lowercase());
            }
        }
        for (section, list) in [(0, &self.params), (1, &self.enc_params)] {
            for raw in list {
                if let Some((key, _)) = raw.split_once('=') {
                    keys[section].insert(key.trim().to_ascii_lowercase());
                }
            }
        }
        for (plain, key) in [
            ("password_plain", "password"),
            ("password2_plain", "password2"),
        ] {
            if keys[1].remove(plain) {
                keys[1].insert(key.to_string());
            }
        }
        if !keys[1].is_empty() {
            keys[1].extend(["type".to_string(), "remote".to_string()]);
        }
        keys
    }

    /// Whether the marker is anywhere but inside values (a name or key holding it could be
    /// shown rightly).
    fn marker_outside_values(&self) -> bool {
        let contains = |bytes: &[u8]| String::from_utf8_lossy(bytes).contains(MARKER);
        self.env.iter().any(|(name, _)| contains(name))
            || self.params.iter().chain(&self.enc_params).any(|raw| {
                raw.split_once('=')
                    .map_or(raw.as_str(), |(key, _)| key)
                    .contains(MARKER)
            })
            || self.remote_path.contains(MARKER)
    }
}

fn mark(value: &str) -> String {
    let mut chars = value.chars();
    match chars.next() {
        Some(first) => format!("{first}{MARKER}{}", chars.as_str()),
        None => value.to_string(),
    }
}

fn mark_bytes(value: &[u8]) -> Vec<u8> {
    match value.split_first() {
        Some((first, rest)) => [&[*first][..], MARKER.as_bytes(), rest].concat(),
        None => Vec::new(),
    }
}

/// Feeds one input; panics when a property fails.
pub fn env_config(data: &[u8]) {
    let input = Input::parse(data);
    if let Ok(params) = input.collect()
        && let Ok(remote_path) = RemotePath::parse(&input.remote_path, "-d")
    {
        check_rendered(&params, &remote_path, &input.expected_keys());
    }
    let marked = input.marked();
    if let Err(message) = marked.collect() {
        assert!(
            marked.marker_outside_values() || !message.contains(MARKER),
            "an error shows a value: {message:?}"
        );
    }
}

/// Every line of the config is a section header, the blank line between the two sections,
/// or one `key = value` of a key seen once in its section, and the keys are exactly those
/// given: no value adds a line of its own.
fn check_rendered(
    params: &RemoteParams,
    remote_path: &RemotePath,
    expected: &[BTreeSet<String>; 2],
) {
    let rendered = params.render(remote_path);
    let expected_sections = if params.encryption_enabled() { 2 } else { 1 };
    let mut sections = 0;
    let mut found: [BTreeSet<String>; 2] = Default::default();
    for line in rendered.lines() {
        if line.starts_with('[') && line.ends_with(']') {
            sections += 1;
            continue;
        }
        let keys = &mut found[sections.clamp(1, 2) - 1];
        if line.is_empty() {
            continue;
        }
        let (key, _) = line
            .split_once(" = ")
            .unwrap_or_else(|| panic!("a line that is no option: {line:?} in {rendered:?}"));
        assert!(
            key.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-'),
            "a key rclone would not read: {key:?} in {rendered:?}"
        );
        assert!(
            keys.insert(key.to_string()),
            "{key} twice in one section: {rendered:?}"
        );
    }
    assert_eq!(sections, expected_sections, "sections of {rendered:?}");
    assert_eq!(&found, expected, "the options of {rendered:?}");
    assert!(
        !rendered.contains(['\r', '\0']),
        "a carriage return or NUL in {rendered:?}"
    );
    let target = params.target(remote_path);
    assert!(!target.contains(['\n', '\r', '\0']), "target {target:?}");
}
