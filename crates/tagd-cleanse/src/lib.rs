//! Customer-data cleansing, free of I/O: field rules on raw strings, record-level
//! cleansing of a stored customer, and the report a cleanse job accumulates.
//!
//! Three layers, each usable on its own:
//! - field rules on raw strings ([`name`], [`province`], [`city`], [`gender`], and the
//!   configured ones on [`Cleanser`]: phones, emails, birthdays), each answering with a
//!   [`Cleaned`]: unchanged, changed to a new value, or unfixable with a reason;
//! - [`Cleanser::cleanse`]: a whole [`CustomerFields`](tagd_core::customers::CustomerFields)
//!   cleansed, with every change and every problem listed; idempotent, and a value that
//!   cannot be standardised is kept as it was;
//! - [`CleanseReport`]: per-field counts and the unfixable values, mergeable across batches.
//!
//! Rules already in `tagd-core` (text normalisation, E.164 phones, email shape) are called,
//! never re-implemented; cleansing only goes further where messy input needs it.

mod address;
mod birthday;
mod cleaned;
mod email;
mod error;
mod field;
mod gender;
mod phone;
mod record;
mod regions;
mod report;
mod several;
mod text;

pub use address::{address_detail, city, district, province};
pub use cleaned::{Cleaned, CleanedText};
pub use error::CleanseError;
pub use field::field_name;
pub use gender::gender;
pub use record::{ChangeKind, CleanseOptions, Cleansed, Cleanser, FieldChange, Problem};
pub use regions::{is_municipality, is_special_administrative_region};
pub use report::{CleanseReport, FieldTally, UnfixableValue};
pub use text::{company, name};
