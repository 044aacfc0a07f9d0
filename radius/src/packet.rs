//! RADIUS packet codec (RFC 2865 §3, §5), authenticators and Message-Authenticator
//! (RFC 3579 §3.2), and the attribute hiding schemes (RFC 2865 §5.2, RFC 2868 §3.5, RFC 2548).
//!
//! Decoding never panics on hostile input: every length is checked before use.

use hmac::{Hmac, Mac};
use md5::{Digest, Md5};
use subtle::ConstantTimeEq;

use crate::attr;

/// RFC 2865 §3: 20-octet header, packets at most 4096 octets.
pub const HEADER_LEN: usize = 20;
pub const MAX_PACKET_LEN: usize = 4096;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Code {
    AccessRequest,
    AccessAccept,
    AccessReject,
    AccountingRequest,
    AccountingResponse,
    AccessChallenge,
    StatusServer,
    StatusClient,
    DisconnectRequest,
    DisconnectAck,
    DisconnectNak,
    CoaRequest,
    CoaAck,
    CoaNak,
    Other(u8),
}

impl Code {
    pub fn from_u8(v: u8) -> Code {
        match v {
            1 => Code::AccessRequest,
            2 => Code::AccessAccept,
            3 => Code::AccessReject,
            4 => Code::AccountingRequest,
            5 => Code::AccountingResponse,
            11 => Code::AccessChallenge,
            12 => Code::StatusServer,
            13 => Code::StatusClient,
            40 => Code::DisconnectRequest,
            41 => Code::DisconnectAck,
            42 => Code::DisconnectNak,
            43 => Code::CoaRequest,
            44 => Code::CoaAck,
            45 => Code::CoaNak,
            other => Code::Other(other),
        }
    }

    pub fn to_u8(self) -> u8 {
        match self {
            Code::AccessRequest => 1,
            Code::AccessAccept => 2,
            Code::AccessReject => 3,
            Code::AccountingRequest => 4,
            Code::AccountingResponse => 5,
            Code::AccessChallenge => 11,
            Code::StatusServer => 12,
            Code::StatusClient => 13,
            Code::DisconnectRequest => 40,
            Code::DisconnectAck => 41,
            Code::DisconnectNak => 42,
            Code::CoaRequest => 43,
            Code::CoaAck => 44,
            Code::CoaNak => 45,
            Code::Other(v) => v,
        }
    }

    /// Requests whose Request Authenticator is an MD5 over the packet (RFC 2866 §3,
    /// RFC 5176 §2.3), so Message-Authenticator is computed with it zeroed.
    fn authenticator_is_digest(self) -> bool {
        matches!(
            self,
            Code::AccountingRequest | Code::DisconnectRequest | Code::CoaRequest
        )
    }
}

/// An attribute; its value owned ([`Value`], to build packets) or borrowed from the datagram
/// (`&[u8]`, a request decoded in place).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Attribute<V = Value> {
    pub typ: u8,
    pub value: V,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Packet<V = Value> {
    pub code: Code,
    pub identifier: u8,
    pub authenticator: [u8; 16],
    pub attributes: Vec<Attribute<V>>,
}

/// Values up to this many octets are stored in the attribute itself (every attribute of a
/// typical Access-Accept: VLAN, timers, Class, Message-Authenticator).
const INLINE: usize = 30;

/// An owned attribute value: short ones inline, longer ones (EAP, MPPE keys) on the heap, so a
/// reply costs one allocation for its attribute list instead of one per attribute.
#[derive(Clone)]
pub enum Value {
    Inline { len: u8, buf: [u8; INLINE] },
    Heap(Vec<u8>),
}

impl std::ops::Deref for Value {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        match self {
            Value::Inline { len, buf } => &buf[..usize::from(*len)],
            Value::Heap(v) => v,
        }
    }
}

impl AsRef<[u8]> for Value {
    fn as_ref(&self) -> &[u8] {
        self
    }
}

