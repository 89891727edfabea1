//! A real browser (headless Chromium driven over WebDriver by chromedriver, both from
//! Debian's packages) walks the whole first-use path against `tidings serve`: sign up, add
//! an email address, confirm it by the link mailed to a real SMTP server, write a filter,
//! and see the notification a published message causes — in the mailbox and on the page.
//! Then the rest of a filter's life (the builder, its preview, why (not), muting from the
//! mail's link), an admin's default filter reaching a new account, every page at a phone's
//! and a laptop's width, and sign-in through an OpenID Connect provider.

use std::os::unix::process::CommandExt as _;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};
use mailparse::MailHeaderMap as _;
use serde_json::json;

use crate::support::{
    envelope, free_port, marked, owner_mark, wait_for, Hub, OidcProvider, Smtp, OWNER_ENV,
};

/// chromedriver in a process group of its own, so that everything it starts (Chromium and
/// its helpers) is killed with it when this is dropped — after a passing test and, as the
/// test unwinds, after a failing one (issue 8 item 19: a headless Chromium was found running
/// long after a run). Every one of them also carries the test's mark in its environment
/// (`support::OWNER_ENV`), which finds Chromium's crash handler (it leaves the group) and
/// lets the next run end what a killed run left behind.
struct Driver {
    child: Child,
    port: u16,
    mark: String,
    profile: tempfile::TempDir,
}

impl Driver {
    fn start() -> Driver {
        let port = free_port();
        let driver_bin =
            std::env::var("TIDINGS_TEST_CHROMEDRIVER").unwrap_or_else(|_| "chromedriver".into());
        let mark = format!("{}:chromedriver-{port}", owner_mark());
        let child = Command::new(driver_bin)
            .arg(format!("--port={port}"))
            .env(OWNER_ENV, &mark)
            .process_group(0)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting chromedriver (apt-get install chromium chromium-driver)");
        let driver = Driver {
            child,
            port,
            mark,
            profile: tempfile::tempdir().expect("profile dir"),
        };
        wait_for("chromedriver to listen", Duration::from_secs(20), || {
            std::net::TcpStream::connect(("127.0.0.1", port)).ok()
        });
        driver
    }

    /// chromedriver and a browser session through it.
    async fn browse() -> (Driver, Client) {
        let driver = Driver::start();
        let client = driver.session().await;
        (driver, client)
    }

    /// A browser session: headless Chromium with a fresh profile, kept off the network this
    /// machine does not have.
    async fn session(&self) -> Client {
        self.session_sized(None).await
    }

    /// A session whose page is `width` CSS pixels wide: a phone's (Chromium's device
    /// emulation, as its developer tools do it) below 500, a window's otherwise.
    async fn session_sized(&self, width: Option<u32>) -> Client {
        let profile = self.profile.path();
        let chromium =
            std::env::var("TIDINGS_TEST_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
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
            format!("--user-data-dir={}", profile.display()),
        ];
        let mut options = json!({"binary": chromium, "args": args});
        match width {
            Some(width) if width < 500 => {
                options["mobileEmulation"] = json!({
                    "deviceMetrics": {"width": width, "height": 844, "pixelRatio": 3.0, "touch": true}
                });
            }
            Some(width) => {
                if let Some(args) = options["args"].as_array_mut() {
                    args.push(json!(format!("--window-size={width},900")));
                }
            }
            None => {}
        }
        let capabilities = json!({
            "browserName": "chrome",
            "goog:chromeOptions": options
        });
        let serde_json::Value::Object(capabilities) = capabilities else {
            unreachable!("a JSON object literal")
        };
        ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(capabilities)
            .connect(&format!("http://127.0.0.1:{}", self.port))
            .await
            .expect("a WebDriver session")
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        // The negative pid names the whole process group.
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.child.id())])
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
        for pid in marked(&self.mark) {
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
        }
    }
}

/// The page steps the test takes, on top of fantoccini's client.
struct Page<'a>(&'a Client);

