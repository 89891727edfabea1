//! `tidings`: the one command that runs the hub, publishes to the bus, inspects messages
//! and administers accounts. This file parses the command line and hands over.

mod admin;
mod bench_amqp;
mod bench_chat;
mod bench_e2e;
mod bench_feed;
mod bench_flood;
mod bench_match;
mod bench_preview;
mod bench_send;
mod bridge;
mod config;
mod demo;
mod doctor;
mod inspect;
mod ownership;
mod publish;
mod serve;

/// Every process's allocator: see the `mimalloc` line in Cargo.toml.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::config::Config;

#[derive(Parser)]
#[command(
    name = "tidings",
    version,
    about = "A notification hub for a community's message bus"
)]
struct Cli {
    /// A TOML config file; without one, embedded defaults and TIDINGS_* variables apply.
    #[arg(long, short, global = true, env = "TIDINGS_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run everything in one process: web UI and API, bus ingest, matcher, senders.
    Serve {
        /// Make a demo account (its password is printed) and replay the bundled corpus as
        /// a live bus, a message a second, to see everything with real data at once.
        #[arg(long)]
        demo: bool,
    },
    /// Run the web UI and API only, beside `tidings notifier` and `tidings sender`
    /// processes on a shared PostgreSQL database.
    Web,
    /// Run bus ingest and the matcher only (PostgreSQL). One process matches at a time; the
    /// others stand by and take over when it stops.
    Notifier,
    /// Run an outbox sender only (PostgreSQL); several share the work.
    Sender,
    /// Apply database migrations and exit.
    Migrate,
    /// Check the configuration, data folder, database, buses, SMTP server and chat
    /// channels; print what is wrong and how to fix it (exit status 1 if anything is).
    Doctor,
    /// Put messages on the bus (ZeroMQ, or the HTTP API).
    Publish(publish::PublishArgs),
    /// Forward fedmsg (ZeroMQ) to fedora-messaging (AMQP) and back ([bridge], with the
    /// broker of [bus.amqp]); never carries a message back the way it came.
    Bridge,
    /// Read bus messages as JSON lines on stdin (fedmsg envelopes, or fedora-messaging's
    /// `{"topic", "headers", "id", "body"}` form); print one line of metadata for each.
    Inspect {
        /// Extra catalog folders (besides bus.catalog_dirs from the config).
        #[arg(long = "catalog-dir")]
        catalog_dirs: Vec<PathBuf>,
    },
    /// Manage user accounts.
    #[command(subcommand)]
    User(admin::UserCommand),
    /// Manage destinations.
    #[command(subcommand)]
    Destination(admin::DestinationCommand),
    /// Manage filters.
    #[command(subcommand)]
    Filter(admin::FilterCommand),
    /// Manage default filters: templates every new account starts with.
    #[command(subcommand)]
    DefaultFilter(admin::DefaultFilterCommand),
    /// Manage publisher API tokens.
    #[command(subcommand)]
    Token(admin::TokenCommand),
    /// Look at the outbox: dead notifications, rejected input.
    #[command(subcommand)]
    Outbox(admin::OutboxCommand),
    /// Package ownership and group membership: import, show a user's variables.
    #[command(subcommand)]
    Ownership(ownership::OwnershipCommand),
    /// What a user follows ($followed_users, $followed_packages).
    #[command(subcommand)]
    Follow(ownership::FollowCommand),
    /// Configuration helpers.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Benchmarks; each prints one JSON object.
    #[command(subcommand)]
    Bench(BenchCommand),
}

#[derive(Subcommand)]
enum ConfigCommand {
    /// Print the documented example config file.
    Example,
    /// Print the configuration in effect (file + environment + defaults), secrets hidden.
    Show,
}

/// The fedmsg corpus in this repository (see corpus/README.md), found wherever the clone is.
pub(crate) const DEFAULT_CORPUS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/corpus/fedmsg-meta/messages.jsonl"
);

/// The fedora-messaging corpus in this repository.
pub(crate) const FEDORA_MESSAGING_CORPUS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/corpus/fedora-messaging/messages.jsonl"
);