impl From<&[u8]> for Value {
    fn from(v: &[u8]) -> Value {
        if v.len() <= INLINE {
            let mut buf = [0; INLINE];
            buf[..v.len()].copy_from_slice(v);
            Value::Inline {
                len: v.len() as u8,
                buf,
            }
        } else {
            Value::Heap(v.to_vec())
        }
    }
}

impl From<Vec<u8>> for Value {
    fn from(v: Vec<u8>) -> Value {
        if v.len() <= INLINE {
            Value::from(v.as_slice())
        } else {
            Value::Heap(v)
        }
    }
}

impl<const N: usize> From<[u8; N]> for Value {
    fn from(v: [u8; N]) -> Value {
        Value::from(&v[..])
    }
}

impl<const N: usize> From<&[u8; N]> for Value {
    fn from(v: &[u8; N]) -> Value {
        Value::from(&v[..])
    }
}

impl From<&Vec<u8>> for Value {
    fn from(v: &Vec<u8>) -> Value {
        Value::from(v.as_slice())
    }
}

impl PartialEq for Value {
    fn eq(&self, other: &Value) -> bool {
        **self == **other
    }
}

impl Eq for Value {}

impl PartialEq<[u8]> for Value {
    fn eq(&self, other: &[u8]) -> bool {
        **self == *other
    }
}

impl PartialEq<Vec<u8>> for Value {
    fn eq(&self, other: &Vec<u8>) -> bool {
        **self == **other
    }
}

impl std::fmt::Debug for Value {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        (**self).fmt(f)
    }
}

/// A request decoded in place ([`Packet::parse`]): its attribute values borrow the datagram, so
/// decoding allocates only the attribute list. The server's request path reads these.
pub type PacketRef<'a> = Packet<&'a [u8]>;

#[derive(Debug, thiserror::Error, PartialEq, Eq, Clone, Copy)]
pub enum DecodeError {
    #[error("datagram of {0} octets is shorter than a RADIUS header")]
    TooShort(usize),
    #[error("length field {0} is outside 20..=4096")]
    BadLength(usize),
    #[error("length field {field} exceeds the {datagram}-octet datagram")]
    Truncated { field: usize, datagram: usize },
    #[error("attribute at offset {0} has length below 2")]
    AttributeTooShort(usize),
    #[error("attribute at offset {0} runs past the packet")]
    AttributeOverrun(usize),
}

#[derive(Debug, thiserror::Error, PartialEq, Eq, Clone, Copy)]
pub enum EncodeError {
    #[error("attribute {0} value is longer than 253 octets")]
    AttributeTooLong(u8),
    #[error("packet would be {0} octets, over the 4096 limit")]
    TooLong(usize),
}

impl<'a> Packet<&'a [u8]> {
    /// Decodes a datagram in place. Octets beyond the Length field are padding and ignored (RFC 2865 §3).
    pub fn parse(buf: &'a [u8]) -> Result<PacketRef<'a>, DecodeError> {
        if buf.len() < HEADER_LEN {
            return Err(DecodeError::TooShort(buf.len()));
        }
        let len = u16::from_be_bytes([buf[2], buf[3]]) as usize;
        if !(HEADER_LEN..=MAX_PACKET_LEN).contains(&len) {
            return Err(DecodeError::BadLength(len));
        }
        if len > buf.len() {
            return Err(DecodeError::Truncated {
                field: len,
                datagram: buf.len(),
            });
        }
        // Counted first (a plain scan of the lengths) so the list is allocated once.
        let mut count = 0;
        let mut i = HEADER_LEN;
        while i + 2 <= len && buf[i + 1] >= 2 {
            count += 1;
            i += buf[i + 1] as usize;
        }
        let mut attributes = Vec::with_capacity(count);
        let mut i = HEADER_LEN;
        while i < len {
            if i + 2 > len {
                return Err(DecodeError::AttributeOverrun(i));
            }
            let alen = buf[i + 1] as usize;
            if alen < 2 {
                return Err(DecodeError::AttributeTooShort(i));
            }
            if i + alen > len {
                return Err(DecodeError::AttributeOverrun(i));
            }
            attributes.push(Attribute {
                typ: buf[i],
                value: &buf[i + 2..i + alen],
            });
            i += alen;
        }
        let mut authenticator = [0u8; 16];
        authenticator.copy_from_slice(&buf[4..20]);
        Ok(Packet {
            code: Code::from_u8(buf[0]),
            identifier: buf[1],
            authenticator,
            attributes,
        })
    }
}

impl Packet {
    pub fn new(code: Code, identifier: u8, authenticator: [u8; 16]) -> Packet {
        Packet {
            code,
            identifier,
            authenticator,
            // Room for a typical reply without regrowing.
            attributes: Vec::with_capacity(12),
        }
    }

