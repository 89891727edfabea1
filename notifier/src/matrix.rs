//! The Matrix channel. (Being written: see
//! issue 10.)

use std::time::Duration;

use tidings_store::{ChannelKind, Destination};

use crate::channel::{Channel, SendFuture, SendResult};
use crate::render::Rendered;
use crate::{MatrixConfig, NotifierError};

/// Writes notifications to Matrix users.
pub struct MatrixChannel {
    timeout: Duration,
}

impl MatrixChannel {
    /// The channel for `config`'s account.
    pub fn from_config(config: &MatrixConfig, _user_agent: &str) -> Result<Self, NotifierError> {
        let timeout = config.timeout_secs;
        Ok(MatrixChannel {
            timeout: Duration::from_secs(timeout),
        })
    }
}

impl Channel for MatrixChannel {
    fn kind(&self) -> ChannelKind {
        ChannelKind::Matrix
    }

    fn timeout(&self) -> Duration {
        self.timeout
    }

    fn parallelism(&self) -> usize {
        8
    }

    fn send<'a>(&'a self, _to: &'a Destination, _rendered: &'a Rendered) -> SendFuture<'a> {
        Box::pin(async {
            SendResult::Retry {
                after: None,
                reason: "Matrix is not written yet".into(),
            }
        })
    }
}
