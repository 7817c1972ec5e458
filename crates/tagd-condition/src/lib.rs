//! The condition language shared by tag rules and segments: a text form, a
//! typed tree that maps one-to-one onto a structured (proto) message,
//! validation against a catalogue into a bound form, and a reference
//! evaluator. No I/O.
//!
//! # Text form
//!
//! ```text
//! condition  := or
//! or         := and { ("OR" | "||") and }
//! and        := unary { ("AND" | "&&") unary }
//! unary      := ("NOT" | "!") unary | "(" condition ")" | predicate
//! predicate  := "has_tag" "(" STRING ")"
//!             | "tag" "(" STRING ")" test          -- "name" or "category/name"
//!             | "has_attr" "(" STRING ")"
//!             | "attr" "(" STRING ")" test
//!             | FIELD test                         -- name gender province city district company channel
//!             | "age" test
//!             | METRIC test                        -- orders_<N>d spent_<N>d recency_days avg_order_value
//!                                                  -- last_interaction_days frequency_trend
//!             | "bought_category" "(" STRING ")"
//!             | ("purchases" | "spent") "(" [arg {"," arg}] ")" test
//!             | "in_segment" "(" STRING ")"
//! arg        := "category" "=" STRING | "days" "=" INTEGER      -- each at most once, any order
//! test       := ("=" | "==" | "!=" | "<>" | "<" | "<=" | ">" | ">=") value
//!             | "in" "[" value {"," value} "]"
//!             | "between" value "and" value                     -- both ends included
//!             | "contains" STRING
//! value      := STRING | NUMBER | "true" | "false" | "date" "(" STRING ")"   -- date("2026-01-31")
//! ```
//!
//! - NOT binds tighter than AND, AND tighter than OR. Keywords and names
//!   (`and`, `tag`, `province`, `orders_90d`…) are case-insensitive; `&&`,
//!   `||` and `!` are accepted as synonyms and printed as `AND`, `OR`, `NOT`.
//! - Strings are double-quoted with the escapes `\"` `\\` `\/` `\n` `\r`
//!   `\t` `\u{hex}`; any other character stands for itself. Numbers are
//!   decimal (`-12`, `0.5`, `1.5e3`) and finite.
//! - Limits: [`MAX_INPUT_BYTES`] of text, [`MAX_DEPTH`] levels of nesting
//!   (in the tree, and of parentheses and NOTs in the text), segment
//!   references [`MAX_SEGMENT_DEPTH`] deep.
//! - `Display` prints the canonical form; `parse(&c.to_string()) == Ok(c)`
//!   for every tree the parser can produce.
//!
//! # Meaning
//!
//! - Text compares by [`tagd_core::text::key`] (NFKC, case-folded): `=`,
//!   `!=`, `in`, and `contains` (substring) for free text. Numbers and dates
//!   also take `<`, `<=`, `>`, `>=`, `between`.
//! - A value test only matches a customer who has the value: `!=` means "has
//!   it, with another value"; use `NOT` to include customers without it.
//!   Gender always has a value (`unspecified` by default).
//! - Tags by value type: flag → `has_tag` only; enum and bool → `=`, `!=`,
//!   `in` (enum values must be in the tag's list); text → also `contains`;
//!   number and date → every comparison. A number tag accepts a number or a
//!   string holding one; a date tag `date("…")` or a `"YYYY-MM-DD"` string.
//! - `age` compares whole years (0–200) from the birthday on the evaluation day.
//! - Metrics are precomputed per customer; `purchases(…)` counts purchase
//!   events and `spent(…)` sums their amounts, optionally in one category and
//!   on or after `today - days`; `bought_category("…")` is any purchase in
//!   the category, ever.
//! - `in_segment("…")` is the named segment's condition; cycles are refused.
//!
//! # Use
//!
//! [`parse`] text (or build a [`Condition`] from the structured form), then
//! [`bind`] it against a [`Catalogue`] ([`validate`] for `ValidateCondition`,
//! [`bind_segment`] when saving a segment) and run the [`BoundCondition`]
//! with [`evaluate`] or the segment index. Every [`ConditionError`] is
//! `INVALID_ARGUMENT`.

mod ast;
mod bind;
mod bound;
mod catalogue;
mod error;
mod eval;
mod facts;
mod lexer;
mod limits;
mod parser;
mod path;
mod print;

pub use ast::{
    CmpOp, Comparison, Condition, CustomerField, Literal, Metric, Predicate, PurchaseFilter, TagRef,
};
pub use bind::{MAX_AGE, bind, bind_segment, parse_gender, validate};
pub use bound::{
    BoundCondition, BoundPredicate, BoundPurchaseFilter, NumberTest, TextTest, day_number,
};
pub use catalogue::{Catalogue, MemoryCatalogue, SegmentInfo, TagInfo, TagLookup, resolve_tag};
pub use error::{ConditionError, Expected, Found, ParseError};
pub use eval::{evaluate, field_value};
pub use facts::{CustomerFacts, Purchase, age_on, latest_birthday_for_age};
pub use limits::{MAX_DEPTH, MAX_INPUT_BYTES, MAX_SEGMENT_DEPTH, check_depth};
pub use parser::parse;
pub use path::{NodePath, Step};
