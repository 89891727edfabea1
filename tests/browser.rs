//! A real browser (headless Chromium driven over WebDriver by chromedriver, both from
//! Debian's packages) walks the whole first-use path against `tidings serve`: sign up, add
//! an email address, confirm it by the link mailed to a real SMTP server, write a filter,
//! and see the notification a published message causes — in the mailbox and on the page.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use mailparse::MailHeaderMap as _;
use serde_json::{json, Value};

use crate::support::{envelope, free_port, wait_for, Hub, Smtp};

/// The WebDriver element key (W3C).
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// chromedriver as a child process, and one browser session through it.
struct Browser {
    driver: Child,
    base: String,
    session: String,
    client: reqwest::Client,
    _profile: tempfile::TempDir,
}

impl Browser {
    async fn start() -> Browser {
        let port = free_port();
        let driver_bin =
            std::env::var("TIDINGS_TEST_CHROMEDRIVER").unwrap_or_else(|_| "chromedriver".into());
        let driver = Command::new(driver_bin)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting chromedriver (apt-get install chromium chromium-driver)");
        wait_for("chromedriver to listen", Duration::from_secs(20), || {
            std::net::TcpStream::connect(("127.0.0.1", port)).ok()
        });
        let profile = tempfile::tempdir().expect("profile dir");
        let chromium =
            std::env::var("TIDINGS_TEST_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
        let client = reqwest::Client::new();
        let base = format!("http://127.0.0.1:{port}");
        // The flags keep Chromium off the network this machine does not have.
        let args = [
            "--headless=new".to_string(),
            "--no-sandbox".into(),
            "--disable-gpu".into(),
            "--disable-dev-shm-usage".into(),
            "--disable-quic".into(),
            "--no-first-run".into(),
            "--disable-background-networking".into(),
            "--disable-component-update".into(),
            "--disable-sync".into(),
            format!("--user-data-dir={}", profile.path().display()),
        ];
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {"binary": chromium, "args": args}
        }}});
        let reply: Value = client
            .post(format!("{base}/session"))
            .json(&caps)
            .send()
            .await
            .expect("new session")
            .json()
            .await
            .expect("session JSON");
        let session = reply["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no WebDriver session: {reply}"))
            .to_string();
        Browser {
            driver,
            base,
            session,
            client,
            _profile: profile,
        }
    }

    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let url = format!("{}/session/{}{path}", self.base, self.session);
        let mut request = self.client.request(method, &url);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let reply: Value = request
            .send()
            .await
            .expect("WebDriver call")
            .json()
            .await
            .expect("WebDriver JSON");
        assert!(reply["value"].get("error").is_none(), "{path}: {reply}");
        reply["value"].clone()
    }

    async fn open(&self, url: &str) {
        self.call(reqwest::Method::POST, "/url", Some(json!({ "url": url })))
            .await;
    }

    async fn find(&self, css: &str) -> String {
        let found = self
            .call(
                reqwest::Method::POST,
                "/element",
                Some(json!({"using": "css selector", "value": css})),
            )
            .await;
        found[ELEMENT]
            .as_str()
            .unwrap_or_else(|| panic!("no element {css}: {found}"))
            .to_string()
    }

    async fn type_into(&self, css: &str, text: &str) {
        let id = self.find(css).await;
        // Forms may come filled in (a new filter starts from an example).
        self.call(
            reqwest::Method::POST,
            &format!("/element/{id}/clear"),
            Some(json!({})),
        )
        .await;
        self.call(
            reqwest::Method::POST,
            &format!("/element/{id}/value"),
            Some(json!({ "text": text })),
        )
        .await;
    }

    async fn click(&self, css: &str) {
        let id = self.find(css).await;
        self.call(
            reqwest::Method::POST,
            &format!("/element/{id}/click"),
            Some(json!({})),
        )
        .await;
    }

    /// Ticks a checkbox (new filters start with every destination ticked).
    async fn check(&self, css: &str) {
        let id = self.find(css).await;
        let selected = self
            .call(
                reqwest::Method::GET,
                &format!("/element/{id}/selected"),
                None,
            )
            .await;
        if selected != Value::Bool(true) {
            self.click(css).await;
        }
    }

    async fn source(&self) -> String {
        self.call(reqwest::Method::GET, "/source", None)
            .await
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    /// Waits until the page (after a click's navigation) shows `text`; returns the page.
    async fn wait_for_text(&self, text: &str) -> String {
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        loop {
            let page = self.source().await;
            if page.contains(text) {
                return page;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "timed out waiting for {text:?} on {}: {page}",
                self.url().await
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn url(&self) -> String {
        self.call(reqwest::Method::GET, "/url", None)
            .await
            .as_str()
            .unwrap_or_default()
            .to_string()
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

fn text_part(raw: &[u8]) -> String {
    let mail = mailparse::parse_mail(raw).expect("parsable mail");
    mail.subparts
        .first()
        .and_then(|p| p.get_body().ok())
        .unwrap_or_default()
}

#[test]
fn first_use_in_a_real_browser() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let smtp = Smtp::start(tmp.path());
    let mut hub = Hub::new(Some(&smtp), None);
    hub.start();
    let site = format!("http://127.0.0.1:{}", hub.web_port);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let browser = Browser::start().await;

        browser.open(&format!("{site}/signup")).await;
        browser.type_into("input[name=username]", "gina").await;
        browser
            .type_into("input[name=password]", "velvet crane harbour 42")
            .await;
        browser
            .type_into("input[name=password2]", "velvet crane harbour 42")
            .await;
        browser.click("form.stack button[type=submit]").await;
        browser.wait_for_text("Sign out").await;
        assert_eq!(
            browser.url().await,
            format!("{site}/"),
            "sign-up lands on the dashboard"
        );

        browser.open(&format!("{site}/destinations")).await;
        browser.wait_for_text("name=\"address\"").await;
        browser
            .type_into("input[name=address]", "gina@example.org")
            .await;
        browser.click("form.stack button[type=submit]").await;
        browser.wait_for_text("gina@example.org</").await;

        // The confirmation link arrives by mail; the browser opens it and confirms.
        let mails = smtp.wait_mails(1, Duration::from_secs(60));
        let mail = mailparse::parse_mail(&mails[0]).expect("mail");
        assert_eq!(
            mail.headers.get_first_value("To").as_deref(),
            Some("gina@example.org")
        );
        let text = text_part(&mails[0]);
        let link = text
            .split_whitespace()
            .find(|w| w.starts_with(&format!("{site}/confirm/")))
            .unwrap_or_else(|| panic!("no confirmation link in {text}"))
            .to_string();
        browser.open(&link).await;
        browser.wait_for_text("Confirm the address").await;
        browser.click("main form button[type=submit]").await;
        browser.wait_for_text("Address confirmed").await;
        browser.open(&format!("{site}/destinations")).await;
        let page = browser.wait_for_text("gina@example.org</").await;
        assert!(
            !page.contains("waiting for confirmation"),
            "the address is confirmed: {page}"
        );

        browser.open(&format!("{site}/filters/new")).await;
        browser.wait_for_text("name=\"condition\"").await;
        browser.type_into("input[name=name]", "about me").await;
        browser
            .type_into("textarea[name=condition]", "usernames has $me")
            .await;
        browser.check("input[name=destination]").await;
        browser.click("form.stack button[type=submit]").await;
        browser.wait_for_text("usernames has $me</code>").await;
        assert_eq!(browser.url().await, format!("{site}/filters"));

        let message = envelope(
            "2024-browser",
            "org.fedoraproject.prod.fas.user.update",
            json!({"agent": "gina", "user": "gina", "fields": ["ircnick"]}),
        );
        let file = hub.dir.path().join("browser.jsonl");
        std::fs::write(&file, message).expect("message file");
        let file = file.display().to_string();
        hub.run(&["publish", "--endpoint", &hub.zmq_endpoint, "--file", &file]);
        let mails = smtp.wait_mails(2, Duration::from_secs(60));
        assert!(mails
            .iter()
            .any(|m| text_part(m).contains("org.fedoraproject.prod.fas.user.update")));

        browser.open(&format!("{site}/notifications")).await;
        let page = browser
            .wait_for_text("org.fedoraproject.prod.fas.user.update")
            .await;
        assert!(page.contains("about me"), "{page}");
    });
}
