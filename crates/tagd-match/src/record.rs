//! The matcher's input: a customer's fields as raw text ([`RawCustomer`]) or
//! already cleansed ([`MatchRecord`]).

use chrono::NaiveDate;

/// A caller's id for a record. Dense indices (0..n) are cheapest; a server
/// keeps its own table from these to customer UUIDs.
pub type RecordId = u32;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Gender {
    #[default]
    Unknown,
    Male,
    Female,
}

/// A customer as it arrives from a channel: every field raw text.
/// [`crate::prepare`] turns it into a [`MatchRecord`].
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RawCustomer {
    pub id: RecordId,
    pub name: String,
    pub gender: String,
    pub birthday: String,
    pub phones: Vec<String>,
    pub emails: Vec<String>,
    pub province: String,
    pub city: String,
    pub district: String,
    pub detail: String,
}

/// A customer with cleansed fields: names NFKC with single spaces, phones
/// in E.164 (`+8613800138000`) or at least digits, emails lower-cased.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MatchRecord {
    pub id: RecordId,
    pub name: String,
    pub gender: Gender,
    pub birthday: Option<NaiveDate>,
    pub phones: Vec<String>,
    pub emails: Vec<String>,
    pub province: String,
    pub city: String,
    pub district: String,
    pub detail: String,
}
