//! Admin commands for operators and scripts: accounts, destinations, filters, tokens and a
//! look at the outbox. Same store calls, and so the same validation, as the web UI.

use std::io::BufRead;

use anyhow::{bail, Context as _};
use clap::{Args, Subcommand};
use tidings_rules::links::Links;
use tidings_rules::Condition;
use tidings_store::{
    AccessToken, ChannelKind, ChannelSettings, DefaultFilterInput, Delivery, DeliveryPolicy,
    FilterInput, NewDestination, Schedule, Store, TimeOfDay, TokenScope, User,
};

use crate::config::Config;

#[derive(Subcommand)]
pub enum UserCommand {
    /// Create an account.
    Add {
        username: String,
        /// Make the user an admin.
        #[arg(long)]
        admin: bool,
        /// Read a password (first line) from stdin; without it the account cannot sign in
        /// locally.
        #[arg(long, conflicts_with = "provider")]
        password_stdin: bool,
        /// Make the account for the OpenID Connect provider: no password; the first sign-in
        /// through the provider whose username claim is this name claims it.
        #[arg(long)]
        provider: bool,
    },
    /// Hand a local account over to the OpenID Connect provider: its password goes, and the
    /// next sign-in through the provider whose username claim is its name claims it.
    Provider { username: String },
    /// List accounts.
    List,
    /// Disable an account: no sign-in, no notifications.
    Disable { username: String },
    /// Enable a disabled account.
    Enable { username: String },
    /// Show or set a user's time zone and quiet hours (notifications in quiet hours wait
    /// for a digest sent when they end).
    Schedule {
        username: String,
        /// An IANA time zone name: Europe/Paris, America/New_York, UTC.
        #[arg(long)]
        time_zone: Option<String>,
        /// Quiet hours, local time: 22:00-07:00.
        #[arg(long, conflicts_with = "no_quiet")]
        quiet: Option<String>,
        /// No quiet hours.
        #[arg(long)]
        no_quiet: bool,
    },
}

#[derive(Subcommand)]
pub enum DestinationCommand {
    /// Add an email address, a webhook, an ntfy topic, a Matrix user or an IRC nick or
    /// channel; a confirmation (a link by mail, a challenge posted to the webhook, a link
    /// published to the topic, a code sent to the chat) is sent unless --confirmed. A
    /// webhook's signing secret is printed once.
    #[command(group(clap::ArgGroup::new("address").required(true).args(["email", "webhook", "ntfy", "matrix", "irc"])))]
    Add {
        #[arg(long)]
        user: String,
        /// An email address.
        #[arg(long)]
        email: Option<String>,
        /// A webhook's URL (https://…).
        #[arg(long)]
        webhook: Option<String>,
        /// An ntfy topic's URL (https://ntfy.sh/mytopic).
        #[arg(long)]
        ntfy: Option<String>,
        /// A Matrix user ID (@nick:fedora.im).
        #[arg(long)]
        matrix: Option<String>,
        /// An IRC nick or channel and its network (nick@libera, #channel@libera).
        #[arg(long)]
        irc: Option<String>,
        /// With --ntfy: the access token publishing to the topic needs (sent as a bearer
        /// token).
        #[arg(long)]
        token: Option<String>,
        /// Mark it confirmed at once (the admin vouches for the address).
        #[arg(long)]
        confirmed: bool,
    },
    /// Confirm a user's Matrix or IRC destination by the code sent to it (as its owner
    /// would type it on the destinations page).
    Confirm {
        #[arg(long)]
        user: String,
        /// The destination's id (`destination list`).
        id: i64,
        /// The code it was sent.
        code: String,
    },
    /// Show or set how a destination's notifications go out: at once (with a flood limit:
    /// the rest of a flood in one summary) or in digests.
    Delivery {
        #[arg(long)]
        user: String,
        /// The destination's id (`destination list`).
        id: i64,
        /// At once, at most --flood-max per --flood-window minutes.
        #[arg(long, conflicts_with = "digest")]
        immediate: bool,
        /// Notifications at once per window (0: no limit; default 20).
        #[arg(long, requires = "immediate")]
        flood_max: Option<u32>,
        /// The flood window in minutes (default 10).
        #[arg(long, requires = "immediate")]
        flood_window: Option<u32>,
        /// In digests: give --every, --daily and/or --after.
        #[arg(long)]
        digest: bool,
        #[command(flatten)]
        when: DigestWhen,
    },
    /// List a user's destinations.
    List {
        #[arg(long)]
        user: String,
    },
    /// Remove one of a user's destinations.
    Remove {
        #[arg(long)]
        user: String,
        id: i64,
    },
}