impl Page<'_> {
    async fn open(&self, url: &str) {
        self.0
            .goto(url)
            .await
            .unwrap_or_else(|e| panic!("open {url}: {e}"));
    }

    async fn find(&self, css: &str) -> fantoccini::elements::Element {
        self.find_by(Locator::Css(css)).await
    }

    /// An element by any locator (an XPath finds a button or a row by its words).
    async fn find_by(&self, locator: Locator<'_>) -> fantoccini::elements::Element {
        self.0
            .find(locator)
            .await
            .unwrap_or_else(|e| panic!("no element {locator:?}: {e}"))
    }

    /// What an element shows, as the person reads it (entities decoded, tags gone), so an
    /// assertion is about the words on the page rather than how the HTML spells them.
    async fn text(&self, locator: Locator<'_>) -> String {
        self.find_by(locator)
            .await
            .text()
            .await
            .unwrap_or_else(|e| panic!("text of {locator:?}: {e}"))
    }

    /// A form field's current value (a textarea's text as typed or as the server wrote it).
    async fn value(&self, css: &str) -> String {
        self.find(css)
            .await
            .prop("value")
            .await
            .unwrap_or_else(|e| panic!("value of {css}: {e}"))
            .unwrap_or_default()
    }

    /// Clicks what a locator finds (a button by its words, say).
    async fn click_on(&self, locator: Locator<'_>) {
        self.find_by(locator)
            .await
            .click()
            .await
            .unwrap_or_else(|e| panic!("click {locator:?}: {e}"));
    }

    /// Types into a field, replacing what it held (a new filter starts from an example).
    async fn type_into(&self, css: &str, text: &str) {
        let field = self.find(css).await;
        field
            .clear()
            .await
            .unwrap_or_else(|e| panic!("clear {css}: {e}"));
        field
            .send_keys(text)
            .await
            .unwrap_or_else(|e| panic!("type into {css}: {e}"));
    }

    async fn click(&self, css: &str) {
        self.find(css)
            .await
            .click()
            .await
            .unwrap_or_else(|e| panic!("click {css}: {e}"));
    }

    /// Ticks a checkbox (new filters start with every destination ticked).
    async fn check(&self, css: &str) {
        let selected = self.find(css).await.is_selected().await.unwrap_or(false);
        if !selected {
            self.click(css).await;
        }
    }

    /// Unticks a checkbox.
    async fn uncheck(&self, css: &str) {
        let selected = self.find(css).await.is_selected().await.unwrap_or(true);
        if selected {
            self.click(css).await;
        }
    }

    /// Waits until the page (after a click's navigation) shows `text`; returns the page.
    async fn wait_for_text(&self, text: &str) -> String {
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        loop {
            let page = self.0.source().await.unwrap_or_default();
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

    /// Signs in on the sign-in form and waits for the signed-in menu.
    async fn sign_in(&self, site: &str, username: &str, password: &str) {
        self.open(&format!("{site}/signin")).await;
        self.wait_for_text("name=\"username\"").await;
        self.type_into("input[name=username]", username).await;
        self.type_into("input[name=password]", password).await;
        self.click("form.stack button[type=submit]").await;
        self.wait_for_text("Sign out").await;
    }

    async fn url(&self) -> String {
        self.0
            .current_url()
            .await
            .map(|u| u.to_string())
            .unwrap_or_default()
    }
}

fn block_on<F: std::future::Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(future)
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
    block_on(async {
        let (_driver, client) = Driver::browse().await;
        let browser = Page(&client);

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
        browser.click("#add-email button[type=submit]").await;
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
        client.close().await.expect("ending the WebDriver session");
    });
}

