//! The tokio layer around [`Resolver`]: UDP and TCP listeners, forwarding to the upstreams
//! (UDP, TCP when the answer is truncated), nothing else.

use crate::policy::Client;
use crate::resolver::{Action, Asked, Outcome, Pending, Resolver};
use crate::upstream::UdpPool;
use crate::wire;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::Semaphore;
use tracing::{debug, info, warn};

/// Who a client address is: (plan, member).
pub trait ClientMap: Send + Sync {
    fn client(&self, ip: IpAddr) -> (Option<String>, Option<String>);
}

/// Nobody is known (every client gets the default policy).
pub struct NoClients;

impl ClientMap for NoClients {
    fn client(&self, _: IpAddr) -> (Option<String>, Option<String>) {
        (None, None)
    }
}

/// One answered query, as the query log and metrics see it.
pub struct Seen<'a> {
    pub client: IpAddr,
    pub plan: Option<&'a str>,
    pub member: Option<&'a str>,
    pub asked: &'a Asked,
    pub outcome: &'a Outcome,
}

/// Called for every answered query (the query log).
pub type Observer = dyn Fn(Seen<'_>) + Send + Sync;

/// Who asked: address, plan, member.
struct Who {
    ip: IpAddr,
    plan: Option<String>,
    member: Option<String>,
}

/// Where misses go: plain DNS (UDP, TCP when truncated) or DNS over TLS.
pub enum Upstream {
    Plain(SocketAddr, UdpPool),
    Tls(Arc<crate::dot::DotUpstream>),
}

impl Upstream {
    pub fn plain(addr: SocketAddr) -> Upstream {
        Upstream::Plain(addr, UdpPool::new(addr))
    }
}

impl std::fmt::Debug for Upstream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Upstream::Plain(a, _) => write!(f, "{a}"),
            Upstream::Tls(t) => write!(f, "{t:?}"),
        }
    }
}

/// The upstreams, asked in turn.
pub struct Upstreams {
    pub list: Vec<Upstream>,
    /// Per upstream try.
    pub timeout: Duration,
}

impl std::fmt::Debug for Upstreams {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.list.fmt(f)
    }
}

impl Upstreams {
    /// The first answer from the upstreams asked in turn.
    async fn ask(&self, query: &[u8], id: u16) -> Option<Vec<u8>> {
        for up in &self.list {
            if let Some(a) = self.ask_one(up, query, id).await {
                return Some(a);
            }
        }
        None
    }

    /// One upstream's answer to `query`: over TCP when a UDP answer comes back truncated.
    async fn ask_one(&self, up: &Upstream, query: &[u8], id: u16) -> Option<Vec<u8>> {
        match up {
            Upstream::Plain(addr, pool) => match pool.ask(query, id, self.timeout).await {
                Some(a) if wire::truncated(&a) => ask_tcp(*addr, query, self.timeout * 2).await,
                other => other,
            },
            // TCP underneath: never truncated; a first query may include the handshake.
            Upstream::Tls(t) => t.ask(query, id, self.timeout * 2).await,
        }
    }
}

/// The upstreams as the DNSSEC validator asks them (its DNSKEY/DS lookups).
struct Shared(Arc<Upstreams>);

impl crate::dnssec::Exchange for Shared {
    fn exchange(
        &self,
        query: Vec<u8>,
        id: u16,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Option<Vec<u8>>> + Send>> {
        let ups = self.0.clone();
        Box::pin(async move { ups.ask(&query, id).await })
    }
}

pub struct Server {
    pub resolver: Arc<Resolver>,
    pub upstreams: Arc<Upstreams>,
    pub clients: Arc<dyn ClientMap>,
    pub observer: Option<Arc<Observer>>,
    /// DNSSEC validation of misses (when the resolver says it is on).
    pub validator: Option<Arc<crate::dnssec::Validator>>,
    inflight: Semaphore,
}

/// Forwarded queries in flight at most (beyond: SERVFAIL at once).
const INFLIGHT: usize = 4096;
const TCP_IDLE: Duration = Duration::from_secs(10);
const TCP_CONNECTIONS: usize = 256;

impl Server {
    pub fn new(
        resolver: Arc<Resolver>,
        upstreams: Vec<Upstream>,
        clients: Arc<dyn ClientMap>,
    ) -> Server {
        Server {
            resolver,
            upstreams: Arc::new(Upstreams {
                list: upstreams,
                timeout: Duration::from_millis(1500),
            }),
            clients,
            observer: None,
            validator: None,
            inflight: Semaphore::new(INFLIGHT),
        }
    }