#[derive(Subcommand)]
pub enum FilterCommand {
    /// Add a filter; the condition is text, e.g. 'topic ~ "org.*.bodhi.**" and usernames has $me'.
    Add {
        #[arg(long)]
        user: String,
        #[arg(long)]
        name: String,
        #[arg(long)]
        condition: String,
        /// Destinations (their address or id); default: all of the user's destinations.
        #[arg(long = "to")]
        to: Vec<String>,
        /// Create it disabled.
        #[arg(long)]
        disabled: bool,
    },
    /// List a user's filters, including any that cannot be read (with why).
    List {
        #[arg(long)]
        user: String,
    },
    /// List every quarantined filter: set aside by the matcher because its stored row
    /// could not be read, until its owner saves or deletes it.
    Quarantined,
    /// Remove one of a user's filters.
    Remove {
        #[arg(long)]
        user: String,
        id: i64,
    },
    /// Show or set when a filter's notifications go out: as each destination says
    /// (--instant), or in a digest of the filter's own (--digest with --every, --daily
    /// and/or --after).
    Delivery {
        #[arg(long)]
        user: String,
        /// The filter's id (`filter list`).
        id: i64,
        /// As each destination says: at once with its flood limit, or its digest.
        #[arg(long, conflicts_with = "digest")]
        instant: bool,
        /// In a digest of this filter's own: give --every, --daily and/or --after.
        #[arg(long)]
        digest: bool,
        #[command(flatten)]
        when: DigestWhen,
    },
    /// Print the secret URL of one of a user's filters' Atom feed.
    Feed {
        #[arg(long)]
        user: String,
        id: i64,
        /// Replace the URL first: the old one stops working.
        #[arg(long)]
        new: bool,
    },
}

/// When a digest goes out (`--digest` with any of these), for a destination or a filter.
#[derive(Args)]
pub struct DigestWhen {
    /// A digest this many minutes after the first notification it holds.
    #[arg(long, requires = "digest")]
    every: Option<u32>,
    /// A digest daily at this local time (HH:MM).
    #[arg(long, requires = "digest")]
    daily: Option<String>,
    /// A digest as soon as this many notifications wait.
    #[arg(long, requires = "digest")]
    after: Option<u32>,
}

impl DigestWhen {
    /// The digest these describe.
    fn policy(self) -> anyhow::Result<DeliveryPolicy> {
        let daily_at = self
            .daily
            .map(|at| TimeOfDay::parse(&at))
            .transpose()
            .map_err(|e| anyhow::anyhow!("--daily: {e}"))?;
        Ok(DeliveryPolicy::Digest {
            every_minutes: self.every,
            daily_at,
            max_items: self.after,
        })
    }
}

#[derive(Subcommand)]
pub enum DefaultFilterCommand {
    /// Add a default filter: every account made from now on starts with it, and existing
    /// accounts are offered it on their dashboard. The condition may use $me,
    /// $my_packages, $my_groups, $followed_users and $followed_packages, which each user's
    /// own values fill in.
    Add {
        #[arg(long)]
        name: String,
        #[arg(long)]
        condition: String,
        /// Add it disabled: neither given nor offered until enabled on the admin page.
        #[arg(long)]
        disabled: bool,
    },
    /// List default filters: id, name, on or off, condition.
    List,
    /// Remove a default filter (the copies users have stay theirs).
    Remove { id: i64 },
}

