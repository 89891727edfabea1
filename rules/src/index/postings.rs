//! Postings: for each anchor value, the slots of the filters filed under it, or the groups
//! of one owner's variable values that lead to such slots. A message turns its own values
//! (topic, app, agent, usernames, packages, groups) into lookups here.

use rustc_hash::FxHashMap;
use smallvec::SmallVec;

use super::anchor::{AnchorRef, VarField, VarGroup, MAX_TOPIC_SEGMENTS};
use crate::{Message, Metadata, Variables};

/// What a posting leads to: a slot, or (high bit set) a variable group's number.
type Target = u32;
const GROUP: Target = 1 << 31;

/// The targets filed under one anchor value. Most values (a person, a rarely owned
/// package) have a handful, kept inline.
type Targets = SmallVec<[Target; 4]>;

/// Anchor values (strings) to targets. FxHash: the keys come from users' own data but a
/// collision costs speed only, and filing millions of postings is dominated by hashing.
type Map = FxHashMap<Box<str>, Targets>;

/// One owner's variable, filed once for every filter of that owner that needs it: the
/// owner's slots filed under the group; never empty.
type Group = SmallVec<[u32; 2]>;

/// Filters filed under topic patterns of one shape: the same length, openness and `*`
/// positions. A message computes one key per shape in use, so lookups cost the number of
/// shapes (a handful in practice: exact topics, `org.fedoraproject.*.app.…`), not the
/// number of patterns.
#[derive(Debug)]
struct TopicShape {
    len: usize,
    open: bool,
    /// Bit i: segment i is `*`.
    mask: u64,
    keys: Map,
}

/// Every anchor value in use and the slots filed under it.
#[derive(Debug, Default)]
pub(super) struct Postings {
    topics: Vec<TopicShape>,
    apps: Map,
    agents: Map,
    usernames: Map,
    packages: Map,
    groups: Map,
    /// Variable groups by number; numbers are reused.
    var_groups: Vec<Option<Group>>,
    free_groups: Vec<u32>,
    group_of: FxHashMap<(i64, VarGroup), u32>,
}

fn shape_of(pattern: &str) -> (usize, u64) {
    let mut mask = 0u64;
    let mut len = 0;
    for (i, segment) in pattern.split('.').enumerate() {
        if segment == "*" && i < MAX_TOPIC_SEGMENTS {
            mask |= 1 << i;
        }
        len = i + 1;
    }
    (len, mask)
}

fn add_to(map: &mut Map, key: &str, target: Target) {
    match map.get_mut(key) {
        Some(targets) => targets.push(target),
        None => {
            let mut targets = Targets::new();
            targets.push(target);
            map.insert(key.into(), targets);
        }
    }
}

fn remove_from(map: &mut Map, key: &str, target: Target) {
    if let Some(targets) = map.get_mut(key) {
        if let Some(at) = targets.iter().position(|t| *t == target) {
            targets.swap_remove(at);
        }
        if targets.is_empty() {
            map.remove(key);
        }
    }
}

