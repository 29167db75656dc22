//! The deletion plan: before a sync that may delete, both sides are listed and what the
//! destination would lose is counted; too much is refused before anything is touched.
//!
//! rclone's own `--max-delete` stops *after* deleting that many files; this stops before.
//! The plan counts files (not directories) that exist at the destination and not at the
//! source, with the agent's own names excluded on both sides. Files that would be
//! overwritten are not deletions (`--trash` keeps their old versions).

use std::borrow::Borrow;
use std::collections::BTreeMap;

use crate::error::{AgentError, Result};

/// How many names a refusal quotes.
const NAMES_QUOTED: usize = 5;

/// The limits a plan is checked against (`--max-delete-percent`, `--max-delete-files`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Refuse above this share of the destination's files; 100: no limit.
    pub max_percent: u8,
    /// Refuse above this many files; 0: no limit.
    pub max_files: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeletionPlan {
    /// Paths at the destination that the sync would delete, sorted.
    pub deletions: Vec<String>,
    /// Files at the destination before the sync.
    pub destination_files: usize,
}

impl DeletionPlan {
    pub fn between<S, D>(source: &BTreeMap<S, u64>, destination: &BTreeMap<D, u64>) -> Self
    where
        S: Borrow<str> + Ord,
        D: Borrow<str> + Ord,
    {
        DeletionPlan {
            deletions: missing_from(destination, source),
            destination_files: destination.len(),
        }
    }

    /// The plan without `discarded`: files added locally since the last sync that the
    /// caller chose to discard (--discard-local-changes, a takeover by a new primary).
    /// Deleting them is what was asked, so they count neither as deletions nor as files of
    /// the destination; the limits judge what is left.
    pub fn without_discarded(&self, discarded: &[String]) -> DeletionPlan {
        let is_discarded = |path: &String| discarded.binary_search(path).is_ok();
        let deletions: Vec<String> = self
            .deletions
            .iter()
            .filter(|path| !is_discarded(path))
            .cloned()
            .collect();
        let discarded_here = self.deletions.len() - deletions.len();
        DeletionPlan {
            deletions,
            destination_files: self.destination_files - discarded_here,
        }
    }

    pub fn percent(&self) -> u64 {
        match self.destination_files {
            0 => 0,
            total => (self.deletions.len() as u64 * 100).div_ceil(total as u64),
        }
    }

    /// Refuses (exit 3) when the plan exceeds `limits`; `destination` names the side that
    /// would lose files, e.g. "at the remote remote:/bucket/app".
    pub fn check(&self, limits: Limits, destination: &str) -> Result<()> {
        let deletions = self.deletions.len() as u64;
        let too_many_files = limits.max_files > 0 && deletions > limits.max_files;
        let too_large_share = limits.max_percent < 100
            && deletions * 100 > u64::from(limits.max_percent) * self.destination_files as u64;
        let (limit, how_to_override) = if too_many_files {
            (
                format!("more than --max-delete-files {}", limits.max_files),
                "Raise --max-delete-files (0: no limit), or pass --no-deletion-plan, to allow it.",
            )
        } else if too_large_share {
            (
                format!("more than --max-delete-percent {}", limits.max_percent),
                "Raise --max-delete-percent (100: no limit), or pass --no-deletion-plan, to allow it.",
            )
        } else {
            return Ok(());
        };
        Err(AgentError::RefusedBySafetyValve {
            reason: format!(
                "the sync would delete {deletions} of {} files {destination} ({}%), {limit}: {} (is the source the right directory, and mounted?)",
                self.destination_files,
                self.percent(),
                quote_names(&self.deletions),
            ),
            how_to_override,
        })
    }
}

/// Paths in `listing` that `other` does not have, sorted.
/// Paths of `listing` that `other` does not hold. Either may borrow its paths (the local
/// side's from the scan, so a large tree is not held twice).
pub fn missing_from<A, B>(listing: &BTreeMap<A, u64>, other: &BTreeMap<B, u64>) -> Vec<String>
where
    A: Borrow<str> + Ord,
    B: Borrow<str> + Ord,
{
    listing
        .keys()
        .map(Borrow::borrow)
        .filter(|path: &&str| !other.contains_key(*path))
        .map(str::to_string)
        .collect()
}

/// `a, b, c and 4 more`.
pub fn quote_names(names: &[String]) -> String {
    let shown: Vec<&str> = names
        .iter()
        .take(NAMES_QUOTED)
        .map(String::as_str)
        .collect();
    let mut text = shown.join(", ");
    if names.len() > shown.len() {
        text.push_str(&format!(" and {} more", names.len() - shown.len()));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rclone::FileListing;

    fn listing(paths: &[&str]) -> FileListing {
        paths.iter().map(|path| (path.to_string(), 1)).collect()
    }

    const DEFAULTS: Limits = Limits {
        max_percent: 50,
        max_files: 0,
    };

    #[test]
    fn counts_only_destination_files_the_source_lacks() {
        let plan = DeletionPlan::between(
            &listing(&["a", "b", "new"]),
            &listing(&["a", "b", "c", "d"]),
        );
        assert_eq!(plan.deletions, vec!["c", "d"]);
        assert_eq!(plan.destination_files, 4);
        assert_eq!(plan.percent(), 50);
        plan.check(DEFAULTS, "at x").expect("50% is within 50%");
    }

    #[test]
    fn refuses_above_the_share_and_names_files_and_flag() {
        let plan = DeletionPlan::between(
            &listing(&["fresh.db"]),
            &listing(&["a", "b", "c", "d", "e", "f", "g"]),
        );
        let err = plan
            .check(DEFAULTS, "at the remote r:")
            .expect_err("refused");
        let text = err.to_string();
        assert!(
            text.contains("delete 7 of 7 files at the remote r: (100%)"),
            "{text}"
        );
        assert!(text.contains("a, b, c, d, e and 2 more"), "{text}");
        assert!(text.contains("--max-delete-percent"), "{text}");
        assert_eq!(err.exit_code(), 3);
        plan.check(
            Limits {
                max_percent: 100,
                max_files: 0,
            },
            "x",
        )
        .expect("100: no limit");
    }

    #[test]
    fn refuses_above_the_file_count_even_within_the_share() {
        let destination: Vec<String> = (0..100).map(|i| format!("f{i}")).collect();
        let destination: FileListing = destination.into_iter().map(|p| (p, 1)).collect();
        let mut source = destination.clone();
        for i in 0..10 {
            source.remove(&format!("f{i}"));
        }
        let plan = DeletionPlan::between(&source, &destination);
        let limits = Limits {
            max_percent: 50,
            max_files: 5,
        };
        let err = plan.check(limits, "x").expect_err("10 > 5");
        assert!(err.to_string().contains("--max-delete-files 5"), "{err}");
    }

    #[test]
    fn an_empty_destination_has_nothing_to_lose() {
        let plan = DeletionPlan::between(&listing(&["a"]), &listing(&[]));
        assert_eq!(plan.percent(), 0);
        plan.check(
            Limits {
                max_percent: 0,
                max_files: 0,
            },
            "x",
        )
        .expect("no deletions");
    }
}
