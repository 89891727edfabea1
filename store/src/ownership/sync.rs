//! Ownership from the source: what the periodic sync (the notifier's `ownership::sync`)
//! read from dist-git's owner map and the account system, written as rows of their own
//! (`source` 'sync', migration 0025). A sync replaces only its own rows, by difference: a
//! row that did not change is not written, and an admin's imported rows (and the sign-in
//! provider's memberships) are never touched, nor do imports touch the sync's.

use std::collections::{BTreeMap, BTreeSet};

use super::format::{check, Kind};
use super::{sorted, values_sql, Owner, Snapshot, ALL_MEMBERS, ALL_OWNERS, CHUNK};
use crate::db::with_pool;
use crate::pipeline::changes::Edit;
use crate::{Result, Store};

/// What one sync read. Parts that were not read this time (a fetch failed) are kept as
/// the last sync left them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SyncedOwnership {
    /// Package → its owners, from the owner map; none: the map was not read, and the
    /// synced owners stay as they are.
    pub packages: Option<BTreeMap<String, BTreeSet<Owner>>>,
    /// Group → its members (and sponsors), for each group read: each gets exactly these.
    /// None: groups are not synced now, and the synced members stay as they are.
    pub groups: Option<BTreeMap<String, BTreeSet<String>>>,
    /// Groups to sync that could not be read this time: their synced members are kept.
    /// With `groups` set, synced members of groups in neither field (no longer synced)
    /// are removed.
    pub kept_groups: BTreeSet<String>,
}

/// What a sync wrote.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SyncSummary {
    /// Owner rows added.
    pub owners_added: usize,
    /// Owner rows removed.
    pub owners_removed: usize,
    /// Membership rows added.
    pub members_added: usize,
    /// Membership rows removed.
    pub members_removed: usize,
    /// Names left out because they are not valid names here (first few), e.g.
    /// `package "a b": "a b" is not a package name: …`.
    pub skipped: Vec<String>,
    /// How many names were left out in all.
    pub skipped_count: usize,
    /// Accounts whose variables changed (and were queued for re-indexing).
    pub affected_users: Vec<i64>,
}

/// Skipped names kept in the summary (the count has them all).
const SKIPPED_SHOWN: usize = 10;

impl SyncSummary {
    fn skip(&mut self, what: String) {
        self.skipped_count += 1;
        if self.skipped.len() < SKIPPED_SHOWN {
            self.skipped.push(what);
        }
    }
}

impl Store {
    /// How many packages have synced owners now: what a new owner map is compared with.
    pub async fn synced_package_count(&self) -> Result<i64> {
        let sql = "SELECT COUNT(DISTINCT package) FROM package_owners WHERE source = 'sync'";
        Ok(with_pool!(self, |pool| sqlx::query_scalar::<_, i64>(sql)
            .fetch_one(pool)
            .await?))
    }

