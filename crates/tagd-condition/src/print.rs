//! The canonical text form: `Display` for the tree, such that parsing the
//! printed text gives the same tree back. Logical operators are upper case,
//! everything else lower case; parentheses only where the tree needs them.

use std::fmt::{self, Write as _};

use crate::ast::{Comparison, Condition, Literal, Predicate, PurchaseFilter};

impl fmt::Display for Condition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Condition::And(items) => join(f, items, " AND ", |item| {
                matches!(item, Condition::And(_) | Condition::Or(_))
            }),
            // AND binds tighter than OR, so only a nested OR needs parentheses.
            Condition::Or(items) => join(f, items, " OR ", |item| matches!(item, Condition::Or(_))),
            Condition::Not(inner) => match **inner {
                Condition::And(_) | Condition::Or(_) => write!(f, "NOT ({inner})"),
                _ => write!(f, "NOT {inner}"),
            },
            Condition::Predicate(predicate) => write!(f, "{predicate}"),
        }
    }
}

fn join(
    f: &mut fmt::Formatter<'_>,
    items: &[Condition],
    separator: &str,
    needs_parentheses: impl Fn(&Condition) -> bool,
) -> fmt::Result {
    for (index, item) in items.iter().enumerate() {
        if index > 0 {
            f.write_str(separator)?;
        }
        if needs_parentheses(item) {
            write!(f, "({item})")?;
        } else {
            write!(f, "{item}")?;
        }
    }
    Ok(())
}

impl fmt::Display for Predicate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Predicate::HasTag(tag) => write!(f, "has_tag({})", Quoted(tag.as_str())),
            Predicate::Tag { tag, test } => write!(f, "tag({}) {test}", Quoted(tag.as_str())),
            Predicate::Field { field, test } => write!(f, "{} {test}", field.keyword()),
            Predicate::Age(test) => write!(f, "age {test}"),
            Predicate::HasAttr(key) => write!(f, "has_attr({})", Quoted(key)),
            Predicate::Attr { key, test } => write!(f, "attr({}) {test}", Quoted(key)),
            Predicate::Metric { metric, test } => write!(f, "{metric} {test}"),
            Predicate::BoughtCategory(category) => {
                write!(f, "bought_category({})", Quoted(category))
            }
            Predicate::Purchases { filter, test } => write!(f, "purchases({filter}) {test}"),
            Predicate::Spent { filter, test } => write!(f, "spent({filter}) {test}"),
            Predicate::InSegment(name) => write!(f, "in_segment({})", Quoted(name)),
        }
    }
}

impl fmt::Display for PurchaseFilter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(category) = &self.category {
            write!(f, "category = {}", Quoted(category))?;
            if self.days.is_some() {
                f.write_str(", ")?;
            }
        }
        if let Some(days) = self.days {
            write!(f, "days = {days}")?;
        }
        Ok(())
    }
}

impl fmt::Display for Comparison {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Comparison::Compare { op, value } => write!(f, "{} {value}", op.as_str()),
            Comparison::In(values) => {
                f.write_str("in [")?;
                for (index, value) in values.iter().enumerate() {
                    if index > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{value}")?;
                }
                f.write_str("]")
            }
            Comparison::Between { low, high } => write!(f, "between {low} and {high}"),
            Comparison::Contains(text) => write!(f, "contains {}", Quoted(text)),
        }
    }
}

impl fmt::Display for Literal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Literal::String(text) => write!(f, "{}", Quoted(text)),
            // Rust prints the shortest decimal that parses back to the same f64.
            Literal::Number(number) => write!(f, "{number}"),
            Literal::Date(date) => write!(f, "date(\"{}\")", date.format("%Y-%m-%d")),
            Literal::Bool(value) => write!(f, "{value}"),
        }
    }
}

/// A string literal with the escapes the lexer reads back.
struct Quoted<'a>(&'a str);

impl fmt::Display for Quoted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_char('"')?;
        for c in self.0.chars() {
            match c {
                '"' => f.write_str("\\\"")?,
                '\\' => f.write_str("\\\\")?,
                '\n' => f.write_str("\\n")?,
                '\r' => f.write_str("\\r")?,
                '\t' => f.write_str("\\t")?,
                c if c.is_control() => write!(f, "\\u{{{:x}}}", u32::from(c))?,
                c => f.write_char(c)?,
            }
        }
        f.write_char('"')
    }
}

#[cfg(test)]
mod tests {
    use crate::parse;

    #[test]
    fn canonical_form() {
        let cases = [
            (
                r#"tag("价值等级")=="高价值"&&!has_tag("流失风险")||(age BETWEEN 25 AND 35)"#,
                r#"tag("价值等级") = "高价值" AND NOT has_tag("流失风险") OR age between 25 and 35"#,
            ),
            (
                r#"(has_tag("a") OR has_tag("b")) AND NOT (has_tag("c") AND has_tag("d"))"#,
                r#"(has_tag("a") OR has_tag("b")) AND NOT (has_tag("c") AND has_tag("d"))"#,
            ),
            (
                r#"spent(days=30,category="母婴")>1e4 and attr("k\u{1}") contains "\"q\"\n""#,
                r#"spent(category = "母婴", days = 30) > 10000 AND attr("k\u{1}") contains "\"q\"\n""#,
            ),
            (
                r#"tag("d") in [date("2026-01-31"), -0.5, true, "x"]"#,
                r#"tag("d") in [date("2026-01-31"), -0.5, true, "x"]"#,
            ),
        ];
        for (input, expected) in cases {
            let parsed = parse(input).unwrap();
            assert_eq!(parsed.to_string(), expected);
            assert_eq!(parse(expected).unwrap(), parsed);
        }
    }
}
