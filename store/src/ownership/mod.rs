//! Ownership and follows: which groups people are in, which users and groups own which
//! packages, and what each account follows — the sources of `$my_groups`, `$my_packages`,
//! `$followed_users` and `$followed_packages`.
//!
//! Members and owners are bus usernames, not accounts: someone who signs up later picks up
//! what they already own. A membership comes from an import or command, or from the groups
//! claim of a sign-in through the OpenID Connect provider (`source` 'provider'); each side
//! replaces only its own rows, and `$my_groups` is both. Every write appends one `changes` row for each account whose
//! variables it actually changed, and for no one else, so the notifier re-indexes only them.

mod format;
mod sync;

use std::collections::{BTreeMap, BTreeSet, HashMap};

use tidings_rules::Variables;

pub use format::{OwnershipData, PackageOwners, CSV_HEADER};
pub use sync::{SyncSummary, SyncedOwnership};

use crate::db::with_pool;
use crate::pipeline::changes::Edit;
use crate::{now_ms, Result, Store, StoreError};
use format::{checked, Kind};

/// The ids of the Tidings accounts among `usernames` (bus usernames without an account
/// are skipped), read inside the open transaction. A macro because the transaction's type
/// differs per backend.
macro_rules! account_ids {
    ($tx:ident, $usernames:expr, $user_id:expr) => {{
        let mut ids = Vec::new();
        for username in $usernames {
            let id: Option<i64> = sqlx::query_scalar($user_id)
                .bind(&username)
                .fetch_optional(&mut *$tx)
                .await?;
            ids.extend(id);
        }
        ids
    }};
}

/// Who owns a package: a user or a group.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum OwnerKind {
    /// A bus username.
    User,
    /// A group: its members own the package.
    Group,
}

impl OwnerKind {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            OwnerKind::User => "user",
            OwnerKind::Group => "group",
        }
    }
}

/// One owner of a package.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Owner {
    /// User or group.
    pub kind: OwnerKind,
    /// Its name.
    pub name: String,
}

impl Owner {
    /// A user owner.
    pub fn user(name: impl Into<String>) -> Owner {
        Owner {
            kind: OwnerKind::User,
            name: name.into(),
        }
    }

    /// A group owner.
    pub fn group(name: impl Into<String>) -> Owner {
        Owner {
            kind: OwnerKind::Group,
            name: name.into(),
        }
    }

    fn check(&self) -> Result<()> {
        match self.kind {
            OwnerKind::User => checked(Kind::User, "owner", &self.name),
            OwnerKind::Group => checked(Kind::Group, "owner", &self.name),
        }
    }
}

/// What an account follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FollowKind {
    /// A person (bus username): `$followed_users`.
    User,
    /// A package: `$followed_packages`.
    Package,
}

impl FollowKind {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            FollowKind::User => "user",
            FollowKind::Package => "package",
        }
    }

    fn parse(s: &str) -> Result<FollowKind> {
        match s {
            "user" => Ok(FollowKind::User),
            "package" => Ok(FollowKind::Package),
            other => Err(StoreError::corrupt("follow kind", other)),
        }
    }
}

/// How an import treats what it does not list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ImportMode {
    /// Every package and group listed gets exactly the listed owners and members; the
    /// others are kept.
    #[default]
    Merge,
    /// The import is the whole truth: packages and groups it does not list lose their
    /// owners and members.
    Replace,
}

impl std::str::FromStr for ImportMode {
    type Err = StoreError;
    fn from_str(s: &str) -> Result<ImportMode> {
        match s {
            "merge" => Ok(ImportMode::Merge),
            "replace" => Ok(ImportMode::Replace),
            other => Err(StoreError::Invalid {
                field: "mode",
                reason: format!("expected merge or replace, found {other:?}"),
            }),
        }
    }
}

/// What an import did.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ImportSummary {
    /// Packages listed.
    pub packages: usize,
    /// Groups listed.
    pub groups: usize,
    /// Accounts whose variables changed (and were queued for re-indexing).
    pub affected_users: Vec<i64>,
}

