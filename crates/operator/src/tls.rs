//! The webhook's serving certificate: loaded from PEM files and reloaded when they change.
//!
//! Kubernetes updates a mounted Secret by swapping a `..data` symlink in its directory, so
//! the directory is watched, not the files; a failed reload keeps the previous certificate.
//! Each load also sets the expiry gauge to the notAfter of the certificate it serves, in
//! every certificate mode (self-managed, cert-manager, a Secret of the user's).

use std::path::{Path, PathBuf};
use std::time::Duration;

use axum_server::tls_rustls::RustlsConfig;
use notify::{RecursiveMode, Watcher as _};
use prometheus_client::metrics::gauge::Gauge;

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

impl TlsFiles {
    fn load_error(&self, source: std::io::Error) -> TlsError {
        TlsError::Load {
            cert: self.cert.clone(),
            key: self.key.clone(),
            source,
        }
    }
}

/// Installs ring as rustls' crypto provider (exactly one must be installed per process).
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// The notAfter (Unix seconds) of the first certificate in `pem`: the one rustls serves, the
/// rest being its chain.
pub fn not_after(pem: &[u8]) -> Result<i64, String> {
    for block in x509_parser::pem::Pem::iter_from_buffer(pem) {
        let block = block.map_err(|e| format!("not PEM: {e}"))?;
        if block.label != "CERTIFICATE" {
            continue;
        }
        let certificate = block
            .parse_x509()
            .map_err(|e| format!("not an X.509 certificate: {e}"))?;
        return Ok(certificate.validity().not_after.timestamp());
    }
    Err("no CERTIFICATE block".to_string())
}

/// Both files, read once, so that the expiry is read from exactly the bytes rustls loads.
async fn read(files: &TlsFiles) -> Result<(Vec<u8>, Vec<u8>), TlsError> {
    let cert = tokio::fs::read(&files.cert)
        .await
        .map_err(|e| files.load_error(e))?;
    let key = tokio::fs::read(&files.key)
        .await
        .map_err(|e| files.load_error(e))?;
    Ok((cert, key))
}

/// Sets `expiry` to the served certificate's notAfter. Rustls accepted the certificate, so
/// a notAfter that cannot be read does not stop the webhook: the gauge says 0 (unknown),
/// rather than keep the previous certificate's date.
fn record_expiry(files: &TlsFiles, cert_pem: &[u8], expiry: &Gauge) {
    match not_after(cert_pem) {
        Ok(seconds) => {
            expiry.set(seconds);
        }
        Err(e) => {
            tracing::warn!(cert = %files.cert.display(), error = %e, "cannot read the serving certificate's notAfter; its expiry metric is 0");
            expiry.set(0);
        }
    }
}

pub async fn load(files: &TlsFiles, expiry: &Gauge) -> Result<RustlsConfig, TlsError> {
    let (cert, key) = read(files).await?;
    let config = RustlsConfig::from_pem(cert.clone(), key)
        .await
        .map_err(|e| files.load_error(e))?;
    record_expiry(files, &cert, expiry);
    Ok(config)
}

/// Replaces the certificate `config` serves with the files' current one; on an error the
/// previous certificate (and its expiry) stays.
pub async fn reload(
    files: &TlsFiles,
    config: &RustlsConfig,
    expiry: &Gauge,
) -> Result<(), TlsError> {
    let (cert, key) = read(files).await?;
    config
        .reload_from_pem(cert.clone(), key)
        .await
        .map_err(|e| files.load_error(e))?;
    record_expiry(files, &cert, expiry);
    Ok(())
}

