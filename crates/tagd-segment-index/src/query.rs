//! Answering a bound condition from the bitmaps: counts, member bitmaps and
//! pages of member ids.
//!
//! An AND intersects the operands that are plain stored bitmaps first
//! (smallest first, borrowed, not copied), then computes the others
//! (ranges, ORs, NOTs) only within the customers still in the running, and
//! when counting performs its last step with `intersection_len` /
//! `difference_len` so the final set is never built. NOT is `alive - x`.

use std::borrow::Cow;

use chrono::{Months, NaiveDate};
use roaring::{MultiOps, RoaringBitmap};
use tagd_condition::{
    BoundCondition, BoundPredicate, CmpOp, CustomerField, NumberTest, TextTest,
    latest_birthday_for_age,
};

use crate::bsi::Bsi;
use crate::error::IndexError;
use crate::index::{INDEXED_FIELDS, SegmentIndex, TagValues};

type Set<'a> = Cow<'a, RoaringBitmap>;

/// One page of members, in dense-number order (the order customers were
/// first indexed; a rebuild indexes them in id order).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MembersPage {
    pub ids: Vec<String>,
    /// Pass as `after` for the next page; `None` on the last page.
    pub next: Option<u32>,
}

impl SegmentIndex {
    /// Whether every predicate of `condition` (and of the segments it
    /// references) can be answered here; the first that cannot is named.
    pub fn supports(&self, condition: &BoundCondition) -> Result<(), IndexError> {
        let mut refusal = None;
        condition.visit(&mut |predicate| {
            if refusal.is_none() {
                refusal = self.unsupported(predicate);
            }
        });
        refusal.map_or(Ok(()), |predicate| {
            Err(IndexError::Unsupported { predicate })
        })
    }

    fn unsupported(&self, predicate: &BoundPredicate) -> Option<String> {
        match predicate {
            BoundPredicate::Field { field, .. } if !INDEXED_FIELDS.contains(field) => {
                Some(format!("{} (not indexed)", field.keyword()))
            }
            BoundPredicate::Purchases { .. } => Some("purchases(…) (raw purchase events)".into()),
            BoundPredicate::Spent { .. } => Some("spent(…) (raw purchase events)".into()),
            BoundPredicate::Metric { metric, .. } if !self.metrics.contains_key(metric) => {
                Some(format!("{metric} (not loaded)"))
            }
            BoundPredicate::BoughtCategory { .. } if !self.purchases_loaded => {
                Some("bought_category(…) (purchase categories not loaded)".into())
            }
            BoundPredicate::TagText { tag, .. } => self.tag_kind_mismatch(tag, false),
            BoundPredicate::TagNumber { tag, .. } | BoundPredicate::TagDate { tag, .. } => {
                self.tag_kind_mismatch(tag, true)
            }
            _ => None,
        }
    }

    fn tag_kind_mismatch(&self, tag: &str, numeric: bool) -> Option<String> {
        let postings = self.tags.get(tag)?;
        let fits = match postings.values {
            TagValues::Flag(_) => false,
            TagValues::Text(_) => !numeric,
            TagValues::Number(_) => numeric,
        };
        (!fits).then(|| {
            format!(
                "tag {tag} compared as {} (indexed as {})",
                if numeric { "a number" } else { "text" },
                postings.value_type.as_str()
            )
        })
    }

    /// How many live customers match `condition` on `today` (for `age`).
    pub fn count(&self, condition: &BoundCondition, today: NaiveDate) -> Result<u64, IndexError> {
        self.supports(condition)?;
        Eval { index: self, today }.count(condition)
    }

    /// The dense numbers of the matching customers.
    pub fn members(
        &self,
        condition: &BoundCondition,
        today: NaiveDate,
    ) -> Result<RoaringBitmap, IndexError> {
        self.supports(condition)?;
        Ok(Eval { index: self, today }
            .set(condition, None)?
            .into_owned())
    }

    /// Up to `limit` member ids after the cursor `after` (a dense number
    /// from [`MembersPage::next`]; `None` for the first page).
    pub fn members_page(
        &self,
        condition: &BoundCondition,
        today: NaiveDate,
        after: Option<u32>,
        limit: usize,
    ) -> Result<MembersPage, IndexError> {
        let members = self.members(condition, today)?;
        let start = after.map_or(0, |after| u64::from(after) + 1);
        let Ok(start) = u32::try_from(start) else {
            return Ok(MembersPage {
                ids: Vec::new(),
                next: None,
            });
        };
        let mut numbers = members.range(start..);
        let mut ids = Vec::with_capacity(limit.min(10_000));
        let mut last = None;
        for number in numbers.by_ref().take(limit) {
            if let Some(id) = self.customer_id(number) {
                ids.push(id);
            }
            last = Some(number);
        }
        let next = if numbers.next().is_some() { last } else { None };
        Ok(MembersPage { ids, next })
    }

