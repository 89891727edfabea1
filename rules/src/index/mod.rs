//! The match index: which filters does a message satisfy? [`Index`] files each filter under
//! the anchors any of its matches needs, so a message evaluates only the filters its own
//! values can satisfy, plus the scan list of unanchored ones. [`NaiveIndex`] evaluates
//! every filter and is the reference the index is tested against.

mod anchor;
mod naive;
mod postings;

use std::collections::BTreeSet;
use std::sync::Arc;

use rustc_hash::{FxHashMap, FxHashSet};

pub use anchor::{Anchor, Anchoring};
pub use naive::NaiveIndex;

use crate::{Condition, Message, Metadata, Variables};
use postings::Postings;

/// A filter as the index sees it: an id, its owner, its condition.
#[derive(Debug, Clone, PartialEq)]
pub struct IndexedFilter {
    /// The store's filter id.
    pub id: i64,
    /// The owning user's id (whose variables apply).
    pub owner: i64,
    /// The condition.
    pub condition: Condition,
}

#[derive(Debug)]
struct Slot {
    id: i64,
    owner: i64,
    /// Shared with every other filter of the same condition: most users keep the
    /// default filters, which differ only through variables.
    condition: Arc<Condition>,
    /// The owner's variables when the filter was filed (the same `Arc` for every filter
    /// of the owner). Anchors are derived again from these to unfile it, rather than
    /// stored: a `$my_packages` filter would otherwise keep a copy of every package name
    /// its owner has.
    vars: Arc<Variables>,
    scan: bool,
    /// A message that reaches the filter through an anchor matches it for sure.
    exact: bool,
    uses_variables: bool,
}

/// Every enabled filter, ready to match messages. Updated one filter or one owner at a
/// time; nothing is ever rebuilt for everyone.
#[derive(Debug, Default)]
pub struct Index {
    /// Filters by slot; slots are reused, and postings hold slots (4 bytes, no hashing
    /// on the hot path) rather than filter ids.
    slots: Vec<Option<Slot>>,
    free: Vec<u32>,
    by_id: FxHashMap<i64, u32>,
    /// Each owner's slots.
    by_owner: FxHashMap<i64, Vec<u32>>,
    variables: FxHashMap<i64, Arc<Variables>>,
    no_variables: Arc<Variables>,
    postings: Postings,
    scan: BTreeSet<u32>,
    conditions: FxHashSet<Arc<Condition>>,
}

impl Index {
    /// Adds or replaces one filter.
    pub fn upsert(&mut self, filter: IndexedFilter) {
        self.remove(filter.id);
        let vars = self
            .variables
            .get(&filter.owner)
            .unwrap_or(&self.no_variables)
            .clone();
        let condition = match self.conditions.get(&filter.condition) {
            Some(shared) => shared.clone(),
            None => {
                let shared = Arc::new(filter.condition);
                self.conditions.insert(shared.clone());
                shared
            }
        };
        let slot = Slot {
            id: filter.id,
            owner: filter.owner,
            exact: anchor::anchor_implies_match(&condition),
            uses_variables: condition.uses_variables(),
            condition,
            vars,
            scan: false,
        };
        let at = match self.free.pop() {
            Some(at) => at,
            None => {
                // Postings tell slots from variable groups by the high bit; 2 billion
                // filters would not fit in memory anyway.
                assert!(self.slots.len() < 1 << 31, "too many filters");
                self.slots.push(None);
                self.slots.len() as u32 - 1
            }
        };
        self.slots[at as usize] = Some(slot);
        self.file(at);
        self.by_id.insert(filter.id, at);
        self.by_owner.entry(filter.owner).or_default().push(at);
    }

    /// Removes one filter; unknown ids are ignored.
    pub fn remove(&mut self, filter_id: i64) {
        let Some(at) = self.by_id.remove(&filter_id) else {
            return;
        };
        self.unfile(at);
        if let Some(slot) = self.slots[at as usize].take() {
            // The last user of a condition besides the table itself: drop it from the table.
            if Arc::strong_count(&slot.condition) == 2 {
                self.conditions.remove(&*slot.condition);
            }
            if let Some(slots) = self.by_owner.get_mut(&slot.owner) {
                slots.retain(|s| *s != at);
                if slots.is_empty() {
                    self.by_owner.remove(&slot.owner);
                }
            }
        }
        self.free.push(at);
    }