    /// Decodes a datagram. Octets beyond the Length field are padding and ignored (RFC 2865 §3).
    pub fn decode(buf: &[u8]) -> Result<Packet, DecodeError> {
        let p = PacketRef::parse(buf)?;
        Ok(Packet {
            code: p.code,
            identifier: p.identifier,
            authenticator: p.authenticator,
            attributes: p
                .attributes
                .into_iter()
                .map(|a| Attribute {
                    typ: a.typ,
                    value: Value::from(a.value),
                })
                .collect(),
        })
    }

    pub fn add(&mut self, typ: u8, value: impl Into<Value>) {
        self.attributes.push(Attribute {
            typ,
            value: value.into(),
        });
    }

    pub fn add_u32(&mut self, typ: u8, v: u32) {
        self.add(typ, v.to_be_bytes());
    }

    pub fn add_vsa(&mut self, vendor: u32, typ: u8, value: &[u8]) {
        // Built on the stack: a short VSA stays inline, a too-long one fails at encode.
        let mut v = [0u8; 6 + 255];
        let n = 6 + value.len().min(255);
        v[..4].copy_from_slice(&vendor.to_be_bytes());
        v[4] = typ;
        v[5] = (value.len() as u8).wrapping_add(2);
        v[6..n].copy_from_slice(&value[..n - 6]);
        if value.len() > 255 {
            // Kept whole so encoding reports the oversized attribute.
            let mut long = v[..6].to_vec();
            long.extend(value);
            self.add(attr::VENDOR_SPECIFIC, long);
        } else {
            self.add(attr::VENDOR_SPECIFIC, &v[..n]);
        }
    }
}

/// Reading (and encoding) works the same on owned and borrowed packets.
impl<V: AsRef<[u8]>> Packet<V> {
    /// Encodes with the authenticator as it is (no signing).
    pub fn encode(&self) -> Result<Vec<u8>, EncodeError> {
        let size = HEADER_LEN
            + self
                .attributes
                .iter()
                .map(|a| a.value.as_ref().len() + 2)
                .sum::<usize>();
        let mut out = Vec::with_capacity(size.min(MAX_PACKET_LEN + 255));
        out.push(self.code.to_u8());
        out.push(self.identifier);
        out.extend([0, 0]);
        out.extend(self.authenticator);
        for a in &self.attributes {
            if a.value.as_ref().len() > 253 {
                return Err(EncodeError::AttributeTooLong(a.typ));
            }
            out.push(a.typ);
            out.push(a.value.as_ref().len() as u8 + 2);
            out.extend(a.value.as_ref());
        }
        if out.len() > MAX_PACKET_LEN {
            return Err(EncodeError::TooLong(out.len()));
        }
        let len = out.len() as u16;
        out[2..4].copy_from_slice(&len.to_be_bytes());
        Ok(out)
    }

    pub fn get(&self, typ: u8) -> Option<&[u8]> {
        self.attributes
            .iter()
            .find(|a| a.typ == typ)
            .map(|a| a.value.as_ref())
    }

