//! The ownership import formats, JSON and CSV, and the name rules every ownership write
//! checks. A bad record is refused naming its line (CSV) or record (JSON) and the field, and
//! nothing of the file is imported.

use std::collections::{BTreeMap, BTreeSet};

use crate::{Result, StoreError};

/// Who owns packages and who is in which group: an import, or one part of one.
///
/// JSON form (`tidings ownership import owners.json`, `PUT /api/v1/ownership`):
///
/// ```json
/// {
///   "groups":   { "python-sig": ["alice", "bob"] },
///   "packages": { "python-requests": { "users": ["alice"], "groups": ["python-sig"] } }
/// }
/// ```
///
/// CSV form: a header line `record,name,member_kind,member`, then one membership a line:
///
/// ```text
/// record,name,member_kind,member
/// package,python-requests,user,alice
/// package,python-requests,group,python-sig
/// group,python-sig,user,alice
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OwnershipData {
    /// Group name → its members (bus usernames).
    pub groups: BTreeMap<String, BTreeSet<String>>,
    /// Package name → its owners.
    pub packages: BTreeMap<String, PackageOwners>,
}

/// The owners of one package.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PackageOwners {
    /// Owning users (bus usernames).
    pub users: BTreeSet<String>,
    /// Owning groups; their members own the package too.
    pub groups: BTreeSet<String>,
}

/// The header a CSV import starts with.
pub const CSV_HEADER: &str = "record,name,member_kind,member";

impl OwnershipData {
    /// Reads the JSON form; every name is checked.
    pub fn from_json(text: &str) -> Result<OwnershipData> {
        let data: OwnershipData = serde_json::from_str(text).map_err(|e| StoreError::Invalid {
            field: "json",
            reason: format!("line {} column {}: {e}", e.line(), e.column()),
        })?;
        data.validate()?;
        Ok(data)
    }

    /// Reads the CSV form (see the type's documentation). Blank lines and lines starting
    /// with `#` are skipped. A package or group may be listed with both member columns
    /// empty: it then has no owners (members), which matters to a merge.
    pub fn from_csv(text: &str) -> Result<OwnershipData> {
        let mut data = OwnershipData::default();
        let mut header_seen = false;
        for (at, line) in text.lines().enumerate() {
            let number = at + 1;
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let fields: Vec<&str> = line
                .split(',')
                .map(|f| {
                    let f = f.trim();
                    f.strip_prefix('"')
                        .and_then(|f| f.strip_suffix('"'))
                        .unwrap_or(f)
                })
                .collect();
            let bad = |field: &'static str, reason: String| StoreError::Invalid {
                field,
                reason: format!("line {number}: {reason}"),
            };
            if !header_seen {
                if fields.join(",") != CSV_HEADER {
                    return Err(bad(
                        "header",
                        format!("expected the header {CSV_HEADER:?}, found {line:?}"),
                    ));
                }
                header_seen = true;
                continue;
            }
            let [record, name, member_kind, member] = fields[..] else {
                return Err(bad(
                    "record",
                    format!("expected 4 fields ({CSV_HEADER}), found {}", fields.len()),
                ));
            };
            match record {
                "package" => {
                    check(Kind::Package, name).map_err(|r| bad("name", r))?;
                    let owners = data.packages.entry(name.to_string()).or_default();
                    match (member_kind, member) {
                        ("", "") => {}
                        ("user", user) => {
                            check(Kind::User, user).map_err(|r| bad("member", r))?;
                            owners.users.insert(user.to_string());
                        }
                        ("group", group) => {
                            check(Kind::Group, group).map_err(|r| bad("member", r))?;
                            owners.groups.insert(group.to_string());
                        }
                        (other, _) => {
                            return Err(bad(
                                "member_kind",
                                format!("expected user or group, found {other:?}"),
                            ))
                        }
                    }
                }
                "group" => {
                    check(Kind::Group, name).map_err(|r| bad("name", r))?;
                    let members = data.groups.entry(name.to_string()).or_default();
                    match (member_kind, member) {
                        ("", "") => {}
                        ("user", user) => {
                            check(Kind::User, user).map_err(|r| bad("member", r))?;
                            members.insert(user.to_string());
                        }
                        (other, _) => {
                            return Err(bad(
                                "member_kind",
                                format!("a group's members are users, found {other:?}"),
                            ))
                        }
                    }
                }
                other => {
                    return Err(bad(
                        "record",
                        format!("expected package or group, found {other:?}"),
                    ))
                }
            }
        }
        if !header_seen {
            return Err(StoreError::Invalid {
                field: "header",
                reason: format!("the file is empty; it starts with the header {CSV_HEADER:?}"),
            });
        }
        Ok(data)
    }

    /// Checks every name, naming the record and field of the first bad one.
    pub fn validate(&self) -> Result<()> {
        let bad = |field: &'static str, record: String, reason: String| StoreError::Invalid {
            field,
            reason: format!("{record}: {reason}"),
        };
        for (group, members) in &self.groups {
            let record = format!("group {group:?}");
            check(Kind::Group, group).map_err(|r| bad("groups", record.clone(), r))?;
            for member in members {
                check(Kind::User, member).map_err(|r| bad("members", record.clone(), r))?;
            }
        }
        for (package, owners) in &self.packages {
            let record = format!("package {package:?}");
            check(Kind::Package, package).map_err(|r| bad("packages", record.clone(), r))?;
            for user in &owners.users {
                check(Kind::User, user).map_err(|r| bad("users", record.clone(), r))?;
            }
            for group in &owners.groups {
                check(Kind::Group, group).map_err(|r| bad("groups", record.clone(), r))?;
            }
        }
        Ok(())
    }
}

