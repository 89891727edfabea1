//! An SMTP server that accepts connections and never answers: the fault is a plain TCP
//! listener in the test that holds every connection open and says nothing.

use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use crate::support::{envelope, wait_for, Hub, Publisher, Smtp};

/// Accepts TCP connections and never answers on them, until dropped.
struct SilentServer {
    port: u16,
    accepted: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl SilentServer {
    fn start() -> SilentServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("address").port();
        listener.set_nonblocking(true).expect("nonblocking");
        let (accepted, stop) = (
            Arc::new(AtomicUsize::new(0)),
            Arc::new(AtomicBool::new(false)),
        );
        let (count, stopped) = (accepted.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            let mut held: Vec<TcpStream> = Vec::new();
            while !stopped.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((stream, _)) => {
                        held.push(stream);
                        count.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(20)),
                }
            }
        });
        SilentServer {
            port,
            accepted,
            stop,
            thread: Some(thread),
        }
    }

    fn accepted(&self) -> usize {
        self.accepted.load(Ordering::Relaxed)
    }
}

impl Drop for SilentServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// issue 8 item 16: an SMTP server that accepts TCP and never answers stalled every send
/// slot forever, silently, and SIGTERM did not end the hub in 121 s. Now each send gives up
/// after `email.timeout_secs` and is retried, shutdown waits for sends in flight at most
/// `sender.shutdown_grace_secs`, and the mail goes out once a real server answers.
#[test]
fn a_silent_smtp_server_holds_neither_sends_nor_shutdown() {
    let silent = SilentServer::start();
    let mut hub = Hub::new(None, None);
    for (key, value) in [
        (
            "TIDINGS_EMAIL__SMTP_URL",
            format!("smtp://127.0.0.1:{}", silent.port),
        ),
        ("TIDINGS_EMAIL__TIMEOUT_SECS", "1".into()),
        ("TIDINGS_SENDER__BACKOFF_BASE_MS", "100".into()),
        ("TIDINGS_SENDER__BACKOFF_MAX_MS", "200".into()),
        ("TIDINGS_SENDER__MAX_ATTEMPTS", "1000".into()),
        ("TIDINGS_SENDER__LEASE_SECS", "2".into()),
        ("TIDINGS_SENDER__SHUTDOWN_GRACE_SECS", "1".into()),
    ] {
        hub.env.insert(key.into(), value);
    }
    hub.user_with_filter("hal", "hal@example.org", r#"topic ~ "org.test.**""#);
    hub.start();
    let publisher = Publisher::bind(&hub.zmq_endpoint);
    publisher.send_envelope(&envelope(
        "silent-1",
        "org.test.prod.smtp.event",
        serde_json::json!({"n": 1}),
    ));
    hub.wait_log_line(
        "a send to time out and be retried",
        Duration::from_secs(60),
        &["no answer within 1 s", "attempt=2"],
    );

    // Now sends that would hang for five minutes, and one in flight at SIGTERM.
    hub.kill();
    // A send may take 30 s (the lease must be longer), far past the 1 s shutdown grace.
    hub.env
        .insert("TIDINGS_EMAIL__TIMEOUT_SECS".into(), "30".into());
    hub.env
        .insert("TIDINGS_SENDER__LEASE_SECS".into(), "31".into());
    let before = silent.accepted();
    hub.start();
    wait_for("a send to hang", Duration::from_secs(60), || {
        (silent.accepted() > before).then_some(())
    });
    let (status, took) = hub.terminate(Duration::from_secs(60));
    eprintln!("SIGTERM with a send hanging: exited after {took:?}");
    let status = status.unwrap_or_else(|| panic!("no exit within 60 s of SIGTERM"));
    assert!(status.success(), "{status:?}; log:\n{}", hub.log());

    // A real server on that port: the mail goes out (the row's lease, at most 31 s, brings
    // it back).
    let port = silent.port;
    drop(silent);
    let tmp = tempfile::tempdir().expect("temp dir");
    let smtp = Smtp::start_on(tmp.path(), port);
    hub.start();
    let mails = smtp.wait_mails(1, Duration::from_secs(60));
    assert_eq!(mails.len(), 1);
}