    pub fn has(&self, typ: u8) -> bool {
        self.attributes.iter().any(|a| a.typ == typ)
    }

    pub fn all(&self, typ: u8) -> impl Iterator<Item = &[u8]> {
        self.attributes
            .iter()
            .filter(move |a| a.typ == typ)
            .map(|a| a.value.as_ref())
    }

    pub fn get_string(&self, typ: u8) -> Option<String> {
        self.get(typ)
            .map(|v| String::from_utf8_lossy(v).into_owned())
    }

    pub fn get_u32(&self, typ: u8) -> Option<u32> {
        self.get(typ)
            .and_then(|v| v.try_into().ok())
            .map(u32::from_be_bytes)
    }

    /// Every vendor sub-attribute: (vendor id, vendor type, value). A Vendor-Specific
    /// attribute may hold several (RFC 2865 §5.26); malformed ones are skipped.
    pub fn vsas(&self) -> impl Iterator<Item = (u32, u8, &[u8])> {
        self.all(attr::VENDOR_SPECIFIC).flat_map(|v| {
            let mut out = Vec::new();
            if v.len() >= 4 {
                let vendor = u32::from_be_bytes([v[0], v[1], v[2], v[3]]);
                let mut i = 4;
                while i + 2 <= v.len() {
                    let l = v[i + 1] as usize;
                    if l < 2 || i + l > v.len() {
                        break;
                    }
                    out.push((vendor, v[i], &v[i + 2..i + l]));
                    i += l;
                }
            }
            out
        })
    }

