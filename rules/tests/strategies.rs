//! Proptest generators: valid conditions, variables and messages drawn from small pools,
//! so that random filters and random messages actually meet.

use std::collections::BTreeSet;

use proptest::prelude::*;
use proptest::sample::select;
use serde_json::json;
use tidings_rules::condition::{
    BodyPath, BodyTest, CmpOp, Glob, Literal, Operand, Regex, SetField, Variable,
};
use tidings_rules::{Condition, Message, Metadata, Severity, Variables};

use crate::corpus;

pub const USERS: &[&str] = &["alice", "bob", "ralph", "dgilmore", "limburgher", ""];
pub const PACKAGES: &[&str] = &["kernel", "nethack", "valgrind", "texlive", "foo"];
pub const GROUPS: &[&str] = &["infra", "qa", "packager"];
pub const APPS: &[&str] = &["bodhi", "buildsys", "wiki", "git", "pkgdb", "compose"];
const TOPICS: &[&str] = &[
    "org.fedoraproject.prod.bodhi.update.comment",
    "org.fedoraproject.stg.bodhi.update.comment",
    "org.fedoraproject.prod.buildsys.build.state.change",
    "org.fedoraproject.prod.bodhi.updates.fedora.sync",
    "org.fedoraproject.prod.wiki.article.edit",
    "a.*.c",
    "a.b",
];
const PATHS: &[&str] = &[
    "comment.karma",
    "update.builds[*].nvr",
    "repo",
    "agent",
    "user.name",
    "release",
    "builds[0]",
    "x.0",
];

fn severity() -> impl Strategy<Value = Severity> {
    select(vec![
        Severity::Debug,
        Severity::Info,
        Severity::Warning,
        Severity::Error,
    ])
}

fn cmp_op() -> impl Strategy<Value = CmpOp> {
    select(vec![
        CmpOp::Eq,
        CmpOp::Ne,
        CmpOp::Lt,
        CmpOp::Le,
        CmpOp::Gt,
        CmpOp::Ge,
    ])
}

fn topic() -> impl Strategy<Value = String> {
    let mut topics: Vec<String> = TOPICS.iter().map(|t| t.to_string()).collect();
    topics.extend(
        corpus::messages()
            .iter()
            .take(40)
            .map(|(m, _)| m.topic.clone()),
    );
    select(topics)
}

/// A glob made from a real topic: some segments become `*`, the tail may become `**`.
fn topic_glob() -> impl Strategy<Value = String> {
    (topic(), any::<u16>(), any::<u8>(), any::<bool>()).prop_map(|(topic, stars, cut, leading)| {
        let segments: Vec<&str> = topic.split('.').collect();
        let cut = usize::from(cut) % (segments.len() + 1);
        let mut glob: Vec<&str> = segments
            .iter()
            .enumerate()
            .map(|(i, s)| {
                if stars & (1 << (i % 16)) != 0 && i % 3 == 2 {
                    "*"
                } else {
                    *s
                }
            })
            .take(cut.max(1))
            .collect();
        if cut < segments.len() {
            glob.push("**");
        }
        if leading && cut % 2 == 0 {
            glob.insert(0, "**");
        }
        glob.join(".")
    })
}

fn names(pool: &'static [&'static str]) -> impl Strategy<Value = String> {
    select(pool).prop_map(str::to_string)
}

fn operand(field: SetField) -> impl Strategy<Value = Operand> {
    let (pool, vars): (&'static [&'static str], Vec<Variable>) = match field {
        SetField::Usernames => (USERS, vec![Variable::Me, Variable::FollowedUsers]),
        SetField::Packages => (
            PACKAGES,
            vec![Variable::MyPackages, Variable::FollowedPackages],
        ),
        SetField::Groups => (GROUPS, vec![Variable::MyGroups]),
    };
    prop_oneof![
        names(pool).prop_map(Operand::Literal),
        select(vars).prop_map(Operand::Var)
    ]
}

fn set_field() -> impl Strategy<Value = SetField> {
    select(vec![
        SetField::Usernames,
        SetField::Packages,
        SetField::Groups,
    ])
}

fn literal() -> impl Strategy<Value = Literal> {
    prop_oneof![
        Just(Literal::Null),
        any::<bool>().prop_map(Literal::Bool),
        (-3i64..4).prop_map(|n| Literal::Number(n.into())),
        Just(Literal::Number(
            serde_json::Number::from_f64(0.5).unwrap_or(0.into())
        )),
        select(vec![
            "updates",
            "updates-testing",
            "kernel-6.1",
            "ralph",
            "30m",
            "é \"q\"\n",
            "40",
            "9",
            "1.10",
            "1.9",
        ])
        .prop_map(|s| Literal::String(s.into())),
    ]
}

/// A literal or a variable, as `==`, `!=` and `in` take.
fn literal_or_var() -> impl Strategy<Value = Literal> {
    prop_oneof![
        4 => literal(),
        1 => select(Variable::ALL.to_vec()).prop_map(|var| Literal::Var { var }),
    ]
}

fn ordered_literal() -> impl Strategy<Value = Literal> {
    literal().prop_filter("orderable", |l| {
        matches!(l, Literal::Number(_) | Literal::String(_))
    })
}