    /// Validates misses per `mode` against `anchors`; `allow-downgrade` starts unvalidated
    /// and turns validation on once the upstreams prove they carry DNSSEC.
    pub fn with_dnssec(
        mut self,
        mode: crate::dnssec::Mode,
        anchors: crate::dnssec::Anchors,
    ) -> Server {
        use crate::dnssec::{Mode, Validator};
        if mode == Mode::Off {
            return self;
        }
        let v = Validator::new(mode, anchors, Arc::new(Shared(self.upstreams.clone())));
        self.resolver.set_validating(v.validates_from_start());
        let resolver = self.resolver.clone();
        tokio::spawn(v.clone().watch(move |on| resolver.set_validating(on)));
        self.validator = Some(v);
        self
    }

    fn act(&self, bytes: &[u8], ip: IpAddr, tcp: bool) -> (Action, Who) {
        let (plan, member) = self.clients.client(ip);
        let client = Client {
            plan: plan.as_deref(),
            member: member.as_deref(),
        };
        let action = self.resolver.query(bytes, client, tcp, Instant::now());
        (action, Who { ip, plan, member })
    }

    fn observe(&self, who: &Who, asked: &Asked, outcome: &Outcome) {
        if let Some(o) = &self.observer {
            o(Seen {
                client: who.ip,
                plan: who.plan.as_deref(),
                member: who.member.as_deref(),
                asked,
                outcome,
            });
        }
    }

