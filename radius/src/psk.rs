//! Identity PSK, unbound mode: the access point does not know which passphrase a device uses,
//! so it forwards the 4-way handshake (ANonce from message 1, the whole EAPOL-Key message 2)
//! and the server finds the passphrase whose PMK makes message 2's MIC check out
//! (IEEE 802.11i-2004 §8.5.1.2 PTK derivation, §8.5.2 EAPOL-Key frames).
//!
//! Request shapes (FreeRADIUS dictionaries `dictionary.ruckus` and `dictionary.eleven`):
//! - Ruckus DPSK: vendor 25053, `DPSK-Params` TLV (153; rlm_dpsk's older source numbers it
//!   152, so both are read) with `.3` ANonce and `.4` EAPOL-Key frame; SSID in `Ruckus-SSID`
//!   (3), BSSID in `Ruckus-BSSID` (14).
//! - Cisco/Meraki Easy PSK (Eleven Software, vendor 52970): `Authentication-Find-Key` TLV (3)
//!   with `.1` EAPOL frame 2, `.2` ANonce, `.3` SSID, `.4` AP MAC, `.5` station MAC.

use crate::attr::vendor;
use crate::packet::Packet;
use frontdesk_core::MacAddr;
use hmac::{Hmac, Mac};
use sha1::Sha1;
use subtle::ConstantTimeEq;

pub type KeyedPmk = Hmac<Sha1>;

/// Eleven Software's vendor number (Cisco/Meraki Easy PSK).
pub const ELEVEN: u32 = 52970;
const ELEVEN_FIND_KEY: u8 = 3;
const RUCKUS_DPSK_PARAMS: [u8; 2] = [153, 152];
const RUCKUS_BSSID: u8 = 14;

/// Which dictionary the handshake came in (the answer is shaped to match).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shape {
    Ruckus,
    Eleven,
}

/// What a forwarded handshake carries, checked for shape.
#[derive(Debug)]
pub struct Handshake {
    pub shape: Shape,
    pub ssid: Option<String>,
    pub ap: MacAddr,
    pub station: MacAddr,
    pub anonce: [u8; 32],
    /// The EAPOL frame of message 2, as the station sent it.
    pub frame: Vec<u8>,
}

/// Why a forwarded handshake cannot be checked (the request is rejected, never a panic).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Bad {
    /// A TLV container whose sub-attributes do not parse.
    Malformed,
    MissingField(&'static str),
    AnonceLength,
    FrameLength,
    NotEapolKey,
    NotMessage2,
    /// Key descriptor version other than 2 (HMAC-SHA1-128 MIC, AES key wrap): WPA-TKIP
    /// (version 1) and 802.11w SHA-256 AKMs (version 3) are not supported.
    DescriptorVersion(u16),
}

impl std::fmt::Display for Bad {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Bad::Malformed => f.write_str("handshake attributes do not parse"),
            Bad::MissingField(what) => write!(f, "handshake without {what}"),
            Bad::AnonceLength => f.write_str("ANonce is not 32 bytes"),
            Bad::FrameLength => f.write_str("EAPOL-Key frame length does not add up"),
            Bad::NotEapolKey => f.write_str("not an EAPOL-Key frame"),
            Bad::NotMessage2 => f.write_str("not message 2 of the 4-way handshake"),
            Bad::DescriptorVersion(v) => write!(f, "key descriptor version {v} not supported"),
        }
    }
}

/// EAPOL header (4) + key descriptor up to the key data length (95).
const MIN_FRAME: usize = 99;
const NONCE: std::ops::Range<usize> = 17..49;
const MIC: std::ops::Range<usize> = 81..97;
/// An EAPOL-Key frame larger than this is not a message 2 (key data is an RSN IE, ≤ 257).
const MAX_FRAME: usize = 512;

/// Sub-attributes of a TLV-typed VSA: (type, value) pairs; `None` when they do not parse.
fn tlvs(mut v: &[u8]) -> Option<Vec<(u8, &[u8])>> {
    let mut out = Vec::new();
    while !v.is_empty() {
        let (&t, rest) = v.split_first()?;
        let (&len, _) = rest.split_first()?;
        let len = usize::from(len);
        if len < 2 || len > v.len() {
            return None;
        }
        out.push((t, &v[2..len]));
        v = &v[len..];
    }
    Some(out)
}

fn mac6(v: &[u8]) -> Option<MacAddr> {
    let b: [u8; 6] = v.try_into().ok()?;
    Some(MacAddr(b))
}