#[derive(Subcommand)]
pub enum TokenCommand {
    /// Create an API token; it is printed once.
    Add {
        name: String,
        /// What it may do: publish (POST /api/v1/messages), ownership
        /// (PUT /api/v1/ownership), or admin (both, and any later admin API).
        #[arg(long, default_value = "publish", value_parser = parse_scope)]
        scope: TokenScope,
    },
    /// List tokens: name, scope, when made, when last used (never the token).
    List,
    /// Revoke a token: it stops working at once.
    Revoke { name: String },
}

fn parse_scope(text: &str) -> Result<TokenScope, String> {
    text.parse()
        .map_err(|e: tidings_store::StoreError| e.to_string())
}

#[derive(Subcommand)]
pub enum OutboxCommand {
    /// Counts of messages and notifications.
    Stats,
    /// Notifications that failed for good.
    Dead {
        #[arg(long, default_value_t = 50)]
        limit: i64,
    },
    /// Queue dead notifications again, due now, their attempts counted afresh (after the
    /// cause is fixed): the ids given, or every dead one with --all.
    #[command(group(clap::ArgGroup::new("which").required(true).args(["ids", "all"])))]
    Retry {
        /// Outbox ids, as `outbox dead` lists them.
        ids: Vec<i64>,
        /// Every dead notification.
        #[arg(long)]
        all: bool,
    },
    /// Bus input that was refused as malformed.
    Rejected {
        #[arg(long, default_value_t = 50)]
        limit: i64,
    },
}

async fn open(config: &Config) -> anyhow::Result<Store> {
    config.prepare()?;
    Store::open(&config.database_url()).await.with_context(|| {
        format!(
            "opening the database {}",
            tidings_store::redact(&config.database_url())
        )
    })
}

async fn user_named(store: &Store, username: &str) -> anyhow::Result<User> {
    store
        .user_by_name(username)
        .await?
        .with_context(|| format!("no user named {username:?}"))
}

pub async fn default_filter(config: &Config, command: DefaultFilterCommand) -> anyhow::Result<()> {
    let store = open(config).await?;
    match command {
        DefaultFilterCommand::Add {
            name,
            condition,
            disabled,
        } => {
            let condition =
                Condition::parse(&condition).map_err(|e| anyhow::anyhow!("--condition: {e}"))?;
            let input = DefaultFilterInput {
                name,
                condition,
                delivery: Delivery::Instant,
                enabled: !disabled,
            };
            let t = store.create_default_filter(&input).await?;
            println!("added default filter {:?} (id {})", t.name, t.id);
            let (catalog, _) = crate::inspect::load_catalog(&config.bus.catalog_dirs);
            for warning in t.condition.warnings(&catalog.app_names(), None) {
                eprintln!("warning: {warning}");
            }
        }
        DefaultFilterCommand::List => {
            for t in store.default_filters().await? {
                let state = if t.enabled { "on" } else { "off" };
                println!("{}\t{}\t{state}\t{}", t.id, t.name, t.condition);
            }
        }
        DefaultFilterCommand::Remove { id } => {
            store
                .delete_default_filter(id)
                .await
                .with_context(|| format!("no default filter with id {id}"))?;
            println!("removed default filter {id}");
        }
    }
    Ok(())
}

