//! `tagctl customers …`: CustomerService, including the chunked batch upsert from a file.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use serde::{Deserialize, Serialize};
use tagd_proto::v1 as pb;

use crate::categories::mask;
use crate::cli::{ClearField, CustomerFields, CustomersCommand, GenderArg};
use crate::connect::Connection;
use crate::exit::Failure;
use crate::input::{Record, entry_path, read_records};
use crate::output::{Output, Time, View, cell, enum_name};
use crate::paging::fetch_all;

/// One changed field of a customer, as `customers field-history` shows it.
#[derive(Debug, Serialize)]
pub struct FieldHistoryView {
    pub id: String,
    pub customer_id: String,
    pub field: String,
    pub old_value: String,
    pub new_value: String,
    pub source: String,
    pub source_ref: String,
    pub actor: String,
    pub change_time: Option<Time>,
}

impl From<pb::FieldHistoryEntry> for FieldHistoryView {
    fn from(entry: pb::FieldHistoryEntry) -> Self {
        FieldHistoryView {
            source: pb::FieldChangeSource::try_from(entry.source).map_or_else(
                |_| format!("unknown({})", entry.source),
                |s| enum_name(s.as_str_name(), "FIELD_CHANGE_SOURCE_"),
            ),
            change_time: Time::from_proto(entry.change_time.as_ref()),
            id: entry.id,
            customer_id: entry.customer_id,
            field: entry.field,
            old_value: entry.old_value,
            new_value: entry.new_value,
            source_ref: entry.source_ref,
            actor: entry.actor,
        }
    }
}

impl View for FieldHistoryView {
    const COLUMNS: &'static [&'static str] = &["TIME", "FIELD", "OLD", "NEW", "SOURCE", "ACTOR"];

    fn cells(&self) -> Vec<String> {
        vec![
            cell(self.change_time.as_ref()),
            self.field.clone(),
            self.old_value.clone(),
            self.new_value.clone(),
            crate::tagging::with_ref(&self.source, &self.source_ref),
            self.actor.clone(),
        ]
    }
}

