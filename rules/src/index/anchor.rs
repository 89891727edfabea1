//! Anchors: values any message a condition matches must carry. The index files each
//! filter under its anchors, so a message only meets the filters its own values can
//! satisfy. A condition with no anchor (only `not`, severity, body tests, …) must be
//! evaluated against every message: the scan list.

use std::borrow::Cow;
use std::collections::BTreeSet;

use smallvec::SmallVec;

use crate::condition::{Condition, Operand, SetField, Variable, Variables};

/// One value a message must carry for a filter to be worth evaluating.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Anchor {
    /// The topic, with its first segments equal to `pattern`'s (a `*` segment stands for
    /// any one): exactly as many segments when `open` is false, at least as many when true.
    /// An exact topic is a pattern without `*` and not open.
    Topic {
        /// Dotted segments, literal or `*`.
        pattern: String,
        /// Whether more segments may follow (the glob went on with `**`).
        open: bool,
    },
    /// The app.
    App(String),
    /// The agent.
    Agent(String),
    /// One of the usernames.
    Username(String),
    /// One of the packages.
    Package(String),
    /// One of the groups.
    Group(String),
}

/// Where a condition is filed for one owner's variables.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Anchoring {
    /// Any match carries one of these anchors.
    Any(BTreeSet<Anchor>),
    /// No anchor bounds the matches: evaluate against every message.
    Scan,
}

/// How many segments a topic anchor may fix; a mask of `*` positions must fit a `u64`.
pub(super) const MAX_TOPIC_SEGMENTS: usize = 64;

