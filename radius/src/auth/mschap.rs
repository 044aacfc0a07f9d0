//! MS-CHAPv2 (RFC 2759) and MPPE key derivation (RFC 3079 §3), server side.

use des::cipher::{BlockEncrypt, KeyInit};
use des::Des;
use sha1::{Digest, Sha1};
use subtle::ConstantTimeEq;

/// RFC 2759 §8.2: SHA-1 of both challenges and the user name (domain prefix stripped), 8 octets.
pub fn challenge_hash(
    peer_challenge: &[u8; 16],
    authenticator_challenge: &[u8; 16],
    user_name: &[u8],
) -> [u8; 8] {
    let name = match user_name.iter().rposition(|&b| b == b'\\') {
        Some(i) => &user_name[i + 1..],
        None => user_name,
    };
    let mut h = Sha1::new();
    h.update(peer_challenge);
    h.update(authenticator_challenge);
    h.update(name);
    h.finalize()[..8].try_into().expect("8 of 20")
}

/// Spreads 7 key octets over 8 DES key octets (parity bits unused).
fn des_key(k: &[u8]) -> [u8; 8] {
    [
        k[0],
        (k[0] << 7) | (k[1] >> 1),
        (k[1] << 6) | (k[2] >> 2),
        (k[2] << 5) | (k[3] >> 3),
        (k[3] << 4) | (k[4] >> 4),
        (k[4] << 3) | (k[5] >> 5),
        (k[5] << 2) | (k[6] >> 6),
        k[6] << 1,
    ]
}

/// RFC 2759 §8.5 ChallengeResponse: DES of the challenge under three keys cut from the
/// zero-padded 21-octet hash.
pub fn challenge_response(challenge: &[u8; 8], password_hash: &[u8; 16]) -> [u8; 24] {
    let mut z = [0u8; 21];
    z[..16].copy_from_slice(password_hash);
    let mut out = [0u8; 24];
    for i in 0..3 {
        let cipher = Des::new_from_slice(&des_key(&z[i * 7..i * 7 + 7])).expect("8-octet key");
        let mut block = des::cipher::generic_array::GenericArray::clone_from_slice(challenge);
        cipher.encrypt_block(&mut block);
        out[i * 8..i * 8 + 8].copy_from_slice(&block);
    }
    out
}

/// RFC 2759 §8.1 GenerateNTResponse.
pub fn nt_response(
    authenticator_challenge: &[u8; 16],
    peer_challenge: &[u8; 16],
    user_name: &[u8],
    nt_hash: &[u8; 16],
) -> [u8; 24] {
    challenge_response(
        &challenge_hash(peer_challenge, authenticator_challenge, user_name),
        nt_hash,
    )
}

fn md4(data: &[u8]) -> [u8; 16] {
    use md4::Digest as _;
    md4::Md4::digest(data).into()
}

const MAGIC1: &[u8] = b"Magic server to client signing constant";
const MAGIC2: &[u8] = b"Pad to make it do more than one iteration";

/// RFC 2759 §8.7 GenerateAuthenticatorResponse: `S=` and 40 upper-case hex digits.
pub fn authenticator_response(
    nt_hash: &[u8; 16],
    nt_response: &[u8; 24],
    peer_challenge: &[u8; 16],
    authenticator_challenge: &[u8; 16],
    user_name: &[u8],
) -> String {
    let hash_hash = md4(nt_hash);
    let mut h = Sha1::new();
    h.update(hash_hash);
    h.update(nt_response);
    h.update(MAGIC1);
    let digest = h.finalize();
    let challenge = challenge_hash(peer_challenge, authenticator_challenge, user_name);
    let mut h = Sha1::new();
    h.update(digest);
    h.update(challenge);
    h.update(MAGIC2);
    format!("S={}", hex::encode_upper(h.finalize()))
}

/// Verifies a peer's NT-Response in constant time.
/// Checks an NT-Response and, if it is right, returns the authenticator response ("S=…") the
/// peer expects back (EAP-MS-CHAPv2 inside PEAP, MS-CHAP2-Success inside TTLS).
pub fn check(
    authenticator_challenge: &[u8; 16],
    peer_challenge: &[u8; 16],
    user_name: &[u8],
    nt_hash: &[u8; 16],
    nt_response: &[u8; 24],
) -> Option<String> {
    verify(
        authenticator_challenge,
        peer_challenge,
        user_name,
        nt_hash,
        nt_response,
    )
    .then(|| {
        authenticator_response(
            nt_hash,
            nt_response,
            peer_challenge,
            authenticator_challenge,
            user_name,
        )
    })
}

