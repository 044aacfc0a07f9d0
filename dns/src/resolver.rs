//! The sans-IO resolver: a query's bytes and who sent it in, an [`Action`] out (answer now,
//! or forward upstream and finish with [`Resolver::upstream`]). Queries are parsed with
//! hickory-proto (malformed ones get FORMERR, never a panic); cached answers are served by
//! patching the ID, the question's letter case and the TTLs of the stored bytes.

use crate::policy::{Client, Filter, Verdict};
use crate::wire;
use hickory_proto::op::{Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::rdata::{A, AAAA};
use hickory_proto::rr::{DNSClass, RData, Record, RecordType};
use std::collections::HashMap;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

#[derive(Clone, Debug)]
pub struct Config {
    /// A blocked name's A answer (the block page); `None` with `block_v6` `None`: NXDOMAIN.
    pub block_v4: Option<Ipv4Addr>,
    pub block_v6: Option<Ipv6Addr>,
    /// Answer blocked names with NXDOMAIN instead of the block page's address.
    pub nxdomain: bool,
    /// TTL of block answers (short: an approved exception takes effect soon on clients too).
    pub block_ttl: u32,
    /// Cached answers at most.
    pub cache_entries: usize,
    /// Upper bound on how long an answer is cached, seconds.
    pub max_ttl: u32,
    /// How long NXDOMAIN/NODATA answers are cached at most, seconds.
    pub negative_ttl: u32,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            block_v4: None,
            block_v6: None,
            nxdomain: false,
            block_ttl: 10,
            cache_entries: 100_000,
            max_ttl: 86_400,
            negative_ttl: 300,
        }
    }
}

/// What happened to a query (for the query log and metrics).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    Cached,
    Forwarded,
    Blocked {
        list: String,
        domain: String,
    },
    Canary,
    FormErr,
    NotImp,
    Refused,
    ServFail,
    /// DNSSEC validation failed: SERVFAIL.
    Bogus,
}

/// A forwarded query waiting for upstream.
#[derive(Debug)]
pub struct Pending {
    pub client_id: u16,
    /// The ID the upstream query carries (a response with another is not ours).
    pub upstream_id: u16,
    key: Key,
    question: Vec<u8>,
    /// Largest UDP answer the client takes (512 without EDNS).
    max_udp: usize,
    pub qname: String,
    /// Asked upstream with DO and CD; the answer goes through DNSSEC validation.
    pub validate: bool,
    /// The client set AD or DO: it may get the AD bit (RFC 6840 §5.7).
    ad_ok: bool,
    /// Keep the answer in the cache (not for a CD query while validating: the client's
    /// "don't check" must not reach other clients).
    store: bool,
}

impl Pending {
    /// The question, for the validator.
    pub fn query(&self) -> Option<Query> {
        let name = hickory_proto::rr::Name::from_ascii(&self.qname).ok()?;
        Some(Query::query(name, RecordType::from(self.key.qtype)))
    }

    pub fn asked(&self) -> Asked {
        Asked {
            name: self.qname.clone(),
            qtype: self.key.qtype,
        }
    }
}

/// The question a query asked (for the query log): lower-case name and type.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Asked {
    pub name: String,
    pub qtype: u16,
}

