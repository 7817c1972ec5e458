//! The crate's one error type: why a condition was refused. Every variant is
//! the caller's fault (gRPC `INVALID_ARGUMENT`), and names where it is: a
//! line and column for text, a node path for the tree.

use std::fmt;

use crate::path::NodePath;

/// Why a condition was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ConditionError {
    /// The text does not follow the grammar.
    #[error("{0}")]
    Syntax(ParseError),
    /// The text is longer than [`crate::MAX_INPUT_BYTES`].
    #[error("the condition is {bytes} bytes long; the limit is {limit} bytes")]
    TooLarge { bytes: usize, limit: usize },
    /// Parentheses and NOTs nest deeper than [`crate::MAX_DEPTH`] in the text.
    #[error("line {line}, column {column}: the condition nests deeper than {limit} levels")]
    TooDeepText {
        line: usize,
        column: usize,
        limit: usize,
    },
    /// A tree (from the structured form) nests deeper than [`crate::MAX_DEPTH`].
    #[error("{path}: the condition nests {depth} levels deep; the limit is {limit}")]
    TooDeep {
        path: NodePath,
        depth: usize,
        limit: usize,
    },
    /// No tag answers to the reference.
    #[error("{path}: unknown tag {reference:?}")]
    UnknownTag { path: NodePath, reference: String },
    /// A bare tag name exists in several categories.
    #[error(
        "{path}: tag {reference:?} exists in several categories ({}); write \"category/name\"",
        categories.join(", ")
    )]
    AmbiguousTag {
        path: NodePath,
        reference: String,
        categories: Vec<String>,
    },
    #[error("{path}: unknown attribute {key:?}")]
    UnknownAttribute { path: NodePath, key: String },
    #[error("{path}: unknown segment {name:?}")]
    UnknownSegment { path: NodePath, name: String },
    /// The metric (e.g. a window nobody computes) is not available.
    #[error("{path}: metric {metric} is not available")]
    UnknownMetric { path: NodePath, metric: String },
    /// Segments reference each other in a loop; `cycle` lists the names
    /// from the first to the one that closes the loop.
    #[error("{path}: segments reference each other in a cycle: {}", cycle.join(" → "))]
    SegmentCycle { path: NodePath, cycle: Vec<String> },
    /// Segments reference each other deeper than [`crate::MAX_SEGMENT_DEPTH`].
    #[error("{path}: segment references nest deeper than {limit} levels")]
    SegmentsTooDeep { path: NodePath, limit: usize },
    /// A comparison does not fit the thing compared (wrong operator, wrong
    /// kind of value, value outside an enum list…). `subject` names it,
    /// e.g. `tag "年消费额"` or `age`.
    #[error("{path}: {subject}: {reason}")]
    Mismatch {
        path: NodePath,
        subject: String,
        reason: String,
    },
    /// A node that is malformed by itself (an AND without operands…).
    #[error("{path}: {reason}")]
    Malformed { path: NodePath, reason: String },
}

impl ConditionError {
    /// The path of the offending node, when the error is about a tree node.
    pub fn path(&self) -> Option<&NodePath> {
        match self {
            ConditionError::Syntax(_)
            | ConditionError::TooLarge { .. }
            | ConditionError::TooDeepText { .. } => None,
            ConditionError::TooDeep { path, .. }
            | ConditionError::UnknownTag { path, .. }
            | ConditionError::AmbiguousTag { path, .. }
            | ConditionError::UnknownAttribute { path, .. }
            | ConditionError::UnknownSegment { path, .. }
            | ConditionError::UnknownMetric { path, .. }
            | ConditionError::SegmentCycle { path, .. }
            | ConditionError::SegmentsTooDeep { path, .. }
            | ConditionError::Mismatch { path, .. }
            | ConditionError::Malformed { path, .. } => Some(path),
        }
    }
}

/// Where the text stops following the grammar: 1-based line and column
/// (columns count characters), what would have been accepted there, and
/// what was found instead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    pub line: usize,
    pub column: usize,
    pub expected: Vec<Expected>,
    /// The offending text as written, or `end of input`.
    pub found: Found,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}, column {}: expected ", self.line, self.column)?;
        for (index, expected) in self.expected.iter().enumerate() {
            if index > 0 {
                let last = index + 1 == self.expected.len();
                f.write_str(if last { " or " } else { ", " })?;
            }
            write!(f, "{expected}")?;
        }
        write!(f, ", found {}", self.found)
    }
}

/// What was found where something else was expected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Found {
    Text(String),
    EndOfInput,
}

impl fmt::Display for Found {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Found::Text(text) => write!(f, "{text:?}"),
            Found::EndOfInput => f.write_str("end of input"),
        }
    }
}

/// One thing the parser would have accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expected {
    /// A punctuation mark or keyword, e.g. `)` or `and`.
    Token(&'static str),
    /// A predicate: `tag(…)`, `has_tag(…)`, a field, a metric, `(`, `NOT`…
    Predicate,
    ComparisonOperator,
    /// A literal: string, number, `date("…")`, `true`/`false`.
    Value,
    String,
    /// A whole number of days from 1 to 3660.
    Days,
    /// A `YYYY-MM-DD` date that exists.
    Date,
    /// A finite number.
    Number,
    /// `category = …` or `days = …`.
    PurchaseArgument,
    /// A string escape: `\"`, `\\`, `\/`, `\n`, `\r`, `\t` or `\u{…}`.
    Escape,
    /// The closing `"` of a string.
    StringEnd,
    EndOfInput,
}

impl fmt::Display for Expected {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Expected::Token(token) => write!(f, "\"{token}\""),
            Expected::Predicate => f.write_str(
                "a predicate (tag(…), has_tag(…), attr(…), a customer field, age, a metric, \
                 bought_category(…), purchases(…), spent(…), in_segment(…), NOT or \"(\")",
            ),
            Expected::ComparisonOperator => {
                f.write_str("a comparison operator (=, !=, <, <=, >, >=, in, between, contains)")
            }
            Expected::Value => {
                f.write_str("a value (a \"string\", a number, date(\"YYYY-MM-DD\"), true or false)")
            }
            Expected::String => f.write_str("a \"string\""),
            Expected::Days => f.write_str("a whole number of days from 1 to 3660"),
            Expected::Date => f.write_str("a date \"YYYY-MM-DD\""),
            Expected::Number => f.write_str("a finite number"),
            Expected::PurchaseArgument => f.write_str("category = \"…\" or days = N"),
            Expected::Escape => f.write_str("an escape (\\\", \\\\, \\/, \\n, \\r, \\t, \\u{…})"),
            Expected::StringEnd => f.write_str("the closing '\"' of the string"),
            Expected::EndOfInput => f.write_str("the end of the condition"),
        }
    }
}
