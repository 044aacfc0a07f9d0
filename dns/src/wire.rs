//! The few facts the cache needs from a DNS message without a full parse: where the TTLs are
//! (to count them down on every cached answer), the question's extent, the flags. Bounds are
//! checked everywhere; a message that does not walk cleanly is simply not cached.

/// Where things are in a response.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Layout {
    /// End of the question section (header + the one question).
    pub question_end: usize,
    /// Offsets of the TTL fields of answer, authority and additional records (OPT excluded:
    /// its "TTL" carries EDNS flags).
    pub ttls: Vec<usize>,
    /// The smallest of those TTLs (`None`: no records).
    pub min_ttl: Option<u32>,
}

pub const HEADER: usize = 12;
const OPT: u16 = 41;

fn u16_at(b: &[u8], i: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*b.get(i)?, *b.get(i + 1)?]))
}

fn u32_at(b: &[u8], i: usize) -> Option<u32> {
    Some(u32::from_be_bytes(b.get(i..i + 4)?.try_into().ok()?))
}

/// Skips a (possibly compressed) name starting at `i`; returns the offset after it. A
/// compression pointer ends the name in place, so loops cannot make this run away.
fn skip_name(b: &[u8], mut i: usize) -> Option<usize> {
    for _ in 0..128 {
        let len = *b.get(i)?;
        match len {
            0 => return Some(i + 1),
            l if l & 0xc0 == 0xc0 => {
                b.get(i + 1)?;
                return Some(i + 2);
            }
            l if l & 0xc0 != 0 => return None,
            l => i += 1 + l as usize,
        }
    }
    None
}

/// Walks a message with exactly one question.
pub fn layout(b: &[u8]) -> Option<Layout> {
    if b.len() < HEADER || u16_at(b, 4)? != 1 {
        return None;
    }
    let question_end = skip_name(b, HEADER)? + 4;
    if question_end > b.len() {
        return None;
    }
    let records = [u16_at(b, 6)?, u16_at(b, 8)?, u16_at(b, 10)?]
        .iter()
        .map(|&n| n as usize)
        .sum::<usize>();
    let mut out = Layout {
        question_end,
        ..Layout::default()
    };
    let mut i = question_end;
    for _ in 0..records {
        i = skip_name(b, i)?;
        let typ = u16_at(b, i)?;
        let ttl = u32_at(b, i + 4)?;
        let rdlen = u16_at(b, i + 8)? as usize;
        if typ != OPT {
            out.ttls.push(i + 4);
            out.min_ttl = Some(out.min_ttl.map_or(ttl, |m| m.min(ttl)));
        }
        i += 10 + rdlen;
        if i > b.len() {
            return None;
        }
    }
    (i == b.len()).then_some(out)
}

/// The question's name as it appears in the message (uncompressed in a question), its type
/// and class.
pub fn question(b: &[u8]) -> Option<(&[u8], u16, u16)> {
    let end = skip_name(b, HEADER)?;
    Some((&b[HEADER..end], u16_at(b, end)?, u16_at(b, end + 2)?))
}

pub fn id(b: &[u8]) -> Option<u16> {
    u16_at(b, 0)
}

pub fn rcode(b: &[u8]) -> Option<u8> {
    Some(b.get(3)? & 0x0f)
}

pub fn truncated(b: &[u8]) -> bool {
    b.get(2).is_some_and(|f| f & 0x02 != 0)
}

/// A plain query, read without a full parse (the cache-hit path): one question with an
/// uncompressed name of ordinary hostname characters, class IN, no answer or authority
/// records, and at most an EDNS version 0 OPT record that ends the message exactly.
#[derive(Debug, PartialEq, Eq)]
pub struct Simple {
    pub id: u16,
    /// Lower-case, dotted, with the trailing dot (as hickory's `to_ascii` writes it).
    pub name: String,
    pub qtype: u16,
    pub edns: bool,
    pub dnssec_ok: bool,
    /// Largest UDP answer the client takes (512 without EDNS).
    pub max_udp: usize,
    pub question_end: usize,
}

