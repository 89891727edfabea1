//! A real OpenID Connect provider for the end-to-end tests: the certified `oidc-provider`
//! from npm (scripts/test installs it under target/test-tools/oidc-provider, or
//! `TIDINGS_TEST_OIDC_PROVIDER` names the folder), run by `tests/support/oidc_provider.mjs`.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::{free_port, owner_mark, wait_for, Hub, OWNER_ENV};

const CLIENT_ID: &str = "tidings-e2e";
const CLIENT_SECRET: &str = "an-e2e-client-secret";

/// The provider process, killed when dropped.
pub struct OidcProvider {
    child: Child,
    pub issuer: String,
}

impl Drop for OidcProvider {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl OidcProvider {
    /// Starts a provider for `hub` (its callback is the redirect URI) and sets the hub's
    /// `[web.oidc]` to use it; call before `hub.start()`.
    pub fn for_hub(hub: &mut Hub) -> OidcProvider {
        let modules = std::env::var_os("TIDINGS_TEST_OIDC_PROVIDER")
            .map(PathBuf::from)
            .unwrap_or_else(|| {
                PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/test-tools/oidc-provider")
            });
        assert!(
            modules
                .join("node_modules/oidc-provider/package.json")
                .exists(),
            "oidc-provider is not installed in {} (scripts/test installs it; or set \
             TIDINGS_TEST_OIDC_PROVIDER)",
            modules.display()
        );
        let port = free_port();
        let script =
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/support/oidc_provider.mjs");
        let node = std::env::var("TIDINGS_TEST_NODE").unwrap_or_else(|_| "node".into());
        let child = Command::new(&node)
            .arg(script)
            .arg("--modules")
            .arg(&modules)
            .args(["--port", &port.to_string()])
            .args(["--client-id", CLIENT_ID, "--client-secret", CLIENT_SECRET])
            .arg("--redirect-uri")
            .arg(format!(
                "http://127.0.0.1:{}/signin/oidc/callback",
                hub.web_port
            ))
            .env(OWNER_ENV, format!("{}:oidc-{port}", owner_mark()))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            // Its start-up warnings (development keys and login form) are expected here.
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("starting {node} (Node.js runs the OIDC provider): {e}"));
        let provider = OidcProvider {
            child,
            issuer: format!("http://127.0.0.1:{port}"),
        };
        wait_for(
            "the OIDC provider to listen",
            Duration::from_secs(20),
            || std::net::TcpStream::connect(("127.0.0.1", port)).ok(),
        );
        for (key, value) in [
            ("ISSUER", provider.issuer.as_str()),
            ("CLIENT_ID", CLIENT_ID),
            ("CLIENT_SECRET", CLIENT_SECRET),
            ("SCOPES", r#"["profile", "groups"]"#),
            ("NAME", "Test ID"),
        ] {
            hub.env
                .insert(format!("TIDINGS_WEB__OIDC__{key}"), value.to_string());
        }
        provider
    }
}
