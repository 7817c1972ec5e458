//! Conversions between `tagd.v1` messages and domain values.

use std::collections::BTreeSet;

use chrono::{DateTime, NaiveDateTime, Utc};
use prost_types::{FieldMask, Timestamp};
use tagd_core::DomainError;
use tagd_core::customers::{
    Address, Customer, CustomerField, CustomerFields, ExternalId, FieldHistoryEntry, FieldSource,
    Gender,
};
use tagd_core::ids;
use tagd_core::tagging::{CustomerTag, HistoryAction, HistoryEntry, TagSource};
use tagd_core::tags::{Category, Tag, ValueType};
use tagd_proto::v1 as pb;
use tonic::Status;

use crate::error::OrStatus;

pub(crate) fn timestamp(time: NaiveDateTime) -> Timestamp {
    let utc = time.and_utc();
    Timestamp {
        seconds: utc.timestamp(),
        nanos: i32::try_from(utc.timestamp_subsec_nanos()).unwrap_or(0),
    }
}

pub(crate) fn from_timestamp(
    field: &str,
    value: Option<&Timestamp>,
) -> Result<Option<NaiveDateTime>, Status> {
    let Some(value) = value else { return Ok(None) };
    let nanos = u32::try_from(value.nanos).map_err(|_| invalid(field, "nanos must be 0..1e9"))?;
    DateTime::<Utc>::from_timestamp(value.seconds, nanos)
        .map(|time| Some(time.naive_utc()))
        .ok_or_else(|| invalid(field, "is out of range"))
}

pub(crate) fn invalid(field: &str, reason: &str) -> Status {
    Status::invalid_argument(format!("{field}: {reason}"))
}

/// A required id field: set, and shaped like an id this service issues.
pub(crate) fn id(field: &str, value: &str) -> Result<String, Status> {
    let value = value.trim();
    if value.is_empty() {
        return Err(invalid(field, "must be set"));
    }
    if !ids::is_well_formed(value) {
        return Err(invalid(field, &format!("{value:?} is not a tagd id")));
    }
    Ok(value.to_owned())
}

/// A required sub-message.
/// An optional id filter: empty means none, anything else must be a well-formed id.
pub(crate) fn optional_id(field: &str, value: &str) -> Result<Option<String>, Status> {
    if value.trim().is_empty() {
        Ok(None)
    } else {
        id(field, value).map(Some)
    }
}

pub(crate) fn required<'a, T>(field: &str, value: Option<&'a T>) -> Result<&'a T, Status> {
    value.ok_or_else(|| invalid(field, "must be set"))
}

/// The paths of a required, non-empty update mask.
pub(crate) fn mask_paths(mask: Option<&FieldMask>) -> Result<&[String], Status> {
    match mask {
        Some(mask) if !mask.paths.is_empty() => Ok(&mask.paths),
        _ => Err(invalid(
            "update_mask",
            "must list at least one field to change",
        )),
    }
}

pub(crate) fn unknown_path(path: &str, allowed: &str) -> Status {
    invalid(
        "update_mask",
        &format!("unknown field {path:?}; allowed: {allowed}"),
    )
}

pub(crate) fn category(category: Category) -> pb::Category {
    pb::Category {
        id: category.id,
        name: category.name,
        description: category.description,
        exclusive: category.exclusive,
        create_time: Some(timestamp(category.created_at)),
        update_time: Some(timestamp(category.updated_at)),
    }
}

pub(crate) fn value_type(field: &str, raw: i32) -> Result<ValueType, Status> {
    match pb::ValueType::try_from(raw) {
        Ok(pb::ValueType::Flag) => Ok(ValueType::Flag),
        Ok(pb::ValueType::Enum) => Ok(ValueType::Enum),
        Ok(pb::ValueType::Number) => Ok(ValueType::Number),
        Ok(pb::ValueType::Text) => Ok(ValueType::Text),
        Ok(pb::ValueType::Bool) => Ok(ValueType::Bool),
        Ok(pb::ValueType::Date) => Ok(ValueType::Date),
        Ok(pb::ValueType::Unspecified) => Err(invalid(
            field,
            "must be set (FLAG, ENUM, NUMBER, TEXT, BOOL or DATE)",
        )),
        Err(_) => Err(invalid(field, &format!("{raw} is not a value type"))),
    }
}

