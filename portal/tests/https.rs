//! The portal over real HTTPS on loopback: the TLS listener, and member sign-in offered only
//! there.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use frontdesk_core::mac::MacAddr;
use frontdesk_core::ports::{ActError, ClientAuthorizer, ClientLocator, ClientRef, Mail, Mailer};
use frontdesk_core::store::{Actor, OpenMode, Store};
use frontdesk_portal::{Portal, PortalSettings};
use std::net::IpAddr;
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

struct Nothing;

#[async_trait]
impl ClientAuthorizer for Nothing {
    async fn authorize(&self, _: &ClientRef, _: Option<DateTime<Utc>>) -> Result<(), ActError> {
        Ok(())
    }
    async fn revoke(&self, _: &ClientRef) -> Result<(), ActError> {
        Ok(())
    }
}

#[async_trait]
impl Mailer for Nothing {
    async fn send(&self, _: Mail) -> Result<(), ActError> {
        Ok(())
    }
}

#[async_trait]
impl ClientLocator for Nothing {
    async fn locate(&self, ip: IpAddr) -> Option<ClientRef> {
        Some(ClientRef {
            mac: MacAddr([2, 0, 0, 0, 0, 1]),
            ip: Some(ip),
            location: None,
        })
    }
}

async fn get(connector: &tokio_rustls::TlsConnector, port: u16, req: &str) -> String {
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    let name = rustls_pki_types::ServerName::try_from("portal.test").unwrap();
    let mut tls = connector.connect(name, tcp).await.expect("TLS handshake");
    tls.write_all(req.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    let _ = tls.read_to_end(&mut out).await;
    String::from_utf8_lossy(&out).into_owned()
}

#[tokio::test]
async fn portal_over_https_offers_member_sign_in() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite:{}", dir.path().join("p.db").display());
    let store = Store::open(&url, OpenMode::Create).await.unwrap();
    let actor = Actor {
        name: "t".into(),
        source: "t".into(),
    };
    store.init_site("TLS Lab", "UTC", &actor).await.unwrap();
    // Open around the clock: the test runs at any hour.
    let guest = store.plan("guest").await.unwrap();
    store
        .add_plan(
            &frontdesk_core::model::Plan {
                name: "lobby".into(),
                wifi: frontdesk_core::WindowSpec::Always,
                ..guest
            },
            &actor,
        )
        .await
        .unwrap();
    let catalog = Arc::new(store.catalog().await.unwrap());
    let (_tx, rx) = tokio::sync::watch::channel(catalog);

    let cert = rcgen::generate_simple_self_signed(vec!["portal.test".into()]).unwrap();
    let (cert_file, key_file) = (dir.path().join("c.pem"), dir.path().join("k.pem"));
    std::fs::write(&cert_file, cert.cert.pem()).unwrap();
    std::fs::write(&key_file, cert.key_pair.serialize_pem()).unwrap();
    let config = frontdesk_portal::tls::server_config(&cert_file, &key_file).unwrap();
    assert!(frontdesk_portal::tls::server_config(&key_file, &cert_file).is_err());

    let portal = Portal::new(
        store,
        rx,
        Arc::new(Nothing),
        Arc::new(Nothing),
        Arc::new(Nothing),
        PortalSettings {
            guest_plan: "lobby".into(),
            ..PortalSettings::default()
        },
        [1; 32],
    );
    let tcp = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = tcp.local_addr().unwrap().port();
    let listener = frontdesk_portal::tls::TlsListener::new(tcp, config).unwrap();
    tokio::spawn(frontdesk_portal::tls::serve(
        listener,
        portal.router(),
        std::future::pending(),
    ));

    // A client that trusts exactly this certificate.
    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert.cert.der().clone()).unwrap();
    let client = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(client));

    // A plain-TCP client that never speaks TLS does not block others.
    let _silent = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();

    let host = format!("127.0.0.1:{port}");
    let page = get(
        &connector,
        port,
        &format!("GET / HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"),
    )
    .await;
    assert!(page.starts_with("HTTP/1.1 200"), "{page}");
    let i = page.find("name=\"csrf\" value=\"").unwrap() + 19;
    let csrf = page[i..].split('"').next().unwrap();
    let body = format!("csrf={csrf}");
    let page = get(
        &connector,
        port,
        &format!(
            "POST /accept HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        ),
    )
    .await;
    assert!(page.starts_with("HTTP/1.1 200"), "{page}");
    assert!(
        page.contains("Wi-Fi password"),
        "member sign-in offered over HTTPS: {page}"
    );
}
