//! The data the benchmark works on: customers, a category with tags, and the calls made on them.

use anyhow::{Context, Result};
use tagd_proto::v1::{
    Address, BatchAssignTagsRequest, CreateCategoryRequest, CreateTagRequest, Customer,
    CustomerAssignments, ExternalId, Gender, Tag, TagAssignment, TagSource, UpsertCustomerEntry,
    UpsertCustomersRequest, ValueType, customer_service_client::CustomerServiceClient,
    tag_service_client::TagServiceClient,
};
use tonic::transport::Channel;

/// The channel customers are keyed by.
pub const CHANNEL: &str = "bench";
/// Customers per `UpsertCustomers` call (the API's maximum).
pub const UPSERT_BATCH: usize = 1000;

/// What the set-up created on the server.
#[derive(Clone, Debug)]
pub struct Dataset {
    pub category_id: String,
    /// The NUMBER tag written by the `AssignTags` measurement.
    pub number_tag: String,
    /// FLAG tags written by the `BatchAssignTags` measurement.
    pub flag_tags: Vec<String>,
    /// Customer ids in creation order.
    pub customers: Vec<String>,
}

/// The fields of customer `i`: every field set, so `GetCustomer` returns a realistic record.
pub fn customer_fields(i: usize) -> Customer {
    Customer {
        id: String::new(),
        name: format!("客户 {i:06}"),
        gender: if i.is_multiple_of(2) {
            Gender::Female
        } else {
            Gender::Male
        } as i32,
        birthday: format!("19{:02}-{:02}-{:02}", 60 + i % 40, 1 + i % 12, 1 + i % 28),
        phones: vec![format!("+86138{:08}", i % 100_000_000)],
        emails: vec![format!("customer{i:06}@example.com")],
        address: Some(Address {
            province: "广东省".to_owned(),
            city: "深圳市".to_owned(),
            district: "南山区".to_owned(),
            detail: format!("科技园路 {} 号", 1 + i % 500),
        }),
        company: "示例科技有限公司".to_owned(),
        source_channel: CHANNEL.to_owned(),
        external_ids: vec![external_id(i)],
        attributes: [
            ("会员等级".to_owned(), "金卡".to_owned()),
            ("city_tier".to_owned(), "1".to_owned()),
        ]
        .into_iter()
        .collect(),
        create_time: None,
        update_time: None,
    }
}

fn external_id(i: usize) -> ExternalId {
    ExternalId {
        channel: CHANNEL.to_owned(),
        external_id: format!("bench-{i:06}"),
    }
}

/// A stand-in for a stored customer (id and timestamps filled in), for the echo baseline before
/// a real one has been read back from tagd.
pub fn synthetic_stored_customer() -> Customer {
    let now = std::time::SystemTime::now();
    let mut customer = customer_fields(0);
    customer.id = "0194b3a2-7c1e-7d2f-8a3b-4c5d6e7f8091".to_owned();
    customer.create_time = Some(prost_types::Timestamp::from(now));
    customer.update_time = Some(prost_types::Timestamp::from(now));
    customer
}

