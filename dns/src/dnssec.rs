//! DNSSEC validation of forwarded answers ("validating where possible").
//!
//! A miss goes upstream with the DO bit (and CD: we judge signatures ourselves); the answer
//! is then checked by hickory-proto's validator ([`DnssecDnsHandle`]: RRSIGs, the DNSKEY/DS
//! chain up to a trust anchor, NSEC/NSEC3 proofs of non-existence and of insecure
//! delegations). Its sub-queries (DNSKEY, DS) go to the same upstreams through a small cache
//! of their own, so a warm resolver validates a miss without extra round trips.
//!
//! Modes, as systemd-resolved names them:
//! - `allow-downgrade` (default): validation runs while the upstreams prove they can carry
//!   it (the trust anchor zone's DNSKEY set comes back signed and verifies; checked at start
//!   and every 10 minutes). An upstream that strips signatures (some ISP and hotel resolvers,
//!   a test dnsmasq) turns validation off, loudly, instead of failing every answer. An
//!   attacker on the upstream path can force that downgrade; `strict` closes it.
//! - `strict`: always validate; an answer that cannot be proven secure or insecure is bogus.
//! - `off`: forward only.
//!
//! Results: secure → the AD bit (for clients that set AD or DO, RFC 6840 §5.7); insecure
//! (a proven unsigned delegation, or a name under no trust anchor) → plain answer; bogus →
//! SERVFAIL (RFC 4035 §5.5), logged with the reason.

use futures_util::stream::{self, Stream};
use hickory_proto::dnssec::{Algorithm, DnssecDnsHandle, Proof, PublicKeyBuf, TrustAnchors};
use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query};
use hickory_proto::rr::{Name, Record, RecordType};
use hickory_proto::xfer::{DnsHandle, DnsRequest, DnsResponse, FirstAnswer};
use hickory_proto::ProtoError;
use hickory_proto::ProtoErrorKind;
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Mode {
    Off,
    #[default]
    AllowDowngrade,
    Strict,
}

impl FromStr for Mode {
    type Err = String;
    fn from_str(s: &str) -> Result<Mode, String> {
        match s {
            "off" | "no" => Ok(Mode::Off),
            "allow-downgrade" => Ok(Mode::AllowDowngrade),
            "strict" | "yes" => Ok(Mode::Strict),
            other => Err(format!(
                "dnssec = {other:?}: expected \"allow-downgrade\", \"strict\" or \"off\""
            )),
        }
    }
}

/// What validation concluded about one answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Security {
    Secure,
    Insecure,
    Bogus(String),
}

/// Trusted keys and the zones they are for (validation applies to names under them).
#[derive(Clone)]
pub struct Anchors {
    keys: Arc<TrustAnchors>,
    zones: Vec<Name>,
}

impl Anchors {
    /// The root zone's KSKs (2017 and 2024), compiled into hickory-proto.
    pub fn root() -> Anchors {
        Anchors {
            keys: Arc::new(TrustAnchors::default()),
            zones: vec![Name::root()],
        }
    }

    /// DNSKEY records in zone-file form (`NAME [TTL] [IN] DNSKEY FLAGS 3 ALG BASE64`, as
    /// `dnssec-keygen` writes them and unbound's `trust-anchor-file` reads them); `;` comments.
    pub fn parse(text: &str) -> Result<Anchors, String> {
        use base64::Engine;
        let mut keys = TrustAnchors::empty();
        let mut zones: Vec<Name> = Vec::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.split(';').next().unwrap_or("").trim();
            if line.is_empty() {
                continue;
            }
            let t: Vec<&str> = line.split_whitespace().collect();
            let at = t
                .iter()
                .position(|w| w.eq_ignore_ascii_case("DNSKEY"))
                .ok_or_else(|| format!("line {}: not a DNSKEY record", n + 1))?;
            if at == 0 || t.len() < at + 5 {
                return Err(format!(
                    "line {}: expected NAME ... DNSKEY FLAGS PROTOCOL ALGORITHM KEY",
                    n + 1
                ));
            }
            let zone =
                Name::from_ascii(t[0]).map_err(|e| format!("line {}: {}: {e}", n + 1, t[0]))?;
            let alg: u8 = t[at + 3]
                .parse()
                .map_err(|_| format!("line {}: algorithm {:?}", n + 1, t[at + 3]))?;
            let key = base64::engine::general_purpose::STANDARD
                .decode(t[at + 4..].concat())
                .map_err(|e| format!("line {}: key: {e}", n + 1))?;
            keys.insert(&PublicKeyBuf::new(key, Algorithm::from_u8(alg)));
            if !zones.contains(&zone) {
                zones.push(zone);
            }
        }
        if zones.is_empty() {
            return Err("no DNSKEY records".into());
        }
        Ok(Anchors {
            keys: Arc::new(keys),
            zones,
        })
    }

    /// Is `name` at or under a zone we hold keys for?
    pub fn covers(&self, name: &Name) -> bool {
        self.zones.iter().any(|z| z.zone_of(name))
    }

    pub fn zones(&self) -> &[Name] {
        &self.zones
    }
}

