//! Parser throughput: the text form of typical filters, and the JSON form the store keeps.

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use tidings_rules::Condition;

const TEXT: &str = r#"topic ~ "org.fedoraproject.*.bodhi.update.**" and (usernames has $me or packages has any [$my_packages, "kernel"]) and not agent == $me and body.update.builds[*].nvr prefix "kernel-" and severity >= info"#;

fn parse(c: &mut Criterion) {
    c.bench_function("parse text", |b| {
        b.iter(|| Condition::parse(black_box(TEXT)))
    });
    let json = Condition::parse(TEXT)
        .map(|c| c.to_json())
        .unwrap_or_default();
    c.bench_function("parse json", |b| {
        b.iter(|| Condition::from_json(black_box(&json)))
    });
    if let Ok(condition) = Condition::parse(TEXT) {
        c.bench_function("print text", |b| {
            b.iter(|| black_box(&condition).to_string())
        });
    }
}

criterion_group!(benches, parse);
criterion_main!(benches);