/// Creates the category, the tags and `customers` customers over gRPC.
pub async fn setup(channel: Channel, customers: usize, flag_tags: usize) -> Result<Dataset> {
    let mut tags = TagServiceClient::new(channel.clone());
    let suffix = rand::random::<u32>();
    let category = tags
        .create_category(CreateCategoryRequest {
            name: format!("bench {suffix:08x}"),
            description: "created by tagd-bench".to_owned(),
            exclusive: false,
        })
        .await
        .context("CreateCategory")?
        .into_inner();
    let new_tag = |name: String, value_type: ValueType| CreateTagRequest {
        tag: Some(Tag {
            category_id: category.id.clone(),
            name,
            description: "created by tagd-bench".to_owned(),
            value_type: value_type as i32,
            ..Tag::default()
        }),
    };
    let number_tag = tags
        .create_tag(new_tag("score".to_owned(), ValueType::Number))
        .await
        .context("CreateTag (NUMBER)")?
        .into_inner()
        .id;
    let mut flags = Vec::with_capacity(flag_tags);
    for k in 0..flag_tags {
        let tag = tags
            .create_tag(new_tag(format!("flag-{k}"), ValueType::Flag))
            .await
            .context("CreateTag (FLAG)")?
            .into_inner();
        flags.push(tag.id);
    }

    let mut client = CustomerServiceClient::new(channel);
    let mut ids = Vec::with_capacity(customers);
    for start in (0..customers).step_by(UPSERT_BATCH) {
        let end = (start + UPSERT_BATCH).min(customers);
        let entries = (start..end)
            .map(|i| UpsertCustomerEntry {
                key: Some(external_id(i)),
                customer: Some(customer_fields(i)),
            })
            .collect();
        let response = client
            .upsert_customers(UpsertCustomersRequest { entries })
            .await
            .with_context(|| format!("UpsertCustomers {start}..{end}"))?
            .into_inner();
        anyhow::ensure!(
            response.results.len() == end - start,
            "UpsertCustomers returned {} results for {} entries",
            response.results.len(),
            end - start
        );
        ids.extend(response.results.into_iter().map(|r| r.customer_id));
    }
    Ok(Dataset {
        category_id: category.id,
        number_tag,
        flag_tags: flags,
        customers: ids,
    })
}

/// One `AssignTags` assignment: the NUMBER tag set to `value` (always a new value, so it writes).
pub fn number_assignment(dataset: &Dataset, value: u64) -> TagAssignment {
    TagAssignment {
        tag_id: dataset.number_tag.clone(),
        value: value.to_string(),
        source: TagSource::Manual as i32,
        source_ref: String::new(),
        expires_at: None,
    }
}

/// Batch `batch`: customers `[batch * per_batch, (batch + 1) * per_batch)` each get every FLAG tag.
///
/// Batches cover disjoint customers, so every assignment in every batch is new.
pub fn batch_request(dataset: &Dataset, batch: usize, per_batch: usize) -> BatchAssignTagsRequest {
    let n = dataset.customers.len();
    let entries = (batch * per_batch..(batch + 1) * per_batch)
        .map(|i| CustomerAssignments {
            customer_id: dataset.customers[i % n].clone(),
            assignments: dataset
                .flag_tags
                .iter()
                .map(|tag| TagAssignment {
                    tag_id: tag.clone(),
                    value: String::new(),
                    source: TagSource::Import as i32,
                    source_ref: format!("bench-batch-{batch}"),
                    expires_at: None,
                })
                .collect(),
        })
        .collect();
    BatchAssignTagsRequest { entries }
}

#[cfg(test)]
mod tests {
    use prost::Message;

    use super::*;

    #[test]
    fn batches_are_disjoint_and_full() {
        let dataset = Dataset {
            category_id: "c".to_owned(),
            number_tag: "n".to_owned(),
            flag_tags: (0..5).map(|k| format!("f{k}")).collect(),
            customers: (0..10_000).map(|i| format!("cust-{i}")).collect(),
        };
        let a = batch_request(&dataset, 0, 2000);
        let b = batch_request(&dataset, 1, 2000);
        let count: usize = a.entries.iter().map(|e| e.assignments.len()).sum();
        assert_eq!(count, 10_000);
        assert_eq!(a.entries[0].customer_id, "cust-0");
        assert_eq!(b.entries[0].customer_id, "cust-2000");
        // Comfortably under tonic's default 4 MiB message limit.
        assert!(a.encoded_len() < 4 << 20);
    }

    #[test]
    fn synthetic_customer_is_realistic() {
        let c = synthetic_stored_customer();
        assert!(c.encoded_len() > 250, "{}", c.encoded_len());
    }
}
