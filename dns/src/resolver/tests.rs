use super::*;
use crate::blocklist::DomainSet;
use crate::policy::{Exceptions, List};
use hickory_proto::op::Edns;
use hickory_proto::rr::Name;

fn resolver() -> Resolver {
    let p = DomainSet::parse("0.0.0.0 blocked.example\n");
    Resolver::new(
        Config {
            block_v4: Some(Ipv4Addr::new(10, 0, 0, 1)),
            ..Config::default()
        },
        Filter::new(
            vec![List {
                name: "malware".into(),
                block: p.block,
                allow: p.allow,
                plans: vec![],
            }],
            Exceptions::default(),
            None,
            vec![],
        ),
    )
}

fn query(name: &str, t: RecordType, edns: bool) -> Vec<u8> {
    let mut m = Message::new();
    m.set_id(0xabcd)
        .set_recursion_desired(true)
        .add_query(Query::query(Name::from_ascii(name).unwrap(), t));
    if edns {
        let mut e = Edns::new();
        e.set_max_payload(1232);
        m.set_edns(e);
    }
    m.to_vec().unwrap()
}

fn upstream_answer(q: &[u8], upstream_id: u16, ips: usize, ttl: u32) -> Vec<u8> {
    let req = Message::from_vec(q).unwrap();
    let mut m = Message::new();
    m.set_id(upstream_id)
        .set_message_type(MessageType::Response)
        .set_recursion_available(true)
        .add_query(req.queries()[0].clone());
    for i in 0..ips {
        m.add_answer(Record::from_rdata(
            req.queries()[0].name().clone(),
            ttl,
            RData::A(A(Ipv4Addr::new(192, 0, 2, (i % 250) as u8 + 1))),
        ));
    }
    m.to_vec().unwrap()
}

fn forward(r: &Resolver, q: &[u8], now: Instant) -> (Vec<u8>, Pending) {
    match r.query(q, Client::default(), false, now) {
        Action::Forward { query, pending } => (query, pending),
        Action::Answer(_, o, _) => panic!("answered locally: {o:?}"),
        Action::Drop => panic!("dropped"),
    }
}

#[test]
fn forwards_caches_and_counts_ttls_down() {
    let r = resolver();
    let t0 = Instant::now();
    let q = query("www.Example.com.", RecordType::A, false);
    let (up, p) = forward(&r, &q, t0);
    assert_ne!(
        wire::id(&up),
        Some(0xabcd),
        "upstream sees its own random ID"
    );
    let answer = upstream_answer(&up, p.upstream_id, 1, 300);
    let out = r.upstream(&p, &answer, t0).unwrap();
    let m = Message::from_vec(&out).unwrap();
    assert_eq!(m.id(), 0xabcd);
    assert_eq!(m.answers()[0].ttl(), 300);
    // Asked again 7 s later, in other letter case: from the cache, TTL counted down, the
    // client's own spelling of the name echoed.
    let q2 = query("WWW.example.COM.", RecordType::A, false);
    match r.query(&q2, Client::default(), false, t0 + Duration::from_secs(7)) {
        Action::Answer(bytes, Outcome::Cached, _) => {
            let m = Message::from_vec(&bytes).unwrap();
            assert_eq!(m.answers()[0].ttl(), 293);
            assert_eq!(m.queries()[0].name().to_ascii(), "WWW.example.COM.");
        }
        _ => panic!("not from the cache"),
    }
    // Expired: forwarded again.
    forward(&r, &q, t0 + Duration::from_secs(301));
    assert_eq!(r.stats.cache_hits.load(Ordering::Relaxed), 1);
}

#[test]
fn answers_that_are_not_ours_are_refused() {
    let r = resolver();
    let now = Instant::now();
    let q = query("example.com.", RecordType::A, false);
    let (up, p) = forward(&r, &q, now);
    let wrong_id = upstream_answer(&up, p.upstream_id.wrapping_add(1), 1, 60);
    assert!(r.upstream(&p, &wrong_id, now).is_none());
    let other = upstream_answer(
        &query("evil.example.", RecordType::A, false),
        p.upstream_id,
        1,
        60,
    );
    assert!(r.upstream(&p, &other, now).is_none(), "another question");
    assert!(
        r.upstream(&p, &up, now).is_none(),
        "a query is not an answer"
    );
    assert!(r.upstream(&p, &[0u8; 5], now).is_none());
    let fail = Message::from_vec(&r.servfail(&p)).unwrap();
    assert_eq!(fail.response_code(), ResponseCode::ServFail);
}

