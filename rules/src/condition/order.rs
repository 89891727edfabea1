//! How a body field orders against a literal in `<`, `<=`, `>`, `>=`: numbers as numbers,
//! versions as versions, other text as text, whether the field holds a JSON number or a
//! string and whether the literal was quoted. The rule, in the order it is applied:
//!
//! 1. **Numbers.** When both sides are numeric — a JSON number, or a string that is an
//!    integer (`-?[0-9]+`, leading zeros allowed) — they compare by value:
//!    `"9" < "40"`, `"40" == 40`, `2.5 < "3"`.
//! 2. **Versions.** Otherwise, when both sides are versions — a string that starts with a
//!    digit and holds only ASCII letters, digits and `.` `_` `+` `-` `~` `^`, or a
//!    JSON number that is not negative (read as it is written: `1.5` is `"1.5"`) — they
//!    compare as RPM compares versions (`rpmvercmp`): runs of digits by value, runs of
//!    letters by code point, a digit run newer than a letter run, other characters only
//!    separate, `~` older than anything (even the end: `1.0~rc1 < 1.0`), `^` newer than
//!    the end but older than anything else. So `"1.10" > "1.9"`, `"6.10.0-1.fc40" >
//!    "6.9.12-200.fc40"`.
//! 3. A number or a version literal compares with nothing else: `body.release >= 40`
//!    does not match `"rawhide"`.
//! 4. **Text.** A string literal that is neither compares with a string field by code
//!    point (`"b" > "abc"`).
//! 5. Anything else (a boolean, `null`, an object, an array, a string against a number
//!    that reads as neither) does not match, as a missing field does not.

use std::cmp::Ordering;

use serde_json::{Number, Value};

use super::Literal;

/// How `value` orders against `literal` under the rule above; `None` when they do not
/// compare (the test is then false).
pub fn order(value: &Value, literal: &Literal) -> Option<Ordering> {
    let lit_num = match literal {
        Literal::Number(n) => Some(n.clone()),
        Literal::String(s) => integer(s),
        _ => None,
    };
    let val_num = match value {
        Value::Number(n) => Some(n.clone()),
        Value::String(s) => integer(s),
        _ => None,
    };
    if let (Some(a), Some(b)) = (&val_num, &lit_num) {
        return number_order(a, b);
    }
    let lit_version = match literal {
        Literal::Number(n) => number_version(n),
        Literal::String(s) if is_version(s) => Some(s.clone()),
        _ => None,
    };
    let val_version = match value {
        Value::Number(n) => number_version(n),
        Value::String(s) if is_version(s) => Some(s.clone()),
        _ => None,
    };
    match (val_version, lit_version, value, literal) {
        (Some(a), Some(b), _, _) => Some(rpm_version_cmp(&a, &b)),
        (_, Some(_), _, _) => None,
        (_, None, Value::String(a), Literal::String(b)) if lit_num.is_none() => {
            Some(a.as_str().cmp(b.as_str()))
        }
        _ => None,
    }
}

