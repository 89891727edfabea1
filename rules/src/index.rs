//! The match index: which filters does a message satisfy? The naive evaluator checks
//! every filter; [`Index`] keeps that contract and is the type the notifier uses.

use std::collections::HashMap;

use crate::{Condition, Message, Metadata, Variables};

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

/// Every enabled filter, ready to match messages. Updated one filter or owner at a time.
#[derive(Debug, Default)]
pub struct Index {
    filters: HashMap<i64, IndexedFilter>,
    variables: HashMap<i64, Variables>,
}

impl Index {
    /// Adds or replaces one filter.
    pub fn upsert(&mut self, filter: IndexedFilter) {
        self.filters.insert(filter.id, filter);
    }

    /// Removes one filter; unknown ids are ignored.
    pub fn remove(&mut self, filter_id: i64) {
        self.filters.remove(&filter_id);
    }

    /// Sets one owner's variables.
    pub fn set_variables(&mut self, owner: i64, variables: Variables) {
        self.variables.insert(owner, variables);
    }

    /// How many filters the index holds.
    pub fn len(&self) -> usize {
        self.filters.len()
    }

    /// Whether the index holds no filter.
    pub fn is_empty(&self) -> bool {
        self.filters.is_empty()
    }

    /// The ids of every filter the message satisfies, ascending.
    pub fn matches(&self, message: &Message, metadata: &Metadata) -> Vec<i64> {
        let empty = Variables::default();
        let mut ids: Vec<i64> = self
            .filters
            .values()
            .filter(|f| {
                let vars = self.variables.get(&f.owner).unwrap_or(&empty);
                f.condition.matches(message, metadata, vars)
            })
            .map(|f| f.id)
            .collect();
        ids.sort_unstable();
        ids
    }
}
