//! `tidings ownership` and `tidings follow`: load who owns which packages and who is in
//! which group (JSON or CSV, see docs/filters.md), show what a user's variables resolve to,
//! and manage what a user follows. Same store calls, and so the same checks, as the API.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _};
use clap::{Args, Subcommand, ValueEnum};
use tidings_rules::Variables;
use tidings_store::{FollowKind, ImportMode, OwnershipData, Store};

use crate::config::Config;

#[derive(Subcommand)]
pub enum OwnershipCommand {
    /// Import ownership from a JSON or CSV file; by default listed packages and groups are
    /// replaced one by one and the rest kept (merge).
    Import {
        /// The file (`-` for stdin, which needs --format).
        file: PathBuf,
        /// The file is the whole truth: packages and groups it does not list lose their
        /// owners and members.
        #[arg(long)]
        replace: bool,
        /// With --replace, accept a file that lists no package and no group: every
        /// ownership record is then deleted. Without it such a file is refused.
        #[arg(long, requires = "replace")]
        allow_empty: bool,
        /// The format; by default from the file's extension (.json, .csv).
        #[arg(long, value_enum)]
        format: Option<Format>,
    },
    /// Print what a user's variables ($me, $my_groups, $my_packages, $followed_*) resolve to,
    /// as JSON. Works for bus usernames without an account too.
    Show {
        #[arg(long)]
        user: String,
    },
}

/// An import file's format.
#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Json,
    Csv,
}

#[derive(Subcommand)]
pub enum FollowCommand {
    /// Follow a person or a package.
    Add(FollowArgs),
    /// Stop following a person or a package.
    Remove(FollowArgs),
    /// List what a user follows.
    List {
        #[arg(long)]
        user: String,
    },
}

#[derive(Args)]
pub struct FollowArgs {
    /// The account that follows.
    #[arg(long)]
    user: String,
    /// A package to follow ($followed_packages).
    #[arg(long, conflicts_with = "person", required_unless_present = "person")]
    package: Option<String>,
    /// A person (bus username) to follow ($followed_users).
    #[arg(long)]
    person: Option<String>,
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

async fn account(store: &Store, username: &str) -> anyhow::Result<i64> {
    match store.user_by_name(username).await? {
        Some(user) => Ok(user.id),
        None => bail!("no user named {username:?}"),
    }
}

fn format_of(file: &Path, format: Option<Format>) -> anyhow::Result<Format> {
    if let Some(format) = format {
        return Ok(format);
    }
    match file.extension().and_then(|e| e.to_str()) {
        Some(e) if e.eq_ignore_ascii_case("json") => Ok(Format::Json),
        Some(e) if e.eq_ignore_ascii_case("csv") => Ok(Format::Csv),
        _ => bail!(
            "cannot tell the format of {} from its extension; use --format json or --format csv",
            file.display()
        ),
    }
}

/// Reads an import file; errors name the file, then the line or record and the field.
pub fn read(file: &Path, format: Option<Format>) -> anyhow::Result<OwnershipData> {
    let format = format_of(file, format)?;
    let text = if file == Path::new("-") {
        std::io::read_to_string(std::io::stdin()).context("reading stdin")?
    } else {
        std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?
    };
    let data = match format {
        Format::Json => OwnershipData::from_json(&text),
        Format::Csv => OwnershipData::from_csv(&text),
    };
    data.with_context(|| format!("{}: nothing imported", file.display()))
}

/// `$name: value` as JSON, in the order variables are listed to people.
fn show(vars: &Variables) -> serde_json::Value {
    serde_json::json!({
        "me": vars.me,
        "my_groups": vars.my_groups,
        "my_packages": vars.my_packages,
        "followed_users": vars.followed_users,
        "followed_packages": vars.followed_packages,
    })
}

pub async fn ownership(config: &Config, command: OwnershipCommand) -> anyhow::Result<()> {
    match command {
        OwnershipCommand::Import {
            file,
            replace,
            allow_empty,
            format,
        } => {
            // Read and check the whole file before touching the database.
            let data = read(&file, format)?;
            if replace && data.packages.is_empty() && data.groups.is_empty() && !allow_empty {
                anyhow::bail!(
                    "{}: nothing imported: the file lists no package and no group, and \
                     --replace would delete every ownership record; add --allow-empty if \
                     that is what you want",
                    file.display()
                );
            }
            let store = open(config).await?;
            let mode = if replace {
                ImportMode::Replace
            } else {
                ImportMode::Merge
            };
            let summary = store.import_ownership(&data, mode).await?;
            println!(
                "imported {} packages and {} groups ({}); {} accounts re-indexed",
                summary.packages,
                summary.groups,
                if replace { "replace" } else { "merge" },
                summary.affected_users.len()
            );
        }
        OwnershipCommand::Show { user } => {
            let store = open(config).await?;
            let vars = match store.user_by_name(&user).await? {
                Some(account) => store.variables(account.id).await?,
                None => store.variables_for_username(&user).await?,
            };
            println!("{}", show(&vars));
        }
    }
    Ok(())
}

pub async fn follow(config: &Config, command: FollowCommand) -> anyhow::Result<()> {
    let store = open(config).await?;
    match command {
        FollowCommand::Add(args) | FollowCommand::Remove(args)
            if args.package.is_none() && args.person.is_none() =>
        {
            bail!("name a --package or a --person")
        }
        FollowCommand::Add(args) => {
            let (kind, name) = target(&args);
            let id = account(&store, &args.user).await?;
            let new = store.follow(id, kind, name).await?;
            let state = if new {
                "now follows"
            } else {
                "already follows"
            };
            println!("{} {state} {} {name}", args.user, kind.as_str());
        }
        FollowCommand::Remove(args) => {
            let (kind, name) = target(&args);
            let id = account(&store, &args.user).await?;
            if !store.unfollow(id, kind, name).await? {
                bail!("{} does not follow {} {name}", args.user, kind.as_str());
            }
            println!("{} no longer follows {} {name}", args.user, kind.as_str());
        }
        FollowCommand::List { user } => {
            let id = account(&store, &user).await?;
            for (kind, name) in store.follows(id).await? {
                println!("{}\t{name}", kind.as_str());
            }
        }
    }
    Ok(())
}

fn target(args: &FollowArgs) -> (FollowKind, &str) {
    match (&args.package, &args.person) {
        (Some(package), _) => (FollowKind::Package, package),
        (None, Some(person)) => (FollowKind::User, person),
        (None, None) => (FollowKind::User, ""),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format_comes_from_the_extension_or_the_flag() {
        assert!(matches!(
            format_of(Path::new("a.JSON"), None),
            Ok(Format::Json)
        ));
        assert!(matches!(
            format_of(Path::new("a.csv"), None),
            Ok(Format::Csv)
        ));
        assert!(matches!(
            format_of(Path::new("a.txt"), Some(Format::Csv)),
            Ok(Format::Csv)
        ));
        assert!(format_of(Path::new("owners"), None).is_err());
    }
}
