//! The backup file: one file carrying the SQLite database and the secrets key, so a restore on
//! a new machine keeps every Wi-Fi login working. Optionally sealed with a passphrase
//! (argon2id → ChaCha20-Poly1305).
//!
//! Layout: `FRONTDESK-BACKUP\n`, a version byte (1), a mode byte (0 plain, 1 sealed), then
//! the payload — sealed: salt(16) ‖ nonce(12) ‖ AEAD(payload) — where the payload is
//! key length (u32 BE) ‖ key (hex text) ‖ database bytes.

use argon2::Argon2;
use chacha20poly1305::aead::{Aead, KeyInit};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use rand::{rngs::OsRng, RngCore};

const MAGIC: &[u8] = b"FRONTDESK-BACKUP\n";
const VERSION: u8 = 1;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum BackupError {
    #[error("not a Frontdesk backup file")]
    NotABackup,
    #[error("backup format version {0} is not supported by this Frontdesk")]
    Version(u8),
    #[error("this backup is encrypted: give --passphrase-file")]
    NeedsPassphrase,
    #[error("wrong passphrase, or the backup file is damaged")]
    Decrypt,
    #[error("the backup file is truncated or damaged")]
    Damaged,
}

pub struct BackupContents {
    pub key_hex: String,
    pub database: Vec<u8>,
}

fn derive(passphrase: &[u8], salt: &[u8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    Argon2::default()
        .hash_password_into(passphrase, salt, &mut out)
        .expect("argon2 parameters are valid");
    out
}

pub fn seal(contents: &BackupContents, passphrase: Option<&[u8]>) -> Vec<u8> {
    let mut payload = Vec::with_capacity(contents.database.len() + 80);
    payload.extend((contents.key_hex.len() as u32).to_be_bytes());
    payload.extend(contents.key_hex.as_bytes());
    payload.extend(&contents.database);
    let mut out = MAGIC.to_vec();
    out.push(VERSION);
    match passphrase {
        None => {
            out.push(0);
            out.extend(payload);
        }
        Some(p) => {
            out.push(1);
            let mut salt = [0u8; 16];
            let mut nonce = [0u8; 12];
            OsRng.fill_bytes(&mut salt);
            OsRng.fill_bytes(&mut nonce);
            let key = derive(p, &salt);
            let ct = ChaCha20Poly1305::new(Key::from_slice(&key))
                .encrypt(Nonce::from_slice(&nonce), payload.as_slice())
                .expect("in-memory encryption");
            out.extend(salt);
            out.extend(nonce);
            out.extend(ct);
        }
    }
    out
}

pub fn open(bytes: &[u8], passphrase: Option<&[u8]>) -> Result<BackupContents, BackupError> {
    let rest = bytes.strip_prefix(MAGIC).ok_or(BackupError::NotABackup)?;
    let (&version, rest) = rest.split_first().ok_or(BackupError::Damaged)?;
    if version != VERSION {
        return Err(BackupError::Version(version));
    }
    let (&mode, rest) = rest.split_first().ok_or(BackupError::Damaged)?;
    let payload = match mode {
        0 => rest.to_vec(),
        1 => {
            let p = passphrase.ok_or(BackupError::NeedsPassphrase)?;
            if rest.len() < 28 {
                return Err(BackupError::Damaged);
            }
            let key = derive(p, &rest[..16]);
            ChaCha20Poly1305::new(Key::from_slice(&key))
                .decrypt(Nonce::from_slice(&rest[16..28]), &rest[28..])
                .map_err(|_| BackupError::Decrypt)?
        }
        _ => return Err(BackupError::Damaged),
    };
    let len = u32::from_be_bytes(
        payload
            .get(..4)
            .ok_or(BackupError::Damaged)?
            .try_into()
            .expect("4 bytes"),
    ) as usize;
    let key = payload.get(4..4 + len).ok_or(BackupError::Damaged)?;
    Ok(BackupContents {
        key_hex: String::from_utf8(key.to_vec()).map_err(|_| BackupError::Damaged)?,
        database: payload[4 + len..].to_vec(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_plain_and_sealed() {
        let c = BackupContents {
            key_hex: "ab".repeat(32),
            database: b"SQLite format 3\0...".to_vec(),
        };
        let plain = seal(&c, None);
        let back = open(&plain, None).unwrap();
        assert_eq!(
            (back.key_hex, back.database),
            (c.key_hex.clone(), c.database.clone())
        );
        let sealed = seal(&c, Some(b"correct horse"));
        assert!(!sealed.windows(64).any(|w| w == c.key_hex.as_bytes()));
        assert_eq!(
            open(&sealed, None).err(),
            Some(BackupError::NeedsPassphrase)
        );
        assert_eq!(
            open(&sealed, Some(b"wrong")).err(),
            Some(BackupError::Decrypt)
        );
        assert_eq!(
            open(&sealed, Some(b"correct horse")).unwrap().database,
            c.database
        );
        assert_eq!(open(b"hello", None).err(), Some(BackupError::NotABackup));
        assert_eq!(
            open(&plain[..MAGIC.len() + 3], None).err(),
            Some(BackupError::Damaged)
        );
    }
}