/// Sends one query (wire bytes, with this ID) to the upstreams and returns the answer.
pub trait Exchange: Send + Sync + 'static {
    fn exchange(
        &self,
        query: Vec<u8>,
        id: u16,
    ) -> Pin<Box<dyn Future<Output = Option<Vec<u8>>> + Send>>;
}

/// Validation counters (for /metrics).
#[derive(Default)]
pub struct Counts {
    pub secure: AtomicU64,
    pub insecure: AtomicU64,
    pub bogus: AtomicU64,
}

pub struct Validator {
    mode: Mode,
    anchors: Anchors,
    up: Arc<dyn Exchange>,
    /// Answers to the validator's own queries (DNSKEY, DS), by name and type.
    cache: Mutex<HashMap<(Name, RecordType), Cached>>,
    pub counts: Counts,
}

/// A sub-query answer: good until, bytes.
type Cached = (Instant, Arc<Vec<u8>>);

/// Sub-query answers kept at most (then the cache starts over).
const CACHE_ENTRIES: usize = 10_000;
/// Longest a DNSKEY/DS answer is reused, whatever its TTL.
const CACHE_MAX: Duration = Duration::from_secs(3600);
/// One validation, all its sub-queries included.
const VALIDATE_TIMEOUT: Duration = Duration::from_secs(5);
/// Largest UDP answer asked for (DNS flag day 2020: no IP fragmentation).
pub const UDP_PAYLOAD: u16 = 1232;

impl Validator {
    pub fn new(mode: Mode, anchors: Anchors, up: Arc<dyn Exchange>) -> Arc<Validator> {
        Arc::new(Validator {
            mode,
            anchors,
            up,
            cache: Mutex::new(HashMap::new()),
            counts: Counts::default(),
        })
    }

    /// Whether misses are validated from the start (`strict`); `allow-downgrade` waits for
    /// [`Validator::watch`] to find the upstreams able.
    pub fn validates_from_start(&self) -> bool {
        self.mode == Mode::Strict
    }

    /// Checks `answer` (the upstream's answer to `query`, asked with DO and CD).
    pub async fn validate(self: &Arc<Self>, query: &Query, answer: Vec<u8>) -> Security {
        if !self.anchors.covers(query.name()) {
            self.counts.insecure.fetch_add(1, Ordering::Relaxed);
            return Security::Insecure;
        }
        let first = Arc::new((query.name().clone(), query.query_type(), answer));
        let run = async {
            match judge(self.checked(query, Some(first)).await) {
                // hickory-proto takes "no DS record at the answer's name" for an unsigned
                // delegation, also where the name is no zone cut at all: an answer inside a
                // signed zone with its RRSIGs stripped passed as insecure. Insecure must be
                // proven here (see `prove_insecure`).
                Security::Insecure => self.prove_insecure(query.name()).await,
                other => other,
            }
        };
        let result = match tokio::time::timeout(VALIDATE_TIMEOUT, run).await {
            Ok(r) => r,
            Err(_) => Security::Bogus("validation timed out (DNSKEY/DS lookups)".into()),
        };
        let c = match result {
            Security::Secure => &self.counts.secure,
            Security::Insecure => &self.counts.insecure,
            Security::Bogus(_) => &self.counts.bogus,
        };
        c.fetch_add(1, Ordering::Relaxed);
        result
    }

