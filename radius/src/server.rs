//! The tokio UDP server: a thin loop around [`crate::handler::handle`]. It owns what the
//! sans-IO handler cannot: sockets, the duplicate cache (RFC 5080 §2.2.2), per-NAS rate limits,
//! drop counters, the live-session view for device limits, and the durable write of
//! accounting before its response.

use crate::directory::Directory;
use crate::handler::{handle, AuthEvent, DropCause, HandlerConfig, Outcome, Port, Sessions};
use chrono::{DateTime, Utc};
use frontdesk_core::store::radius::{AccountingRecord, AcctStatus, AuthLogEntry};
use frontdesk_core::store::Store;
use frontdesk_core::MacAddr;
use std::collections::HashMap;
use std::net::UdpSocket;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot};
use tracing::{debug, info, warn};

/// How long an answer is kept for retransmissions (RFC 5080 §2.2.2 suggests seconds).
const DUP_TTL: Duration = Duration::from_secs(5);
/// At most this many cached answers per shard (16 shards): ~64k answers, a few MB.
const DUP_CAP_PER_SHARD: usize = 4096;
const DUP_SHARDS: usize = 16;
/// Fewer counted events than this in a 2 s stats tick is a quiet spell.
const QUIET_EVENTS_PER_TICK: u64 = 2_000;

type DupKey = (SocketAddr, u8, [u8; 16]);

enum DupState {
    InFlight,
    Done(Arc<Vec<u8>>, Instant),
}

/// Sharded so workers on different cores rarely contend.
struct DupCache {
    shards: Vec<Mutex<HashMap<DupKey, DupState>>>,
    next_sweep: AtomicUsize,
}

impl DupCache {
    fn new() -> DupCache {
        DupCache {
            shards: (0..DUP_SHARDS)
                .map(|_| Mutex::new(HashMap::new()))
                .collect(),
            next_sweep: AtomicUsize::new(0),
        }
    }

    fn shard(&self, k: &DupKey) -> &Mutex<HashMap<DupKey, DupState>> {
        let h = k.2[0] as usize ^ k.1 as usize;
        &self.shards[h % self.shards.len()]
    }

    /// `Err(Some(bytes))`: resend; `Err(None)`: a copy is being processed, drop; `Ok`: new.
    fn begin(&self, k: DupKey) -> Result<(), Option<Arc<Vec<u8>>>> {
        let mut m = self.shard(&k).lock().expect("dup cache lock");
        match m.get(&k) {
            Some(DupState::InFlight) => Err(None),
            Some(DupState::Done(b, at)) if at.elapsed() < DUP_TTL => Err(Some(b.clone())),
            _ => {
                m.insert(k, DupState::InFlight);
                Ok(())
            }
        }
    }

    fn finish(&self, k: DupKey, bytes: Option<Arc<Vec<u8>>>) {
        let mut m = self.shard(&k).lock().expect("dup cache lock");
        match bytes {
            // Bounded: past the cap, answers are not kept (a retransmission is then simply
            // handled again, which is idempotent) rather than letting a flood grow memory.
            Some(b) if m.len() < DUP_CAP_PER_SHARD => {
                m.insert(k, DupState::Done(b, Instant::now()))
            }
            _ => m.remove(&k),
        };
    }

    fn expire(&self) {
        for _ in 0..self.shards.len() {
            self.expire_one();
        }
    }

    /// Sweeps the next shard only: a full sweep of a busy cache (50k answers at 10k/s) took
    /// about a millisecond, which stalled the worker doing it and showed as p99 latency.
    fn expire_one(&self) {
        let i = self.next_sweep.fetch_add(1, Ordering::Relaxed) % self.shards.len();
        // One cutoff instant for the sweep: comparing instants is cheaper than computing
        // each entry's age.
        let Some(cutoff) = Instant::now().checked_sub(DUP_TTL) else {
            return;
        };
        {
            let mut m = self.shards[i].lock().expect("dup cache lock");
            m.retain(|_, v| match v {
                DupState::InFlight => true,
                DupState::Done(_, at) => *at > cutoff,
            });
            // A storm grows the table; give the memory back once it has passed.
            if m.capacity() > 64 && m.len() < m.capacity() / 8 {
                m.shrink_to_fit();
            }
        }
    }
}

/// Counters per NAS (or source address for unknown NAS) and cause.
#[derive(Default)]
pub struct Stats {
    counters: Mutex<HashMap<(i64, &'static str), i64>>,
    /// Everything counted so far (requests, drops): tells a storm from a quiet spell.
    events: AtomicU64,
    unknown_sources: Mutex<HashMap<IpAddr, i64>>,
    /// SSIDs each NAS names in Called-Station-Id, with counts (`nas test`), at most
    /// `MAX_SSIDS_PER_NAS` each.
    ssids: Mutex<HashMap<i64, Vec<(String, i64)>>>,
    /// Decisions and latency by authentication method, since start (metrics).
    auth: Mutex<HashMap<&'static str, MethodStats>>,
}

const MAX_SSIDS_PER_NAS: usize = 16;

/// Counts `n` more requests naming `ssid` in a bounded per-NAS list.
fn count_ssid(list: &mut Vec<(String, i64)>, ssid: &str, n: i64) {
    if let Some((_, count)) = list.iter_mut().find(|(s, _)| s == ssid) {
        *count += n;
    } else if list.len() < MAX_SSIDS_PER_NAS {
        list.push((ssid.to_string(), n));
    }
}

/// Upper bounds (µs) of the authentication latency histogram's buckets; the last is +Inf.
pub const LATENCY_BUCKETS_US: [u64; 12] = [
    100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 1_000_000,
];

/// Decisions of one authentication method: counts by reason (rejects, accepts) and the
/// latency histogram (buckets, then +Inf) with its sum.
#[derive(Default, Clone)]
pub struct MethodStats {
    pub by_reason: HashMap<String, [i64; 2]>,
    pub buckets: [i64; LATENCY_BUCKETS_US.len() + 1],
    pub sum_us: i64,
}

impl MethodStats {
    fn record(&mut self, reason: &str, accepted: bool, latency_us: u64) {
        match self.by_reason.get_mut(reason) {
            Some(c) => c[usize::from(accepted)] += 1,
            None => {
                let mut c = [0; 2];
                c[usize::from(accepted)] = 1;
                self.by_reason.insert(reason.to_string(), c);
            }
        }
        let i = LATENCY_BUCKETS_US
            .iter()
            .position(|b| latency_us <= *b)
            .unwrap_or(LATENCY_BUCKETS_US.len());
        self.buckets[i] += 1;
        self.sum_us += latency_us as i64;
    }