    /// Serves until the task is dropped.
    pub async fn run(self: Arc<Self>, udp: UdpSocket, tcp: TcpListener) {
        let udp = Arc::new(udp);
        let workers = std::thread::available_parallelism().map_or(2, |n| n.get());
        for _ in 0..workers {
            tokio::spawn(self.clone().udp_loop(udp.clone()));
        }
        let conns = Arc::new(Semaphore::new(TCP_CONNECTIONS));
        loop {
            let (stream, peer) = match tcp.accept().await {
                Ok(x) => x,
                Err(e) => {
                    warn!(error = %e, "DNS: TCP accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            let Ok(permit) = conns.clone().try_acquire_owned() else {
                continue; // over the connection limit: closed at once
            };
            let me = self.clone();
            tokio::spawn(async move {
                me.tcp_conn(stream, peer.ip()).await;
                drop(permit);
            });
        }
    }

    async fn udp_loop(self: Arc<Self>, sock: Arc<UdpSocket>) {
        let mut buf = vec![0u8; 4096];
        loop {
            let (n, from) = match sock.recv_from(&mut buf).await {
                Ok(x) => x,
                Err(e) => {
                    debug!(error = %e, "DNS: UDP receive failed");
                    continue;
                }
            };
            match self.act(&buf[..n], from.ip(), false) {
                (Action::Answer(bytes, outcome, asked), who) => {
                    self.observe(&who, &asked, &outcome);
                    let _ = sock.send_to(&bytes, from).await;
                }
                (Action::Forward { query, pending }, who) => {
                    let Ok(permit) = self.inflight.try_acquire() else {
                        let _ = sock.send_to(&self.resolver.servfail(&pending), from).await;
                        continue;
                    };
                    permit.forget();
                    let (me, sock) = (self.clone(), sock.clone());
                    tokio::spawn(async move {
                        let (answer, outcome) = me.forward(&query, &pending).await;
                        me.inflight.add_permits(1);
                        me.observe(&who, &pending.asked(), &outcome);
                        let bytes = answer.unwrap_or_else(|| me.resolver.servfail(&pending));
                        let _ = sock.send_to(&bytes, from).await;
                    });
                }
                (Action::Drop, _) => {}
            }
        }
    }

    async fn tcp_conn(&self, mut s: TcpStream, from: IpAddr) {
        for _ in 0..100 {
            let mut len = [0u8; 2];
            match tokio::time::timeout(TCP_IDLE, s.read_exact(&mut len)).await {
                Ok(Ok(_)) => {}
                _ => return,
            }
            let mut msg = vec![0u8; usize::from(u16::from_be_bytes(len))];
            if !matches!(
                tokio::time::timeout(TCP_IDLE, s.read_exact(&mut msg)).await,
                Ok(Ok(_))
            ) {
                return;
            }
            let bytes = match self.act(&msg, from, true) {
                (Action::Answer(bytes, outcome, asked), who) => {
                    self.observe(&who, &asked, &outcome);
                    bytes
                }
                (Action::Forward { query, pending }, who) => {
                    let (answer, outcome) = self.forward(&query, &pending).await;
                    self.observe(&who, &pending.asked(), &outcome);
                    answer.unwrap_or_else(|| self.resolver.servfail(&pending))
                }
                (Action::Drop, _) => return,
            };
            let Ok(n) = u16::try_from(bytes.len()) else {
                return;
            };
            let mut out = n.to_be_bytes().to_vec();
            out.extend(bytes);
            if s.write_all(&out).await.is_err() {
                return;
            }
        }
    }

    /// Asks the upstreams in turn (the next one when an answer is not for this query);
    /// validates the answer when `p` says so.
    async fn forward(&self, query: &[u8], p: &Pending) -> (Option<Vec<u8>>, Outcome) {
        for up in &self.upstreams.list {
            let Some(a) = self.upstreams.ask_one(up, query, p.upstream_id).await else {
                continue;
            };
            let checked = match (&self.validator, p.validate) {
                (Some(v), true)
                    if wire::id(&a) == Some(p.upstream_id)
                        && matches!(wire::rcode(&a), Some(0 | 3)) =>
                {
                    let Some(q) = p.query() else { continue };
                    let security = v.validate(&q, a.clone()).await;
                    if let crate::dnssec::Security::Bogus(why) = &security {
                        warn!(name = %p.qname, qtype = %q.query_type(), why = %why, "DNSSEC: bogus answer, client gets SERVFAIL");
                        return (None, Outcome::Bogus);
                    }
                    self.resolver.validated(p, &a, &security, Instant::now())
                }
                _ => self.resolver.upstream(p, &a, Instant::now()),
            };
            if let Some(out) = checked {
                return (Some(out), Outcome::Forwarded);
            }
        }
        (None, Outcome::ServFail)
    }
}

async fn ask_tcp(up: SocketAddr, query: &[u8], timeout: Duration) -> Option<Vec<u8>> {
    let work = async {
        let mut s = TcpStream::connect(up).await.ok()?;
        let mut out = u16::try_from(query.len()).ok()?.to_be_bytes().to_vec();
        out.extend(query);
        s.write_all(&out).await.ok()?;
        let mut len = [0u8; 2];
        s.read_exact(&mut len).await.ok()?;
        let mut msg = vec![0u8; usize::from(u16::from_be_bytes(len))];
        s.read_exact(&mut msg).await.ok()?;
        Some(msg)
    };
    tokio::time::timeout(timeout, work).await.ok()?
}

/// Binds UDP and TCP on `addr` and serves.
pub async fn listen(server: Arc<Server>, addr: SocketAddr) -> std::io::Result<SocketAddr> {
    let udp = UdpSocket::bind(addr).await?;
    let local = udp.local_addr()?;
    let tcp = TcpListener::bind(local).await?;
    info!(%local, upstreams = ?server.upstreams, "protective DNS listening (UDP and TCP)");
    tokio::spawn(server.run(udp, tcp));
    Ok(local)
}
