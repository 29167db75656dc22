//! Optimistic concurrency with the API server: a create or replace answered `409 Conflict`
//! means another writer (another replica, or this one's earlier attempt) got there first.
//! Each caller decides what that means for it: read theirs, follow, or compute again.

/// Whether `error` is the API server's `409 Conflict`.
pub fn another_writer_won(error: &kube::Error) -> bool {
    matches!(error, kube::Error::Api(status) if status.code == 409)
}