fn value_type_to_proto(value_type: ValueType) -> pb::ValueType {
    match value_type {
        ValueType::Flag => pb::ValueType::Flag,
        ValueType::Enum => pb::ValueType::Enum,
        ValueType::Number => pb::ValueType::Number,
        ValueType::Text => pb::ValueType::Text,
        ValueType::Bool => pb::ValueType::Bool,
        ValueType::Date => pb::ValueType::Date,
    }
}

pub(crate) fn validity_secs(
    field: &str,
    value: Option<&prost_types::Duration>,
) -> Result<Option<i64>, Status> {
    let secs = match value {
        None => None,
        Some(duration) if duration.nanos != 0 => {
            return Err(invalid(field, "must be whole seconds"));
        }
        Some(duration) => Some(duration.seconds),
    };
    tagd_core::tags::default_validity(field, secs).or_status()
}

pub(crate) fn tag(tag: Tag) -> pb::Tag {
    pb::Tag {
        value_type: value_type_to_proto(tag.value_type).into(),
        id: tag.id,
        category_id: tag.category_id,
        name: tag.name,
        description: tag.description,
        enum_values: tag.enum_values,
        default_validity: tag
            .default_validity_secs
            .map(|seconds| prost_types::Duration { seconds, nanos: 0 }),
        create_time: Some(timestamp(tag.created_at)),
        update_time: Some(timestamp(tag.updated_at)),
    }
}

fn gender_from_proto(raw: i32) -> Result<Gender, Status> {
    match pb::Gender::try_from(raw) {
        Ok(pb::Gender::Unspecified) => Ok(Gender::Unspecified),
        Ok(pb::Gender::Male) => Ok(Gender::Male),
        Ok(pb::Gender::Female) => Ok(Gender::Female),
        Ok(pb::Gender::Other) => Ok(Gender::Other),
        Err(_) => Err(invalid("gender", &format!("{raw} is not a gender"))),
    }
}

fn gender_to_proto(gender: Gender) -> pb::Gender {
    match gender {
        Gender::Unspecified => pb::Gender::Unspecified,
        Gender::Male => pb::Gender::Male,
        Gender::Female => pb::Gender::Female,
        Gender::Other => pb::Gender::Other,
    }
}

/// The raw (not yet normalised) fields of a proto customer. Only the birthday
/// is parsed here, because its rule needs today's date.
pub(crate) fn raw_customer_fields(customer: &pb::Customer) -> Result<CustomerFields, Status> {
    let address = customer.address.clone().unwrap_or_default();
    Ok(CustomerFields {
        name: customer.name.clone(),
        gender: gender_from_proto(customer.gender)?,
        birthday: tagd_core::customers::birthday(&customer.birthday, Utc::now().date_naive())
            .or_status()?,
        phones: customer.phones.clone(),
        emails: customer.emails.clone(),
        address: Address {
            province: address.province,
            city: address.city,
            district: address.district,
            detail: address.detail,
        },
        company: customer.company.clone(),
        source_channel: customer.source_channel.clone(),
        external_ids: customer
            .external_ids
            .iter()
            .map(|id| ExternalId {
                channel: id.channel.clone(),
                external_id: id.external_id.clone(),
            })
            .collect(),
        attributes: customer.attributes.clone().into_iter().collect(),
    })
}

/// The fields an update mask names, or INVALID_ARGUMENT naming the unknown path.
pub(crate) fn customer_mask(paths: &[String]) -> Result<BTreeSet<CustomerField>, Status> {
    let mut fields = BTreeSet::new();
    for path in paths {
        let named = CustomerField::from_path(path).ok_or_else(|| {
            unknown_path(
                path,
                "name, gender, birthday, phones, emails, address, address.province, address.city, \
                 address.district, address.detail, company, source_channel, external_ids, attributes",
            )
        })?;
        fields.extend(named.iter().copied());
    }
    Ok(fields)
}

