//! Summary and URL templates: text with `{expression}` placeholders, e.g.
//! `"{agent} commented on {update.title}"`. `{{` and `}}` stand for literal braces.
//!
//! A placeholder that yields several values is joined with `, `. A placeholder that yields
//! nothing makes the whole template fail, so a catalog entry can list templates from the
//! most to the least detailed and the first one whose fields are all present is used; a
//! `| default('…')` filter makes a placeholder optional.

use super::expr::{Expr, Scope};
use super::syntax::Cursor;

/// A parsed template.
#[derive(Debug, Clone, PartialEq)]
pub struct Template {
    parts: Vec<Part>,
    /// A first guess at the rendered length: the fixed text plus a little per placeholder.
    capacity: usize,
}

#[derive(Debug, Clone, PartialEq)]
enum Part {
    Text(String),
    Field(Expr),
}

impl Template {
    /// Parses a template; errors name the character where parsing stopped.
    pub fn parse(text: &str) -> Result<Template, String> {
        let mut cursor = Cursor::new(text);
        let mut parts = Vec::new();
        let mut literal = String::new();
        while !cursor.at_end() {
            if cursor.eat("{{") {
                literal.push('{');
            } else if cursor.eat("}}") {
                literal.push('}');
            } else if cursor.peek_str("}") {
                return Err(cursor.error("unmatched `}` (write `}}` for a literal brace)"));
            } else if cursor.eat("{") {
                if !literal.is_empty() {
                    parts.push(Part::Text(std::mem::take(&mut literal)));
                }
                let expr = Expr::parse_at(&mut cursor)?;
                cursor.skip_ws();
                if !cursor.eat("}") {
                    return Err(cursor.error("expected `}` to close the placeholder"));
                }
                parts.push(Part::Field(expr));
            } else {
                let rest = cursor.rest();
                let len = rest.find(['{', '}']).unwrap_or(rest.len());
                literal.push_str(&rest[..len]);
                cursor.advance(len);
            }
        }
        if !literal.is_empty() {
            parts.push(Part::Text(literal));
        }
        let capacity = parts
            .iter()
            .map(|p| match p {
                Part::Text(text) => text.len(),
                Part::Field(_) => 16,
            })
            .sum();
        Ok(Template { parts, capacity })
    }

    /// Whether the template has no placeholders (its text is fixed).
    pub fn fixed_text(&self) -> Option<&str> {
        match self.parts.as_slice() {
            [] => Some(""),
            [Part::Text(text)] => Some(text),
            _ => None,
        }
    }

    /// The text for a message, or `None` when a placeholder has no value.
    pub fn render(&self, scope: &Scope<'_>) -> Option<String> {
        let mut out = String::with_capacity(self.capacity);
        for part in &self.parts {
            match part {
                Part::Text(text) => out.push_str(text),
                Part::Field(expr) => {
                    let values = expr.eval(scope);
                    let (first, rest) = values.split_first()?;
                    out.push_str(first);
                    for value in rest {
                        out.push_str(", ");
                        out.push_str(value);
                    }
                }
            }
        }
        Some(out)
    }
}

/// The first template of a list that renders.
pub fn render_first(templates: &[Template], scope: &Scope<'_>) -> Option<String> {
    templates.iter().find_map(|t| t.render(scope))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Message;
    use serde_json::json;

    #[test]
    fn renders_and_fails_on_missing_fields() {
        let m = Message::new(
            "1",
            "org.fedoraproject.prod.bodhi.update.comment",
            json!({"agent": "kalev", "karma": 0, "builds": ["a-1-1", "b-1-1"]}),
        );
        let scope = Scope::new(&m);
        let t = Template::parse("{agent} commented (karma: {karma}) on {{{builds | nvr}}}")
            .expect("parses");
        assert_eq!(
            t.render(&scope).as_deref(),
            Some("kalev commented (karma: 0) on {a, b}")
        );
        let list = [
            Template::parse("{missing} x").expect("parses"),
            Template::parse("{missing | default('someone')} x").expect("parses"),
        ];
        assert_eq!(render_first(&list, &scope).as_deref(), Some("someone x"));
        assert_eq!(
            Template::parse("plain").expect("parses").fixed_text(),
            Some("plain")
        );
    }

    #[test]
    fn errors() {
        let err = Template::parse("a {b").expect_err("open");
        assert_eq!(err, "expected `}` to close the placeholder at character 5");
        let err = Template::parse("a } b").expect_err("close");
        assert!(err.starts_with("unmatched `}`"), "{err}");
        let err = Template::parse("{a | bogus}").expect_err("filter");
        assert!(err.contains("unknown filter `bogus`"), "{err}");
    }
}
