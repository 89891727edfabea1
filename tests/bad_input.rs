//! Bad input on the bus: malformed frames and bodies between good messages. The good ones
//! are all delivered; the bad ones are counted and kept as rejected; ingest goes on.

use std::time::{Duration, Instant};

use crate::support::{envelope, http_request, Hub, PgDatabase, Smtp};

#[test]
fn malformed_frames_are_counted_and_skipped_on_sqlite() {
    malformed_frames_are_counted_and_skipped(None);
}

/// PostgreSQL cannot store a NUL in text: such a message must be refused, not retried
/// forever (which stalled ingest before the decoder refused control characters).
#[test]
fn malformed_frames_are_counted_and_skipped_on_postgres() {
    let Some(db) = PgDatabase::create() else {
        return;
    };
    malformed_frames_are_counted_and_skipped(Some(&db.url));
}

fn malformed_frames_are_counted_and_skipped(database_url: Option<&str>) {
    let tmp = tempfile::tempdir().expect("temp dir");
    let smtp = Smtp::start(tmp.path());
    let mut hub = Hub::new(Some(&smtp), database_url);
    hub.user_with_filter("erin", "erin@example.org", r#"topic ~ "org.test.**""#);
    hub.start();

    let ctx = zmq::Context::new();
    let socket = ctx.socket(zmq::XPUB).expect("XPUB");
    socket.bind(&hub.zmq_endpoint).expect("bind");
    socket.set_rcvtimeo(30_000).expect("timeout");
    let subscription = socket.recv_bytes(0).expect("the hub subscribes");
    assert_eq!(subscription.first(), Some(&1));

    let good = |n: usize| {
        envelope(
            &format!("good-{n}"),
            "org.test.prod.app.event",
            serde_json::json!({"n": n}),
        )
    };
    let topic = b"org.test.prod.app.event".to_vec();
    let bad: Vec<Vec<Vec<u8>>> = vec![
        vec![topic.clone()],                                              // one frame
        vec![topic.clone(), b"{not json".to_vec()],                       // bad JSON
        vec![topic.clone(), br#"{"msg": {}}"#.to_vec()],                  // missing topic
        vec![topic.clone(), br#"{"topic": "x.y", "msg": [1]}"#.to_vec()], // msg not an object
        vec![topic.clone(), b"[1, 2, 3]".to_vec()],                       // not an object
        vec![topic.clone(), b"{}".to_vec(), b"extra".to_vec()],           // three frames
        vec![vec![0xff, 0xfe], b"{}".to_vec()],                           // topic not UTF-8
        vec![
            topic.clone(),
            br#"{"topic": "a.\u0000.b", "msg": {}}"#.to_vec(),
        ], // NUL in topic
        // issue 8 item 17: a 3 KB topic made mail header lines strict servers refuse.
        vec![
            topic.clone(),
            envelope("long-topic", &"t.".repeat(1500), serde_json::json!({})).into_bytes(),
        ],
        vec![
            topic.clone(),
            envelope(
                &"i".repeat(3000),
                "org.test.prod.app.event",
                serde_json::json!({}),
            )
            .into_bytes(),
        ], // 3 KB msg_id
    ];
    let send = |frames: &[Vec<u8>]| socket.send_multipart(frames.iter(), 0).expect("send");
    send(&[topic.clone(), good(1).into_bytes()]);
    for frames in &bad {
        send(frames);
    }
    send(&[topic.clone(), good(2).into_bytes()]);
    send(&[topic.clone(), good(3).into_bytes()]);

    let mails = smtp.wait_mails(3, Duration::from_secs(60));
    assert_eq!(mails.len(), 3);

    // issue 8 item 17: a 3 KB msg_id over HTTP was accepted on SQLite and failed
    // PostgreSQL's unique index with a 500 on every retry; it is a 400 naming the field.
    let token = hub.run(&["token", "add", "long-ids"]).trim().to_string();
    let long_id = envelope(
        &"i".repeat(3000),
        "org.test.prod.app.event",
        serde_json::json!({}),
    );
    let response = http_request(
        hub.web_port,
        "POST",
        "/api/v1/messages",
        Some(&token),
        long_id.as_bytes(),
    )
    .expect("an answer");
    assert_eq!(response.status, 400, "{}", response.body);
    assert!(
        response
            .body
            .contains("envelope field `msg_id` is 3000 bytes long; at most 255 are accepted"),
        "{}",
        response.body
    );

    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let stats = hub.stats();
        if stats["rejected"] == 11 {
            assert_eq!(stats["messages"], 3, "{stats}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "expected 11 rejected inputs: {stats}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let rejected = hub.run(&["outbox", "rejected"]);
    assert!(
        rejected.contains("envelope is not valid JSON at line 1, column 2"),
        "{rejected}"
    );
    assert!(
        rejected.contains("envelope field `topic` is missing"),
        "{rejected}"
    );
    assert!(
        rejected.contains("expected 2 frames [topic, envelope], got 1"),
        "{rejected}"
    );
    assert!(rejected.contains("topic frame is not UTF-8"), "{rejected}");
    assert!(
        rejected.contains("envelope field `topic` contains control characters"),
        "{rejected}"
    );
    assert!(
        rejected.contains("envelope field `topic` is 3000 bytes long; at most 255 are accepted"),
        "{rejected}"
    );
    let metrics = crate::support::http_get(hub.metrics_port, "/metrics").unwrap_or_default();
    assert!(
        metrics.contains("tidings_messages_rejected_total 11"),
        "{metrics}"
    );
    // Issue 8 item 10: the counters are on their own listener, not on the public site.
    assert_eq!(crate::support::http_get(hub.web_port, "/metrics"), None);
}
