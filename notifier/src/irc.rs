//! The IRC channel: one persistent connection per configured network. (Being written: see
//! issue 10.)

use std::time::Duration;

use tidings_store::{ChannelKind, Destination};

use crate::channel::{Channel, SendFuture, SendResult};
use crate::render::Rendered;
use crate::{IrcConfig, NotifierError};

/// Writes notifications to IRC nicks and channels.
pub struct IrcChannel {
    timeout: Duration,
}

impl IrcChannel {
    /// The channel for `config`'s networks.
    pub fn from_config(config: &IrcConfig) -> Result<Self, NotifierError> {
        let timeout = config
            .networks
            .values()
            .map(|n| n.timeout_secs)
            .max()
            .unwrap_or(30);
        Ok(IrcChannel {
            timeout: Duration::from_secs(timeout),
        })
    }
}

impl Channel for IrcChannel {
    fn kind(&self) -> ChannelKind {
        ChannelKind::Irc
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
                reason: "IRC is not written yet".into(),
            }
        })
    }
}
