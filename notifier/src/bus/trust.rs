//! fedmsg message signatures (issue 12, Trust): with `bus.verify_signatures` on, a fedmsg
//! envelope is archived only if it carries an X.509 `signature` and `certificate` that
//! fedmsg's own validation (`fedmsg.crypto.x509_ng.validate`) would accept:
//!
//! 1. the certificate (base64 of PEM) was issued and signed by a CA in `bus.ca_cert`, the
//!    certificate and that CA are within their validity period, and the certificate's
//!    serial is not revoked by the CRL in `bus.crl` (when set; the CRL must be signed by
//!    the CA and not past its next update, as OpenSSL's `CRL_CHECK` demands);
//! 2. `signature` (base64) is RSA PKCS#1 v1.5 with SHA-1, by the certificate's key, over
//!    `fedmsg.encoding.dumps` of the envelope without `signature` and `certificate`: JSON
//!    with sorted keys, `,` and `:` separators and no spaces, non-ASCII escaped as `\uXXXX`
//!    (Python's `json.dumps(sort_keys=True, separators=(',', ':'))`, see [`encoding`]);
//! 3. the certificate's common name may send on the topic under `bus.routing_policy`
//!    (a topic listed there admits only the names listed with it; a topic not listed is
//!    admitted unless `bus.routing_nitpicky`).
//!
//! What fails is rejected through the accept path: recorded with the reason and counted
//! like malformed input. fedora-messaging messages (AMQP, or their JSON form over HTTP)
//! carry no signature; their trust is the broker's TLS.
//!
//! A certificate's chain check is cached by its bytes (most publishers sign every message
//! with one certificate); its validity period is checked against the clock each time.

pub mod encoding;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use base64::Engine as _;
use serde_json::{Map, Value};
use x509_parser::certificate::X509Certificate;
use x509_parser::prelude::FromDer as _;

use crate::NotifierError;

/// The most certificates whose chain check is remembered.
const CACHED_SIGNERS: usize = 1024;

/// Where the trusted CA and CRL are, and who may send what (from `[bus]`).
#[derive(Debug, Clone, Default)]
pub struct TrustConfig {
    /// PEM file of the CA certificate(s) that issue signing certificates (`bus.ca_cert`).
    pub ca_cert: PathBuf,
    /// PEM file of the CA's certificate revocation list (`bus.crl`), if any.
    pub crl: Option<PathBuf>,
    /// Topic → the certificate common names that may send on it (`bus.routing_policy`).
    pub routing_policy: BTreeMap<String, Vec<String>>,
    /// Whether a topic missing from the routing policy is refused (`bus.routing_nitpicky`).
    pub routing_nitpicky: bool,
}

/// The verifier: the trusted CAs and revoked serials, loaded once, and the policy.
pub struct Trust {
    cas: Vec<Authority>,
    crl: Option<Revocations>,
    routing_policy: BTreeMap<String, Vec<String>>,
    routing_nitpicky: bool,
    signers: Mutex<HashMap<Vec<u8>, Result<Signer, String>>>,
}

impl std::fmt::Debug for Trust {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Trust")
            .field("cas", &self.cas.len())
            .field("crl", &self.crl.is_some())
            .field("routing_policy", &self.routing_policy)
            .field("routing_nitpicky", &self.routing_nitpicky)
            .finish()
    }
}

/// One trusted CA certificate.
struct Authority {
    der: Vec<u8>,
    name: String,
    not_before: i64,
    not_after: i64,
}

/// The CRL: revoked serials (as their DER bytes) and when it must be renewed.
struct Revocations {
    serials: HashSet<Vec<u8>>,
    next_update: Option<i64>,
}

/// A certificate that passed the chain check.
#[derive(Clone)]
struct Signer {
    /// The RSA public key (PKCS#1 `RSAPublicKey` DER).
    key: Vec<u8>,
    /// Its subject's common name, as the routing policy names it.
    common_name: String,
    not_before: i64,
    not_after: i64,
    /// The issuing CA's validity.
    ca: (String, i64, i64),
}

fn config_error(field: &'static str, reason: String) -> NotifierError {
    NotifierError::Config { field, reason }
}

/// The PEM blocks labelled `label` in `path`, as DER.
fn pem_blocks(
    path: &Path,
    label: &str,
    field: &'static str,
) -> Result<Vec<Vec<u8>>, NotifierError> {
    let bytes = std::fs::read(path)
        .map_err(|e| config_error(field, format!("cannot read {}: {e}", path.display())))?;
    let mut blocks = Vec::new();
    for pem in x509_parser::pem::Pem::iter_from_buffer(&bytes) {
        let pem =
            pem.map_err(|e| config_error(field, format!("{} is not PEM: {e}", path.display())))?;
        if pem.label == label {
            blocks.push(pem.contents);
        }
    }
    if blocks.is_empty() {
        return Err(config_error(
            field,
            format!("{} holds no PEM block \"{label}\"", path.display()),
        ));
    }
    Ok(blocks)
}

