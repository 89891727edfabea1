//! Matcher throughput: one message against an index of many users' default-like filters,
//! and the same through the naive evaluator; and the time to build that index. `tidings
//! bench match` has the full benchmark.

use criterion::{black_box, criterion_group, criterion_main, BatchSize, Criterion};
use serde_json::json;
use tidings_rules::{Condition, Index, IndexedFilter, Message, Metadata, NaiveIndex, Variables};

const USERS: i64 = 10_000;

fn filters() -> Vec<Condition> {
    [
        "usernames has $me",
        "packages has $my_packages",
        r#"topic ~ "org.fedoraproject.*.buildsys.build.state.change" and packages has $my_packages and body.new == 3"#,
        r#"topic ~ "org.fedoraproject.*.bodhi.update.comment" and usernames has $me and not agent == $me"#,
    ]
    .iter()
    .filter_map(|t| Condition::parse(t).ok())
    .collect()
}

/// Every user's variables and filters, as the store would hand them over.
fn users() -> Vec<(i64, Variables, Vec<IndexedFilter>)> {
    let conditions = filters();
    (0..USERS)
        .map(|user| {
            let mut vars = Variables::for_user(format!("user{user}"));
            for k in 0..10 {
                vars.my_packages
                    .insert(format!("pkg{}", (user * 7 + k * 13) % 20_000));
            }
            let filters = conditions
                .iter()
                .enumerate()
                .map(|(k, condition)| IndexedFilter {
                    id: user * 10 + k as i64,
                    owner: user,
                    condition: condition.clone(),
                })
                .collect();
            (user, vars, filters)
        })
        .collect()
}

fn build(users: Vec<(i64, Variables, Vec<IndexedFilter>)>) -> Index {
    let mut index = Index::default();
    for (user, vars, filters) in users {
        index.set_variables(user, vars);
        for filter in filters {
            index.upsert(filter);
        }
    }
    index
}

fn matching(c: &mut Criterion) {
    let mut naive = NaiveIndex::default();
    for (user, vars, filters) in users() {
        naive.set_variables(user, vars);
        for filter in filters {
            naive.upsert(filter);
        }
    }
    let index = build(users());
    let message = Message::new(
        "m",
        "org.fedoraproject.prod.buildsys.build.state.change",
        json!({"new": 3, "owner": "user42", "name": "pkg301"}),
    );
    let mut metadata = Metadata::derive(&message);
    metadata.packages.insert("pkg301".into());
    c.bench_function("index match 10k users", |b| {
        b.iter(|| index.matches(black_box(&message), black_box(&metadata)))
    });
    let mut group = c.benchmark_group("naive");
    group.sample_size(10);
    group.bench_function("naive match 10k users", |b| {
        b.iter(|| naive.matches(black_box(&message), black_box(&metadata)))
    });
    group.finish();
    let mut group = c.benchmark_group("build");
    group.sample_size(10);
    group.bench_function("index build 10k users", |b| {
        b.iter_batched(users, build, BatchSize::LargeInput)
    });
    group.finish();
}

criterion_group!(benches, matching);
criterion_main!(benches);
