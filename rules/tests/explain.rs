//! Explanations agree with matching, and point at the predicates they name.

use proptest::prelude::*;

use crate::strategies::{condition, message, variables};

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn explanations_agree_with_matching(c in condition(), (m, meta) in message(), vars in variables()) {
        let e = c.explain(&m, &meta, &vars);
        prop_assert_eq!(e.matched, c.matches(&m, &meta, &vars));
        prop_assert_eq!(&e.text, &c.to_string());
        prop_assert!(!e.reasons.is_empty());
        let mut last = 0;
        for r in &e.reasons {
            prop_assert_eq!(&e.text[r.span.clone()], r.predicate.as_str());
            prop_assert!(r.span.start >= last, "in order: {:?}", e);
            last = r.span.end;
            let leaf = tidings_rules::Condition::parse(&r.predicate)
                .map_err(|err| TestCaseError::fail(format!("{}: {err}", r.predicate)))?;
            prop_assert_eq!(r.held, leaf.matches(&m, &meta, &vars));
        }
    }
}