    fn merge(&mut self, other: MethodStats) {
        for (r, c) in other.by_reason {
            let e = self.by_reason.entry(r).or_default();
            e[0] += c[0];
            e[1] += c[1];
        }
        for (a, b) in self.buckets.iter_mut().zip(other.buckets) {
            *a += b;
        }
        self.sum_us += other.sum_us;
    }
}

/// A worker's own counters, merged into [`Stats`] about once a second so the hot path takes
/// no shared lock.
#[derive(Default)]
struct LocalStats {
    add: HashMap<(i64, &'static str), i64, Quick>,
    set: HashMap<(i64, &'static str), i64, Quick>,
    ssids: HashMap<i64, Vec<(String, i64)>, Quick>,
    auth: HashMap<&'static str, MethodStats, Quick>,
}

/// A fast unkeyed hash for the worker's own counter maps, touched about ten times per request:
/// their keys are our own (NAS ids from the database, counter names from the code), so the
/// flooding resistance of the default SipHash buys nothing there. Maps keyed by what a request
/// carries (the duplicate cache, the member index) keep a keyed hash.
type Quick = std::hash::BuildHasherDefault<QuickHasher>;

#[derive(Default)]
struct QuickHasher(u64);

impl QuickHasher {
    fn mix(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(0x517c_c1b7_2722_0a95);
    }
}

impl std::hash::Hasher for QuickHasher {
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.mix(u64::from_le_bytes(word));
        }
    }

    fn write_u8(&mut self, v: u8) {
        self.mix(u64::from(v));
    }

    fn write_u64(&mut self, v: u64) {
        self.mix(v);
    }

    fn write_i64(&mut self, v: i64) {
        self.mix(v as u64);
    }