/// Rows read back inside a write, to tell whose variables changed.
#[derive(Default)]
struct Snapshot {
    /// (group, username)
    members: Vec<(String, String)>,
    /// (package, owner kind, owner name)
    owners: Vec<(String, String, String)>,
}

impl Snapshot {
    /// Username → (groups, packages owned directly or through a group).
    fn resolve(&self) -> BTreeMap<&str, (BTreeSet<&str>, BTreeSet<&str>)> {
        let mut by_user: BTreeMap<&str, (BTreeSet<&str>, BTreeSet<&str>)> = BTreeMap::new();
        let mut groups: HashMap<&str, Vec<&str>> = HashMap::new();
        for (group, user) in &self.members {
            by_user.entry(user).or_default().0.insert(group);
            groups.entry(group).or_default().push(user);
        }
        for (package, kind, name) in &self.owners {
            if kind == "user" {
                by_user.entry(name).or_default().1.insert(package);
            } else {
                for user in groups.get(name.as_str()).into_iter().flatten() {
                    by_user.entry(user).or_default().1.insert(package);
                }
            }
        }
        by_user
    }

    /// The usernames whose groups or packages differ between `self` and `after`.
    fn changed(&self, after: &Snapshot) -> BTreeSet<String> {
        let (before, after) = (self.resolve(), after.resolve());
        let empty = (BTreeSet::new(), BTreeSet::new());
        before
            .keys()
            .chain(after.keys())
            .filter(|user| {
                before.get(*user).unwrap_or(&empty) != after.get(*user).unwrap_or(&empty)
            })
            .map(|user| user.to_string())
            .collect()
    }
}

const USER_ID: &str = "SELECT id FROM users WHERE username = $1";
const ALL_MEMBERS: &str = "SELECT group_name, username FROM group_members";
const ALL_OWNERS: &str = "SELECT package, owner_kind, owner_name FROM package_owners";
/// Rows inserted per statement in imports.
const CHUNK: usize = 300;

impl Store {
    /// The variables of one account's filters.
    pub async fn variables(&self, user_id: i64) -> Result<Variables> {
        let user = self.user(user_id).await?;
        let mut vars = self.variables_for_username(&user.username).await?;
        let sql = self.sql("SELECT kind, name FROM follows WHERE user_id = $1");
        let follows: Vec<(String, String)> = with_pool!(self, |pool| sqlx::query_as(&sql)
            .bind(user_id)
            .fetch_all(pool)
            .await?);
        for (kind, name) in follows {
            match FollowKind::parse(&kind)? {
                FollowKind::User => vars.followed_users.insert(name),
                FollowKind::Package => vars.followed_packages.insert(name),
            };
        }
        Ok(vars)
    }

    /// `$me`, `$my_groups` and `$my_packages` for a bus username, account or not (follows
    /// belong to accounts, so they are empty here).
    pub async fn variables_for_username(&self, username: &str) -> Result<Variables> {
        let groups = self.sql("SELECT group_name FROM group_members WHERE username = $1");
        let packages = self.sql(
            "SELECT package FROM package_owners WHERE owner_kind = 'user' AND owner_name = $1 \
             UNION SELECT po.package FROM package_owners po JOIN group_members gm \
             ON po.owner_kind = 'group' AND po.owner_name = gm.group_name WHERE gm.username = $1",
        );
        let (groups, packages): (Vec<String>, Vec<String>) = with_pool!(self, |pool| (
            sqlx::query_scalar(&groups)
                .bind(username)
                .fetch_all(pool)
                .await?,
            sqlx::query_scalar(&packages)
                .bind(username)
                .fetch_all(pool)
                .await?
        ));
        let mut vars = Variables::for_user(username);
        vars.my_groups = groups.into_iter().collect();
        vars.my_packages = packages.into_iter().collect();
        Ok(vars)
    }