/// The subject's common name, or the whole subject when it has none.
fn common_name(cert: &X509Certificate<'_>) -> String {
    cert.subject()
        .iter_common_name()
        .next()
        .and_then(|cn| cn.as_str().ok())
        .map(str::to_string)
        .unwrap_or_else(|| cert.subject().to_string())
}

fn when(secs: i64) -> String {
    chrono::DateTime::from_timestamp(secs, 0)
        .map(|t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string())
        .unwrap_or_else(|| secs.to_string())
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

impl Trust {
    /// Reads the CA certificate(s) and the CRL; an unreadable or invalid file is an error
    /// naming its setting.
    pub fn load(config: &TrustConfig) -> Result<Trust, NotifierError> {
        if config.ca_cert.as_os_str().is_empty() {
            return Err(config_error(
                "bus.ca_cert",
                "bus.verify_signatures is on, so bus.ca_cert must name the PEM file of the CA \
                 that issues the publishers' signing certificates"
                    .into(),
            ));
        }
        let mut cas = Vec::new();
        for der in pem_blocks(&config.ca_cert, "CERTIFICATE", "bus.ca_cert")? {
            let (_, cert) = X509Certificate::from_der(&der).map_err(|e| {
                config_error(
                    "bus.ca_cert",
                    format!(
                        "{}: a certificate does not parse: {e}",
                        config.ca_cert.display()
                    ),
                )
            })?;
            let validity = cert.validity();
            let (name, not_before, not_after) = (
                common_name(&cert),
                validity.not_before.timestamp(),
                validity.not_after.timestamp(),
            );
            cas.push(Authority {
                der: der.clone(),
                name,
                not_before,
                not_after,
            });
        }
        let crl = match &config.crl {
            None => None,
            Some(path) => Some(load_crl(path, &cas)?),
        };
        Ok(Trust {
            cas,
            crl,
            routing_policy: config.routing_policy.clone(),
            routing_nitpicky: config.routing_nitpicky,
            signers: Mutex::new(HashMap::new()),
        })
    }

    /// Checks the signature of a fedmsg envelope now: `json` is its text, `envelope` the
    /// same parsed. The reason it is refused otherwise, for the rejected record.
    pub fn check(&self, envelope: &Map<String, Value>, json: &[u8]) -> Result<(), String> {
        self.check_at(envelope, json, now())
            .map_err(|reason| format!("fedmsg signature: {reason}"))
    }

    fn check_at(&self, envelope: &Map<String, Value>, json: &[u8], now: i64) -> Result<(), String> {
        let text = |field: &str| match envelope.get(field) {
            None | Some(Value::Null) => Err(format!(
                "the envelope is not signed: it has no `{field}` (bus.verify_signatures is on)"
            )),
            Some(Value::String(s)) => Ok(s),
            Some(other) => Err(format!(
                "`{field}` must be a string, found {}",
                tidings_rules::fedmsg::json_type(other)
            )),
        };
        let (signature, certificate) = (text("signature")?, text("certificate")?);
        match envelope.get("crypto") {
            None | Some(Value::Null) => {}
            Some(Value::String(kind)) if kind == "x509" => {}
            Some(other) => {
                return Err(format!(
                    "signed with `crypto` {other}; only x509 signatures are verified"
                ))
            }
        }
        let signature =
            unbase64(signature).map_err(|e| format!("`signature` is not base64: {e}"))?;
        let certificate =
            unbase64(certificate).map_err(|e| format!("`certificate` is not base64: {e}"))?;
        let signer = self.signer(&certificate)?;
        let name = &signer.common_name;
        if now < signer.not_before {
            return Err(format!(
                "the certificate of {name:?} is not valid before {}",
                when(signer.not_before)
            ));
        }
        if now > signer.not_after {
            return Err(format!(
                "the certificate of {name:?} expired at {}",
                when(signer.not_after)
            ));
        }
        let (ca, ca_from, ca_until) = &signer.ca;
        if now < *ca_from || now > *ca_until {
            return Err(format!(
                "the CA {ca:?} in bus.ca_cert is valid only from {} to {}",
                when(*ca_from),
                when(*ca_until)
            ));
        }
        if let Some(next) = self.crl.as_ref().and_then(|crl| crl.next_update) {
            if now > next {
                return Err(format!(
                    "the CRL in bus.crl was due for renewal at {}; install the new one",
                    when(next)
                ));
            }
        }
        let credentials = ["signature", "certificate"];
        let signed = std::str::from_utf8(json)
            .ok()
            .and_then(|text| encoding::canonical_text(text, &credentials))
            .unwrap_or_else(|| {
                let mut rest = envelope.clone();
                rest.retain(|key, _| !credentials.contains(&key.as_str()));
                encoding::canonical(&Value::Object(rest))
            });
        if !signed_by(&signed, &signer.key, &signature) {
            return Err(format!(
                "the signature does not match the message (signed by {name:?}): altered in \
                 transit, or signed by another key"
            ));
        }
        let topic = envelope.get("topic").and_then(Value::as_str).unwrap_or("");
        match self.routing_policy.get(topic) {
            Some(names) if names.iter().any(|n| n == name) => Ok(()),
            Some(names) => Err(format!(
                "{name:?} may not send on {topic:?}: bus.routing_policy allows only {names:?}"
            )),
            None if self.routing_nitpicky => Err(format!(
                "{topic:?} is not in bus.routing_policy and bus.routing_nitpicky is on"
            )),
            None => Ok(()),
        }
    }

    /// The certificate's key and names if a trusted CA issued it and it is not revoked
    /// (remembered per certificate).
    fn signer(&self, pem: &[u8]) -> Result<Signer, String> {
        let mut signers = match self.signers.lock() {
            Ok(signers) => signers,
            Err(poisoned) => poisoned.into_inner(),
        };
        if let Some(known) = signers.get(pem) {
            return known.clone();
        }
        let verdict = self.chain(pem);
        if signers.len() >= CACHED_SIGNERS {
            signers.clear();
        }
        signers.insert(pem.to_vec(), verdict.clone());
        verdict
    }

    fn chain(&self, pem: &[u8]) -> Result<Signer, String> {
        let (_, pem) = x509_parser::pem::parse_x509_pem(pem)
            .map_err(|e| format!("`certificate` is not a PEM certificate: {e}"))?;
        let cert = pem
            .parse_x509()
            .map_err(|e| format!("`certificate` does not parse as X.509: {e}"))?;
        let name = common_name(&cert);
        let issuer = self
            .cas
            .iter()
            .find_map(|ca| {
                let (_, parsed) = X509Certificate::from_der(&ca.der).ok()?;
                (parsed.subject().as_raw() == cert.issuer().as_raw()
                    && cert.verify_signature(Some(parsed.public_key())).is_ok())
                .then_some(ca)
            })
            .ok_or_else(|| {
                format!(
                    "the certificate of {name:?} (issuer {}) was not issued by a CA in bus.ca_cert",
                    cert.issuer()
                )
            })?;
        if let Some(crl) = &self.crl {
            if crl.serials.contains(cert.raw_serial()) {
                return Err(format!(
                    "the certificate of {name:?} (serial {}) is revoked by the CRL in bus.crl",
                    cert.raw_serial_as_string()
                ));
            }
        }
        let key = cert.public_key();
        if key.algorithm.algorithm != x509_parser::oid_registry::OID_PKCS1_RSAENCRYPTION {
            return Err(format!(
                "the certificate of {name:?} has no RSA key; fedmsg signs with RSA"
            ));
        }
        let validity = cert.validity();
        Ok(Signer {
            key: key.subject_public_key.data.to_vec(),
            common_name: name,
            not_before: validity.not_before.timestamp(),
            not_after: validity.not_after.timestamp(),
            ca: (issuer.name.clone(), issuer.not_before, issuer.not_after),
        })
    }
}

/// Whether `signature` is the RSA key `key`'s (PKCS#1 v1.5, SHA-1: fedmsg's) over
/// `signed` (the envelope without `signature` and `certificate`, as
/// `fedmsg.encoding.dumps` writes it).
fn signed_by(signed: &str, key: &[u8], signature: &[u8]) -> bool {
    ring::signature::UnparsedPublicKey::new(
        &ring::signature::RSA_PKCS1_1024_8192_SHA1_FOR_LEGACY_USE_ONLY,
        key,
    )
    .verify(signed.as_bytes(), signature)
    .is_ok()
}

/// Reads a PEM CRL and checks that one of `cas` signed it.
fn load_crl(path: &Path, cas: &[Authority]) -> Result<Revocations, NotifierError> {
    let blocks = pem_blocks(path, "X509 CRL", "bus.crl")?;
    let mut serials = HashSet::new();
    let mut next_update: Option<i64> = None;
    for der in blocks {
        let (_, crl) = x509_parser::revocation_list::CertificateRevocationList::from_der(&der)
            .map_err(|e| config_error("bus.crl", format!("{}: {e}", path.display())))?;
        let signed = cas.iter().any(|ca| {
            X509Certificate::from_der(&ca.der).is_ok_and(|(_, parsed)| {
                parsed.subject().as_raw() == crl.issuer().as_raw()
                    && crl.verify_signature(parsed.public_key()).is_ok()
            })
        });
        if !signed {
            return Err(config_error(
                "bus.crl",
                format!(
                    "{}: the CRL of {} is not signed by a CA in bus.ca_cert",
                    path.display(),
                    crl.issuer()
                ),
            ));
        }
        for revoked in crl.iter_revoked_certificates() {
            serials.insert(revoked.raw_serial().to_vec());
        }
        if let Some(next) = crl.next_update() {
            let next = next.timestamp();
            next_update = Some(next_update.map_or(next, |n| n.min(next)));
        }
    }
    Ok(Revocations {
        serials,
        next_update,
    })
}

/// Base64 as Python's `base64.b64decode` reads fedmsg's: line breaks (fedmsg splits both
/// fields every 76 characters) and other whitespace ignored.
fn unbase64(text: &str) -> Result<Vec<u8>, base64::DecodeError> {
    let compact: String = text.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    base64::engine::general_purpose::STANDARD.decode(compact)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Fedora's own signatures: the corpus's two signed bugzilla messages (2019, from
    /// datagrepper) verify with their certificates' keys once datagrepper's additions are
    /// undone as `fedmsg.crypto.utils.fix_datagrepper_message` does (its `source_*` keys,
    /// an empty `headers`, the timestamp made a float), and fail when their body changes.
    #[test]
    fn fedoras_signatures_verify() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../corpus/fedmsg-meta/messages.jsonl"
        );
        let corpus = std::fs::read_to_string(path).unwrap_or_default();
        let mut checked = 0;
        for line in corpus.lines().filter(|l| l.contains("\"signature\"")) {
            let record: Value = serde_json::from_str(line).unwrap_or_default();
            let Some(Value::Object(mut envelope)) = record.get("message").cloned() else {
                panic!("a corpus record without a message: {line}")
            };
            envelope.remove("source_name");
            envelope.remove("source_version");
            if envelope.get("headers") == Some(&Value::Object(Map::new())) {
                envelope.remove("headers");
            }
            if let Some(ts) = envelope.get("timestamp").and_then(Value::as_f64) {
                envelope.insert("timestamp".into(), Value::from(ts as i64));
            }
            let field = |name: &str| {
                unbase64(
                    envelope
                        .get(name)
                        .and_then(Value::as_str)
                        .unwrap_or_default(),
                )
                .unwrap_or_default()
            };
            let (signature, pem) = (field("signature"), field("certificate"));
            let (_, pem) = x509_parser::pem::parse_x509_pem(&pem).unwrap_or_else(|e| panic!("{e}"));
            let cert = pem.parse_x509().unwrap_or_else(|e| panic!("{e}"));
            let key = &cert.public_key().subject_public_key.data;
            envelope.remove("signature");
            envelope.remove("certificate");
            let signed = encoding::canonical(&Value::Object(envelope.clone()));
            assert!(signed_by(&signed, key, &signature), "{line}");
            envelope.insert("i".into(), Value::from(99));
            let altered = encoding::canonical(&Value::Object(envelope));
            assert!(!signed_by(&altered, key, &signature));
            checked += 1;
        }
        assert_eq!(checked, 2, "{path}");
    }

    fn load_error(config: &TrustConfig) -> String {
        match Trust::load(config) {
            Ok(_) => panic!("{config:?} loaded"),
            Err(err) => err.to_string(),
        }
    }

    #[test]
    fn unreadable_files_are_named_by_their_key() {
        let missing = TrustConfig {
            ca_cert: PathBuf::from("/nowhere/ca.pem"),
            ..TrustConfig::default()
        };
        let err = load_error(&missing);
        assert!(
            err.starts_with("bus.ca_cert: cannot read /nowhere/ca.pem"),
            "{err}"
        );
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let not_pem = dir.path().join("ca.pem");
        std::fs::write(&not_pem, "hello").unwrap_or_else(|e| panic!("{e}"));
        let err = load_error(&TrustConfig {
            ca_cert: not_pem,
            ..TrustConfig::default()
        });
        assert!(err.contains("holds no PEM block \"CERTIFICATE\""), "{err}");
    }

    #[test]
    fn base64_line_breaks_are_ignored() {
        assert_eq!(unbase64("aGVs\nbG8=\n").ok(), Some(b"hello".to_vec()));
        assert!(unbase64("not base64!").is_err());
    }
}
