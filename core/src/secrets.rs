//! Secrets at rest.
//!
//! Wi-Fi passwords must stay recoverable (CHAP needs the cleartext, MS-CHAPv2 the NT hash), so a
//! member's password is stored as its NT hash plus a ChaCha20-Poly1305 encrypted copy under a
//! 256-bit key kept outside the database in a 0600 file. Operator logins use argon2id.
//! The database records a check value so a wrong key file is detected instead of silently
//! producing garbage.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use chacha20poly1305::aead::{Aead, KeyInit};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use md4::{Digest, Md4};
use rand::{rngs::OsRng, Rng, RngCore};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

const CHECK_PLAINTEXT: &[u8] = b"frontdesk secrets key check v1";

#[derive(Debug, thiserror::Error)]
pub enum SecretsError {
    #[error("secrets key file {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("secrets key file {0} is malformed: expected 64 hex digits")]
    Malformed(String),
    #[error("secrets key file {0} does not belong to this database (it cannot decrypt its secrets); use the key file created by `frontdesk init` for this database")]
    WrongKey(String),
    #[error("a stored secret could not be decrypted (corrupt value or wrong key)")]
    Decrypt,
}

/// The symmetric key protecting recoverable secrets.
#[derive(Clone)]
pub struct SecretKey([u8; 32]);

impl std::fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretKey(..)")
    }
}

impl SecretKey {
    pub fn generate() -> Self {
        let mut k = [0u8; 32];
        OsRng.fill_bytes(&mut k);
        SecretKey(k)
    }

    pub fn from_hex(text: &str, path: &str) -> Result<Self, SecretsError> {
        let bytes = hex::decode(text.trim()).map_err(|_| SecretsError::Malformed(path.into()))?;
        let k: [u8; 32] = bytes
            .try_into()
            .map_err(|_| SecretsError::Malformed(path.into()))?;
        Ok(SecretKey(k))
    }

    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    pub fn load(path: &Path) -> Result<Self, SecretsError> {
        let text = std::fs::read_to_string(path).map_err(|source| SecretsError::Io {
            path: path.display().to_string(),
            source,
        })?;
        Self::from_hex(&text, &path.display().to_string())
    }

