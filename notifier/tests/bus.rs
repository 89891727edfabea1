//! The accept path through `bus::run` with a test source: a batch of ready input is
//! archived in one go, a malformed input in it is rejected without failing the others, a
//! duplicate is dropped, and every input is acknowledged only once it is committed (issue 9).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tidings_notifier::bus::{self, Accept, Accepted, Raw, RunSettings, Source, Wire};
use tidings_notifier::Metrics;
use tidings_store::Store;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::support;

/// Hands out its batches, then ends; records each acknowledgement with what the store
/// held at that moment.
struct Batches {
    batches: VecDeque<Vec<Raw>>,
    store: Store,
    acks: Arc<Mutex<Vec<(usize, Accepted, i64)>>>,
    /// How many acknowledgements there were when the source was closed.
    closed: Arc<Mutex<Option<usize>>>,
}

impl Source for Batches {
    type Ack = usize;

    async fn receive(&mut self, max: usize) -> Option<Vec<(Raw, usize)>> {
        let batch = self.batches.pop_front()?;
        assert!(batch.len() <= max, "a source returns at most max");
        let seen = self.acks.lock().expect("acks").len();
        Some(
            batch
                .into_iter()
                .enumerate()
                .map(|(i, raw)| (raw, seen + i))
                .collect(),
        )
    }

    async fn settled(&mut self, ack: usize, accepted: &Accepted) {
        // What the store holds when the source hears of it: committed already.
        let (archived, _) = self.store.message_counts().await.expect("counts");
        let rejected = self.store.rejected_count().await.expect("rejected");
        self.acks
            .lock()
            .expect("acks")
            .push((ack, accepted.clone(), archived + rejected));
    }

    async fn close(&mut self) {
        let acks = self.acks.lock().expect("acks").len();
        let mut closed = self.closed.lock().expect("closed");
        assert!(closed.is_none(), "closed once");
        *closed = Some(acks);
    }
}

fn envelope(id: &str) -> Raw {
    let body = serde_json::json!({
        "topic": "org.test.prod.bus.event", "msg": {}, "msg_id": id,
        "timestamp": 1_700_000_000.0, "i": 1,
    });
    Raw {
        origin: "test:bus".into(),
        wire: Wire::Frames(vec![
            b"org.test.prod.bus.event".to_vec(),
            body.to_string().into_bytes(),
        ]),
    }
}

#[tokio::test]
async fn a_batch_is_stored_at_once_and_acknowledged_after_its_commit() {
    let (_dir, store) = support::store().await;
    let metrics = Arc::new(Metrics::default());
    let wake = Arc::new(Notify::new());
    let accept = Accept::new(
        store.clone(),
        Arc::new(tidings_rules::Metadata::derive),
        metrics.clone(),
        wake.clone(),
    );
    let malformed = Raw {
        origin: "test:bus".into(),
        wire: Wire::Frames(vec![b"org.test".to_vec(), b"{not json".to_vec()]),
    };
    let acks = Arc::new(Mutex::new(Vec::new()));
    let closed = Arc::new(Mutex::new(None));
    let source = Batches {
        batches: VecDeque::from([
            vec![envelope("a"), malformed, envelope("b"), envelope("a")],
            vec![envelope("c")],
        ]),
        store: store.clone(),
        acks: acks.clone(),
        closed: closed.clone(),
    };
    let settings = RunSettings {
        batch: 16,
        retry_max: Duration::from_millis(100),
    };
    bus::run(source, &accept, settings, &CancellationToken::new()).await;

    let acks = acks.lock().expect("acks").clone();
    let outcomes: Vec<String> = acks
        .iter()
        .map(|(_, accepted, _)| match accepted {
            Accepted::Stored { id, .. } => format!("stored {id}"),
            Accepted::Duplicate(id) => format!("duplicate {id}"),
            Accepted::Rejected(_) => "rejected".into(),
        })
        .collect();
    assert_eq!(
        outcomes,
        [
            "stored a",
            "rejected",
            "stored b",
            "duplicate a",
            "stored c"
        ]
    );
    // The whole first batch was committed before its first acknowledgement.
    assert!(acks[..4].iter().all(|(_, _, held)| *held == 3), "{acks:?}");
    assert_eq!(acks[4].2, 4, "{acks:?}");
    assert_eq!(store.message_counts().await.expect("counts"), (3, 0));
    assert_eq!(store.rejected_count().await.expect("rejected"), 1);
    assert_eq!(
        (
            metrics.ingested.get(),
            metrics.duplicates.get(),
            metrics.rejected.get()
        ),
        (3, 1, 1)
    );
    // The three stored were sent at 1,700,000,000 s: each lagged by years.
    let text = metrics.render();
    assert!(
        text.lines()
            .any(|l| l == "tidings_ingest_lag_seconds_count 3"),
        "{text}"
    );
    // Closed once, after the last acknowledgement.
    assert_eq!(*closed.lock().expect("closed"), Some(5));
}
