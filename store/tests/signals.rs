//! Issue 9: what lets the pipeline's roles run as separate processes. The change log never
//! skips a committed change, however writers interleave; wake-ups reach another process on
//! the same database; one matcher holds its lock at a time, and a standby takes it once the
//! holder's session ends.

use std::collections::BTreeSet;
use std::time::Duration;

use tidings_store::{Store, Wake};

use crate::harness::{backends, filter_input, ok, user, TestStore};

/// Saves per user in the concurrent-save test.
const SAVES: usize = 150;
/// Long enough for any wake-up on a loaded machine; a lost one never arrives.
const ARRIVES: Duration = Duration::from_secs(10);

/// Issue 9: on PostgreSQL, two users saving at the same moment could commit their change
/// rows out of id order; a reader that saw the higher id moved past the lower one, and that
/// user's edit was ignored until their next change. Writers save concurrently while a
/// reader follows the log the way the matcher does; every change saved must be seen.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_saves_never_skip_a_change() {
    for t in backends().await {
        let n = t.name;
        let start = ok!(n, t.store.last_change().await);
        let mut writers = tokio::task::JoinSet::new();
        for name in ["alice", "bob", "carol"] {
            let owner = user(&t, name).await;
            let filter = ok!(
                n,
                t.store
                    .create_filter(owner.id, &filter_input("f", &[]))
                    .await
            );
            let store = t.store.clone();
            writers.spawn(async move {
                for i in 0..SAVES {
                    let input = filter_input(&format!("save {i}"), &[]);
                    if let Err(err) = store.update_filter(owner.id, filter.id, &input).await {
                        panic!("[{n}] saving {name}'s filter: {err}");
                    }
                }
            });
        }
        // Follow the log as the matcher does: past the last id seen.
        let (mut cursor, mut seen) = (start, BTreeSet::new());
        loop {
            let writing = !writers.is_empty();
            for change in ok!(n, t.store.changes_since(cursor).await) {
                seen.insert(change.id);
                cursor = cursor.max(change.id);
            }
            if !writing {
                break;
            }
            while let Some(done) = writers.try_join_next() {
                if let Err(err) = done {
                    panic!("[{n}] a writer failed: {err}");
                }
            }
        }
        let saved: BTreeSet<i64> = ok!(n, t.store.changes_since(start).await)
            .into_iter()
            .map(|c| c.id)
            .collect();
        // Three filters created, then every save.
        assert_eq!(saved.len(), 3 + 3 * SAVES, "[{n}] change rows written");
        let skipped: Vec<&i64> = saved.difference(&seen).collect();
        assert!(
            skipped.is_empty(),
            "[{n}] the reader skipped {} committed change(s): {skipped:?}",
            skipped.len()
        );
    }
}

/// A second store on the same database, as another process would open it.
async fn other_process(t: &TestStore) -> Store {
    ok!(t.name, Store::open(&t.url).await)
}

/// Issue 9: wake-ups cross processes on PostgreSQL (LISTEN/NOTIFY) and reach this
/// process's loops on both backends; a saved preference wakes the matcher by itself.
#[tokio::test]
async fn wake_ups_reach_the_loops_of_every_process() {
    for t in backends().await {
        let n = t.name;
        // On SQLite the database belongs to one process: the wake-up stays in it.
        let (here, there) = if n == "postgres" {
            (t.store.clone(), other_process(&t).await)
        } else {
            (t.store.clone(), t.store.clone())
        };
        let mut matcher = there.wakes(Wake::Matcher);
        let mut sender = there.wakes(Wake::Sender);
        // The listener raises everything once it listens (what was sent before is
        // unknown): take that first, so what follows is ours.
        let _ = tokio::time::timeout(Duration::from_millis(500), matcher.next()).await;
        let _ = tokio::time::timeout(Duration::from_millis(500), sender.next()).await;

        here.signal(Wake::Sender);
        tokio::time::timeout(ARRIVES, sender.next())
            .await
            .unwrap_or_else(|_| panic!("[{n}] a sender wake-up did not arrive"));

        // A filter saved through the store signals the matcher at commit.
        let alice = user(&t, "alice").await;
        ok!(
            n,
            here.create_filter(alice.id, &filter_input("mine", &[]))
                .await
        );
        tokio::time::timeout(ARRIVES, matcher.next())
            .await
            .unwrap_or_else(|_| panic!("[{n}] saving a filter did not wake the matcher"));
    }
}

/// Issue 9: one matcher at a time. A second process cannot take the lock while the first
/// holds it, and takes it once the first's session ends (as when its process is killed).
#[tokio::test]
async fn one_matcher_holds_the_lock_and_a_standby_takes_over() {
    for t in backends().await {
        let n = t.name;
        let mut active = ok!(n, t.store.matcher_lock().await);
        assert!(
            ok!(n, active.try_take().await),
            "[{n}] a free lock is taken"
        );
        assert!(ok!(n, active.try_take().await), "[{n}] and stays held");
        if n != "postgres" {
            // SQLite: one process per database, and the lock is never lost.
            let lost = tokio::time::timeout(Duration::from_millis(200), active.lost()).await;
            assert!(lost.is_err(), "[{n}] lost");
            continue;
        }
        let other = other_process(&t).await;
        let mut standby = ok!(n, other.matcher_lock().await);
        assert!(!ok!(n, standby.try_take().await), "[{n}] held elsewhere");
        active.release().await;
        assert!(ok!(n, standby.try_take().await), "[{n}] released, taken");

        // The holder's session ends under it (a server restart, a cut connection): the
        // holder notices, and another process can take the lock.
        let third = other_process(&t).await;
        let mut waiting = ok!(n, third.matcher_lock().await);
        assert!(!ok!(n, waiting.try_take().await), "[{n}] still held");
        crate::harness::execute(
            &t,
            "SELECT pg_terminate_backend(pid) FROM pg_locks \
             WHERE locktype = 'advisory' AND objid = 2 AND granted",
        )
        .await;
        tokio::time::timeout(ARRIVES, standby.lost())
            .await
            .unwrap_or_else(|_| panic!("[{n}] the holder did not notice its lock was gone"));
        assert!(!standby.is_held(), "[{n}]");
        assert!(ok!(n, waiting.try_take().await), "[{n}] taken over");
    }
}