/// `None`: anything unusual; the caller takes the full parse, which decides.
pub fn simple_query(b: &[u8]) -> Option<Simple> {
    // QR = 0, opcode QUERY; one question, no answers or authority; at most one additional.
    if b.len() < HEADER || b[2] & 0xf8 != 0 || u16_at(b, 4)? != 1 || u16_at(b, 6)? != 0 {
        return None;
    }
    let additional = u16_at(b, 10)?;
    if u16_at(b, 8)? != 0 || additional > 1 {
        return None;
    }
    let mut name = String::with_capacity(64);
    let mut i = HEADER;
    loop {
        let len = usize::from(*b.get(i)?);
        if len == 0 {
            i += 1;
            break;
        }
        if len > 63 {
            return None; // compression or reserved bits: not in a plain question
        }
        for &c in b.get(i + 1..i + 1 + len)? {
            match c {
                b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' => name.push(c as char),
                b'A'..=b'Z' => name.push(c.to_ascii_lowercase() as char),
                _ => return None,
            }
        }
        name.push('.');
        i += 1 + len;
        if name.len() > 253 {
            return None;
        }
    }
    if name.is_empty() {
        return None;
    }
    let qtype = u16_at(b, i)?;
    if u16_at(b, i + 2)? != 1 || matches!(qtype, 251 | 252) {
        return None; // class IN only; IXFR/AXFR refused by the full path
    }
    let question_end = i + 4;
    let mut out = Simple {
        id: u16_at(b, 0)?,
        name,
        qtype,
        edns: false,
        dnssec_ok: false,
        max_udp: 512,
        question_end,
    };
    if additional == 0 {
        return (question_end == b.len()).then_some(out);
    }
    // The OPT record: root name, type 41, class = payload size, TTL = ext-rcode, version,
    // flags; its options are not looked at.
    let o = question_end;
    if *b.get(o)? != 0 || u16_at(b, o + 1)? != OPT || *b.get(o + 5)? != 0 {
        return None;
    }
    let version = *b.get(o + 6)?;
    let flags = u16_at(b, o + 7)?;
    let rdlen = usize::from(u16_at(b, o + 9)?);
    if version != 0 || o + 11 + rdlen != b.len() {
        return None;
    }
    out.edns = true;
    out.dnssec_ok = flags & 0x8000 != 0;
    out.max_udp = usize::from(u16_at(b, o + 3)?).clamp(512, 4096);
    Some(out)
}

/// A record type's mnemonic ("A", "AAAA", "TYPE65534").
pub fn type_name(qtype: u16) -> String {
    hickory_proto::rr::RecordType::from(qtype).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// example.com A, one answer with a compressed name, TTL 300.
    fn response() -> Vec<u8> {
        let mut b = vec![0x12, 0x34, 0x81, 0x80, 0, 1, 0, 1, 0, 0, 0, 0];
        b.extend(b"\x07example\x03com\x00");
        b.extend([0, 1, 0, 1]);
        b.extend([0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 1, 0x2c, 0, 4, 192, 0, 2, 1]);
        b
    }

    #[test]
    fn finds_ttls_and_the_question() {
        let b = response();
        let l = layout(&b).unwrap();
        assert_eq!(l.question_end, 29);
        assert_eq!(l.ttls, [35]);
        assert_eq!(l.min_ttl, Some(300));
        let (name, typ, class) = question(&b).unwrap();
        assert_eq!((name.len(), typ, class), (13, 1, 1));
        assert_eq!(id(&b), Some(0x1234));
        assert_eq!(rcode(&b), Some(0));
    }

    #[test]
    fn malformed_messages_do_not_walk() {
        let b = response();
        for cut in 0..b.len() {
            assert!(layout(&b[..cut]).is_none(), "cut at {cut}");
        }
        let mut long = b.clone();
        long.push(0);
        assert!(layout(&long).is_none(), "trailing bytes");
        let mut counts = b.clone();
        counts[7] = 200; // 200 answers claimed
        assert!(layout(&counts).is_none());
        let mut bad_label = b;
        bad_label[12] = 0x80; // reserved label type
        assert!(layout(&bad_label).is_none());
        // A name of 128 one-byte labels never ends inside the limit.
        let mut deep = vec![0u8, 0, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0];
        for _ in 0..130 {
            deep.extend([1, b'a']);
        }
        deep.extend([0, 0, 1, 0, 1]);
        assert!(layout(&deep).is_none());
    }
}