    fn write_usize(&mut self, v: usize) {
        self.mix(v as u64);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

impl LocalStats {
    fn add(&mut self, nas_id: i64, counter: &'static str) {
        *self.add.entry((nas_id, counter)).or_default() += 1;
    }

    fn set(&mut self, nas_id: i64, counter: &'static str, v: i64) {
        self.set.insert((nas_id, counter), v);
    }

    fn merge_into(&mut self, stats: &Stats) {
        if !self.auth.is_empty() {
            let mut all = stats.auth.lock().expect("stats lock");
            for (method, m) in self.auth.drain() {
                all.entry(method).or_default().merge(m);
            }
        }
        let mut c = stats.counters.lock().expect("stats lock");
        let mut events = 0;
        for (k, v) in self.add.drain() {
            *c.entry(k).or_default() += v;
            events += v;
        }
        stats.events.fetch_add(events as u64, Ordering::Relaxed);
        for (k, v) in self.set.drain() {
            c.insert(k, v);
        }
        drop(c);
        if !self.ssids.is_empty() {
            let mut all = stats.ssids.lock().expect("stats lock");
            for (nas_id, list) in self.ssids.drain() {
                let total = all.entry(nas_id).or_default();
                for (ssid, n) in list {
                    count_ssid(total, &ssid, n);
                }
            }
        }
    }
}

impl Stats {
    /// Every counter, SSIDs as `ssid:NAME`.
    pub fn snapshot(&self) -> Vec<(i64, String, i64)> {
        let mut out: Vec<(i64, String, i64)> = self
            .counters
            .lock()
            .expect("stats lock")
            .iter()
            .map(|((n, c), v)| (*n, c.to_string(), *v))
            .collect();
        for (nas_id, list) in self.ssids.lock().expect("stats lock").iter() {
            out.extend(list.iter().map(|(s, n)| (*nas_id, format!("ssid:{s}"), *n)));
        }
        out
    }

    /// Decisions and latency by method, since start.
    pub fn auth(&self) -> Vec<(&'static str, MethodStats)> {
        let mut v: Vec<_> = self
            .auth
            .lock()
            .expect("stats lock")
            .iter()
            .map(|(m, s)| (*m, s.clone()))
            .collect();
        v.sort_by_key(|(m, _)| *m);
        v
    }

    /// Everything counted since start, summed over NAS clients, by counter name (accepts,
    /// rejects, drops by cause, …; not the SSID lists).
    pub fn totals(&self) -> Vec<(String, i64)> {
        let mut t: std::collections::BTreeMap<String, i64> = Default::default();
        for ((_, name), v) in self.counters.lock().expect("stats lock").iter() {
            *t.entry((*name).to_string()).or_default() += v;
        }
        let unknown: i64 = self
            .unknown_sources
            .lock()
            .expect("stats lock")
            .values()
            .sum();
        if unknown > 0 {
            *t.entry("unknown-nas".into()).or_default() += unknown;
        }
        t.into_iter().collect()
    }

    pub fn unknown_sources(&self) -> Vec<(IpAddr, i64)> {
        self.unknown_sources
            .lock()
            .expect("stats lock")
            .iter()
            .map(|(a, n)| (*a, *n))
            .collect()
    }
}

/// (nas id, acct session id, mac, last update, first seen)
type LiveSession = (i64, String, Option<MacAddr>, Instant, Instant);

/// Live sessions from accounting, for device limits.
#[derive(Default)]
pub struct OnlineSessions {
    by_member: RwLock<HashMap<String, Vec<LiveSession>>>,
    stale_after: Duration,
    /// Vouchers used over RADIUS by this process: (first use, devices). The database learns
    /// them a moment later; until the directory reloads, this is what RADIUS counts.
    vouchers: Mutex<HashMap<String, crate::handler::VoucherUse>>,
    /// Devices learned with a passphrase by this process (the database learns them a moment
    /// later; the directory after its next reload).
    psk_devices: Mutex<HashMap<i64, Vec<MacAddr>>>,
    psk_guard: Mutex<PskGuard>,
}

/// Unbound-mode limits: full scans per station and overall, and handshakes already used.
#[derive(Default)]
struct PskGuard {
    last_scan: HashMap<MacAddr, Instant>,
    tokens: f64,
    refilled: Option<Instant>,
    nonces: std::collections::HashSet<[u8; 64]>,
    nonce_order: std::collections::VecDeque<([u8; 64], Instant)>,
}

/// A station may have its handshake checked against a whole SSID once per this interval.
const PSK_SCAN_PER_STATION: Duration = Duration::from_secs(2);
/// Full scans per second over all stations (burst: twice that).
const PSK_SCANS_PER_SEC: f64 = 20.0;
/// How long a handshake's nonces are remembered against replays.
const PSK_NONCE_MEMORY: Duration = Duration::from_secs(600);

impl OnlineSessions {
    pub fn new(stale_after: Duration) -> OnlineSessions {
        OnlineSessions {
            by_member: RwLock::default(),
            stale_after,
            vouchers: Mutex::default(),
            psk_devices: Mutex::default(),
            psk_guard: Mutex::default(),
        }
    }

    fn record_psk_device(&self, id: i64, mac: MacAddr) {
        let mut d = self.psk_devices.lock().expect("psk lock");
        let list = d.entry(id).or_default();
        if !list.contains(&mac) {
            list.push(mac);
        }
    }

    fn record_voucher(&self, code: &str, mac: Option<MacAddr>, at: DateTime<Utc>) {
        let mut v = self.vouchers.lock().expect("vouchers lock");
        let e = v.entry(code.to_string()).or_insert((at, Vec::new()));
        if let Some(m) = mac.filter(|m| !e.1.contains(m)) {
            e.1.push(m);
        }
    }

    pub fn apply(&self, r: &AccountingRecord) {
        let mut m = self.by_member.write().expect("sessions lock");
        if r.status == AcctStatus::NasRestart {
            for list in m.values_mut() {
                list.retain(|s| s.0 != r.nas_id);
            }
            return;
        }
        let Some(member) = &r.member_id else { return };
        // MAC-authenticated devices (User-Name is the MAC: printers, TVs) belong to a member
        // but do not use up that member's personal device limit.
        if r.user_name.parse::<MacAddr>().is_ok() {
            return;
        }
        let list = m.entry(member.clone()).or_default();
        let mut first_seen = Instant::now();
        list.retain(|s| {
            let same = s.0 == r.nas_id && s.1 == r.session_id;
            if same {
                first_seen = s.4;
            }
            !same
        });
        if r.status != AcctStatus::Stop {
            list.push((
                r.nas_id,
                r.session_id.clone(),
                r.mac,
                Instant::now(),
                first_seen,
            ));
        }
    }

    /// Stops counting a session being ended (its Stop follows).
    pub fn forget(&self, member_id: &str, nas_id: i64, session_id: &str) {
        let mut m = self.by_member.write().expect("sessions lock");
        if let Some(list) = m.get_mut(member_id) {
            list.retain(|s| !(s.0 == nas_id && s.1 == session_id));
        }
    }
}

impl Sessions for OnlineSessions {
    fn psk_devices(&self, passphrase_id: i64) -> Vec<MacAddr> {
        self.psk_devices
            .lock()
            .expect("psk lock")
            .get(&passphrase_id)
            .cloned()
            .unwrap_or_default()
    }

    fn psk_scan_allowed(&self, station: MacAddr) -> bool {
        let now = Instant::now();
        let mut g = self.psk_guard.lock().expect("psk lock");
        if g.last_scan
            .get(&station)
            .is_some_and(|t| now.duration_since(*t) < PSK_SCAN_PER_STATION)
        {
            return false;
        }
        let since = g
            .refilled
            .map_or(Duration::from_secs(2), |t| now.duration_since(t));
        g.tokens =
            (g.tokens + since.as_secs_f64() * PSK_SCANS_PER_SEC).min(2.0 * PSK_SCANS_PER_SEC);
        g.refilled = Some(now);
        if g.tokens < 1.0 {
            return false;
        }
        g.tokens -= 1.0;
        if g.last_scan.len() > 100_000 {
            g.last_scan
                .retain(|_, t| now.duration_since(*t) < PSK_SCAN_PER_STATION);
        }
        g.last_scan.insert(station, now);
        true
    }

    fn psk_replayed(&self, nonces: &[u8; 64]) -> bool {
        let now = Instant::now();
        let mut g = self.psk_guard.lock().expect("psk lock");
        while g
            .nonce_order
            .front()
            .is_some_and(|(_, t)| now.duration_since(*t) > PSK_NONCE_MEMORY)
        {
            let (n, _) = g.nonce_order.pop_front().expect("checked");
            g.nonces.remove(&n);
        }
        if !g.nonces.insert(*nonces) {
            return true;
        }
        g.nonce_order.push_back((*nonces, now));
        false
    }

    fn voucher_use(&self, code: &str) -> Option<crate::handler::VoucherUse> {
        self.vouchers
            .lock()
            .expect("vouchers lock")
            .get(code)
            .cloned()
    }

    fn devices_online(&self, member_id: &str) -> Vec<MacAddr> {
        let m = self.by_member.read().expect("sessions lock");
        let mut macs: Vec<MacAddr> = m
            .get(member_id)
            .map(|l| {
                l.iter()
                    .filter(|s| s.3.elapsed() < self.stale_after)
                    .filter_map(|s| s.2)
                    .collect()
            })
            .unwrap_or_default();
        macs.sort();
        macs.dedup();
        macs
    }

    fn oldest(&self, member_id: &str, except: Option<MacAddr>) -> Option<(i64, String)> {
        let m = self.by_member.read().expect("sessions lock");
        m.get(member_id)?
            .iter()
            .filter(|s| s.3.elapsed() < self.stale_after && (except.is_none() || s.2 != except))
            .min_by_key(|s| s.4)
            .map(|s| (s.0, s.1.clone()))
    }
}

struct Bucket {
    tokens: f64,
    at: Instant,
}

/// What the server shares between workers.
pub struct Shared {
    pub directory: RwLock<Arc<Directory>>,
    /// Set to the end of every accepted session, so the scheduler wakes in time for it.
    pub alarm: Arc<frontdesk_core::scheduler::Alarm>,
    /// Sessions to end for the device limit, (NAS id, Acct-Session-Id); `serve` takes the
    /// receiver ([`Shared::take_evictions`]) and sends the Disconnect-Requests.
    evictions: mpsc::Sender<(i64, String)>,
    evictions_rx: Mutex<Option<mpsc::Receiver<(i64, String)>>>,
    pub sessions: OnlineSessions,
    pub stats: Stats,
    /// Replaced whole on a configuration reload (SIGHUP); requests read it under a shared lock.
    config: RwLock<HandlerConfig>,
    /// Per-NAS token bucket (requests/s, burst = 2 s worth); 0 disables it.
    nas_rate_limit: std::sync::atomic::AtomicU32,
    dup: DupCache,
    buckets: Mutex<HashMap<i64, Bucket>>,
    accounting: mpsc::Sender<(Vec<AccountingRecord>, oneshot::Sender<bool>)>,
    auth_log: mpsc::Sender<AuthLogEntry>,
    /// Voucher logins over RADIUS to record in the database (first use, device).
    voucher_uses: mpsc::Sender<(String, MacAddr, DateTime<Utc>)>,
    /// Devices seen with a private passphrase, to record in the database.
    passphrase_uses: mpsc::Sender<(i64, MacAddr, DateTime<Utc>)>,
}

impl Shared {
    /// Accounting batches and auth-log entries waiting to be written.
    pub fn queue_depths(&self) -> (usize, usize) {
        (
            self.accounting.max_capacity() - self.accounting.capacity(),
            self.auth_log.max_capacity() - self.auth_log.capacity(),
        )
    }

    /// The device-limit evictions (once; later calls get `None`).
    pub fn take_evictions(&self) -> Option<mpsc::Receiver<(i64, String)>> {
        self.evictions_rx.lock().expect("evictions lock").take()
    }

    /// Applies reloaded settings to the next request; requests in flight finish with the
    /// settings they started with. The EAP server (certificates) stays.
    pub fn reconfigure(
        &self,
        max_session: u32,
        reject_reply_message: bool,
        disconnect_oldest: bool,
        nas_rate_limit: u32,
    ) {
        {
            let mut c = self.config.write().expect("config lock");
            c.max_session = max_session;
            c.reject_reply_message = reject_reply_message;
            c.disconnect_oldest = disconnect_oldest;
        }
        self.nas_rate_limit
            .store(nas_rate_limit, std::sync::atomic::Ordering::Relaxed);
    }

    pub fn replace_directory(&self, d: Directory) {
        *self.directory.write().expect("directory lock") = Arc::new(d);
    }

    fn allow(&self, nas_id: i64) -> bool {
        let limit = self
            .nas_rate_limit
            .load(std::sync::atomic::Ordering::Relaxed);
        if limit == 0 {
            return true;
        }
        let rate = f64::from(limit);
        let burst = 2.0 * rate;
        let mut b = self.buckets.lock().expect("bucket lock");
        let e = b.entry(nas_id).or_insert(Bucket {
            tokens: burst,
            at: Instant::now(),
        });
        let now = Instant::now();
        e.tokens = (e.tokens + now.duration_since(e.at).as_secs_f64() * rate).min(burst);
        e.at = now;
        if e.tokens >= 1.0 {
            e.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

pub struct Listeners {
    pub auth: UdpSocket,
    pub acct: UdpSocket,
}

impl Listeners {
    pub fn bind(auth: SocketAddr, acct: SocketAddr) -> std::io::Result<Listeners> {
        let open = |addr: SocketAddr| -> std::io::Result<UdpSocket> {
            let s = match UdpSocket::bind(addr) {
                // A host with IPv6 disabled cannot bind the dual-stack default: serve IPv4.
                Err(e)
                    if addr.ip() == std::net::Ipv6Addr::UNSPECIFIED
                        && e.kind() != std::io::ErrorKind::AddrInUse =>
                {
                    let v4 = SocketAddr::from((std::net::Ipv4Addr::UNSPECIFIED, addr.port()));
                    warn!(%addr, error = %e, fallback = %v4, "IPv6 unavailable; RADIUS listens on IPv4 only");
                    UdpSocket::bind(v4)?
                }
                other => other?,
            };
            s.set_read_timeout(Some(Duration::from_secs(1)))?;
            Ok(s)
        };
        Ok(Listeners {
            auth: open(auth)?,
            acct: open(acct)?,
        })
    }
}

/// The scheduler's view of who an online session is, from the RADIUS index (no database
/// reads per session): MAC-authenticated devices as devices, others by Wi-Fi user name.
pub struct SessionLookup(pub Arc<Shared>);

impl frontdesk_core::scheduler::Lookup for SessionLookup {
    fn catalog(&self) -> Arc<frontdesk_core::decide::Catalog> {
        let dir = self.0.directory.read().expect("directory lock").clone();
        Arc::new(dir.catalog().clone())
    }

    fn decide_session(
        &self,
        catalog: &frontdesk_core::decide::Catalog,
        s: &frontdesk_core::store::radius::SessionRow,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Option<frontdesk_core::Decision> {
        let dir = self.0.directory.read().expect("directory lock").clone();
        if let Some(i) = s
            .user_name
            .parse::<MacAddr>()
            .ok()
            .and_then(|mac| psk_index_for(&dir, &self.0.sessions, mac))
        {
            return Some(dir.psk_decide(i, frontdesk_core::decide::Resource::WIFI, now));
        }
        decide_user(&dir, catalog, &s.user_name, now)
    }
}

/// The passphrase a MAC-named session logged in with: one in force the device used (known to
/// the directory, or learned since its last reload), else a revoked one it used (so that its
/// session is ended).
fn psk_index_for(dir: &Directory, sessions: &OnlineSessions, mac: MacAddr) -> Option<u32> {
    let bound = dir.psk_bound(&mac);
    let live = |i: &&u32| !dir.psk_entry(**i).revoked;
    if let Some(&i) = bound.iter().find(live) {
        return Some(i);
    }
    let learned = sessions
        .psk_devices
        .lock()
        .expect("psk lock")
        .iter()
        .find(|(_, macs)| macs.contains(&mac))
        .map(|(id, _)| *id);
    learned
        .and_then(|id| dir.psk_by_id(id))
        .or_else(|| bound.first().copied())
}

/// The decision for whoever a RADIUS User-Name names: a MAC-authenticated device (as the
/// device, bounded by its owner) or a member by Wi-Fi user name; `None` when unknown.
fn decide_user(
    dir: &Directory,
    catalog: &frontdesk_core::decide::Catalog,
    user_name: &str,
    now: chrono::DateTime<chrono::Utc>,
) -> Option<frontdesk_core::Decision> {
    use frontdesk_core::decide::{decide, Resource, Subject};
    if let Some(device) = user_name
        .parse::<MacAddr>()
        .ok()
        .and_then(|m| dir.device(&m))
    {
        let owner = device
            .member_id
            .as_deref()
            .and_then(|id| dir.member_by_id(id));
        return Some(decide(
            catalog,
            Subject::Device {
                device,
                owner: owner.map(|o| o.holder),
            },
            Resource::WIFI,
            now,
        ));
    }
    let m = dir.member_by_username(user_name)?;
    Some(decide(
        catalog,
        Subject::Member(m.holder),
        Resource::WIFI,
        now,
    ))
}

/// Tells the scheduler about a session it hears of through accounting (a restart, a session
/// authorized before, a roam): wake at its end, or now when it should not be online at all.
fn alarm_for_accounting(shared: &Shared, dir: &Directory, r: &AccountingRecord) {
    if !matches!(r.status, AcctStatus::Start | AcctStatus::Interim) {
        return;
    }
    match decide_user(dir, dir.catalog(), &r.user_name, r.at) {
        Some(d) if d.allowed => {
            if let Some(until) = d.valid_until {
                shared.alarm.at(until);
            }
        }
        Some(_) => shared.alarm.now(),
        None => {}
    }
}

/// Starts the server tasks; returns the shared state (to swap the directory on change).
pub async fn start(
    store: Store,
    directory: Directory,
    config: HandlerConfig,
    nas_rate_limit: u32,
    listeners: Listeners,
    spool: Option<std::path::PathBuf>,
) -> std::io::Result<Arc<Shared>> {
    let (acct_tx, acct_rx) = mpsc::channel(4096);
    let (log_tx, log_rx) = mpsc::channel(65536);
    let (evict_tx, evict_rx) = mpsc::channel(1024);
    let (voucher_tx, mut voucher_rx) = mpsc::channel::<(String, MacAddr, DateTime<Utc>)>(1024);
    {
        let store = store.clone();
        tokio::spawn(async move {
            let actor = frontdesk_core::store::Actor {
                name: "radius".into(),
                source: "radius".into(),
            };
            while let Some((code, mac, at)) = voucher_rx.recv().await {
                if let Err(e) = store.redeem_voucher(&code, mac, at, &actor).await {
                    warn!(voucher = %code, %mac, error = %e, "voucher use over RADIUS not recorded");
                }
            }
        });
    }
    let (psk_tx, mut psk_rx) = mpsc::channel::<(i64, MacAddr, DateTime<Utc>)>(1024);
    {
        let store = store.clone();
        tokio::spawn(async move {
            while let Some((id, mac, at)) = psk_rx.recv().await {
                if let Err(e) = store.record_passphrase_device(id, mac, at).await {
                    warn!(passphrase = id, %mac, error = %e, "device seen with a passphrase not recorded");
                }
            }
        });
    }
    let shared = Arc::new(Shared {
        directory: RwLock::new(Arc::new(directory)),
        alarm: Arc::default(),
        evictions: evict_tx,
        evictions_rx: Mutex::new(Some(evict_rx)),
        sessions: OnlineSessions::new(
            frontdesk_core::enforce::ONLINE_HORIZON
                .to_std()
                .expect("positive"),
        ),
        stats: Stats::default(),
        config: RwLock::new(config),
        nas_rate_limit: nas_rate_limit.into(),
        dup: DupCache::new(),
        buckets: Mutex::default(),
        accounting: acct_tx,
        auth_log: log_tx,
        voucher_uses: voucher_tx,
        passphrase_uses: psk_tx,
    });
    // Sessions that were online before a restart still count for device limits (not waited
    // for long: a start from the offline cache has no database to ask).
    let online = if store.is_offline() {
        None
    } else {
        let since = frontdesk_core::clock::now() - frontdesk_core::enforce::ONLINE_HORIZON;
        tokio::time::timeout(Duration::from_secs(2), store.sessions(Some(since), 100_000))
            .await
            .ok()
            .and_then(Result::ok)
    };
    if online.is_none() {
        warn!("online sessions not read at start (database slow or unreachable): device limits count sessions from new accounting only");
    }
    if let Some(rows) = online {
        for s in rows {
            shared.sessions.apply(&AccountingRecord {
                at: s.updated_at,
                nas_id: s.nas_id,
                nas_addr: s.nas_addr,
                status: AcctStatus::Interim,
                session_id: s.acct_session_id,
                user_name: s.user_name,
                member_id: s.member_id,
                mac: s.mac.and_then(|m| m.parse().ok()),
                framed_ip: None,
                vlan: None,
                class: None,
                input_octets: 0,
                output_octets: 0,
                session_time: 0,
                terminate_cause: None,
            });
        }
    }
    let spool = spool.map(|p| Arc::new(crate::spool::Spool::open(p)));
    if let Some(sp) = &spool {
        tokio::spawn(spool_flusher(store.clone(), sp.clone()));
    }
    tokio::spawn(accounting_writer(store.clone(), acct_rx, spool));
    tokio::spawn(auth_log_writer(store.clone(), log_rx));
    tokio::spawn(stats_flusher(store, shared.clone()));
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get());
    let auth = Arc::new(listeners.auth);
    let acct = Arc::new(listeners.acct);
    info!(auth = %auth.local_addr()?, acct = %acct.local_addr()?, workers, "RADIUS listening");
    for i in 0..workers {
        for (sock, port, name) in [(&auth, Port::Auth, "auth"), (&acct, Port::Acct, "acct")] {
            let (sock, shared) = (sock.clone(), shared.clone());
            std::thread::Builder::new()
                .name(format!("radius-{name}-{i}"))
                .spawn(move || worker(sock, port, shared))?;
        }
    }
    Ok(shared)
}

/// One worker thread: blocking receive, handle, reply. Plain threads rather than async tasks:
/// the handler never waits on I/O except the accounting write, and measured under load the
/// async wake-ups (futex, context switches) cost more than the RADIUS work itself.
fn worker(sock: Arc<UdpSocket>, port: Port, shared: Arc<Shared>) {
    let mut buf = vec![0u8; 4096 + 1];
    let mut last_expire = Instant::now();
    let mut stats = LocalStats::default();
    loop {
        // The socket's 1 s read timeout wakes us so counters and the duplicate cache stay
        // current even without traffic.
        let (n, src) = match sock.recv_from(&mut buf) {
            Ok(x) => x,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                stats.merge_into(&shared.stats);
                shared.dup.expire();
                last_expire = Instant::now();
                continue;
            }
            Err(e) => {
                warn!(error = %e, "RADIUS receive failed");
                std::thread::sleep(Duration::from_millis(10));
                continue;
            }
        };
        if last_expire.elapsed() > Duration::from_secs(1) / DUP_SHARDS as u32 {
            shared.dup.expire_one();
            stats.merge_into(&shared.stats);
            last_expire = Instant::now();
        }
        if n > 4096 {
            // RFC 2865 §3: at most 4096 octets.
            count_drop(&mut stats, &shared, src, DropCause::Malformed, None);
            continue;
        }
        let datagram = &buf[..n];
        let key: DupKey = match datagram.get(4..20) {
            Some(a) => (src, datagram[1], a.try_into().expect("16")),
            None => {
                count_drop(&mut stats, &shared, src, DropCause::Malformed, None);
                continue;
            }
        };
        match shared.dup.begin(key) {
            Ok(()) => {}
            Err(Some(cached)) => {
                let _ = sock.send_to(&cached, src);
                continue;
            }
            Err(None) => continue,
        }
        let started = Instant::now();
        let dir = shared.directory.read().expect("directory lock").clone();
        if let Some(nas) = dir.nas_for(src.ip()) {
            if !shared.allow(nas.id) {
                count_drop(
                    &mut stats,
                    &shared,
                    src,
                    DropCause::RateLimited,
                    Some(nas.id),
                );
                shared.dup.finish(key, None);
                continue;
            }
            stats.add(nas.id, "requests");
            stats.set(
                nas.id,
                "last-seen",
                frontdesk_core::clock::now().timestamp(),
            );
            note_attributes(&mut stats, nas.id, datagram);
        }
        let outcome = handle(
            datagram,
            src,
            port,
            &dir,
            &shared.sessions,
            &shared.config.read().expect("config lock"),
            frontdesk_core::clock::now(),
        );
        match outcome {
            Outcome::Drop { cause, nas_id } => {
                count_drop(&mut stats, &shared, src, cause, nas_id);
                shared.dup.finish(key, None);
            }
            Outcome::Reply {
                nas_id,
                bytes,
                auth,
                accounting,
            } => {
                if let Some(record) = accounting {
                    let (tx, rx) = oneshot::channel();
                    let stored = shared
                        .accounting
                        .blocking_send((vec![(*record).clone()], tx))
                        .is_ok()
                        && rx.blocking_recv().unwrap_or(false);
                    if !stored {
                        // No response: the NAS retransmits, nothing is lost.
                        stats.add(nas_id, "accounting-not-stored");
                        shared.dup.finish(key, None);
                        continue;
                    }
                    shared.sessions.apply(&record);
                    alarm_for_accounting(&shared, &dir, &record);
                }
                if let Some(ev) = auth {
                    if let (Some((nas, sid)), Some(member)) = (&ev.evict, &ev.member_id) {
                        shared.sessions.forget(member, *nas, sid);
                        info!(member = %member, nas = nas, session = %sid, "device limit: ending the member's oldest session for a new device");
                        if shared.evictions.try_send((*nas, sid.clone())).is_err() {
                            warn!(member = %member, session = %sid, "device limit: eviction queue full; the oldest session stays until its Session-Timeout");
                        }
                    }
                    if let Some(code) = &ev.voucher {
                        let now = frontdesk_core::clock::now();
                        shared.sessions.record_voucher(code, ev.mac, now);
                        if let Some(mac) = ev.mac {
                            if shared
                                .voucher_uses
                                .try_send((code.clone(), mac, now))
                                .is_err()
                            {
                                warn!(voucher = %code, "voucher use queue full; the database learns of this use at the next login");
                            }
                        }
                    }
                    if let (Some(id), Some(mac)) = (ev.passphrase, ev.mac) {
                        shared.sessions.record_psk_device(id, mac);
                        if shared
                            .passphrase_uses
                            .try_send((id, mac, frontdesk_core::clock::now()))
                            .is_err()
                        {
                            warn!(passphrase = id, "passphrase device queue full; the database learns of this device at its next login");
                        }
                    }
                    if let (true, Some(until)) = (ev.accepted, ev.valid_until) {
                        // The scheduler wakes then (earlier than planned, if need be).
                        shared.alarm.at(until);
                    }
                    log_auth(&mut stats, &shared, *ev, started.elapsed());
                }
                if let Err(e) = sock.send_to(&bytes, src) {
                    debug!(%src, error = %e, "RADIUS send failed");
                }
                shared.dup.finish(key, Some(Arc::new(bytes)));
            }
        }
    }
}

/// Records which attributes a NAS sends and whether it signs (for `nas test`); a plain scan of
/// the TLVs, no allocation.
fn note_attributes(stats: &mut LocalStats, nas_id: i64, datagram: &[u8]) {
    let len = datagram
        .get(2..4)
        .map_or(0, |l| u16::from_be_bytes([l[0], l[1]]) as usize)
        .min(datagram.len());
    let mut i = 20;
    let mut signed = false;
    while i + 2 <= len {
        let (t, l) = (datagram[i], datagram[i + 1] as usize);
        if l < 2 {
            break;
        }
        signed |= t == crate::attr::MESSAGE_AUTHENTICATOR;
        stats.set(nas_id, crate::attr::seen_counter(t), 1);
        if t == crate::attr::CALLED_STATION_ID {
            let value = datagram.get(i + 2..i + l).unwrap_or_default();
            if let Some(ssid) = std::str::from_utf8(value)
                .ok()
                .and_then(|v| crate::nas::parse_called_station(v).1)
            {
                count_ssid(stats.ssids.entry(nas_id).or_default(), &ssid, 1);
            }
        }
        i += l;
    }
    stats.add(nas_id, if signed { "signed" } else { "unsigned" });
}

fn count_drop(
    stats: &mut LocalStats,
    shared: &Shared,
    src: SocketAddr,
    cause: DropCause,
    nas_id: Option<i64>,
) {
    match nas_id {
        Some(id) => stats.add(id, cause.as_str()),
        None => {
            *shared
                .stats
                .unknown_sources
                .lock()
                .expect("stats lock")
                .entry(src.ip())
                .or_default() += 1
        }
    }
    debug!(%src, cause = cause.as_str(), "RADIUS request dropped");
}

fn log_auth(stats: &mut LocalStats, shared: &Shared, ev: AuthEvent, elapsed: Duration) {
    let latency_us = elapsed.as_micros() as i64;
    // One structured event per decision; never the password.
    info!(
        user = %ev.user_name,
        nas = ev.nas_id,
        mac = ev.mac.map(|m| m.to_string()).unwrap_or_default(),
        method = ev.method.as_str(),
        decision = if ev.accepted { "accept" } else { "reject" },
        reason = %ev.reason,
        vlan = ev.vlan.map(i64::from).unwrap_or(-1),
        latency_us,
        "auth"
    );
    stats.add(ev.nas_id, if ev.accepted { "accepts" } else { "rejects" });
    stats.auth.entry(ev.method.as_str()).or_default().record(
        &ev.reason,
        ev.accepted,
        elapsed.as_micros() as u64,
    );
    let entry = AuthLogEntry {
        at: frontdesk_core::clock::now(),
        nas_id: Some(ev.nas_id),
        user_name: ev.user_name,
        mac: ev.mac.map(|m| m.to_string()),
        method: ev.method.as_str().into(),
        accepted: ev.accepted,
        reason: ev.reason,
        vlan: ev.vlan,
        latency_us,
    };
    if shared.auth_log.try_send(entry).is_err() {
        stats.add(ev.nas_id, "auth-log-dropped");
    }
}

/// Writes accounting in batches: whatever queued while the previous batch was written goes in
/// one transaction; every sender is told whether its record is durable.
async fn accounting_writer(
    store: Store,
    mut rx: mpsc::Receiver<(Vec<AccountingRecord>, oneshot::Sender<bool>)>,
    spool: Option<Arc<crate::spool::Spool>>,
) {
    while let Some(first) = rx.recv().await {
        let mut batch = vec![first];
        while batch.len() < 512 {
            match rx.try_recv() {
                Ok(x) => batch.push(x),
                Err(_) => break,
            }
        }
        let records: Vec<AccountingRecord> =
            batch.iter().flat_map(|(r, _)| r.iter().cloned()).collect();
        let ok = match &spool {
            // Records are waiting in the spool: these go behind them (order matters).
            Some(sp) if sp.pending() => spool_append(sp, &records).await,
            // A database that does not answer within 3 s counts as unreachable: the NAS is
            // waiting (if the write did commit after all, spooling it again is harmless).
            _ => match tokio::time::timeout(
                Duration::from_secs(3),
                store.record_accounting(&records),
            )
            .await
            .unwrap_or(Err(frontdesk_core::store::StoreError::Db(sqlx_timeout())))
            {
                Ok(()) => true,
                Err(e) if Store::is_unreachable(&e) && spool.is_some() => {
                    warn!(error = %e, records = records.len(), "database unreachable: accounting spooled to disk");
                    spool_append(spool.as_ref().expect("checked"), &records).await
                }
                Err(e) => {
                    warn!(error = %e, records = records.len(), "accounting not stored; NAS will retransmit");
                    false
                }
            },
        };
        for (_, tx) in batch {
            let _ = tx.send(ok);
        }
    }
}

fn sqlx_timeout() -> frontdesk_core::store::SqlxError {
    frontdesk_core::store::SqlxError::PoolTimedOut
}

async fn spool_append(sp: &crate::spool::Spool, records: &[AccountingRecord]) -> bool {
    match sp.append(records).await {
        Ok(()) => true,
        Err(e) => {
            warn!(error = %e, "accounting spool not writable; NAS will retransmit");
            false
        }
    }
}

/// Writes spooled accounting to the database once it answers again (tried every 2 s).
async fn spool_flusher(store: Store, spool: Arc<crate::spool::Spool>) {
    let mut tick = tokio::time::interval(Duration::from_secs(2));
    loop {
        tick.tick().await;
        if !spool.pending() {
            continue;
        }
        match spool.flush(&store).await {
            Ok(n) => info!(records = n, "accounting spool written to the database"),
            Err(e) => debug!(error = %e, "accounting spool: database still unreachable"),
        }
    }
}

async fn auth_log_writer(store: Store, mut rx: mpsc::Receiver<AuthLogEntry>) {
    while let Some(first) = rx.recv().await {
        let mut batch = vec![first];
        // Collect for a moment: one transaction per burst, off the hot path.
        tokio::time::sleep(Duration::from_millis(50)).await;
        while batch.len() < 4096 {
            match rx.try_recv() {
                Ok(x) => batch.push(x),
                Err(_) => break,
            }
        }
        if let Err(e) = store.record_auth_log(&batch).await {
            warn!(error = %e, entries = batch.len(), "auth log not stored");
        }
    }
}

async fn stats_flusher(store: Store, shared: Arc<Shared>) {
    let mut tick = tokio::time::interval(Duration::from_secs(2));
    let (mut seen, mut stormed, mut quiet_ticks) = (0, false, 0);
    loop {
        tick.tick().await;
        // After a storm (every AP re-authenticating at 08:00), the worker threads' malloc
        // arenas keep tens of MB of freed buffers; hand them back once traffic is quiet again
        // (measured, 100k members: 86 MB -> 60 MB). Never during load: trimming locks arenas.
        // Wait until the duplicate cache has let go of the storm's answers (DUP_TTL).
        let events = shared.stats.events.load(Ordering::Relaxed);
        let busy = events - seen > QUIET_EVENTS_PER_TICK;
        seen = events;
        if busy {
            (stormed, quiet_ticks) = (true, 0);
        } else if stormed {
            quiet_ticks += 1;
            if quiet_ticks * 2 > DUP_TTL.as_secs() + 1 {
                stormed = false;
                crate::directory::release_free_memory();
            }
        }
        let snapshot = shared.stats.snapshot();
        if let Err(e) = store
            .save_nas_stats(&snapshot, frontdesk_core::clock::now())
            .await
        {
            debug!(error = %e, "NAS counters not saved");
        }
        for (ip, n) in shared.stats.unknown_sources() {
            debug!(%ip, dropped = n, "requests from an unknown NAS");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(n: u16) -> DupKey {
        let mut auth = [0u8; 16];
        auth[..2].copy_from_slice(&n.to_be_bytes());
        ("127.0.0.1:1000".parse().unwrap(), n as u8, auth)
    }

    #[test]
    fn ssids_per_nas_are_counted_and_bounded() {
        let mut list = Vec::new();
        count_ssid(&mut list, "Members", 1);
        count_ssid(&mut list, "Members", 2);
        for i in 0..100 {
            count_ssid(&mut list, &format!("junk-{i}"), 1);
        }
        assert_eq!(list.len(), MAX_SSIDS_PER_NAS);
        assert_eq!(list[0], ("Members".to_string(), 3));
    }

    #[test]
    fn duplicate_cache_answers_retransmissions_and_in_flight_copies() {
        let c = DupCache::new();
        assert_eq!(c.begin(key(1)), Ok(()));
        // A copy arriving while the first is processed is dropped.
        assert_eq!(c.begin(key(1)), Err(None));
        let answer = Arc::new(vec![2u8, 1, 0, 20]);
        c.finish(key(1), Some(answer.clone()));
        assert_eq!(c.begin(key(1)), Err(Some(answer)));
        // A dropped request leaves nothing behind: a retransmission is handled afresh.
        assert_eq!(c.begin(key(2)), Ok(()));
        c.finish(key(2), None);
        assert_eq!(c.begin(key(2)), Ok(()));
    }

    #[test]
    fn duplicate_cache_is_bounded() {
        let c = DupCache::new();
        for n in 0..(DUP_CAP_PER_SHARD as u32 * 16 + 5000) {
            let k: DupKey = ("127.0.0.1:1000".parse().unwrap(), (n % 256) as u8, {
                let mut a = [0u8; 16];
                a[..4].copy_from_slice(&n.to_be_bytes());
                a
            });
            let _ = c.begin(k);
            c.finish(k, Some(Arc::new(vec![0; 20])));
        }
        let total: usize = c.shards.iter().map(|s| s.lock().unwrap().len()).sum();
        assert!(total <= DUP_CAP_PER_SHARD * 16, "{total}");
    }

    #[test]
    fn online_sessions_count_distinct_macs_and_forget_stops() {
        let s = OnlineSessions::new(Duration::from_secs(60));
        let rec = |status, session: &str, mac: &str| AccountingRecord {
            at: frontdesk_core::clock::now(),
            nas_id: 1,
            nas_addr: "127.0.0.1:1".into(),
            status,
            session_id: session.into(),
            user_name: "ada".into(),
            member_id: Some("m1".into()),
            mac: mac.parse().ok(),
            framed_ip: None,
            vlan: None,
            class: None,
            input_octets: 0,
            output_octets: 0,
            session_time: 0,
            terminate_cause: None,
        };
        s.apply(&rec(AcctStatus::Start, "a", "02:00:00:00:00:01"));
        s.apply(&rec(AcctStatus::Start, "b", "02:00:00:00:00:01")); // same device, another AP
        s.apply(&rec(AcctStatus::Start, "c", "02:00:00:00:00:02"));
        assert_eq!(s.devices_online("m1").len(), 2);
        // The member's printer (MAB: User-Name is its MAC) does not count.
        let mut printer = rec(AcctStatus::Start, "p", "02:00:00:00:00:09");
        printer.user_name = "020000000009".into();
        s.apply(&printer);
        assert_eq!(s.devices_online("m1").len(), 2);
        s.apply(&rec(AcctStatus::Stop, "c", "02:00:00:00:00:02"));
        assert_eq!(s.devices_online("m1").len(), 1);
        s.apply(&rec(AcctStatus::NasRestart, "", ""));
        assert!(s.devices_online("m1").is_empty());
    }
}