    /// Writes what a sync read (see [`SyncedOwnership`]) in one transaction: only the rows
    /// that differ from the last sync's are deleted or inserted, and each account whose
    /// `$my_packages` or `$my_groups` changed gets one change row. Names that are not
    /// valid here are left out and listed in the summary, not refused: one odd entry
    /// upstream must not stop the rest.
    pub async fn sync_ownership(&self, data: &SyncedOwnership) -> Result<SyncSummary> {
        let mut summary = SyncSummary::default();
        let wanted_owners: Option<BTreeSet<(String, String, String)>> =
            data.packages.as_ref().map(|packages| {
                let mut rows = BTreeSet::new();
                for (package, owners) in packages {
                    if let Err(reason) = check(Kind::Package, package) {
                        summary.skip(format!("package: {reason}"));
                        continue;
                    }
                    for owner in owners {
                        match owner.check() {
                            Ok(()) => {
                                rows.insert((
                                    package.clone(),
                                    owner.kind.as_str().to_string(),
                                    owner.name.clone(),
                                ));
                            }
                            Err(err) => summary.skip(format!("package {package:?}: {err}")),
                        }
                    }
                }
                rows
            });
        let mut read_members: BTreeSet<(String, String)> = BTreeSet::new();
        let mut read_groups: BTreeSet<&str> = BTreeSet::new();
        for (group, members) in data.groups.iter().flatten() {
            if let Err(reason) = check(Kind::Group, group) {
                summary.skip(format!("group: {reason}"));
                continue;
            }
            read_groups.insert(group);
            for member in members {
                match check(Kind::User, member) {
                    Ok(()) => {
                        read_members.insert((group.clone(), member.clone()));
                    }
                    Err(reason) => summary.skip(format!("group {group:?}: {reason}")),
                }
            }
        }

        let lock = self.ownership_lock();
        let (all_members, all_owners) = (self.sql(ALL_MEMBERS), self.sql(ALL_OWNERS));
        let synced_owners = self.sql(
            "SELECT package, owner_kind, owner_name FROM package_owners WHERE source = 'sync'",
        );
        let synced_members =
            self.sql("SELECT group_name, username FROM group_members WHERE source = 'sync'");
        let delete_owner = self.sql(
            "DELETE FROM package_owners WHERE package = $1 AND owner_kind = $2 \
             AND owner_name = $3 AND source = 'sync'",
        );
        let delete_member = self.sql(
            "DELETE FROM group_members WHERE group_name = $1 AND username = $2 \
             AND source = 'sync'",
        );
        let accounts = "SELECT id, username FROM users";
        let kept = &data.kept_groups;
        let groups_synced = data.groups.as_ref();
        let result = with_pool!(self, |pool| {
            let mut tx = Edit::begin(self, pool).await?;
            sqlx::query(lock).execute(&mut *tx).await?;
            let before = Snapshot {
                members: sqlx::query_as(&all_members).fetch_all(&mut *tx).await?,
                owners: sqlx::query_as(&all_owners).fetch_all(&mut *tx).await?,
            };
            let current_owners: Vec<(String, String, String)> =
                sqlx::query_as(&synced_owners).fetch_all(&mut *tx).await?;
            let current_owners: BTreeSet<(String, String, String)> =
                current_owners.into_iter().collect();
            let current_members: Vec<(String, String)> =
                sqlx::query_as(&synced_members).fetch_all(&mut *tx).await?;
            let current_members: BTreeSet<(String, String)> = current_members.into_iter().collect();

            // Owners: the map's rows, or (not read) the current ones.
            let wanted_owners = wanted_owners.unwrap_or_else(|| current_owners.clone());
            let gone_owners: Vec<&(String, String, String)> =
                current_owners.difference(&wanted_owners).collect();
            let new_owners: Vec<[&str; 4]> = wanted_owners
                .difference(&current_owners)
                .map(|(p, k, n)| [p.as_str(), k.as_str(), n.as_str(), "sync"])
                .collect();
            // Members: the groups read, plus the current members of the groups kept.
            let mut wanted_members = read_members.clone();
            wanted_members.extend(
                current_members
                    .iter()
                    .filter(|(g, _)| {
                        groups_synced.is_none()
                            || (kept.contains(g) && !read_groups.contains(g.as_str()))
                    })
                    .cloned(),
            );
            let gone_members: Vec<&(String, String)> =
                current_members.difference(&wanted_members).collect();
            let new_members: Vec<[&str; 3]> = wanted_members
                .difference(&current_members)
                .map(|(g, u)| [g.as_str(), u.as_str(), "sync"])
                .collect();

            for (package, kind, name) in &gone_owners {
                sqlx::query(&delete_owner)
                    .bind(package)
                    .bind(kind)
                    .bind(name)
                    .execute(&mut *tx)
                    .await?;
            }
            for chunk in new_owners.chunks(CHUNK) {
                let sql = values_sql(
                    "package_owners (package, owner_kind, owner_name, source)",
                    4,
                    chunk.len(),
                );
                let sql = self.sql(&sql);
                let mut q = sqlx::query(&sql);
                for row in chunk {
                    q = q.bind(row[0]).bind(row[1]).bind(row[2]).bind(row[3]);
                }
                q.execute(&mut *tx).await?;
            }
            for (group, username) in &gone_members {
                sqlx::query(&delete_member)
                    .bind(group)
                    .bind(username)
                    .execute(&mut *tx)
                    .await?;
            }
            for chunk in new_members.chunks(CHUNK) {
                let sql = values_sql(
                    "group_members (group_name, username, source)",
                    3,
                    chunk.len(),
                );
                let sql = self.sql(&sql);
                let mut q = sqlx::query(&sql);
                for row in chunk {
                    q = q.bind(row[0]).bind(row[1]).bind(row[2]);
                }
                q.execute(&mut *tx).await?;
            }

            let counts = (
                new_owners.len(),
                gone_owners.len(),
                new_members.len(),
                gone_members.len(),
            );
            let changed = if counts == (0, 0, 0, 0) {
                BTreeSet::new()
            } else {
                let after = Snapshot {
                    members: sqlx::query_as(&all_members).fetch_all(&mut *tx).await?,
                    owners: sqlx::query_as(&all_owners).fetch_all(&mut *tx).await?,
                };
                before.changed(&after)
            };
            // One read of the accounts rather than one per changed name: a first sync
            // changes most of them.
            let ids: Vec<i64> = if changed.is_empty() {
                Vec::new()
            } else {
                let users: Vec<(i64, String)> =
                    sqlx::query_as(accounts).fetch_all(&mut *tx).await?;
                users
                    .into_iter()
                    .filter(|(_, name)| changed.contains(name))
                    .map(|(id, _)| id)
                    .collect()
            };
            tx.commit(ids.iter().copied()).await?;
            (counts, ids)
        });
        let ((added, removed, members_added, members_removed), ids) = result;
        summary.owners_added = added;
        summary.owners_removed = removed;
        summary.members_added = members_added;
        summary.members_removed = members_removed;
        summary.affected_users = sorted(ids);
        Ok(summary)
    }
}
