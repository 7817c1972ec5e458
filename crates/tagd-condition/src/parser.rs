//! The recursive-descent parser from condition text to [`Condition`]. Its
//! recursion is bounded by [`MAX_DEPTH`] levels of parentheses and NOTs, so
//! hostile input (`((((…` a hundred thousand times) is refused, not a stack
//! overflow.

use chrono::NaiveDate;

use crate::ast::{
    CmpOp, Comparison, Condition, CustomerField, Literal, Metric, Predicate, PurchaseFilter, TagRef,
};
use crate::error::{ConditionError, Expected, ParseError};
use crate::lexer::{Lexer, Tok, Token};
use crate::limits::{MAX_DEPTH, MAX_INPUT_BYTES, check_depth};

/// Parses condition text (see the crate documentation for the grammar).
pub fn parse(text: &str) -> Result<Condition, ConditionError> {
    if text.len() > MAX_INPUT_BYTES {
        return Err(ConditionError::TooLarge {
            bytes: text.len(),
            limit: MAX_INPUT_BYTES,
        });
    }
    let mut parser = Parser::new(text)?;
    let condition = parser.or()?;
    if parser.current.tok != Tok::End {
        return Err(parser.unexpected(vec![
            Expected::Token("AND"),
            Expected::Token("OR"),
            Expected::EndOfInput,
        ]));
    }
    check_depth(&condition)?;
    Ok(condition)
}

struct Parser<'a> {
    lexer: Lexer<'a>,
    current: Token,
    /// Parentheses and NOTs currently open.
    depth: usize,
}

impl From<ParseError> for ConditionError {
    fn from(error: ParseError) -> Self {
        ConditionError::Syntax(error)
    }
}

impl<'a> Parser<'a> {
    fn new(text: &'a str) -> Result<Self, ConditionError> {
        let mut lexer = Lexer::new(text);
        let current = lexer.next_token()?;
        Ok(Self {
            lexer,
            current,
            depth: 0,
        })
    }

    fn advance(&mut self) -> Result<Token, ConditionError> {
        let next = self.lexer.next_token()?;
        Ok(std::mem::replace(&mut self.current, next))
    }

    fn unexpected(&self, expected: Vec<Expected>) -> ConditionError {
        ConditionError::Syntax(ParseError {
            line: self.current.line,
            column: self.current.column,
            expected,
            found: self.current.found(),
        })
    }

    fn is_word(&self, word: &str) -> bool {
        matches!(&self.current.tok, Tok::Word(w) if w == word)
    }

    fn expect(&mut self, tok: Tok, shown: &'static str) -> Result<(), ConditionError> {
        if self.current.tok == tok {
            self.advance()?;
            Ok(())
        } else {
            Err(self.unexpected(vec![Expected::Token(shown)]))
        }
    }

    fn expect_word(&mut self, word: &'static str) -> Result<(), ConditionError> {
        if self.is_word(word) {
            self.advance()?;
            Ok(())
        } else {
            Err(self.unexpected(vec![Expected::Token(word)]))
        }
    }

    fn string(&mut self) -> Result<String, ConditionError> {
        if let Tok::Str(value) = &self.current.tok {
            let value = value.clone();
            self.advance()?;
            Ok(value)
        } else {
            Err(self.unexpected(vec![Expected::String]))
        }
    }

    /// `( "…" )`
    fn string_argument(&mut self) -> Result<String, ConditionError> {
        self.expect(Tok::LParen, "(")?;
        let value = self.string()?;
        self.expect(Tok::RParen, ")")?;
        Ok(value)
    }