#[derive(Debug, Serialize)]
pub struct CustomerView {
    pub id: String,
    pub name: String,
    pub gender: String,
    pub birthday: String,
    pub phones: Vec<String>,
    pub emails: Vec<String>,
    pub address: AddressView,
    pub company: String,
    pub source_channel: String,
    pub external_ids: Vec<ExternalIdView>,
    pub attributes: BTreeMap<String, String>,
    pub create_time: Option<Time>,
    pub update_time: Option<Time>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AddressView {
    #[serde(default)]
    pub province: String,
    #[serde(default)]
    pub city: String,
    #[serde(default)]
    pub district: String,
    #[serde(default)]
    pub detail: String,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExternalIdView {
    pub channel: String,
    pub external_id: String,
}

impl From<pb::Customer> for CustomerView {
    fn from(customer: pb::Customer) -> Self {
        let address = customer.address.unwrap_or_default();
        CustomerView {
            gender: pb::Gender::try_from(customer.gender).map_or_else(
                |_| format!("unknown({})", customer.gender),
                |g| enum_name(g.as_str_name(), "GENDER_"),
            ),
            create_time: Time::from_proto(customer.create_time.as_ref()),
            update_time: Time::from_proto(customer.update_time.as_ref()),
            id: customer.id,
            name: customer.name,
            birthday: customer.birthday,
            phones: customer.phones,
            emails: customer.emails,
            address: AddressView {
                province: address.province,
                city: address.city,
                district: address.district,
                detail: address.detail,
            },
            company: customer.company,
            source_channel: customer.source_channel,
            external_ids: customer
                .external_ids
                .into_iter()
                .map(|e| ExternalIdView {
                    channel: e.channel,
                    external_id: e.external_id,
                })
                .collect(),
            attributes: customer.attributes.into_iter().collect(),
        }
    }
}

impl CustomerView {
    fn region(&self) -> String {
        let a = &self.address;
        [&a.province, &a.city, &a.district]
            .into_iter()
            .filter(|part| !part.is_empty())
            .fold(Vec::<&str>::new(), |mut parts, part| {
                // 北京 北京 reads as a stutter: skip a part equal to the one before.
                if parts.last() != Some(&part.as_str()) {
                    parts.push(part);
                }
                parts
            })
            .join(" ")
    }

    fn human_gender(&self) -> String {
        if self.gender == "unspecified" {
            String::new()
        } else {
            self.gender.clone()
        }
    }
}

impl View for CustomerView {
    const COLUMNS: &'static [&'static str] = &[
        "ID", "NAME", "GENDER", "PHONES", "EMAILS", "REGION", "COMPANY", "CREATED",
    ];

    fn cells(&self) -> Vec<String> {
        vec![
            self.id.clone(),
            self.name.clone(),
            self.human_gender(),
            self.phones.join("\n"),
            self.emails.join("\n"),
            self.region(),
            self.company.clone(),
            cell(self.create_time.as_ref()),
        ]
    }

    fn fields(&self) -> Vec<(&'static str, String)> {
        let lines = |pairs: Vec<String>| pairs.join("\n");
        vec![
            ("id", self.id.clone()),
            ("name", self.name.clone()),
            ("gender", self.human_gender()),
            ("birthday", self.birthday.clone()),
            ("phones", self.phones.join("\n")),
            ("emails", self.emails.join("\n")),
            ("region", self.region()),
            ("address", self.address.detail.clone()),
            ("company", self.company.clone()),
            ("source channel", self.source_channel.clone()),
            (
                "external ids",
                lines(
                    self.external_ids
                        .iter()
                        .map(|e| format!("{}:{}", e.channel, e.external_id))
                        .collect(),
                ),
            ),
            (
                "attributes",
                lines(
                    self.attributes
                        .iter()
                        .map(|(k, v)| format!("{k}={v}"))
                        .collect(),
                ),
            ),
            ("created", cell(self.create_time.as_ref())),
            ("updated", cell(self.update_time.as_ref())),
        ]
    }
}

pub async fn run(
    command: CustomersCommand,
    connection: &Connection,
    out: Output,
) -> Result<(), Failure> {
    let mut client = connection.customers();
    match command {
        CustomersCommand::List {
            name,
            phone,
            email,
            tag,
            paging,
        } => {
            let filter = pb::ListCustomersRequest {
                name_contains: name.unwrap_or_default(),
                phone: phone.unwrap_or_default(),
                email: email.unwrap_or_default(),
                tag_id: tag.unwrap_or_default(),
                ..pb::ListCustomersRequest::default()
            };
            let rows = fetch_all(paging.limit, |page_size, page_token| {
                let mut client = client.clone();
                let request = pb::ListCustomersRequest {
                    page_size,
                    page_token,
                    ..filter.clone()
                };
                async move {
                    let page = client.list_customers(request).await?.into_inner();
                    Ok((page.customers, page.next_page_token))
                }
            })
            .await?;
            out.list(&rows.into_iter().map(CustomerView::from).collect::<Vec<_>>())
        }
        CustomersCommand::FieldHistory { customer, paging } => {
            let entries = fetch_all(paging.limit, |page_size, page_token| {
                let mut client = client.clone();
                let customer_id = customer.clone();
                async move {
                    let page = client
                        .get_field_history(pb::GetFieldHistoryRequest {
                            customer_id,
                            page_size,
                            page_token,
                        })
                        .await?
                        .into_inner();
                    Ok((page.entries, page.next_page_token))
                }
            })
            .await?;
            out.list(
                &entries
                    .into_iter()
                    .map(FieldHistoryView::from)
                    .collect::<Vec<_>>(),
            )
        }
        CustomersCommand::Get { id } => {
            let customer = client
                .get_customer(pb::GetCustomerRequest { id })
                .await?
                .into_inner();
            out.record(&CustomerView::from(customer))
        }
        CustomersCommand::Create { name, fields } => {
            let (mut customer, _) = fields.into_customer();
            customer.name = name;
            let customer = client
                .create_customer(pb::CreateCustomerRequest {
                    customer: Some(customer),
                })
                .await?
                .into_inner();
            out.record(&CustomerView::from(customer))
        }
        CustomersCommand::Update {
            id,
            name,
            fields,
            clear,
        } => {
            let (mut customer, mut paths) = fields.into_customer();
            if let Some(name) = name {
                customer.name = name;
                paths.push("name");
            }
            for field in clear {
                let path = field.mask_path();
                // `address` clears all parts, so it also clashes with `address.city` etc.
                if paths
                    .iter()
                    .any(|p| *p == path || p.starts_with(&format!("{path}.")))
                {
                    return Err(Failure::usage(format!(
                        "--clear {path} conflicts with a value given for it"
                    )));
                }
                if field == ClearField::Address {
                    customer.address = None;
                }
                paths.push(path);
            }
            if paths.is_empty() {
                return Err(Failure::usage(
                    "nothing to update: give a field flag (see `tagctl customers update --help`) or --clear FIELD",
                ));
            }
            customer.id = id;
            let customer = client
                .update_customer(pb::UpdateCustomerRequest {
                    customer: Some(customer),
                    update_mask: Some(mask(&paths)),
                })
                .await?
                .into_inner();
            out.record(&CustomerView::from(customer))
        }
        CustomersCommand::Delete { id } => {
            let deleted = client
                .delete_customer(pb::DeleteCustomerRequest { id: id.clone() })
                .await?
                .into_inner();
            let sentence = format!(
                "deleted customer {id} ({} tag assignments removed)",
                deleted.removed_assignments
            );
            #[derive(Serialize)]
            struct Deleted {
                id: String,
                removed_assignments: u64,
            }
            out.outcome(
                &Deleted {
                    id,
                    removed_assignments: deleted.removed_assignments,
                },
                &sentence,
            )
        }
        CustomersCommand::Metrics { id } => crate::metrics::customer(id, connection, out).await,
        CustomersCommand::Upsert { file, chunk_size } => {
            upsert(connection, out, &file, chunk_size).await
        }
    }
}

impl CustomerFields {
    /// The customer the flags describe and the update-mask paths of the flags given.
    fn into_customer(self) -> (pb::Customer, Vec<&'static str>) {
        let mut paths = Vec::new();
        let mut given = |is_given: bool, path: &'static str| {
            if is_given {
                paths.push(path);
            }
        };
        given(self.gender.is_some(), "gender");
        given(self.birthday.is_some(), "birthday");
        given(!self.phones.is_empty(), "phones");
        given(!self.emails.is_empty(), "emails");
        given(self.province.is_some(), "address.province");
        given(self.city.is_some(), "address.city");
        given(self.district.is_some(), "address.district");
        given(self.address_detail.is_some(), "address.detail");
        given(self.company.is_some(), "company");
        given(self.source_channel.is_some(), "source_channel");
        given(!self.external_ids.is_empty(), "external_ids");
        given(!self.attributes.is_empty(), "attributes");
        let has_address = self.province.is_some()
            || self.city.is_some()
            || self.district.is_some()
            || self.address_detail.is_some();
        let customer = pb::Customer {
            gender: self.gender.map_or(0, |g| pb::Gender::from(g).into()),
            birthday: self.birthday.unwrap_or_default(),
            phones: self.phones,
            emails: self.emails,
            address: has_address.then(|| pb::Address {
                province: self.province.unwrap_or_default(),
                city: self.city.unwrap_or_default(),
                district: self.district.unwrap_or_default(),
                detail: self.address_detail.unwrap_or_default(),
            }),
            company: self.company.unwrap_or_default(),
            source_channel: self.source_channel.unwrap_or_default(),
            external_ids: self.external_ids,
            attributes: self.attributes.into_iter().collect(),
            ..pb::Customer::default()
        };
        (customer, paths)
    }
}

