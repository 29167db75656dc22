//! What makes a PodFilesystemSync unusable without asking the API server: the spec's own
//! rules and the templates' syntax. The reconciler reports it in the status (never Ready),
//! the webhook denies the Pods such a resource selects; both word it the same way.

use vsc_types::crd::{FieldError, PodFilesystemSync};

use crate::template;

/// Spec validation plus template syntax: the checks that need no API call.
pub fn validate(pfss: &PodFilesystemSync) -> Vec<FieldError> {
    let mut errors = pfss.validate();
    if let Err(e) = template::check_syntax("spec.remotePath", &pfss.spec.remote_path) {
        errors.push(FieldError::new(e.field, e.message));
    }
    for (key, value) in &pfss.spec.env {
        let field = format!("spec.env.{key}");
        if let Err(e) = template::check_syntax(&field, value) {
            errors.push(FieldError::new(e.field, e.message));
        }
    }
    errors
}

/// `field: message; field: message`, as the status and the denial show it.
pub fn describe(errors: &[FieldError]) -> String {
    errors
        .iter()
        .map(FieldError::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}
