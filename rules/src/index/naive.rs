//! The naive evaluator: every filter against every message. Slow on purpose and simple on
//! purpose: it is the reference [`super::Index`] must agree with, in tests and benchmarks.

use std::collections::HashMap;

use super::IndexedFilter;
use crate::{Message, Metadata, Variables};

/// Every filter, evaluated one by one; the same API as [`super::Index`].
#[derive(Debug, Default)]
pub struct NaiveIndex {
    filters: HashMap<i64, IndexedFilter>,
    variables: HashMap<i64, Variables>,
}

impl NaiveIndex {
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

    /// How many filters it holds.
    pub fn len(&self) -> usize {
        self.filters.len()
    }

    /// Whether it holds no filter.
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
