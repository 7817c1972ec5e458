//! Small builders for the requests scenarios make over and over.

use tagd_proto::v1 as pb;

use crate::harness::TestServer;

pub async fn category(server: &TestServer, name: &str, exclusive: bool) -> pb::Category {
    server
        .tags()
        .create_category(pb::CreateCategoryRequest {
            name: name.to_owned(),
            description: format!("{name} category"),
            exclusive,
        })
        .await
        .unwrap()
        .into_inner()
}

pub fn tag_spec(
    category_id: &str,
    name: &str,
    value_type: pb::ValueType,
    enum_values: &[&str],
) -> pb::Tag {
    pb::Tag {
        category_id: category_id.to_owned(),
        name: name.to_owned(),
        value_type: value_type.into(),
        enum_values: enum_values.iter().map(|v| (*v).to_owned()).collect(),
        ..pb::Tag::default()
    }
}

pub async fn tag(
    server: &TestServer,
    category_id: &str,
    name: &str,
    value_type: pb::ValueType,
    enum_values: &[&str],
) -> pb::Tag {
    server
        .tags()
        .create_tag(pb::CreateTagRequest {
            tag: Some(tag_spec(category_id, name, value_type, enum_values)),
        })
        .await
        .unwrap()
        .into_inner()
}

pub async fn flag_tag(server: &TestServer, name: &str) -> pb::Tag {
    let category = category(server, &format!("{name} 类"), false).await;
    tag(server, &category.id, name, pb::ValueType::Flag, &[]).await
}

pub async fn customer(server: &TestServer, name: &str) -> pb::Customer {
    server
        .customers()
        .create_customer(pb::CreateCustomerRequest {
            customer: Some(pb::Customer {
                name: name.to_owned(),
                ..pb::Customer::default()
            }),
        })
        .await
        .unwrap()
        .into_inner()
}

/// `count` customers named `{prefix}0`, `{prefix}1`, …, created one after another.
pub async fn numbered_customers(
    server: &TestServer,
    prefix: &str,
    count: usize,
) -> Vec<pb::Customer> {
    let mut created = Vec::with_capacity(count);
    for index in 0..count {
        created.push(customer(server, &format!("{prefix}{index}")).await);
    }
    created
}

pub fn assignment(tag_id: &str, value: &str) -> pb::TagAssignment {
    pb::TagAssignment {
        tag_id: tag_id.to_owned(),
        value: value.to_owned(),
        ..pb::TagAssignment::default()
    }
}

pub async fn assign(
    server: &TestServer,
    customer_id: &str,
    assignments: Vec<pb::TagAssignment>,
) -> pb::AssignTagsResponse {
    server
        .tagging()
        .assign_tags(pb::AssignTagsRequest {
            customer_id: customer_id.to_owned(),
            assignments,
        })
        .await
        .unwrap()
        .into_inner()
}

pub async fn customer_tags(server: &TestServer, customer_id: &str) -> Vec<pb::CustomerTag> {
    server
        .tagging()
        .list_customer_tags(pb::ListCustomerTagsRequest {
            customer_id: customer_id.to_owned(),
        })
        .await
        .unwrap()
        .into_inner()
        .tags
}

pub async fn history(server: &TestServer, customer_id: &str) -> Vec<pb::TagHistoryEntry> {
    server
        .tagging()
        .get_tag_history(pb::GetTagHistoryRequest {
            customer_id: customer_id.to_owned(),
            page_size: 1000,
            page_token: String::new(),
        })
        .await
        .unwrap()
        .into_inner()
        .entries
}

pub async fn all_customers(server: &TestServer) -> Vec<pb::Customer> {
    server
        .customers()
        .list_customers(pb::ListCustomersRequest {
            page_size: 1000,
            ..pb::ListCustomersRequest::default()
        })
        .await
        .unwrap()
        .into_inner()
        .customers
}

pub fn mask(paths: &[&str]) -> Option<prost_types::FieldMask> {
    Some(prost_types::FieldMask {
        paths: paths.iter().map(|p| (*p).to_owned()).collect(),
    })
}

/// A well-formed id that names nothing.
pub const UNKNOWN_ID: &str = "01900000-0000-7000-8000-000000000000";

/// A timestamp as (seconds, nanos), for ordering comparisons.
pub fn instant(timestamp: Option<&prost_types::Timestamp>) -> (i64, i32) {
    let timestamp = timestamp.expect("timestamp set");
    (timestamp.seconds, timestamp.nanos)
}

/// A condition in its text form, as requests take it.
pub fn text(condition: &str) -> Option<pb::ConditionInput> {
    Some(pb::ConditionInput {
        form: Some(pb::condition_input::Form::Text(condition.to_owned())),
    })
}

/// CountCondition of a condition's text.
pub async fn count_condition(server: &TestServer, condition: &str) -> pb::CountResponse {
    server
        .segments()
        .count_condition(pb::CountConditionRequest {
            condition: text(condition),
        })
        .await
        .unwrap()
        .into_inner()
}

/// CreateCustomer of a whole customer.
pub async fn create_customer(server: &TestServer, customer: pb::Customer) -> pb::Customer {
    server
        .customers()
        .create_customer(pb::CreateCustomerRequest {
            customer: Some(customer),
        })
        .await
        .unwrap()
        .into_inner()
}

/// GetCustomer by id.
pub async fn get_customer(server: &TestServer, id: &str) -> pb::Customer {
    server
        .customers()
        .get_customer(pb::GetCustomerRequest { id: id.to_owned() })
        .await
        .unwrap()
        .into_inner()
}

/// The customers ListCustomers finds by this phone (its index rows).
pub async fn customers_with_phone(server: &TestServer, phone: &str) -> Vec<pb::Customer> {
    server
        .customers()
        .list_customers(pb::ListCustomersRequest {
            phone: phone.to_owned(),
            ..pb::ListCustomersRequest::default()
        })
        .await
        .unwrap()
        .into_inner()
        .customers
}