/// The string as a number when it is an integer: an optional `-`, then digits.
pub(super) fn integer(s: &str) -> Option<Number> {
    let (sign, digits) = match s.strip_prefix('-') {
        Some(rest) => ("-", rest),
        None => ("", s),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let digits = digits.trim_start_matches('0');
    let digits = if digits.is_empty() { "0" } else { digits };
    // Integers too large for 64 bits read as floats, as serde_json reads them in a body.
    format!("{sign}{digits}").parse().ok()
}

/// A JSON number read as a version: as written, when not negative.
fn number_version(n: &Number) -> Option<String> {
    let text = n.to_string();
    is_version(&text).then_some(text)
}

/// Whether the string reads as a version: a digit first, then only ASCII letters, digits
/// and `.` `_` `+` `-` `~` `^`.
pub(super) fn is_version(s: &str) -> bool {
    s.as_bytes().first().is_some_and(u8::is_ascii_digit)
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._+-~^".contains(&b))
}

/// Integers compare exactly (ids beyond 2^53 stay distinct); anything else as f64.
pub(super) fn number_order(a: &Number, b: &Number) -> Option<Ordering> {
    if let (Some(x), Some(y)) = (a.as_i64(), b.as_i64()) {
        return Some(x.cmp(&y));
    }
    if let (Some(x), Some(y)) = (a.as_u64(), b.as_u64()) {
        return Some(x.cmp(&y));
    }
    a.as_f64()?.partial_cmp(&b.as_f64()?)
}

/// RPM's version comparison (`rpmvercmp` in rpm's `rpmio/rpmvercmp.c`), for any strings.
pub fn rpm_version_cmp(a: &str, b: &str) -> Ordering {
    if a == b {
        return Ordering::Equal;
    }
    let separator = |c: &u8| !c.is_ascii_alphanumeric() && *c != b'~' && *c != b'^';
    let (mut one, mut two) = (a.as_bytes(), b.as_bytes());
    loop {
        while one.first().is_some_and(separator) {
            one = &one[1..];
        }
        while two.first().is_some_and(separator) {
            two = &two[1..];
        }
        // `~` sorts before everything, the end included.
        if one.first() == Some(&b'~') || two.first() == Some(&b'~') {
            if one.first() != Some(&b'~') {
                return Ordering::Greater;
            }
            if two.first() != Some(&b'~') {
                return Ordering::Less;
            }
            one = &one[1..];
            two = &two[1..];
            continue;
        }
        // `^` sorts after the end, before everything else.
        if one.first() == Some(&b'^') || two.first() == Some(&b'^') {
            if one.is_empty() {
                return Ordering::Less;
            }
            if two.is_empty() {
                return Ordering::Greater;
            }
            if one.first() != Some(&b'^') {
                return Ordering::Greater;
            }
            if two.first() != Some(&b'^') {
                return Ordering::Less;
            }
            one = &one[1..];
            two = &two[1..];
            continue;
        }
        let (Some(first), false) = (one.first(), two.is_empty()) else {
            break;
        };
        let numeric = first.is_ascii_digit();
        let class = |c: &u8| {
            if numeric {
                c.is_ascii_digit()
            } else {
                c.is_ascii_alphabetic()
            }
        };
        let len_one = one.iter().take_while(|c| class(c)).count();
        let len_two = two.iter().take_while(|c| class(c)).count();
        let (seg_one, seg_two) = (&one[..len_one], &two[..len_two]);
        one = &one[len_one..];
        two = &two[len_two..];
        if seg_two.is_empty() {
            // Segments of different kinds: a number is newer than letters.
            return if numeric {
                Ordering::Greater
            } else {
                Ordering::Less
            };
        }
        let ordering = if numeric {
            let strip = |s: &[u8]| -> usize { s.iter().take_while(|c| **c == b'0').count() };
            let (x, y) = (&seg_one[strip(seg_one)..], &seg_two[strip(seg_two)..]);
            x.len().cmp(&y.len()).then_with(|| x.cmp(y))
        } else {
            seg_one.cmp(seg_two)
        };
        if ordering != Ordering::Equal {
            return ordering;
        }
    }
    match (one.is_empty(), two.is_empty()) {
        (true, true) => Ordering::Equal,
        (true, false) => Ordering::Less,
        _ => Ordering::Greater,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use Ordering::{Equal, Greater, Less};

    #[test]
    fn rpm_versions_order_as_rpm_orders_them() {
        // Cases from rpm's own test suite (tests/rpmvercmp.at).
        let cases = [
            ("1.0", "1.0", Equal),
            ("1.0", "2.0", Less),
            ("2.0.1", "2.0", Greater),
            ("2.0.1a", "2.0.1", Greater),
            ("5.5p1", "5.5p2", Less),
            ("5.5p10", "5.5p1", Greater),
            ("10xyz", "10.1xyz", Less),
            ("xyz10", "xyz10.1", Less),
            ("xyz.4", "8", Less),
            ("1b.fc17", "1.fc17", Less),
            ("1.0a", "1.0", Greater),
            ("1.0a", "1.0aa", Less),
            ("2.0", "2_0", Equal),
            ("2.0", "2.0.", Equal),
            ("1.0~rc1", "1.0", Less),
            ("1.0~rc1", "1.0~rc2", Less),
            ("1.0~rc1~git123", "1.0~rc1", Less),
            ("1.0^", "1.0", Greater),
            ("1.0^git1", "1.0^git2", Less),
            ("1.0^git1", "1.01", Less),
            ("1.0^git1~pre", "1.0^git1", Less),
            ("1.0~rc1", "1.0^git1", Less),
            ("1.10", "1.9", Greater),
            ("010", "10", Equal),
            ("6.10.0-1.fc40", "6.9.12-200.fc40", Greater),
        ];
        for (a, b, want) in cases {
            assert_eq!(rpm_version_cmp(a, b), want, "{a} vs {b}");
            assert_eq!(rpm_version_cmp(b, a), want.reverse(), "{b} vs {a}");
        }
    }

    #[test]
    fn numbers_versions_and_text_each_compare_as_such() {
        let s = |s: &str| Literal::String(s.into());
        let n = |n: i64| Literal::Number(n.into());
        // Numbers, quoted or not, on either side.
        assert_eq!(order(&json!("9"), &s("40")), Some(Less));
        assert_eq!(order(&json!(9), &s("40")), Some(Less));
        assert_eq!(order(&json!("9"), &n(40)), Some(Less));
        assert_eq!(order(&json!("40"), &n(40)), Some(Equal));
        assert_eq!(order(&json!("-3"), &n(-20)), Some(Greater));
        assert_eq!(order(&json!(2.5), &s("3")), Some(Less));
        // Versions.
        assert_eq!(order(&json!("1.10"), &s("1.9")), Some(Greater));
        assert_eq!(order(&json!(1.5), &s("1.10")), Some(Less));
        assert_eq!(order(&json!("40.1"), &n(40)), Some(Greater));
        // A number or version literal compares with nothing else.
        assert_eq!(order(&json!("rawhide"), &s("40")), None);
        assert_eq!(order(&json!("rawhide"), &n(40)), None);
        assert_eq!(order(&json!(true), &n(1)), None);
        assert_eq!(order(&json!(null), &s("1")), None);
        // Text.
        assert_eq!(order(&json!("b"), &s("abc")), Some(Greater));
        assert_eq!(order(&json!("40"), &s("abc")), Some(Less));
        assert_eq!(order(&json!(40), &s("abc")), None);
        assert_eq!(order(&json!(["1"]), &s("abc")), None);
    }
}
