//! Server keys: 32 random bytes per purpose, made on first use and kept in the database so
//! every process of one hub (web, notifier, sender) agrees on them. Callers derive what
//! they need with [`keyed_digest`]; the key itself never leaves the process.

use base64::Engine as _;
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;

use crate::db::with_pool;
use crate::{now_ms, Result, Store, StoreError};

/// A server key: 32 secret bytes. `Debug` does not show them.
#[derive(Clone, PartialEq, Eq)]
pub struct ServerKey([u8; 32]);

impl std::fmt::Debug for ServerKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ServerKey(***)")
    }
}

impl ServerKey {
    /// A key of known bytes, for unit tests.
    #[cfg(test)]
    pub(crate) fn for_tests(bytes: [u8; 32]) -> ServerKey {
        ServerKey(bytes)
    }

    /// HMAC-SHA256 of `data` under this key, URL-safe base64 (43 characters).
    pub fn sign(&self, data: &[u8]) -> String {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(self.mac(data))
    }

    /// Whether `signature` is [`ServerKey::sign`] of `data`, compared in constant time.
    pub fn verify(&self, data: &[u8], signature: &str) -> bool {
        let Ok(given) = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(signature) else {
            return false;
        };
        let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(&self.0) else {
            return false;
        };
        mac.update(data);
        mac.verify_slice(&given).is_ok()
    }

    fn mac(&self, data: &[u8]) -> [u8; 32] {
        // HMAC takes a key of any length, so this cannot fail; an empty MAC would only
        // make every check fail, never pass.
        match Hmac::<Sha256>::new_from_slice(&self.0) {
            Ok(mut mac) => {
                mac.update(data);
                mac.finalize().into_bytes().into()
            }
            Err(_) => [0; 32],
        }
    }
}

impl Store {
    /// The key named `name`, made (32 random bytes) the first time it is asked for. Two
    /// processes asking at once get the same key: the first insert wins, both read it back.
    pub async fn server_key(&self, name: &str) -> Result<ServerKey> {
        if let Some(key) = self.cached_key(name) {
            return Ok(key);
        }
        let mut fresh = [0u8; 32];
        rand::thread_rng().fill_bytes(&mut fresh);
        let encoded = hex::encode(fresh);
        let insert = self.sql(
            "INSERT INTO server_keys (name, key, created_at) VALUES ($1, $2, $3) \
             ON CONFLICT (name) DO NOTHING",
        );
        let select = self.sql("SELECT key FROM server_keys WHERE name = $1");
        let stored: String = with_pool!(self, |pool| {
            sqlx::query(&insert)
                .bind(name)
                .bind(&encoded)
                .bind(now_ms())
                .execute(pool)
                .await?;
            sqlx::query_scalar(&select)
                .bind(name)
                .fetch_one(pool)
                .await?
        });
        let bytes = hex::decode(stored.trim()).map_err(|e| StoreError::corrupt("server key", e))?;
        let key: [u8; 32] = bytes
            .try_into()
            .map_err(|_| StoreError::corrupt("server key", "not 32 bytes"))?;
        let key = ServerKey(key);
        self.keys
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(name.to_string(), key.clone());
        Ok(key)
    }

    fn cached_key(&self, name: &str) -> Option<ServerKey> {
        self.keys
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(name)
            .cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_verify_only_with_their_key_and_data() {
        let key = ServerKey([7; 32]);
        let other = ServerKey([8; 32]);
        let sig = key.sign(b"hello");
        assert_eq!(sig.len(), 43);
        assert!(key.verify(b"hello", &sig));
        assert!(!key.verify(b"hellO", &sig));
        assert!(!other.verify(b"hello", &sig));
        assert!(!key.verify(b"hello", "not base64!"));
        assert!(!key.verify(b"hello", ""));
        assert_eq!(format!("{key:?}"), "ServerKey(***)");
    }
}
