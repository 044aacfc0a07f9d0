//! DNS over TLS to an upstream (RFC 7858): one long-lived TLS connection per upstream,
//! queries pipelined on it (two-byte length prefix, RFC 1035 §4.2.2) and answers matched to
//! their query by ID, in whatever order they come (RFC 7766 §6.2.1.1). The server is checked
//! against the name given (`tls://9.9.9.9#dns.quad9.net`) with the system's CA roots, or a CA
//! file for a private resolver. A connection the server closed (idle timeout) is opened again
//! on the next query; a query caught by the closing is tried again on the new one (three tries in all).

use crate::upstream::Waiting;
use rustls::pki_types::ServerName;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio_rustls::TlsConnector;

struct Conn {
    tx: mpsc::Sender<Vec<u8>>,
    waiting: Arc<Waiting>,
    dead: Arc<AtomicBool>,
}

pub struct DotUpstream {
    pub addr: SocketAddr,
    pub name: String,
    server_name: ServerName<'static>,
    connector: TlsConnector,
    conn: tokio::sync::Mutex<Option<Arc<Conn>>>,
}

impl std::fmt::Debug for DotUpstream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "tls://{}#{}", self.addr, self.name)
    }
}

/// The CA roots a DoT upstream is checked against: `ca_pem` (a PEM file's contents) when
/// given, else the system's.
pub fn roots(ca_pem: Option<&[u8]>) -> Result<rustls::RootCertStore, String> {
    let mut roots = rustls::RootCertStore::empty();
    match ca_pem {
        Some(pem) => {
            let mut reader = pem;
            for cert in rustls_pemfile::certs(&mut reader) {
                let cert = cert.map_err(|e| format!("CA file: {e}"))?;
                roots
                    .add(cert)
                    .map_err(|e| format!("CA file: certificate not usable: {e}"))?;
            }
        }
        None => {
            let found = rustls_native_certs::load_native_certs();
            for cert in found.certs {
                let _ = roots.add(cert);
            }
        }
    }
    if roots.is_empty() {
        return Err("no CA certificates to check DNS-over-TLS upstreams against".into());
    }
    Ok(roots)
}

impl DotUpstream {
    /// `name`: the name the server's certificate must carry (an IP address is accepted too).
    pub fn new(
        addr: SocketAddr,
        name: &str,
        roots: rustls::RootCertStore,
    ) -> Result<DotUpstream, String> {
        let server_name = ServerName::try_from(name.to_string())
            .map_err(|_| format!("{name:?} is not a valid TLS server name"))?;
        let config = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
        Ok(DotUpstream {
            addr,
            name: name.to_string(),
            server_name,
            connector: TlsConnector::from(Arc::new(config)),
            conn: tokio::sync::Mutex::new(None),
        })
    }

    /// Sends `query` (ID `id`) and waits up to `timeout` for its answer.
    pub async fn ask(&self, query: &[u8], id: u16, timeout: Duration) -> Option<Vec<u8>> {
        let deadline = tokio::time::Instant::now() + timeout;
        for _ in 0..3 {
            let conn = tokio::time::timeout_at(deadline, self.connection())
                .await
                .ok()??;
            // The same random ID in flight already: SERVFAIL, rare.
            let rx = conn.waiting.register(id)?;
            if conn.dead.load(Ordering::Relaxed) {
                // Ended between the check and now: its reader no longer answers anyone.
                conn.waiting.forget(id);
                continue;
            }
            let mut framed = u16::try_from(query.len()).ok()?.to_be_bytes().to_vec();
            framed.extend_from_slice(query);
            if conn.tx.send(framed).await.is_err() {
                conn.waiting.forget(id);
                continue;
            }
            match tokio::time::timeout_at(deadline, rx).await {
                Ok(Ok(answer)) => return Some(answer),
                // The connection ended under this query: once more on a new one.
                Ok(Err(_)) => continue,
                Err(_) => {
                    conn.waiting.forget(id);
                    return None;
                }
            }
        }
        None
    }

    async fn connection(&self) -> Option<Arc<Conn>> {
        let mut slot = self.conn.lock().await;
        if let Some(c) = slot.as_ref() {
            if !c.dead.load(Ordering::Relaxed) {
                return Some(c.clone());
            }
        }
        let c = match self.connect().await {
            Ok(c) => Arc::new(c),
            Err(e) => {
                tracing::warn!(upstream = ?self, error = %e, "DNS-over-TLS upstream: no connection");
                return None;
            }
        };
        *slot = Some(c.clone());
        Some(c)
    }