    /// Sets one owner's variables. Only that owner's filters that name a variable are
    /// filed again, and nothing is done if the variables did not change.
    pub fn set_variables(&mut self, owner: i64, variables: Variables) {
        if self.variables.get(&owner).is_some_and(|v| **v == variables) {
            return;
        }
        let vars = Arc::new(variables);
        self.variables.insert(owner, vars.clone());
        let Some(slots) = self.by_owner.get(&owner) else {
            return;
        };
        let slots = slots.clone();
        let refile: Vec<u32> = slots
            .iter()
            .copied()
            .filter(|&at| {
                self.slots[at as usize]
                    .as_ref()
                    .is_some_and(|s| s.uses_variables)
            })
            .collect();
        // Every filter leaves the owner's variable groups before any is filed again, so
        // that the groups are filed afresh with the new values.
        for &at in &refile {
            self.unfile(at);
        }
        for &at in &slots {
            if let Some(slot) = self.slots[at as usize].as_mut() {
                slot.vars = vars.clone();
            }
        }
        for &at in &refile {
            self.file(at);
        }
    }

    /// How many filters the index holds.
    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    /// Whether the index holds no filter.
    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }

    /// Whether the filter is on the scan list (evaluated for every message because no
    /// anchor bounds its matches). False for unknown ids.
    pub fn is_scan(&self, filter_id: i64) -> bool {
        self.slot(filter_id).is_some_and(|s| s.scan)
    }

    /// How many filters are on the scan list.
    pub fn scan_len(&self) -> usize {
        self.scan.len()
    }

    /// The ids of every filter the message satisfies, ascending.
    pub fn matches(&self, message: &Message, metadata: &Metadata) -> Vec<i64> {
        let mut candidates = Vec::new();
        self.postings.collect(message, metadata, &mut candidates);
        // A filter filed under several anchors the message carries is met several times.
        candidates.sort_unstable();
        candidates.dedup();
        let mut ids = Vec::new();
        for &at in &candidates {
            if let Some(slot) = &self.slots[at as usize] {
                if slot.exact || slot.condition.matches(message, metadata, &slot.vars) {
                    ids.push(slot.id);
                }
            }
        }
        for &at in &self.scan {
            if let Some(slot) = &self.slots[at as usize] {
                if slot.condition.matches(message, metadata, &slot.vars) {
                    ids.push(slot.id);
                }
            }
        }
        ids.sort_unstable();
        ids
    }

    fn slot(&self, filter_id: i64) -> Option<&Slot> {
        let at = *self.by_id.get(&filter_id)?;
        self.slots.get(at as usize)?.as_ref()
    }

    /// Files the slot under its anchors for its current variables, or on the scan list.
    fn file(&mut self, at: u32) {
        let Some(slot) = self.slots[at as usize].as_mut() else {
            return;
        };
        let scan = match anchor::plan(&slot.condition, &slot.vars) {
            Some(plan) => {
                for anchor in &plan.anchors {
                    self.postings.add(anchor, at);
                }
                for &group in &plan.groups {
                    self.postings.join(slot.owner, group, &slot.vars, at);
                }
                false
            }
            None => {
                self.scan.insert(at);
                true
            }
        };
        slot.scan = scan;
    }

    /// Undoes [`Index::file`]: the anchors are derived from the same variables again.
    fn unfile(&mut self, at: u32) {
        let Some(slot) = self.slots[at as usize].as_ref() else {
            return;
        };
        match anchor::plan(&slot.condition, &slot.vars) {
            Some(plan) => {
                for anchor in &plan.anchors {
                    self.postings.remove(anchor, at);
                }
                for &group in &plan.groups {
                    self.postings.leave(slot.owner, group, &slot.vars, at);
                }
            }
            None => {
                self.scan.remove(&at);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message_about(packages: &[&str]) -> (Message, Metadata) {
        let message = Message::new(
            "m",
            "org.fedoraproject.prod.git.receive",
            serde_json::json!({}),
        );
        let mut metadata = Metadata::derive(&message);
        metadata.packages = packages.iter().map(|p| p.to_string()).collect();
        (message, metadata)
    }

    fn owning(packages: &[&str]) -> Variables {
        let mut vars = Variables::for_user("alice");
        vars.my_packages = packages.iter().map(|p| p.to_string()).collect();
        vars
    }

    /// Two filters of one owner share the owner's `$my_packages` group: it follows the
    /// variables and outlives either filter alone.
    #[test]
    fn filters_of_one_owner_share_a_variable_group() {
        let mut index = Index::default();
        index.set_variables(1, owning(&["kernel", "bash"]));
        for id in [10, 11] {
            let condition = Condition::parse("packages has $my_packages").expect("valid");
            index.upsert(IndexedFilter {
                id,
                owner: 1,
                condition,
            });
        }
        let (m, d) = message_about(&["kernel"]);
        assert_eq!(index.matches(&m, &d), vec![10, 11]);
        index.set_variables(1, owning(&["bash", "vim"]));
        assert!(index.matches(&m, &d).is_empty());
        let (m, d) = message_about(&["vim"]);
        assert_eq!(index.matches(&m, &d), vec![10, 11]);
        index.remove(10);
        assert_eq!(index.matches(&m, &d), vec![11]);
        index.remove(11);
        assert!(index.matches(&m, &d).is_empty());
        assert!(index.postings.is_clear());
    }
}
