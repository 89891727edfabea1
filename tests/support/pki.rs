//! Certificates for the tests' TLS servers and signed messages: a CA made with `openssl ca`
//! (`scripts/test` installs openssl) in a folder of the test's own.

use std::path::PathBuf;
use std::process::Command;

use super::{owner_mark, OWNER_ENV};

/// A certificate authority made with `openssl ca` in a folder of its own: its
/// certificates, their keys (`NAME.crt`, `NAME.key`, as fedmsg's `ssldir` holds them) and
/// its revocation list.
pub struct Pki {
    pub dir: PathBuf,
}

impl Pki {
    pub fn new(dir: PathBuf, name: &str) -> Pki {
        std::fs::create_dir_all(&dir).expect("CA folder");
        std::fs::write(dir.join("index.txt"), "").expect("index.txt");
        std::fs::write(
            dir.join("ca.cnf"),
            "[ca]\ndefault_ca = test\n[test]\ndatabase = index.txt\nnew_certs_dir = .\n\
             rand_serial = yes\ndefault_md = sha256\npolicy = anything\nunique_subject = no\n\
             default_crl_days = 1\n[anything]\ncommonName = supplied\n",
        )
        .expect("ca.cnf");
        let pki = Pki { dir };
        pki.openssl(&[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
            "-days",
            "2",
            "-subj",
            &format!("/CN={name}"),
        ]);
        pki
    }

    pub fn openssl(&self, args: &[&str]) {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(&self.dir)
            .env(OWNER_ENV, owner_mark())
            .output()
            .expect("running openssl (scripts/test installs it)");
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    pub fn ca(&self) -> PathBuf {
        self.dir.join("ca.pem")
    }

    /// `NAME.crt` for `/CN=common_name`, valid for a day or from `start` to `end`
    /// (`YYYYMMDDHHMMSSZ`), with `extensions` (openssl's extfile syntax).
    pub fn issue(
        &self,
        name: &str,
        common_name: &str,
        dates: Option<(&str, &str)>,
        extensions: &str,
    ) {
        let (key, csr, crt, ext) = (
            format!("{name}.key"),
            format!("{name}.csr"),
            format!("{name}.crt"),
            format!("{name}.ext"),
        );
        std::fs::write(self.dir.join(&ext), extensions).expect("extfile");
        self.openssl(&[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            &key,
            "-out",
            &csr,
            "-subj",
            &format!("/CN={common_name}"),
        ]);
        let mut args = vec![
            "ca", "-batch", "-notext", "-config", "ca.cnf", "-cert", "ca.pem", "-keyfile",
            "ca.key", "-in", &csr, "-out", &crt, "-extfile", &ext,
        ];
        match dates {
            Some((start, end)) => args.extend(["-startdate", start, "-enddate", end]),
            None => args.extend(["-days", "1"]),
        }
        self.openssl(&args);
    }

    pub fn revoke(&self, name: &str) {
        let crt = format!("{name}.crt");
        self.openssl(&[
            "ca", "-config", "ca.cnf", "-cert", "ca.pem", "-keyfile", "ca.key", "-revoke", &crt,
        ]);
    }

    /// The CA's revocation list, as of now.
    pub fn crl(&self) -> PathBuf {
        self.openssl(&[
            "ca", "-config", "ca.cnf", "-cert", "ca.pem", "-keyfile", "ca.key", "-gencrl", "-out",
            "crl.pem",
        ]);
        self.dir.join("crl.pem")
    }

    pub fn file(&self, name: &str) -> String {
        self.dir.join(name).display().to_string()
    }
}

/// Extensions of a certificate that is no CA.
pub const LEAF: &str = "basicConstraints=CA:FALSE\n";

/// Extensions of a TLS server's certificate for 127.0.0.1 (rustls wants a v3 certificate
/// with the address as a subject alternative name).
pub const SERVER: &str = "basicConstraints=CA:FALSE\nsubjectAltName=IP:127.0.0.1,DNS:localhost\n\
                          extendedKeyUsage=serverAuth\n";
