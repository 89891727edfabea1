//! Server keys: made once, the same for every caller and every later open.

use tidings_store::Store;

use crate::harness::{backends, ok};

#[tokio::test]
async fn made_once_and_shared() {
    for t in backends().await {
        let (n, s) = (t.name, &t.store);
        let first = ok!(n, s.server_key("csrf").await);
        let again = ok!(n, s.server_key("csrf").await);
        assert_eq!(first, again, "[{n}] a key must not change once made");
        let other = ok!(n, s.server_key("unsubscribe").await);
        assert_ne!(first, other, "[{n}] each purpose has its own key");
        // Another process opening the same database sees the same key.
        let reopened = ok!(n, Store::open(&t.url).await);
        assert_eq!(ok!(n, reopened.server_key("csrf").await), first, "[{n}]");
        reopened.close().await;
        let sig = first.sign(b"data");
        assert!(again.verify(b"data", &sig), "[{n}]");
    }
}