    pub fn vsa(&self, vendor: u32, typ: u8) -> Option<&[u8]> {
        self.vsas()
            .find(|(v, t, _)| *v == vendor && *t == typ)
            .map(|(_, _, val)| val)
    }
}

type HmacMd5 = Hmac<Md5>;

/// Offset of the Message-Authenticator value within an encoded packet.
fn message_authenticator_offset(raw: &[u8]) -> Option<usize> {
    let len = u16::from_be_bytes([*raw.get(2)?, *raw.get(3)?]) as usize;
    let mut i = HEADER_LEN;
    while i + 2 <= len.min(raw.len()) {
        let l = raw[i + 1] as usize;
        if l < 2 {
            return None;
        }
        if raw[i] == attr::MESSAGE_AUTHENTICATOR && l == 18 && i + 18 <= raw.len() {
            return Some(i + 2);
        }
        i += l;
    }
    None
}

/// HMAC-MD5 over `parts` in order. The keyed state (the MD5 of the key's inner and outer
/// pads) is kept per thread for the last few secrets: a NAS's every request and reply would
/// otherwise hash the same two pad blocks again (two of the five MD5 blocks of a typical
/// Message-Authenticator).
fn hmac_md5(secret: &[u8], parts: &[&[u8]]) -> [u8; 16] {
    use std::cell::RefCell;
    const KEPT: usize = 8;
    thread_local! {
        static KEYED: RefCell<Vec<(Vec<u8>, HmacMd5)>> = const { RefCell::new(Vec::new()) };
    }
    let mut mac = KEYED.with(|k| {
        let mut k = k.borrow_mut();
        // Constant time over the secret's octets: the cache must not tell secrets apart by
        // timing either.
        if let Some(i) = k
            .iter()
            .position(|(s, _)| s.len() == secret.len() && bool::from(s.ct_eq(secret)))
        {
            return k[i].1.clone();
        }
        let mac = HmacMd5::new_from_slice(secret).expect("HMAC takes any key length");
        if k.len() == KEPT {
            k.remove(0);
        }
        k.push((secret.to_vec(), mac.clone()));
        mac
    });
    for p in parts {
        mac.update(p);
    }
    mac.finalize().into_bytes().into()
}

pub fn verify_request_message_authenticator(raw: &[u8], secret: &[u8]) -> Option<bool> {
    let off = message_authenticator_offset(raw)?;
    let received: [u8; 16] = raw[off..off + 16].try_into().expect("16 octets");
    // The packet as signed: the Message-Authenticator's value zeroed (and, for requests whose
    // authenticator is a digest, the authenticator too), hashed in pieces without a copy.
    let len = (u16::from_be_bytes([raw[2], raw[3]]) as usize).min(raw.len());
    if off + 16 > len {
        // Runs past the Length field: not a signature over this packet.
        return Some(false);
    }
    let header: &[u8] = if Code::from_u8(raw[0]).authenticator_is_digest() {
        &raw[..4]
    } else {
        &raw[..HEADER_LEN]
    };
    let zeros: &[u8] = if header.len() == 4 { &[0; 16] } else { &[] };
    let expected = hmac_md5(
        secret,
        &[
            header,
            zeros,
            &raw[HEADER_LEN..off],
            &[0; 16],
            &raw[off + 16..len],
        ],
    );
    Some(bool::from(expected.ct_eq(&received)))
}

pub fn verify_digest_request_authenticator(raw: &[u8], secret: &[u8]) -> bool {
    if raw.len() < HEADER_LEN {
        return false;
    }
    let mut h = Md5::new();
    h.update(&raw[..4]);
    h.update([0u8; 16]);
    h.update(&raw[HEADER_LEN..]);
    h.update(secret);
    let digest: [u8; 16] = h.finalize().into();
    bool::from(digest.ct_eq(&raw[4..20]))
}

/// Encodes `p` with `authenticator` in the header, fills in its Message-Authenticator (if it
/// carries one: HMAC-MD5 over the packet with the value zeroed, RFC 3579 §3.2), and with
/// `digest` replaces the header authenticator by MD5(packet ‖ secret).
fn sign(
    p: &Packet,
    authenticator: [u8; 16],
    secret: &[u8],
    digest: bool,
) -> Result<Vec<u8>, EncodeError> {
    // Encoded as given, then the authenticator and a zeroed Message-Authenticator put in place
    // (no copy of the packet's attributes).
    let mut raw = p.encode()?;
    raw[4..20].copy_from_slice(&authenticator);
    if let Some(off) = message_authenticator_offset(&raw) {
        raw[off..off + 16].fill(0);
        let mac = hmac_md5(secret, &[&raw]);
        raw[off..off + 16].copy_from_slice(&mac);
    }
    if digest {
        let mut h = Md5::new();
        h.update(&raw);
        h.update(secret);
        let auth: [u8; 16] = h.finalize().into();
        raw[4..20].copy_from_slice(&auth);
    }
    Ok(raw)
}

pub fn encode_response(
    resp: &Packet,
    request_authenticator: &[u8; 16],
    secret: &[u8],
) -> Result<Vec<u8>, EncodeError> {
    sign(resp, *request_authenticator, secret, true)
}

/// Encodes a request as a client would (tests, load generator, CoA): Access-Request and
/// Status-Server keep the given random authenticator; Accounting/CoA/Disconnect get the digest
/// (RFC 2866 §3, RFC 5176 §2.3). A Message-Authenticator attribute present in `req` is filled in.
pub fn encode_request(req: &Packet, secret: &[u8]) -> Result<Vec<u8>, EncodeError> {
    if req.code.authenticator_is_digest() {
        sign(req, [0; 16], secret, true)
    } else {
        sign(req, req.authenticator, secret, false)
    }
}

/// Verifies a response's authenticators against the request it answers (client side).
pub fn verify_response(raw: &[u8], request_authenticator: &[u8; 16], secret: &[u8]) -> bool {
    if raw.len() < HEADER_LEN {
        return false;
    }
    let mut copy = raw.to_vec();
    copy[4..20].copy_from_slice(request_authenticator);
    let mut h = Md5::new();
    h.update(&copy);
    h.update(secret);
    let auth: [u8; 16] = h.finalize().into();
    if !bool::from(auth.ct_eq(&raw[4..20])) {
        return false;
    }
    match message_authenticator_offset(&copy) {
        None => true,
        Some(off) => {
            let received: [u8; 16] = copy[off..off + 16].try_into().expect("16");
            copy[off..off + 16].fill(0);
            bool::from(hmac_md5(secret, &[&copy]).ct_eq(&received))
        }
    }
}

/// The MD5 chain shared by User-Password (RFC 2865 §5.2), Tunnel-Password (RFC 2868 §3.5)
/// and the MS-MPPE keys (RFC 2548 §2.4.2): b1 = MD5(S + seed), c(i) = p(i) xor b(i),
/// b(i+1) = MD5(S + c(i)). `input.len()` must be a multiple of 16. `encrypting` says whether
/// `input` is plaintext (the chain then runs on the output) or ciphertext.
fn md5_chain(secret: &[u8], seed: &[&[u8]], input: &[u8], encrypting: bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(input.len());
    for (i, chunk) in input.chunks(16).enumerate() {
        let mut h = Md5::new();
        h.update(secret);
        if i == 0 {
            seed.iter().for_each(|s| h.update(s));
        } else if encrypting {
            h.update(&out[(i - 1) * 16..i * 16]);
        } else {
            h.update(&input[(i - 1) * 16..i * 16]);
        }
        let b: [u8; 16] = h.finalize().into();
        out.extend(chunk.iter().zip(b).map(|(x, k)| x ^ k));
    }
    out
}

/// RFC 2865 §5.2 User-Password: recovers the password (trailing NULs removed).
/// `None` if the value is not a positive multiple of 16 octets or longer than 128.
pub fn decrypt_user_password(
    value: &[u8],
    secret: &[u8],
    request_authenticator: &[u8; 16],
) -> Option<Vec<u8>> {
    if value.is_empty() || value.len() % 16 != 0 || value.len() > 128 {
        return None;
    }
    let mut out = md5_chain(secret, &[request_authenticator], value, false);
    while out.last() == Some(&0) {
        out.pop();
    }
    Some(out)
}

/// RFC 2865 §5.2 in the other direction (clients: tests, load generator).
pub fn encrypt_user_password(
    password: &[u8],
    secret: &[u8],
    request_authenticator: &[u8; 16],
) -> Vec<u8> {
    let mut padded = password.to_vec();
    padded.resize(padded.len().div_ceil(16).max(1) * 16, 0);
    md5_chain(secret, &[request_authenticator], &padded, true)
}

/// Salt-encryption of Tunnel-Password (RFC 2868 §3.5), MS-MPPE-Send/Recv-Key (RFC 2548
/// §2.4.2/2.4.3) and Aruba-MPSK-Passphrase: salt(2, high bit set) ‖ encrypted(len ‖ data ‖ pad).
pub fn salt_encrypt(
    data: &[u8],
    secret: &[u8],
    request_authenticator: &[u8; 16],
    salt: [u8; 2],
) -> Vec<u8> {
    let salt = [salt[0] | 0x80, salt[1]];
    let mut plain = vec![data.len() as u8];
    plain.extend(data);
    plain.resize(plain.len().div_ceil(16) * 16, 0);
    let mut out = salt.to_vec();
    out.extend(md5_chain(
        secret,
        &[request_authenticator, &salt],
        &plain,
        true,
    ));
    out
}

/// Inverse of [`salt_encrypt`] (tests and clients).
pub fn salt_decrypt(
    value: &[u8],
    secret: &[u8],
    request_authenticator: &[u8; 16],
) -> Option<Vec<u8>> {
    if value.len() < 18 || (value.len() - 2) % 16 != 0 {
        return None;
    }
    let (salt, cipher) = value.split_at(2);
    let plain = md5_chain(secret, &[request_authenticator, salt], cipher, false);
    let len = *plain.first()? as usize;
    plain.get(1..1 + len).map(<[u8]>::to_vec)
}

#[cfg(test)]
mod tests;
