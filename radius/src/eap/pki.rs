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
    #[error("the server certificate comes from [eap] cert_file; client certificates need Frontdesk's own CA")]
    NoCaKey,
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

/// A client certificate for EAP-TLS: the member's Wi-Fi username as CN and rfc822Name SAN
/// (how the server finds the member), clientAuth EKU, signed by Frontdesk's CA.
pub struct ClientCert {
    pub cert_der: Vec<u8>,
    pub cert_pem: String,
    /// PKCS#8.
    pub key_der: Vec<u8>,
    pub key_pem: String,
}

pub fn issue_client(pki: &Pki, username: &str, days: i64) -> Result<ClientCert, PkiError> {
    if pki.ca_key.is_empty() {
        return Err(PkiError::NoCaKey);
    }
    let ca_key = KeyPair::from_pem(&pki.ca_key)?;
    let ca = CertificateParams::from_ca_cert_pem(&pki.ca_cert)?.self_signed(&ca_key)?;
    let key = KeyPair::generate()?;
    let now = time::OffsetDateTime::now_utc();
    let mut p = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, username);
    p.distinguished_name = dn;
    p.subject_alt_names = vec![SanType::Rfc822Name(username.try_into()?)];
    p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    p.not_before = now - time::Duration::days(1);
    p.not_after = now + time::Duration::days(days);
    let cert = p.signed_by(&key, &ca, &ca_key)?;
    Ok(ClientCert {
        cert_der: cert.der().to_vec(),
        cert_pem: cert.pem(),
        key_der: key.serialize_der(),
        key_pem: key.serialize_pem(),
    })
}

/// A TLS server certificate for the operator console when the operator gave none: signed by
/// Frontdesk's CA (devices that trust it for Wi-Fi trust the console too), or self-signed when
/// the EAP certificate is the operator's own and there is no CA key. SANs: the given DNS names
/// and IP addresses; 397 days (what browsers accept).
pub fn issue_web_server(
    pki: Option<&Pki>,
    dns: &[String],
    ips: &[std::net::IpAddr],
) -> Result<ClientCert, PkiError> {
    let key = KeyPair::generate()?;
    let now = time::OffsetDateTime::now_utc();
    let mut p = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(
        DnType::CommonName,
        dns.first().cloned().unwrap_or_else(|| "frontdesk".into()),
    );
    dn.push(DnType::OrganizationName, "Frontdesk console");
    p.distinguished_name = dn;
    let mut sans = Vec::new();
    for d in dns {
        sans.push(SanType::DnsName(d.clone().try_into()?));
    }
    sans.extend(ips.iter().map(|ip| SanType::IpAddress(*ip)));
    p.subject_alt_names = sans;
    p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    p.not_before = now - time::Duration::days(1);
    p.not_after = now + time::Duration::days(397);
    let (cert, chain) = match pki.filter(|p| !p.ca_key.is_empty()) {
        Some(pki) => {
            let ca_key = KeyPair::from_pem(&pki.ca_key)?;
            let ca = CertificateParams::from_ca_cert_pem(&pki.ca_cert)?.self_signed(&ca_key)?;
            (p.signed_by(&key, &ca, &ca_key)?, pki.ca_cert.clone())
        }
        None => (p.self_signed(&key)?, String::new()),
    };
    Ok(ClientCert {
        cert_der: cert.der().to_vec(),
        cert_pem: format!("{}{chain}", cert.pem()),
        key_der: key.serialize_der(),
        key_pem: key.serialize_pem(),
    })
}

/// The member a client certificate names: its rfc822Name SAN, else its CN.
pub fn client_identity(cert_der: &[u8]) -> Option<String> {
    use x509_parser::prelude::*;
    let (_, cert) = X509Certificate::from_der(cert_der).ok()?;
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        for name in &san.value.general_names {
            if let GeneralName::RFC822Name(email) = name {
                return Some(email.to_string());
            }
        }
    }
    let cn = cert.subject().iter_common_name().next()?.as_str().ok()?;
    Some(cn.to_string())
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

/// The server side of EAP-TLS: a client certificate from Frontdesk's CA is required; TLS 1.2
/// and 1.3 (RFC 9190).
pub fn eap_tls_config(pki: &Pki) -> Result<Arc<ServerConfig>, PkiError> {
    if pki.ca_key.is_empty() {
        return Err(PkiError::NoCaKey);
    }
    let key = PrivateKeyDer::from_pem_slice(pki.server_key.as_bytes())
        .map_err(|e| PkiError::Pem(format!("server key PEM: {e}")))?;
    let mut roots = rustls::RootCertStore::empty();
    for ca in certs(&pki.ca_cert)? {
        roots.add(ca)?;
    }
    let verifier =
        rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider())
            .build()
            .map_err(|e| PkiError::Pem(format!("client CA: {e}")))?;
    let mut cfg = ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?
        .with_client_cert_verifier(verifier)
        .with_single_cert(certs(&pki.server_cert)?, key)?;
    cfg.session_storage = Arc::new(rustls::server::NoServerSessionStorage {});
    cfg.send_tls13_tickets = 0;
    Ok(Arc::new(cfg))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_certificates_name_the_member_and_need_our_ca_key() {
        let pki = generate("Lab", "radius.test").unwrap();
        let c = issue_client(&pki, "ada@example.com", 30).unwrap();
        assert_eq!(
            client_identity(&c.cert_der).as_deref(),
            Some("ada@example.com")
        );
        assert!(c.cert_pem.starts_with("-----BEGIN CERTIFICATE-----"));
        assert!(eap_tls_config(&pki).is_ok());
        assert_eq!(fingerprint(&pki.ca_cert).unwrap().len(), 32 * 3 - 1);
        // Operator-provided server certificate, no CA key here: no client certificates.
        let theirs = Pki {
            ca_key: String::new(),
            ..pki
        };
        assert!(matches!(
            issue_client(&theirs, "ada@example.com", 30),
            Err(PkiError::NoCaKey)
        ));
        assert!(matches!(eap_tls_config(&theirs), Err(PkiError::NoCaKey)));
    }
}
