//! Secrets at rest: the swarm's data key and the AEAD that seals secret
//! data before it reaches the cluster store.
//!
//! The key is 256 random bits in `<data-root>/swarm/key` (mode 0600),
//! made at `swarm init` (or on first use by a swarm made before secrets
//! were sealed) and removed with the rest of the swarm state on leave. A
//! secret's data is sealed with AES-256-GCM under a fresh random 96-bit
//! nonce, the secret's ID as associated data (a sealed blob copied onto
//! another secret's record does not open), and stored as `nonce ‖
//! ciphertext ‖ tag`. The plaintext exists only in memory on its way in
//! (create) and out (a task's tmpfs).

use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};
use ring::rand::{SecureRandom, SystemRandom};

/// The cipher a sealed blob was made with, stored beside it.
pub const CIPHER: &str = "aes-256-gcm";

#[derive(Debug, thiserror::Error)]
pub enum VaultError {
    #[error("swarm data key {path}: {source}")]
    Key {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("swarm data key {path} is {len} bytes, not 32")]
    KeyLength { path: PathBuf, len: usize },
    #[error("no randomness for a swarm key or nonce")]
    Random,
    /// Wrong key, tampered or truncated blob. Says nothing of the data.
    #[error("sealed data of {id} does not open with this swarm's key")]
    Open { id: String },
}

/// The swarm's data key.
pub struct Vault {
    key: LessSafeKey,
}

impl Vault {
    pub fn from_bytes(bytes: &[u8; 32]) -> Vault {
        Vault {
            key: LessSafeKey::new(UnboundKey::new(&AES_256_GCM, bytes).expect("a 32-byte key")),
        }
    }

    /// Reads the key at `path`, making it (0600, written whole) when there
    /// is none yet.
    pub fn open_or_create(path: &Path) -> Result<Vault, VaultError> {
        let key_err = |source| VaultError::Key {
            path: path.to_path_buf(),
            source,
        };
        match std::fs::read(path) {
            Ok(bytes) => {
                let key: [u8; 32] =
                    bytes
                        .as_slice()
                        .try_into()
                        .map_err(|_| VaultError::KeyLength {
                            path: path.to_path_buf(),
                            len: bytes.len(),
                        })?;
                return Ok(Vault::from_bytes(&key));
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(key_err(e)),
        }
        let mut key = [0u8; 32];
        SystemRandom::new()
            .fill(&mut key)
            .map_err(|_| VaultError::Random)?;
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(key_err)?;
        }
        // Written under a temporary name and renamed, so a crash never
        // leaves a short key; link-without-replace makes a concurrent first
        // use keep whichever key landed first.
        let tmp = path.with_extension(format!("tmp{}", std::process::id()));
        let written = (|| {
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&tmp)?;
            f.set_permissions(std::fs::Permissions::from_mode(0o600))?;
            f.write_all(&key)?;
            f.sync_all()?;
            std::fs::hard_link(&tmp, path)
        })();
        let _ = std::fs::remove_file(&tmp);
        match written {
            Ok(()) => Ok(Vault::from_bytes(&key)),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Self::open_or_create(path),
            Err(e) => Err(key_err(e)),
        }
    }

    /// `nonce ‖ ciphertext ‖ tag` of `plain`, bound to `id`.
    pub fn seal(&self, id: &str, plain: &[u8]) -> Result<Vec<u8>, VaultError> {
        let mut nonce = [0u8; NONCE_LEN];
        SystemRandom::new()
            .fill(&mut nonce)
            .map_err(|_| VaultError::Random)?;
        let mut buf = plain.to_vec();
        self.key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(id.as_bytes()),
                &mut buf,
            )
            .map_err(|_| VaultError::Random)?;
        let mut out = Vec::with_capacity(NONCE_LEN + buf.len());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&buf);
        Ok(out)
    }

    /// The plaintext of a [`Vault::seal`]ed blob of `id`.
    pub fn open(&self, id: &str, sealed: &[u8]) -> Result<Vec<u8>, VaultError> {
        let fail = || VaultError::Open { id: id.to_string() };
        if sealed.len() < NONCE_LEN + AES_256_GCM.tag_len() {
            return Err(fail());
        }
        let (nonce, body) = sealed.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| fail())?;
        let mut buf = body.to_vec();
        let plain = self
            .key
            .open_in_place(nonce, Aad::from(id.as_bytes()), &mut buf)
            .map_err(|_| fail())?;
        Ok(plain.to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PLAIN: &[u8] = b"correct horse battery staple";

    #[test]
    fn seal_then_open_round_trips() {
        let v = Vault::from_bytes(&[7; 32]);
        let sealed = v.seal("s1", PLAIN).unwrap();
        assert_eq!(sealed.len(), NONCE_LEN + PLAIN.len() + 16);
        assert_eq!(v.open("s1", &sealed).unwrap(), PLAIN);
        assert_ne!(
            v.seal("s1", PLAIN).unwrap(),
            sealed,
            "a fresh nonce every time"
        );
    }

    #[test]
    fn sealed_bytes_hide_the_plaintext() {
        let v = Vault::from_bytes(&[9; 32]);
        let sealed = v.seal("s1", PLAIN).unwrap();
        assert!(!sealed.windows(8).any(|w| PLAIN.windows(8).any(|p| p == w)));
    }

    #[test]
    fn wrong_key_id_or_tampering_do_not_open() {
        let v = Vault::from_bytes(&[1; 32]);
        let sealed = v.seal("s1", PLAIN).unwrap();
        assert!(Vault::from_bytes(&[2; 32]).open("s1", &sealed).is_err());
        assert!(v.open("s2", &sealed).is_err(), "bound to its secret's ID");
        let mut bad = sealed.clone();
        *bad.last_mut().unwrap() ^= 1;
        assert!(v.open("s1", &bad).is_err());
        assert!(v.open("s1", &sealed[..10]).is_err());
        let msg = v.open("s2", &sealed).unwrap_err().to_string();
        assert!(!msg.contains("horse"), "{msg}");
    }

    #[test]
    fn key_file_is_made_once_with_mode_0600() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("swarm/key");
        let a = Vault::open_or_create(&path).unwrap();
        let meta = std::fs::metadata(&path).unwrap();
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
        assert_eq!(meta.len(), 32);
        let sealed = a.seal("x", PLAIN).unwrap();
        let b = Vault::open_or_create(&path).unwrap();
        assert_eq!(b.open("x", &sealed).unwrap(), PLAIN, "the same key again");
        assert_eq!(
            std::fs::read_dir(path.parent().unwrap()).unwrap().count(),
            1
        );
        std::fs::write(&path, b"short").unwrap();
        assert!(matches!(
            Vault::open_or_create(&path),
            Err(VaultError::KeyLength { len: 5, .. })
        ));
    }
}