    /// Where `$my_packages` of a bus username comes from: each package it owns, with the
    /// group it owns it through (none: owned directly), by package. A package owned both
    /// ways is listed once per way.
    pub async fn package_sources(&self, username: &str) -> Result<Vec<(String, Option<String>)>> {
        let sql = self.sql(
            "SELECT package, NULL AS via FROM package_owners WHERE owner_kind = 'user' \
             AND owner_name = $1 \
             UNION SELECT po.package, po.owner_name AS via FROM package_owners po \
             JOIN group_members gm ON po.owner_kind = 'group' AND po.owner_name = gm.group_name \
             WHERE gm.username = $1",
        );
        let mut rows: Vec<(String, Option<String>)> = with_pool!(self, |pool| {
            sqlx::query_as(&sql).bind(username).fetch_all(pool).await?
        });
        // Directly owned first (the backends sort NULL differently).
        rows.sort_by(|a, b| (&a.0, a.1.is_some(), &a.1).cmp(&(&b.0, b.1.is_some(), &b.1)));
        Ok(rows)
    }

    /// Every account's variables, by user id: one query per table, for building the index.
    pub async fn all_variables(&self) -> Result<HashMap<i64, Variables>> {
        let users = "SELECT id, username FROM users";
        let groups = "SELECT u.id, gm.group_name FROM group_members gm \
                      JOIN users u ON u.username = gm.username";
        let packages = "SELECT u.id, po.package FROM package_owners po \
             JOIN users u ON po.owner_kind = 'user' AND u.username = po.owner_name \
             UNION SELECT u.id, po.package FROM package_owners po \
             JOIN group_members gm ON po.owner_kind = 'group' AND gm.group_name = po.owner_name \
             JOIN users u ON u.username = gm.username";
        let follows = "SELECT user_id, kind, name FROM follows";
        type Pairs = Vec<(i64, String)>;
        let (users, groups, packages, follows): (Pairs, Pairs, Pairs, Vec<(i64, String, String)>) =
            with_pool!(self, |pool| (
                sqlx::query_as(users).fetch_all(pool).await?,
                sqlx::query_as(groups).fetch_all(pool).await?,
                sqlx::query_as(packages).fetch_all(pool).await?,
                sqlx::query_as(follows).fetch_all(pool).await?,
            ));
        let mut all: HashMap<i64, Variables> = users
            .into_iter()
            .map(|(id, name)| (id, Variables::for_user(name)))
            .collect();
        for (id, group) in groups {
            if let Some(vars) = all.get_mut(&id) {
                vars.my_groups.insert(group);
            }
        }
        for (id, package) in packages {
            if let Some(vars) = all.get_mut(&id) {
                vars.my_packages.insert(package);
            }
        }
        for (id, kind, name) in follows {
            if let Some(vars) = all.get_mut(&id) {
                match FollowKind::parse(&kind)? {
                    FollowKind::User => vars.followed_users.insert(name),
                    FollowKind::Package => vars.followed_packages.insert(name),
                };
            }
        }
        Ok(all)
    }

