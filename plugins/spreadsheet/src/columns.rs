//! Which field a column holds: built-in recognition of common headers, the
//! `map.<header>` options, and tag columns.

use tagd_plugin_api::Options;

/// What one column feeds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Field {
    Name,
    Gender,
    Birthday,
    Phone,
    Email,
    Province,
    City,
    District,
    Address,
    Company,
    ExternalId,
    /// Tags split on the separators, in the `tag_category` category.
    Tags,
    /// The cell is one tag (or several, split) of this category.
    TagCategory(String),
    Attribute(String),
    Ignore,
}

/// Headers compared after trimming, lower-casing and dropping spaces, `_`, `-`, `*` and `：`.
fn normalise(header: &str) -> String {
    header
        .trim()
        .chars()
        .filter(|c| {
            !c.is_whitespace()
                && !matches!(c, '_' | '-' | '*' | ':' | '：' | '(' | ')' | '（' | '）')
        })
        .flat_map(char::to_lowercase)
        .collect()
}

const KNOWN: &[(Field, &[&str])] = &[
    (
        Field::Name,
        &[
            "客户名称",
            "客户姓名",
            "姓名",
            "名称",
            "客户",
            "联系人",
            "名字",
            "name",
            "customername",
            "customer",
            "fullname",
            "contact",
            "contactname",
        ],
    ),
    (Field::Gender, &["性别", "gender", "sex"]),
    (
        Field::Birthday,
        &[
            "生日",
            "出生日期",
            "出生年月",
            "出生年月日",
            "birthday",
            "birthdate",
            "dateofbirth",
            "dob",
        ],
    ),
    (
        Field::Phone,
        &[
            "手机号",
            "手机",
            "手机号码",
            "电话",
            "联系电话",
            "电话号码",
            "移动电话",
            "联系方式",
            "phone",
            "mobile",
            "tel",
            "telephone",
            "phonenumber",
            "mobilephone",
            "cell",
            "cellphone",
        ],
    ),
    (
        Field::Email,
        &[
            "邮箱",
            "电子邮箱",
            "电子邮件",
            "邮件",
            "邮箱地址",
            "email",
            "e-mail",
            "mail",
            "emailaddress",
        ],
    ),
    (
        Field::Province,
        &["省份", "省", "所在省份", "省/直辖市", "province", "state"],
    ),
    (Field::City, &["城市", "市", "所在城市", "city"]),
    (
        Field::District,
        &["区县", "区", "县", "区/县", "district", "county"],
    ),
    (
        Field::Address,
        &[
            "地址",
            "详细地址",
            "联系地址",
            "街道地址",
            "收货地址",
            "address",
            "street",
            "streetaddress",
        ],
    ),
    (
        Field::Company,
        &[
            "公司",
            "公司名称",
            "单位",
            "工作单位",
            "企业",
            "企业名称",
            "company",
            "companyname",
            "organization",
            "organisation",
            "org",
            "employer",
        ],
    ),
    (
        Field::ExternalId,
        &[
            "客户编号",
            "客户id",
            "会员号",
            "会员编号",
            "会员id",
            "编号",
            "id",
            "customerid",
            "externalid",
            "memberid",
        ],
    ),
    (Field::Tags, &["标签", "客户标签", "tags", "tag", "labels"]),
];

/// The field of a header by built-in recognition; `标签:等级` / `tag:level` name a tag category.
pub fn recognise(header: &str) -> Option<Field> {
    let trimmed = header.trim();
    for prefix in ["标签:", "标签：", "标签-", "tag:", "Tag:", "TAG:"] {
        if let Some(category) = trimmed.strip_prefix(prefix) {
            return Some(Field::TagCategory(category.trim().to_owned()));
        }
    }
    let key = normalise(header);
    KNOWN
        .iter()
        .find(|(_, names)| names.iter().any(|n| normalise(n) == key))
        .map(|(field, _)| field.clone())
}