/// One record of an upsert file: the key and the fields to set.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct UpsertRecord {
    channel: String,
    external_id: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    gender: Option<GenderArg>,
    #[serde(default)]
    birthday: String,
    #[serde(default)]
    phones: Vec<String>,
    #[serde(default)]
    emails: Vec<String>,
    #[serde(default)]
    address: Option<AddressView>,
    #[serde(default)]
    company: String,
    #[serde(default)]
    source_channel: String,
    #[serde(default)]
    external_ids: Vec<ExternalIdView>,
    #[serde(default)]
    attributes: HashMap<String, String>,
}

impl From<UpsertRecord> for pb::UpsertCustomerEntry {
    fn from(record: UpsertRecord) -> Self {
        pb::UpsertCustomerEntry {
            key: Some(pb::ExternalId {
                channel: record.channel,
                external_id: record.external_id,
            }),
            customer: Some(pb::Customer {
                name: record.name,
                gender: record.gender.map_or(0, |g| pb::Gender::from(g).into()),
                birthday: record.birthday,
                phones: record.phones,
                emails: record.emails,
                address: record.address.map(|a| pb::Address {
                    province: a.province,
                    city: a.city,
                    district: a.district,
                    detail: a.detail,
                }),
                company: record.company,
                source_channel: record.source_channel,
                external_ids: record
                    .external_ids
                    .into_iter()
                    .map(|e| pb::ExternalId {
                        channel: e.channel,
                        external_id: e.external_id,
                    })
                    .collect(),
                attributes: record.attributes,
                ..pb::Customer::default()
            }),
        }
    }
}

