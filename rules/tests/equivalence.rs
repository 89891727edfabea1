//! The index against the naive evaluator: for random filters, variables and messages, and
//! after random sequences of changes, both return exactly the same filter ids.

use proptest::prelude::*;
use tidings_rules::{Condition, Index, IndexedFilter, Message, Metadata, NaiveIndex, Variables};

use crate::corpus;
use crate::strategies::{condition, message, variables};

#[derive(Debug, Clone)]
enum Op {
    Upsert {
        id: i64,
        owner: i64,
        condition: Condition,
    },
    Remove(i64),
    SetVariables(i64, Variables),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0i64..24, 0i64..5, condition()).prop_map(|(id, owner, condition)| Op::Upsert { id, owner, condition }),
        1 => (0i64..24).prop_map(Op::Remove),
        2 => (0i64..5, variables()).prop_map(|(owner, vars)| Op::SetVariables(owner, vars)),
    ]
}

fn apply(op: &Op, index: &mut Index, naive: &mut NaiveIndex) {
    match op {
        Op::Upsert {
            id,
            owner,
            condition,
        } => {
            let filter = IndexedFilter {
                id: *id,
                owner: *owner,
                condition: condition.clone(),
            };
            index.upsert(filter.clone());
            naive.upsert(filter);
        }
        Op::Remove(id) => {
            index.remove(*id);
            naive.remove(*id);
        }
        Op::SetVariables(owner, vars) => {
            index.set_variables(*owner, vars.clone());
            naive.set_variables(*owner, vars.clone());
        }
    }
}

fn agree(
    index: &Index,
    naive: &NaiveIndex,
    messages: &[(Message, Metadata)],
) -> Result<(), TestCaseError> {
    prop_assert_eq!(index.len(), naive.len());
    for (message, metadata) in messages {
        prop_assert_eq!(
            index.matches(message, metadata),
            naive.matches(message, metadata),
            "topic {} metadata {:?}",
            &message.topic,
            metadata
        );
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn index_agrees_with_naive_after_any_changes(
        ops in prop::collection::vec(op(), 1..40),
        messages in prop::collection::vec(message(), 1..12),
    ) {
        let (mut index, mut naive) = (Index::default(), NaiveIndex::default());
        for (i, op) in ops.iter().enumerate() {
            apply(op, &mut index, &mut naive);
            // Check along the way too, so a stale posting left by one step shows up there.
            if i % 8 == 7 {
                agree(&index, &naive, &messages)?;
            }
        }
        agree(&index, &naive, &messages)?;
    }

    #[test]
    fn index_agrees_with_naive_on_the_whole_corpus(
        ops in prop::collection::vec(op(), 1..30),
    ) {
        let (mut index, mut naive) = (Index::default(), NaiveIndex::default());
        for op in &ops {
            apply(op, &mut index, &mut naive);
        }
        agree(&index, &naive, corpus::messages())?;
    }
}

/// Re-anchoring: a `$my_packages` filter must follow its owner's packages (issue 4).
#[test]
fn set_variables_refiles_only_that_owner() {
    let mut index = Index::default();
    let condition = Condition::parse("packages has $my_packages").expect("valid");
    index.upsert(IndexedFilter {
        id: 1,
        owner: 10,
        condition: condition.clone(),
    });
    index.upsert(IndexedFilter {
        id: 2,
        owner: 20,
        condition,
    });
    let message = Message::new(
        "m",
        "org.fedoraproject.prod.bodhi.update.comment",
        serde_json::json!({}),
    );
    let mut metadata = Metadata::derive(&message);
    metadata.packages.insert("kernel".into());
    assert!(index.matches(&message, &metadata).is_empty());
    let mut vars = Variables::for_user("alice");
    vars.my_packages.insert("kernel".into());
    index.set_variables(10, vars);
    assert_eq!(index.matches(&message, &metadata), vec![1]);
    index.set_variables(10, Variables::for_user("alice"));
    assert!(index.matches(&message, &metadata).is_empty());
    assert!(!index.is_scan(1));
    index.upsert(IndexedFilter {
        id: 3,
        owner: 20,
        condition: Condition::parse("severity >= info").expect("valid"),
    });
    assert!(index.is_scan(3));
    assert_eq!(index.scan_len(), 1);
    assert_eq!(index.matches(&message, &metadata), vec![3]);
    index.remove(3);
    assert_eq!(index.scan_len(), 0);
}
