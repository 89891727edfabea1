//! A real RabbitMQ for the AMQP tests: the one `scripts/test` starts or installs (the
//! machine's, at 127.0.0.1:5672, guest/guest; `TIDINGS_TEST_AMQP` names another). Each
//! test declares an exchange and queue names of its own, so tests running side by side
//! never see each other's messages.

use std::time::Duration;

use lapin::options::{
    BasicGetOptions, BasicPublishOptions, ExchangeDeclareOptions, ExchangeDeleteOptions,
    QueueDeclareOptions, QueueDeleteOptions,
};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties, ExchangeKind};

use super::owner_mark;

/// A test's corner of the broker: its exchange and its queue's name.
pub struct Broker {
    pub url: String,
    pub exchange: String,
    pub queue: String,
    runtime: tokio::runtime::Runtime,
    connection: Connection,
    channel: Channel,
}

impl Broker {
    /// Connects and declares a topic exchange named after the test (`name`).
    pub fn start(name: &str) -> Broker {
        let url = std::env::var("TIDINGS_TEST_AMQP")
            .unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".into());
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let unique = format!(
            "tidings-test-{name}-{}",
            owner_mark().replace([':', '/'], "-")
        );
        let (connection, channel) = runtime.block_on(async {
            let connection = tokio::time::timeout(
                Duration::from_secs(10),
                Connection::connect(&url, ConnectionProperties::default()),
            )
            .await
            .unwrap_or_else(|_| panic!("RabbitMQ at {url} did not answer (scripts/test starts it)"))
            .unwrap_or_else(|e| panic!("RabbitMQ at {url}: {e} (scripts/test starts it)"));
            let channel = connection.create_channel().await.expect("channel");
            channel
                .exchange_declare(
                    unique.as_str().into(),
                    ExchangeKind::Topic,
                    ExchangeDeclareOptions::default(),
                    FieldTable::default(),
                )
                .await
                .expect("exchange");
            (connection, channel)
        });
        Broker {
            url,
            exchange: unique.clone(),
            queue: unique,
            runtime,
            connection,
            channel,
        }
    }

    /// The hub's settings to consume this broker's queue.
    pub fn configure(&self, hub: &mut super::Hub) {
        hub.env
            .insert("TIDINGS_BUS__AMQP__URL".into(), self.url.clone());
        hub.env
            .insert("TIDINGS_BUS__AMQP__EXCHANGE".into(), self.exchange.clone());
        hub.env
            .insert("TIDINGS_BUS__AMQP__QUEUE".into(), self.queue.clone());
    }

    /// Publishes raw bytes with `topic` and `properties` (what a broken publisher sends).
    pub fn publish_raw(&self, topic: &str, body: &[u8], properties: BasicProperties) {
        self.runtime.block_on(async {
            self.channel
                .basic_publish(
                    self.exchange.as_str().into(),
                    topic.into(),
                    BasicPublishOptions::default(),
                    body,
                    properties,
                )
                .await
                .expect("publish")
                .await
                .expect("published");
        });
    }

    /// Messages waiting in `queue` (declared if it is not).
    pub fn waiting(&self, queue: &str) -> u32 {
        self.runtime.block_on(async {
            self.channel
                .queue_declare(
                    queue.into(),
                    QueueDeclareOptions {
                        passive: true,
                        ..QueueDeclareOptions::default()
                    },
                    FieldTable::default(),
                )
                .await
                .map(|q| q.message_count())
                .unwrap_or_else(|e| panic!("queue {queue}: {e}"))
        })
    }

    /// Takes one message from `queue`: its routing key and body.
    pub fn take(&self, queue: &str) -> Option<(String, Vec<u8>)> {
        self.runtime.block_on(async {
            self.channel
                .basic_get(queue.into(), BasicGetOptions { no_ack: true })
                .await
                .expect("basic.get")
                .map(|m| {
                    (
                        m.delivery.routing_key.as_str().to_string(),
                        m.delivery.data.clone(),
                    )
                })
        })
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        let dead = format!("{}.dead", self.queue);
        self.runtime.block_on(async {
            for queue in [self.queue.as_str(), dead.as_str()] {
                let _ = self
                    .channel
                    .queue_delete(queue.into(), QueueDeleteOptions::default())
                    .await;
            }
            for exchange in [self.exchange.as_str(), dead.as_str()] {
                let _ = self
                    .channel
                    .exchange_delete(exchange.into(), ExchangeDeleteOptions::default())
                    .await;
            }
            let _ = self.connection.close(200, "done".into()).await;
        });
    }
}
