//! Warnings about conditions that are valid but probably not what their author meant:
//! an app no catalog entry knows (`app == "koji"`: the app is `buildsys`), a set variable
//! that is empty for its owner (`packages has $my_packages` with no packages: it matches
//! nothing), and a body field compared with a quoted number (`body.release >= "40"`
//! compares strings, so "9" is greater). They are shown before a filter is saved; saving
//! anyway is allowed.

use std::collections::{BTreeMap, BTreeSet};

use super::{BodyTest, Condition, Literal, Operand, Variable, Variables};

/// The applications a hub knows (the first topic segment of its catalog's entries), and
/// other names people use for them (a catalog file about one app, `koji.toml`, names it:
/// `koji` → `buildsys`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AppNames {
    /// Known app names.
    pub apps: BTreeSet<String>,
    /// Another name → the app's name.
    pub aliases: BTreeMap<String, String>,
}

impl AppNames {
    /// The known app closest to `name`: its alias, or one within two edits.
    pub fn suggest(&self, name: &str) -> Option<&str> {
        if let Some(app) = self.aliases.get(name) {
            return Some(app);
        }
        self.apps
            .iter()
            .map(|app| (strsim::levenshtein(name, app), app))
            .filter(|(distance, _)| *distance <= 2)
            .min()
            .map(|(_, app)| app.as_str())
    }
}

impl Condition {
    /// What looks wrong in this condition, in words for its owner; empty when nothing
    /// does. `apps` are the hub's known apps (no app warnings when it is empty);
    /// `variables` the owner's, when known.
    pub fn warnings(&self, apps: &AppNames, variables: Option<&Variables>) -> Vec<String> {
        let mut found = Vec::new();
        self.lint(apps, variables, &mut found);
        let mut seen = BTreeSet::new();
        found.retain(|w| seen.insert(w.clone()));
        found
    }

    fn lint(&self, apps: &AppNames, variables: Option<&Variables>, found: &mut Vec<String>) {
        let empty = |variable: Variable, found: &mut Vec<String>| {
            let Some(values) = variables.and_then(|v| v.set(variable)) else {
                return;
            };
            if values.is_empty() {
                found.push(format!(
                    "${} is empty for you, so this part matches nothing yet{}",
                    variable.name(),
                    match variable {
                        Variable::MyPackages | Variable::MyGroups =>
                            " (it comes from the ownership data your admin imports; see My packages)",
                        _ => " (follow someone or a package on My packages)",
                    }
                ));
            }
        };
        match self {
            Condition::And(parts) | Condition::Or(parts) => {
                for part in parts {
                    part.lint(apps, variables, found);
                }
            }
            Condition::Not(part) => part.lint(apps, variables, found),
            Condition::AppIn(names) if !apps.apps.is_empty() => {
                for name in names.iter().filter(|n| !apps.apps.contains(*n)) {
                    found.push(match apps.suggest(name) {
                        Some(app) => format!(
                            "no message comes from an app called \"{name}\": did you mean \"{app}\"?"
                        ),
                        None => format!(
                            "no message comes from an app called \"{name}\" (known apps: {})",
                            apps.apps.iter().cloned().collect::<Vec<_>>().join(", ")
                        ),
                    });
                }
            }
            Condition::Has { value, .. }
            | Condition::AgentIs(value)
            | Condition::AgentIsNot(value) => {
                if let Operand::Var(v) = value {
                    empty(*v, found);
                }
            }
            Condition::HasAny { values, .. }
            | Condition::HasAll { values, .. }
            | Condition::AgentIn(values) => {
                for value in values {
                    if let Operand::Var(v) = value {
                        empty(*v, found);
                    }
                }
            }
            Condition::Body {
                path,
                test:
                    BodyTest::Lt(Literal::String(s))
                    | BodyTest::Le(Literal::String(s))
                    | BodyTest::Gt(Literal::String(s))
                    | BodyTest::Ge(Literal::String(s)),
            } if s.trim().parse::<f64>().is_ok() => {
                found.push(format!(
                    "body.{path} is compared with the string \"{s}\", so it compares as text \
                     (\"9\" comes after \"40\"); write {s} without quotes to compare numbers"
                ));
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn apps() -> AppNames {
        AppNames {
            apps: ["bodhi", "buildsys", "pagure"].map(String::from).into(),
            aliases: [("koji".to_string(), "buildsys".to_string())].into(),
        }
    }

    fn warnings(text: &str, variables: Option<&Variables>) -> Vec<String> {
        Condition::parse(text)
            .unwrap_or_else(|e| panic!("{e}"))
            .warnings(&apps(), variables)
    }

    #[test]
    fn an_unknown_app_gets_the_name_it_probably_meant() {
        assert_eq!(
            warnings(r#"app == "koji""#, None),
            ["no message comes from an app called \"koji\": did you mean \"buildsys\"?"]
        );
        assert_eq!(
            warnings(r#"app in ["bodi", "bodhi"]"#, None),
            ["no message comes from an app called \"bodi\": did you mean \"bodhi\"?"]
        );
        let far = warnings(r#"not app == "zzzzzzzz""#, None);
        assert!(
            far[0].contains("known apps: bodhi, buildsys, pagure"),
            "{far:?}"
        );
        assert!(warnings(r#"app == "bodhi""#, None).is_empty());
        // A hub whose catalog knows no app says nothing about apps.
        let none = Condition::parse(r#"app == "koji""#)
            .unwrap_or_else(|e| panic!("{e}"))
            .warnings(&AppNames::default(), None);
        assert!(none.is_empty());
    }

    #[test]
    fn the_shipped_catalog_knows_koji_is_buildsys() {
        let names = crate::Catalog::shipped().app_names();
        for app in ["bodhi", "buildsys", "pagure"] {
            assert!(names.apps.contains(app), "{names:?}");
        }
        assert_eq!(names.suggest("koji"), Some("buildsys"), "{names:?}");
        // A file about many apps names none of them.
        assert!(!names.aliases.contains_key("apps"), "{names:?}");
    }

    #[test]
    fn empty_variables_and_quoted_numbers_are_pointed_out() {
        let mut mine = Variables::for_user("alice");
        let text = "packages has $my_packages or usernames has $me or agent in [$followed_users]";
        let found = warnings(text, Some(&mine));
        assert_eq!(found.len(), 2, "{found:?}");
        assert!(
            found[0].starts_with("$my_packages is empty for you"),
            "{found:?}"
        );
        assert!(
            found[1].starts_with("$followed_users is empty for you"),
            "{found:?}"
        );
        mine.my_packages.insert("kernel".into());
        mine.followed_users.insert("ralph".into());
        assert!(warnings(text, Some(&mine)).is_empty());
        assert!(warnings(text, None).is_empty(), "unknown owner: no guess");

        let found = warnings(r#"body.release >= "40""#, None);
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(
            found[0].starts_with("body.release is compared"),
            "{found:?}"
        );
        assert!(found[0].contains("write 40 without quotes"), "{found:?}");
        assert!(warnings(r#"body.release >= 40"#, None).is_empty());
        assert!(warnings(r#"body.name >= "abc""#, None).is_empty());
    }
}
