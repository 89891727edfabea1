//! The parser and the JSON reader never panic, and whatever they accept prints and reads
//! back to the same tree.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tidings_rules::Condition;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(condition) = Condition::parse(text) {
        let printed = condition.to_string();
        let again = Condition::parse(&printed).expect("printed text parses");
        assert_eq!(again, condition, "text round trip of {printed}");
        let json = condition.to_json();
        let from_json = Condition::from_json(&json).expect("printed JSON reads");
        assert_eq!(from_json, condition, "JSON round trip of {json}");
    }
    if let Ok(condition) = Condition::from_json(text) {
        let printed = condition.to_string();
        let again = Condition::parse(&printed).expect("text of valid JSON parses");
        assert_eq!(again, condition, "JSON → text → tree of {printed}");
    }
});