/// Issue 11: every page a signed-in person (an admin here) uses fits a phone (390 px) and a laptop
/// (1,280 px) without sideways scrolling, with real data in it: a notification about a
/// long topic, a long address, a filter. The widths are checked to be what was asked, so
/// the test cannot pass on a wide window by accident.
#[test]
fn every_page_fits_390_and_1280_px_without_sideways_scrolling() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let smtp = Smtp::start(tmp.path());
    let mut hub = Hub::new(Some(&smtp), None);
    let out = hub.output(
        &["user", "add", "hana", "--admin", "--password-stdin"],
        Some("velvet crane harbour 42\n"),
    );
    assert!(out.status.success(), "{out:?}");
    hub.confirmed_destination(
        "hana",
        "hana.with-a-rather-long-address-for-a-phone@subdomain.example.org",
    );
    hub.add_filter("hana", r#"topic ~ "org.fedoraproject.**""#);
    hub.start();
    let site = format!("http://127.0.0.1:{}", hub.web_port);
    let message = envelope(
        "2024-layout",
        "org.fedoraproject.prod.buildsys.repo.init.with.a.very.long.topic.name",
        json!({"owner": "hana", "tag": "f44-build-side-12345-with-a-long-name", "repo_id": 1}),
    );
    let file = hub.dir.path().join("layout.jsonl");
    std::fs::write(&file, message).expect("message file");
    let file = file.display().to_string();
    hub.run(&["publish", "--endpoint", &hub.zmq_endpoint, "--file", &file]);
    smtp.wait_mails(1, Duration::from_secs(60));
    let pages = [
        "/",
        "/destinations",
        "/filters",
        "/filters/new",
        "/me",
        "/notifications",
        "/settings",
        "/account",
        "/account/tokens",
        "/filters/gallery",
        "/filters/why?message=2024-layout",
        "/admin",
        "/admin/defaults",
        "/admin/users",
        "/admin/dead",
        "/admin/charts",
        "/admin/catalog",
        "/admin/live",
    ];
    block_on(async {
        let driver = Driver::start();
        for width in [390, 1280] {
            let client = driver.session_sized(Some(width)).await;
            let browser = Page(&client);
            browser
                .sign_in(&site, "hana", "velvet crane harbour 42")
                .await;
            for page in pages {
                browser.open(&format!("{site}{page}")).await;
                browser.wait_for_text("</main>").await;
                let sizes = client
                    .execute(
                        "return [document.documentElement.scrollWidth, window.innerWidth];",
                        vec![],
                    )
                    .await
                    .expect("page sizes");
                let (scroll, inner) = (sizes[0].as_u64(), sizes[1].as_u64());
                assert_eq!(
                    inner,
                    Some(u64::from(width)),
                    "{page} at {width} px: {sizes}"
                );
                assert!(
                    scroll <= inner,
                    "{page} at {width} px scrolls sideways: content {scroll:?} px wide"
                );
                // At 1,280 px each column name stands on one line: a table squeezed
                // until its words break ("Queu-ed") fails here.
                if width == 1280 {
                    let broken = client
                        .execute(
                            "return [...document.querySelectorAll('th, td.nowrap')]\
                             .filter(c => { const r = document.createRange(); \
                               r.selectNodeContents(c); \
                               return new Set([...r.getClientRects()].map(x => Math.round(x.top))).size > 1; })\
                             .map(c => c.textContent.trim());",
                            vec![],
                        )
                        .await
                        .expect("column names");
                    assert_eq!(
                        broken,
                        json!([]),
                        "{page} at 1280 px: these cells take more than one line"
                    );
                }
            }
            browser.open(&format!("{site}/notifications")).await;
            let shown = browser.wait_for_text("with.a.very.long.topic.name").await;
            assert!(shown.contains("hana"), "{shown}");
            // The profile is shared by the sessions: the next signs in afresh.
            browser.click("form.signout button").await;
            browser.wait_for_text("name=\"username\"").await;
            client.close().await.expect("ending the WebDriver session");
        }
    });
}

