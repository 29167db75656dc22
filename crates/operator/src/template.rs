//! `spec.remotePath` and `spec.env` values are Jinja2 templates (minijinja), rendered per Pod.
//!
//! The context holds `pod`: the Pod in its Kubernetes JSON shape (`pod.metadata.annotations`)
//! plus the Go field names the original operator exposed (`pod.ObjectMeta.Annotations`,
//! `pod.ObjectMeta.Labels`, `pod.ObjectMeta.Name`, `pod.Namespace`, ...), so the seed's
//! example `{{ pod.ObjectMeta.Annotations["subdir"] }}` works verbatim.
//!
//! Printing an undefined value (a missing annotation, a Pod without a name under
//! `generateName`) is an error naming the field, never an empty string. Testing one is allowed,
//! so `{% if pod.metadata.labels.tier %}` and `{{ x | default("y") }}` work.
//!
//! A rendered remote path is checked: not empty, no control characters, no `.`/`..` or empty
//! segments, and it starts with the template's static prefix (the text before its first tag),
//! so `/bucket/{{ ... }}` cannot render to `/other`.

use std::collections::BTreeMap;
use std::sync::LazyLock;

use k8s_openapi::api::core::v1::Pod;
use minijinja::{Environment, UndefinedBehavior, Value};
use vsc_types::contract::{config_value_problem, is_config_env};
use vsc_types::crd::FieldError;

/// Longest template source and rendered value accepted.
pub const MAX_TEMPLATE_LEN: usize = 4096;
/// Longest rendered env value accepted.
const MAX_ENV_VALUE_LEN: usize = 32 * 1024;
/// Field path of the remote path template.
pub const REMOTE_PATH_FIELD: &str = "spec.remotePath";

/// A template that does not parse, fails to render, or renders to an unsafe value: the field
/// holding it (e.g. `spec.remotePath`, `spec.env.REMOTE_ENDPOINT`) and what went wrong.
pub type TemplateError = FieldError;

static ENV: LazyLock<Environment<'static>> = LazyLock::new(|| {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::SemiStrict);
    // Paths and env values are plain text; a name ending in `.html` must not turn on escaping.
    env.set_auto_escape_callback(|_| minijinja::AutoEscape::None);
    // Templates come from namespace users and run inside the operator: drop what only
    // serves to generate large amounts of work or to dump the whole context.
    env.remove_global("range");
    env.remove_global("debug");
    // Bound the work one template may do (loops over Pod data): an admission review has a
    // few seconds, and a runaway template must fail, not stall every Pod creation.
    env.set_fuel(Some(TEMPLATE_FUEL));
    env
});

/// Labels and annotations are always maps (a Pod without any has no such field, and
/// `annotations.x | default(...)` must work on it too); the namespace comes from the request
/// when the Pod has none.
fn fill_metadata(
    metadata: &mut serde_json::Map<String, serde_json::Value>,
    namespace: Option<&str>,
) {
    for field in ["labels", "annotations"] {
        metadata
            .entry(field)
            .or_insert_with(|| serde_json::json!({}));
    }
    if let Some(namespace) = namespace
        && metadata
            .get("namespace")
            .and_then(|n| n.as_str())
            .is_none_or(str::is_empty)
    {
        metadata.insert("namespace".into(), namespace.into());
    }
}

/// Instructions one template render may execute; the seed's templates need a few dozen.
const TEMPLATE_FUEL: u64 = 50_000;

/// The context templates are rendered with, built once per Pod.
#[derive(Clone, Debug)]
pub struct PodContext {
    context: Value,
    /// The Pod has `generateName` and no name (yet).
    unnamed: bool,
}

impl PodContext {
    /// Builds the context from a Pod as it is.
    pub fn new(pod: &Pod) -> Self {
        Self::with_namespace(pod, None)
    }

