//! Talking to an upstream resolver over UDP: a pool of long-lived connected sockets, each on
//! its own random source port, each with one receive task that hands answers to the query
//! waiting for that ID.
//!
//! A fresh socket per query (what this replaced) gives every query its own random port, but
//! costs a bind, a connect, a registration with the reactor and a close per query, and it
//! capped forwarding at ~8,000 queries/s on the benchmark machine. The pool keeps most of the
//! protection against off-path spoofing: a forged answer must hit one of [`SOCKETS`] random
//! ports and the random 16-bit ID of a query in flight on it (and then match the question);
//! sockets are retired after [`USES`] queries or [`LIFETIME`], so the ports keep moving.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::net::UdpSocket;
use tokio::sync::oneshot;

/// Sockets per upstream.
pub const SOCKETS: usize = 32;
/// Queries a socket carries before it is replaced by one on a new random port.
pub const USES: u32 = 2_000;
/// And at the latest after this long.
pub const LIFETIME: Duration = Duration::from_secs(60);
/// A query unanswered this long is sent again (then after twice as long again), within the
/// caller's timeout.
pub const RETRY: Duration = Duration::from_millis(300);
const RETRIES: usize = 2;
const RECV_BUFFER: usize = 1 << 20;

/// Queries in flight on one socket or connection, by ID: an answer goes to the query that
/// waits for its ID; anything else (late, duplicate, forged) is dropped. Shared by the UDP
/// pool and DNS over TLS.
#[derive(Default)]
pub(crate) struct Waiting(Mutex<HashMap<u16, oneshot::Sender<Vec<u8>>>>);

impl Waiting {
    /// Registers `id`; `None` when a query with that ID is already waiting here.
    pub(crate) fn register(&self, id: u16) -> Option<oneshot::Receiver<Vec<u8>>> {
        let mut w = self.0.lock().expect("waiting lock");
        if w.contains_key(&id) {
            return None;
        }
        let (tx, rx) = oneshot::channel();
        w.insert(id, tx);
        Some(rx)
    }

    /// Stops waiting for `id` (timed out, or never sent).
    pub(crate) fn forget(&self, id: u16) {
        self.0.lock().expect("waiting lock").remove(&id);
    }

    /// Hands an answer (at least a header) to the query waiting for its ID.
    pub(crate) fn deliver(&self, msg: Vec<u8>) {
        let id = u16::from_be_bytes([msg[0], msg[1]]);
        let tx = self.0.lock().expect("waiting lock").remove(&id);
        if let Some(tx) = tx {
            let _ = tx.send(msg);
        }
    }

    /// Fails every waiting query at once (the connection is gone).
    pub(crate) fn clear(&self) {
        self.0.lock().expect("waiting lock").clear();
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.0.lock().expect("waiting lock").is_empty()
    }
}

struct Slot {
    sock: Arc<UdpSocket>,
    waiting: Arc<Waiting>,
    uses: AtomicU32,
    born: Instant,
    retired: Arc<AtomicBool>,
}

/// Sockets to one upstream.
pub struct UdpPool {
    up: SocketAddr,
    slots: Vec<Mutex<Option<Arc<Slot>>>>,
    next: AtomicUsize,
}

impl UdpPool {
    pub fn new(up: SocketAddr) -> UdpPool {
        UdpPool {
            up,
            slots: (0..SOCKETS).map(|_| Mutex::new(None)).collect(),
            next: AtomicUsize::new(0),
        }
    }

    /// Sends `query` (its ID is `id`) and waits up to `timeout` for the datagram that
    /// carries the same ID back. `None`: no answer in time, or no socket.
    pub async fn ask(&self, query: &[u8], id: u16, timeout: Duration) -> Option<Vec<u8>> {
        // A few tries to find a socket where this ID is not already waiting.
        for _ in 0..4 {
            let slot = self.slot().await?;
            let Some(rx) = slot.waiting.register(id) else {
                continue;
            };
            if slot.sock.send(query).await.is_err() {
                slot.waiting.forget(id);
                slot.retired.store(true, Ordering::Relaxed);
                return None;
            }
            // No answer within RETRY (a datagram lost, or dropped by a busy upstream): the
            // same query again on the same port, at most RETRIES times, within the timeout.
            let deadline = tokio::time::Instant::now() + timeout;
            let mut rx = rx;
            let mut wait = RETRY;
            for _ in 0..RETRIES {
                if tokio::time::Instant::now() + wait >= deadline {
                    break;
                }
                match tokio::time::timeout(wait, &mut rx).await {
                    Ok(answer) => return answer.ok(),
                    Err(_) => {
                        let _ = slot.sock.send(query).await;
                    }
                }
                wait *= 2;
            }
            let answer = tokio::time::timeout_at(deadline, rx).await;
            if answer.is_err() {
                slot.waiting.forget(id);
            }
            return answer.ok()?.ok();
        }
        None
    }

    /// The next socket in turn, opened (or replaced) when needed.
    async fn slot(&self) -> Option<Arc<Slot>> {
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.slots.len();
        {
            let s = self.slots[i].lock().expect("slot lock");
            if let Some(slot) = s.as_ref() {
                let fresh = !slot.retired.load(Ordering::Relaxed)
                    && slot.uses.fetch_add(1, Ordering::Relaxed) < USES
                    && slot.born.elapsed() < LIFETIME;
                if fresh {
                    return Some(slot.clone());
                }
                slot.retired.store(true, Ordering::Relaxed);
            }
        }
        let slot = Arc::new(self.open().await?);
        // Another query may have replaced this slot meanwhile: whatever was there is retired
        // (its receive task ends once its queries are answered).
        let old = self.slots[i]
            .lock()
            .expect("slot lock")
            .replace(slot.clone());
        if let Some(old) = old {
            old.retired.store(true, Ordering::Relaxed);
        }
        Some(slot)
    }

