//! `CustomerService`: customer records.

use std::sync::Arc;

use tagd_core::customers::{self as domain, ContactRules, CustomerField, CustomerFields};
use tagd_core::paging::PageRequest;
use tagd_core::text;
use tagd_proto::v1::customer_service_server::CustomerService;
use tagd_proto::v1::{self as pb};
use tagd_store::{CustomerFilter, Store, UpsertEntry, UpsertOutcome};
use tonic::{Request, Response, Status};

use crate::convert::{self, id, mask_paths, required, within};
use crate::error::OrStatus;

/// The most entries one `UpsertCustomers` call may carry.
const MAX_UPSERT_ENTRIES: usize = 1_000;

pub(crate) struct Customers {
    pub store: Arc<Store>,
    pub rules: ContactRules,
}

impl Customers {
    /// Normalises the fields an update names; the others are left raw and unused.
    fn masked_fields(
        &self,
        raw: CustomerFields,
        mask: &std::collections::BTreeSet<CustomerField>,
    ) -> Result<CustomerFields, Status> {
        use CustomerField as F;
        let mut clean = raw.clone();
        let wrap = within("customer");
        for field in mask {
            match field {
                F::Name => clean.name = text::required_name("name", &raw.name).map_err(&wrap)?,
                F::Gender | F::Birthday => {}
                F::Phones => clean.phones = self.rules.phones(&raw.phones).map_err(&wrap)?,
                F::Emails => clean.emails = domain::emails(&raw.emails).map_err(&wrap)?,
                F::Province | F::City | F::District | F::AddressDetail => {
                    clean.address = domain::address(&raw.address).map_err(&wrap)?;
                }
                F::Company => clean.company = domain::company(&raw.company).map_err(&wrap)?,
                F::SourceChannel => {
                    clean.source_channel =
                        domain::optional_channel("source_channel", &raw.source_channel)
                            .map_err(&wrap)?;
                }
                F::ExternalIds => {
                    clean.external_ids = domain::external_ids(&raw.external_ids).map_err(&wrap)?
                }
                F::Attributes => {
                    clean.attributes = domain::attributes(&raw.attributes).map_err(&wrap)?
                }
            }
        }
        Ok(clean)
    }
}

/// Normalises an upsert entry's (or a duplicate search's draft's) fields; every field is optional.
pub(crate) fn partial_fields(
    rules: &ContactRules,
    raw: CustomerFields,
    prefix: &str,
) -> Result<CustomerFields, Status> {
    let wrap = within(prefix);
    Ok(CustomerFields {
        name: text::optional("name", &raw.name, text::MAX_NAME_CHARS).map_err(&wrap)?,
        gender: raw.gender,
        birthday: raw.birthday,
        phones: rules.phones(&raw.phones).map_err(&wrap)?,
        emails: domain::emails(&raw.emails).map_err(&wrap)?,
        address: domain::address(&raw.address).map_err(&wrap)?,
        company: domain::company(&raw.company).map_err(&wrap)?,
        source_channel: domain::optional_channel("source_channel", &raw.source_channel)
            .map_err(&wrap)?,
        external_ids: domain::external_ids(&raw.external_ids).map_err(&wrap)?,
        attributes: domain::attributes(&raw.attributes).map_err(&wrap)?,
    })
}

pub(crate) fn raw_fields(customer: &pb::Customer, prefix: &str) -> Result<CustomerFields, Status> {
    convert::raw_customer_fields(customer)
        .map_err(|status| Status::invalid_argument(format!("{prefix}.{}", status.message())))
}

#[tonic::async_trait]
impl CustomerService for Customers {
    async fn create_customer(
        &self,
        request: Request<pb::CreateCustomerRequest>,
    ) -> Result<Response<pb::Customer>, Status> {
        let request = request.into_inner();
        let customer = required("customer", request.customer.as_ref())?;
        let fields = self
            .rules
            .customer(raw_fields(customer, "customer")?)
            .map_err(within("customer"))?;
        let customer = self.store.create_customer(fields).await.or_status()?;
        Ok(Response::new(convert::customer(customer)))
    }

    async fn get_customer(
        &self,
        request: Request<pb::GetCustomerRequest>,
    ) -> Result<Response<pb::Customer>, Status> {
        let customer_id = id("id", &request.get_ref().id)?;
        let customer = self.store.get_customer(&customer_id).await.or_status()?;
        Ok(Response::new(convert::customer(customer)))
    }

