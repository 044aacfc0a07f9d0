//! Certificates for EAP: a private CA and a server certificate made at `init` (rcgen), or the
//! operator's own files, turned into the rustls configuration the TLS methods use.

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose, SanType,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::ServerConfig;
use std::sync::Arc;

#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    #[error("certificate generation failed: {0}")]
    Generate(#[from] rcgen::Error),
    #[error("{0}")]
    Pem(String),
    #[error("TLS configuration: {0}")]
    Tls(#[from] rustls::Error),
}

/// PEM texts: the CA members trust, the server chain and its key.
#[derive(Clone, serde::Serialize, serde::Deserialize)]
pub struct Pki {
    pub ca_cert: String,
    /// Empty when the operator brought their own certificate (no CA key here).
    pub ca_key: String,
    pub server_cert: String,
    pub server_key: String,
    pub server_name: String,
}

impl std::fmt::Debug for Pki {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pki")
            .field("server_name", &self.server_name)
            .finish_non_exhaustive()
    }
}

/// A new private CA (10 years) and a server certificate for `server_name` (serverAuth EKU,
/// SAN dNSName; 825 days, the longest Apple accepts for a TLS server certificate). ECDSA P-256:
/// every supplicant of the last decade takes it, and ring cannot generate RSA keys.
pub fn generate(site: &str, server_name: &str) -> Result<Pki, PkiError> {
    let now = time::OffsetDateTime::now_utc();
    let ca_key = KeyPair::generate()?;
    let mut ca = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, format!("{site} Wi-Fi CA (Frontdesk)"));
    dn.push(DnType::OrganizationName, site);
    ca.distinguished_name = dn;
    ca.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    ca.not_before = now - time::Duration::days(1);
    ca.not_after = now + time::Duration::days(3650);
    let ca_cert = ca.self_signed(&ca_key)?;

    let server_key = KeyPair::generate()?;
    let mut sp = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, server_name);
    dn.push(DnType::OrganizationName, site);
    sp.distinguished_name = dn;
    sp.subject_alt_names = vec![SanType::DnsName(server_name.try_into()?)];
    sp.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    sp.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    sp.not_before = now - time::Duration::days(1);
    sp.not_after = now + time::Duration::days(825);
    let server_cert = sp.signed_by(&server_key, &ca_cert, &ca_key)?;
    Ok(Pki {
        ca_cert: ca_cert.pem(),
        ca_key: ca_key.serialize_pem(),
        server_cert: format!("{}{}", server_cert.pem(), ca_cert.pem()),
        server_key: server_key.serialize_pem(),
        server_name: server_name.to_string(),
    })
}

pub fn certs(pem: &str) -> Result<Vec<CertificateDer<'static>>, PkiError> {
    let certs: Vec<_> = CertificateDer::pem_slice_iter(pem.as_bytes())
        .collect::<Result<_, _>>()
        .map_err(|e| PkiError::Pem(format!("certificate PEM: {e}")))?;
    if certs.is_empty() {
        return Err(PkiError::Pem("no certificate in the PEM text".into()));
    }
    Ok(certs)
}

/// SHA-256 fingerprint of the first certificate, as members' devices show it (AA:BB:…).
pub fn fingerprint(pem: &str) -> Result<String, PkiError> {
    use sha2::Digest;
    let der = certs(pem)?.remove(0);
    Ok(sha2::Sha256::digest(der.as_ref())
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":"))
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The server side of PEAP and TTLS: no client certificate; TLS 1.2 only unless `tls13`.
pub fn tunnel_config(pki: &Pki, tls13: bool) -> Result<Arc<ServerConfig>, PkiError> {
    let key = PrivateKeyDer::from_pem_slice(pki.server_key.as_bytes())
        .map_err(|e| PkiError::Pem(format!("server key PEM: {e}")))?;
    let versions: &[&rustls::SupportedProtocolVersion] = if tls13 {
        &[&rustls::version::TLS13, &rustls::version::TLS12]
    } else {
        &[&rustls::version::TLS12]
    };
    let mut cfg = ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(versions)?
        .with_no_client_auth()
        .with_single_cert(certs(&pki.server_cert)?, key)?;
    // No resumption: every login runs the inner method and decide() again.
    cfg.session_storage = Arc::new(rustls::server::NoServerSessionStorage {});
    cfg.send_tls13_tickets = 0;
    Ok(Arc::new(cfg))
}