pub enum Action {
    /// Send these bytes to the client.
    Answer(Vec<u8>, Outcome, Asked),
    /// Send `query` upstream, then call [`Resolver::upstream`] with the answer.
    Forward { query: Vec<u8>, pending: Pending },
    /// Nothing to send (not a query, or too short to answer).
    Drop,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct Key {
    name: String,
    qtype: u16,
    qclass: u16,
    /// Answers to EDNS queries carry an OPT record, which a client without EDNS must not get.
    edns: bool,
    dnssec_ok: bool,
}

struct Entry {
    bytes: Vec<u8>,
    ttls: Vec<(usize, u32)>,
    question_end: usize,
    stored: Instant,
    lifetime: Duration,
    /// Which insertion of the key this is (older places in the queue are stale).
    generation: u64,
    /// Served since it was stored or last given a second chance.
    hit: bool,
}

/// The answer cache: a map, and the keys in insertion order for eviction. When full, the
/// oldest entry goes, unless it was served since it was stored: then it gets a second chance
/// at the back of the queue (CLOCK, an LRU approximation). Expired entries go first as they
/// come up. Every operation is O(1) amortized; the previous "sweep the whole map when full"
/// cost a 100,000-entry scan per insert once the cache had filled (it capped cache misses at
/// ~9,000/s in the benchmark).
#[derive(Default)]
struct Cache {
    map: HashMap<Key, Entry>,
    order: std::collections::VecDeque<(Key, u64)>,
    generation: u64,
}

impl Cache {
    fn insert(&mut self, key: Key, mut e: Entry, cap: usize, now: Instant) {
        if !self.map.contains_key(&key) {
            self.evict(cap.max(1) - 1, now);
        }
        self.generation += 1;
        e.generation = self.generation;
        self.order.push_back((key.clone(), self.generation));
        self.map.insert(key, e);
        if self.order.len() > 2 * cap.max(16) {
            // Re-inserted keys left stale places behind: drop them.
            let map = &self.map;
            self.order
                .retain(|(k, g)| map.get(k).is_some_and(|e| e.generation == *g));
        }
    }

    /// Makes room until at most `keep` entries remain.
    fn evict(&mut self, keep: usize, now: Instant) {
        let mut chances = 0;
        while self.map.len() > keep {
            let Some((key, generation)) = self.order.pop_front() else {
                return;
            };
            let Some(e) = self.map.get_mut(&key) else {
                continue;
            };
            if e.generation != generation {
                continue;
            }
            let expired = now.duration_since(e.stored) >= e.lifetime;
            if e.hit && !expired && chances < 64 {
                chances += 1;
                e.hit = false;
                self.order.push_back((key, generation));
                continue;
            }
            self.map.remove(&key);
        }
    }

    fn len(&self) -> usize {
        self.map.len()
    }
}

#[derive(Default)]
pub struct Stats {
    pub queries: AtomicU64,
    pub cache_hits: AtomicU64,
    pub forwarded: AtomicU64,
    pub blocked: AtomicU64,
    pub errors: AtomicU64,
    pub by_list: Mutex<HashMap<String, u64>>,
}

pub struct Resolver {
    config: Config,
    filter: RwLock<Arc<Filter>>,
    cache: Mutex<Cache>,
    /// Misses go upstream with DO+CD and are validated (set by the DNSSEC watcher).
    validating: std::sync::atomic::AtomicBool,
    pub stats: Stats,
}

impl Resolver {
    pub fn new(config: Config, filter: Filter) -> Resolver {
        Resolver {
            config,
            filter: RwLock::new(Arc::new(filter)),
            cache: Mutex::default(),
            validating: Default::default(),
            stats: Stats::default(),
        }
    }

    /// Swaps in new lists and exceptions; queries in flight finish with the old ones.
    pub fn set_filter(&self, filter: Filter) {
        *self.filter.write().expect("filter lock") = Arc::new(filter);
    }

    pub fn filter(&self) -> Arc<Filter> {
        self.filter.read().expect("filter lock").clone()
    }

    /// Turns DNSSEC validation of misses on or off; the cache starts over (its answers were
    /// judged under the other setting).
    pub fn set_validating(&self, on: bool) {
        self.validating.store(on, Ordering::Relaxed);
        *self.cache.lock().expect("cache lock") = Cache::default();
    }

    pub fn validating(&self) -> bool {
        self.validating.load(Ordering::Relaxed)
    }

    pub fn cache_len(&self) -> usize {
        self.cache.lock().expect("cache lock").len()
    }

