//! One data row (cells as text) → an import record, by the column plan.

use tagd_plugin_api::{Customer, ImportRecord, RowError, Tag};

use crate::columns::Field;

/// What turns cells into records.
#[derive(Debug)]
pub struct RowMapper {
    pub headers: Vec<String>,
    pub fields: Vec<Field>,
    pub tag_separators: Vec<char>,
    pub tag_category: String,
}

/// Several phones or emails in one cell.
const LIST_SEPARATORS: &[char] = &[',', '，', ';', '；', '/', '、', '|'];

fn push_split(list: &mut Vec<String>, cell: &str) {
    list.extend(
        cell.split(LIST_SEPARATORS)
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned),
    );
}

impl RowMapper {
    fn split_tags<'a>(&'a self, cell: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        cell.split(self.tag_separators.as_slice())
            .map(str::trim)
            .filter(|s| !s.is_empty())
    }

    /// `None` for a row whose cells are all blank (skipped silently).
    pub fn record(
        &self,
        position: u64,
        cells: &[String],
    ) -> Option<Result<ImportRecord, RowError>> {
        if cells.iter().all(|c| c.trim().is_empty()) {
            return None;
        }
        let mut customer = Customer::default();
        let mut record = ImportRecord {
            position,
            ..ImportRecord::default()
        };
        let mut address = Vec::new();
        for (column, cell) in cells.iter().enumerate() {
            let Some(field) = self.fields.get(column) else {
                if !cell.trim().is_empty() {
                    customer
                        .attributes
                        .insert(format!("column_{}", column + 1), cell.trim().to_owned());
                }
                continue;
            };
            if cell.contains('\u{fffd}') {
                let header = self.headers.get(column).cloned().unwrap_or_default();
                return Some(Err(RowError::new(
                    position,
                    header,
                    "not valid text in the file's encoding (set the `encoding` option)",
                    cell,
                )));
            }
            let value = cell.trim();
            if value.is_empty() {
                continue;
            }
            let set = |slot: &mut String| {
                if slot.is_empty() {
                    value.clone_into(slot);
                }
            };
            match field {
                Field::Name => set(&mut customer.name),
                Field::Gender => set(&mut customer.gender),
                Field::Birthday => set(&mut customer.birthday),
                Field::Phone => push_split(&mut customer.phones, value),
                Field::Email => push_split(&mut customer.emails, value),
                Field::Province => set(&mut customer.province),
                Field::City => set(&mut customer.city),
                Field::District => set(&mut customer.district),
                Field::Address => address.push(value.to_owned()),
                Field::Company => set(&mut customer.company),
                Field::ExternalId => set(&mut record.external_id),
                Field::Tags => record.tags.extend(
                    self.split_tags(value)
                        .map(|t| Tag::new(self.tag_category.clone(), t)),
                ),
                Field::TagCategory(category) => record.tags.extend(
                    self.split_tags(value)
                        .map(|t| Tag::new(category.clone(), t)),
                ),
                Field::Attribute(key) => {
                    customer.attributes.insert(key.clone(), value.to_owned());
                }
                Field::Ignore => {}
            }
        }
        customer.detail = address.join(" ");
        if customer.name.is_empty()
            && customer.phones.is_empty()
            && customer.emails.is_empty()
            && record.external_id.is_empty()
        {
            return Some(Err(RowError::new(
                position,
                "",
                "row has no name, phone, email or customer id",
                &cells.join(","),
            )));
        }
        record.customer = Some(customer);
        Some(Ok(record))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mapper() -> RowMapper {
        RowMapper {
            headers: vec![],
            fields: vec![
                Field::Name,
                Field::Phone,
                Field::Tags,
                Field::TagCategory("等级".to_owned()),
                Field::Address,
                Field::Address,
            ],
            tag_separators: vec![',', '，', '、'],
            tag_category: String::new(),
        }
    }

    fn cells(values: &[&str]) -> Vec<String> {
        values.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn maps_cells() {
        let record = mapper()
            .record(
                3,
                &cells(&[
                    "张三",
                    "138/139",
                    "VIP，老客户、 ",
                    "金牌",
                    "人民路",
                    "1号",
                    "extra",
                ]),
            )
            .unwrap()
            .unwrap();
        let c = record.customer.unwrap();
        assert_eq!(c.phones, vec!["138", "139"]);
        assert_eq!(c.detail, "人民路 1号");
        assert_eq!(c.attributes["column_7"], "extra");
        let tags: Vec<_> = record
            .tags
            .iter()
            .map(|t| (t.category.as_str(), t.name.as_str()))
            .collect();
        assert_eq!(tags, vec![("", "VIP"), ("", "老客户"), ("等级", "金牌")]);
    }

    #[test]
    fn blank_and_anonymous_rows() {
        assert!(mapper().record(1, &cells(&["", " "])).is_none());
        let err = mapper()
            .record(2, &cells(&["", "", "VIP"]))
            .unwrap()
            .unwrap_err();
        assert!(err.reason.contains("no name"));
        assert!(
            mapper()
                .record(2, &cells(&["张\u{fffd}"]))
                .unwrap()
                .is_err()
        );
    }
}
