//! The notifier's error type.

/// What can stop a notifier loop or a channel from being set up.
#[derive(Debug, thiserror::Error)]
pub enum NotifierError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] tidings_store::StoreError),
    /// ZeroMQ refused an operation.
    #[error("zeromq {what}: {source}")]
    Zmq {
        /// What was being done.
        what: String,
        /// ZeroMQ's reason.
        source: zmq::Error,
    },
    /// The accept path broke its own contract (a bug, reported rather than panicking).
    #[error("bus: {what}")]
    Bus {
        /// What went wrong.
        what: String,
    },
    /// The email settings cannot work.
    #[error("email.{field}: {reason}")]
    EmailConfig {
        /// The setting at fault.
        field: &'static str,
        /// Why.
        reason: String,
    },
    /// A channel's settings cannot work.
    #[error("{field}: {reason}")]
    Config {
        /// The config key or section at fault.
        field: &'static str,
        /// Why.
        reason: String,
    },
    /// The sender's settings cannot work.
    #[error("sender.{field}: {reason}")]
    SenderConfig {
        /// The setting at fault.
        field: &'static str,
        /// Why.
        reason: String,
    },
    /// Publishing timed out before a subscriber connected.
    #[error("no subscriber connected to {endpoint} within {seconds} s; is `tidings serve` running with this endpoint in bus.zmq_endpoints?")]
    NoSubscriber {
        /// The endpoint bound.
        endpoint: String,
        /// How long we waited.
        seconds: u64,
    },
    /// A template failed to render.
    #[error("rendering {template}: {reason}")]
    Template {
        /// Which template.
        template: &'static str,
        /// Why.
        reason: String,
    },
}

impl NotifierError {
    pub(crate) fn zmq(what: impl Into<String>) -> impl FnOnce(zmq::Error) -> NotifierError {
        let what = what.into();
        move |source| NotifierError::Zmq { what, source }
    }
}