/// A `map.<header>` value.
fn parse_field(value: &str, header: &str) -> Result<Field, String> {
    let value = value.trim();
    let lower = value.to_ascii_lowercase();
    if let Some(category) = value.strip_prefix("tag:") {
        let category = if category.trim().is_empty() {
            header.trim()
        } else {
            category.trim()
        };
        return Ok(Field::TagCategory(category.to_owned()));
    }
    if let Some(key) = value.strip_prefix("attr:") {
        return Ok(Field::Attribute(key.trim().to_owned()));
    }
    Ok(match lower.as_str() {
        "name" => Field::Name,
        "gender" => Field::Gender,
        "birthday" => Field::Birthday,
        "phone" => Field::Phone,
        "email" => Field::Email,
        "province" => Field::Province,
        "city" => Field::City,
        "district" => Field::District,
        "address" | "detail" => Field::Address,
        "company" => Field::Company,
        "external_id" | "id" => Field::ExternalId,
        "tags" => Field::Tags,
        "ignore" | "" => Field::Ignore,
        _ => return Err(format!("option `map.{header}`: unknown field `{value}`")),
    })
}

/// The field of each column, from the header row and the options.
pub fn plan(headers: &[String], options: &Options) -> Result<Vec<Field>, String> {
    let keep_unmapped = options
        .flag("keep_unmapped", true)
        .map_err(|e| e.to_string())?;
    let tag_columns: Vec<&str> = options
        .get("tag_columns")
        .map(|v| v.split([',', '，']).map(str::trim).collect())
        .unwrap_or_default();
    let mut fields: Vec<Field> = headers
        .iter()
        .map(|h| {
            if tag_columns.contains(&h.trim()) {
                Field::TagCategory(h.trim().to_owned())
            } else {
                recognise(h).unwrap_or_else(|| {
                    if keep_unmapped && !h.trim().is_empty() {
                        Field::Attribute(h.trim().to_owned())
                    } else {
                        Field::Ignore
                    }
                })
            }
        })
        .collect();
    for (header, value) in options.with_prefix("map.") {
        // Every column of that header: a merged header cell names several.
        let field = parse_field(value, header)?;
        let mut found = false;
        for (column, h) in headers.iter().enumerate() {
            if h.trim() == header.trim() {
                fields[column] = field.clone();
                found = true;
            }
        }
        if !found {
            return Err(format!(
                "option `map.{header}`: no column `{header}` in the header row ({})",
                headers.join(", ")
            ));
        }
    }
    for wanted in &tag_columns {
        if !headers.iter().any(|h| h.trim() == *wanted) {
            return Err(format!(
                "option `tag_columns`: no column `{wanted}` in the header row ({})",
                headers.join(", ")
            ));
        }
    }
    if !fields.iter().any(|f| {
        matches!(
            f,
            Field::Name | Field::Phone | Field::Email | Field::ExternalId
        )
    }) {
        return Err(format!(
            "missing required columns: the header row ({}) has no name, phone, email or customer id column (map one with map.<header>=name)",
            headers.join(", ")
        ));
    }
    Ok(fields)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_chinese_and_english_headers() {
        assert_eq!(recognise(" 客户名称 "), Some(Field::Name));
        assert_eq!(recognise("手机号码"), Some(Field::Phone));
        assert_eq!(recognise("E-mail"), Some(Field::Email));
        assert_eq!(recognise("Date of Birth"), Some(Field::Birthday));
        assert_eq!(recognise("customer_id"), Some(Field::ExternalId));
        assert_eq!(
            recognise("标签：客户等级"),
            Some(Field::TagCategory("客户等级".to_owned()))
        );
        assert_eq!(recognise("备注"), None);
    }

    #[test]
    fn options_override_and_check() {
        let headers: Vec<String> = ["会员名", "等级", "备注"].map(str::to_owned).to_vec();
        let options = Options::new(
            [
                ("map.会员名", "name"),
                ("tag_columns", "等级"),
                ("map.备注", "attr:note"),
            ]
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .into(),
        );
        let fields = plan(&headers, &options).unwrap();
        assert_eq!(
            fields,
            vec![
                Field::Name,
                Field::TagCategory("等级".to_owned()),
                Field::Attribute("note".to_owned())
            ]
        );
        let missing = plan(&headers, &Options::default()).unwrap_err();
        assert!(missing.starts_with("missing required columns"), "{missing}");
        let bad = Options::new([("map.nope".to_owned(), "name".to_owned())].into());
        assert!(
            plan(&headers, &bad)
                .unwrap_err()
                .contains("no column `nope`")
        );
    }
}