#[derive(Debug, Default, Serialize)]
struct UpsertSummary {
    records: usize,
    calls: usize,
    created: u64,
    updated: u64,
    unchanged: u64,
    results: Vec<UpsertResult>,
}

#[derive(Debug, Serialize)]
struct UpsertResult {
    /// Where the record came from (`file.jsonl:12`).
    record: String,
    customer_id: String,
    outcome: String,
}

async fn upsert(
    connection: &Connection,
    out: Output,
    file: &Path,
    chunk_size: u32,
) -> Result<(), Failure> {
    let records: Vec<Record<UpsertRecord>> = read_records(file)?;
    let chunk_size = usize::try_from(chunk_size).unwrap_or(1000);
    let chunks = records.len().div_ceil(chunk_size);
    let mut client = connection.customers();
    let mut summary = UpsertSummary {
        records: records.len(),
        ..UpsertSummary::default()
    };
    let mut records = records.into_iter().peekable();
    let mut number = 0;
    while records.peek().is_some() {
        number += 1;
        let (origins, entries): (Vec<String>, Vec<pb::UpsertCustomerEntry>) = records
            .by_ref()
            .take(chunk_size)
            .map(|record| (record.origin, record.value.into()))
            .unzip();
        let response = client
            .upsert_customers(pb::UpsertCustomersRequest { entries })
            .await
            .map_err(|status| {
                let culprit =
                    entry_path(status.message()).and_then(|(entry, _)| origins.get(entry));
                let span = (
                    origins.first().cloned().unwrap_or_default(),
                    origins.last().cloned().unwrap_or_default(),
                );
                Failure::from(status).with_context(chunk_context(
                    number,
                    chunks,
                    &span,
                    summary.calls,
                    culprit,
                ))
            })?
            .into_inner();
        summary.calls += 1;
        summary.created += response.created;
        summary.updated += response.updated;
        summary.unchanged += response.unchanged;
        summary
            .results
            .extend(
                response
                    .results
                    .into_iter()
                    .zip(origins)
                    .map(|(result, record)| UpsertResult {
                        record,
                        outcome: pb::UpsertOutcome::try_from(result.outcome).map_or_else(
                            |_| format!("unknown({})", result.outcome),
                            |o| enum_name(o.as_str_name(), "UPSERT_OUTCOME_"),
                        ),
                        customer_id: result.customer_id,
                    }),
            );
    }
    let sentence = format!(
        "upserted {} records in {} calls: {} created, {} updated, {} unchanged",
        summary.records, summary.calls, summary.created, summary.updated, summary.unchanged
    );
    out.outcome(&summary, &sentence)
}

/// Says which chunk (and record, when the server's message names one) failed, and
/// that the chunks before it stay applied.
pub fn chunk_context(
    number: usize,
    chunks: usize,
    (first, last): &(String, String),
    applied_calls: usize,
    culprit: Option<&String>,
) -> String {
    let records = if first == last {
        format!("record {first}")
    } else {
        format!("records {first} to {last}")
    };
    let applied = match applied_calls {
        0 => "nothing was applied".to_owned(),
        n => format!("the {n} chunk(s) before it were applied"),
    };
    let culprit = match culprit {
        Some(origin) if first != last => format!("; the failing record is {origin}"),
        _ => String::new(),
    };
    format!("in chunk {number} of {chunks}, {records}{culprit}; {applied}")
}