    /// `query` through hickory's validator (its answer is `first` when already in hand).
    async fn checked(
        self: &Arc<Self>,
        query: &Query,
        first: Option<Arc<(Name, RecordType, Vec<u8>)>>,
    ) -> Result<DnsResponse, ProtoError> {
        let handle = DnssecDnsHandle::with_trust_anchor(
            Handle {
                v: self.clone(),
                first,
            },
            self.anchors.keys.clone(),
        );
        let mut m = Message::new();
        m.set_id(rand::random())
            .set_message_type(MessageType::Query)
            .set_op_code(OpCode::Query)
            .set_recursion_desired(true)
            .add_query(query.clone());
        handle.send(DnsRequest::from(m)).first_answer().await
    }

    /// An unsigned answer for `name` is insecure only if there is a proven unsigned
    /// delegation on the way down from the trust anchor (RFC 4035 §5.2): for the name or
    /// one of its ancestors X, a secure "no DS at X" proof whose NSEC (or NSEC3, matched by
    /// hash) is owned by X and shows a delegation there (NS bit, no SOA, no DS), or an
    /// NSEC3 opt-out span. A secure DS set at X on the way means X's zone is signed: the
    /// missing signatures are bogus. Reaching the trust anchor's zone: bogus.
    async fn prove_insecure(self: &Arc<Self>, name: &Name) -> Security {
        let mut x = name.to_lowercase();
        loop {
            if self.anchors.zones.contains(&x) {
                return Security::Bogus(format!(
                    "{name}: no signatures, and no unsigned delegation proven below {x}"
                ));
            }
            let q = Query::query(x.clone(), RecordType::DS);
            match self.checked(&q, None).await {
                Ok(r) => {
                    if r.answers()
                        .iter()
                        .any(|rr| rr.record_type() == RecordType::DS && rr.proof().is_secure())
                    {
                        return Security::Bogus(format!(
                            "{name}: no signatures although {x} is a signed delegation (DS)"
                        ));
                    }
                    if delegation_without_ds(&r, &x) {
                        return Security::Insecure;
                    }
                }
                // The DS answer itself came from an unsigned zone: the cut is higher up.
                Err(e) if matches!(e.kind(), ProtoErrorKind::Nsec { proof, .. } if proof.is_insecure()) =>
                    {}
                Err(e) => return Security::Bogus(format!("{x} DS: {e}")),
            }
            if x.is_root() {
                return Security::Bogus(format!("{name}: no signatures"));
            }
            x = x.base_name();
        }
    }

    /// Can the upstreams carry DNSSEC? The first trust anchor zone's DNSKEY set, asked for
    /// with DO, must come back signed and verify. `Err` says why not.
    pub async fn probe(self: &Arc<Self>) -> Result<(), String> {
        let zone = self.anchors.zones[0].clone();
        let q = Query::query(zone.clone(), RecordType::DNSKEY);
        let id: u16 = rand::random();
        let Some(answer) = self.up.exchange(dnssec_query(&q, id), id).await else {
            return Err(format!("no answer to \"{zone} DNSKEY\""));
        };
        let msg = Message::from_vec(&answer).map_err(|e| format!("unreadable answer: {e}"))?;
        let signed = msg
            .answers()
            .iter()
            .any(|r| r.record_type() == RecordType::RRSIG);
        if !signed {
            return Err(format!(
                "\"{zone} DNSKEY\" came back without signatures ({})",
                msg.response_code()
            ));
        }
        match self.validate(&q, answer).await {
            Security::Secure => Ok(()),
            Security::Insecure => Err(format!(
                "\"{zone} DNSKEY\" is not signed by the trust anchor"
            )),
            Security::Bogus(why) => Err(format!("\"{zone} DNSKEY\" did not verify: {why}")),
        }
    }

    /// `allow-downgrade`: probes now and every 10 minutes (every minute while off), turning
    /// validation on or off; the verdict is logged and `on_change(on)` runs at the first
    /// probe and whenever it flips (the answer cache is emptied there, so not on every probe).
    pub async fn watch(self: Arc<Self>, on_change: impl Fn(bool) + Send + 'static) {
        if self.mode != Mode::AllowDowngrade {
            return;
        }
        let mut was: Option<bool> = None;
        loop {
            let result = self.probe().await;
            let now = result.is_ok();
            if was != Some(now) {
                was = Some(now);
                match &result {
                    Ok(()) => tracing::info!(
                        zone = %self.anchors.zones[0],
                        "DNSSEC: upstreams carry signatures; answers are validated"
                    ),
                    Err(why) => tracing::warn!(
                        why = %why,
                        "DNSSEC: answers are NOT validated (the upstreams do not carry DNSSEC; \
                         [dns] dnssec = \"strict\" would refuse to resolve instead)"
                    ),
                }
                on_change(now);
            }
            // Unvalidated: look again soon (an upstream restart, a network change).
            let wait = if now { 600 } else { 60 };
            tokio::time::sleep(Duration::from_secs(wait)).await;
        }
    }