/// What a name names, for its rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    User,
    Group,
    Package,
}

/// Why `name` is not a valid name of its kind, if it is not. Usernames and group names
/// follow the account rules (they are what `$me` and `$my_groups` match); package names
/// keep their case and may hold `+` or `.` (`gtk+`, `PyYAML`), but no spaces, control
/// characters, commas or quotes.
pub(crate) fn check(kind: Kind, name: &str) -> std::result::Result<(), String> {
    let ok = match kind {
        Kind::User | Kind::Group => {
            !name.is_empty()
                && name.len() <= 64
                && name
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "-_.".contains(c))
        }
        Kind::Package => {
            !name.is_empty()
                && name.chars().count() <= 200
                && !name
                    .chars()
                    .any(|c| c.is_whitespace() || c.is_control() || ",\"'".contains(c))
        }
    };
    if ok {
        return Ok(());
    }
    Err(match kind {
        Kind::User => format!(
            "{name:?} is not a username: use 1 to 64 lower-case letters, digits, '-', '_' or '.'"
        ),
        Kind::Group => format!(
            "{name:?} is not a group name: use 1 to 64 lower-case letters, digits, '-', '_' or '.'"
        ),
        Kind::Package => format!(
            "{name:?} is not a package name: use 1 to 200 characters without spaces, commas or quotes"
        ),
    })
}

/// `check` as a store error naming `field`.
pub(crate) fn checked(kind: Kind, field: &'static str, name: &str) -> Result<()> {
    check(kind, name).map_err(|reason| StoreError::Invalid { field, reason })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn csv_and_json_read_the_same_data() {
        let csv = "# owners\nrecord,name,member_kind,member\n\
                   package,python-requests,user,alice\n\
                   package, python-requests ,group,python-sig\n\
                   package,gtk+,,\n\
                   group,python-sig,user,bob\n";
        let json = r#"{"groups": {"python-sig": ["bob"]},
            "packages": {"python-requests": {"users": ["alice"], "groups": ["python-sig"]},
                         "gtk+": {}}}"#;
        let from_csv = OwnershipData::from_csv(csv).unwrap();
        assert_eq!(from_csv, OwnershipData::from_json(json).unwrap());
        assert_eq!(from_csv.packages.len(), 2);
    }

    #[test]
    fn csv_errors_name_line_and_field() {
        let err = OwnershipData::from_csv(
            "record,name,member_kind,member\npackage,a,user,alice\npackage,b,user,Alice\n",
        )
        .unwrap_err()
        .to_string();
        assert!(err.starts_with("member: line 3: \"Alice\""), "{err}");
        let err = OwnershipData::from_csv("record,name,member_kind,member\nfoo,a,user,x\n")
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("record: line 2"), "{err}");
        let err = OwnershipData::from_csv("record,name,member_kind,member\ngroup,g,group,x\n")
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("member_kind: line 2"), "{err}");
        let err = OwnershipData::from_csv("package,a,user,alice\n")
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("header: line 1"), "{err}");
        let err = OwnershipData::from_csv("record,name,member_kind,member\npackage,a,user\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("line 2") && err.contains("4 fields"), "{err}");
    }

    #[test]
    fn json_errors_name_record_and_field() {
        let err = OwnershipData::from_json(r#"{"packages": {"p": {"users": ["ok", "Bad One"]}}}"#)
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("users: package \"p\": \"Bad One\""),
            "{err}"
        );
        let err = OwnershipData::from_json(r#"{"packages": {"p": {"owners": []}}}"#)
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("json: line 1") && err.contains("owners"),
            "{err}"
        );
    }

    #[test]
    fn package_names_keep_case_and_plus() {
        for ok in ["PyYAML", "gtk+", "libsigc++20", "python3.12", "perl-Moose"] {
            assert!(check(Kind::Package, ok).is_ok(), "{ok}");
        }
        for bad in ["", "a b", "a,b", "a\"b", "tab\there"] {
            assert!(check(Kind::Package, bad).is_err(), "{bad:?}");
        }
    }
}