    async fn connect(&self) -> std::io::Result<Conn> {
        let tcp = tokio::time::timeout(Duration::from_secs(5), TcpStream::connect(self.addr))
            .await
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "connect"))??;
        let _ = tcp.set_nodelay(true);
        let tls = tokio::time::timeout(
            Duration::from_secs(5),
            self.connector.connect(self.server_name.clone(), tcp),
        )
        .await
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "TLS handshake"))??;
        let (mut rd, mut wr) = tokio::io::split(tls);
        let (tx, mut rx) = mpsc::channel::<Vec<u8>>(1024);
        let waiting: Arc<Waiting> = Arc::default();
        let dead: Arc<AtomicBool> = Arc::default();
        {
            let dead = dead.clone();
            tokio::spawn(async move {
                while let Some(msg) = rx.recv().await {
                    if wr.write_all(&msg).await.is_err() {
                        break;
                    }
                }
                dead.store(true, Ordering::Relaxed);
                let _ = wr.shutdown().await;
            });
        }
        {
            let (waiting, dead) = (waiting.clone(), dead.clone());
            tokio::spawn(async move {
                loop {
                    let mut len = [0u8; 2];
                    if rd.read_exact(&mut len).await.is_err() {
                        break;
                    }
                    let mut msg = vec![0u8; usize::from(u16::from_be_bytes(len))];
                    if msg.len() < 12 || rd.read_exact(&mut msg).await.is_err() {
                        break;
                    }
                    waiting.deliver(msg);
                }
                dead.store(true, Ordering::Relaxed);
                // Queries still waiting learn at once that this connection is gone.
                waiting.clear();
            });
        }
        Ok(Conn { tx, waiting, dead })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;
    use tokio::net::TcpListener;

    /// A DoT server with a certificate for `dot.test` signed by its own CA: answers each
    /// query (echo with QR set), the batch in reverse order, and closes every connection after
    /// `per_conn` queries. Returns the address, the CA in PEM and a count of connections.
    async fn server(per_conn: usize) -> (SocketAddr, String, Arc<AtomicUsize>) {
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let ca = ca.self_signed(&ca_key).unwrap();
        let key = rcgen::KeyPair::generate().unwrap();
        let leaf = rcgen::CertificateParams::new(vec!["dot.test".into()])
            .unwrap()
            .signed_by(&key, &ca, &ca_key)
            .unwrap();
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![leaf.der().clone()],
            rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into()),
        )
        .unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        let conns = Arc::new(AtomicUsize::new(0));
        let counted = conns.clone();
        tokio::spawn(async move {
            while let Ok((tcp, _)) = l.accept().await {
                let acceptor = acceptor.clone();
                counted.fetch_add(1, Ordering::Relaxed);
                tokio::spawn(async move {
                    let Ok(mut s) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let mut served = 0;
                    while served < per_conn {
                        // Read what has arrived (up to 4 queries), answer them in reverse.
                        let mut batch = Vec::new();
                        loop {
                            let mut len = [0u8; 2];
                            if s.read_exact(&mut len).await.is_err() {
                                return;
                            }
                            let mut q = vec![0u8; usize::from(u16::from_be_bytes(len))];
                            if s.read_exact(&mut q).await.is_err() {
                                return;
                            }
                            q[2] |= 0x80;
                            batch.push(q);
                            if batch.len() == 4 || served + batch.len() >= per_conn {
                                break;
                            }
                            if tokio::time::timeout(
                                Duration::from_millis(20),
                                s.get_ref().0.readable(),
                            )
                            .await
                            .is_err()
                            {
                                break;
                            }
                        }
                        for q in batch.iter().rev() {
                            let mut out = (q.len() as u16).to_be_bytes().to_vec();
                            out.extend(q);
                            if s.write_all(&out).await.is_err() {
                                return;
                            }
                            served += 1;
                        }
                    }
                    let _ = s.shutdown().await;
                });
            }
        });
        (addr, ca.pem(), conns)
    }

    fn query(id: u16) -> Vec<u8> {
        let mut q = vec![0u8; 12];
        q[..2].copy_from_slice(&id.to_be_bytes());
        q
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn pipelined_out_of_order_answers_and_reconnects() {
        let (addr, ca, conns) = server(60).await;
        let up = Arc::new(
            DotUpstream::new(addr, "dot.test", roots(Some(ca.as_bytes())).unwrap()).unwrap(),
        );
        // 100 queries at once: one connection carries them, answers come back out of order,
        // each finds its query; the server closes after 60, the rest go on a new connection.
        let mut tasks = Vec::new();
        for i in 0..100u16 {
            let up = up.clone();
            tasks.push(tokio::spawn(async move {
                let a = up.ask(&query(i), i, Duration::from_secs(5)).await;
                let a = a.unwrap_or_else(|| panic!("query {i} unanswered"));
                assert_eq!(u16::from_be_bytes([a[0], a[1]]), i);
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        let n = conns.load(Ordering::Relaxed);
        assert!((2..=4).contains(&n), "{n} connections for 100 queries");
    }

    #[tokio::test]
    async fn the_certificate_must_carry_the_name() {
        let (addr, ca, _) = server(10).await;
        let roots = roots(Some(ca.as_bytes())).unwrap();
        let wrong = DotUpstream::new(addr, "other.test", roots.clone()).unwrap();
        assert!(wrong
            .ask(&query(1), 1, Duration::from_secs(2))
            .await
            .is_none());
        // And a CA it was not signed by is refused too.
        let (_, other_ca, _) = server(10).await;
        let stranger = DotUpstream::new(
            addr,
            "dot.test",
            super::roots(Some(other_ca.as_bytes())).unwrap(),
        )
        .unwrap();
        assert!(stranger
            .ask(&query(2), 2, Duration::from_secs(2))
            .await
            .is_none());
        let right = DotUpstream::new(addr, "dot.test", roots).unwrap();
        assert!(right
            .ask(&query(3), 3, Duration::from_secs(2))
            .await
            .is_some());
    }
}
