//! The order shape, tolerant of the usual field-name variants and of numbers
//! written as strings or as numbers, and its mapping to a record.

use serde::{Deserialize, Deserializer};
use tagd_plugin_api::{Customer, ExternalId, ImportRecord, Purchase, PurchaseItem, RowError};

/// A string, number or boolean as its text; `null` as empty. Objects and arrays are a type error.
fn text<'de, D: Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Scalar {
        S(String),
        N(serde_json::Number),
        B(bool),
        Null(()),
    }
    Ok(
        match Option::<Scalar>::deserialize(deserializer)
            .map_err(|_| serde::de::Error::custom("expected a string or a number"))?
        {
            Some(Scalar::S(s)) => s,
            Some(Scalar::N(n)) => n.to_string(),
            Some(Scalar::B(b)) => b.to_string(),
            Some(Scalar::Null(())) | None => String::new(),
        },
    )
}

/// A phone or email field that may be one string or a list.
fn texts<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(String),
        Many(Vec<String>),
        Null(()),
    }
    Ok(
        match OneOrMany::deserialize(deserializer)
            .map_err(|_| serde::de::Error::custom("expected a string or a list of strings"))?
        {
            OneOrMany::One(s) => vec![s],
            OneOrMany::Many(v) => v,
            OneOrMany::Null(()) => Vec::new(),
        },
    )
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Order {
    #[serde(
        alias = "id",
        alias = "order_no",
        alias = "orderId",
        alias = "tid",
        deserialize_with = "text"
    )]
    pub order_id: String,
    #[serde(
        alias = "time",
        alias = "order_time",
        alias = "paid_at",
        alias = "createdAt",
        alias = "created",
        deserialize_with = "text"
    )]
    pub created_at: String,
    #[serde(alias = "order_status", deserialize_with = "text")]
    pub status: String,
    #[serde(deserialize_with = "text")]
    pub currency: String,
    #[serde(
        alias = "total_amount",
        alias = "payment",
        alias = "amount",
        alias = "totalAmount",
        deserialize_with = "text"
    )]
    pub total: String,
    #[serde(alias = "customer", alias = "receiver")]
    pub buyer: Option<Buyer>,
    #[serde(
        alias = "lines",
        alias = "line_items",
        alias = "orders",
        alias = "products"
    )]
    pub items: Vec<Item>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Buyer {
    #[serde(
        alias = "buyer_id",
        alias = "user_id",
        alias = "customer_id",
        alias = "member_id",
        alias = "openid",
        alias = "nick",
        alias = "buyer_nick",
        deserialize_with = "text"
    )]
    pub id: String,
    #[serde(
        alias = "buyer_name",
        alias = "receiver_name",
        deserialize_with = "text"
    )]
    pub name: String,
    // Separate fields, not aliases: exports often carry several of them at once.
    #[serde(alias = "phone", deserialize_with = "texts")]
    pub phones: Vec<String>,
    #[serde(
        alias = "receiver_mobile",
        alias = "mobiles",
        deserialize_with = "texts"
    )]
    pub mobile: Vec<String>,
    #[serde(alias = "telephone", deserialize_with = "texts")]
    pub tel: Vec<String>,
    #[serde(alias = "email", deserialize_with = "texts")]
    pub emails: Vec<String>,
    #[serde(deserialize_with = "text")]
    pub gender: String,
    pub address: Option<Address>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Address {
    #[serde(alias = "state", deserialize_with = "text")]
    pub province: String,
    #[serde(deserialize_with = "text")]
    pub city: String,
    #[serde(alias = "county", deserialize_with = "text")]
    pub district: String,
    #[serde(
        alias = "street",
        alias = "address",
        alias = "line1",
        deserialize_with = "text"
    )]
    pub detail: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Item {
    #[serde(
        alias = "sku",
        alias = "sku_id",
        alias = "item_id",
        alias = "productId",
        deserialize_with = "text"
    )]
    pub product_id: String,
    #[serde(alias = "title", alias = "product_name", deserialize_with = "text")]
    pub name: String,
    #[serde(deserialize_with = "text")]
    pub category: String,
    #[serde(
        alias = "num",
        alias = "qty",
        alias = "count",
        deserialize_with = "text"
    )]
    pub quantity: String,
    #[serde(alias = "price", alias = "unitPrice", deserialize_with = "text")]
    pub unit_price: String,
}