    async fn ask(&self, q: &Query) -> Result<DnsResponse, ProtoError> {
        let key = (q.name().to_lowercase(), q.query_type());
        let now = Instant::now();
        if let Some((until, bytes)) = self.cache.lock().expect("dnssec cache").get(&key) {
            if *until > now {
                return DnsResponse::from_buffer(bytes.to_vec());
            }
        }
        let id: u16 = rand::random();
        let answer = self
            .up
            .exchange(dnssec_query(q, id), id)
            .await
            .ok_or_else(|| ProtoError::from(format!("no answer from upstream to {q}")))?;
        let response = DnsResponse::from_buffer(answer.clone())?;
        let rcode = u16::from(response.response_code());
        if response.id() != id || response.queries().first() != Some(q) {
            return Err(ProtoError::from(format!(
                "upstream answered another question than {q}"
            )));
        }
        if rcode == 0 || rcode == 3 {
            let ttl = response.all_sections().map(Record::ttl).min().unwrap_or(0);
            let ttl = Duration::from_secs(u64::from(ttl)).min(CACHE_MAX);
            if !ttl.is_zero() {
                let mut cache = self.cache.lock().expect("dnssec cache");
                if cache.len() >= CACHE_ENTRIES {
                    cache.clear();
                }
                cache.insert(key, (now + ttl, Arc::new(answer)));
            }
        }
        Ok(response)
    }
}

/// A query for the upstream: DO (send signatures), CD (we judge them), EDNS payload 1232.
pub fn dnssec_query(q: &Query, id: u16) -> Vec<u8> {
    let mut m = Message::new();
    m.set_id(id)
        .set_message_type(MessageType::Query)
        .set_op_code(OpCode::Query)
        .set_recursion_desired(true)
        .set_checking_disabled(true)
        .add_query(q.clone());
    let mut edns = Edns::new();
    edns.set_max_payload(UDP_PAYLOAD).set_dnssec_ok(true);
    m.set_edns(edns);
    m.to_vec().unwrap_or_default()
}

/// The validator's view of the upstreams: the answer already in hand for the question being
/// validated, the cache or the upstreams for the rest.
#[derive(Clone)]
struct Handle {
    v: Arc<Validator>,
    first: Option<Arc<(Name, RecordType, Vec<u8>)>>,
}

impl DnsHandle for Handle {
    type Response = Pin<Box<dyn Stream<Item = Result<DnsResponse, ProtoError>> + Send>>;

    fn send<R: Into<DnsRequest> + Unpin + Send + 'static>(&self, request: R) -> Self::Response {
        let request: DnsRequest = request.into();
        let me = self.clone();
        Box::pin(stream::once(async move {
            let q = request
                .queries()
                .first()
                .cloned()
                .ok_or_else(|| ProtoError::from("no question"))?;
            let response = match &me.first {
                Some(first) if &first.0 == q.name() && first.1 == q.query_type() => {
                    DnsResponse::from_buffer(first.2.clone())?
                }
                _ => me.v.ask(&q).await?,
            };
            let mut msg = response.into_message();
            drop_foreign_signatures(&mut msg);
            DnsResponse::from_message(msg)
        }))
    }
}

/// RFC 4035 §5.3.1: an RRSIG's signer is the zone that holds the RRset, so the owner name or
/// an ancestor (for a DS set, held by the parent zone, a proper ancestor). hickory-proto 0.25
/// does not check this (a TODO in its handle): a record for any name, signed with the key of
/// a zone the attacker holds, would verify. Such signatures are dropped before validation
/// (the record is then unsigned, which must be proven insecure). Returns how many.
fn drop_foreign_signatures(msg: &mut Message) -> usize {
    use hickory_proto::dnssec::rdata::DNSSECRData;
    use hickory_proto::rr::RData;
    let ok = |r: &Record| match r.data() {
        RData::DNSSEC(DNSSECRData::RRSIG(sig)) => {
            let signer = sig.signer_name();
            signer.zone_of(r.name())
                && !(sig.type_covered() == RecordType::DS && signer.eq_ignore_root(r.name()))
        }
        _ => true,
    };
    retain_records(msg, ok)
}