    /// Calls `f` with each member's customer id, in dense-number order,
    /// without allocating a string per id (for streaming a response).
    pub fn for_each_id(&self, members: &RoaringBitmap, mut f: impl FnMut(&str)) {
        for number in members {
            self.ids.with_id(number, &mut f);
        }
    }

    /// The customer ids of a members bitmap, in dense-number order.
    pub fn ids_of<'s>(&'s self, members: &'s RoaringBitmap) -> impl Iterator<Item = String> + 's {
        members.iter().filter_map(|number| self.customer_id(number))
    }
}

struct Eval<'a> {
    index: &'a SegmentIndex,
    today: NaiveDate,
}

enum Step<'a> {
    Keep(&'a RoaringBitmap),
    Compute(&'a BoundCondition),
    Drop(&'a BoundCondition),
}

enum Outcome<'a> {
    Set(Set<'a>),
    Count(u64),
}

impl<'a> Eval<'a> {
    fn alive(&self) -> &'a RoaringBitmap {
        &self.index.ids.alive
    }

    fn count(&self, condition: &'a BoundCondition) -> Result<u64, IndexError> {
        Ok(match condition {
            BoundCondition::And(items) => match self.and(items, None, true)? {
                Outcome::Count(count) => count,
                Outcome::Set(set) => set.len(),
            },
            BoundCondition::Or(items) if items.len() == 2 => {
                let (left, right) = (self.set(&items[0], None)?, self.set(&items[1], None)?);
                left.union_len(&right)
            }
            BoundCondition::Not(inner) => self.alive().len() - self.count(inner)?,
            other => self.set(other, None)?.len(),
        })
    }

    /// The members of `condition`, possibly with extra customers outside
    /// `filter`: callers only use the result within `filter`. Always within
    /// `alive`.
    fn set(
        &self,
        condition: &'a BoundCondition,
        filter: Option<&RoaringBitmap>,
    ) -> Result<Set<'a>, IndexError> {
        Ok(match condition {
            BoundCondition::And(items) => match self.and(items, filter, false)? {
                Outcome::Set(set) => set,
                Outcome::Count(_) => Cow::Borrowed(&self.index.empty),
            },
            BoundCondition::Or(items) => {
                let mut parts = items
                    .iter()
                    .map(|item| self.set(item, filter))
                    .collect::<Result<Vec<_>, _>>()?;
                // Within a small filter, union the small intersections instead.
                if let Some(filter) = filter {
                    for part in &mut parts {
                        if filter.len() * 4 < part.len() {
                            *part = Cow::Owned(part.as_ref() & filter);
                        }
                    }
                }
                Cow::Owned(parts.iter().map(AsRef::as_ref).union())
            }
            BoundCondition::Not(inner) => {
                let within = filter.unwrap_or(self.alive());
                Cow::Owned(within - self.set(inner, Some(within))?.as_ref())
            }
            BoundCondition::Predicate(predicate) => self.predicate(predicate, filter)?,
        })
    }

    fn and(
        &self,
        items: &'a [BoundCondition],
        filter: Option<&RoaringBitmap>,
        count_only: bool,
    ) -> Result<Outcome<'a>, IndexError> {
        // Cheapest first, so the costly steps run within the fewest customers:
        // stored bitmaps (smallest first), other computed operands, NOTs of
        // stored bitmaps, range tests, then NOTs of computed operands.
        let mut stored: Vec<&'a RoaringBitmap> = Vec::new();
        let mut stored_negated = Vec::new();
        let mut computed = Vec::new();
        let mut ranges = Vec::new();
        let mut negated = Vec::new();
        for item in items {
            match item {
                BoundCondition::Not(inner) => match inner.as_ref() {
                    BoundCondition::Predicate(predicate) if self.stored(predicate).is_some() => {
                        stored_negated.push(Step::Drop(inner));
                    }
                    _ => negated.push(Step::Drop(inner)),
                },
                BoundCondition::Predicate(predicate) => match self.stored(predicate) {
                    Some(bitmap) => stored.push(bitmap),
                    None if is_range(predicate) => ranges.push(Step::Compute(item)),
                    None => computed.push(Step::Compute(item)),
                },
                other => computed.push(Step::Compute(other)),
            }
        }
        stored.sort_by_key(|bitmap| bitmap.len());
        let mut steps = stored.into_iter().map(Step::Keep).collect::<Vec<_>>();
        steps.extend(computed);
        steps.extend(stored_negated);
        steps.extend(ranges);
        steps.extend(negated);

        let mut running: Option<Set<'a>> = None;
        let total = steps.len();
        for (position, step) in steps.into_iter().enumerate() {
            let last = count_only && position + 1 == total;
            let within = running.as_deref().or(filter);
            let (operand, keep) = match step {
                Step::Keep(bitmap) => (Cow::Borrowed(bitmap), true),
                Step::Compute(condition) => (self.set(condition, within)?, true),
                Step::Drop(condition) => (self.set(condition, within)?, false),
            };
            if last {
                let base = running.as_deref().unwrap_or(self.alive());
                return Ok(Outcome::Count(if keep {
                    base.intersection_len(&operand)
                } else {
                    base.difference_len(&operand)
                }));
            }
            running = Some(match (running, keep) {
                (None, true) => operand,
                (None, false) => Cow::Owned(self.alive() - operand.as_ref()),
                (Some(Cow::Borrowed(base)), true) => Cow::Owned(base & operand.as_ref()),
                (Some(Cow::Borrowed(base)), false) => Cow::Owned(base - operand.as_ref()),
                (Some(Cow::Owned(mut base)), true) => {
                    base &= operand.as_ref();
                    Cow::Owned(base)
                }
                (Some(Cow::Owned(mut base)), false) => {
                    base -= operand.as_ref();
                    Cow::Owned(base)
                }
            });
            if running.as_ref().is_some_and(|set| set.is_empty()) {
                return Ok(if count_only {
                    Outcome::Count(0)
                } else {
                    Outcome::Set(Cow::Borrowed(&self.index.empty))
                });
            }
        }
        let result = running.unwrap_or(Cow::Borrowed(self.alive()));
        Ok(if count_only {
            Outcome::Count(result.len())
        } else {
            Outcome::Set(result)
        })
    }

    /// The stored bitmap that is exactly this predicate's members, if any.
    fn stored(&self, predicate: &BoundPredicate) -> Option<&'a RoaringBitmap> {
        let index = self.index;
        let text_eq = |postings: Option<&'a crate::postings::Postings>, test: &TextTest| match test
        {
            TextTest::Eq(key) => Some(postings.and_then(|p| p.get(key)).unwrap_or(&index.empty)),
            _ => None,
        };
        match predicate {
            BoundPredicate::HasTag { tag } => Some(
                index
                    .tags
                    .get(tag)
                    .map_or(&index.empty, |postings| postings.holders()),
            ),
            BoundPredicate::TagText { tag, test } => match index.tags.get(tag).map(|p| &p.values) {
                Some(TagValues::Text(postings)) => text_eq(Some(postings), test),
                None => Some(&index.empty),
                Some(_) => None,
            },
            BoundPredicate::Field { field, test } => {
                let position = INDEXED_FIELDS.iter().position(|indexed| indexed == field)?;
                text_eq(index.fields.get(position), test)
            }
            BoundPredicate::Gender { any_of } => match any_of.as_slice() {
                [] => Some(&index.empty),
                [one] => Some(index.gender.get(one.as_str()).unwrap_or(&index.empty)),
                _ => None,
            },
            BoundPredicate::HasAttr { key } => Some(
                index
                    .attributes
                    .get(key)
                    .map_or(&index.empty, |postings| &postings.any),
            ),
            BoundPredicate::Attr { key, test } => text_eq(index.attributes.get(key), test)
                .or_else(|| (!index.attributes.contains_key(key)).then_some(&index.empty)),
            BoundPredicate::BoughtCategory { category } => {
                Some(index.bought.get(category).unwrap_or(&index.empty))
            }
            _ => None,
        }
    }

    fn predicate(
        &self,
        predicate: &'a BoundPredicate,
        filter: Option<&RoaringBitmap>,
    ) -> Result<Set<'a>, IndexError> {
        if let Some(bitmap) = self.stored(predicate) {
            return Ok(Cow::Borrowed(bitmap));
        }
        let index = self.index;
        let unsupported = || IndexError::Unsupported {
            predicate: index
                .unsupported(predicate)
                .unwrap_or_else(|| "this predicate".to_owned()),
        };
        Ok(Cow::Owned(match predicate {
            BoundPredicate::TagText { tag, test } => match index.tags.get(tag).map(|p| &p.values) {
                Some(TagValues::Text(postings)) => postings.matching(test),
                _ => return Err(unsupported()),
            },
            BoundPredicate::TagNumber { tag, test } | BoundPredicate::TagDate { tag, test } => {
                match index.tags.get(tag).map(|p| &p.values) {
                    Some(TagValues::Number(bsi)) => number_test(bsi, test, filter),
                    None => RoaringBitmap::new(),
                    Some(_) => return Err(unsupported()),
                }
            }
            BoundPredicate::Field { field, test } if *field != CustomerField::Gender => {
                let position = INDEXED_FIELDS
                    .iter()
                    .position(|indexed| indexed == field)
                    .ok_or_else(unsupported)?;
                index.fields[position].matching(test)
            }
            BoundPredicate::Gender { any_of } => any_of
                .iter()
                .filter_map(|gender| index.gender.get(gender.as_str()))
                .union(),
            BoundPredicate::Age { test } => self.age(test, filter),
            BoundPredicate::Attr { key, test } => index
                .attributes
                .get(key)
                .map(|postings| postings.matching(test))
                .unwrap_or_default(),
            BoundPredicate::Metric { metric, test } => number_test(
                index.metrics.get(metric).ok_or_else(unsupported)?,
                test,
                filter,
            ),
            BoundPredicate::InSegment { condition, .. } => {
                return self.set(condition, filter);
            }
            _ => return Err(unsupported()),
        }))
    }

    /// Ages become birthday ranges: `age >= n` ⇔ born on or before the
    /// latest birthday that is `n` years old today, so an age range is one
    /// range of birthdays (day numbers are whole, so `> d` is `>= d + 1`).
    fn age(&self, test: &NumberTest, filter: Option<&RoaringBitmap>) -> RoaringBitmap {
        let birthdays = &self.index.birthday;
        // Customers whose age lies in `youngest..=oldest` (whole years; `None`: unbounded).
        let aged = |youngest: Option<f64>, oldest: Option<f64>| -> RoaringBitmap {
            let latest = match youngest {
                Some(years) => match birthday_bound(self.today, years.ceil()) {
                    Some(day) => day,
                    None => return RoaringBitmap::new(),
                },
                None => f64::MAX,
            };
            let earliest = oldest
                .and_then(|years| birthday_bound(self.today, years.floor() + 1.0))
                .map_or(f64::MIN, |day| day + 1.0);
            if earliest > latest {
                return RoaringBitmap::new();
            }
            birthdays.between(earliest, latest, filter)
        };
        let exactly = |years: f64| -> RoaringBitmap {
            if years.fract() == 0.0 {
                aged(Some(years), Some(years))
            } else {
                RoaringBitmap::new()
            }
        };
        match *test {
            NumberTest::Compare(op, years) => match op {
                CmpOp::Ge => aged(Some(years), None),
                CmpOp::Gt => aged(Some(years.floor() + 1.0), None),
                CmpOp::Lt => aged(None, Some(years.ceil() - 1.0)),
                CmpOp::Le => aged(None, Some(years)),
                CmpOp::Eq => exactly(years),
                CmpOp::Ne => {
                    let holders = match filter {
                        Some(filter) => &birthdays.exists & filter,
                        None => birthdays.exists.clone(),
                    };
                    holders - exactly(years)
                }
            },
            NumberTest::In(ref list) => list.iter().map(|years| exactly(*years)).union(),
            NumberTest::Between(low, high) => aged(Some(low), Some(high)),
        }
    }
}

