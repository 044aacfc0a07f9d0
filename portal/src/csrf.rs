//! Stateless form tokens: HMAC-SHA256 over (purpose, client address, issue time), valid for an
//! hour. No cookie is needed, which matters on captive portals: phones show them in a
//! mini-browser whose cookies are isolated and thrown away. A cross-site page cannot read a
//! token, and a token taken from one client is useless from another address.

use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::net::IpAddr;
use subtle::ConstantTimeEq;

pub const LIFETIME_SECS: i64 = 3600;

pub struct Tokens {
    key: [u8; 32],
}

impl Tokens {
    pub fn new(key: [u8; 32]) -> Tokens {
        Tokens { key }
    }

    fn mac(&self, purpose: &str, ip: IpAddr, at: i64) -> [u8; 32] {
        let mut m = <Hmac<Sha256> as Mac>::new_from_slice(&self.key).expect("any key length");
        m.update(purpose.as_bytes());
        m.update(b"\0");
        m.update(ip.to_string().as_bytes());
        m.update(b"\0");
        m.update(&at.to_be_bytes());
        m.finalize().into_bytes().into()
    }

    fn mac_bytes(&self, purpose: &str, payload: &[u8]) -> [u8; 32] {
        let mut m = <Hmac<Sha256> as Mac>::new_from_slice(&self.key).expect("any key length");
        m.update(purpose.as_bytes());
        m.update(b"\0");
        m.update(payload);
        m.finalize().into_bytes().into()
    }

    /// `payload` carried by the client and signed (not hidden): `hex(payload).hex(mac)`.
    pub fn seal(&self, purpose: &str, payload: &[u8]) -> String {
        format!(
            "{}.{}",
            hex::encode(payload),
            hex::encode(self.mac_bytes(purpose, payload))
        )
    }

    /// The payload of a token from [`Tokens::seal`] for the same purpose, if untouched.
    pub fn open(&self, purpose: &str, token: &str) -> Option<Vec<u8>> {
        let (payload, sig) = token.split_once('.')?;
        let payload = hex::decode(payload).ok()?;
        let sig = hex::decode(sig).ok()?;
        (sig.len() == 32 && bool::from(sig.ct_eq(&self.mac_bytes(purpose, &payload))))
            .then_some(payload)
    }

    pub fn issue(&self, purpose: &str, ip: IpAddr, now: i64) -> String {
        format!("{now}.{}", hex::encode(self.mac(purpose, ip, now)))
    }

    pub fn check(&self, purpose: &str, ip: IpAddr, token: &str, now: i64) -> bool {
        let Some((at, sig)) = token.split_once('.') else {
            return false;
        };
        let Ok(at) = at.parse::<i64>() else {
            return false;
        };
        if !(0..=LIFETIME_SECS).contains(&(now - at)) {
            return false;
        }
        let Ok(sig) = hex::decode(sig) else {
            return false;
        };
        sig.len() == 32 && bool::from(sig.ct_eq(&self.mac(purpose, ip, at)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_bind_purpose_address_and_time() {
        let t = Tokens::new([7; 32]);
        let ip: IpAddr = "10.30.0.5".parse().unwrap();
        let tok = t.issue("login", ip, 1000);
        assert!(t.check("login", ip, &tok, 1000));
        assert!(t.check("login", ip, &tok, 1000 + LIFETIME_SECS));
        assert!(!t.check("login", ip, &tok, 1001 + LIFETIME_SECS));
        assert!(!t.check("login", ip, &tok, 999));
        assert!(!t.check("accept", ip, &tok, 1000));
        assert!(!t.check("login", "10.30.0.6".parse().unwrap(), &tok, 1000));
        assert!(!Tokens::new([8; 32]).check("login", ip, &tok, 1000));
        for bad in ["", ".", "1000.", "x.00", "1000.zz", &tok[..tok.len() - 2]] {
            assert!(!t.check("login", ip, bad, 1000), "{bad:?}");
        }
    }
}
