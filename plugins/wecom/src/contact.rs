//! The WeCom response shapes (see shared `formats/WECOM.md`) and their mapping
//! to an import record. Unknown fields are ignored; every field is optional so
//! one missing field is a row error at most, never a parse failure.

use std::collections::{BTreeMap, BTreeSet};

use serde::Deserialize;
use tagd_plugin_api::{Customer, ExternalId, ImportRecord, Interaction, RowError, Tag};

/// One element of the file: a `get` response, a `batch/get_by_user` item, or a whole batch response.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Element {
    pub errcode: i64,
    pub errmsg: String,
    pub external_contact: Option<Contact>,
    pub follow_user: Vec<Follower>,
    pub follow_info: Option<Follower>,
    pub external_contact_list: Option<Vec<Element>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Contact {
    pub external_userid: String,
    pub name: String,
    #[serde(rename = "type")]
    pub kind: i64,
    pub gender: i64,
    pub unionid: String,
    pub position: String,
    pub corp_name: String,
    pub corp_full_name: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Follower {
    pub userid: String,
    pub remark: String,
    pub description: String,
    pub createtime: i64,
    pub tags: Vec<FollowerTag>,
    /// Batch form: company tag ids only.
    pub tag_id: Vec<String>,
    pub remark_corp_name: String,
    pub remark_mobiles: Vec<String>,
    pub add_way: i64,
    pub state: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct FollowerTag {
    pub group_name: String,
    pub tag_name: String,
    #[serde(rename = "type")]
    pub kind: i64,
}

/// `get_corp_tag_list`: tag id → (group name, tag name).
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct TagLibrary {
    tag_group: Vec<TagGroup>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct TagGroup {
    group_name: String,
    tag: Vec<LibraryTag>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct LibraryTag {
    id: String,
    name: String,
}

impl TagLibrary {
    pub fn names(&self) -> BTreeMap<String, (String, String)> {
        self.tag_group
            .iter()
            .flat_map(|g| {
                g.tag
                    .iter()
                    .map(|t| (t.id.clone(), (g.group_name.clone(), t.name.clone())))
            })
            .collect()
    }
}

/// How contacts become records.
#[derive(Debug, Default)]
pub struct Mapping {
    pub tag_names: BTreeMap<String, (String, String)>,
    pub personal_tags: bool,
    pub source_tags: bool,
}

pub const ADD_WAY_CATEGORY: &str = "添加方式";
pub const STATE_CATEGORY: &str = "渠道活码";

fn add_way_label(code: i64) -> Option<&'static str> {
    Some(match code {
        1 => "扫描二维码",
        2 => "搜索手机号",
        3 => "名片分享",
        4 => "群聊",
        5 => "手机通讯录",
        6 => "微信联系人",
        7 => "微信好友申请",
        8 => "第三方应用",
        9 => "搜索邮箱",
        201 => "内部成员共享",
        202 => "管理员分配",
        _ => return None,
    })
}

fn gender(code: i64) -> &'static str {
    match code {
        1 => "male",
        2 => "female",
        _ => "",
    }
}

/// Unix seconds as RFC 3339 UTC; empty for 0 or out of range.
fn unix_time(secs: i64) -> String {
    if secs <= 0 {
        return String::new();
    }
    chrono::DateTime::from_timestamp(secs, 0)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_default()
}

impl Mapping {
    /// One contact with its followers → a record, plus row errors that do not sink it.
    pub fn record(
        &self,
        position: u64,
        contact: Contact,
        followers: Vec<Follower>,
    ) -> (Result<ImportRecord, RowError>, Vec<RowError>) {
        if contact.external_userid.trim().is_empty() {
            return (
                Err(RowError::new(
                    position,
                    "external_contact.external_userid",
                    "missing external_userid",
                    &contact.name,
                )),
                Vec::new(),
            );
        }
        let mut warnings = Vec::new();
        let mut customer = Customer {
            name: contact.name,
            gender: gender(contact.gender).to_owned(),
            company: if contact.corp_full_name.is_empty() {
                contact.corp_name
            } else {
                contact.corp_full_name
            },
            ..Customer::default()
        };
        if !contact.position.is_empty() {
            customer
                .attributes
                .insert("position".to_owned(), contact.position);
        }
        match contact.kind {
            1 => customer
                .attributes
                .insert("wecom_type".to_owned(), "wechat".to_owned()),
            2 => customer
                .attributes
                .insert("wecom_type".to_owned(), "wecom".to_owned()),
            _ => None,
        };
        let mut tags = BTreeSet::new();
        let mut interactions = Vec::new();
        for follower in followers {
            for phone in follower.remark_mobiles {
                let phone = phone.trim().to_owned();
                if !phone.is_empty() && !customer.phones.contains(&phone) {
                    customer.phones.push(phone);
                }
            }
            if customer.company.is_empty() && !follower.remark_corp_name.is_empty() {
                customer.company = follower.remark_corp_name;
            }
            for tag in follower.tags {
                if (tag.kind != 2 || self.personal_tags) && !tag.tag_name.trim().is_empty() {
                    tags.insert((tag.group_name, tag.tag_name));
                }
            }
            for id in follower.tag_id {
                match self.tag_names.get(&id) {
                    Some(names) => {
                        tags.insert(names.clone());
                    }
                    None => warnings.push(RowError::new(
                        position,
                        "follow_info.tag_id",
                        "tag id not in the tag library (pass a get_corp_tag_list response as option tag_library)",
                        &id,
                    )),
                }
            }
            if self.source_tags {
                if let Some(label) = add_way_label(follower.add_way) {
                    tags.insert((ADD_WAY_CATEGORY.to_owned(), label.to_owned()));
                }
                if !follower.state.trim().is_empty() {
                    tags.insert((STATE_CATEGORY.to_owned(), follower.state.trim().to_owned()));
                }
            }
            let mut summary = "添加为企业微信联系人".to_owned();
            if !follower.remark.is_empty() {
                summary.push_str(&format!("（备注：{}）", follower.remark));
            }
            interactions.push(Interaction {
                time: unix_time(follower.createtime),
                channel: "wecom".to_owned(),
                direction: String::new(),
                staff: follower.userid,
                summary,
                outcome: follower.description,
                next_follow_up: String::new(),
            });
        }
        let other_ids = if contact.unionid.is_empty() {
            Vec::new()
        } else {
            vec![ExternalId {
                channel: "wechat_unionid".to_owned(),
                id: contact.unionid,
            }]
        };
        let record = ImportRecord {
            position,
            external_id: contact.external_userid,
            other_ids,
            customer: Some(customer),
            tags: tags
                .into_iter()
                .map(|(category, name)| Tag::new(category, name))
                .collect(),
            purchases: Vec::new(),
            interactions,
        };
        (Ok(record), warnings)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_and_labels() {
        assert_eq!(unix_time(1_700_000_000), "2023-11-14T22:13:20Z");
        assert_eq!(unix_time(0), "");
        assert_eq!(unix_time(i64::MAX), "");
        assert_eq!(add_way_label(202), Some("管理员分配"));
        assert_eq!(gender(2), "female");
    }
}