    /// Builds the context, filling `metadata.namespace` when the Pod has none (an admission
    /// request carries the namespace beside the object).
    pub fn with_namespace(pod: &Pod, namespace: Option<&str>) -> Self {
        let mut json = serde_json::to_value(pod).unwrap_or(serde_json::Value::Null);
        if let Some(metadata) = json.as_object_mut().map(|object| {
            object
                .entry("metadata")
                .or_insert_with(|| serde_json::json!({}))
        }) && let Some(metadata) = metadata.as_object_mut()
        {
            fill_metadata(metadata, namespace);
        }
        let mut pod_value: BTreeMap<String, Value> = json
            .as_object()
            .map(|map| {
                map.iter()
                    .map(|(k, v)| (k.clone(), json_value(v)))
                    .collect()
            })
            .unwrap_or_default();
        add_go_aliases(&json, &mut pod_value);
        let mut root = BTreeMap::new();
        root.insert("pod".to_string(), Value::from(pod_value));
        Self {
            context: Value::from(root),
            unnamed: pod.metadata.name.as_deref().is_none_or(str::is_empty)
                && pod.metadata.generate_name.is_some(),
        }
    }

    fn describe(&self, error: &minijinja::Error, template: &str) -> String {
        let hint = match error.kind() {
            minijinja::ErrorKind::UndefinedError
                if self.unnamed && template.to_ascii_lowercase().contains("name") =>
            {
                NO_NAME_HINT
            }
            minijinja::ErrorKind::UndefinedError => UNDEFINED_HINT,
            minijinja::ErrorKind::SyntaxError => " (template syntax error)",
            _ => "",
        };
        format!("template error: {error}{hint}")
    }

    /// Renders `spec.remotePath` and checks the result (see the module docs).
    pub fn render_remote_path(&self, template: &str) -> Result<String, TemplateError> {
        let rendered = self.render(REMOTE_PATH_FIELD, template)?;
        check_remote_path(template, &rendered)
            .map_err(|m| TemplateError::new(REMOTE_PATH_FIELD, m))?;
        Ok(rendered)
    }

    /// Renders the value of `spec.env.<key>`.
    pub fn render_env_value(&self, key: &str, template: &str) -> Result<String, TemplateError> {
        let field = format!("spec.env.{key}");
        let rendered = self.render(&field, template)?;
        if rendered.len() > MAX_ENV_VALUE_LEN {
            return Err(TemplateError::new(
                &field,
                format!("renders to more than {MAX_ENV_VALUE_LEN} bytes"),
            ));
        }
        if is_config_env(key)
            && let Some(problem) = config_value_problem(&rendered)
        {
            // The agent would refuse it: deny the Pod instead of a failing init container.
            return Err(TemplateError::new(
                &field,
                format!("the rendered value {problem}"),
            ));
        }
        Ok(rendered)
    }

    /// Renders any template; errors name `field`.
    pub fn render(&self, field: &str, template: &str) -> Result<String, TemplateError> {
        if template.len() > MAX_TEMPLATE_LEN {
            return Err(TemplateError::new(
                field,
                format!("template longer than {MAX_TEMPLATE_LEN} characters"),
            ));
        }
        ENV.render_named_str(field, template, &self.context)
            .map_err(|e| TemplateError::new(field, self.describe(&e, template)))
    }
}

/// Renders `spec.remotePath` for a Pod and checks the result.
pub fn render_remote_path(template: &str, pod: &Pod) -> Result<String, TemplateError> {
    PodContext::new(pod).render_remote_path(template)
}

/// Renders the value of `spec.env.<key>` for a Pod.
pub fn render_env_value(key: &str, template: &str, pod: &Pod) -> Result<String, TemplateError> {
    PodContext::new(pod).render_env_value(key, template)
}

/// Checks that a template parses, without rendering it (for validating a resource before any
/// Pod exists).
pub fn check_syntax(field: &str, template: &str) -> Result<(), TemplateError> {
    if template.len() > MAX_TEMPLATE_LEN {
        return Err(TemplateError::new(
            field,
            format!("template longer than {MAX_TEMPLATE_LEN} characters"),
        ));
    }
    ENV.template_from_named_str(field, template)
        .map(|_| ())
        .map_err(|e| {
            TemplateError::new(
                field,
                format!("template error: {e} (template syntax error)"),
            )
        })
}

/// The text before the template's first tag (`{{`, `{%` or `{#`); the whole text when it has none.
pub fn static_prefix(template: &str) -> &str {
    let end = ["{{", "{%", "{#"]
        .iter()
        .filter_map(|tag| template.find(tag))
        .min()
        .unwrap_or(template.len());
    &template[..end]
}