pub async fn user(config: &Config, command: UserCommand) -> anyhow::Result<()> {
    let store = open(config).await?;
    match command {
        UserCommand::Add {
            username,
            admin,
            password_stdin,
            provider,
        } => {
            if provider {
                let user = store.create_provider_user(&username, admin).await?;
                println!(
                    "created user {} (id {}) for the sign-in provider",
                    user.username, user.id
                );
                return Ok(());
            }
            let password = if password_stdin {
                let mut line = String::new();
                std::io::stdin()
                    .lock()
                    .read_line(&mut line)
                    .context("reading the password from stdin")?;
                Some(line.trim_end_matches(['\r', '\n']).to_string())
            } else {
                None
            };
            let user = store
                .create_user(&username, password.as_deref(), admin)
                .await?;
            println!("created user {} (id {})", user.username, user.id);
        }
        UserCommand::List => {
            for u in store.users().await? {
                let flags = [
                    (u.is_admin, "admin"),
                    (u.disabled, "disabled"),
                    (u.from_provider, "provider"),
                ]
                .iter()
                .filter(|(on, _)| *on)
                .map(|(_, name)| *name)
                .collect::<Vec<_>>()
                .join(",");
                println!("{}\t{}\t{}", u.id, u.username, flags);
            }
        }
        UserCommand::Provider { username } => {
            store.hand_to_provider(&username).await?;
            println!("{username} now signs in through the sign-in provider only");
        }
        UserCommand::Disable { username } => {
            store.set_user_disabled(&username, true).await?;
            println!("disabled {username}");
        }
        UserCommand::Schedule {
            username,
            time_zone,
            quiet,
            no_quiet,
        } => {
            let user = user_named(&store, &username).await?;
            let current = store.schedule(user.id).await?;
            if time_zone.is_some() || quiet.is_some() || no_quiet {
                let zone = time_zone.unwrap_or_else(|| current.time_zone().to_string());
                let quiet = match (quiet, no_quiet) {
                    (_, true) => None,
                    (Some(span), _) => {
                        let (from, to) = span.split_once('-').context(
                            "--quiet: give the quiet hours as a span of local times, 22:00-07:00",
                        )?;
                        let parse = |t: &str| {
                            TimeOfDay::parse(t).map_err(|e| anyhow::anyhow!("--quiet: {e}"))
                        };
                        Some((parse(from)?, parse(to)?))
                    }
                    (None, false) => current.quiet(),
                };
                let schedule = Schedule::new(&zone, quiet).map_err(|e| {
                    anyhow::anyhow!("--{}: {}", e.field.replace('_', "-"), e.reason)
                })?;
                store.set_schedule(user.id, &schedule).await?;
            }
            let schedule = store.schedule(user.id).await?;
            let quiet = schedule
                .quiet()
                .map(|(from, to)| format!("quiet {from}-{to}"))
                .unwrap_or_else(|| "no quiet hours".into());
            println!("{username}\t{}\t{quiet}", schedule.time_zone());
        }
        UserCommand::Enable { username } => {
            store.set_user_disabled(&username, false).await?;
            println!("enabled {username}");
        }
    }
    Ok(())
}

