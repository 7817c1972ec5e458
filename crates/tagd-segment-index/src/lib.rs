//! Tagd's in-memory segment index: compressed bitmaps (`roaring`) of tag,
//! field and attribute membership plus bit-sliced indexes for numbers, so
//! counting or listing a segment never scans the database. No I/O: the
//! store loads it at start-up and feeds it every write.
//!
//! # What is held
//!
//! - customer id ↔ dense `u32` ([`SegmentIndex::dense_id`]); deletes leave
//!   holes, removed from `alive`;
//! - per tag: its holders; per value for enum, bool and text tags; a
//!   bit-sliced index (BSI) for number and date tags;
//! - per value of province, city, district, source channel, gender and of
//!   every attribute;
//! - BSIs for birthdays (so `age` works for any evaluation day) and for each
//!   loaded metric; per purchase category, who ever bought in it.
//!
//! Numbers are keyed in the BSI as whole units, cents, or (if a value needs
//! it) an order-preserving float encoding, so typical values touch only the
//! ~15–25 slices that vary; a column of keys by customer number answers a
//! range test directly when an AND has already narrowed the candidates to a
//! few percent.
//!
//! # How a condition is answered
//!
//! An AND intersects its stored bitmaps smallest first (borrowed, not
//! copied), then computes ORs and value lists, subtracts NOTs of stored
//! bitmaps, runs range tests only within the customers left, and subtracts
//! computed NOTs last; `count` does the final step with `intersection_len` /
//! `difference_len`. NOT is `alive - x`.
//!
//! # What is not (→ [`IndexError::Unsupported`], answer with SQL)
//!
//! - `name …` and `company …` (nearly every value distinct);
//! - `purchases(…)` and `spent(…)` (they need raw purchase events);
//! - metrics never loaded ([`SegmentIndex::declare_metric`]), and
//!   `bought_category(…)` until [`SegmentIndex::set_purchases_loaded`].
//!
//! [`SegmentIndex::supports`] tells in advance, naming the predicate.
//!
//! # Concurrency
//!
//! Queries take `&self`, mutations `&mut self`; share it as
//! `Arc<RwLock<SegmentIndex>>`. Every mutation is a few bitmap updates.
//!
//! Results agree with [`tagd_condition::evaluate`] (property-tested).

mod bsi;
mod error;
mod ids;
mod index;
mod memory;
mod postings;
mod query;

pub use error::IndexError;
pub use index::{INDEXED_FIELDS, SegmentIndex};
pub use memory::MemoryReport;
pub use query::MembersPage;