fn check_remote_path(template: &str, rendered: &str) -> Result<(), String> {
    if rendered.trim().is_empty() {
        return Err("renders to an empty path".to_string());
    }
    if rendered.len() > MAX_TEMPLATE_LEN {
        return Err(format!(
            "renders to a path longer than {MAX_TEMPLATE_LEN} characters"
        ));
    }
    if rendered.chars().any(char::is_control) {
        return Err(format!(
            "renders to a path with a newline or control character: {rendered:?}"
        ));
    }
    if rendered
        .split('/')
        .any(|segment| segment == ".." || segment == ".")
    {
        return Err(format!(
            "renders to '{rendered}', which contains a '.' or '..' segment"
        ));
    }
    if rendered.contains("//") {
        return Err(format!(
            "renders to '{rendered}', which has an empty path segment (a template value is empty?)"
        ));
    }
    let prefix = static_prefix(template);
    if !rendered.starts_with(prefix) {
        return Err(format!(
            "renders to '{rendered}', outside its static prefix '{prefix}'"
        ));
    }
    let dynamic = prefix.len() < template.len();
    if dynamic {
        if rendered.trim_end_matches('/') == prefix.trim_end_matches('/') {
            return Err(format!(
                "renders to '{rendered}', just its static prefix: the templated part is empty"
            ));
        }
        if rendered.ends_with('/') && !template.trim_end().ends_with('/') {
            return Err(format!(
                "renders to '{rendered}', which ends with an empty segment (a template value is empty?)"
            ));
        }
    }
    Ok(())
}

const UNDEFINED_HINT: &str = ": the template reads a value the Pod does not have (a missing label or annotation? \
     use `| default(\"...\")` for optional values)";

/// Pods of Deployments, ReplicaSets, Jobs and DaemonSets are admitted with `generateName`
/// only: their name does not exist yet.
const NO_NAME_HINT: &str = ": this Pod has no name yet (Pods made by a Deployment, ReplicaSet, Job or \
     DaemonSet get theirs after admission, from `generateName`): use a label, an annotation or \
     `pod.metadata.generateName` instead";

fn json_value(json: &serde_json::Value) -> Value {
    match json {
        serde_json::Value::Null => Value::from(()),
        serde_json::Value::Bool(b) => Value::from(*b),
        serde_json::Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                Value::from(i)
            } else if let Some(u) = n.as_u64() {
                Value::from(u)
            } else {
                Value::from(n.as_f64().unwrap_or_default())
            }
        }
        serde_json::Value::String(s) => Value::from(s.as_str()),
        serde_json::Value::Array(items) => {
            Value::from(items.iter().map(json_value).collect::<Vec<_>>())
        }
        serde_json::Value::Object(map) => Value::from(
            map.iter()
                .map(|(k, v)| (k.clone(), json_value(v)))
                .collect::<BTreeMap<_, _>>(),
        ),
    }
}