pub(crate) fn customer(customer: Customer) -> pb::Customer {
    let fields = customer.fields;
    pb::Customer {
        id: customer.id,
        name: fields.name,
        gender: gender_to_proto(fields.gender).into(),
        birthday: fields
            .birthday
            .map(|date| date.format("%Y-%m-%d").to_string())
            .unwrap_or_default(),
        phones: fields.phones,
        emails: fields.emails,
        address: Some(pb::Address {
            province: fields.address.province,
            city: fields.address.city,
            district: fields.address.district,
            detail: fields.address.detail,
        }),
        company: fields.company,
        source_channel: fields.source_channel,
        external_ids: fields
            .external_ids
            .into_iter()
            .map(|id| pb::ExternalId {
                channel: id.channel,
                external_id: id.external_id,
            })
            .collect(),
        attributes: fields.attributes.into_iter().collect(),
        create_time: Some(timestamp(customer.created_at)),
        update_time: Some(timestamp(customer.updated_at)),
    }
}

pub(crate) fn source_from_proto(field: &str, raw: i32) -> Result<TagSource, Status> {
    match pb::TagSource::try_from(raw) {
        Ok(pb::TagSource::Unspecified | pb::TagSource::Manual) => Ok(TagSource::Manual),
        Ok(pb::TagSource::Rule) => Ok(TagSource::Rule),
        Ok(pb::TagSource::Import) => Ok(TagSource::Import),
        Ok(pb::TagSource::Merge) => Ok(TagSource::Merge),
        Err(_) => Err(invalid(field, &format!("{raw} is not a tag source"))),
    }
}

fn source_to_proto(source: TagSource) -> pb::TagSource {
    match source {
        TagSource::Manual => pb::TagSource::Manual,
        TagSource::Rule => pb::TagSource::Rule,
        TagSource::Import => pb::TagSource::Import,
        TagSource::Merge => pb::TagSource::Merge,
    }
}

fn action_to_proto(action: HistoryAction) -> pb::HistoryAction {
    match action {
        HistoryAction::Assign => pb::HistoryAction::Assign,
        HistoryAction::Change => pb::HistoryAction::Change,
        HistoryAction::Remove => pb::HistoryAction::Remove,
        HistoryAction::Expire => pb::HistoryAction::Expire,
        HistoryAction::Replace => pb::HistoryAction::Replace,
    }
}

pub(crate) fn customer_tag(tag: CustomerTag) -> pb::CustomerTag {
    pb::CustomerTag {
        source: source_to_proto(tag.source).into(),
        tag_id: tag.tag_id,
        tag_name: tag.tag_name,
        category_id: tag.category_id,
        category_name: tag.category_name,
        value: tag.value.unwrap_or_default(),
        source_ref: tag.source_ref,
        assigned_by: tag.assigned_by,
        assigned_at: Some(timestamp(tag.assigned_at)),
        expires_at: tag.expires_at.map(timestamp),
    }
}

pub(crate) fn history_entry(entry: HistoryEntry) -> pb::TagHistoryEntry {
    pb::TagHistoryEntry {
        action: action_to_proto(entry.action).into(),
        source: source_to_proto(entry.source).into(),
        id: entry.id,
        customer_id: entry.customer_id,
        tag_id: entry.tag_id,
        tag_name: entry.tag_name,
        category_name: entry.category_name,
        old_value: entry.old_value.unwrap_or_default(),
        new_value: entry.new_value.unwrap_or_default(),
        source_ref: entry.source_ref,
        actor: entry.actor,
        time: Some(timestamp(entry.at)),
    }
}

pub(crate) fn field_history_entry(entry: FieldHistoryEntry) -> pb::FieldHistoryEntry {
    pb::FieldHistoryEntry {
        source: match entry.source {
            FieldSource::Cleanse => pb::FieldChangeSource::Cleanse,
            FieldSource::Merge => pb::FieldChangeSource::Merge,
            FieldSource::Import => pb::FieldChangeSource::Import,
            FieldSource::Manual => pb::FieldChangeSource::Manual,
        }
        .into(),
        id: entry.id,
        customer_id: entry.customer_id,
        field: entry.field.path().to_owned(),
        old_value: entry.old_value,
        new_value: entry.new_value,
        source_ref: entry.source_ref,
        actor: entry.actor,
        change_time: Some(timestamp(entry.changed_at)),
    }
}

/// Puts `prefix` before the field a domain error names.
pub(crate) fn within(prefix: &str) -> impl Fn(DomainError) -> Status + '_ {
    move |error| crate::error::invalid(error.within(prefix))
}