    /// Imports ownership in one transaction (see [`ImportMode`]); refused as a whole when
    /// any name is bad.
    pub async fn import_ownership(
        &self,
        data: &OwnershipData,
        mode: ImportMode,
    ) -> Result<ImportSummary> {
        data.validate()?;
        let lock = self.ownership_lock();
        let (all_members, all_owners) = (self.sql(ALL_MEMBERS), self.sql(ALL_OWNERS));
        let clear_members = self.sql("DELETE FROM group_members WHERE source = 'import'");
        let clear_owners = self.sql("DELETE FROM package_owners WHERE source = 'import'");
        let clear_group =
            self.sql("DELETE FROM group_members WHERE group_name = $1 AND source = 'import'");
        let clear_package =
            self.sql("DELETE FROM package_owners WHERE package = $1 AND source = 'import'");
        let user_id = self.sql(USER_ID);
        let members: Vec<[&str; 2]> = data
            .groups
            .iter()
            .flat_map(|(g, users)| users.iter().map(move |u| [g.as_str(), u.as_str()]))
            .collect();
        let owners: Vec<[&str; 3]> = data
            .packages
            .iter()
            .flat_map(|(p, o)| {
                let users = o
                    .users
                    .iter()
                    .map(move |u| [p.as_str(), "user", u.as_str()]);
                let groups = o
                    .groups
                    .iter()
                    .map(move |g| [p.as_str(), "group", g.as_str()]);
                users.chain(groups)
            })
            .collect();
        let member_inserts: Vec<(String, &[[&str; 2]])> = members
            .chunks(CHUNK)
            .map(|c| {
                let sql = values_sql("group_members (group_name, username)", 2, c.len());
                (self.sql(&sql).into_owned(), c)
            })
            .collect();
        let owner_inserts: Vec<(String, &[[&str; 3]])> = owners
            .chunks(CHUNK)
            .map(|c| {
                let sql = values_sql(
                    "package_owners (package, owner_kind, owner_name)",
                    3,
                    c.len(),
                );
                (self.sql(&sql).into_owned(), c)
            })
            .collect();
        let affected = with_pool!(self, |pool| {
            let mut tx = Edit::begin(self, pool).await?;
            sqlx::query(lock).execute(&mut *tx).await?;
            let before = Snapshot {
                members: sqlx::query_as(&all_members).fetch_all(&mut *tx).await?,
                owners: sqlx::query_as(&all_owners).fetch_all(&mut *tx).await?,
            };
            match mode {
                ImportMode::Replace => {
                    sqlx::query(&clear_members).execute(&mut *tx).await?;
                    sqlx::query(&clear_owners).execute(&mut *tx).await?;
                }
                ImportMode::Merge => {
                    for group in data.groups.keys() {
                        sqlx::query(&clear_group)
                            .bind(group)
                            .execute(&mut *tx)
                            .await?;
                    }
                    for package in data.packages.keys() {
                        sqlx::query(&clear_package)
                            .bind(package)
                            .execute(&mut *tx)
                            .await?;
                    }
                }
            }
            for (sql, rows) in &member_inserts {
                let mut q = sqlx::query(sql);
                for row in rows.iter() {
                    q = q.bind(row[0]).bind(row[1]);
                }
                q.execute(&mut *tx).await?;
            }
            for (sql, rows) in &owner_inserts {
                let mut q = sqlx::query(sql);
                for row in rows.iter() {
                    q = q.bind(row[0]).bind(row[1]).bind(row[2]);
                }
                q.execute(&mut *tx).await?;
            }
            let after = Snapshot {
                members: sqlx::query_as(&all_members).fetch_all(&mut *tx).await?,
                owners: sqlx::query_as(&all_owners).fetch_all(&mut *tx).await?,
            };
            let ids = account_ids!(tx, before.changed(&after), &user_id);
            tx.commit(ids.iter().copied()).await?;
            ids
        });
        Ok(ImportSummary {
            packages: data.packages.len(),
            groups: data.groups.len(),
            affected_users: sorted(affected),
        })
    }

    /// Replaces one package's owners. Returns the accounts whose variables changed.
    pub async fn set_package_owners(&self, package: &str, owners: &[Owner]) -> Result<Vec<i64>> {
        for owner in owners {
            owner.check()?;
        }
        let owners: BTreeSet<Owner> = owners.iter().cloned().collect();
        self.change_package_owners(package, move |_| owners).await
    }

    /// Adds one owner to a package (nothing happens if it is one already).
    pub async fn add_package_owner(&self, package: &str, owner: &Owner) -> Result<Vec<i64>> {
        owner.check()?;
        self.change_package_owners(package, |mut current| {
            current.insert(owner.clone());
            current
        })
        .await
    }

    /// Removes one owner from a package (nothing happens if it is not one).
    pub async fn remove_package_owner(&self, package: &str, owner: &Owner) -> Result<Vec<i64>> {
        owner.check()?;
        self.change_package_owners(package, |mut current| {
            current.remove(owner);
            current
        })
        .await
    }

