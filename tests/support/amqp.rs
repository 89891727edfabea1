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
    /// Connects to the machine's broker and declares a topic exchange named after the test
    /// (`name`).
    pub fn start(name: &str) -> Broker {
        let url = std::env::var("TIDINGS_TEST_AMQP")
            .unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".into());
        Broker::at(&url, name)
    }

    /// The same on the broker at `url`.
    pub fn at(url: &str, name: &str) -> Broker {
        let url = url.to_string();
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
                    // Durable: it outlives a restart of the test's own node.
                    ExchangeDeclareOptions {
                        durable: true,
                        ..ExchangeDeclareOptions::default()
                    },
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

    /// Publishes `lines` (fedora-messaging's JSON form) to this broker's exchange with
    /// `tidings publish --amqp`, from a file in `hub`'s folder named after `name`.
    pub fn publish_file(&self, hub: &super::Hub, name: &str, lines: &[String]) {
        let file = hub.dir.path().join(format!("{name}.jsonl"));
        std::fs::write(&file, lines.join("\n")).expect("messages file");
        hub.run(&[
            "publish",
            "--amqp",
            &self.url,
            "--exchange",
            &self.exchange,
            "--file",
            &file.display().to_string(),
        ]);
    }

    /// Starts `hub` consuming this broker's queue; returns once its consumer is connected.
    pub fn start_hub(&self, hub: &mut super::Hub) {
        self.configure(hub);
        hub.start();
        hub.wait_log_line(
            "the AMQP consumer",
            Duration::from_secs(30),
            &["AMQP consumer connected"],
        );
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

/// A RabbitMQ node of the test's own (Debian's `rabbitmq-server`), on free ports with its
/// own data folder, to stop and start under a running hub. It is ended with the test.
pub struct RabbitServer {
    dir: tempfile::TempDir,
    pub port: u16,
    /// The TLS listener's port, when started with [`RabbitServer::start_tls`].
    pub tls_port: Option<u16>,
    /// Its one user and password (guest, or the common name TLS clients log in as).
    user: (String, String),
    dist_port: u16,
    name: String,
    child: Option<std::process::Child>,
}

/// The PEM files of a TLS listener: the CA client certificates must be signed by, and the
/// node's own certificate and key.
pub struct TlsFiles {
    pub ca: std::path::PathBuf,
    pub cert: std::path::PathBuf,
    pub key: std::path::PathBuf,
}

impl RabbitServer {
    /// Starts a node and waits until it takes connections.
    pub fn start() -> RabbitServer {
        RabbitServer::start_with(None)
    }

    /// Starts a node with, besides its plain listener, a TLS listener as Fedora's broker
    /// runs one: a client certificate signed by `tls.ca` is required
    /// (`fail_if_no_peer_cert`), and a client logs in as its certificate's common name
    /// (SASL EXTERNAL, the `rabbitmq_auth_mechanism_ssl` plugin). The node's one user is
    /// `user` (no guest), so only a client that logged in by certificate as `user` gets in
    /// over TLS; [`RabbitServer::url`] logs in as `user` with its password.
    pub fn start_tls(tls: &TlsFiles, user: &str) -> RabbitServer {
        RabbitServer::start_with(Some((tls, user)))
    }

    fn start_with(tls: Option<(&TlsFiles, &str)>) -> RabbitServer {
        let dir = tempfile::tempdir().expect("temp dir");
        let port = super::free_port();
        let dist_port = super::free_port();
        let mut conf = format!("listeners.tcp.default = 127.0.0.1:{port}\n");
        let mut user = ("guest".to_string(), "guest".to_string());
        let mut plugins = "[].\n";
        let tls_port = tls.map(|(tls, name)| {
            let tls_port = super::free_port();
            user = (name.to_string(), format!("pw-{}", super::uuid_like()));
            conf.push_str(&format!(
                "default_user = {}\ndefault_pass = {}\n",
                user.0, user.1
            ));
            conf.push_str(&format!(
                "listeners.ssl.default = 127.0.0.1:{tls_port}\n\
                 ssl_options.cacertfile = {}\n\
                 ssl_options.certfile = {}\n\
                 ssl_options.keyfile = {}\n\
                 ssl_options.verify = verify_peer\n\
                 ssl_options.fail_if_no_peer_cert = true\n\
                 auth_mechanisms.1 = EXTERNAL\n\
                 auth_mechanisms.2 = PLAIN\n\
                 auth_mechanisms.3 = AMQPLAIN\n\
                 ssl_cert_login_from = common_name\n",
                tls.ca.display(),
                tls.cert.display(),
                tls.key.display(),
            ));
            plugins = "[rabbitmq_auth_mechanism_ssl].\n";
            tls_port
        });
        std::fs::write(dir.path().join("rabbitmq.conf"), conf).expect("rabbitmq.conf");
        // The machine's own settings (its node name, its port) are not this node's.
        std::fs::write(dir.path().join("env.conf"), "").expect("env.conf");
        std::fs::write(dir.path().join("enabled_plugins"), plugins).expect("plugins");
        let mut server = RabbitServer {
            dir,
            port,
            tls_port,
            user,
            dist_port,
            name: format!("tidings-test-{port}@localhost"),
            child: None,
        };
        server.run();
        server
    }

    /// The URL of its default virtual host, as its user (guest unless started with TLS).
    pub fn url(&self) -> String {
        let (user, password) = &self.user;
        format!("amqp://{user}:{password}@127.0.0.1:{}/%2f", self.port)
    }

    /// The `amqps://` URL of its TLS listener (no user: the client certificate names it).
    pub fn tls_url(&self) -> String {
        let port = self.tls_port.expect("a node started with start_tls");
        format!("amqps://127.0.0.1:{port}/%2f")
    }

    fn run(&mut self) {
        use std::os::unix::process::CommandExt as _;
        let bin = std::env::var("TIDINGS_TEST_RABBITMQ_SERVER")
            .unwrap_or_else(|_| "/usr/lib/rabbitmq/bin/rabbitmq-server".into());
        let path = |name: &str| self.dir.path().join(name).display().to_string();
        let log = std::fs::File::create(self.dir.path().join("server.log")).expect("log");
        let child = std::process::Command::new(&bin)
            .env("RABBITMQ_CONF_ENV_FILE", path("env.conf"))
            .env("RABBITMQ_CONFIG_FILE", path("rabbitmq.conf"))
            .env("RABBITMQ_NODENAME", &self.name)
            .env("RABBITMQ_NODE_PORT", self.port.to_string())
            .env("RABBITMQ_DIST_PORT", self.dist_port.to_string())
            .env("RABBITMQ_MNESIA_BASE", path("mnesia"))
            .env("RABBITMQ_LOG_BASE", path("log"))
            .env("RABBITMQ_PID_FILE", path("pid"))
            .env("RABBITMQ_ENABLED_PLUGINS_FILE", path("enabled_plugins"))
            .env("HOME", self.dir.path())
            .env("ERL_EPMD_ADDRESS", "127.0.0.1")
            .env(super::OWNER_ENV, owner_mark())
            .process_group(0)
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| {
                panic!("starting {bin}: {e} (apt-get install rabbitmq-server; scripts/test does)")
            });
        self.child = Some(child);
        for port in std::iter::once(self.port).chain(self.tls_port) {
            super::wait_for(
                "the test's RabbitMQ node to take connections",
                Duration::from_secs(90),
                || std::net::TcpStream::connect(("127.0.0.1", port)).ok(),
            );
        }
    }

    /// Stops the node (its whole process group) and waits until its port is closed.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = std::process::Command::new("kill")
                .args(["-TERM", "--", &format!("-{}", child.id())])
                .stderr(std::process::Stdio::null())
                .status();
            let deadline = std::time::Instant::now() + Duration::from_secs(30);
            while child.try_wait().ok().flatten().is_none() && std::time::Instant::now() < deadline
            {
                std::thread::sleep(Duration::from_millis(100));
            }
            let _ = std::process::Command::new("kill")
                .args(["-KILL", "--", &format!("-{}", child.id())])
                .stderr(std::process::Stdio::null())
                .status();
            let _ = child.wait();
        }
        let port = self.port;
        super::wait_for(
            "the test's RabbitMQ node to stop",
            Duration::from_secs(30),
            || {
                std::net::TcpStream::connect(("127.0.0.1", port))
                    .is_err()
                    .then_some(())
            },
        );
    }

    /// Starts the node again on the same port and data (durable queues and persistent
    /// messages survive).
    pub fn restart(&mut self) {
        self.run();
    }
}

impl Drop for RabbitServer {
    fn drop(&mut self) {
        self.stop();
    }
}
