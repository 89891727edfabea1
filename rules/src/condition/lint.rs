//! Warnings about conditions that are valid but probably not what their author meant:
//! an app no catalog entry knows (`app == "koji"`: the app is `buildsys`), a set variable
//! that is empty for its owner (`packages has $my_packages` with no packages: it matches
//! nothing), and a body field ordered against text with digits in it that is neither a
//! number nor a version (`body.release >= "f40"` compares text, so "f9" is greater).
//! They are shown before a filter is saved; saving anyway is allowed.

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
    /// Each app's topic patterns in the catalog, without the `<prefix>.<env>.` they are
    /// published under (`bodhi.update.comment`, `buildsys.build.state.change`, `bodhi.**`).
    pub topics: BTreeMap<String, BTreeSet<String>>,
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
        found.extend(self.unknown_topics(apps).into_iter().map(|(_, w)| w));
        let mut seen = BTreeSet::new();
        found.retain(|w| seen.insert(w.clone()));
        found
    }

    /// The topics and topic globs in this condition that no catalog entry's topic can
    /// have (under any `<prefix>.<env>.`), each with its warning; empty when the catalog
    /// lists no topics. A hub may still carry them: the web side also asks the archive.
    pub fn unknown_topics(&self, apps: &AppNames) -> Vec<(String, String)> {
        let mut found = Vec::new();
        self.topics(&mut |topic| {
            if apps.topics.is_empty() || known_topic(topic, apps) {
                return;
            }
            found.push((
                topic.to_string(),
                format!(
                    "no catalog entry has a topic like \"{topic}\", so this part may match nothing \
                     (topics look like org.fedoraproject.prod.bodhi.update.comment)"
                ),
            ));
        });
        found
    }

    fn topics<'a>(&'a self, visit: &mut impl FnMut(&'a str)) {
        match self {
            Condition::And(parts) | Condition::Or(parts) => {
                parts.iter().for_each(|p| p.topics(visit));
            }
            Condition::Not(part) => part.topics(visit),
            Condition::TopicIs(t) | Condition::TopicGlob(t) => visit(t),
            _ => {}
        }
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
            } if s.bytes().any(|b| b.is_ascii_digit())
                && !super::order::is_version(s)
                && super::order::integer(s).is_none() =>
            {
                found.push(format!(
                    "body.{path} is compared with \"{s}\", which is neither a number nor a version \
                     (those start with a digit), so it compares as text: \"f9\" comes after \"f40\""
                ));
            }
            Condition::Body { test, .. } => {
                let lits = match test {
                    BodyTest::Eq(lit) | BodyTest::Ne(lit) => std::slice::from_ref(lit),
                    BodyTest::In(lits) => lits.as_slice(),
                    _ => &[],
                };
                for lit in lits {
                    if let Literal::Var { var } = lit {
                        empty(*var, found);
                    }
                }
            }
            _ => {}
        }
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Seg<'a> {
    Lit(&'a str),
    One,
    Any,
}

fn segments(glob: &str) -> Vec<Seg<'_>> {
    glob.split('.')
        .map(|s| match s {
            "*" => Seg::One,
            "**" => Seg::Any,
            lit => Seg::Lit(lit),
        })
        .collect()
}

/// Whether some topic matches both the condition's topic (or glob) and a catalog pattern
/// under a prefix of at least two segments (`org.fedoraproject.prod.`).
fn known_topic(topic: &str, apps: &AppNames) -> bool {
    let wanted = segments(topic);
    apps.topics.values().flatten().any(|pattern| {
        let mut catalog = vec![Seg::One, Seg::One, Seg::Any];
        catalog.extend(segments(pattern));
        let mut memo = vec![None; (wanted.len() + 1) * (catalog.len() + 1)];
        intersect(&wanted, &catalog, 0, 0, &mut memo)
    })
}

/// Whether two segment globs (`*` one segment, `**` any number) match a common topic.
fn intersect(a: &[Seg<'_>], b: &[Seg<'_>], i: usize, j: usize, memo: &mut [Option<bool>]) -> bool {
    let at = i * (b.len() + 1) + j;
    if let Some(known) = memo[at] {
        return known;
    }
    let result = match (a.get(i), b.get(j)) {
        (None, None) => true,
        (Some(Seg::Any), _) => {
            intersect(a, b, i + 1, j, memo) || (j < b.len() && intersect(a, b, i, j + 1, memo))
        }
        (_, Some(Seg::Any)) => {
            intersect(a, b, i, j + 1, memo) || (i < a.len() && intersect(a, b, i + 1, j, memo))
        }
        (None, _) | (_, None) => false,
        (Some(x), Some(y)) => {
            let fits = match (x, y) {
                (Seg::Lit(x), Seg::Lit(y)) => x == y,
                _ => true,
            };
            fits && intersect(a, b, i + 1, j + 1, memo)
        }
    };
    memo[at] = Some(result);
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    fn apps() -> AppNames {
        AppNames {
            apps: ["bodhi", "buildsys", "pagure"].map(String::from).into(),
            aliases: [("koji".to_string(), "buildsys".to_string())].into(),
            topics: [
                (
                    "bodhi".to_string(),
                    ["bodhi.update.comment", "bodhi.update.request.*"]
                        .map(String::from)
                        .into(),
                ),
                (
                    "buildsys".to_string(),
                    ["buildsys.build.state.change"].map(String::from).into(),
                ),
            ]
            .into(),
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
    fn topics_no_catalog_entry_has_are_pointed_out() {
        for known in [
            r#"topic == "org.fedoraproject.prod.bodhi.update.comment""#,
            r#"topic ~ "org.fedoraproject.*.bodhi.update.**""#,
            r#"topic ~ "org.fedoraproject.*.bodhi.update.request.testing""#,
            r#"topic ~ "**.buildsys.build.state.change""#,
            r#"topic ~ "**""#,
        ] {
            assert!(warnings(known, None).is_empty(), "{known}");
        }
        let found = warnings(r#"topic ~ "org.fedoraproject.*.bodhi.updte.comment""#, None);
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(
            found[0].starts_with("no catalog entry has a topic like"),
            "{found:?}"
        );
        let found = Condition::parse(r#"not topic == "org.fedoraproject.prod.koji.x""#)
            .unwrap_or_else(|e| panic!("{e}"))
            .unknown_topics(&apps());
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].0, "org.fedoraproject.prod.koji.x");
        // No topics in the catalog: nothing said.
        assert!(Condition::parse(r#"topic == "a.b""#)
            .unwrap_or_else(|e| panic!("{e}"))
            .unknown_topics(&AppNames::default())
            .is_empty());
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
    fn empty_variables_are_pointed_out_and_quoted_numbers_no_longer() {
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

        // A quoted number compares as a number now: nothing to warn about.
        assert!(warnings(r#"body.release >= "40""#, None).is_empty());
        assert!(warnings(r#"body.release >= 40"#, None).is_empty());
        assert!(warnings(r#"body.name >= "abc""#, None).is_empty());
        assert!(warnings(r#"body.version < "1.10""#, None).is_empty());
        let found = warnings(r#"body.release >= "f40""#, None);
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(found[0].contains("compares as text"), "{found:?}");
        // A variable in a body test is checked like anywhere else.
        let found = warnings("body.owner in $followed_users", Some(&mine));
        assert!(found.is_empty(), "{found:?}");
        let found = warnings(
            "body.owner in [$followed_packages]",
            Some(&Variables::for_user("bob")),
        );
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(
            found[0].starts_with("$followed_packages is empty for you"),
            "{found:?}"
        );
    }
}