/// Go field names of `corev1.Pod` (as pongo2 saw them in the original), for the fields a
/// path template plausibly needs. Labels and Annotations are always maps, so a missing key is
/// an undefined value (an error when printed) rather than a lookup on nothing.
fn add_go_aliases(json: &serde_json::Value, pod: &mut BTreeMap<String, Value>) {
    let metadata = &json["metadata"];
    let mut object_meta = BTreeMap::new();
    for (go, k8s) in [
        ("Name", "name"),
        ("Namespace", "namespace"),
        ("GenerateName", "generateName"),
        ("UID", "uid"),
    ] {
        if let Some(value) = metadata.get(k8s).filter(|v| !v.is_null()) {
            object_meta.insert(go.to_string(), json_value(value));
        }
    }
    for (go, k8s) in [("Labels", "labels"), ("Annotations", "annotations")] {
        let value = metadata
            .get(k8s)
            .filter(|v| v.is_object())
            .map_or_else(|| Value::from(BTreeMap::<String, Value>::new()), json_value);
        object_meta.insert(go.to_string(), value);
    }
    // Go promotes embedded fields: `pod.Name` works as well as `pod.ObjectMeta.Name`.
    for (key, value) in &object_meta {
        pod.insert(key.clone(), value.clone());
    }
    pod.insert("ObjectMeta".to_string(), Value::from(object_meta));

    let spec = &json["spec"];
    let mut go_spec = BTreeMap::new();
    for (go, k8s) in [
        ("ServiceAccountName", "serviceAccountName"),
        ("NodeName", "nodeName"),
        ("Hostname", "hostname"),
        ("Subdomain", "subdomain"),
        ("PriorityClassName", "priorityClassName"),
    ] {
        if let Some(value) = spec.get(k8s).filter(|v| !v.is_null()) {
            go_spec.insert(go.to_string(), json_value(value));
        }
    }
    pod.insert("Spec".to_string(), Value::from(go_spec));
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    fn pod(annotations: &[(&str, &str)], labels: &[(&str, &str)]) -> Pod {
        let map = |kv: &[(&str, &str)]| {
            Some(
                kv.iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect::<BTreeMap<_, _>>(),
            )
        };
        Pod {
            metadata: ObjectMeta {
                name: Some("web-0".into()),
                namespace: Some("apps".into()),
                annotations: map(annotations),
                labels: map(labels),
                ..ObjectMeta::default()
            },
            ..Pod::default()
        }
    }

    #[test]
    fn seed_example_go_shape_renders_verbatim() {
        let p = pod(&[("subdir", "wordpress")], &[]);
        let rendered = render_remote_path(
            r#"/stalin-was-a-dickhead/{{ pod.ObjectMeta.Annotations["subdir"] }}"#,
            &p,
        );
        assert_eq!(
            rendered.expect("renders"),
            "/stalin-was-a-dickhead/wordpress"
        );
    }

    #[test]
    fn kubernetes_shape_and_promoted_go_fields_render() {
        let p = pod(&[("subdir", "a")], &[("some", "b")]);
        let ctx = PodContext::new(&p);
        assert_eq!(
            ctx.render_remote_path("/x/{{ pod.metadata.annotations.subdir }}")
                .expect("ok"),
            "/x/a"
        );
        assert_eq!(
            ctx.render_remote_path(r#"/mnt/{{ pod.ObjectMeta.Labels["some"] }}/and-lenin-too"#)
                .expect("ok"),
            "/mnt/b/and-lenin-too"
        );
        assert_eq!(
            ctx.render_remote_path("/x/{{ pod.Namespace }}/{{ pod.Name }}")
                .expect("ok"),
            "/x/apps/web-0"
        );
        assert_eq!(
            ctx.render_remote_path("/x/{{ pod.metadata.namespace }}")
                .expect("ok"),
            "/x/apps"
        );
    }

    #[test]
    fn missing_annotation_is_an_error_naming_the_field() {
        let p = pod(&[], &[]);
        let err = render_remote_path(r#"/bucket/{{ pod.ObjectMeta.Annotations["subdir"] }}"#, &p)
            .expect_err("undefined annotation");
        assert_eq!(err.field, "spec.remotePath");
        assert!(err.message.contains("undefined"), "{err}");
        let err = render_remote_path("/bucket/{{ pod.metadata.annotations.subdir }}", &p)
            .expect_err("no annotations");
        assert_eq!(err.field, "spec.remotePath");
    }

    #[test]
    fn missing_name_under_generate_name_is_an_error() {
        let mut p = pod(&[], &[]);
        p.metadata.name = None;
        p.metadata.generate_name = Some("web-".into());
        let err = render_remote_path("/b/{{ pod.ObjectMeta.Name }}", &p).expect_err("no name");
        assert!(
            err.message.contains("no name yet") && err.message.contains("generateName"),
            "{err}"
        );
        assert_eq!(
            render_remote_path("/b/{{ pod.ObjectMeta.GenerateName }}x", &p).expect("ok"),
            "/b/web-x"
        );
    }

    #[test]
    fn defaults_and_conditionals_work_on_missing_values() {
        let p = pod(&[], &[]);
        let ctx = PodContext::new(&p);
        assert_eq!(
            ctx.render_remote_path(r#"/b/{{ pod.metadata.annotations.subdir | default("main") }}"#)
                .expect("ok"),
            "/b/main"
        );
        assert_eq!(
            ctx.render_remote_path("/b/{% if pod.metadata.labels.tier %}x{% else %}y{% endif %}")
                .expect("ok"),
            "/b/y"
        );
    }

    #[test]
    fn defaults_work_on_a_pod_without_any_annotations_or_labels() {
        let mut p = pod(&[], &[]);
        p.metadata.annotations = None;
        p.metadata.labels = None;
        let ctx = PodContext::new(&p);
        for template in [
            r#"/b/{{ pod.metadata.annotations.x | default("shared") }}"#,
            r#"/b/{{ pod.ObjectMeta.Annotations["x"] | default("shared") }}"#,
            r#"/b/{{ pod.metadata.labels.tier | default("shared") }}"#,
        ] {
            assert_eq!(
                ctx.render_remote_path(template).expect(template),
                "/b/shared"
            );
        }
    }

    #[test]
    fn namespace_is_filled_from_the_request() {
        let mut p = pod(&[], &[]);
        p.metadata.namespace = None;
        let ctx = PodContext::with_namespace(&p, Some("team-a"));
        assert_eq!(
            ctx.render_remote_path("/b/{{ pod.ObjectMeta.Namespace }}")
                .expect("ok"),
            "/b/team-a"
        );
    }

    #[test]
    fn dot_dot_and_escaping_the_prefix_are_rejected() {
        for value in ["..", "../other", "a/../../x", "."] {
            let p = pod(&[("subdir", value)], &[]);
            let err = render_remote_path("/bucket/{{ pod.metadata.annotations.subdir }}", &p)
                .expect_err(value);
            assert_eq!(err.field, "spec.remotePath");
        }
        let p = pod(&[("where", "/other")], &[]);
        let err = render_remote_path("/bucket/{{ pod.metadata.annotations.where }}", &p)
            .expect_err("prefix");
        assert!(
            err.message.contains("//other") || err.message.contains("prefix"),
            "{err}"
        );
        let err = render_remote_path("/bucket{{ pod.metadata.annotations.where }}", &p)
            .expect("/bucket/other");
        assert_eq!(err, "/bucket/other");
        let err = render_remote_path(r#"{{ "/other" }}"#, &p);
        assert_eq!(err.expect("no static prefix: any path"), "/other");
    }

    #[test]
    fn template_that_escapes_a_static_prefix_is_rejected() {
        let p = pod(&[], &[]);
        let err = render_remote_path(r"/bucket/{% if true %}{% endif %}", &p)
            .expect_err("empty dynamic part");
        assert!(err.message.contains("static prefix"), "{err}");
    }

    #[test]
    fn empty_values_newlines_and_empty_paths_are_rejected() {
        let p = pod(&[("empty", ""), ("nl", "a\nb")], &[]);
        let ctx = PodContext::new(&p);
        assert!(
            ctx.render_remote_path("/bucket/{{ pod.metadata.annotations.empty }}")
                .is_err()
        );
        assert!(
            ctx.render_remote_path("/bucket/{{ pod.metadata.annotations.empty }}/x")
                .is_err()
        );
        assert!(
            ctx.render_remote_path("/bucket/{{ pod.metadata.annotations.nl }}")
                .is_err()
        );
        assert!(
            ctx.render_remote_path("{{ pod.metadata.annotations.empty }}")
                .is_err()
        );
        assert!(ctx.render_remote_path("").is_err());
    }

    #[test]
    fn a_rendered_config_value_with_a_line_break_is_refused_naming_the_variable() {
        let p = pod(&[("endpoint", "http://minio:9000\nextra = 1")], &[]);
        let template = "{{ pod.metadata.annotations.endpoint }}";
        let err = render_env_value("REMOTE_ENDPOINT", template, &p).expect_err("line break");
        assert_eq!(err.field, "spec.env.REMOTE_ENDPOINT");
        assert!(err.message.contains("line break"), "{err}");
        // Outside the rclone config a line break is the app's business.
        assert!(render_env_value("GREETING", template, &p).is_ok());
    }

    #[test]
    fn static_paths_pass_through() {
        let p = pod(&[], &[]);
        assert_eq!(
            render_remote_path("/example-org-bucket", &p).expect("ok"),
            "/example-org-bucket"
        );
        assert_eq!(
            render_remote_path("bucket/dir", &p).expect("ok"),
            "bucket/dir"
        );
    }

    #[test]
    fn syntax_errors_name_the_field() {
        let err = check_syntax("spec.remotePath", "/b/{{ pod.").expect_err("syntax");
        assert_eq!(err.field, "spec.remotePath");
        assert!(err.message.contains("syntax"), "{err}");
        assert!(check_syntax("spec.remotePath", "/b/{{ pod.metadata.name }}").is_ok());
        let p = pod(&[], &[]);
        let err = render_remote_path("/b/{{ pod.", &p).expect_err("syntax");
        assert_eq!(err.field, "spec.remotePath");
    }

    #[test]
    fn a_runaway_template_runs_out_of_fuel_instead_of_stalling_admission() {
        let pod: Pod = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "p", "labels": {"a": "1", "b": "2", "c": "3", "d": "4"}}
        }))
        .expect("pod");
        let template = "/x/{% for a in pod.metadata.labels %}{% for b in pod.metadata.labels %}{% for c in pod.metadata.labels %}{% for d in pod.metadata.labels %}{% for e in pod.metadata.labels %}{% for f in pod.metadata.labels %}{% for g in pod.metadata.labels %}{% for h in pod.metadata.labels %}y{% endfor %}{% endfor %}{% endfor %}{% endfor %}{% endfor %}{% endfor %}{% endfor %}{% endfor %}";
        let err = render_remote_path(template, &pod).expect_err("out of fuel");
        assert_eq!(err.field, "spec.remotePath");
    }

    #[test]
    fn env_values_render_and_errors_name_the_key() {
        let p = pod(&[("bucket", "b1")], &[]);
        assert_eq!(
            render_env_value(
                "REMOTE_ENDPOINT",
                "http://{{ pod.metadata.annotations.bucket }}.local",
                &p
            )
            .expect("ok"),
            "http://b1.local"
        );
        let err = render_env_value("REMOTE_ACL", "{{ pod.metadata.annotations.acl }}", &p)
            .expect_err("undefined");
        assert_eq!(err.field, "spec.env.REMOTE_ACL");
        assert!(
            err.to_string().starts_with("spec.env.REMOTE_ACL: "),
            "{err}"
        );
        // Plain values, including ones with characters HTML would escape, pass unchanged.
        assert_eq!(
            render_env_value("X.html", "a<b>&'c'", &p).expect("ok"),
            "a<b>&'c'"
        );
    }

    #[test]
    fn heavy_helpers_are_not_available() {
        let p = pod(&[], &[]);
        assert!(render_env_value("X", "{% for i in range(10) %}{% endfor %}", &p).is_err());
        assert!(render_env_value("X", "{{ debug() }}", &p).is_err());
    }

    #[test]
    fn bad_templates_are_refused_naming_their_field_and_what_is_wrong() {
        let p = pod(&[("big", &"x".repeat(5000)), ("tab", "a\tb")], &[]);
        let long = format!("/b/{}", "x".repeat(MAX_TEMPLATE_LEN));
        let huge_env =
            "{% for i in [1,2,3,4,5,6,7,8,9] %}{{ pod.metadata.annotations.big }}{% endfor %}";
        for (key, template, needle) in [
            (None, long.as_str(), "longer than 4096"),
            (
                None,
                "/b/{{ pod.metadata.annotations.big }}",
                "longer than 4096",
            ),
            (
                None,
                "/b/{{ pod.metadata.annotations.tab }}",
                "control character",
            ),
            (
                None,
                "/b/{{ pod.metadata.name | nosuchfilter }}",
                "unknown filter",
            ),
            (None, "/b/{% include \"other\" %}", "template not found"),
            (None, "/b/{% if pod.metadata.name %}x", "syntax error"),
            (None, "/b/{{ pod.metadata.name }}/../x", "'..'"),
            (Some("REMOTE_ACL"), "{{ 1 / 0 }}", "spec.env.REMOTE_ACL"),
            (Some("APP_DATA"), huge_env, "more than 32768 bytes"),
            (
                Some("REMOTE_ACL"),
                " {{ pod.metadata.name }}",
                "white space",
            ),
        ] {
            let err = match key {
                Some(key) => render_env_value(key, template, &p),
                None => render_remote_path(template, &p),
            }
            .expect_err(template);
            let field = key.map_or(REMOTE_PATH_FIELD.to_string(), |k| format!("spec.env.{k}"));
            assert_eq!(err.field, field, "{template}: {err}");
            assert!(
                err.to_string().contains(needle),
                "{template}: no {needle:?} in {err}"
            );
        }
    }

    #[test]
    fn static_prefix_stops_at_the_first_tag() {
        assert_eq!(static_prefix("/a/{{ x }}/{% if %}"), "/a/");
        assert_eq!(static_prefix("/a/{# c #}{{ x }}"), "/a/");
        assert_eq!(static_prefix("/plain"), "/plain");
    }
}