/// Issue 11: sign-in through a real OpenID Connect provider in a real browser: the button,
/// the provider's login form, and back to the dashboard with the account made from the
/// username claim and the groups claim in `$my_groups`.
#[test]
fn sign_in_through_the_oidc_provider_in_a_real_browser() {
    let mut hub = Hub::new(None, None);
    let _provider = OidcProvider::for_hub(&mut hub);
    hub.start();
    let site = format!("http://127.0.0.1:{}", hub.web_port);
    block_on(async {
        let (_driver, client) = Driver::browse().await;
        let browser = Page(&client);
        browser.open(&format!("{site}/signin")).await;
        browser.wait_for_text("Sign in with Test ID").await;
        browser.click("#signin-oidc").await;
        // The provider's own login page (its development login form: any login works).
        browser.wait_for_text("name=\"login\"").await;
        assert!(
            !browser.url().await.starts_with(&format!("{site}/")),
            "the login form is the provider's: {}",
            browser.url().await
        );
        browser.type_into("input[name=login]", "alice").await;
        browser
            .type_into("input[name=password]", "any password")
            .await;
        browser.click("button[type=submit]").await;
        browser.wait_for_text("Hello, alice").await;
        assert_eq!(
            browser.url().await,
            format!("{site}/"),
            "lands on the dashboard"
        );
        browser.open(&format!("{site}/me")).await;
        let page = browser.wait_for_text("from your sign-in provider").await;
        assert!(page.contains("packager"), "{page}");
        client.close().await.expect("ending the WebDriver session");
    });
    let users = hub.run(&["user", "list"]);
    assert!(users.contains("alice\tprovider"), "{users}");
}

/// ivan's two updates of his package and somebody else's, for the filter's-life test.
const A1: (&str, &str) = ("FEDORA-2024-a1", "python-requests-2.31.0-1.fc40");
const A2: (&str, &str) = ("FEDORA-2024-a2", "python-requests-2.32.3-1.fc41");
const KERNEL: (&str, &str) = ("FEDORA-2024-k1", "kernel-6.9.1-200.fc40");

/// A bodhi comment by `who` on an update (alias, build NVR) saying `text`: the catalog
/// makes the update's page its thread and the build's name its package.
fn bodhi_comment(id: &str, who: &str, (alias, nvr): (&str, &str), text: &str) -> String {
    envelope(
        id,
        "org.fedoraproject.prod.bodhi.update.comment",
        json!({"agent": who, "comment": {
            "user": {"name": who}, "text": text, "karma": 1,
            "update": {"alias": alias, "title": nvr, "builds": [{"nvr": nvr}]}
        }}),
    )
}

/// One filter's verdict on the why-page, found by the filter's name.
fn verdict_of(name: &str) -> String {
    format!("//div[@class='verdict'][h3/a[normalize-space()='{name}']]")
}