pub async fn destination(config: &Config, command: DestinationCommand) -> anyhow::Result<()> {
    let store = open(config).await?;
    match command {
        DestinationCommand::Add {
            user,
            email,
            webhook,
            ntfy,
            matrix,
            irc,
            token,
            confirmed,
        } => {
            let given = [
                (ChannelKind::Email, email),
                (ChannelKind::Webhook, webhook),
                (ChannelKind::Ntfy, ntfy),
                (ChannelKind::Matrix, matrix),
                (ChannelKind::Irc, irc),
            ];
            let mut given = given
                .into_iter()
                .filter_map(|(kind, address)| Some((kind, address?)));
            let (Some((channel, address)), None) = (given.next(), given.next()) else {
                anyhow::bail!("give one of --email, --webhook, --ntfy, --matrix and --irc");
            };
            if channel == ChannelKind::Matrix && !config.channels.matrix.enabled {
                anyhow::bail!(
                    "--matrix: Matrix is turned off (config key channels.matrix.enabled)"
                );
            }
            if channel == ChannelKind::Irc {
                if !config.channels.irc.enabled {
                    anyhow::bail!("--irc: IRC is turned off (config key channels.irc.enabled)");
                }
                let network = address.rsplit_once('@').map(|(_, n)| n).unwrap_or_default();
                if !config
                    .channels
                    .irc
                    .networks
                    .keys()
                    .any(|n| n.eq_ignore_ascii_case(network.trim()))
                {
                    anyhow::bail!(
                        "--irc: {network:?} is not a configured network (config key \
                         channels.irc.networks has: {})",
                        config
                            .channels
                            .irc
                            .networks
                            .keys()
                            .cloned()
                            .collect::<Vec<_>>()
                            .join(", ")
                    );
                }
            }
            if channel == ChannelKind::Webhook && !config.channels.webhook.enabled {
                anyhow::bail!(
                    "--webhook: webhooks are turned off (config key channels.webhook.enabled)"
                );
            }
            if channel == ChannelKind::Ntfy && !config.channels.ntfy.enabled {
                anyhow::bail!("--ntfy: ntfy is turned off (config key channels.ntfy.enabled)");
            }
            let settings = match token {
                Some(_) if channel != ChannelKind::Ntfy => {
                    anyhow::bail!("--token: only an ntfy topic (--ntfy) takes an access token")
                }
                Some(token) => Some(ChannelSettings::NtfyV1 {
                    token: Some(AccessToken::new(&token).context(
                        "--token: an access token is printable ASCII without spaces (tk_…)",
                    )?),
                }),
                None => None,
            };
            let user = user_named(&store, &user).await?;
            let new = NewDestination {
                user_id: user.id,
                channel,
                address: &address,
                confirmed,
            };
            let d = match settings {
                Some(settings) => store.add_destination_with_settings(new, settings).await?,
                None => store.add_destination(new).await?,
            };
            let state = match (d.is_confirmed(), channel) {
                (true, _) => "confirmed",
                (false, ChannelKind::Email) => "confirmation link mailed",
                (false, ChannelKind::Webhook) => "challenge posted once a sender runs",
                (false, ChannelKind::Ntfy) => "confirmation link published once a sender runs",
                (false, ChannelKind::Matrix | ChannelKind::Irc) => {
                    "confirmation code sent once a sender runs; confirm with \
                     `tidings destination confirm` or on the destinations page"
                }
            };
            println!(
                "added destination {} {} (id {}, {state})",
                d.channel, d.address, d.id
            );
            if let ChannelSettings::WebhookV1 { secret } = &d.settings {
                println!("signing secret (shown only now): {}", secret.expose());
            }
        }
        DestinationCommand::Confirm { user, id, code } => {
            let user = user_named(&store, &user).await?;
            let d = store.confirm_destination_code(user.id, id, &code).await?;
            println!(
                "confirmed destination {} {} (id {})",
                d.channel, d.address, d.id
            );
        }
        DestinationCommand::Delivery {
            user,
            id,
            immediate,
            flood_max,
            flood_window,
            digest,
            when,
        } => {
            let user = user_named(&store, &user).await?;
            let policy = if digest {
                Some(when.policy()?)
            } else if immediate {
                Some(DeliveryPolicy::Immediate {
                    flood_max: flood_max.unwrap_or(DeliveryPolicy::DEFAULT_FLOOD_MAX),
                    flood_window_minutes: flood_window
                        .unwrap_or(DeliveryPolicy::DEFAULT_FLOOD_WINDOW_MINUTES),
                })
            } else {
                None
            };
            let d = match policy {
                Some(policy) => store.set_delivery(user.id, id, &policy).await?,
                None => store.destination(user.id, id).await?,
            };
            println!("{}\t{}\t{}", d.id, d.address, d.delivery.describe());
        }
        DestinationCommand::List { user } => {
            let user = user_named(&store, &user).await?;
            for d in store.destinations(user.id).await? {
                let state = match (&d.disabled_reason, d.is_confirmed()) {
                    (_, true) => "confirmed".to_string(),
                    (Some(reason), false) => format!("disabled: {reason}"),
                    (None, false) => "unconfirmed".to_string(),
                };
                println!(
                    "{}\t{}\t{}\t{state}\t{}",
                    d.id,
                    d.channel,
                    d.address,
                    d.delivery.describe()
                );
            }
        }
        DestinationCommand::Remove { user, id } => {
            let user = user_named(&store, &user).await?;
            store.delete_destination(user.id, id).await?;
            println!("removed destination {id}");
        }
    }
    Ok(())
}