    fn enter(&mut self) -> Result<(), ConditionError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(ConditionError::TooDeepText {
                line: self.current.line,
                column: self.current.column,
                limit: MAX_DEPTH,
            });
        }
        Ok(())
    }

    fn or(&mut self) -> Result<Condition, ConditionError> {
        let mut items = vec![self.and()?];
        while self.current.tok == Tok::OrOr || self.is_word("or") {
            self.advance()?;
            items.push(self.and()?);
        }
        Ok(if items.len() == 1 {
            items.remove(0)
        } else {
            Condition::Or(items)
        })
    }

    fn and(&mut self) -> Result<Condition, ConditionError> {
        let mut items = vec![self.unary()?];
        while self.current.tok == Tok::AndAnd || self.is_word("and") {
            self.advance()?;
            items.push(self.unary()?);
        }
        Ok(if items.len() == 1 {
            items.remove(0)
        } else {
            Condition::And(items)
        })
    }

    fn unary(&mut self) -> Result<Condition, ConditionError> {
        if self.current.tok == Tok::Bang || self.is_word("not") {
            self.enter()?;
            self.advance()?;
            let inner = self.unary()?;
            self.depth -= 1;
            return Ok(inner.negate());
        }
        if self.current.tok == Tok::LParen {
            self.enter()?;
            self.advance()?;
            let inner = self.or()?;
            if self.current.tok != Tok::RParen {
                return Err(self.unexpected(vec![
                    Expected::Token("AND"),
                    Expected::Token("OR"),
                    Expected::Token(")"),
                ]));
            }
            self.advance()?;
            self.depth -= 1;
            return Ok(inner);
        }
        Ok(Condition::Predicate(self.predicate()?))
    }

    fn predicate(&mut self) -> Result<Predicate, ConditionError> {
        let Tok::Word(word) = &self.current.tok else {
            return Err(self.unexpected(vec![Expected::Predicate]));
        };
        let word = word.clone();
        let predicate = match word.as_str() {
            "has_tag" => {
                self.advance()?;
                Predicate::HasTag(TagRef(self.string_argument()?))
            }
            "tag" => {
                self.advance()?;
                let tag = TagRef(self.string_argument()?);
                Predicate::Tag {
                    tag,
                    test: self.comparison()?,
                }
            }
            "has_attr" => {
                self.advance()?;
                Predicate::HasAttr(self.string_argument()?)
            }
            "attr" => {
                self.advance()?;
                let key = self.string_argument()?;
                Predicate::Attr {
                    key,
                    test: self.comparison()?,
                }
            }
            "age" => {
                self.advance()?;
                Predicate::Age(self.comparison()?)
            }
            "bought_category" => {
                self.advance()?;
                Predicate::BoughtCategory(self.string_argument()?)
            }
            "purchases" => {
                self.advance()?;
                let filter = self.purchase_filter()?;
                Predicate::Purchases {
                    filter,
                    test: self.comparison()?,
                }
            }
            "spent" => {
                self.advance()?;
                let filter = self.purchase_filter()?;
                Predicate::Spent {
                    filter,
                    test: self.comparison()?,
                }
            }
            "in_segment" => {
                self.advance()?;
                Predicate::InSegment(self.string_argument()?)
            }
            other => {
                if let Some(field) = CustomerField::from_keyword(other) {
                    self.advance()?;
                    Predicate::Field {
                        field,
                        test: self.comparison()?,
                    }
                } else if let Some(metric) = Metric::from_keyword(other) {
                    self.advance()?;
                    Predicate::Metric {
                        metric,
                        test: self.comparison()?,
                    }
                } else {
                    return Err(self.unexpected(vec![Expected::Predicate]));
                }
            }
        };
        Ok(predicate)
    }

    /// `( [category = "…"] [, days = N] )`, in either order.
    fn purchase_filter(&mut self) -> Result<PurchaseFilter, ConditionError> {
        self.expect(Tok::LParen, "(")?;
        let mut filter = PurchaseFilter::default();
        if self.current.tok == Tok::RParen {
            self.advance()?;
            return Ok(filter);
        }
        loop {
            if self.is_word("category") && filter.category.is_none() {
                self.advance()?;
                self.expect(Tok::Eq, "=")?;
                filter.category = Some(self.string()?);
            } else if self.is_word("days") && filter.days.is_none() {
                self.advance()?;
                self.expect(Tok::Eq, "=")?;
                filter.days = Some(self.days()?);
            } else {
                return Err(self.unexpected(vec![Expected::PurchaseArgument]));
            }
            match self.current.tok {
                Tok::Comma => {
                    self.advance()?;
                }
                Tok::RParen => {
                    self.advance()?;
                    return Ok(filter);
                }
                _ => return Err(self.unexpected(vec![Expected::Token(","), Expected::Token(")")])),
            }
        }
    }

    fn days(&mut self) -> Result<u32, ConditionError> {
        if let Tok::Num(value) = self.current.tok
            && value.fract() == 0.0
            && (1.0..=f64::from(Metric::MAX_WINDOW_DAYS)).contains(&value)
        {
            self.advance()?;
            #[expect(
                clippy::cast_possible_truncation,
                clippy::cast_sign_loss,
                reason = "checked above to be a whole number in 1..=3660"
            )]
            return Ok(value as u32);
        }
        Err(self.unexpected(vec![Expected::Days]))
    }

    fn comparison(&mut self) -> Result<Comparison, ConditionError> {
        let op = match self.current.tok {
            Tok::Eq => Some(CmpOp::Eq),
            Tok::Ne => Some(CmpOp::Ne),
            Tok::Lt => Some(CmpOp::Lt),
            Tok::Le => Some(CmpOp::Le),
            Tok::Gt => Some(CmpOp::Gt),
            Tok::Ge => Some(CmpOp::Ge),
            _ => None,
        };
        if let Some(op) = op {
            self.advance()?;
            let value = self.literal()?;
            return Ok(Comparison::Compare { op, value });
        }
        if self.is_word("in") {
            self.advance()?;
            self.expect(Tok::LBracket, "[")?;
            let mut values = vec![self.literal()?];
            while self.current.tok == Tok::Comma {
                self.advance()?;
                values.push(self.literal()?);
            }
            self.expect(Tok::RBracket, "]")?;
            return Ok(Comparison::In(values));
        }
        if self.is_word("between") {
            self.advance()?;
            let low = self.literal()?;
            self.expect_word("and")?;
            let high = self.literal()?;
            return Ok(Comparison::Between { low, high });
        }
        if self.is_word("contains") {
            self.advance()?;
            return Ok(Comparison::Contains(self.string()?));
        }
        Err(self.unexpected(vec![Expected::ComparisonOperator]))
    }

    fn literal(&mut self) -> Result<Literal, ConditionError> {
        let literal = match &self.current.tok {
            Tok::Str(value) => Literal::String(value.clone()),
            Tok::Num(value) => Literal::Number(*value),
            Tok::Word(word) if word == "true" => Literal::Bool(true),
            Tok::Word(word) if word == "false" => Literal::Bool(false),
            Tok::Word(word) if word == "date" => {
                self.advance()?;
                self.expect(Tok::LParen, "(")?;
                let date = match &self.current.tok {
                    Tok::Str(text) => parse_date(text),
                    _ => None,
                };
                let Some(date) = date else {
                    return Err(self.unexpected(vec![Expected::Date]));
                };
                self.advance()?;
                self.expect(Tok::RParen, ")")?;
                return Ok(Literal::Date(date));
            }
            _ => return Err(self.unexpected(vec![Expected::Value])),
        };
        self.advance()?;
        Ok(literal)
    }
}