/// Keeps the answer, authority and additional records `keep` accepts; returns how many went.
pub(crate) fn retain_records(msg: &mut Message, keep: impl Fn(&Record) -> bool) -> usize {
    let mut dropped = 0;
    let mut filter = |records: Vec<Record>| -> Vec<Record> {
        let before = records.len();
        let kept: Vec<Record> = records.into_iter().filter(|r| keep(r)).collect();
        dropped += before - kept.len();
        kept
    };
    let answers = filter(msg.take_answers());
    let authority = filter(msg.take_name_servers());
    let additional = filter(msg.take_additionals());
    msg.insert_answers(answers);
    msg.insert_name_servers(authority);
    msg.insert_additionals(additional);
    dropped
}

/// Does this validated DS answer prove an unsigned delegation at `x`?
fn delegation_without_ds(r: &DnsResponse, x: &Name) -> bool {
    use hickory_proto::dnssec::rdata::DNSSECRData;
    use hickory_proto::rr::RData;
    let cut = |types: &mut dyn Iterator<Item = RecordType>| {
        let types: Vec<RecordType> = types.collect();
        types.contains(&RecordType::NS)
            && !types.contains(&RecordType::DS)
            && !types.contains(&RecordType::SOA)
    };
    for rr in r.name_servers() {
        if !rr.proof().is_secure() {
            continue;
        }
        match rr.data() {
            RData::DNSSEC(DNSSECRData::NSEC(nsec))
                if rr.name().to_lowercase() == *x && cut(&mut nsec.type_bit_maps()) =>
            {
                return true;
            }
            RData::DNSSEC(DNSSECRData::NSEC3(n3)) => {
                let Ok(hash) = n3.hash_algorithm().hash(n3.salt(), x, n3.iterations()) else {
                    continue;
                };
                let h = hash.as_ref();
                let Some(owner) = rr.name().iter().next().and_then(|l| {
                    data_encoding::BASE32_DNSSEC
                        .decode(&l.to_ascii_lowercase())
                        .ok()
                }) else {
                    continue;
                };
                if owner.as_slice() == h && cut(&mut n3.type_bit_maps()) {
                    return true;
                }
                // Opt-out (RFC 5155 §6): an NSEC3 whose span covers X's hash says unsigned
                // delegations there may have no NSEC3 of their own.
                let next = n3.next_hashed_owner_name();
                let covers = if owner.as_slice() < next {
                    owner.as_slice() < h && h < next
                } else {
                    h > owner.as_slice() || h < next
                };
                if n3.opt_out() && covers {
                    return true;
                }
            }
            _ => {}
        }
    }
    false
}

