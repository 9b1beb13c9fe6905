//! htpasswd files with bcrypt entries (`htpasswd -B`: `user:$2y$…`).
//! Other hash formats (MD5, SHA1, crypt) are refused when loading, as
//! distribution does: they are too weak to keep.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Mutex;

use sha2::{Digest as _, Sha256};

use crate::error::ConfigError;

pub struct Htpasswd {
    users: HashMap<String, String>,
    /// sha256 of `user:password` pairs already verified: bcrypt is slow on
    /// purpose and clients send Basic credentials on every request.
    verified: Mutex<HashMap<[u8; 32], ()>>,
}

impl Htpasswd {
    pub fn load(path: &Path) -> Result<Htpasswd, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Htpasswd::parse(&text, path)
    }

    pub fn parse(text: &str, path: &Path) -> Result<Htpasswd, ConfigError> {
        let mut users = HashMap::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let syntax = |reason: &str| ConfigError::Syntax {
                path: path.to_path_buf(),
                line: i + 1,
                reason: reason.to_string(),
            };
            let (user, hash) = line
                .split_once(':')
                .ok_or_else(|| syntax("expected user:hash"))?;
            if !["$2y$", "$2b$", "$2a$"].iter().any(|p| hash.starts_with(p)) {
                return Err(syntax("only bcrypt entries (htpasswd -B) are supported"));
            }
            users.insert(user.to_string(), hash.to_string());
        }
        Ok(Htpasswd {
            users,
            verified: Mutex::new(HashMap::new()),
        })
    }

    /// Whether `password` is `user`'s.
    pub fn verify(&self, user: &str, password: &str) -> bool {
        let Some(hash) = self.users.get(user) else {
            return false;
        };
        let key: [u8; 32] = Sha256::new()
            .chain_update(user.as_bytes())
            .chain_update(b":")
            .chain_update(password.as_bytes())
            .finalize()
            .into();
        if self.verified.lock().expect("cache").contains_key(&key) {
            return true;
        }
        let ok = bcrypt::verify(password, hash).unwrap_or(false);
        if ok {
            self.verified.lock().expect("cache").insert(key, ());
        }
        ok
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bcrypt_entries() {
        let h = bcrypt::hash("s3cret", 4)
            .unwrap()
            .replacen("$2b$", "$2y$", 1);
        let f = Htpasswd::parse(&format!("# c\nalice:{h}\n"), Path::new("x")).unwrap();
        assert!(f.verify("alice", "s3cret"));
        assert!(f.verify("alice", "s3cret"));
        assert!(!f.verify("alice", "wrong"));
        assert!(!f.verify("bob", "s3cret"));
        assert!(Htpasswd::parse("bob:{SHA}abc", Path::new("x")).is_err());
        assert!(Htpasswd::parse("nocolon", Path::new("x")).is_err());
    }
}