impl Order {
    /// The record, or why the order cannot become one.
    pub fn record(
        self,
        position: u64,
        id_channel: &str,
        default_currency: &str,
    ) -> Result<ImportRecord, RowError> {
        if self.order_id.trim().is_empty() {
            return Err(RowError::new(
                position,
                "order_id",
                "order has no order_id",
                "",
            ));
        }
        let buyer = self.buyer.unwrap_or_default();
        let phones: Vec<String> = buyer
            .phones
            .into_iter()
            .chain(buyer.mobile)
            .chain(buyer.tel)
            .map(|p| p.trim().to_owned())
            .filter(|p| !p.is_empty())
            .collect();
        let emails: Vec<String> = buyer
            .emails
            .into_iter()
            .map(|e| e.trim().to_owned())
            .filter(|e| !e.is_empty())
            .collect();
        if buyer.id.trim().is_empty()
            && buyer.name.trim().is_empty()
            && phones.is_empty()
            && emails.is_empty()
        {
            return Err(RowError::new(
                position,
                "buyer",
                "order has no buyer id, name, phone or email",
                &self.order_id,
            ));
        }
        let address = buyer.address.unwrap_or_default();
        let (external_id, other_ids) = match (buyer.id.trim(), id_channel) {
            ("", _) => (String::new(), Vec::new()),
            (id, "") => (id.to_owned(), Vec::new()),
            (id, channel) => (
                String::new(),
                vec![ExternalId {
                    channel: channel.to_owned(),
                    id: id.to_owned(),
                }],
            ),
        };
        let currency = if self.currency.is_empty() {
            default_currency.to_owned()
        } else {
            self.currency
        };
        Ok(ImportRecord {
            position,
            external_id,
            other_ids,
            customer: Some(Customer {
                name: buyer.name,
                gender: buyer.gender,
                phones,
                emails,
                province: address.province,
                city: address.city,
                district: address.district,
                detail: address.detail,
                ..Customer::default()
            }),
            tags: Vec::new(),
            purchases: vec![Purchase {
                order_id: self.order_id,
                time: self.created_at,
                currency,
                total: self.total,
                items: self
                    .items
                    .into_iter()
                    .map(|i| PurchaseItem {
                        product_id: i.product_id,
                        name: i.name,
                        category: i.category,
                        quantity: i.quantity,
                        unit_price: i.unit_price,
                    })
                    .collect(),
                status: self.status,
            }],
            interactions: Vec::new(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_variants_and_numbers() {
        let order: Order = serde_json::from_str(
            r#"{"tid": 42, "payment": 19.9, "receiver": {"nick": "n", "mobile": "138"}, "orders": [{"sku": "A", "num": 2, "price": "9.95"}]}"#,
        )
        .unwrap();
        let record = order.record(1, "taobao", "CNY").unwrap();
        let p = &record.purchases[0];
        assert_eq!(
            (p.order_id.as_str(), p.total.as_str(), p.currency.as_str()),
            ("42", "19.9", "CNY")
        );
        assert_eq!(p.items[0].quantity, "2");
        assert_eq!(record.customer.unwrap().phones, vec!["138"]);
        assert_eq!(record.other_ids[0].id, "n");
        let bad: Result<Order, _> = serde_json::from_str(r#"{"order_id": {"x": 1}}"#);
        assert!(
            bad.unwrap_err()
                .to_string()
                .contains("expected a string or a number")
        );
    }
}
