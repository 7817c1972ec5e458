//! Vocabulary of tag assignments: where an assignment came from, what a
//! history entry records, and the limits of one call.

use std::str::FromStr;

use chrono::NaiveDateTime;

/// The most assignments one `BatchAssignTags` call may carry.
pub const MAX_BATCH_ASSIGNMENTS: usize = 10_000;
/// The most assignments one `AssignTags` call may carry.
pub const MAX_ASSIGNMENTS_PER_CALL: usize = 1_000;
/// The longest `source_ref`, in characters.
pub const MAX_SOURCE_REF_CHARS: usize = 200;
/// The actor recorded for changes the server makes by itself (expiry).
pub const SYSTEM_ACTOR: &str = "system";

/// Where an assignment came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TagSource {
    Manual,
    Rule,
    Import,
    Merge,
}

/// What happened to a customer's tag.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HistoryAction {
    /// The customer gained the tag.
    Assign,
    /// The value of a held tag changed.
    Change,
    /// The tag was removed.
    Remove,
    /// The assignment reached its expiry time.
    Expire,
    /// Another tag of the same exclusive category replaced it.
    Replace,
}

/// A tag a customer currently holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CustomerTag {
    pub tag_id: String,
    pub tag_name: String,
    pub category_id: String,
    pub category_name: String,
    pub value: Option<String>,
    pub source: TagSource,
    pub source_ref: String,
    pub assigned_by: String,
    pub assigned_at: NaiveDateTime,
    pub expires_at: Option<NaiveDateTime>,
}

/// One change to one customer's tag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryEntry {
    pub id: String,
    pub customer_id: String,
    pub tag_id: String,
    pub tag_name: String,
    pub category_name: String,
    pub action: HistoryAction,
    pub old_value: Option<String>,
    pub new_value: Option<String>,
    pub source: TagSource,
    pub source_ref: String,
    pub actor: String,
    pub at: NaiveDateTime,
}

/// A request to give a customer a tag, before its value is checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assignment {
    pub tag_id: String,
    /// Raw value; checked against the tag's type by the store.
    pub value: String,
    pub source: TagSource,
    pub source_ref: String,
    pub expires_at: Option<NaiveDateTime>,
}

/// What an assignment call changed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AssignOutcome {
    pub assigned: u64,
    pub changed: u64,
    pub unchanged: u64,
    pub replaced: u64,
}

impl AssignOutcome {
    pub fn add(&mut self, other: AssignOutcome) {
        self.assigned += other.assigned;
        self.changed += other.changed;
        self.unchanged += other.unchanged;
        self.replaced += other.replaced;
    }
}

macro_rules! string_enum {
    ($ty:ident { $($variant:ident => $text:literal),+ $(,)? }) => {
        impl $ty {
            pub fn as_str(self) -> &'static str {
                match self { $($ty::$variant => $text),+ }
            }
        }

        impl FromStr for $ty {
            type Err = String;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $($text => Ok($ty::$variant),)+
                    other => Err(format!(concat!("unknown ", stringify!($ty), " {:?}"), other)),
                }
            }
        }
    };
}

string_enum!(TagSource { Manual => "manual", Rule => "rule", Import => "import", Merge => "merge" });
string_enum!(HistoryAction {
    Assign => "assign",
    Change => "change",
    Remove => "remove",
    Expire => "expire",
    Replace => "replace",
});

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for source in [
            TagSource::Manual,
            TagSource::Rule,
            TagSource::Import,
            TagSource::Merge,
        ] {
            assert_eq!(source.as_str().parse::<TagSource>(), Ok(source));
        }
        for action in [
            HistoryAction::Assign,
            HistoryAction::Change,
            HistoryAction::Remove,
            HistoryAction::Expire,
            HistoryAction::Replace,
        ] {
            assert_eq!(action.as_str().parse::<HistoryAction>(), Ok(action));
        }
        assert!("robot".parse::<TagSource>().is_err());
    }
}