pub fn verify(
    authenticator_challenge: &[u8; 16],
    peer_challenge: &[u8; 16],
    user_name: &[u8],
    nt_hash: &[u8; 16],
    received: &[u8; 24],
) -> bool {
    let expected = nt_response(authenticator_challenge, peer_challenge, user_name, nt_hash);
    bool::from(expected.ct_eq(received))
}

/// RFC 3079 §3.4 GetMasterKey.
pub fn master_key(nt_hash: &[u8; 16], nt_response: &[u8; 24]) -> [u8; 16] {
    let mut h = Sha1::new();
    h.update(md4(nt_hash));
    h.update(nt_response);
    h.update(b"This is the MPPE Master Key");
    h.finalize()[..16].try_into().expect("16 of 20")
}

const KEY_MAGIC2: &[u8] =
    b"On the client side, this is the send key; on the server side, it is the receive key.";
const KEY_MAGIC3: &[u8] =
    b"On the client side, this is the receive key; on the server side, it is the send key.";

/// RFC 3079 §3.4 GetAsymmetricStartKey, 128-bit.
pub fn asymmetric_start_key(master: &[u8; 16], is_send: bool, is_server: bool) -> [u8; 16] {
    let magic = if is_send == is_server {
        KEY_MAGIC3
    } else {
        KEY_MAGIC2
    };
    let mut h = Sha1::new();
    h.update(master);
    h.update([0u8; 40]);
    h.update(magic);
    h.update([0xf2u8; 40]);
    h.finalize()[..16].try_into().expect("16 of 20")
}

/// The server's (MS-MPPE-Send-Key, MS-MPPE-Recv-Key) for a successful MS-CHAPv2 exchange.
pub fn mppe_keys(nt_hash: &[u8; 16], nt_response: &[u8; 24]) -> ([u8; 16], [u8; 16]) {
    let master = master_key(nt_hash, nt_response);
    (
        asymmetric_start_key(&master, true, true),
        asymmetric_start_key(&master, false, true),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h<const N: usize>(s: &str) -> [u8; N] {
        hex::decode(s.replace(' ', "")).unwrap().try_into().unwrap()
    }

    /// RFC 2759 §9.2 test vectors.
    #[test]
    fn rfc2759_vectors() {
        let auth: [u8; 16] = h("5B5D7C7D7B3F2F3E3C2C602132262628");
        let peer: [u8; 16] = h("21402324255E262A28295F2B3A337C7E");
        let nt = frontdesk_core::secrets::nt_hash("clientPass");
        assert_eq!(nt, h::<16>("44EBBA8D5312B8D611474411F56989AE"));
        assert_eq!(
            challenge_hash(&peer, &auth, b"User"),
            h::<8>("D02E4386BCE91226")
        );
        assert_eq!(
            challenge_hash(&peer, &auth, b"DOMAIN\\User"),
            h::<8>("D02E4386BCE91226")
        );
        let resp = nt_response(&auth, &peer, b"User", &nt);
        assert_eq!(
            resp,
            h::<24>("82309ECD8D708B5EA08FAA3981CD83544233114A3D85D6DF")
        );
        assert_eq!(md4(&nt), h::<16>("41C00C584BD2D91C4017A2A12FA59F3F"));
        assert_eq!(
            authenticator_response(&nt, &resp, &peer, &auth, b"User"),
            "S=407A5589115FD0D6209F510FE9C04566932CDA56"
        );
        assert!(verify(&auth, &peer, b"User", &nt, &resp));
        let mut bad = resp;
        bad[0] ^= 1;
        assert!(!verify(&auth, &peer, b"User", &nt, &bad));
    }

    /// RFC 3079 §3.5.3 sample key derivation (128-bit), same exchange as above.
    #[test]
    fn rfc3079_vectors() {
        let nt = frontdesk_core::secrets::nt_hash("clientPass");
        let resp: [u8; 24] = h("82309ECD8D708B5EA08FAA3981CD83544233114A3D85D6DF");
        let master = master_key(&nt, &resp);
        assert_eq!(master, h::<16>("FDECE3717A8C838CB388E527AE3CDD31"));
        // The RFC's SendStartKey128 is derived from the server's side (Magic3), as FreeRADIUS
        // does for MS-MPPE-Send-Key.
        assert_eq!(
            asymmetric_start_key(&master, true, true),
            h::<16>("8B7CDC149B993A1BA118CB153F56DCCB")
        );
        let (send, recv) = mppe_keys(&nt, &resp);
        assert_eq!(send, h::<16>("8B7CDC149B993A1BA118CB153F56DCCB"));
        // The client's send key is the server's receive key.
        assert_eq!(recv, asymmetric_start_key(&master, true, false));
    }
}