/// Predicates answered by a bit-sliced index: worth running last, within
/// the customers the other operands leave.
fn is_range(predicate: &BoundPredicate) -> bool {
    matches!(
        predicate,
        BoundPredicate::TagNumber { .. }
            | BoundPredicate::TagDate { .. }
            | BoundPredicate::Age { .. }
            | BoundPredicate::Metric { .. }
    )
}

/// The day number of the latest birthday at least `years` (whole) old today.
fn birthday_bound(today: NaiveDate, years: f64) -> Option<f64> {
    let years = years.clamp(-100_000.0, 100_000.0);
    #[expect(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        reason = "a whole number clamped to ±100000"
    )]
    let date = if years >= 0.0 {
        latest_birthday_for_age(today, years as u32)
    } else {
        today.checked_add_months(Months::new((-years) as u32 * 12))
    };
    date.map(tagd_condition::day_number)
}

fn number_test(bsi: &Bsi, test: &NumberTest, filter: Option<&RoaringBitmap>) -> RoaringBitmap {
    match *test {
        NumberTest::Compare(op, bound) => bsi.compare(op, bound, filter),
        NumberTest::In(ref values) => values
            .iter()
            .map(|value| bsi.compare(CmpOp::Eq, *value, filter))
            .union(),
        NumberTest::Between(low, high) => bsi.between(low, high, filter),
    }
}