/// Issue 11: a filter's whole life in a real browser. It is built with the form (no
/// JavaScript: the server writes the condition), previewed against the archive before
/// and after it is saved, explained on the why-page (the filter that matched, and the one
/// predicate that decided another did not), and its notification is muted from the
/// mail's own link: a later comment on the muted update then sends nothing, while one on
/// another update still does.
#[test]
fn build_preview_explain_and_mute_a_filter_in_a_real_browser() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let smtp = Smtp::start(tmp.path());
    let mut hub = Hub::new(Some(&smtp), None);
    let out = hub.output(
        &["user", "add", "ivan", "--password-stdin"],
        Some("velvet crane harbour 42\n"),
    );
    assert!(out.status.success(), "{out:?}");
    hub.confirmed_destination("ivan", "ivan@example.org");
    let owners = hub.dir.path().join("owners.csv");
    std::fs::write(
        &owners,
        "record,name,member_kind,member\npackage,python-requests,user,ivan\n",
    )
    .expect("owners file");
    hub.run(&["ownership", "import", &owners.display().to_string()]);
    // A second filter, for the why-page to show one that does not match and what decided.
    hub.run(&[
        "filter",
        "add",
        "--user",
        "ivan",
        "--name",
        "my builds",
        "--condition",
        r#"app == "buildsys" and packages has $my_packages"#,
    ]);
    hub.start();
    let site = format!("http://127.0.0.1:{}", hub.web_port);
    // Archived before the new filter exists, so only a preview can show them.
    hub.publish(
        "archived",
        &[
            bodhi_comment("browser-a1-bob", "bob", A1, "bob tried a1"),
            bodhi_comment("browser-kernel-bob", "bob", KERNEL, "bob tried the kernel"),
        ],
    );
    wait_for("the archived messages", Duration::from_secs(60), || {
        (hub.stats()["processed"] == 2).then_some(())
    });
    assert_eq!(smtp.count(), 0, "no filter of ivan's matched them yet");
    block_on(async {
        let (_driver, client) = Driver::browse().await;
        let browser = Page(&client);
        browser
            .sign_in(&site, "ivan", "velvet crane harbour 42")
            .await;

        // The builder: an app and "my packages" ticked, the server writes the condition.
        browser.open(&format!("{site}/filters/new")).await;
        browser.wait_for_text("Build it with the form").await;
        browser.type_into("input[name=name]", "my bodhi").await;
        // The form starts from the example condition, read into its boxes.
        let me = browser
            .find("input[name=whose_me]")
            .await
            .is_selected()
            .await;
        assert!(
            matches!(me, Ok(true)),
            "usernames has $me is ticked: {me:?}"
        );
        browser.uncheck("input[name=whose_me]").await;
        browser.check("input[name=app][value=bodhi]").await;
        browser.check("input[name=whose_my_packages]").await;
        browser.click("button[name=build]").await;
        browser.wait_for_text("id=\"builder-written\"").await;
        let written = r#"app == "bodhi" and packages has $my_packages"#;
        assert_eq!(browser.value("textarea[name=condition]").await, written);
        assert_eq!(browser.value("input[name=name]").await, "my bodhi");
        // The form is read back from what it wrote: the same boxes stay ticked.
        for ticked in [
            "input[name=app][value=bodhi]",
            "input[name=whose_my_packages]",
        ] {
            let on = browser.find(ticked).await.is_selected().await;
            assert!(matches!(on, Ok(true)), "{ticked} is still ticked: {on:?}");
        }

        // Its preview before saving: the archived comment on his package, not the other.
        browser.click("button[name=preview]").await;
        browser.wait_for_text("id=\"preview-count\"").await;
        assert_eq!(browser.text(Locator::Css("#preview-count")).await, "1");
        let preview = browser.text(Locator::Css("#preview")).await;
        assert!(
            preview.contains("bob commented on bodhi update python-requests-2.31.0-1.fc40"),
            "{preview}"
        );
        assert!(!preview.contains("kernel"), "{preview}");
        assert_eq!(browser.value("textarea[name=condition]").await, written);

        browser.click("form.stack button[type=submit]").await;
        browser.wait_for_text(&format!("{written}</code>")).await;
        assert_eq!(browser.url().await, format!("{site}/filters"));

        // The saved filter's preview, from its link on the filters page.
        browser
            .click_on(Locator::XPath(
                "//tr[td/a[normalize-space()='my bodhi']]//a[normalize-space()='preview']",
            ))
            .await;
        browser.wait_for_text("id=\"preview-count\"").await;
        assert!(
            browser.url().await.ends_with("/preview"),
            "{}",
            browser.url().await
        );
        assert_eq!(browser.text(Locator::Css("#preview-count")).await, "1");
        let preview = browser.text(Locator::Css("#preview")).await;
        assert!(
            preview.contains("python-requests-2.31.0-1.fc40"),
            "{preview}"
        );

        // A new comment on his update arrives by mail, naming the filter.
        hub.publish(
            "carl",
            &[bodhi_comment(
                "browser-a1-carl",
                "carl",
                A1,
                "carl tried a1",
            )],
        );
        let mails = smtp.wait_mails(1, Duration::from_secs(60));
        let text = text_part(&mails[0]);
        assert!(text.contains("carl tried a1"), "{text}");
        assert!(text.contains("filter(s): my bodhi"), "{text}");

        // Why: the notification's own link.
        browser.open(&format!("{site}/notifications")).await;
        browser
            .wait_for_text("carl commented on bodhi update")
            .await;
        browser.click("a.why").await;
        browser.wait_for_text("id=\"verdicts\"").await;
        assert!(
            browser
                .url()
                .await
                .ends_with("/filters/why?message=browser-a1-carl"),
            "{}",
            browser.url().await
        );
        let matched = browser.text(Locator::XPath(&verdict_of("my bodhi"))).await;
        assert!(matched.starts_with("my bodhi: matches"), "{matched}");
        assert!(
            matched.contains(
                r#"holds: packages has $my_packages: packages are ["python-requests"], $my_packages is ["python-requests"]"#
            ),
            "{matched}"
        );
        let other = verdict_of("my builds");
        let failed = browser.text(Locator::XPath(&other)).await;
        assert!(failed.starts_with("my builds: does not match"), "{failed}");
        // Only the predicate that decided is explained and marked: the package test holds
        // but decided nothing.
        let reasons = client
            .find_all(Locator::XPath(&format!("{other}//li")))
            .await
            .expect("the reasons");
        assert_eq!(reasons.len(), 1, "{failed}");
        assert_eq!(
            reasons[0].text().await.expect("a reason"),
            r#"does not hold: app == "buildsys": app is "bodhi""#
        );
        assert_eq!(
            browser
                .text(Locator::XPath(&format!("{other}//mark")))
                .await,
            r#"app == "buildsys""#
        );

        // The mail's unsubscribe link: mute this update's thread, keep the filter.
        let link = text
            .lines()
            .find_map(|l| l.strip_prefix("Stop these notifications: "))
            .unwrap_or_else(|| panic!("no unsubscribe link in {text}"))
            .trim()
            .to_string();
        assert!(link.starts_with(&format!("{site}/unsubscribe/")), "{link}");
        browser.open(&link).await;
        browser.wait_for_text("Mute this thread").await;
        browser
            .click_on(Locator::XPath("//button[contains(., 'this thread')]"))
            .await;
        browser.wait_for_text("Undo: unmute").await;
        let thread = "this thread: https://bodhi.fedoraproject.org/updates/FEDORA-2024-a1 (bodhi)";
        let notice = browser.text(Locator::Css("main .notice")).await;
        assert!(
            notice.starts_with(&format!("Muted {thread} until")),
            "{notice}"
        );
        browser.open(&format!("{site}/filters")).await;
        let filters = browser.wait_for_text("Muted from a notification").await;
        assert!(filters.contains(thread), "{filters}");

        // A comment on the muted update, then one on his other update: the second is sent.
        // Once it is, and the first was processed before it, nothing was queued for the
        // first at all.
        hub.publish(
            "after-mute",
            &[
                bodhi_comment("browser-a1-erin", "erin", A1, "erin tried a1"),
                bodhi_comment("browser-a2-fay", "fay", A2, "fay tried a2"),
            ],
        );
        let mails = smtp.wait_mails(2, Duration::from_secs(60));
        assert!(
            mails.iter().any(|m| text_part(m).contains("fay tried a2")),
            "the comment on the other update was mailed"
        );
        wait_for(
            "the muted message to be processed",
            Duration::from_secs(60),
            || (hub.stats()["processed"] == 5).then_some(()),
        );
        let stats = hub.stats();
        let queued: i64 = ["pending", "sending", "sent", "dead"]
            .iter()
            .filter_map(|k| stats["outbox"][k].as_i64())
            .sum();
        assert_eq!(
            queued, 2,
            "only carl's and fay's comments were queued: {stats}"
        );
        let mails = smtp.mails();
        assert_eq!(mails.len(), 2);
        assert!(
            mails
                .iter()
                .all(|m| !text_part(m).contains("erin tried a1")),
            "the muted comment was mailed"
        );

        // Its why-page, the id typed into the form, says the mute silenced it.
        browser.open(&format!("{site}/filters/why")).await;
        browser.wait_for_text("name=\"message\"").await;
        browser
            .type_into("input[name=message]", "browser-a1-erin")
            .await;
        browser.click("main form.stack button[type=submit]").await;
        browser.wait_for_text("id=\"muted\"").await;
        let muted = browser.text(Locator::Css("#muted")).await;
        assert!(muted.contains(thread), "{muted}");
        let matched = browser.text(Locator::XPath(&verdict_of("my bodhi"))).await;
        assert!(matched.starts_with("my bodhi: matches"), "{matched}");
        client.close().await.expect("ending the WebDriver session");
    });
}

