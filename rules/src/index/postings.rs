//! Postings: for each anchor value, the slots of the filters filed under it. A message
//! turns its own values (topic, app, agent, usernames, packages, groups) into lookups here.

use std::collections::HashMap;

use super::anchor::{AnchorRef, MAX_TOPIC_SEGMENTS};
use crate::{Message, Metadata};

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
    keys: HashMap<String, Vec<u32>>,
}

/// Every anchor value in use and the slots filed under it.
#[derive(Debug, Default)]
pub(super) struct Postings {
    topics: Vec<TopicShape>,
    apps: HashMap<String, Vec<u32>>,
    agents: HashMap<String, Vec<u32>>,
    usernames: HashMap<String, Vec<u32>>,
    packages: HashMap<String, Vec<u32>>,
    groups: HashMap<String, Vec<u32>>,
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

fn add_to(map: &mut HashMap<String, Vec<u32>>, key: &str, slot: u32) {
    match map.get_mut(key) {
        Some(slots) => slots.push(slot),
        None => {
            map.insert(key.to_string(), vec![slot]);
        }
    }
}

fn remove_from(map: &mut HashMap<String, Vec<u32>>, key: &str, slot: u32) {
    if let Some(slots) = map.get_mut(key) {
        if let Some(at) = slots.iter().position(|s| *s == slot) {
            slots.swap_remove(at);
        }
        if slots.is_empty() {
            map.remove(key);
        }
    }
}

impl Postings {
    fn map<'a>(&mut self, anchor: &'a AnchorRef<'_>) -> (&mut HashMap<String, Vec<u32>>, &'a str) {
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
                            keys: HashMap::new(),
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

    pub fn add(&mut self, anchor: &AnchorRef<'_>, slot: u32) {
        let (map, key) = self.map(anchor);
        add_to(map, key, slot);
    }

    pub fn remove(&mut self, anchor: &AnchorRef<'_>, slot: u32) {
        let (map, key) = self.map(anchor);
        remove_from(map, key, slot);
        // Shapes nobody uses any more would cost every message a lookup.
        self.topics.retain(|s| !s.keys.is_empty());
    }

    /// Appends the slots filed under any of the message's values (with repeats).
    pub fn collect(&self, message: &Message, metadata: &Metadata, out: &mut Vec<u32>) {
        let mut extend = |map: &HashMap<String, Vec<u32>>, key: &str| {
            if let Some(slots) = map.get(key) {
                out.extend_from_slice(slots);
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