#[derive(Subcommand)]
enum BenchCommand {
    /// The match index against the naive evaluator, replaying the corpus.
    Match {
        /// Users to simulate.
        #[arg(long, default_value_t = 100_000)]
        users: usize,
        /// Filters per user.
        #[arg(long, default_value_t = 5)]
        filters_per_user: usize,
        /// The corpus (JSON lines with a `message` envelope each).
        #[arg(long, default_value = DEFAULT_CORPUS)]
        corpus: PathBuf,
        /// Users from a file instead, `{"users": [{"name": "alice", "packages": ["gtk3"]}]}`,
        /// each with FMN's three classic defaults (`--users` and `--filters-per-user` are
        /// then ignored).
        #[arg(long)]
        population: Option<PathBuf>,
    },
    /// The real sender draining a full outbox: to the mailbox folder, and to `--smtp`.
    Send {
        /// Outbox rows to fill and drain.
        #[arg(long, default_value_t = 20_000)]
        rows: usize,
        /// Destinations the rows are spread over.
        #[arg(long, default_value_t = 100)]
        destinations: usize,
        /// The sender's concurrency (sender.concurrency).
        #[arg(long, default_value_t = 64)]
        concurrency: usize,
        /// A local SMTP server to send to as well, `host:port`.
        #[arg(long)]
        smtp: Option<String>,
        /// The database to fill (default: a fresh SQLite file per drain).
        #[arg(long)]
        database_url: Option<String>,
    },
    /// The whole pipeline on a burst and at a steady rate: ZeroMQ ingest, the matcher and
    /// the sender, on the config in effect (embedded defaults: SQLite, the mailbox folder).
    E2e(bench_e2e::E2eArgs),
    /// How long one filter's Atom feed takes to build, over a store of archived corpus
    /// messages.
    Feed {
        /// Messages to archive (the corpus replayed with fresh ids).
        #[arg(long, default_value_t = 20_000)]
        messages: usize,
        /// Builds timed per filter.
        #[arg(long, default_value_t = 20)]
        rounds: usize,
        /// The corpus (JSON lines with a `message` envelope each).
        #[arg(long, default_value = DEFAULT_CORPUS)]
        corpus: PathBuf,
        /// The database to fill (default: a fresh SQLite file).
        #[arg(long)]
        database_url: Option<String>,
    },
    /// How long a filter preview (its last 7 days, counted and listed) takes, over a
    /// store of archived corpus messages.
    Preview {
        /// Messages to archive (the corpus replayed with fresh ids): a busy week.
        #[arg(long, default_value_t = 100_000)]
        messages: usize,
        /// Previews timed per condition.
        #[arg(long, default_value_t = 5)]
        rounds: usize,
        /// The corpus (JSON lines with a `message` envelope each).
        #[arg(long, default_value = DEFAULT_CORPUS)]
        corpus: PathBuf,
        /// The database to fill (default: a fresh SQLite file).
        #[arg(long)]
        database_url: Option<String>,
    },
    /// Decode + metadata throughput over each corpus, one thread (one JSON line each).
    Metadata {
        /// A corpus: JSON lines with a fedmsg envelope under `message`, or fedora-messaging's
        /// `topic`, `headers`, `id`, `body`. Repeat for several; by default both bundled ones.
        #[arg(long = "corpus", default_values = [DEFAULT_CORPUS, FEDORA_MESSAGING_CORPUS])]
        corpora: Vec<PathBuf>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("tidings: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Config(ConfigCommand::Example) => {
            print!("{}", config::EXAMPLE);
            return Ok(ExitCode::SUCCESS);
        }
        Command::Bench(BenchCommand::Match {
            users,
            filters_per_user,
            corpus,
            population,
        }) => {
            let population = match population {
                Some(file) => bench_match::Population::from_file(&file)?,
                None => bench_match::Population::Generated {
                    users,
                    filters_per_user,
                },
            };
            println!("{}", bench_match::run(&population, &corpus)?);
            return Ok(ExitCode::SUCCESS);
        }
        Command::Bench(BenchCommand::E2e(args)) => {
            println!("{}", bench_e2e::run(cli.config.as_deref(), args)?);
            return Ok(ExitCode::SUCCESS);
        }
        Command::Bench(BenchCommand::Send {
            rows,
            destinations,
            concurrency,
            smtp,
            database_url,
        }) => {
            let options = bench_send::Options {
                rows,
                destinations,
                concurrency,
                smtp,
                database_url,
            };
            println!("{}", runtime()?.block_on(bench_send::run(options))?);
            return Ok(ExitCode::SUCCESS);
        }
        Command::Bench(BenchCommand::Feed {
            messages,
            rounds,
            corpus,
            database_url,
        }) => {
            let options = bench_feed::Options {
                messages,
                rounds,
                corpus,
                database_url,
            };
            println!("{}", runtime()?.block_on(bench_feed::run(options))?);
            return Ok(ExitCode::SUCCESS);
        }
        Command::Bench(BenchCommand::Preview {
            messages,
            rounds,
            corpus,
            database_url,
        }) => {
            let options = bench_preview::Options {
                messages,
                rounds,
                corpus,
                database_url,
            };
            println!("{}", runtime()?.block_on(bench_preview::run(options))?);
            return Ok(ExitCode::SUCCESS);
        }
        Command::Bench(BenchCommand::Metadata { corpora }) => {
            for corpus in corpora {
                println!("{}", inspect::bench(&corpus)?);
            }
            return Ok(ExitCode::SUCCESS);
        }
        _ => {}
    }
    let config = Config::load(cli.config.as_deref())?;
    serve::init_logging(&config)?;
    tidings_store::set_default_delivery(config.delivery.policy());
    match cli.command {
        Command::Config(ConfigCommand::Show) => {
            let mut shown = config.clone();
            shown.email.smtp_url = shown.email.smtp_url.as_deref().map(tidings_store::redact);
            if let Some(email) = shown.channels.email.as_mut() {
                email.smtp_url = email.smtp_url.as_deref().map(tidings_store::redact);
            }
            shown.database_url = Some(tidings_store::redact(&config.database_url()));
            if let Some(oidc) = shown.web.oidc.as_mut() {
                if oidc.client_secret.is_some() {
                    oidc.client_secret = Some("***".into());
                }
            }
            print!("{}", toml::to_string_pretty(&shown)?);
            Ok(ExitCode::SUCCESS)
        }
        Command::Inspect { mut catalog_dirs } => {
            let mut dirs = config.bus.catalog_dirs.clone();
            dirs.append(&mut catalog_dirs);
            let (catalog, warnings) = inspect::load_catalog(&dirs);
            for warning in warnings {
                eprintln!("tidings: catalog: {warning}");
            }
            let (_, bad) = inspect::run(
                std::io::stdin().lock(),
                std::io::stdout().lock(),
                std::io::stderr(),
                &catalog,
            )?;
            Ok(if bad == 0 {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(3)
            })
        }
        Command::Publish(args) => publish::run(&config, args),
        Command::Doctor => runtime()?.block_on(doctor::run(&config)),
        command => runtime()?
            .block_on(async move {
                match command {
                    Command::Serve { demo } => serve::run(config, &serve::Role::ALL, demo).await,
                    Command::Web => serve::run(config, &[serve::Role::Web], false).await,
                    Command::Notifier => serve::run(config, &[serve::Role::Notifier], false).await,
                    Command::Sender => serve::run(config, &[serve::Role::Sender], false).await,
                    Command::Bridge => bridge::run(&config).await,
                    Command::Migrate => {
                        config.prepare()?;
                        serve::open_store(&config).await?.close().await;
                        eprintln!("tidings: migrations applied");
                        Ok(())
                    }
                    Command::User(c) => admin::user(&config, c).await,
                    Command::Destination(c) => admin::destination(&config, c).await,
                    Command::Filter(c) => admin::filter(&config, c).await,
                    Command::DefaultFilter(c) => admin::default_filter(&config, c).await,
                    Command::Token(c) => admin::token(&config, c).await,
                    Command::Outbox(c) => admin::outbox(&config, c).await,
                    Command::Ownership(c) => ownership::ownership(&config, c).await,
                    Command::Follow(c) => ownership::follow(&config, c).await,
                    _ => Ok(()),
                }
            })
            .map(|()| ExitCode::SUCCESS),
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}