    async fn change_package_owners(
        &self,
        package: &str,
        change_owners: impl FnOnce(BTreeSet<Owner>) -> BTreeSet<Owner>,
    ) -> Result<Vec<i64>> {
        checked(Kind::Package, "package", package)?;
        let lock = self.ownership_lock();
        // Every source's owners, to tell whose packages change; only the imported ones
        // are changed here (the sync's are its own).
        let owners_sql = self
            .sql("SELECT package, owner_kind, owner_name FROM package_owners WHERE package = $1");
        let imported_sql = self.sql(
            "SELECT owner_kind, owner_name FROM package_owners WHERE package = $1 \
             AND source = 'import'",
        );
        // Only the members of the package's owning groups can gain or lose it.
        let members_sql = self.sql(
            "SELECT DISTINCT gm.group_name, gm.username FROM group_members gm \
             JOIN package_owners po ON po.owner_kind = 'group' AND po.owner_name = gm.group_name \
             WHERE po.package = $1",
        );
        let insert = self.sql(
            "INSERT INTO package_owners (package, owner_kind, owner_name) VALUES ($1, $2, $3)",
        );
        let delete = self.sql(
            "DELETE FROM package_owners WHERE package = $1 AND owner_kind = $2 AND owner_name = $3 \
             AND source = 'import'",
        );
        let user_id = self.sql(USER_ID);
        let affected = with_pool!(self, |pool| {
            let mut tx = Edit::begin(self, pool).await?;
            sqlx::query(lock).execute(&mut *tx).await?;
            let mut before = Snapshot {
                members: sqlx::query_as(&members_sql)
                    .bind(package)
                    .fetch_all(&mut *tx)
                    .await?,
                owners: sqlx::query_as(&owners_sql)
                    .bind(package)
                    .fetch_all(&mut *tx)
                    .await?,
            };
            let imported: Vec<(String, String)> = sqlx::query_as(&imported_sql)
                .bind(package)
                .fetch_all(&mut *tx)
                .await?;
            let current: BTreeSet<Owner> = imported
                .into_iter()
                .map(|(kind, name)| Owner {
                    kind: if kind == "group" {
                        OwnerKind::Group
                    } else {
                        OwnerKind::User
                    },
                    name,
                })
                .collect();
            let wanted = change_owners(current.clone());
            for gone in current.difference(&wanted) {
                sqlx::query(&delete)
                    .bind(package)
                    .bind(gone.kind.as_str())
                    .bind(&gone.name)
                    .execute(&mut *tx)
                    .await?;
            }
            for new in wanted.difference(&current) {
                sqlx::query(&insert)
                    .bind(package)
                    .bind(new.kind.as_str())
                    .bind(&new.name)
                    .execute(&mut *tx)
                    .await?;
            }
            let after = Snapshot {
                members: sqlx::query_as(&members_sql)
                    .bind(package)
                    .fetch_all(&mut *tx)
                    .await?,
                owners: sqlx::query_as(&owners_sql)
                    .bind(package)
                    .fetch_all(&mut *tx)
                    .await?,
            };
            // Group memberships did not change here: both sides see every member of a
            // group that owned the package before or after.
            before.members.extend(after.members.iter().cloned());
            let after = Snapshot {
                members: before.members.clone(),
                owners: after.owners,
            };
            let ids = account_ids!(tx, before.changed(&after), &user_id);
            tx.commit(ids.iter().copied()).await?;
            ids
        });
        Ok(sorted(affected))
    }

    /// A package's owners.
    pub async fn package_owners(&self, package: &str) -> Result<Vec<Owner>> {
        let sql = self.sql(
            "SELECT DISTINCT owner_kind, owner_name FROM package_owners WHERE package = $1 \
             ORDER BY owner_kind DESC, owner_name",
        );
        let rows: Vec<(String, String)> = with_pool!(self, |pool| sqlx::query_as(&sql)
            .bind(package)
            .fetch_all(pool)
            .await?);
        Ok(rows
            .into_iter()
            .map(|(kind, name)| match kind.as_str() {
                "group" => Owner::group(name),
                _ => Owner::user(name),
            })
            .collect())
    }

    /// Adds a user to a group. Returns the account re-indexed, if the user has one and was
    /// not a member already.
    pub async fn add_group_member(&self, group: &str, username: &str) -> Result<Option<i64>> {
        self.change_member(group, username, true).await
    }

    /// Removes a user from a group. Returns the account re-indexed, if the user has one and
    /// was a member.
    pub async fn remove_group_member(&self, group: &str, username: &str) -> Result<Option<i64>> {
        self.change_member(group, username, false).await
    }