/// hickory's verdict → ours. Every answer record (CNAME chain included) must be secure for
/// AD; any bogus record makes the answer bogus; a negative answer passed the validator's
/// NSEC/NSEC3 check (or its authority records were proven insecure).
fn judge(result: Result<DnsResponse, ProtoError>) -> Security {
    let response = match result {
        Ok(r) => r,
        Err(e) => {
            return match e.kind() {
                ProtoErrorKind::Nsec { proof, .. } if proof.is_insecure() => Security::Insecure,
                _ => Security::Bogus(e.to_string()),
            };
        }
    };
    let not_sig = |r: &&Record| r.record_type() != RecordType::RRSIG;
    let answers: Vec<&Record> = response.answers().iter().filter(not_sig).collect();
    let authority: Vec<&Record> = response.name_servers().iter().filter(not_sig).collect();
    if let Some(bad) = answers
        .iter()
        .chain(authority.iter())
        .find(|r| r.proof() == Proof::Bogus)
    {
        return Security::Bogus(format!(
            "{} {} did not verify",
            bad.name(),
            bad.record_type()
        ));
    }
    let secure = if answers.is_empty() {
        !authority.is_empty() && authority.iter().any(|r| r.proof().is_secure())
    } else {
        answers.iter().all(|r| r.proof().is_secure())
    };
    if secure {
        Security::Secure
    } else {
        Security::Insecure
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn anchors_parse_dnssec_keygen_output() {
        let text = "; This is a key-signing key, keyid 44497, for .\n\
                    ; Created: 20261129022541 (Sun Nov 29 02:25:41 2026)\n\
                    . 3600 IN DNSKEY 257 3 13 Si8FWnnzE18YGLjGRy7TZbJ1Md7UWxbY5EbNXLsiz2nsHWMuWWFTsWJt MHROU2ISdPyS+PFG2dN1rPB/5Vl3gA==\n\
                    example.org. DNSKEY 257 3 8 AwEAAag=\n";
        let a = Anchors::parse(text).unwrap();
        assert_eq!(a.keys.len(), 2);
        assert_eq!(a.zones().len(), 2);
        assert!(a.covers(&Name::from_ascii("www.example.com.").unwrap()));
        let only = Anchors::parse("example.org. IN DNSKEY 257 3 8 AwEAAag=").unwrap();
        assert!(only.covers(&Name::from_ascii("a.b.example.org.").unwrap()));
        assert!(!only.covers(&Name::from_ascii("example.com.").unwrap()));
        assert!(Anchors::parse("; nothing\n").is_err());
        assert!(Anchors::parse("example.org. IN A 1.2.3.4").is_err());
        assert!(Anchors::parse("example.org. DNSKEY 257 3 x AAAA").is_err());
        assert!(Anchors::root().covers(&Name::from_ascii("anything.").unwrap()));
    }

    #[test]
    fn signatures_from_outside_the_zone_are_dropped() {
        use hickory_proto::dnssec::rdata::{DNSSECRData, DS, RRSIG};
        use hickory_proto::dnssec::DigestType;
        use hickory_proto::rr::rdata::A;
        use hickory_proto::rr::RData;
        let n = |s: &str| Name::from_ascii(s).unwrap();
        let sig = |owner: &str, covered: RecordType, signer: &str| {
            Record::from_rdata(
                n(owner),
                300,
                RData::DNSSEC(DNSSECRData::RRSIG(RRSIG::new(
                    covered,
                    Algorithm::ECDSAP256SHA256,
                    2,
                    300,
                    2_000_000_000,
                    1_000_000_000,
                    1,
                    n(signer),
                    vec![0; 64],
                ))),
            )
        };
        let mut m = Message::new();
        m.add_answer(Record::from_rdata(
            n("bank.test."),
            300,
            RData::A(A::new(192, 0, 2, 1)),
        ));
        m.add_answer(sig("bank.test.", RecordType::A, "evil.test.")); // another zone
        m.add_answer(sig("bank.test.", RecordType::A, "test.")); // the parent zone: fine
        m.add_answer(sig("bank.test.", RecordType::A, "BANK.test.")); // the zone itself
        let ds = DS::new(
            1,
            Algorithm::ECDSAP256SHA256,
            DigestType::SHA256,
            vec![0; 32],
        );
        m.add_name_server(Record::from_rdata(
            n("x.test."),
            300,
            RData::DNSSEC(DNSSECRData::DS(ds)),
        ));
        m.add_name_server(sig("x.test.", RecordType::DS, "x.test.")); // DS signed by the child
        m.add_name_server(sig("x.test.", RecordType::DS, "X.Test.")); // in any case
        m.add_name_server(sig("x.test.", RecordType::DS, "test.")); // by the parent: fine
        m.add_additional(sig("x.test.", RecordType::NS, "a.x.test.")); // a descendant
        assert_eq!(drop_foreign_signatures(&mut m), 4);
        let signers: Vec<String> = m
            .all_sections()
            .filter_map(|r| match r.data() {
                RData::DNSSEC(DNSSECRData::RRSIG(s)) => Some(s.signer_name().to_string()),
                _ => None,
            })
            .collect();
        assert_eq!(signers, ["test.", "BANK.test.", "test."]);
    }

    #[test]
    fn modes_parse() {
        assert_eq!(
            "allow-downgrade".parse::<Mode>().unwrap(),
            Mode::AllowDowngrade
        );
        assert_eq!("strict".parse::<Mode>().unwrap(), Mode::Strict);
        assert_eq!("off".parse::<Mode>().unwrap(), Mode::Off);
        assert!("maybe".parse::<Mode>().is_err());
    }

    #[test]
    fn queries_ask_for_signatures() {
        let q = Query::query(Name::from_ascii("example.org.").unwrap(), RecordType::A);
        let m = Message::from_vec(&dnssec_query(&q, 7)).unwrap();
        assert_eq!(m.id(), 7);
        assert!(m.checking_disabled() && m.recursion_desired());
        let e = m.extensions().as_ref().unwrap();
        assert!(e.flags().dnssec_ok);
        assert_eq!(e.max_payload(), UDP_PAYLOAD);
    }
}