    async fn update_customer(
        &self,
        request: Request<pb::UpdateCustomerRequest>,
    ) -> Result<Response<pb::Customer>, Status> {
        let request = request.into_inner();
        let customer = required("customer", request.customer.as_ref())?;
        let customer_id = id("customer.id", &customer.id)?;
        let mask = convert::customer_mask(mask_paths(request.update_mask.as_ref())?)?;
        let fields = self.masked_fields(raw_fields(customer, "customer")?, &mask)?;
        let customer = self
            .store
            .update_customer(&customer_id, &fields, &mask)
            .await
            .or_status()?;
        Ok(Response::new(convert::customer(customer)))
    }

    async fn delete_customer(
        &self,
        request: Request<pb::DeleteCustomerRequest>,
    ) -> Result<Response<pb::DeleteCustomerResponse>, Status> {
        let customer_id = id("id", &request.get_ref().id)?;
        let removed_assignments = self.store.delete_customer(&customer_id).await.or_status()?;
        Ok(Response::new(pb::DeleteCustomerResponse {
            removed_assignments,
        }))
    }

    async fn list_customers(
        &self,
        request: Request<pb::ListCustomersRequest>,
    ) -> Result<Response<pb::ListCustomersResponse>, Status> {
        let request = request.into_inner();
        let page = PageRequest::parse(request.page_size, &request.page_token).or_status()?;
        let non_empty = |value: &str| (!value.trim().is_empty()).then(|| value.to_owned());
        let filter = CustomerFilter {
            name_contains: non_empty(&request.name_contains),
            phone: non_empty(&request.phone)
                .map(|phone| self.rules.phone("phone", &phone))
                .transpose()
                .or_status()?,
            email: non_empty(&request.email)
                .map(|email| domain::email("email", &email))
                .transpose()
                .or_status()?,
            tag_id: non_empty(&request.tag_id)
                .map(|tag| id("tag_id", &tag))
                .transpose()?,
        };
        let page = self
            .store
            .list_customers(&filter, &page)
            .await
            .or_status()?;
        Ok(Response::new(pb::ListCustomersResponse {
            customers: page.items.into_iter().map(convert::customer).collect(),
            next_page_token: page.next_page_token,
        }))
    }

    async fn upsert_customers(
        &self,
        request: Request<pb::UpsertCustomersRequest>,
    ) -> Result<Response<pb::UpsertCustomersResponse>, Status> {
        let request = request.into_inner();
        if request.entries.len() > MAX_UPSERT_ENTRIES {
            return Err(convert::invalid(
                "entries",
                &format!(
                    "has {} entries; the limit is {MAX_UPSERT_ENTRIES}",
                    request.entries.len()
                ),
            ));
        }
        let mut entries = Vec::with_capacity(request.entries.len());
        for (index, entry) in request.entries.iter().enumerate() {
            let prefix = format!("entries[{index}]");
            let key = required(&format!("{prefix}.key"), entry.key.as_ref())?;
            let key = domain::external_id(
                &format!("{prefix}.key"),
                &domain::ExternalId {
                    channel: key.channel.clone(),
                    external_id: key.external_id.clone(),
                },
            )
            .or_status()?;
            let customer = entry.customer.clone().unwrap_or_default();
            let customer_prefix = format!("{prefix}.customer");
            let fields = partial_fields(
                &self.rules,
                raw_fields(&customer, &customer_prefix)?,
                &customer_prefix,
            )?;
            entries.push(UpsertEntry {
                key,
                fields,
                link_to: None,
            });
        }
        let results = self.store.upsert_customers(&entries).await.or_status()?;
        let mut response = pb::UpsertCustomersResponse::default();
        for result in results {
            let outcome = match result.outcome {
                UpsertOutcome::Created => {
                    response.created += 1;
                    pb::UpsertOutcome::Created
                }
                UpsertOutcome::Updated => {
                    response.updated += 1;
                    pb::UpsertOutcome::Updated
                }
                UpsertOutcome::Unchanged => {
                    response.unchanged += 1;
                    pb::UpsertOutcome::Unchanged
                }
            };
            response.results.push(pb::UpsertCustomerResult {
                customer_id: result.customer_id,
                outcome: outcome.into(),
            });
        }
        Ok(Response::new(response))
    }

    async fn get_field_history(
        &self,
        request: Request<pb::GetFieldHistoryRequest>,
    ) -> Result<Response<pb::GetFieldHistoryResponse>, Status> {
        let request = request.into_inner();
        let customer_id = id("customer_id", &request.customer_id)?;
        let page = PageRequest::parse(request.page_size, &request.page_token).or_status()?;
        let page = self
            .store
            .field_history(&customer_id, &page)
            .await
            .or_status()?;
        Ok(Response::new(pb::GetFieldHistoryResponse {
            entries: page
                .items
                .into_iter()
                .map(convert::field_history_entry)
                .collect(),
            next_page_token: page.next_page_token,
        }))
    }
}
