//! `template`: an arbitrary `spec.remotePath` or `spec.env` template rendered for a Pod with
//! arbitrary metadata, by the operator's template renderer (`vsc_operator::template`).
//!
//! Input: `\0`-separated records. The first is the template. The second names what it is
//! rendered as: empty for `spec.remotePath`, else the `spec.env` key. Each further record
//! sets the Pod's metadata: `@name=`, `@generateName=`, `@namespace=`, `#label=value`,
//! anything else `annotation=value`.
//!
//! Asserted: no panic, and no hang (the fuel bound; libFuzzer's `-timeout` fails a slow
//! input); an error names the field; a rendered remote path has no control character, no
//! `.`/`..` segment and keeps the template's static prefix; a rendered config value
//! (`REMOTE_*`/`ENCRYPTED_*`) is one the agent accepts; a template that does not parse
//! never renders.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Pod;
use vsc_operator::template::{PodContext, REMOTE_PATH_FIELD, check_syntax, static_prefix};
use vsc_types::contract::{config_value_problem, is_config_env};

struct Input {
    template: String,
    env_key: Option<String>,
    pod: Pod,
}

impl Input {
    fn parse(data: &[u8]) -> Input {
        let mut records = super::records(data).map(|r| String::from_utf8_lossy(r).into_owned());
        let template = records.next().unwrap_or_default();
        let env_key = records.next().filter(|key| !key.is_empty());
        let mut pod = Pod::default();
        for record in records {
            set_metadata(&mut pod, &record);
        }
        Input {
            template,
            env_key,
            pod,
        }
    }

    fn field(&self) -> String {
        match &self.env_key {
            Some(key) => format!("spec.env.{key}"),
            None => REMOTE_PATH_FIELD.to_string(),
        }
    }
}

fn set_metadata(pod: &mut Pod, record: &str) {
    let (key, value) = record.split_once('=').unwrap_or((record, ""));
    let metadata = &mut pod.metadata;
    let map = |map: &mut Option<BTreeMap<String, String>>, key: &str| {
        map.get_or_insert_with(BTreeMap::new)
            .insert(key.to_string(), value.to_string());
    };
    match key {
        "@name" => metadata.name = Some(value.to_string()),
        "@generateName" => metadata.generate_name = Some(value.to_string()),
        "@namespace" => metadata.namespace = Some(value.to_string()),
        _ => match key.strip_prefix('#') {
            Some(label) => map(&mut metadata.labels, label),
            None => map(&mut metadata.annotations, key),
        },
    }
}

/// Feeds one input; panics when a property fails.
pub fn template(data: &[u8]) {
    let input = Input::parse(data);
    let field = input.field();
    let context = PodContext::with_namespace(&input.pod, Some("fuzz"));
    let rendered = match &input.env_key {
        Some(key) => context.render_env_value(key, &input.template),
        None => context.render_remote_path(&input.template),
    };
    let parses = check_syntax(&field, &input.template);
    if let Err(e) = &parses {
        assert_eq!(e.field, field, "a syntax error names its field");
    }
    match rendered {
        Err(e) => assert_eq!(e.field, field, "the error names its field: {e}"),
        Ok(value) => {
            assert!(
                parses.is_ok(),
                "{:?} rendered but does not parse",
                input.template
            );
            match &input.env_key {
                Some(key) => check_env_value(key, &value),
                None => check_remote_path(&input.template, &value),
            }
        }
    }
}

fn check_remote_path(template: &str, path: &str) {
    assert!(
        !path.chars().any(char::is_control),
        "control character in {path:?}"
    );
    assert!(
        path.starts_with(static_prefix(template)),
        "{path:?} left the prefix of {template:?}"
    );
    assert!(
        !path
            .trim_matches('/')
            .split('/')
            .any(|s| s == ".." || s == "."),
        "a dot segment in {path:?}"
    );
}

fn check_env_value(key: &str, value: &str) {
    if is_config_env(key) {
        assert!(
            config_value_problem(value).is_none(),
            "spec.env.{key} rendered to a value the agent refuses: {value:?}"
        );
    }
}