/// Reloads `config` (and `expiry`) whenever a file in the certificate's or key's directory
/// changes. The returned watcher must be kept alive.
pub fn watch(
    files: TlsFiles,
    config: RustlsConfig,
    expiry: Gauge,
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
            match reload(&files, &config, &expiry).await {
                Ok(()) => {
                    tracing::info!(cert = %files.cert.display(), "reloaded the TLS certificate");
                }
                Err(e) => {
                    tracing::warn!(error = %e, "TLS certificate changed but could not be loaded; still serving the previous one");
                }
            }
        }
    });
    Ok(watcher)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::Metrics;

    /// A certificate and its key, expiring at `not_after` (Unix seconds), signed by `issuer`
    /// or self-signed.
    fn certificate(
        name: &str,
        not_after: u64,
        issuer: Option<&rcgen::Issuer<'_, rcgen::KeyPair>>,
    ) -> (String, String, rcgen::CertificateParams, rcgen::KeyPair) {
        let key = rcgen::KeyPair::generate().expect("key");
        let mut params = rcgen::CertificateParams::new(vec![name.to_string()]).expect("params");
        params.not_before = rcgen::date_time_ymd(2020, 1, 1);
        params.not_after = rcgen::date_time_ymd(1970, 1, 1) + Duration::from_secs(not_after);
        if issuer.is_none() {
            params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        }
        let cert = match issuer {
            Some(issuer) => params.signed_by(&key, issuer),
            None => params.self_signed(&key),
        }
        .expect("certificate");
        let key_pem = key.serialize_pem();
        (cert.pem(), key_pem, params, key)
    }

    fn write(dir: &Path, cert: &str, key: &str) -> TlsFiles {
        let files = TlsFiles {
            cert: dir.join("tls.crt"),
            key: dir.join("tls.key"),
        };
        std::fs::write(&files.cert, cert).expect("write the certificate");
        std::fs::write(&files.key, key).expect("write the key");
        files
    }

    /// 2030-03-17T17:46:40Z and 2030-12-31T03:04:05Z: whole seconds, as X.509 keeps them.
    const FIRST: u64 = 1_900_000_000;
    const SECOND: u64 = 1_924_916_645;

    #[tokio::test]
    async fn the_expiry_gauge_is_the_served_certificates_not_after() {
        install_crypto_provider();
        let dir = tempfile::tempdir().expect("temp dir");
        let (cert, key, _, _) = certificate("svc.ns.svc", FIRST, None);
        let files = write(dir.path(), &cert, &key);
        let metrics = Metrics::default();
        assert_eq!(
            metrics.webhook_certificate_expiry.get(),
            0,
            "unknown before"
        );
        load(&files, &metrics.webhook_certificate_expiry)
            .await
            .expect("load");
        assert_eq!(
            metrics.webhook_certificate_expiry.get(),
            FIRST.cast_signed()
        );
        assert!(
            metrics.encode().contains(&format!(
                "volume_syncing_operator_webhook_certificate_expiry_timestamp_seconds {FIRST}\n"
            )),
            "{}",
            metrics.encode()
        );
    }

    #[tokio::test]
    async fn with_a_chain_the_expiry_is_the_leafs_not_its_cas() {
        install_crypto_provider();
        let (ca_pem, _, ca_params, ca_key) = certificate("ca", SECOND, None);
        let issuer = rcgen::Issuer::new(ca_params, ca_key);
        let (leaf, key, _, _) = certificate("svc.ns.svc", FIRST, Some(&issuer));
        let dir = tempfile::tempdir().expect("temp dir");
        let files = write(dir.path(), &format!("{leaf}{ca_pem}"), &key);
        let expiry = Gauge::default();
        load(&files, &expiry).await.expect("load");
        assert_eq!(expiry.get(), FIRST.cast_signed());
    }

    #[tokio::test]
    async fn a_changed_certificate_changes_the_gauge_and_a_broken_one_keeps_it() {
        install_crypto_provider();
        let dir = tempfile::tempdir().expect("temp dir");
        let (cert, key, _, _) = certificate("svc.ns.svc", FIRST, None);
        let files = write(dir.path(), &cert, &key);
        let expiry = Gauge::default();
        let config = load(&files, &expiry).await.expect("load");
        let _watcher = watch(files.clone(), config.clone(), expiry.clone()).expect("watch");

        let (renewed, renewed_key, _, _) = certificate("svc.ns.svc", SECOND, None);
        write(dir.path(), &renewed, &renewed_key);
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while expiry.get() != SECOND.cast_signed() {
            assert!(
                std::time::Instant::now() < deadline,
                "the gauge still says {} after the certificate changed",
                expiry.get()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }

        // A certificate that does not load is not served, so its date is not reported.
        std::fs::write(&files.cert, "not a certificate").expect("write");
        assert!(reload(&files, &config, &expiry).await.is_err());
        assert_eq!(expiry.get(), SECOND.cast_signed());
    }

    #[test]
    fn not_after_names_what_is_wrong_with_the_pem() {
        assert!(
            not_after(b"garbage")
                .expect_err("no PEM")
                .contains("no CERTIFICATE")
        );
        let key = rcgen::KeyPair::generate().expect("key").serialize_pem();
        assert!(
            not_after(key.as_bytes())
                .expect_err("a key only")
                .contains("no CERTIFICATE")
        );
    }
}