pub async fn filter(config: &Config, command: FilterCommand) -> anyhow::Result<()> {
    let store = open(config).await?;
    match command {
        FilterCommand::Add {
            user,
            name,
            condition,
            to,
            disabled,
        } => {
            let user = user_named(&store, &user).await?;
            let condition =
                Condition::parse(&condition).map_err(|e| anyhow::anyhow!("--condition: {e}"))?;
            let owned = store.destinations(user.id).await?;
            let destination_ids = if to.is_empty() {
                owned.iter().map(|d| d.id).collect()
            } else {
                let mut ids = Vec::new();
                for wanted in &to {
                    match owned
                        .iter()
                        .find(|d| &d.address == wanted || d.id.to_string() == *wanted)
                    {
                        Some(d) => ids.push(d.id),
                        None => bail!(
                            "--to {wanted:?}: not one of {}'s destinations",
                            user.username
                        ),
                    }
                }
                ids
            };
            let input = FilterInput {
                name,
                condition,
                destination_ids,
                delivery: Delivery::Instant,
                enabled: !disabled,
            };
            let f = store.create_filter(user.id, &input).await?;
            println!("added filter {:?} (id {})", f.name, f.id);
            // Saved as asked; what looks wrong is said, as the filter form does.
            let (apps, _) = crate::inspect::load_catalog(&config.bus.catalog_dirs);
            let variables = store.variables(user.id).await?;
            for warning in f.condition.warnings(&apps.app_names(), Some(&variables)) {
                eprintln!("warning: {warning}");
            }
        }
        FilterCommand::List { user } => {
            let user = user_named(&store, &user).await?;
            let list = store.filters(user.id).await?;
            let mut rows: Vec<(i64, String)> = list
                .filters
                .iter()
                .map(|f| {
                    let state = match (&f.quarantine, f.enabled) {
                        (Some(_), _) => "quarantined",
                        (None, true) => "on",
                        (None, false) => "off",
                    };
                    (
                        f.id,
                        format!("{}\t{}\t{state}\t{}", f.id, f.name, f.condition),
                    )
                })
                .collect();
            rows.extend(list.unreadable.iter().map(|u| {
                let state = if u.quarantine.is_some() {
                    "quarantined"
                } else {
                    "unreadable"
                };
                (
                    u.id,
                    format!(
                        "{}\t{}\t{state}\tcould not be read: {}",
                        u.id, u.name, u.reason
                    ),
                )
            }));
            rows.sort_by_key(|(id, _)| *id);
            for (_, row) in rows {
                println!("{row}");
            }
        }
        FilterCommand::Quarantined => {
            for q in store.quarantined_filters().await? {
                println!(
                    "{}\t{}\t{}\t{}\t{}",
                    q.id,
                    q.username,
                    q.name,
                    tidings_web::show_time(q.quarantined_at),
                    q.reason
                );
            }
        }
        FilterCommand::Remove { user, id } => {
            let user = user_named(&store, &user).await?;
            store.delete_filter(user.id, id).await?;
            println!("removed filter {id}");
        }
        FilterCommand::Delivery {
            user,
            id,
            instant,
            digest,
            when,
        } => {
            let user = user_named(&store, &user).await?;
            let delivery = if digest {
                Some(Delivery::digest(when.policy()?)?)
            } else if instant {
                Some(Delivery::Instant)
            } else {
                None
            };
            let f = match delivery {
                Some(delivery) => store.set_filter_delivery(user.id, id, delivery).await,
                None => store.filter(user.id, id).await,
            }
            .map_err(|err| match err {
                tidings_store::StoreError::NotFound => {
                    anyhow::anyhow!("{} has no filter {id}", user.username)
                }
                other => other.into(),
            })?;
            println!("{}\t{}\t{}", f.id, f.name, f.delivery.describe());
        }
        FilterCommand::Feed { user, id, new } => {
            let user = user_named(&store, &user).await?;
            let token = if new {
                store.new_feed_token(user.id, id).await
            } else {
                store.feed_token(user.id, id).await
            }
            .map_err(|err| match err {
                tidings_store::StoreError::NotFound => {
                    anyhow::anyhow!("{} has no filter {id}", user.username)
                }
                other => other.into(),
            })?;
            println!("{}", Links::new(&config.base_url()).feed(&token));
        }
    }
    Ok(())
}