    /// The cache-hit path without a full parse: a plain query (see [`wire::simple_query`])
    /// that the filter lets through and the cache holds. Anything else (`None`) takes the
    /// full path, which decides exactly as before.
    fn fast_hit(
        &self,
        bytes: &[u8],
        client: Client<'_>,
        tcp: bool,
        now: Instant,
    ) -> Option<Action> {
        let q = wire::simple_query(bytes)?;
        if !matches!(self.filter().check(client, &q.name), Verdict::Pass) {
            return None;
        }
        let key = Key {
            name: q.name,
            qtype: q.qtype,
            qclass: 1,
            edns: q.edns,
            dnssec_ok: q.dnssec_ok,
        };
        let max_udp = if tcp { usize::MAX } else { q.max_udp };
        let question = &bytes[wire::HEADER..q.question_end - 4];
        let ad_ok = bytes[3] & 0x20 != 0 || q.dnssec_ok;
        let answer = self.cached(&key, q.id, question, max_udp, ad_ok, now)?;
        self.stats.cache_hits.fetch_add(1, Ordering::Relaxed);
        Some(Action::Answer(
            answer,
            Outcome::Cached,
            Asked {
                name: key.name,
                qtype: q.qtype,
            },
        ))
    }

    /// One query from a client.
    pub fn query(&self, bytes: &[u8], client: Client<'_>, tcp: bool, now: Instant) -> Action {
        self.stats.queries.fetch_add(1, Ordering::Relaxed);
        let Some(id) = wire::id(bytes).filter(|_| bytes.len() >= wire::HEADER) else {
            return Action::Drop;
        };
        // Responses are never answered (no reflection loops).
        if bytes[2] & 0x80 != 0 {
            return Action::Drop;
        }
        if let Some(answer) = self.fast_hit(bytes, client, tcp, now) {
            return answer;
        }
        let msg = match Message::from_vec(bytes) {
            Ok(m) => m,
            Err(_) => return self.error(id, ResponseCode::FormErr, Outcome::FormErr, "", 0),
        };
        if msg.op_code() != OpCode::Query {
            return self.error(id, ResponseCode::NotImp, Outcome::NotImp, "", 0);
        }
        let [q] = msg.queries() else {
            return self.error(id, ResponseCode::FormErr, Outcome::FormErr, "", 0);
        };
        let qname = q.name().to_ascii().to_ascii_lowercase();
        let qtype = u16::from(q.query_type());
        let asked = || Asked {
            name: qname.clone(),
            qtype,
        };
        if q.query_class() != DNSClass::IN {
            return self.error(id, ResponseCode::Refused, Outcome::Refused, &qname, qtype);
        }
        if matches!(q.query_type(), RecordType::AXFR | RecordType::IXFR) {
            return self.error(id, ResponseCode::Refused, Outcome::Refused, &qname, qtype);
        }
        let filter = self.filter();
        match filter.check(client, &qname) {
            Verdict::Pass => {}
            Verdict::Canary => {
                let bytes = self.local_answer(&msg, q, ResponseCode::NXDomain, None);
                return Action::Answer(bytes, Outcome::Canary, asked());
            }
            Verdict::Block { list, domain } => {
                self.stats.blocked.fetch_add(1, Ordering::Relaxed);
                *self
                    .stats
                    .by_list
                    .lock()
                    .expect("stats lock")
                    .entry(list.to_string())
                    .or_default() += 1;
                let outcome = Outcome::Blocked {
                    list: list.to_string(),
                    domain,
                };
                let bytes = if self.config.nxdomain
                    || (self.config.block_v4.is_none() && self.config.block_v6.is_none())
                {
                    self.local_answer(&msg, q, ResponseCode::NXDomain, None)
                } else {
                    let rdata = match q.query_type() {
                        RecordType::A => self.config.block_v4.map(|a| RData::A(A(a))),
                        RecordType::AAAA => self.config.block_v6.map(|a| RData::AAAA(AAAA(a))),
                        _ => None,
                    };
                    self.local_answer(&msg, q, ResponseCode::NoError, rdata)
                };
                return Action::Answer(bytes, outcome, asked());
            }
        }
        let dnssec_ok = msg
            .extensions()
            .as_ref()
            .is_some_and(|e| e.flags().dnssec_ok);
        let max_udp = if tcp {
            usize::MAX
        } else {
            msg.extensions()
                .as_ref()
                .map_or(512, |e| usize::from(e.max_payload()).clamp(512, 4096))
        };
        let key = Key {
            name: qname.clone(),
            qtype,
            qclass: u16::from(q.query_class()),
            edns: msg.extensions().is_some(),
            dnssec_ok,
        };
        let question = match wire::question(bytes) {
            Some((name, _, _)) => name.to_vec(),
            None => return self.error(id, ResponseCode::FormErr, Outcome::FormErr, &qname, qtype),
        };
        let ad_ok = msg.authentic_data() || dnssec_ok;
        if let Some(answer) = self.cached(&key, id, &question, max_udp, ad_ok, now) {
            self.stats.cache_hits.fetch_add(1, Ordering::Relaxed);
            return Action::Answer(answer, Outcome::Cached, asked());
        }
        self.stats.forwarded.fetch_add(1, Ordering::Relaxed);
        let upstream_id: u16 = rand::random();
        let validating = self.validating();
        let validate = validating && !msg.checking_disabled();
        let query = if validate {
            crate::dnssec::dnssec_query(q, upstream_id)
        } else {
            let mut query = bytes.to_vec();
            query[..2].copy_from_slice(&upstream_id.to_be_bytes());
            query
        };
        Action::Forward {
            query,
            pending: Pending {
                client_id: id,
                upstream_id,
                key,
                question,
                max_udp,
                qname,
                validate,
                ad_ok,
                store: !validating || validate,
            },
        }
    }

