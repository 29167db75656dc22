//! A Pod that just became the primary writer (`syncOptions.writers: one`) first compares
//! its view with the remote's last upload: a stale view must never overwrite newer data,
//! but a tree restored as of an earlier time must not be undone by the generation of Pods
//! it replaces.

use super::{
    CompletionRecord, Direction, LocalRecord, Outcome, RemoteState, RemoteSurvey, RestoreOptions,
    Result, SyncJob, UploadId, Writer,
};

/// What a new primary writer found at the remote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CatchUp {
    /// Nothing newer than this Pod's own view.
    UpToDate,
    /// Another Pod's finished upload, now restored here.
    Restored,
    /// Another Pod's upload that never finished (it died or was cut off), restored here; the
    /// remote's record still says unfinished, which refuses every new Pod's restore.
    RestoredAnUnfinishedUpload,
    /// This Pod holds a tree restored as of an earlier time and the remote's last upload is
    /// not of that history (the Pods being replaced uploaded it): this tree replaces it.
    KeptRestoredTree,
}

/// How this Pod's view compares with the remote's last upload.
#[derive(Debug, PartialEq, Eq)]
enum View {
    Current,
    Behind,
    /// Restored as of this time, over a remote whose last upload is of another history.
    RestoredAsOf(String),
}

fn judge(local: Option<&LocalRecord>, remote: &RemoteState, this_host: &str) -> View {
    let restored_as_of = local.and_then(|record| record.restored_as_of.as_ref());
    if let (Some(as_of), Some(upload)) = (restored_as_of, remote.last_upload())
        && upload.restored_as_of.as_ref() != Some(as_of)
    {
        return View::RestoredAsOf(as_of.clone());
    }
    let matched = local.and_then(|record| record.remote_upload.as_ref());
    let behind = match remote {
        RemoteState::Complete(upload) => matched != Some(&UploadId::of(upload)),
        RemoteState::Incomplete(upload) => upload.writer.host != this_host,
        RemoteState::NeverWritten | RemoteState::Unrecorded | RemoteState::UnreadableRecord(_) => {
            false
        }
    };
    if behind { View::Behind } else { View::Current }
}

impl SyncJob {
    /// When another Pod uploaded since this one last matched the remote, restore that first
    /// (what this Pod changed while it held its uploads is discarded: it was never the
    /// primary's data). An upload the old primary did not finish is restored too: it is the
    /// newest the remote has. A tree restored `--as-of` is kept over uploads of another
    /// history: those came from Pods that never saw the restore (kept in the trash).
    pub async fn catch_up(&self) -> Result<CatchUp> {
        let survey = RemoteSurvey::take(&self.rclone, &self.remote).await?;
        let remote = &self.remote;
        match judge(
            self.local_record()?.as_ref(),
            &survey.state,
            &Writer::this_process().host,
        ) {
            View::Current => Ok(CatchUp::UpToDate),
            View::RestoredAsOf(as_of) => {
                let replaced = survey.state.last_upload().map(CompletionRecord::describe);
                tracing::info!(%remote, %as_of, replaced, "taking over as the primary writer with a tree restored as of an earlier time: its upload replaces the remote's last one, which is not of that history (the trash keeps what it overwrites)");
                Ok(CatchUp::KeptRestoredTree)
            }
            View::Behind => {
                tracing::info!(%remote, "taking over as the primary writer: restoring what the previous primary uploaded first");
                self.restore_for_takeover().await?;
                Ok(match survey.state {
                    RemoteState::Incomplete(_) => CatchUp::RestoredAnUnfinishedUpload,
                    _ => CatchUp::Restored,
                })
            }
        }
    }

    async fn restore_for_takeover(&self) -> Result<Outcome> {
        let mut restore = SyncJob {
            direction: Direction::ToLocal,
            force: false,
            restore: RestoreOptions {
                allow_incomplete: true,
                keep_local_if_remote_empty: true,
                discard_local_changes: true,
                as_of: None,
            },
            reporter: None,
            ..self.clone()
        };
        restore.upload.writer_lease = None;
        restore.upload.sync_request_watch = None;
        restore.run().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::local_record::LocalTree;
    use chrono::Utc;

    const AS_OF: &str = "2026-12-01T10:00:00.000Z";

    fn upload(host: &str, restored_as_of: Option<&str>) -> CompletionRecord {
        let mut record = CompletionRecord::in_progress(Utc::now(), 1, 1, false)
            .descending_from(restored_as_of.map(str::to_string));
        record.writer.host = host.to_string();
        record
    }

    fn matching(upload: &CompletionRecord) -> LocalRecord {
        LocalRecord::synced("r:/b", Some(UploadId::of(upload)), true, LocalTree::new())
    }

    fn restored() -> LocalRecord {
        LocalRecord::after_restore_as_of("r:/b", AS_OF.into(), true, LocalTree::new())
    }

    #[test]
    fn a_view_matching_the_last_upload_is_current_and_another_pods_upload_is_news() {
        let theirs = upload("old-pod", None).complete();
        let remote = RemoteState::Complete(theirs.clone());
        assert_eq!(
            judge(Some(&matching(&theirs)), &remote, "me"),
            View::Current
        );
        let mut older = upload("old-pod", None).complete();
        older.started_at = "2026-11-30T00:00:00.000Z".into();
        assert_eq!(judge(Some(&matching(&older)), &remote, "me"), View::Behind);
        assert_eq!(judge(None, &remote, "me"), View::Behind);
        let cut_off = RemoteState::Incomplete(upload("old-pod", None));
        assert_eq!(judge(None, &cut_off, "me"), View::Behind);
        assert_eq!(judge(None, &cut_off, "old-pod"), View::Current);
    }

    #[test]
    fn a_restored_tree_replaces_uploads_of_another_history_and_follows_its_own() {
        let older_generation = RemoteState::Complete(upload("old-pod", None).complete());
        let expected = View::RestoredAsOf(AS_OF.into());
        assert_eq!(judge(Some(&restored()), &older_generation, "me"), expected);
        let cut_off = RemoteState::Incomplete(upload("old-pod", None));
        assert_eq!(judge(Some(&restored()), &cut_off, "me"), expected);
        let earlier_restore = upload("old-pod", Some("2026-11-01T00:00:00.000Z"));
        let earlier_restore = RemoteState::Complete(earlier_restore.complete());
        assert_eq!(judge(Some(&restored()), &earlier_restore, "me"), expected);

        // Another Pod of the same restore uploaded first: follow it.
        let sibling = RemoteState::Complete(upload("new-pod", Some(AS_OF)).complete());
        assert_eq!(judge(Some(&restored()), &sibling, "me"), View::Behind);
        // Nothing uploaded yet: nothing to replace or follow.
        assert_eq!(
            judge(Some(&restored()), &RemoteState::Unrecorded, "me"),
            View::Current
        );
    }
}