    /// Writes the key to a new file with mode 0600; never overwrites.
    pub fn write_new(&self, path: &Path) -> Result<(), SecretsError> {
        let io = |source| SecretsError::Io {
            path: path.display().to_string(),
            source,
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
            .map_err(io)?;
        writeln!(f, "{}", self.to_hex()).map_err(io)?;
        f.sync_all().map_err(io)
    }

    pub fn encrypt(&self, plaintext: &[u8]) -> String {
        let cipher = ChaCha20Poly1305::new(Key::from_slice(&self.0));
        let mut nonce = [0u8; 12];
        rand::thread_rng().fill_bytes(&mut nonce);
        let ct = cipher
            .encrypt(Nonce::from_slice(&nonce), plaintext)
            .expect("chacha20poly1305 encryption cannot fail for in-memory buffers");
        let mut out = nonce.to_vec();
        out.extend(ct);
        format!("v1:{}", hex::encode(out))
    }

    pub fn decrypt(&self, stored: &str) -> Result<Vec<u8>, SecretsError> {
        let raw = stored
            .strip_prefix("v1:")
            .and_then(|h| hex::decode(h).ok())
            .filter(|r| r.len() > 12)
            .ok_or(SecretsError::Decrypt)?;
        let cipher = ChaCha20Poly1305::new(Key::from_slice(&self.0));
        cipher
            .decrypt(Nonce::from_slice(&raw[..12]), &raw[12..])
            .map_err(|_| SecretsError::Decrypt)
    }

    /// Binary form of `encrypt` for files: nonce(12) ‖ ciphertext with its tag.
    pub fn seal_bytes(&self, plaintext: &[u8]) -> Vec<u8> {
        let cipher = ChaCha20Poly1305::new(Key::from_slice(&self.0));
        let mut out = vec![0u8; 12];
        rand::thread_rng().fill_bytes(&mut out);
        let ct = cipher
            .encrypt(Nonce::from_slice(&out), plaintext)
            .expect("chacha20poly1305 encryption cannot fail for in-memory buffers");
        out.extend(ct);
        out
    }

    pub fn open_bytes(&self, sealed: &[u8]) -> Result<Vec<u8>, SecretsError> {
        if sealed.len() <= 12 {
            return Err(SecretsError::Decrypt);
        }
        let cipher = ChaCha20Poly1305::new(Key::from_slice(&self.0));
        cipher
            .decrypt(Nonce::from_slice(&sealed[..12]), &sealed[12..])
            .map_err(|_| SecretsError::Decrypt)
    }

    pub fn decrypt_string(&self, stored: &str) -> Result<String, SecretsError> {
        String::from_utf8(self.decrypt(stored)?).map_err(|_| SecretsError::Decrypt)
    }

    /// The value stored in the database to recognise this key later.
    pub fn check_value(&self) -> String {
        self.encrypt(CHECK_PLAINTEXT)
    }

    pub fn matches(&self, check: &str) -> bool {
        self.decrypt(check).is_ok_and(|p| p == CHECK_PLAINTEXT)
    }
}

/// NT hash (MD4 of the UTF-16LE password), RFC 2759 §8.3 `NtPasswordHash`.
pub fn nt_hash(password: &str) -> [u8; 16] {
    let utf16: Vec<u8> = password.encode_utf16().flat_map(u16::to_le_bytes).collect();
    Md4::digest(&utf16).into()
}

/// Letters and digits that cannot be confused when typed on a phone (no 0/o, 1/l/i).
const READABLE: &[u8] = b"abcdefghjkmnpqrstuvwxyz23456789";

/// A private Wi-Fi passphrase (WPA2-Personal, 8–63 printable ASCII): 16 readable characters
/// in groups of four (about 79 bits), easy to type on a TV remote.
pub fn generate_passphrase() -> String {
    grouped(16, 4, READABLE)
}

/// A Wi-Fi password: 12 readable characters in groups of four (about 59 bits).
pub fn generate_wifi_password() -> String {
    grouped(12, 4, READABLE)
}

/// A voucher code: 10 upper-case readable characters, `XXXXX-XXXXX` (about 49 bits).
pub fn generate_voucher_code() -> String {
    grouped(10, 5, b"ABCDEFGHJKMNPQRSTUVWXYZ23456789")
}

/// A one-time operator password (argon2id-hashed before storage).
pub fn generate_admin_password() -> String {
    grouped(20, 5, READABLE)
}

fn grouped(len: usize, group: usize, alphabet: &[u8]) -> String {
    // thread_rng is a CSPRNG (ChaCha) seeded from the OS; one syscall per password would make
    // a 100k-member import measurably slower.
    let mut rng = rand::thread_rng();
    let mut out = String::with_capacity(len + len / group);
    for i in 0..len {
        if i > 0 && i % group == 0 {
            out.push('-');
        }
        out.push(alphabet[rng.gen_range(0..alphabet.len())] as char);
    }
    out
}

pub fn hash_login_password(password: &str) -> String {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .expect("argon2id with default parameters")
        .to_string()
}

/// Constant-time verification (argon2 compares digests in constant time).
pub fn verify_login_password(password: &str, stored: &str) -> bool {
    PasswordHash::new(stored).is_ok_and(|h| {
        Argon2::default()
            .verify_password(password.as_bytes(), &h)
            .is_ok()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nt_hash_matches_rfc2759_vector() {
        // RFC 2759 §9.2: password "clientPass".
        assert_eq!(
            hex::encode(nt_hash("clientPass")),
            "44ebba8d5312b8d611474411f56989ae"
        );
    }

    #[test]
    fn encrypt_round_trip_and_wrong_key() {
        let k = SecretKey::generate();
        let c = k.encrypt(b"hunter22");
        assert_eq!(k.decrypt(&c).unwrap(), b"hunter22");
        assert!(k.matches(&k.check_value()));
        let other = SecretKey::generate();
        assert!(other.decrypt(&c).is_err());
        assert!(!other.matches(&k.check_value()));
        assert!(k.decrypt("v1:zz").is_err());
    }

    #[test]
    fn key_file_is_private_and_never_overwritten() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("k");
        let k = SecretKey::generate();
        k.write_new(&p).unwrap();
        assert_eq!(
            std::fs::metadata(&p).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert!(SecretKey::generate().write_new(&p).is_err());
        assert_eq!(SecretKey::load(&p).unwrap().to_hex(), k.to_hex());
    }

    #[test]
    fn passwords() {
        let p = generate_wifi_password();
        assert_eq!(p.len(), 14);
        let h = hash_login_password("correct horse");
        assert!(h.starts_with("$argon2id$"));
        assert!(verify_login_password("correct horse", &h));
        assert!(!verify_login_password("wrong", &h));
        assert_eq!(generate_voucher_code().len(), 11);
    }
}

/// The WPA2-Personal pairwise master key of a passphrase on an SSID (IEEE 802.11i, H.4:
/// PBKDF2-HMAC-SHA1, the SSID as salt, 4096 rounds, 32 bytes). About 5 ms: computed once,
/// when a passphrase is issued, and kept sealed.
pub fn wpa_pmk(passphrase: &str, ssid: &str) -> [u8; 32] {
    let mut pmk = [0u8; 32];
    pbkdf2::pbkdf2_hmac::<sha1::Sha1>(passphrase.as_bytes(), ssid.as_bytes(), 4096, &mut pmk);
    pmk
}

#[cfg(test)]
mod wpa_tests {
    /// IEEE 802.11i-2004 Annex H.4.1 test vectors.
    #[test]
    fn pmk_matches_the_standards_vectors() {
        assert_eq!(
            hex::encode(super::wpa_pmk("password", "IEEE")),
            "f42c6fc52df0ebef9ebb4b90b38a5f902e83fe1b135a70e23aed762e9710a12e"
        );
        assert_eq!(
            hex::encode(super::wpa_pmk("ThisIsAPassword", "ThisIsASSID")),
            "0dc0d6eb90555ed6419756b9a15ec3e3209b63df707dd508d14581f8982721af"
        );
    }
}