#[test]
fn blocked_names_get_the_block_page_and_the_canary_nxdomain() {
    let r = resolver();
    let now = Instant::now();
    match r.query(
        &query("a.blocked.example.", RecordType::A, false),
        Client::default(),
        false,
        now,
    ) {
        Action::Answer(bytes, Outcome::Blocked { list, domain }, _) => {
            assert_eq!(
                (list.as_str(), domain.as_str()),
                ("malware", "blocked.example")
            );
            let m = Message::from_vec(&bytes).unwrap();
            assert_eq!(
                m.answers()[0].data(),
                &RData::A(A(Ipv4Addr::new(10, 0, 0, 1)))
            );
        }
        _ => panic!("not blocked"),
    }
    // No IPv6 block address: NODATA for AAAA.
    match r.query(
        &query("blocked.example.", RecordType::AAAA, false),
        Client::default(),
        false,
        now,
    ) {
        Action::Answer(bytes, Outcome::Blocked { .. }, _) => {
            let m = Message::from_vec(&bytes).unwrap();
            assert_eq!(m.response_code(), ResponseCode::NoError);
            assert!(m.answers().is_empty());
        }
        _ => panic!("not blocked"),
    }
    match r.query(
        &query("use-application-dns.net.", RecordType::A, false),
        Client::default(),
        false,
        now,
    ) {
        Action::Answer(bytes, Outcome::Canary, _) => {
            assert_eq!(
                Message::from_vec(&bytes).unwrap().response_code(),
                ResponseCode::NXDomain
            );
        }
        _ => panic!("canary not answered"),
    }
}

#[test]
fn large_answers_are_truncated_over_udp_and_whole_over_tcp() {
    let r = resolver();
    let now = Instant::now();
    let q = query("big.example.", RecordType::A, false);
    let (up, p) = forward(&r, &q, now);
    let answer = upstream_answer(&up, p.upstream_id, 60, 600);
    assert!(answer.len() > 512);
    let out = r.upstream(&p, &answer, now).unwrap();
    assert!(wire::truncated(&out) && out.len() < 512);
    let m = Message::from_vec(&out).unwrap();
    assert!(m.truncated() && m.answers().is_empty());
    // The retry over TCP is served whole, from the cache.
    match r.query(&q, Client::default(), true, now) {
        Action::Answer(bytes, Outcome::Cached, _) => {
            assert_eq!(Message::from_vec(&bytes).unwrap().answers().len(), 60);
        }
        _ => panic!("not cached"),
    }
    // A client announcing a 1232-byte EDNS buffer gets it over UDP.
    let q = query("big.example.", RecordType::A, true);
    let (up, p) = forward(&r, &q, now);
    let answer = upstream_answer(&up, p.upstream_id, 60, 600);
    assert!(!wire::truncated(&r.upstream(&p, &answer, now).unwrap()));
}

#[test]
fn malformed_queries_get_formerr_or_nothing() {
    let r = resolver();
    let now = Instant::now();
    let good = query("example.com.", RecordType::A, false);
    let mut cases: Vec<Vec<u8>> = (0..good.len()).map(|n| good[..n].to_vec()).collect();
    let mut loop_ = good[..12].to_vec();
    loop_.extend([0xc0, 0x0c, 0, 1, 0, 1]); // a name pointing at itself
    cases.push(loop_);
    let mut counts = good.clone();
    counts[4] = 0xff; // 65,000 questions claimed
    counts[5] = 0xff;
    cases.push(counts);
    let mut two = query("example.com.", RecordType::A, false);
    two[5] = 2;
    cases.push(two);
    for (i, c) in cases.iter().enumerate() {
        match r.query(c, Client::default(), false, now) {
            Action::Drop => assert!(c.len() < 12, "case {i} dropped"),
            Action::Answer(bytes, outcome, _) => {
                assert_eq!(outcome, Outcome::FormErr, "case {i}");
                assert_eq!(
                    Message::from_vec(&bytes).unwrap().response_code(),
                    ResponseCode::FormErr
                );
            }
            Action::Forward { .. } => panic!("case {i} forwarded"),
        }
    }
    // A response sent to us is ignored (no reflection).
    let mut resp = good;
    resp[2] |= 0x80;
    assert!(matches!(
        r.query(&resp, Client::default(), false, now),
        Action::Drop
    ));
}