/// Issue 11: an admin writes a default filter on /admin/defaults in the browser; a person
/// who signs up afterwards, in a browser of their own, starts with it on /filters, while
/// the admin's account, made before it, is offered it on the dashboard instead.
#[test]
fn an_admins_default_filter_is_a_new_accounts_first_filter_in_a_real_browser() {
    let mut hub = Hub::new(None, None);
    let out = hub.output(
        &["user", "add", "hana", "--admin", "--password-stdin"],
        Some("velvet crane harbour 42\n"),
    );
    assert!(out.status.success(), "{out:?}");
    hub.start();
    let site = format!("http://127.0.0.1:{}", hub.web_port);
    let condition = r#"app == "bodhi" and usernames has $me"#;
    block_on(async {
        let (admin_driver, admin) = Driver::browse().await;
        let browser = Page(&admin);
        browser
            .sign_in(&site, "hana", "velvet crane harbour 42")
            .await;
        browser.open(&format!("{site}/admin/defaults")).await;
        let page = browser.wait_for_text("New default filter").await;
        assert!(page.contains("No default filters yet"), "{page}");
        browser
            .type_into("input[name=name]", "bodhi about me")
            .await;
        browser
            .type_into("textarea[name=condition]", condition)
            .await;
        browser.check("input[name=enabled]").await;
        browser.click("button[name=action][value=save]").await;
        browser.wait_for_text("id=\"default-filters\"").await;
        assert_eq!(browser.url().await, format!("{site}/admin/defaults"));
        let row = browser
            .text(Locator::Css("#default-filters tbody tr"))
            .await;
        assert!(
            row.contains("bodhi about me") && row.contains(condition) && row.contains("yes"),
            "{row}"
        );
        // hana's account is older than the default filter: offered, not given.
        browser.open(&format!("{site}/")).await;
        browser.wait_for_text("Hello, hana").await;
        let offer = browser.text(Locator::Css("#default-filters")).await;
        assert!(offer.contains("bodhi about me"), "{offer}");
        admin.close().await.expect("ending the WebDriver session");
        drop(admin_driver);

        // A browser that never saw the admin: its own chromedriver and profile.
        let (_driver, client) = Driver::browse().await;
        let browser = Page(&client);
        browser.open(&format!("{site}/signup")).await;
        browser.type_into("input[name=username]", "jonas").await;
        for field in ["input[name=password]", "input[name=password2]"] {
            browser.type_into(field, "amber lantern meadow 17").await;
        }
        browser.click("form.stack button[type=submit]").await;
        let dashboard = browser.wait_for_text("Hello, jonas").await;
        assert!(
            !dashboard.contains("id=\"default-filters\""),
            "a new account has it already, so nothing is offered: {dashboard}"
        );
        browser.open(&format!("{site}/filters")).await;
        browser.wait_for_text("</main>").await;
        let row = "//tr[td/a[normalize-space()='bodhi about me']]";
        let shown = browser.text(Locator::XPath(row)).await;
        assert!(shown.contains(condition), "{shown}");
        let state = browser.text(Locator::XPath(&format!("{row}/td[4]"))).await;
        assert_eq!(state, "on", "{shown}");
        client.close().await.expect("ending the WebDriver session");
    });
}

/// Issue 8 item 19: every process the browser test starts ends with it, also when the test
/// fails. A session is started on a thread that then panics, as a failing assertion would.
#[test]
fn browser_processes_end_with_a_failing_test() {
    let (tx, rx) = std::sync::mpsc::channel();
    let failed = std::thread::spawn(move || {
        block_on(async {
            let (driver, client) = Driver::browse().await;
            client.goto("about:blank").await.expect("a page");
            let started = marked(&driver.mark);
            assert!(
                started.len() > 2,
                "chromedriver and Chromium's processes carry the mark: {started:?}"
            );
            tx.send(driver.mark.clone()).expect("sending the mark");
            panic!("a failing browser test");
        })
    })
    .join();
    assert!(failed.is_err(), "the thread panicked as planned");
    let mark = rx.recv().expect("the browser was started");
    wait_for(
        "every process the browser test started to end",
        Duration::from_secs(10),
        || marked(&mark).is_empty().then_some(()),
    );
}