    async fn change_member(&self, group: &str, username: &str, add: bool) -> Result<Option<i64>> {
        checked(Kind::Group, "group", group)?;
        checked(Kind::User, "username", username)?;
        let lock = self.ownership_lock();
        let sql = if add {
            self.sql(
                "INSERT INTO group_members (group_name, username) VALUES ($1, $2) \
                 ON CONFLICT DO NOTHING",
            )
        } else {
            self.sql(
                "DELETE FROM group_members WHERE group_name = $1 AND username = $2 \
                 AND source = 'import'",
            )
        };
        let user_id = self.sql(USER_ID);
        Ok(with_pool!(self, |pool| {
            let mut tx = Edit::begin(self, pool).await?;
            sqlx::query(lock).execute(&mut *tx).await?;
            let changed = sqlx::query(&sql)
                .bind(group)
                .bind(username)
                .execute(&mut *tx)
                .await?
                .rows_affected()
                > 0;
            // `$my_groups` changed, whatever the group owns.
            let id: Option<i64> = if changed {
                sqlx::query_scalar(&user_id)
                    .bind(username)
                    .fetch_optional(&mut *tx)
                    .await?
            } else {
                None
            };
            tx.commit(id).await?;
            id
        }))
    }

    /// Replaces the groups the sign-in provider gives `username` (its groups claim at the
    /// latest sign-in) with `groups`; the imported memberships stay as they are. Names that
    /// are not group names here (see `tidings ownership`) are left out and returned, so the
    /// caller can say so. The account is re-indexed when its groups changed.
    pub async fn set_provider_groups(
        &self,
        username: &str,
        groups: &BTreeSet<String>,
    ) -> Result<Vec<String>> {
        checked(Kind::User, "username", username)?;
        let (kept, skipped): (Vec<&String>, Vec<&String>) = groups
            .iter()
            .partition(|g| checked(Kind::Group, "group", g).is_ok());
        let wanted: BTreeSet<&str> = kept.into_iter().map(String::as_str).collect();
        let lock = self.ownership_lock();
        let current_sql = self.sql(
            "SELECT group_name FROM group_members WHERE username = $1 AND source = 'provider'",
        );
        let insert = self.sql(
            "INSERT INTO group_members (group_name, username, source) VALUES ($1, $2, 'provider')",
        );
        let delete = self.sql(
            "DELETE FROM group_members WHERE group_name = $1 AND username = $2 \
             AND source = 'provider'",
        );
        let user_id = self.sql(USER_ID);
        with_pool!(self, |pool| {
            let mut tx = Edit::begin(self, pool).await?;
            sqlx::query(lock).execute(&mut *tx).await?;
            let current: Vec<String> = sqlx::query_scalar(&current_sql)
                .bind(username)
                .fetch_all(&mut *tx)
                .await?;
            let current: BTreeSet<&str> = current.iter().map(String::as_str).collect();
            for gone in current.difference(&wanted) {
                sqlx::query(&delete)
                    .bind(*gone)
                    .bind(username)
                    .execute(&mut *tx)
                    .await?;
            }
            for new in wanted.difference(&current) {
                sqlx::query(&insert)
                    .bind(*new)
                    .bind(username)
                    .execute(&mut *tx)
                    .await?;
            }
            // `$my_groups` (and through it `$my_packages`) changed.
            let id: Option<i64> = if current != wanted {
                sqlx::query_scalar(&user_id)
                    .bind(username)
                    .fetch_optional(&mut *tx)
                    .await?
            } else {
                None
            };
            tx.commit(id).await?;
        });
        Ok(skipped.into_iter().cloned().collect())
    }

    /// `$my_groups` of a bus username with where each comes from: by group, a membership
    /// from the ownership data (`false`: imported or synced) before the provider's
    /// (`true`) when a group is both.
    pub async fn group_sources(&self, username: &str) -> Result<Vec<(String, bool)>> {
        let sql = self.sql(
            "SELECT group_name, source FROM group_members WHERE username = $1 \
             ORDER BY group_name, source",
        );
        let rows: Vec<(String, String)> = with_pool!(self, |pool| sqlx::query_as(&sql)
            .bind(username)
            .fetch_all(pool)
            .await?);
        // The sync's memberships are ownership data as the imported ones are: one row.
        let mut sources: Vec<(String, bool)> = rows
            .into_iter()
            .map(|(group, source)| (group, source == "provider"))
            .collect();
        sources.sort();
        sources.dedup();
        Ok(sources)
    }

