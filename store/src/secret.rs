//! Secrets: argon2 password hashes, random tokens, and the SHA-256 digests under which
//! tokens are stored (a leaked table yields no usable session or link).
//!
//! Hashing and verifying are CPU- and memory-heavy: the store runs them through
//! [`crate::accounts::hashing`], which bounds how many run at once.

use std::cell::RefCell;

use argon2::password_hash::{
    self, rand_core::OsRng, Output, ParamsString, PasswordHash, Salt, SaltString,
};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use base64::Engine as _;
use rand::RngCore;
use sha2::{Digest, Sha256};

use crate::StoreError;

pub use crate::accounts::hashing::hashing_limit;

/// A fresh random token: 32 bytes, URL-safe base64.
pub fn new_token() -> String {
    let mut bytes = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// What confirms a new destination of `kind`: a code to type in for the kinds confirmed
/// that way, else a link token.
pub fn new_confirmation(kind: tidings_rules::ChannelKind) -> String {
    if kind.confirms_by_code() {
        new_code()
    } else {
        new_token()
    }
}

/// The letters a confirmation code is made of: Crockford's base 32, without I, L, O and U,
/// so that what is read off a chat message is typed back without doubt.
const CODE_ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/// A fresh confirmation code to be typed in: ten characters of [`CODE_ALPHABET`] (50 bits)
/// in two groups, `7KQ2M-XW4TD`. Five wrong tries end it (the store counts them), so
/// guessing has five chances in 2^50.
pub fn new_code() -> String {
    let mut rng = rand::thread_rng();
    let mut code = String::with_capacity(11);
    for i in 0..10 {
        if i == 5 {
            code.push('-');
        }
        code.push(char::from(CODE_ALPHABET[(rng.next_u32() % 32) as usize]));
    }
    code
}

/// A typed code in the form it was issued: upper case, spaces and dashes dropped, and the
/// letters Crockford's base 32 reads as digits (O as 0, I and L as 1) made digits, with the
/// dash put back after the fifth character. `None` if anything else is left.
pub fn normalise_code(typed: &str) -> Option<String> {
    let mut plain = String::with_capacity(10);
    for c in typed.chars() {
        let c = match c.to_ascii_uppercase() {
            ' ' | '-' => continue,
            'O' => '0',
            'I' | 'L' => '1',
            c if c.is_ascii() && CODE_ALPHABET.contains(&(c as u8)) => c,
            _ => return None,
        };
        plain.push(c);
    }
    (plain.len() == 10).then(|| format!("{}-{}", &plain[..5], &plain[5..]))
}

/// The digest a token is stored and looked up under.
pub fn token_digest(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

thread_local! {
    /// Argon2's working memory (19 MiB with the default parameters), made once per thread
    /// and reused by every hash on it. Allocating it per hash does not return it: glibc
    /// keeps freed 64-byte-aligned blocks of that size in the thread's heap without reusing
    /// them, so RSS grew by 19 MiB per hash up to ~150 MiB per thread. With the buffer
    /// reused, the hashing threads hold [`hashing_limit`] buffers, no more, ever.
    static MEMORY: RefCell<Vec<Block>> = const { RefCell::new(Vec::new()) };
}

/// Argon2 over `password` and `salt`, in this thread's reused memory.
fn argon2(
    algorithm: Algorithm,
    version: Version,
    params: Params,
    password: &[u8],
    salt: Salt<'_>,
) -> password_hash::Result<Output> {
    let mut salt_buf = [0u8; 64];
    let salt = salt.decode_b64(&mut salt_buf)?;
    let len = params.output_len().unwrap_or(Params::DEFAULT_OUTPUT_LEN);
    let blocks = params.block_count();
    let argon2 = Argon2::new(algorithm, version, params);
    MEMORY.with(|memory| {
        let mut memory = memory.borrow_mut();
        if memory.len() < blocks {
            memory.resize(blocks, Block::default());
        }
        let memory = &mut memory[..blocks];
        Output::init_with(len, |out| {
            Ok(argon2.hash_password_into_with_memory(password, salt, out, &mut *memory)?)
        })
    })
}

/// Hashes a password with argon2id (default parameters) and a random salt, as a PHC string.
/// CPU- and memory-heavy: the store calls it through [`crate::accounts::hashing`].
pub fn hash_password(password: &str) -> Result<String, StoreError> {
    let failed = |e: password_hash::Error| StoreError::Hash(e.to_string());
    let salt = SaltString::generate(&mut OsRng);
    let params = Params::default();
    let (algorithm, version) = (Algorithm::Argon2id, Version::V0x13);
    let output = argon2(
        algorithm,
        version,
        params.clone(),
        password.as_bytes(),
        salt.as_salt(),
    )
    .map_err(failed)?;
    let phc = PasswordHash {
        algorithm: algorithm.ident(),
        version: Some(version.into()),
        params: ParamsString::try_from(&params).map_err(failed)?,
        salt: Some(salt.as_salt()),
        hash: Some(output),
    };
    Ok(phc.to_string())
}

/// Whether a password matches a stored PHC hash (its own algorithm, version and
/// parameters), compared in constant time. A malformed hash never matches.
pub fn verify_password(password: &str, hash: &str) -> bool {
    let check = || -> password_hash::Result<bool> {
        let parsed = PasswordHash::new(hash)?;
        let (Some(salt), Some(expected)) = (parsed.salt, parsed.hash) else {
            return Ok(false);
        };
        let algorithm = Algorithm::try_from(parsed.algorithm)?;
        let version = parsed
            .version
            .map(Version::try_from)
            .transpose()?
            .unwrap_or_default();
        let params = Params::try_from(&parsed)?;
        let output = argon2(algorithm, version, params, password.as_bytes(), salt)?;
        // `Output`'s equality is constant-time.
        Ok(output == expected)
    };
    check().unwrap_or(false)
}

/// Constant-time comparison of two tokens (CSRF, say).
pub fn tokens_equal(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

#[cfg(test)]
#[expect(
    clippy::expect_used,
    reason = "a test that cannot hash should fail loudly"
)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_typed_back_forgivingly() {
        let code = new_code();
        assert_eq!(code.len(), 11, "{code}");
        assert_eq!(normalise_code(&code).as_deref(), Some(code.as_str()));
        assert_eq!(
            normalise_code(" 7kq2m xw4td ").as_deref(),
            Some("7KQ2M-XW4TD")
        );
        assert_eq!(
            normalise_code("oil2m-xw4td").as_deref(),
            Some("0112M-XW4TD")
        );
        for bad in [
            "",
            "7KQ2M-XW4T",
            "7KQ2M-XW4TDD",
            "7KQ2M-XW4TU",
            "7KQ2M-XW4TÉ",
        ] {
            assert_eq!(normalise_code(bad), None, "{bad:?}");
        }
        assert_ne!(new_code(), new_code());
    }

    #[test]
    fn password_round_trip() {
        let hash = hash_password("correct horse").expect("hash");
        assert!(
            hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{hash}"
        );
        assert!(verify_password("correct horse", &hash));
        assert!(!verify_password("wrong", &hash));
        assert!(!verify_password("x", "not a hash"));
        assert!(!verify_password(
            "x",
            "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHQ"
        ));
    }

    /// Hashes stored before the memory was reused (made by argon2's own `PasswordHasher`)
    /// still verify, and argon2's own verifier accepts ours.
    #[test]
    fn hashes_agree_with_argon2s_own_api() {
        use argon2::password_hash::{PasswordHasher, PasswordVerifier};
        let salt = SaltString::generate(&mut OsRng);
        let theirs = Argon2::default()
            .hash_password(b"velvet crane", &salt)
            .expect("hash")
            .to_string();
        assert!(verify_password("velvet crane", &theirs));
        assert!(!verify_password("velvet crane!", &theirs));
        let ours = hash_password("velvet crane").expect("hash");
        let parsed = PasswordHash::new(&ours).expect("PHC");
        assert!(Argon2::default()
            .verify_password(b"velvet crane", &parsed)
            .is_ok());
    }

    /// Issue 8 item 4: a thread's hashes reuse one buffer instead of leaving 19 MiB behind
    /// each (RSS grew by 19 MiB per hash before).
    #[test]
    fn hashing_reuses_the_threads_memory() {
        std::thread::spawn(|| {
            let hash = hash_password("first").expect("hash");
            let capacity = MEMORY.with(|m| m.borrow().capacity());
            assert_eq!(capacity, Params::default().block_count());
            for _ in 0..3 {
                verify_password("again", &hash);
            }
            assert_eq!(MEMORY.with(|m| m.borrow().capacity()), capacity);
        })
        .join()
        .expect("hashing thread");
    }

    #[test]
    fn tokens_are_unique_and_compare() {
        let (a, b) = (new_token(), new_token());
        assert_ne!(a, b);
        assert!(tokens_equal(&a, &a.clone()));
        assert!(!tokens_equal(&a, &b));
        assert_eq!(token_digest("x").len(), 64);
    }
}
