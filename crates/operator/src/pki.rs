//! A small certificate authority: the webhook's self-managed serving certificate, and the
//! certificates of the test control plane.

use std::net::IpAddr;

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType,
};

#[derive(Debug, thiserror::Error)]
#[error("certificate: {0}")]
pub struct PkiError(#[from] rcgen::Error);

/// A PEM certificate and its PEM private key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertifiedKey {
    pub cert_pem: String,
    pub key_pem: String,
}

pub struct CertificateAuthority {
    pub certified: CertifiedKey,
    issuer: Issuer<'static, KeyPair>,
}

fn validity(params: &mut CertificateParams, days: i64) {
    let now = rcgen::date_time_ymd(1970, 1, 1) + std::time::Duration::from_secs(unix_now());
    // A little slack for clocks that run behind.
    params.not_before = now - std::time::Duration::from_secs(3600);
    params.not_after = now + std::time::Duration::from_secs(days.max(1).cast_unsigned() * 86_400);
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl CertificateAuthority {
    pub fn generate(common_name: &str, days: i64) -> Result<Self, PkiError> {
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        let mut name = DistinguishedName::new();
        name.push(DnType::CommonName, common_name);
        params.distinguished_name = name;
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        validity(&mut params, days);
        let cert = params.self_signed(&key)?;
        let certified = CertifiedKey {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        };
        Ok(CertificateAuthority {
            certified,
            issuer: Issuer::new(params, key),
        })
    }

    /// Loads a CA kept from an earlier run (its Secret).
    pub fn from_pem(certified: CertifiedKey) -> Result<Self, PkiError> {
        let key = KeyPair::from_pem(&certified.key_pem)?;
        let issuer = Issuer::from_ca_cert_pem(&certified.cert_pem, key)?;
        Ok(CertificateAuthority { certified, issuer })
    }

    /// A serving certificate for `names` (DNS names or IP addresses).
    pub fn issue_server(&self, names: &[String], days: i64) -> Result<CertifiedKey, PkiError> {
        let common_name = names.first().map_or("localhost", String::as_str);
        let sans = names
            .iter()
            .map(|n| match n.parse::<IpAddr>() {
                Ok(ip) => Ok(SanType::IpAddress(ip)),
                Err(_) => n.clone().try_into().map(SanType::DnsName),
            })
            .collect::<Result<_, _>>()?;
        self.issue(
            &[(DnType::CommonName, common_name)],
            sans,
            ExtendedKeyUsagePurpose::ServerAuth,
            days,
        )
    }

    /// A client certificate: `common_name` is the user, `organization` its group.
    pub fn issue_client(
        &self,
        common_name: &str,
        organization: &str,
        days: i64,
    ) -> Result<CertifiedKey, PkiError> {
        let subject = [
            (DnType::CommonName, common_name),
            (DnType::OrganizationName, organization),
        ];
        self.issue(
            &subject,
            Vec::new(),
            ExtendedKeyUsagePurpose::ClientAuth,
            days,
        )
    }

    fn issue(
        &self,
        subject: &[(DnType, &str)],
        subject_alt_names: Vec<SanType>,
        usage: ExtendedKeyUsagePurpose,
        days: i64,
    ) -> Result<CertifiedKey, PkiError> {
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        let mut name = DistinguishedName::new();
        for (kind, value) in subject {
            name.push(kind.clone(), *value);
        }
        params.distinguished_name = name;
        params.subject_alt_names = subject_alt_names;
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        params.extended_key_usages = vec![usage];
        validity(&mut params, days);
        let cert = params.signed_by(&key, &self.issuer)?;
        Ok(CertifiedKey {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ca_survives_a_round_trip_through_pem_and_keeps_issuing() {
        let ca = CertificateAuthority::generate("test-ca", 10).expect("ca");
        let reloaded = CertificateAuthority::from_pem(ca.certified.clone()).expect("reload");
        let server = reloaded
            .issue_server(&["svc.ns.svc".into(), "127.0.0.1".into()], 1)
            .expect("server cert");
        assert!(server.cert_pem.starts_with("-----BEGIN CERTIFICATE-----"));
        assert!(server.key_pem.contains("PRIVATE KEY"));
    }
}
