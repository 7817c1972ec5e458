//! The answer of every field rule: unchanged, changed, or unfixable with a reason.

use std::borrow::Cow;

/// What a field rule made of a value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cleaned<T> {
    /// The value was already in its standard form (for text, the input itself, borrowed).
    Unchanged(T),
    /// The value's standard form differs from what was given.
    Changed(T),
    /// The value cannot be standardised; the reason is a short English sentence.
    /// Callers keep the value as it was.
    Unfixable(String),
}

/// A text field's answer: borrowed when unchanged, so a clean value costs no allocation.
pub type CleanedText<'a> = Cleaned<Cow<'a, str>>;

impl<T> Cleaned<T> {
    /// The standard value, unless unfixable.
    pub fn value(&self) -> Option<&T> {
        match self {
            Self::Unchanged(value) | Self::Changed(value) => Some(value),
            Self::Unfixable(_) => None,
        }
    }

    /// The standard value, unless unfixable.
    pub fn into_value(self) -> Option<T> {
        self.into_result().ok()
    }

    /// The standard value, or the reason it cannot be had.
    pub fn into_result(self) -> Result<T, String> {
        match self {
            Self::Unchanged(value) | Self::Changed(value) => Ok(value),
            Self::Unfixable(reason) => Err(reason),
        }
    }

    pub fn is_changed(&self) -> bool {
        matches!(self, Self::Changed(_))
    }

    pub fn is_unfixable(&self) -> bool {
        matches!(self, Self::Unfixable(_))
    }

    /// Why the value is unfixable, if it is.
    pub fn reason(&self) -> Option<&str> {
        match self {
            Self::Unfixable(reason) => Some(reason),
            _ => None,
        }
    }

    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Cleaned<U> {
        match self {
            Self::Unchanged(value) => Cleaned::Unchanged(f(value)),
            Self::Changed(value) => Cleaned::Changed(f(value)),
            Self::Unfixable(reason) => Cleaned::Unfixable(reason),
        }
    }
}

impl<'a> CleanedText<'a> {
    /// Compares a rule's result with the raw input it came from.
    pub(crate) fn compare(raw: &'a str, cleaned: Cow<'a, str>) -> Self {
        if *cleaned == *raw {
            Self::Unchanged(Cow::Borrowed(raw))
        } else {
            Self::Changed(cleaned)
        }
    }

    /// The value to store: the standard form, or the raw input when unfixable.
    pub fn or_raw(self, raw: &'a str) -> Cow<'a, str> {
        match self {
            Self::Unchanged(value) | Self::Changed(value) => value,
            Self::Unfixable(_) => Cow::Borrowed(raw),
        }
    }
}
