//! The webhook's serving certificate: loaded from PEM files and reloaded when they change.
//!
//! Kubernetes updates a mounted Secret by swapping a `..data` symlink in its directory, so
//! the directory is watched, not the files; a failed reload keeps the previous certificate.

use std::path::{Path, PathBuf};
use std::time::Duration;

use axum_server::tls_rustls::RustlsConfig;
use notify::{RecursiveMode, Watcher as _};

#[derive(Debug, Clone)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot load the TLS certificate {cert} / key {key}: {source}")]
    Load {
        cert: PathBuf,
        key: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot watch {dir} for certificate changes: {source}")]
    Watch {
        dir: PathBuf,
        #[source]
        source: notify::Error,
    },
}

/// Installs ring as rustls' crypto provider (exactly one must be installed per process).
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

pub async fn load(files: &TlsFiles) -> Result<RustlsConfig, TlsError> {
    RustlsConfig::from_pem_file(&files.cert, &files.key)
        .await
        .map_err(|source| TlsError::Load {
            cert: files.cert.clone(),
            key: files.key.clone(),
            source,
        })
}

/// Reloads `config` whenever a file in the certificate's or key's directory changes.
/// The returned watcher must be kept alive.
pub fn watch(
    files: TlsFiles,
    config: RustlsConfig,
) -> Result<notify::RecommendedWatcher, TlsError> {
    let (sender, mut changes) = tokio::sync::mpsc::unbounded_channel();
    let names: Vec<std::ffi::OsString> = [&files.cert, &files.key]
        .iter()
        .filter_map(|file| file.file_name().map(ToOwned::to_owned))
        .collect();
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        // Only writes to the certificate, the key, or a mounted Secret's `..data` swap count:
        // reads (our own reload) and other files in the directory must not trigger a reload.
        let Ok(event) = event else { return };
        if matches!(event.kind, notify::EventKind::Access(_)) {
            return;
        }
        let relevant = event.paths.iter().any(|path| {
            path.file_name().is_some_and(|name| {
                names.iter().any(|n| n == name) || name.to_string_lossy().starts_with("..")
            })
        });
        if relevant {
            let _ = sender.send(());
        }
    })
    .map_err(|source| TlsError::Watch {
        dir: files.cert.clone(),
        source,
    })?;
    let mut dirs: Vec<&Path> = [&files.cert, &files.key]
        .iter()
        .map(|file| file.parent().unwrap_or(Path::new(".")))
        .collect();
    dirs.dedup();
    for dir in dirs {
        watcher
            .watch(dir, RecursiveMode::NonRecursive)
            .map_err(|source| TlsError::Watch {
                dir: dir.to_path_buf(),
                source,
            })?;
    }
    tokio::spawn(async move {
        while changes.recv().await.is_some() {
            // A Secret update is several file events; reload once they settle.
            tokio::time::sleep(Duration::from_millis(300)).await;
            while changes.try_recv().is_ok() {}
            match config.reload_from_pem_file(&files.cert, &files.key).await {
                Ok(()) => {
                    tracing::info!(cert = %files.cert.display(), "reloaded the TLS certificate")
                }
                Err(e) => {
                    tracing::warn!(error = %e, "TLS certificate changed but could not be loaded; still serving the previous one")
                }
            }
        }
    });
    Ok(watcher)
}