#[test]
fn a_full_cache_evicts_oldest_unused_first_in_constant_time() {
    let key = |i: usize| Key {
        name: format!("n{i}.example."),
        qtype: 1,
        qclass: 1,
        edns: false,
        dnssec_ok: false,
    };
    let entry = |now: Instant, secs: u64| Entry {
        bytes: vec![],
        ttls: vec![],
        question_end: 0,
        stored: now,
        lifetime: Duration::from_secs(secs),
        generation: 0,
        hit: false,
    };
    let now = Instant::now();
    let mut c = Cache::default();
    for i in 0..100 {
        c.insert(key(i), entry(now, 300), 100, now);
    }
    assert_eq!(c.len(), 100);
    // n0 was served: it survives the next insert; n1, the oldest unused, goes.
    c.map.get_mut(&key(0)).unwrap().hit = true;
    c.insert(key(100), entry(now, 300), 100, now);
    assert_eq!(c.len(), 100);
    assert!(c.map.contains_key(&key(0)) && !c.map.contains_key(&key(1)));
    // Re-inserting a key neither grows the cache nor leaves a live duplicate behind.
    for _ in 0..1000 {
        c.insert(key(50), entry(now, 300), 100, now);
    }
    assert_eq!(c.len(), 100);
    assert!(c.order.len() <= 2 * 100);
    // 200,000 distinct names through a 100-entry cache stay bounded.
    for i in 0..200_000 {
        c.insert(key(1000 + i), entry(now, 300), 100, now);
    }
    assert_eq!(c.len(), 100);
    assert!(c.order.len() <= 2 * 100);
}

/// The fast path reads plain queries exactly as the full parse does, and leaves everything
/// else to it.
#[test]
fn simple_queries_read_like_the_full_parse() {
    for (name, t, edns) in [
        ("WwW.Example.COM.", RecordType::A, false),
        ("www.example.com.", RecordType::AAAA, true),
        ("_sip._tcp.example.org.", RecordType::SRV, true),
        ("a-b.c.", RecordType::TXT, false),
    ] {
        let bytes = query(name, t, edns);
        let s = wire::simple_query(&bytes).unwrap_or_else(|| panic!("{name}"));
        let m = Message::from_vec(&bytes).unwrap();
        let q = &m.queries()[0];
        assert_eq!(s.name, q.name().to_ascii().to_ascii_lowercase());
        assert_eq!(s.qtype, u16::from(q.query_type()));
        assert_eq!(s.edns, m.extensions().is_some());
        assert_eq!(s.id, m.id());
        if edns {
            assert_eq!(s.max_udp, 1232);
        }
    }
    let plain = query("example.com.", RecordType::A, true);
    let mut cases = vec![
        query(".", RecordType::NS, false),             // the root
        query("a\\.b.example.", RecordType::A, false), // a dot inside a label
        query("example.com.", RecordType::AXFR, false),
        plain[..plain.len() - 1].to_vec(), // OPT cut short
    ];
    let mut extra = plain.clone();
    extra.push(0); // a byte after the OPT record
    cases.push(extra);
    let mut response = plain.clone();
    response[2] |= 0x80;
    cases.push(response);
    let mut two = plain.clone();
    two[5] = 2;
    cases.push(two);
    for (i, c) in cases.iter().enumerate() {
        assert!(wire::simple_query(c).is_none(), "case {i}");
    }
}

/// A cache hit through the fast path is the same answer the full path gives, blocked names
/// never come from the cache, and the fast path serves hits for a plan only when that plan
/// may resolve the name.
#[test]
fn cache_hits_through_the_fast_path() {
    let r = resolver();
    let now = Instant::now();
    let q = query("www.example.com.", RecordType::A, true);
    let (fwd, pending) = forward(&r, &q, now);
    r.upstream(
        &pending,
        &upstream_answer(&fwd, pending.upstream_id, 2, 300),
        now,
    )
    .unwrap();
    let mut again = query("WWW.example.com.", RecordType::A, true);
    again[..2].copy_from_slice(&[0x11, 0x22]);
    match r.query(
        &again,
        Client::default(),
        false,
        now + Duration::from_secs(3),
    ) {
        Action::Answer(bytes, Outcome::Cached, asked) => {
            let m = Message::from_vec(&bytes).unwrap();
            assert_eq!(m.id(), 0x1122);
            assert_eq!(m.queries()[0].name().to_ascii(), "WWW.example.com.");
            assert_eq!(m.answers().len(), 2);
            assert!(m.answers().iter().all(|a| a.ttl() == 297));
            assert_eq!(asked.name, "www.example.com.");
        }
        _ => panic!("not a cache hit"),
    }
    // Without EDNS it is another cache entry (no OPT record in the answer): forwarded.
    let no_edns = query("www.example.com.", RecordType::A, false);
    assert!(matches!(
        r.query(&no_edns, Client::default(), false, now),
        Action::Forward { .. }
    ));
    let blocked = query("blocked.example.", RecordType::A, true);
    assert!(matches!(
        r.query(&blocked, Client::default(), false, now),
        Action::Answer(_, Outcome::Blocked { .. }, _)
    ));
}