/// An anchor borrowing from the condition and the variables: filing half a million
/// filters must not copy every package name twice.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum AnchorRef<'a> {
    Topic { pattern: Cow<'a, str>, open: bool },
    App(&'a str),
    Agent(&'a str),
    Username(&'a str),
    Package(&'a str),
    Group(&'a str),
}

impl AnchorRef<'_> {
    fn to_anchor(&self) -> Anchor {
        match self {
            AnchorRef::Topic { pattern, open } => Anchor::Topic {
                pattern: pattern.to_string(),
                open: *open,
            },
            AnchorRef::App(v) => Anchor::App(v.to_string()),
            AnchorRef::Agent(v) => Anchor::Agent(v.to_string()),
            AnchorRef::Username(v) => Anchor::Username(v.to_string()),
            AnchorRef::Package(v) => Anchor::Package(v.to_string()),
            AnchorRef::Group(v) => Anchor::Group(v.to_string()),
        }
    }

    /// A guess at how many messages carry the anchor, relative to one username. A person
    /// or a package is in a tiny share of the traffic; one topic can be a third of it
    /// (`buildsys.build.state.change`), and an app more. So a set of hundreds of packages
    /// is still a better anchor than a topic.
    fn cost(&self) -> u64 {
        match self {
            AnchorRef::Username(_)
            | AnchorRef::Package(_)
            | AnchorRef::Group(_)
            | AnchorRef::Agent(_) => 1,
            AnchorRef::Topic { pattern, open } => {
                let literal = pattern.split('.').filter(|s| *s != "*").count();
                let base = if *open || pattern.contains('*') {
                    2_000
                } else {
                    1_000
                };
                base + (64_000 >> literal.min(16))
            }
            AnchorRef::App(_) => 10_000,
        }
    }
}

fn cost(anchors: &[AnchorRef<'_>]) -> u64 {
    anchors.iter().map(AnchorRef::cost).sum()
}

impl Condition {
    /// Where the index files this condition for an owner with these variables: the
    /// anchors any match needs, or [`Anchoring::Scan`]. An empty anchor set means the
    /// condition cannot match for these variables (`packages has $my_packages` for an
    /// owner of nothing).
    pub fn anchors(&self, vars: &Variables) -> Anchoring {
        match anchor_refs(self, vars) {
            Some(refs) => Anchoring::Any(refs.iter().map(AnchorRef::to_anchor).collect()),
            None => Anchoring::Scan,
        }
    }

    /// Whether the condition has anchors, whatever the owner's variables: if not, every
    /// message must evaluate it, which the web editor warns about.
    pub fn is_anchored(&self) -> bool {
        anchor_refs(self, &Variables::default()).is_some()
    }

    /// Whether the condition names a variable, so re-filing it is needed when the
    /// owner's variables change.
    pub fn uses_variables(&self) -> bool {
        let var = |o: &Operand| matches!(o, Operand::Var(_));
        match self {
            Condition::And(parts) | Condition::Or(parts) => {
                parts.iter().any(Condition::uses_variables)
            }
            Condition::Not(inner) => inner.uses_variables(),
            Condition::Has { value, .. }
            | Condition::AgentIs(value)
            | Condition::AgentIsNot(value) => var(value),
            Condition::HasAny { values, .. }
            | Condition::HasAll { values, .. }
            | Condition::AgentIn(values) => values.iter().any(var),
            Condition::Body { test, .. } => test.uses_variables(),
            _ => false,
        }
    }
}

/// Whether a message that carries one of the condition's anchors is sure to match it, so
/// the index can skip evaluation (`usernames has $me`, `packages has $my_packages`).
pub(super) fn anchor_implies_match(c: &Condition) -> bool {
    match c {
        Condition::Or(parts) => parts.iter().all(anchor_implies_match),
        // A literal `*` segment in an exact topic would read as a wildcard in the anchor.
        Condition::TopicIs(topic) => !topic.split('.').any(|s| s == "*"),
        Condition::AppIn(_)
        | Condition::Has { .. }
        | Condition::HasAny { .. }
        | Condition::AgentIs(_)
        | Condition::AgentIn(_) => true,
        // A glob is its anchor when the only `**` (if any) is the last segment.
        Condition::TopicGlob(glob) => {
            let segments: Vec<&str> = glob.split('.').collect();
            let stars = segments.iter().filter(|s| **s == "**").count();
            segments.len() <= MAX_TOPIC_SEGMENTS
                && (stars == 0 || (stars == 1 && segments.last() == Some(&"**")))
                && segments.iter().any(|s| *s != "*" && *s != "**")
        }
        _ => false,
    }
}

fn field_anchor(field: SetField, value: &str) -> AnchorRef<'_> {
    match field {
        SetField::Usernames => AnchorRef::Username(value),
        SetField::Packages => AnchorRef::Package(value),
        SetField::Groups => AnchorRef::Group(value),
    }
}

fn resolved<'a>(operand: &'a Operand, vars: &'a Variables) -> impl Iterator<Item = &'a str> + 'a {
    let (literal, variable) = match operand {
        Operand::Literal(s) => (Some(s.as_str()), None),
        Operand::Var(var) => (None, Some(vars.resolve(*var))),
    };
    literal.into_iter().chain(variable.into_iter().flatten())
}

/// `None`: no anchor bounds the matches. `Some(anchors)`: every match carries one of
/// them (sorted, without repeats).
pub(super) fn anchor_refs<'a>(c: &'a Condition, vars: &'a Variables) -> Option<Vec<AnchorRef<'a>>> {
    let mut anchors = match c {
        // Any part's anchors bound the whole; take the rarest-looking.
        Condition::And(parts) => {
            return parts
                .iter()
                .filter_map(|p| anchor_refs(p, vars))
                .min_by_key(|a| cost(a))
        }
        // Every part must be bounded; the whole is bounded by the union.
        Condition::Or(parts) => parts.iter().try_fold(Vec::new(), |mut all, p| {
            all.extend(anchor_refs(p, vars)?);
            Some(all)
        })?,
        Condition::TopicIs(topic) => {
            if topic.split('.').skip(MAX_TOPIC_SEGMENTS).any(|s| s == "*") {
                return None;
            }
            vec![AnchorRef::Topic {
                pattern: Cow::Borrowed(topic),
                open: false,
            }]
        }
        Condition::TopicGlob(glob) => vec![topic_glob_anchor(glob)?],
        Condition::AppIn(apps) => apps.iter().map(|a| AnchorRef::App(a)).collect(),
        Condition::Has { field, value } => resolved(value, vars)
            .map(|v| field_anchor(*field, v))
            .collect(),
        Condition::HasAny { field, values } => values
            .iter()
            .flat_map(|o| resolved(o, vars))
            .map(|v| field_anchor(*field, v))
            .collect(),
        // Every value must be there, so any one of them will do; none means no match.
        Condition::HasAll { field, values } => values
            .iter()
            .flat_map(|o| resolved(o, vars))
            .take(1)
            .map(|v| field_anchor(*field, v))
            .collect(),
        Condition::AgentIs(value) => resolved(value, vars).map(AnchorRef::Agent).collect(),
        Condition::AgentIn(values) => values
            .iter()
            .flat_map(|o| resolved(o, vars))
            .map(AnchorRef::Agent)
            .collect(),
        Condition::Not(_)
        | Condition::Severity { .. }
        | Condition::AgentIsNot(_)
        | Condition::Body { .. } => return None,
    };
    anchors.sort_unstable();
    anchors.dedup();
    Some(anchors)
}

/// The kind of anchor a variable's values are filed as.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(super) enum VarField {
    Username,
    Package,
    Group,
    Agent,
}

impl From<SetField> for VarField {
    fn from(field: SetField) -> VarField {
        match field {
            SetField::Usernames => VarField::Username,
            SetField::Packages => VarField::Package,
            SetField::Groups => VarField::Group,
        }
    }
}

/// Every value of one of the owner's variables, as anchors of one kind. The index files
/// such a group once per owner and points each filter that needs it at the group, rather
/// than filing every filter under every value: two `$my_packages` filters of a user who
/// owns 50 packages cost 50 postings, not 100.
pub(super) type VarGroup = (VarField, Variable);

/// How many values a variable has for these variables.
fn var_len(vars: &Variables, var: Variable) -> usize {
    vars.set(var).map_or(1, |set| set.len())
}

/// A total order on variables (the type itself has none), to sort and dedup groups.
fn var_rank(var: Variable) -> u8 {
    match var {
        Variable::Me => 0,
        Variable::MyGroups => 1,
        Variable::MyPackages => 2,
        Variable::FollowedUsers => 3,
        Variable::FollowedPackages => 4,
    }
}

/// Where the index files a condition for one owner: the same anchors as [`anchor_refs`],
/// except that the values of a set-valued variable are named by their [`VarGroup`] instead
/// of one by one. Any match carries one of `anchors` or a value of one of `groups`.
#[derive(Debug, Default)]
pub(super) struct Plan<'a> {
    /// Sorted, without repeats.
    pub anchors: SmallVec<[AnchorRef<'a>; 2]>,
    /// Without repeats, and only groups with at least one value.
    pub groups: SmallVec<[VarGroup; 2]>,
    cost: u64,
}

impl<'a> Plan<'a> {
    fn push_operand(&mut self, field: VarField, operand: &'a Operand, vars: &'a Variables) {
        let anchor = |v| match field {
            VarField::Username => AnchorRef::Username(v),
            VarField::Package => AnchorRef::Package(v),
            VarField::Group => AnchorRef::Group(v),
            VarField::Agent => AnchorRef::Agent(v),
        };
        match operand {
            Operand::Literal(v) => self.anchors.push(anchor(v)),
            // One value: a group would cost more than filing the filter under it.
            Operand::Var(Variable::Me) => self.anchors.push(anchor(&vars.me)),
            Operand::Var(var) => {
                if var_len(vars, *var) > 0 {
                    self.groups.push((field, *var));
                }
            }
        }
    }

    fn finish(mut self, vars: &Variables) -> Plan<'a> {
        self.anchors.sort_unstable();
        self.anchors.dedup();
        if self.groups.len() > 1 {
            self.groups
                .sort_unstable_by_key(|(field, var)| (*field, var_rank(*var)));
            self.groups.dedup();
        }
        // As `cost` would count the values one by one: each variable-borne anchor (person,
        // package, group, agent) costs 1.
        let values: usize = self.groups.iter().map(|(_, v)| var_len(vars, *v)).sum();
        self.cost = cost(&self.anchors) + values as u64;
        self
    }
}

/// [`anchor_refs`] with variables kept as groups; `None` when no anchor bounds the matches.
/// Deterministic in `(c, vars)`, so unfiling derives the same plan as filing did.
pub(super) fn plan<'a>(c: &'a Condition, vars: &'a Variables) -> Option<Plan<'a>> {
    let mut out = Plan::default();
    match c {
        Condition::And(parts) => {
            return parts
                .iter()
                .filter_map(|p| plan(p, vars))
                .min_by_key(|p| p.cost)
        }
        Condition::Or(parts) => {
            for part in parts {
                let part = plan(part, vars)?;
                out.anchors.extend(part.anchors);
                out.groups.extend(part.groups);
            }
        }
        Condition::TopicIs(_) | Condition::TopicGlob(_) | Condition::AppIn(_) => {
            out.anchors.extend(anchor_refs(c, vars)?);
        }
        Condition::Has { field, value } => out.push_operand((*field).into(), value, vars),
        Condition::HasAny { field, values } => {
            for value in values {
                out.push_operand((*field).into(), value, vars);
            }
        }
        // One value will do (see `anchor_refs`): filed on its own, not as a group.
        Condition::HasAll { field, values } => {
            if let Some(v) = values.iter().flat_map(|o| resolved(o, vars)).next() {
                out.anchors.push(field_anchor(*field, v));
            }
        }
        Condition::AgentIs(value) => out.push_operand(VarField::Agent, value, vars),
        Condition::AgentIn(values) => {
            for value in values {
                out.push_operand(VarField::Agent, value, vars);
            }
        }
        Condition::Not(_)
        | Condition::Severity { .. }
        | Condition::AgentIsNot(_)
        | Condition::Body { .. } => return None,
    }
    Some(out.finish(vars))
}

/// The fixed head of a topic glob (up to its first `**`), if it has a literal segment.
fn topic_glob_anchor(glob: &str) -> Option<AnchorRef<'_>> {
    let (head, open) = match glob.find("**") {
        // `**` is always a whole segment, so the head ends with a dot (or is empty).
        Some(at) => (glob[..at].strip_suffix('.').unwrap_or_default(), true),
        None => (glob, false),
    };
    let segments = head.split('.');
    if head.is_empty()
        || segments.clone().count() > MAX_TOPIC_SEGMENTS
        || segments.clone().all(|s| s == "*")
    {
        return None;
    }
    Some(AnchorRef::Topic {
        pattern: Cow::Borrowed(head),
        open,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn anchors_of(text: &str, vars: &Variables) -> Anchoring {
        Condition::parse(text).expect("valid").anchors(vars)
    }

    #[test]
    fn and_takes_the_rarest_or_takes_all() {
        let mut vars = Variables::for_user("alice");
        vars.my_packages.insert("kernel".into());
        let a = anchors_of(
            r#"topic ~ "org.*.bodhi.**" and packages has $my_packages"#,
            &vars,
        );
        assert_eq!(
            a,
            Anchoring::Any(BTreeSet::from([Anchor::Package("kernel".into())]))
        );
        let a = anchors_of(r#"usernames has $me or agent == "bob""#, &vars);
        assert_eq!(
            a,
            Anchoring::Any(BTreeSet::from([
                Anchor::Username("alice".into()),
                Anchor::Agent("bob".into())
            ]))
        );
        assert_eq!(
            anchors_of(r#"usernames has $me or severity >= error"#, &vars),
            Anchoring::Scan
        );
        assert_eq!(
            anchors_of(r#"packages has $followed_packages"#, &vars),
            Anchoring::Any(BTreeSet::new())
        );
    }

    #[test]
    fn topic_globs_anchor_on_their_head() {
        let a = anchors_of(
            r#"topic ~ "org.fedoraproject.*.bodhi.update.**""#,
            &Variables::default(),
        );
        let want = Anchor::Topic {
            pattern: "org.fedoraproject.*.bodhi.update".into(),
            open: true,
        };
        assert_eq!(a, Anchoring::Any(BTreeSet::from([want])));
        assert!(!Condition::parse(r#"topic ~ "*.**""#)
            .expect("valid")
            .is_anchored());
        assert!(!Condition::parse(r#"not usernames has $me"#)
            .expect("valid")
            .is_anchored());
    }
}
