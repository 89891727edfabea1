//! Waiting out a database outage: while the store is unavailable (server down, disk full,
//! locked), the loops wait and try again, the wait doubling up to a cap, for as long as it
//! takes. An outage is never a reason to drop or reject anything.

use std::future::Future;
use std::time::Duration;

use tidings_store::StoreError;
use tokio_util::sync::CancellationToken;

use crate::NotifierError;

/// The first wait after a failure.
const FIRST_WAIT: Duration = Duration::from_millis(100);

/// Capped exponential backoff over one outage.
#[derive(Debug, Clone)]
pub struct Backoff {
    next: Duration,
    max: Duration,
    attempts: u32,
}

impl Backoff {
    /// Waits that double from 100 ms up to `max`.
    pub fn new(max: Duration) -> Backoff {
        Backoff {
            next: FIRST_WAIT.min(max),
            max,
            attempts: 0,
        }
    }

    /// Counts a failed attempt and returns the wait before the next one.
    pub fn fail(&mut self) -> Duration {
        self.attempts += 1;
        let wait = self.next;
        self.next = self.next.saturating_mul(2).min(self.max);
        wait
    }

    /// Failed attempts so far.
    pub fn attempts(&self) -> u32 {
        self.attempts
    }

    /// The outage is over: start again from the first wait.
    pub fn reset(&mut self) {
        *self = Backoff::new(self.max);
    }
}

/// Sleeps for `wait`; false when `shutdown` came first.
pub async fn pause(shutdown: &CancellationToken, wait: Duration) -> bool {
    tokio::select! {
        biased;
        _ = shutdown.cancelled() => false,
        _ = tokio::time::sleep(wait) => true,
    }
}

/// Whether an error is the store being unavailable (rather than refusing the data).
pub fn is_outage(err: &NotifierError) -> bool {
    matches!(err, NotifierError::Store(store) if store.is_unavailable())
}

/// Runs `attempt` until it succeeds or fails for a reason other than the store being
/// unavailable, waiting with capped backoff in between. `None` when `shutdown` came first.
pub async fn patiently<T, F, Fut>(
    what: &str,
    max_wait: Duration,
    shutdown: &CancellationToken,
    mut attempt: F,
) -> Option<Result<T, NotifierError>>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, NotifierError>>,
{
    let mut backoff = Backoff::new(max_wait);
    loop {
        match attempt().await {
            Err(err) if is_outage(&err) => {
                let wait = backoff.fail();
                tracing::warn!(
                    what,
                    attempt = backoff.attempts(),
                    error = %err,
                    "the database is unavailable; waiting to try again"
                );
                if !pause(shutdown, wait).await {
                    return None;
                }
            }
            done => {
                if backoff.attempts() > 0 {
                    tracing::info!(what, attempts = backoff.attempts(), "the database is back");
                }
                return Some(done);
            }
        }
    }
}

/// A store result with its error widened, for [`patiently`].
pub fn widen<T>(result: Result<T, StoreError>) -> Result<T, NotifierError> {
    result.map_err(NotifierError::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_double_up_to_the_cap_and_reset() {
        let mut backoff = Backoff::new(Duration::from_millis(500));
        let waits: Vec<u128> = (0..5).map(|_| backoff.fail().as_millis()).collect();
        assert_eq!(waits, [100, 200, 400, 500, 500]);
        assert_eq!(backoff.attempts(), 5);
        backoff.reset();
        assert_eq!((backoff.fail().as_millis(), backoff.attempts()), (100, 1));
    }

    /// issue 8 item 15: an outage is waited out however long it lasts; only an error that
    /// is not an outage ends the wait.
    #[tokio::test]
    async fn outages_are_waited_out_and_other_errors_returned() {
        let shutdown = CancellationToken::new();
        let mut calls = 0;
        let result = patiently("test", Duration::from_millis(1), &shutdown, || {
            calls += 1;
            let n = calls;
            async move {
                if n < 20 {
                    widen(Err(StoreError::Unavailable {
                        reason: "down".into(),
                    }))
                } else {
                    Ok(n)
                }
            }
        })
        .await;
        assert!(matches!(result, Some(Ok(20))), "{result:?}");
        let refused = patiently("test", Duration::from_millis(1), &shutdown, || async {
            widen::<()>(Err(StoreError::Refused {
                reason: "too long".into(),
            }))
        })
        .await;
        assert!(matches!(
            refused,
            Some(Err(NotifierError::Store(StoreError::Refused { .. })))
        ));
        shutdown.cancel();
        let stopped = patiently("test", Duration::from_secs(60), &shutdown, || async {
            widen::<()>(Err(StoreError::Unavailable {
                reason: "down".into(),
            }))
        })
        .await;
        assert!(stopped.is_none());
    }
}