fn body_test() -> impl Strategy<Value = BodyTest> {
    prop_oneof![
        literal_or_var().prop_map(BodyTest::Eq),
        literal_or_var().prop_map(BodyTest::Ne),
        ordered_literal().prop_map(BodyTest::Lt),
        ordered_literal().prop_map(BodyTest::Le),
        ordered_literal().prop_map(BodyTest::Gt),
        ordered_literal().prop_map(BodyTest::Ge),
        prop::collection::vec(literal_or_var(), 1..3).prop_map(BodyTest::In),
        select(vec!["updates", "kernel-", ""]).prop_map(|s| BodyTest::Prefix(s.into())),
        select(vec!["updates*", "**", "*-6.*"])
            .prop_filter_map("glob", |g| Glob::new(g).ok().map(BodyTest::Glob)),
        select(vec!["^updates", "[0-9]+m$", "a|b"])
            .prop_filter_map("regex", |r| Regex::new(r).ok().map(BodyTest::Regex)),
        Just(BodyTest::Exists),
    ]
}

fn leaf() -> impl Strategy<Value = Condition> {
    prop_oneof![
        topic().prop_map(Condition::TopicIs),
        topic_glob().prop_map(Condition::TopicGlob),
        prop::collection::vec(names(APPS), 1..3).prop_map(Condition::AppIn),
        (cmp_op(), severity()).prop_map(|(op, value)| Condition::Severity { op, value }),
        set_field().prop_flat_map(
            |field| operand(field).prop_map(move |value| Condition::Has { field, value })
        ),
        set_field().prop_flat_map(|field| {
            prop::collection::vec(operand(field), 1..3)
                .prop_map(move |values| Condition::HasAny { field, values })
        }),
        set_field().prop_flat_map(|field| {
            prop::collection::vec(operand(field), 1..3)
                .prop_map(move |values| Condition::HasAll { field, values })
        }),
        prop_oneof![
            names(USERS).prop_map(Operand::Literal),
            Just(Operand::Var(Variable::Me))
        ]
        .prop_map(Condition::AgentIs),
        prop_oneof![
            names(USERS).prop_map(Operand::Literal),
            Just(Operand::Var(Variable::Me))
        ]
        .prop_map(Condition::AgentIsNot),
        prop::collection::vec(operand(SetField::Usernames), 1..3).prop_map(Condition::AgentIn),
        (select(PATHS), body_test()).prop_filter_map("path", |(path, test)| {
            BodyPath::parse(path)
                .ok()
                .map(|path| Condition::Body { path, test })
        }),
    ]
}

/// Any valid condition of modest depth.
pub fn condition() -> impl Strategy<Value = Condition> {
    leaf().prop_recursive(4, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 2..4).prop_map(Condition::And),
            prop::collection::vec(inner.clone(), 2..4).prop_map(Condition::Or),
            inner.prop_map(|c| Condition::Not(Box::new(c))),
        ]
    })
}

fn subset(pool: &'static [&'static str]) -> impl Strategy<Value = BTreeSet<String>> {
    prop::collection::btree_set(names(pool), 0..4)
}

/// Variables for one owner.
pub fn variables() -> impl Strategy<Value = Variables> {
    (
        names(USERS),
        subset(GROUPS),
        subset(PACKAGES),
        subset(USERS),
        subset(PACKAGES),
    )
        .prop_map(
            |(me, my_groups, my_packages, followed_users, followed_packages)| Variables {
                me,
                my_groups,
                my_packages,
                followed_users,
                followed_packages,
            },
        )
}

fn synthetic() -> impl Strategy<Value = (Message, Metadata)> {
    let body = prop_oneof![
        Just(json!({"comment": {"karma": 1, "user": {"name": "bob"}}})),
        Just(
            json!({"comment": {"karma": -1}, "update": {"builds": [{"nvr": "kernel-6.1"}, {"nvr": "foo-1"}]}})
        ),
        Just(json!({"repo": "updates", "release": "30m", "agent": "ralph"})),
        Just(json!({"repo": "updates", "release": "9", "agent": "alice", "user": {"name": "bob"}})),
        Just(json!({"release": "40", "comment": {"karma": "1.10"}, "x": ["1.9", 40]})),
        Just(
            json!({"repo": "updates-testing", "release": 30, "builds": ["a", "b"], "x": [null, true]})
        ),
        Just(json!({"user": {"name": "é \"q\"\n"}, "release": 0.5})),
        Just(json!([])),
    ];
    (
        topic(),
        body,
        prop::option::of(names(APPS)),
        prop::option::of(names(USERS)),
        subset(USERS),
        subset(PACKAGES),
        subset(GROUPS),
        severity(),
    )
        .prop_map(
            |(topic, body, app, agent, usernames, packages, groups, severity)| {
                let message = Message::new("m", topic.clone(), body);
                let metadata = Metadata {
                    topic,
                    app,
                    agent,
                    usernames,
                    packages,
                    groups,
                    severity,
                    ..Metadata::default()
                };
                (message, metadata)
            },
        )
}

/// A message with its metadata: synthetic, or from the corpus.
pub fn message() -> impl Strategy<Value = (Message, Metadata)> {
    let corpus = corpus::messages().to_vec();
    if corpus.is_empty() {
        return synthetic().boxed();
    }
    prop_oneof![synthetic(), select(corpus)].boxed()
}