pub async fn token(config: &Config, command: TokenCommand) -> anyhow::Result<()> {
    let store = open(config).await?;
    match command {
        TokenCommand::Add { name, scope } => {
            println!("{}", store.create_api_token(&name, scope).await?)
        }
        TokenCommand::List => {
            for t in store.api_tokens().await? {
                let used = t
                    .last_used_at
                    .map_or_else(|| "never used".to_string(), tidings_web::show_time);
                let made = tidings_web::show_time(t.created_at);
                println!("{}\t{}\t{made}\t{used}", t.name, t.scope);
            }
        }
        TokenCommand::Revoke { name } => {
            store.revoke_api_token(&name).await.map_err(|e| match e {
                tidings_store::StoreError::NotFound => anyhow::anyhow!("no token named {name:?}"),
                other => other.into(),
            })?;
            println!("revoked token {name}");
        }
    }
    Ok(())
}

pub async fn outbox(config: &Config, command: OutboxCommand) -> anyhow::Result<()> {
    let store = open(config).await?;
    match command {
        OutboxCommand::Stats => {
            let (messages, processed) = store.message_counts().await?;
            let (pending, sending, sent, dead) = store.outbox_counts().await?;
            let rejected = store.rejected_count().await?;
            println!(
                "{}",
                serde_json::json!({
                    "messages": messages, "processed": processed, "rejected": rejected,
                    "outbox": { "pending": pending, "sending": sending, "sent": sent, "dead": dead }
                })
            );
        }
        OutboxCommand::Retry { ids, all } => {
            let ids = if all { Vec::new() } else { ids };
            let retried = store.retry_dead(&ids).await?;
            println!("queued {retried} dead notifications again");
            if retried == 0 {
                eprintln!(
                    "nothing to retry: `outbox dead` lists the dead rows; a dead confirmation \
                     is sent again from its owner's destinations page instead"
                );
            }
        }
        OutboxCommand::Dead { limit } => {
            let dead = store.dead_notifications(limit).await?;
            for n in &dead {
                println!(
                    "{}\t{}\t{}:{}\t{}\t{} attempts\t{}",
                    n.id,
                    n.kind,
                    n.channel,
                    n.address,
                    n.topic.as_deref().unwrap_or("confirmation"),
                    n.attempts,
                    n.last_error.as_deref().unwrap_or_default()
                );
            }
            // `outbox stats` counts every dead row; say when the limit hid some of them.
            let (.., total) = store.outbox_counts().await?;
            if total > dead.len() as i64 {
                eprintln!(
                    "{} more dead rows not shown (--limit {limit})",
                    total - dead.len() as i64
                );
            }
        }
        OutboxCommand::Rejected { limit } => {
            for r in store.rejected_messages(limit).await? {
                println!("{}\t{}\t{}", r.id, r.source, r.reason);
            }
        }
    }
    Ok(())
}