impl Postings {
    fn map<'a>(&mut self, anchor: &'a AnchorRef<'_>) -> (&mut Map, &'a str) {
        let (map, key) = match anchor {
            AnchorRef::Topic { pattern, open } => {
                let (len, mask) = shape_of(pattern);
                let at = match self
                    .topics
                    .iter()
                    .position(|s| s.len == len && s.open == *open && s.mask == mask)
                {
                    Some(at) => at,
                    None => {
                        self.topics.push(TopicShape {
                            len,
                            open: *open,
                            mask,
                            keys: Map::default(),
                        });
                        self.topics.len() - 1
                    }
                };
                (&mut self.topics[at].keys, pattern.as_ref())
            }
            AnchorRef::App(v) => (&mut self.apps, *v),
            AnchorRef::Agent(v) => (&mut self.agents, *v),
            AnchorRef::Username(v) => (&mut self.usernames, *v),
            AnchorRef::Package(v) => (&mut self.packages, *v),
            AnchorRef::Group(v) => (&mut self.groups, *v),
        };
        (map, key)
    }

    fn var_map(&mut self, field: VarField) -> &mut Map {
        match field {
            VarField::Username => &mut self.usernames,
            VarField::Package => &mut self.packages,
            VarField::Group => &mut self.groups,
            VarField::Agent => &mut self.agents,
        }
    }

    /// Files the slot under one anchor. Slots are below 2^31 (see `Index::upsert`).
    pub fn add(&mut self, anchor: &AnchorRef<'_>, slot: u32) {
        debug_assert!(slot < GROUP);
        let (map, key) = self.map(anchor);
        add_to(map, key, slot);
    }

    pub fn remove(&mut self, anchor: &AnchorRef<'_>, slot: u32) {
        let (map, key) = self.map(anchor);
        remove_from(map, key, slot);
        if matches!(anchor, AnchorRef::Topic { .. }) {
            // Shapes nobody uses any more would cost every message a lookup.
            self.topics.retain(|s| !s.keys.is_empty());
        }
    }

    /// Files the slot under every value of one of its owner's variables: through the
    /// owner's group for that variable, filed now if no other slot of the owner needs it.
    /// Every slot of one owner joins and leaves with the same variables (the owner's
    /// current ones; `Index::set_variables` makes every slot leave before any joins again).
    pub fn join(&mut self, owner: i64, group: VarGroup, vars: &Variables, slot: u32) {
        if let Some(&at) = self.group_of.get(&(owner, group)) {
            if let Some(g) = self.var_groups[at as usize].as_mut() {
                g.push(slot);
            }
            return;
        }
        let at = match self.free_groups.pop() {
            Some(at) => at,
            None => {
                self.var_groups.push(None);
                u32::try_from(self.var_groups.len() - 1).unwrap_or(u32::MAX)
            }
        };
        debug_assert!(at < GROUP);
        let (field, var) = group;
        let map = self.var_map(field);
        for value in vars.resolve(var) {
            add_to(map, value, at | GROUP);
        }
        let mut slots = Group::new();
        slots.push(slot);
        self.var_groups[at as usize] = Some(slots);
        self.group_of.insert((owner, group), at);
    }

    /// Undoes [`Postings::join`], with the same variables; the group is unfiled with its
    /// last slot.
    pub fn leave(&mut self, owner: i64, group: VarGroup, vars: &Variables, slot: u32) {
        let Some(&at) = self.group_of.get(&(owner, group)) else {
            return;
        };
        let Some(g) = self.var_groups[at as usize].as_mut() else {
            return;
        };
        if let Some(i) = g.iter().position(|s| *s == slot) {
            g.swap_remove(i);
        }
        if !g.is_empty() {
            return;
        }
        self.var_groups[at as usize] = None;
        let (field, var) = group;
        let map = self.var_map(field);
        for value in vars.resolve(var) {
            remove_from(map, value, at | GROUP);
        }
        self.group_of.remove(&(owner, group));
        self.free_groups.push(at);
    }

    /// Whether nothing is filed any more (tests: unfiling undoes filing exactly).
    #[cfg(test)]
    pub fn is_clear(&self) -> bool {
        self.topics.is_empty()
            && [
                &self.apps,
                &self.agents,
                &self.usernames,
                &self.packages,
                &self.groups,
            ]
            .iter()
            .all(|m| m.is_empty())
            && self.group_of.is_empty()
            && self.var_groups.iter().all(Option::is_none)
    }

    /// Appends the slots filed under any of the message's values (with repeats).
    pub fn collect(&self, message: &Message, metadata: &Metadata, out: &mut Vec<u32>) {
        let groups = &self.var_groups;
        let mut extend = |map: &Map, key: &str| {
            for &target in map.get(key).into_iter().flatten() {
                if target & GROUP == 0 {
                    out.push(target);
                } else if let Some(Some(slots)) = groups.get((target & !GROUP) as usize) {
                    out.extend_from_slice(slots);
                }
            }
        };
        if !self.topics.is_empty() {
            let segments: Vec<&str> = message.topic.split('.').collect();
            let mut key = String::new();
            for shape in &self.topics {
                let fits = if shape.open {
                    segments.len() >= shape.len
                } else {
                    segments.len() == shape.len
                };
                if !fits {
                    continue;
                }
                if shape.mask == 0 && segments.len() == shape.len {
                    extend(&shape.keys, &message.topic);
                    continue;
                }
                key.clear();
                for (i, segment) in segments[..shape.len].iter().enumerate() {
                    if i > 0 {
                        key.push('.');
                    }
                    let wild = i < MAX_TOPIC_SEGMENTS && shape.mask & (1 << i) != 0;
                    key.push_str(if wild { "*" } else { segment });
                }
                extend(&shape.keys, &key);
            }
        }
        if let Some(app) = &metadata.app {
            extend(&self.apps, app);
        }
        if let Some(agent) = &metadata.agent {
            extend(&self.agents, agent);
        }
        for name in &metadata.usernames {
            extend(&self.usernames, name);
        }
        for name in &metadata.packages {
            extend(&self.packages, name);
        }
        for name in &metadata.groups {
            extend(&self.groups, name);
        }
    }
}