    async fn open(&self) -> Option<Slot> {
        let bind: SocketAddr = if self.up.is_ipv4() {
            (std::net::Ipv4Addr::UNSPECIFIED, 0).into()
        } else {
            (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
        };
        // Port 0: the kernel picks a random ephemeral port (Linux randomises the choice).
        // A larger receive buffer than the default: a socket carries a 32nd of the answers,
        // and a burst must not overflow it while the receive task waits for a thread.
        let raw = socket2::Socket::new(
            socket2::Domain::for_address(bind),
            socket2::Type::DGRAM,
            Some(socket2::Protocol::UDP),
        )
        .ok()?;
        let _ = raw.set_recv_buffer_size(RECV_BUFFER);
        raw.set_nonblocking(true).ok()?;
        raw.bind(&bind.into()).ok()?;
        let sock = UdpSocket::from_std(raw.into()).ok()?;
        sock.connect(self.up).await.ok()?;
        let slot = Slot {
            sock: Arc::new(sock),
            waiting: Arc::default(),
            uses: AtomicU32::new(1),
            born: Instant::now(),
            retired: Arc::default(),
        };
        tokio::spawn(receive(
            slot.sock.clone(),
            slot.waiting.clone(),
            slot.retired.clone(),
        ));
        Some(slot)
    }
}

/// Hands each datagram to the query waiting for its ID; anything else (late, duplicate or
/// forged) is dropped. Ends once the socket is retired and nobody waits on it any more.
async fn receive(sock: Arc<UdpSocket>, waiting: Arc<Waiting>, retired: Arc<AtomicBool>) {
    let mut buf = vec![0u8; 65_535];
    loop {
        match tokio::time::timeout(Duration::from_millis(500), sock.recv(&mut buf)).await {
            Ok(Ok(n)) if n >= 12 => waiting.deliver(buf[..n].to_vec()),
            Ok(Ok(_)) => {}
            // ICMP port unreachable and the like: the waiting queries time out.
            Ok(Err(_)) => {}
            Err(_) => {}
        }
        if retired.load(Ordering::Relaxed) && waiting.is_empty() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An upstream that echoes every query back with the QR bit set.
    async fn echo() -> SocketAddr {
        let s = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let addr = s.local_addr().unwrap();
        tokio::spawn(async move {
            let mut buf = [0u8; 512];
            while let Ok((n, from)) = s.recv_from(&mut buf).await {
                buf[2] |= 0x80;
                let _ = s.send_to(&buf[..n], from).await;
            }
        });
        addr
    }

    fn query(id: u16) -> Vec<u8> {
        let mut q = vec![0u8; 12];
        q[..2].copy_from_slice(&id.to_be_bytes());
        q
    }

    #[tokio::test]
    async fn answers_find_their_query_and_sockets_rotate() {
        let up = echo().await;
        let pool = Arc::new(UdpPool::new(up));
        let mut tasks = Vec::new();
        for i in 0..(SOCKETS as u16 * 4) {
            let pool = pool.clone();
            tasks.push(tokio::spawn(async move {
                let a = pool
                    .ask(&query(i), i, Duration::from_secs(2))
                    .await
                    .unwrap();
                assert_eq!(u16::from_be_bytes([a[0], a[1]]), i);
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        // Ports in use: one per slot.
        let ports: std::collections::HashSet<u16> = pool
            .slots
            .iter()
            .filter_map(|s| {
                s.lock()
                    .unwrap()
                    .as_ref()
                    .map(|s| s.sock.local_addr().unwrap().port())
            })
            .collect();
        assert_eq!(ports.len(), SOCKETS);
        // A used-up socket is replaced by one on another port.
        let first = pool.slots[0].lock().unwrap().clone().unwrap();
        first.uses.store(USES, Ordering::Relaxed);
        pool.next.store(0, Ordering::Relaxed);
        pool.ask(&query(7), 7, Duration::from_secs(2))
            .await
            .unwrap();
        let now = pool.slots[0].lock().unwrap().clone().unwrap();
        assert!(!Arc::ptr_eq(&first, &now));
        assert!(first.retired.load(Ordering::Relaxed));
    }

    #[tokio::test]
    async fn a_lost_datagram_is_sent_again() {
        let s = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let up = s.local_addr().unwrap();
        tokio::spawn(async move {
            let mut buf = [0u8; 512];
            let mut seen = 0;
            while let Ok((n, from)) = s.recv_from(&mut buf).await {
                seen += 1;
                if seen > 1 {
                    buf[2] |= 0x80;
                    let _ = s.send_to(&buf[..n], from).await;
                }
            }
        });
        let pool = UdpPool::new(up);
        let t = Instant::now();
        assert!(pool
            .ask(&query(9), 9, Duration::from_millis(1500))
            .await
            .is_some());
        assert!(t.elapsed() >= RETRY);
    }

    #[tokio::test]
    async fn silence_times_out() {
        let quiet = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let pool = UdpPool::new(quiet.local_addr().unwrap());
        let t = Instant::now();
        assert!(pool
            .ask(&query(1), 1, Duration::from_millis(200))
            .await
            .is_none());
        assert!(t.elapsed() < Duration::from_secs(1));
        assert!(pool.slots[0]
            .lock()
            .unwrap()
            .as_ref()
            .unwrap()
            .waiting
            .is_empty());
    }
}