    /// Makes an account follow a person or a package. Returns whether it is new.
    pub async fn follow(&self, user_id: i64, kind: FollowKind, name: &str) -> Result<bool> {
        self.change_follow(user_id, kind, name, true).await
    }

    /// Stops following. Returns whether the account followed it.
    pub async fn unfollow(&self, user_id: i64, kind: FollowKind, name: &str) -> Result<bool> {
        self.change_follow(user_id, kind, name, false).await
    }

    async fn change_follow(
        &self,
        user_id: i64,
        kind: FollowKind,
        name: &str,
        add: bool,
    ) -> Result<bool> {
        match kind {
            FollowKind::User => checked(Kind::User, "person", name)?,
            FollowKind::Package => checked(Kind::Package, "package", name)?,
        }
        let sql = if add {
            self.sql(
                "INSERT INTO follows (user_id, kind, name, created_at) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT DO NOTHING",
            )
        } else {
            self.sql("DELETE FROM follows WHERE user_id = $1 AND kind = $2 AND name = $3")
        };
        let now = now_ms();
        Ok(with_pool!(self, |pool| {
            let mut tx = Edit::begin(self, pool).await?;
            let mut q = sqlx::query(&sql)
                .bind(user_id)
                .bind(kind.as_str())
                .bind(name);
            if add {
                q = q.bind(now);
            }
            let changed = q.execute(&mut *tx).await?.rows_affected() > 0;
            tx.commit(changed.then_some(user_id)).await?;
            changed
        }))
    }

    /// What an account follows, people first, by name.
    pub async fn follows(&self, user_id: i64) -> Result<Vec<(FollowKind, String)>> {
        let sql =
            self.sql("SELECT kind, name FROM follows WHERE user_id = $1 ORDER BY kind DESC, name");
        let rows: Vec<(String, String)> = with_pool!(self, |pool| sqlx::query_as(&sql)
            .bind(user_id)
            .fetch_all(pool)
            .await?);
        rows.into_iter()
            .map(|(kind, name)| Ok((FollowKind::parse(&kind)?, name)))
            .collect()
    }
}

/// `INSERT INTO {table} VALUES ($1, $2), ($3, $4), …` for `rows` rows of `width` columns.
fn values_sql(table: &str, width: usize, rows: usize) -> String {
    let tuples: Vec<String> = (0..rows)
        .map(|r| {
            let cols: Vec<String> = (1..=width).map(|c| format!("${}", r * width + c)).collect();
            format!("({})", cols.join(", "))
        })
        .collect();
    format!("INSERT INTO {table} VALUES {}", tuples.join(", "))
}

fn sorted(mut ids: Vec<i64>) -> Vec<i64> {
    ids.sort_unstable();
    ids.dedup();
    ids
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_sql_numbers_every_parameter() {
        assert_eq!(
            values_sql("t (a, b)", 2, 2),
            "INSERT INTO t (a, b) VALUES ($1, $2), ($3, $4)"
        );
    }

    #[test]
    fn snapshot_sees_packages_through_groups() {
        let s = |members: &[(&str, &str)], owners: &[(&str, &str, &str)]| Snapshot {
            members: members
                .iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect(),
            owners: owners
                .iter()
                .map(|(a, b, c)| (a.to_string(), b.to_string(), c.to_string()))
                .collect(),
        };
        let before = s(
            &[("sig", "bob")],
            &[("p", "user", "alice"), ("p", "group", "sig")],
        );
        // alice joins a group (her groups change) and carol gains q; bob keeps p.
        let after = s(
            &[("sig", "bob"), ("sig", "alice")],
            &[("p", "group", "sig"), ("q", "user", "carol")],
        );
        assert_eq!(
            before.changed(&after),
            ["alice", "carol"].map(String::from).into()
        );
    }
}
