//! `verify`: compares a local directory with the remote copy and reports what differs.
//!
//! rclone `check` compares sizes and, where both sides have one, hashes; over a crypt remote
//! `cryptcheck` compares the hashes of the encrypted content (plain `check` would fall back
//! to sizes only); `--download` reads both sides. The agent's own names are excluded.

use std::io::Write as _;
use std::path::PathBuf;

use serde::Serialize;

use crate::error::{AgentError, Result};
use crate::rclone::{CheckMethod, CheckRun, Rclone};

#[derive(Debug, Clone)]
pub struct Verification {
    pub local: PathBuf,
    pub remote: String,
    pub method: CheckMethod,
    /// How many names to list for each kind of difference.
    pub show: usize,
    pub json: bool,
    pub rclone: Rclone,
}

/// Files of one kind: how many, and the first few names.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Files {
    pub count: usize,
    pub first: Vec<String>,
}

impl Files {
    fn add(&mut self, path: &str, show: usize) {
        self.count += 1;
        if self.first.len() < show {
            self.first.push(path.to_string());
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    Identical,
    Different,
    /// The comparison could not be made (or not for every file).
    Error,
}

/// The report, printed as text or JSON.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Report {
    pub result: Verdict,
    pub local: String,
    pub remote: String,
    /// `hashes`, `sizes` (no hash both sides have), `encrypted-hashes` or `contents`.
    pub compared: &'static str,
    pub matching: usize,
    pub different: Files,
    pub missing_on_remote: Files,
    pub missing_locally: Files,
    /// Files rclone could not read or compare.
    pub unreadable: Files,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl Verification {
    /// Runs the comparison, prints the report on stdout, and turns the verdict into the
    /// result: identical is `Ok`, different is exit 6, not comparable is exit 4.
    pub async fn run(&self) -> Result<()> {
        let local = self.local.display().to_string();
        crate::safety::check_readable_directory(&self.local, "--src (local directory)")?;
        let run = self.rclone.check(self.method, &local, &self.remote).await?;
        let report = self.judge(local, &run);
        self.print(&report)?;
        match report.result {
            Verdict::Identical => Ok(()),
            Verdict::Different => Err(AgentError::Different(format!(
                "{} different, {} missing on the remote, {} missing locally",
                report.different.count,
                report.missing_on_remote.count,
                report.missing_locally.count
            ))),
            Verdict::Error => Err(AgentError::RcloneFailed {
                operation: format!("check {} <-> {}", report.local, report.remote),
                code: run.code,
                summary: report.error.unwrap_or_default(),
            }),
        }
    }

    fn judge(&self, local: String, run: &CheckRun) -> Report {
        let mut report = Report {
            result: Verdict::Identical,
            local,
            remote: self.remote.clone(),
            compared: match (self.method, run.sizes_only) {
                (CheckMethod::Download, _) => "contents",
                (CheckMethod::CryptHashes, _) => "encrypted-hashes",
                (CheckMethod::Hashes, true) => "sizes",
                (CheckMethod::Hashes, false) => "hashes",
            },
            matching: 0,
            different: Files::default(),
            missing_on_remote: Files::default(),
            missing_locally: Files::default(),
            unreadable: Files::default(),
            error: None,
        };
        // `--combined -`: "= " match, "* " differ, "+ " only in the source (local),
        // "- " only in the destination (remote), "! " error.
        for line in run.combined.lines() {
            let Some((mark, path)) = line.split_once(' ') else {
                continue;
            };
            match mark {
                "=" => report.matching += 1,
                "*" => report.different.add(path, self.show),
                "+" => report.missing_on_remote.add(path, self.show),
                "-" => report.missing_locally.add(path, self.show),
                "!" => report.unreadable.add(path, self.show),
                _ => {}
            }
        }
        let differences =
            report.different.count + report.missing_on_remote.count + report.missing_locally.count;
        report.error = if run.undecryptable > 0 {
            Some(format!(
                "{} name(s) at the remote cannot be decrypted: wrong ENCRYPTED_PASSWORD / ENCRYPTED_PASSWORD2, or not a crypt remote",
                run.undecryptable
            ))
        } else if report.unreadable.count > 0 {
            Some(format!(
                "{} file(s) could not be compared",
                report.unreadable.count
            ))
        } else if !matches!(run.code, Some(0 | 1)) || (run.code == Some(1) && differences == 0) {
            Some(if run.errors.is_empty() {
                format!("rclone exited with {:?} (see the log above)", run.code)
            } else {
                run.errors.join(" | ")
            })
        } else {
            None
        };
        report.result = if report.error.is_some() {
            Verdict::Error
        } else if differences > 0 {
            Verdict::Different
        } else {
            Verdict::Identical
        };
        report
    }

    fn print(&self, report: &Report) -> Result<()> {
        let text = if self.json {
            serde_json::to_string(report)
                .map_err(|e| AgentError::Internal(format!("cannot encode the report: {e}")))?
        } else {
            render_text(report)
        };
        let mut stdout = std::io::stdout().lock();
        writeln!(stdout, "{text}")
            .map_err(|e| AgentError::io("cannot write the report to", "stdout", e))
    }
}

fn render_text(report: &Report) -> String {
    let mut text = format!(
        "verify {} <-> {} (compared: {})\n  matching:          {}\n",
        report.local, report.remote, report.compared, report.matching
    );
    for (label, files) in [
        ("different:", &report.different),
        ("missing on remote:", &report.missing_on_remote),
        ("missing locally:", &report.missing_locally),
        ("not comparable:", &report.unreadable),
    ] {
        text.push_str(&format!("  {label:<18} {}", files.count));
        if !files.first.is_empty() {
            let more = files.count - files.first.len();
            text.push_str(&format!("  {}", files.first.join(", ")));
            if more > 0 {
                text.push_str(&format!(" and {more} more"));
            }
        }
        text.push('\n');
    }
    text.push_str(&match (&report.result, &report.error) {
        (Verdict::Identical, _) => "result: identical".to_string(),
        (Verdict::Different, _) => "result: DIFFERENT".to_string(),
        (Verdict::Error, Some(error)) => format!("result: CANNOT CHECK: {error}"),
        (Verdict::Error, None) => "result: CANNOT CHECK".to_string(),
    });
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn verification() -> Verification {
        Verification {
            local: PathBuf::from("data"),
            remote: "remote:/b/x".into(),
            method: CheckMethod::Hashes,
            show: 1,
            json: false,
            rclone: Rclone {
                binary: "rclone".into(),
                config: "/dev/null".into(),
                verbosity: 0,
                stats_interval: std::time::Duration::from_secs(30),
            },
        }
    }

    fn run(code: i32, combined: &str) -> CheckRun {
        CheckRun {
            code: Some(code),
            combined: combined.into(),
            errors: vec!["boom".into()],
            undecryptable: 0,
            sizes_only: false,
        }
    }

    #[test]
    fn combined_lines_become_counts_and_first_names() {
        let report = verification().judge("data".into(), &run(1, "= a\n* b\n* c\n+ new\n- gone\n"));
        assert_eq!(report.result, Verdict::Different);
        assert_eq!(report.matching, 1);
        assert_eq!(
            report.different,
            Files {
                count: 2,
                first: vec!["b".into()]
            }
        );
        assert_eq!(report.missing_on_remote.count, 1);
        assert_eq!(report.missing_locally.first, ["gone"]);
        let text = render_text(&report);
        assert!(
            text.contains("different:         2  b and 1 more"),
            "{text}"
        );
    }

    #[test]
    fn identical_only_when_rclone_agrees_and_errors_are_not_differences() {
        assert_eq!(
            verification().judge("d".into(), &run(0, "= a\n")).result,
            Verdict::Identical
        );
        let failed = verification().judge("d".into(), &run(1, ""));
        assert_eq!(failed.result, Verdict::Error);
        assert_eq!(failed.error.as_deref(), Some("boom"));
        let unreadable = verification().judge("d".into(), &run(1, "= a\n! b\n"));
        assert_eq!(unreadable.result, Verdict::Error);
    }
}
