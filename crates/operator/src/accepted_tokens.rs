//! Report tokens the API server accepted, remembered for a minute, so that a sidecar asking
//! every 10 s (its writer lease, or `sync-now` requests) costs one TokenReview a minute
//! instead of six. The kubelet's own webhook authenticator caches reviews the same way (two
//! minutes by default).
//!
//! Only acceptances are kept, keyed by a SHA-256 of the audience and the token (the token
//! itself is never stored). A refused token is reviewed again every time. What the minute
//! costs: a token that stops being valid (its Pod deleted) is still believed for at most
//! [`BELIEVED_FOR`]; the Pod it names is gone by then, so it can only report for itself.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use sha2::{Digest as _, Sha256};

/// How long an accepted token is believed without asking the API server again.
pub const BELIEVED_FOR: Duration = Duration::from_secs(60);
/// Bounds the memory: past this many live entries, all are forgotten (and reviewed again).
const MAX_ENTRIES: usize = 10_000;

type Key = [u8; 32];

#[derive(Default)]
pub struct AcceptedTokens {
    entries: Mutex<HashMap<Key, Accepted>>,
}

struct Accepted {
    namespace: String,
    pod: String,
    until: Instant,
}

fn key(audience: &str, token: &str) -> Key {
    let mut hash = Sha256::new();
    hash.update(audience.as_bytes());
    hash.update([0]);
    hash.update(token.as_bytes());
    hash.finalize().into()
}

impl AcceptedTokens {
    /// The namespace and Pod `token` was accepted for with `audience`, while still believed.
    pub fn bound_to(&self, audience: &str, token: &str, now: Instant) -> Option<(String, String)> {
        let entries = self.entries.lock().ok()?;
        let accepted = entries.get(&key(audience, token))?;
        (now < accepted.until).then(|| (accepted.namespace.clone(), accepted.pod.clone()))
    }

    /// Remembers that the API server accepted `token` for `audience`, bound to `pod` in
    /// `namespace`.
    pub fn remember(&self, audience: &str, token: &str, namespace: &str, pod: &str, now: Instant) {
        let Ok(mut entries) = self.entries.lock() else {
            return;
        };
        entries.retain(|_, accepted| now < accepted.until);
        if entries.len() >= MAX_ENTRIES {
            entries.clear();
        }
        entries.insert(
            key(audience, token),
            Accepted {
                namespace: namespace.to_string(),
                pod: pod.to_string(),
                until: now + BELIEVED_FOR,
            },
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_accepted_token_is_believed_for_a_minute_and_only_for_its_audience() {
        let tokens = AcceptedTokens::default();
        let start = Instant::now();
        assert_eq!(tokens.bound_to("aud-a", "t", start), None);
        tokens.remember("aud-a", "t", "shop", "web-0", start);
        let bound = Some(("shop".to_string(), "web-0".to_string()));
        assert_eq!(
            tokens.bound_to("aud-a", "t", start + Duration::from_secs(59)),
            bound
        );
        assert_eq!(
            tokens.bound_to("aud-b", "t", start),
            None,
            "another audience"
        );
        assert_eq!(tokens.bound_to("aud-a", "u", start), None, "another token");
        assert_eq!(tokens.bound_to("aud-a", "t", start + BELIEVED_FOR), None);
    }

    #[test]
    fn the_entries_are_bounded() {
        let tokens = AcceptedTokens::default();
        let now = Instant::now();
        for n in 0..=MAX_ENTRIES {
            tokens.remember("aud", &n.to_string(), "ns", "pod", now);
        }
        let kept = tokens.entries.lock().map(|e| e.len()).unwrap_or_default();
        assert!(kept <= MAX_ENTRIES, "{kept}");
        assert!(
            tokens
                .bound_to("aud", &MAX_ENTRIES.to_string(), now)
                .is_some()
        );
    }
}