/// Finds a forwarded handshake in the request: `None` when it carries none (an ordinary
/// request), `Some(Err)` when it carries a malformed one.
pub fn from_request<V: AsRef<[u8]>>(
    req: &Packet<V>,
    station: Option<MacAddr>,
    called: (Option<MacAddr>, Option<&str>),
) -> Option<Result<Handshake, Bad>> {
    let mut anonce = None;
    let mut frame = None;
    let mut ssid = None;
    let mut ap = None;
    let mut sta = None;
    let mut shape = None;
    for (v, t, value) in req.vsas() {
        match (v, t) {
            (vendor::RUCKUS, t) if RUCKUS_DPSK_PARAMS.contains(&t) => {
                shape = Some(Shape::Ruckus);
                let Some(items) = tlvs(value) else {
                    return Some(Err(Bad::Malformed));
                };
                for (sub, val) in items {
                    match sub {
                        3 => anonce = Some(val),
                        4 => frame = Some(val),
                        _ => {}
                    }
                }
            }
            (vendor::RUCKUS, vendor::ruckus::SSID) => {
                ssid = Some(String::from_utf8_lossy(value).into_owned())
            }
            (vendor::RUCKUS, RUCKUS_BSSID) => ap = mac6(value),
            (ELEVEN, ELEVEN_FIND_KEY) => {
                shape = Some(Shape::Eleven);
                let Some(items) = tlvs(value) else {
                    return Some(Err(Bad::Malformed));
                };
                for (sub, val) in items {
                    match sub {
                        1 => frame = Some(val),
                        2 => anonce = Some(val),
                        3 => ssid = Some(String::from_utf8_lossy(val).into_owned()),
                        4 => ap = mac6(val),
                        5 => sta = mac6(val),
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }
    let shape = shape?;
    Some((|| {
        let anonce: [u8; 32] = anonce
            .ok_or(Bad::MissingField("ANonce"))?
            .try_into()
            .map_err(|_| Bad::AnonceLength)?;
        let frame = frame.ok_or(Bad::MissingField("EAPOL-Key frame"))?;
        check_message2(frame)?;
        Ok(Handshake {
            shape,
            ssid: ssid.or_else(|| called.1.map(str::to_owned)),
            ap: ap.or(called.0).ok_or(Bad::MissingField("AP MAC"))?,
            station: sta.or(station).ok_or(Bad::MissingField("station MAC"))?,
            anonce,
            frame: frame.to_vec(),
        })
    })())
}

/// Checks that `frame` is an EAPOL-Key message 2 we can verify (§8.5.2, §8.5.3.2).
pub fn check_message2(frame: &[u8]) -> Result<(), Bad> {
    if frame.len() < MIN_FRAME || frame.len() > MAX_FRAME {
        return Err(Bad::FrameLength);
    }
    // Header: protocol version, packet type 3 (EAPOL-Key), body length.
    if frame[1] != 3 {
        return Err(Bad::NotEapolKey);
    }
    let body = usize::from(u16::from_be_bytes([frame[2], frame[3]]));
    let key_data = usize::from(u16::from_be_bytes([frame[97], frame[98]]));
    if 4 + body != frame.len() || MIN_FRAME + key_data != frame.len() {
        return Err(Bad::FrameLength);
    }
    // Descriptor type 2 (RSN) or 254 (WPA).
    if frame[4] != 2 && frame[4] != 254 {
        return Err(Bad::NotEapolKey);
    }
    let info = u16::from_be_bytes([frame[5], frame[6]]);
    let version = info & 0x7;
    if version != 2 {
        return Err(Bad::DescriptorVersion(version));
    }
    // Message 2: pairwise, MIC set, ACK, Install and Secure clear.
    const PAIRWISE: u16 = 1 << 3;
    const INSTALL: u16 = 1 << 6;
    const ACK: u16 = 1 << 7;
    const MIC_SET: u16 = 1 << 8;
    const SECURE: u16 = 1 << 9;
    if info & (PAIRWISE | MIC_SET) != (PAIRWISE | MIC_SET) || info & (INSTALL | ACK | SECURE) != 0 {
        return Err(Bad::NotMessage2);
    }
    Ok(())
}

/// The PMK keyed into HMAC-SHA1 once, so a check costs no key schedule for it.
pub fn keyed(pmk: &[u8; 32]) -> KeyedPmk {
    KeyedPmk::new_from_slice(pmk).expect("HMAC takes any key length")
}

/// What every candidate PMK is checked against: the PRF input and the frame with its MIC
/// zeroed, built once per request.
pub struct Check {
    prf_input: Vec<u8>,
    zeroed: Vec<u8>,
    mic: [u8; 16],
}

impl Check {
    pub fn new(h: &Handshake) -> Check {
        let (aa, spa) = (h.ap.0, h.station.0);
        let snonce = &h.frame[NONCE];
        // PRF-384(PMK, "Pairwise key expansion", Min(AA,SPA) ‖ Max(AA,SPA) ‖
        // Min(ANonce,SNonce) ‖ Max(ANonce,SNonce)): the KCK is its first 16 octets, so only
        // the first HMAC block (counter 0) is needed.
        let mut prf_input = b"Pairwise key expansion\0".to_vec();
        let (lo, hi) = if aa <= spa { (aa, spa) } else { (spa, aa) };
        prf_input.extend(lo);
        prf_input.extend(hi);
        let (lo, hi) = if h.anonce[..] <= *snonce {
            (&h.anonce[..], snonce)
        } else {
            (snonce, &h.anonce[..])
        };
        prf_input.extend(lo);
        prf_input.extend(hi);
        prf_input.push(0);
        let mut zeroed = h.frame.clone();
        zeroed[MIC].fill(0);
        Check {
            prf_input,
            zeroed,
            mic: h.frame[MIC].try_into().expect("16"),
        }
    }

    /// Does this PMK produce message 2's MIC? Constant time in the MIC comparison.
    pub fn matches(&self, pmk: &KeyedPmk) -> bool {
        let mut prf = pmk.clone();
        prf.update(&self.prf_input);
        let block = prf.finalize().into_bytes();
        let mut mic = Hmac::<Sha1>::new_from_slice(&block[..16]).expect("any key length");
        mic.update(&self.zeroed);
        bool::from(mic.finalize().into_bytes()[..16].ct_eq(&self.mic))
    }

    /// The SNonce, with the ANonce the key for replay detection.
    pub fn nonces(&self) -> [u8; 64] {
        let mut n = [0u8; 64];
        n.copy_from_slice(&self.prf_input[35..99]);
        n
    }
}

/// A station's side of the handshake, for tests, benchmarks and `frontdesk` self-checks:
/// builds message 2 the way a supplicant does (IEEE 802.11i §8.5.3.2), written apart from the
/// checking code above (full PRF-384, frame assembled field by field).
pub mod station {
    use hmac::{Hmac, Mac};
    use sha1::Sha1;

    /// PRF-384 (IEEE 802.11i §8.5.1.1): HMAC-SHA1(K, A ‖ 0 ‖ B ‖ i) for i = 0, 1, 2.
    pub fn prf384(key: &[u8], label: &[u8], data: &[u8]) -> [u8; 48] {
        let mut out = Vec::with_capacity(60);
        for i in 0u8..3 {
            let mut h = Hmac::<Sha1>::new_from_slice(key).expect("any key length");
            h.update(label);
            h.update(&[0]);
            h.update(data);
            h.update(&[i]);
            out.extend(h.finalize().into_bytes());
        }
        out[..48].try_into().expect("60 >= 48")
    }

    /// The PTK a station derives; the KCK is its first 16 octets.
    pub fn ptk(
        pmk: &[u8; 32],
        aa: [u8; 6],
        spa: [u8; 6],
        anonce: &[u8; 32],
        snonce: &[u8; 32],
    ) -> [u8; 48] {
        let mut data = Vec::with_capacity(76);
        data.extend(aa.min(spa));
        data.extend(aa.max(spa));
        data.extend(anonce.min(snonce));
        data.extend(anonce.max(snonce));
        prf384(pmk, b"Pairwise key expansion", &data)
    }

    /// EAPOL-Key message 2 with an RSN IE (WPA2-PSK, CCMP) and a correct MIC.
    pub fn message2(
        pmk: &[u8; 32],
        aa: [u8; 6],
        spa: [u8; 6],
        anonce: &[u8; 32],
        snonce: &[u8; 32],
    ) -> Vec<u8> {
        let rsn_ie: [u8; 22] = [
            0x30, 0x14, 0x01, 0x00, 0x00, 0x0f, 0xac, 0x04, 0x01, 0x00, 0x00, 0x0f, 0xac, 0x04,
            0x01, 0x00, 0x00, 0x0f, 0xac, 0x02, 0x00, 0x00,
        ];
        let mut body = vec![2u8]; // descriptor type: RSN
        body.extend(0x010au16.to_be_bytes()); // key info: version 2, pairwise, MIC
        body.extend(16u16.to_be_bytes()); // key length
        body.extend(1u64.to_be_bytes()); // replay counter
        body.extend(snonce);
        body.extend([0u8; 16]); // key IV
        body.extend([0u8; 8]); // RSC
        body.extend([0u8; 8]); // reserved
        body.extend([0u8; 16]); // MIC, filled below
        body.extend((rsn_ie.len() as u16).to_be_bytes());
        body.extend(rsn_ie);
        let mut frame = vec![1u8, 3];
        frame.extend((body.len() as u16).to_be_bytes());
        frame.extend(body);
        let kck = &ptk(pmk, aa, spa, anonce, snonce)[..16];
        let mut h = Hmac::<Sha1>::new_from_slice(kck).expect("any key length");
        h.update(&frame);
        let mic = h.finalize().into_bytes();
        frame[81..97].copy_from_slice(&mic[..16]);
        frame
    }

    /// A TLV container value: (sub-type, value) pairs.
    pub fn tlv(items: &[(u8, &[u8])]) -> Vec<u8> {
        let mut v = Vec::new();
        for (t, val) in items {
            v.push(*t);
            v.push(val.len() as u8 + 2);
            v.extend(*val);
        }
        v
    }
}

#[cfg(test)]
mod tests;