/// Exactly `YYYY-MM-DD`, a day that exists.
pub(crate) fn parse_date(text: &str) -> Option<NaiveDate> {
    let shape_ok = text.len() == 10
        && text.bytes().enumerate().all(|(index, byte)| match index {
            4 | 7 => byte == b'-',
            _ => byte.is_ascii_digit(),
        });
    if !shape_ok {
        return None;
    }
    NaiveDate::parse_from_str(text, "%Y-%m-%d").ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Found;

    fn found(text: &str) -> Found {
        Found::Text(text.to_owned())
    }

    fn syntax(text: &str) -> ParseError {
        match parse(text) {
            Err(ConditionError::Syntax(error)) => error,
            other => panic!("expected a syntax error for {text:?}, got {other:?}"),
        }
    }

    fn tag_eq(tag: &str, value: &str) -> Condition {
        Condition::Predicate(Predicate::Tag {
            tag: TagRef::new(tag),
            test: Comparison::Compare {
                op: CmpOp::Eq,
                value: Literal::String(value.into()),
            },
        })
    }

    #[test]
    fn precedence_not_and_or() {
        let parsed =
            parse(r#"tag("价值等级") = "高价值" OR NOT has_tag("流失风险") and province = "北京""#)
                .unwrap();
        let expected = Condition::Or(vec![
            tag_eq("价值等级", "高价值"),
            Condition::And(vec![
                Condition::Predicate(Predicate::HasTag(TagRef::new("流失风险"))).negate(),
                Condition::Predicate(Predicate::Field {
                    field: CustomerField::Province,
                    test: Comparison::Compare {
                        op: CmpOp::Eq,
                        value: Literal::String("北京".into()),
                    },
                }),
            ]),
        ]);
        assert_eq!(parsed, expected);
        let symbols =
            parse(r#"tag("价值等级") == "高价值" || !has_tag("流失风险") && PROVINCE = "北京""#)
                .unwrap();
        assert_eq!(symbols, expected);
    }

    #[test]
    fn every_predicate_kind_parses() {
        let text = r#"
            has_tag("流失风险") AND tag("年消费额") >= 5000 AND tag("价值等级/高价值") != "x"
            AND gender = "女" AND age between 25 and 35 AND attr("会员等级") = "金卡"
            AND has_attr("会员等级") AND name contains "张" AND channel in ["微信", "天猫"]
            AND orders_90d >= 3 AND recency_days > 180 AND bought_category("母婴")
            AND purchases(category = "母婴", days = 90) >= 2 AND spent(days = 365) > 10000
            AND purchases() > 0 AND spent(days = 30, category = "美妆") <= 1.5e3
            AND in_segment("北京高价值") AND tag("注册日") < date("2026-01-31")
            AND tag("会员") = true AND frequency_trend < -0.5"#;
        let Condition::And(items) = parse(text).unwrap() else {
            panic!("expected an AND");
        };
        assert_eq!(items.len(), 20);
        assert_eq!(
            items[15],
            Condition::Predicate(Predicate::Spent {
                filter: PurchaseFilter {
                    category: Some("美妆".into()),
                    days: Some(30)
                },
                test: Comparison::Compare {
                    op: CmpOp::Le,
                    value: Literal::Number(1500.0)
                }
            })
        );
    }

    #[test]
    fn errors_say_where_and_what() {
        let error = syntax(r#"tag("年消费额") abc"#);
        assert_eq!((error.line, error.column), (1, 13));
        assert_eq!(error.expected, vec![Expected::ComparisonOperator]);
        assert_eq!(error.found, found("abc"));
        assert!(
            error
                .to_string()
                .starts_with("line 1, column 13: expected a comparison operator")
        );
        assert!(error.to_string().ends_with(r#"found "abc""#));

        let error = syntax("has_tag(\"a\") AND\n  (province = \"北京\"");
        assert_eq!((error.line, error.column), (2, 19));
        assert_eq!(error.found, Found::EndOfInput);

        let error = syntax("会员等级 = \"金卡\"");
        assert_eq!(error.expected, vec![Expected::Predicate]);
        assert_eq!(error.found, found("会员等级"));

        let error = syntax(r#"has_tag("a") has_tag("b")"#);
        assert_eq!(error.column, 14);
        assert!(
            error
                .to_string()
                .contains(r#"expected "AND", "OR" or the end of the condition"#)
        );

        assert_eq!(
            syntax(r#"tag("d") = date("2026-02-30")"#).expected,
            vec![Expected::Date]
        );
        assert_eq!(
            syntax("purchases(days = 0) > 1").expected,
            vec![Expected::Days]
        );
        assert_eq!(
            syntax("purchases(days = 1.5) > 1").expected,
            vec![Expected::Days]
        );
        assert_eq!(
            syntax(r#"purchases(category = "a", category = "b") > 1"#).expected,
            vec![Expected::PurchaseArgument]
        );
        assert_eq!(
            syntax("age between 1 or 2").expected,
            vec![Expected::Token("and")]
        );
        assert_eq!(syntax("").expected, vec![Expected::Predicate]);
        assert_eq!(syntax("channel in []").expected, vec![Expected::Value]);
        assert_eq!(syntax("orders_0d > 1").expected, vec![Expected::Predicate]);
    }

    #[test]
    fn limits_are_enforced_without_overflowing() {
        let deep = format!(
            "{}has_tag(\"a\"){}",
            "(".repeat(100_000),
            ")".repeat(100_000)
        );
        assert!(matches!(parse(&deep), Err(ConditionError::TooLarge { .. })));
        let deep = format!("{}has_tag(\"a\"){}", "(".repeat(30_000), ")".repeat(30_000));
        assert!(matches!(
            parse(&deep),
            Err(ConditionError::TooDeepText { limit: 64, .. })
        ));
        let nots = format!("{}has_tag(\"a\")", "NOT ".repeat(10_000));
        assert!(matches!(
            parse(&nots),
            Err(ConditionError::TooDeepText { .. })
        ));
        let fine = format!("{}has_tag(\"a\"){}", "(".repeat(64), ")".repeat(64));
        assert!(parse(&fine).is_ok());
        let nested_ands = (0..70).fold("has_tag(\"a\")".to_owned(), |inner, _| {
            format!("has_tag(\"b\") AND ({inner} OR has_tag(\"c\"))")
        });
        assert!(matches!(
            parse(&nested_ands),
            Err(ConditionError::TooDeepText { .. })
        ));
        let nested_ands = (0..40).fold("has_tag(\"a\")".to_owned(), |inner, _| {
            format!("has_tag(\"b\") AND ({inner} OR has_tag(\"c\"))")
        });
        assert!(matches!(
            parse(&nested_ands),
            Err(ConditionError::TooDeep { .. })
        ));
        let huge = format!("has_tag(\"{}\")", "a".repeat(70_000));
        assert!(matches!(
            parse(&huge),
            Err(ConditionError::TooLarge { bytes: 70_011, .. })
        ));
    }
}