    /// A validated miss: `answer` came back for the DO+CD query of `p` and the validator
    /// judged it. Bogus → `None` (the client gets SERVFAIL). Otherwise the answer is
    /// reshaped for the client (DNSSEC records only if it set DO, no OPT record if it sent
    /// none, AD when secure), cached and returned.
    pub fn validated(
        &self,
        p: &Pending,
        answer: &[u8],
        security: &crate::dnssec::Security,
        now: Instant,
    ) -> Option<Vec<u8>> {
        use crate::dnssec::Security;
        if matches!(security, Security::Bogus(_)) {
            return None;
        }
        let mut m = Message::from_vec(answer).ok()?;
        if !p.key.dnssec_ok {
            let asked = RecordType::from(p.key.qtype);
            crate::dnssec::retain_records(&mut m, |r| {
                let t = r.record_type();
                t == asked || !matches!(t, RecordType::RRSIG | RecordType::NSEC | RecordType::NSEC3)
            });
        }
        if p.key.edns {
            if let Some(e) = m.extensions_mut().as_mut() {
                e.set_dnssec_ok(p.key.dnssec_ok);
            }
        } else {
            *m.extensions_mut() = None;
        }
        m.set_checking_disabled(false)
            .set_authoritative(false)
            .set_authentic_data(*security == Security::Secure);
        let bytes = m.to_vec().ok()?;
        self.upstream(p, &bytes, now)
    }

    /// Upstream's answer to a forwarded query: checked to be the answer to it, cached, and
    /// returned for the client. `None` (upstream failed or answered something else): the
    /// client gets SERVFAIL from [`Resolver::servfail`].
    pub fn upstream(&self, p: &Pending, answer: &[u8], now: Instant) -> Option<Vec<u8>> {
        if wire::id(answer) != Some(p.upstream_id) || answer[2] & 0x80 == 0 {
            return None;
        }
        let (name, qtype, qclass) = wire::question(answer)?;
        if !name.eq_ignore_ascii_case(&p.question) || qtype != p.key.qtype || qclass != p.key.qclass
        {
            return None;
        }
        let layout = wire::layout(answer)?;
        let rcode = wire::rcode(answer)?;
        let cacheable = p.store && !wire::truncated(answer) && (rcode == 0 || rcode == 3);
        if cacheable {
            let negative = rcode == 3 || layout.ttls.is_empty();
            let cap = if negative {
                self.config.negative_ttl
            } else {
                self.config.max_ttl
            };
            let ttl = layout.min_ttl.unwrap_or(0).min(cap);
            if ttl > 0 {
                let ttls = layout
                    .ttls
                    .iter()
                    .map(|&o| {
                        (
                            o,
                            u32::from_be_bytes(answer[o..o + 4].try_into().expect("4")),
                        )
                    })
                    .collect();
                let entry = Entry {
                    bytes: answer.to_vec(),
                    ttls,
                    question_end: layout.question_end,
                    stored: now,
                    lifetime: Duration::from_secs(u64::from(ttl)),
                    generation: 0,
                    hit: false,
                };
                self.cache.lock().expect("cache lock").insert(
                    p.key.clone(),
                    entry,
                    self.config.cache_entries,
                    now,
                );
            }
        }
        let mut out = answer.to_vec();
        if !p.ad_ok {
            out[3] &= !0x20;
        }
        out[..2].copy_from_slice(&p.client_id.to_be_bytes());
        out[wire::HEADER..wire::HEADER + p.question.len()].copy_from_slice(&p.question);
        Some(fit(out, layout.question_end, p.max_udp))
    }

