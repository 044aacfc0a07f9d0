//! Time-based one-time passwords (RFC 6238 over RFC 4226's HOTP, HMAC-SHA1, 30 s, 6 digits),
//! as every authenticator app implements them, and recovery codes.

use hmac::{Hmac, Mac};
use rand::RngCore;
use sha1::Sha1;
use subtle::ConstantTimeEq;

pub const STEP_SECS: i64 = 30;

pub fn new_secret() -> [u8; 20] {
    let mut s = [0u8; 20];
    rand::thread_rng().fill_bytes(&mut s);
    s
}

/// RFC 4648 base32 without padding (what `otpauth://` URIs carry).
pub fn base32(data: &[u8]) -> String {
    const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut out = String::with_capacity(data.len().div_ceil(5) * 8);
    let (mut buf, mut bits) = (0u32, 0u32);
    for &b in data {
        buf = (buf << 8) | u32::from(b);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(ALPHABET[((buf >> bits) & 31) as usize] as char);
        }
    }
    if bits > 0 {
        out.push(ALPHABET[((buf << (5 - bits)) & 31) as usize] as char);
    }
    out
}

/// Decodes RFC 4648 base32 (no padding, case-insensitive); `None` on other characters.
pub fn base32_decode(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len() * 5 / 8);
    let (mut buf, mut bits) = (0u32, 0u32);
    for ch in text.trim().bytes() {
        let v = match ch.to_ascii_uppercase() {
            c @ b'A'..=b'Z' => c - b'A',
            c @ b'2'..=b'7' => c - b'2' + 26,
            _ => return None,
        };
        buf = (buf << 5) | u32::from(v);
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push((buf >> bits) as u8);
        }
    }
    Some(out)
}

/// HOTP value for a counter, `digits` long (RFC 4226 §5.3 dynamic truncation).
pub fn hotp(secret: &[u8], counter: u64, digits: u32) -> u32 {
    let mut mac = <Hmac<Sha1> as Mac>::new_from_slice(secret).expect("any key length");
    mac.update(&counter.to_be_bytes());
    let h = mac.finalize().into_bytes();
    let offset = (h[19] & 0x0f) as usize;
    let bin = (u32::from(h[offset]) & 0x7f) << 24
        | u32::from(h[offset + 1]) << 16
        | u32::from(h[offset + 2]) << 8
        | u32::from(h[offset + 3]);
    bin % 10u32.pow(digits)
}

/// Checks a 6-digit code at `now` (one step of clock drift either way). Returns the step it
/// matched, which must be later than `last_step` (a code is good once).
pub fn verify(secret: &[u8], code: &str, now: i64, last_step: i64) -> Option<i64> {
    let code = code.trim().replace(' ', "");
    if code.len() != 6 || !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let step = now.div_euclid(STEP_SECS);
    let mut found = None;
    for s in [step - 1, step, step + 1] {
        if s <= last_step || s < 0 {
            continue;
        }
        let want = format!("{:06}", hotp(secret, s as u64, 6));
        // Every candidate is compared, so timing does not say which step matched.
        if bool::from(want.as_bytes().ct_eq(code.as_bytes())) && found.is_none() {
            found = Some(s);
        }
    }
    found
}

/// The URI authenticator apps take from the QR code.
pub fn uri(issuer: &str, account: &str, secret: &[u8]) -> String {
    let enc = |s: &str| {
        serde_urlencoded::to_string([("v", s)]).unwrap_or_default()[2..].replace('+', "%20")
    };
    format!(
        "otpauth://totp/{}:{}?secret={}&issuer={}&algorithm=SHA1&digits=6&period=30",
        enc(issuer),
        enc(account),
        base32(secret),
        enc(issuer)
    )
}

/// The QR code of `text` as an inline SVG element.
pub fn qr_svg(text: &str) -> String {
    match qrcode::QrCode::new(text.as_bytes()) {
        Ok(code) => code
            .render::<qrcode::render::svg::Color>()
            .min_dimensions(200, 200)
            .quiet_zone(true)
            .build(),
        Err(_) => String::new(),
    }
}

/// Ten recovery codes like `k3f9-2hx7`, for when the phone is lost; each works once.
pub fn recovery_codes() -> Vec<String> {
    const ALPHABET: &[u8] = b"23456789abcdefghjkmnpqrstuvwxyz";
    let mut rng = rand::thread_rng();
    (0..10)
        .map(|_| {
            let mut b = [0u8; 8];
            rng.fill_bytes(&mut b);
            let c: String = b
                .iter()
                .map(|x| ALPHABET[*x as usize % ALPHABET.len()] as char)
                .collect();
            format!("{}-{}", &c[..4], &c[4..])
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc6238_vectors_and_base32() {
        // RFC 6238 Appendix B, SHA-1 key "12345678901234567890" (8-digit values there).
        let key = b"12345678901234567890";
        for (t, want) in [
            (59i64, 94287082u32),
            (1111111109, 7081804),
            (1111111111, 14050471),
            (1234567890, 89005924),
            (2000000000, 69279037),
        ] {
            assert_eq!(hotp(key, (t / 30) as u64, 8), want, "T={t}");
        }
        assert_eq!(base32(b"foobar"), "MZXW6YTBOI");
        assert_eq!(base32(key), "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ");
        assert_eq!(
            base32_decode("gezdgnbvgy3tqojqgezdgnbvgy3tqojq").unwrap(),
            key
        );
        assert_eq!(base32_decode("MZXW6YTBOI").unwrap(), b"foobar");
        assert!(base32_decode("0OO1").is_none());
    }

    #[test]
    fn codes_are_good_once_and_within_one_step() {
        let key = b"12345678901234567890";
        let now = 1_234_567_890;
        let code = format!("{:06}", hotp(key, (now / 30) as u64, 6));
        let step = verify(key, &code, now, 0).expect("valid now");
        assert_eq!(verify(key, &code, now, step), None, "replay refused");
        assert!(
            verify(key, &code, now + 30, 0).is_some(),
            "one step late is fine"
        );
        assert!(
            verify(key, &code, now + 90, 0).is_none(),
            "three steps late is not"
        );
        assert!(verify(key, "12345", now, 0).is_none());
        assert!(verify(key, "abcdef", now, 0).is_none());
        assert!(uri("Lab", "a@b.c", key).starts_with("otpauth://totp/Lab:a%40b.c?secret=GEZD"));
        assert!(qr_svg("otpauth://totp/x").contains("<svg"));
        let codes = recovery_codes();
        assert_eq!(codes.len(), 10);
        assert!(codes.iter().all(|c| c.len() == 9));
    }
}