    /// SERVFAIL for a forwarded query upstream did not answer.
    pub fn servfail(&self, p: &Pending) -> Vec<u8> {
        self.stats.errors.fetch_add(1, Ordering::Relaxed);
        let mut m = Message::error_msg(p.client_id, OpCode::Query, ResponseCode::ServFail);
        if let Ok(name) = hickory_proto::rr::Name::from_ascii(&p.qname) {
            m.add_query(Query::query(name, RecordType::from(p.key.qtype)));
        }
        m.set_recursion_available(true);
        m.to_vec().unwrap_or_default()
    }

    fn cached(
        &self,
        key: &Key,
        id: u16,
        question: &[u8],
        max_udp: usize,
        ad_ok: bool,
        now: Instant,
    ) -> Option<Vec<u8>> {
        let mut cache = self.cache.lock().expect("cache lock");
        let e = cache.map.get_mut(key)?;
        let age = now.duration_since(e.stored);
        if age >= e.lifetime || e.question_end != wire::HEADER + question.len() + 4 {
            return None;
        }
        e.hit = true;
        let mut out = e.bytes.clone();
        let question_end = e.question_end;
        let ttls = e.ttls.clone();
        drop(cache);
        let elapsed = age.as_secs() as u32;
        out[..2].copy_from_slice(&id.to_be_bytes());
        if !ad_ok {
            out[3] &= !0x20;
        }
        out[wire::HEADER..wire::HEADER + question.len()].copy_from_slice(question);
        for (o, ttl) in ttls {
            out[o..o + 4].copy_from_slice(&ttl.saturating_sub(elapsed).to_be_bytes());
        }
        Some(fit(out, question_end, max_udp))
    }

    fn error(
        &self,
        id: u16,
        code: ResponseCode,
        outcome: Outcome,
        qname: &str,
        qtype: u16,
    ) -> Action {
        self.stats.errors.fetch_add(1, Ordering::Relaxed);
        let mut m = Message::error_msg(id, OpCode::Query, code);
        m.set_recursion_available(true);
        match m.to_vec() {
            Ok(bytes) => Action::Answer(
                bytes,
                outcome,
                Asked {
                    name: qname.to_string(),
                    qtype,
                },
            ),
            Err(_) => Action::Drop,
        }
    }

    /// An answer made here (block page address, NXDOMAIN, NODATA).
    fn local_answer(
        &self,
        msg: &Message,
        q: &Query,
        code: ResponseCode,
        rdata: Option<RData>,
    ) -> Vec<u8> {
        let mut m = Message::new();
        m.set_id(msg.id())
            .set_message_type(MessageType::Response)
            .set_op_code(OpCode::Query)
            .set_recursion_desired(msg.recursion_desired())
            .set_recursion_available(true)
            .set_response_code(code)
            .add_query(q.clone());
        if let Some(rdata) = rdata {
            m.add_answer(Record::from_rdata(
                q.name().clone(),
                self.config.block_ttl,
                rdata,
            ));
        }
        m.to_vec().unwrap_or_default()
    }
}

/// A UDP answer larger than the client takes: the header and question with TC set (the
/// client asks again over TCP, and finds it cached).
fn fit(mut bytes: Vec<u8>, question_end: usize, max_udp: usize) -> Vec<u8> {
    if bytes.len() <= max_udp {
        return bytes;
    }
    bytes.truncate(question_end);
    bytes[2] |= 0x02;
    bytes[6..12].fill(0);
    bytes
}

#[cfg(test)]
mod tests;
