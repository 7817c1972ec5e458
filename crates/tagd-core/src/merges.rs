//! Merging duplicate customers: which one survives, how each field of the
//! survivor is filled, and which tags it keeps. Pure: the store applies the plan.

use std::collections::{BTreeMap, HashMap};
use std::str::FromStr;

use chrono::NaiveDateTime;

use crate::customers::{Customer, CustomerFields, Gender};
use crate::error::{DomainError, DomainResult};

/// The most customers one merge may join (a cluster of identical records is merged in one go).
pub const MAX_MERGE_CUSTOMERS: usize = 1_000;

/// Which of the merged customers keeps its id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SurvivorRule {
    /// The one with the most filled fields (ties: the oldest).
    #[default]
    MostComplete,
    /// The one created first.
    Oldest,
    /// The one updated last.
    MostRecentlyUpdated,
}

impl SurvivorRule {
    pub fn as_str(self) -> &'static str {
        match self {
            SurvivorRule::MostComplete => "most_complete",
            SurvivorRule::Oldest => "oldest",
            SurvivorRule::MostRecentlyUpdated => "most_recently_updated",
        }
    }
}

impl FromStr for SurvivorRule {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "most_complete" => SurvivorRule::MostComplete,
            "oldest" => SurvivorRule::Oldest,
            "most_recently_updated" => SurvivorRule::MostRecentlyUpdated,
            other => {
                return Err(format!(
                    "unknown survivor rule {other:?}: expected most_complete, oldest or most_recently_updated"
                ));
            }
        })
    }
}

/// Where a pair in the dedupe review queue stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CandidateState {
    Open,
    Merged,
    NotDuplicate,
}

impl CandidateState {
    pub fn as_str(self) -> &'static str {
        match self {
            CandidateState::Open => "open",
            CandidateState::Merged => "merged",
            CandidateState::NotDuplicate => "not_duplicate",
        }
    }
}

impl FromStr for CandidateState {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "open" => CandidateState::Open,
            "merged" => CandidateState::Merged,
            "not_duplicate" => CandidateState::NotDuplicate,
            other => return Err(format!("unknown candidate state {other:?}")),
        })
    }
}

/// Checks a dedupe run's thresholds: each in 0..=1, review at most merge.
pub fn check_thresholds(merge: f64, review: f64) -> DomainResult<()> {
    for (field, value) in [("merge_threshold", merge), ("review_threshold", review)] {
        if !(0.0..=1.0).contains(&value) || value.is_nan() {
            return Err(DomainError::invalid(
                field,
                format!("{value} is outside 0..=1"),
            ));
        }
    }
    if review > merge {
        return Err(DomainError::invalid(
            "review_threshold",
            format!(
                "{review} is above merge_threshold {merge}: pairs must be reviewed below where they are merged"
            ),
        ));
    }
    Ok(())
}

/// Checks the ids of one merge: at least two, no repeats, at most [`MAX_MERGE_CUSTOMERS`],
/// and the chosen survivor (if any) among them.
pub fn check_merge_ids(field: &str, ids: &[String], survivor: Option<&str>) -> DomainResult<()> {
    if ids.len() < 2 {
        return Err(DomainError::invalid(
            field,
            "a merge needs at least two different customers",
        ));
    }
    if ids.len() > MAX_MERGE_CUSTOMERS {
        return Err(DomainError::invalid(
            field,
            format!(
                "{} customers is more than the {MAX_MERGE_CUSTOMERS} one merge may join",
                ids.len()
            ),
        ));
    }
    let mut seen: HashMap<&str, usize> = HashMap::new();
    for (index, id) in ids.iter().enumerate() {
        if id.trim().is_empty() {
            return Err(DomainError::invalid(
                format!("{field}[{index}]"),
                "is empty",
            ));
        }
        if let Some(first) = seen.insert(id, index) {
            return Err(DomainError::invalid(
                format!("{field}[{index}]"),
                format!("repeats {field}[{first}]: a customer cannot be merged with itself"),
            ));
        }
    }
    if let Some(survivor) = survivor.filter(|s| !s.is_empty())
        && !seen.contains_key(survivor)
    {
        return Err(DomainError::invalid(
            "survivor_id",
            format!("{survivor:?} is not one of the customers being merged"),
        ));
    }
    Ok(())
}

/// How many of the customer's fields hold something.
pub fn completeness(fields: &CustomerFields) -> usize {
    let filled = [
        !fields.name.is_empty(),
        fields.gender != Gender::Unspecified,
        fields.birthday.is_some(),
        !fields.address.province.is_empty(),
        !fields.address.city.is_empty(),
        !fields.address.district.is_empty(),
        !fields.address.detail.is_empty(),
        !fields.company.is_empty(),
        !fields.source_channel.is_empty(),
    ];
    filled.iter().filter(|f| **f).count()
        + fields.phones.len()
        + fields.emails.len()
        + fields.external_ids.len()
        + fields.attributes.len()
}

/// The index of the customer that survives under `rule`. Ties go to the oldest, then the smallest id,
/// so the choice never depends on the order the customers were given in.
pub fn choose_survivor(customers: &[Customer], rule: SurvivorRule) -> usize {
    let oldest_first = |a: &Customer, b: &Customer| {
        a.created_at
            .cmp(&b.created_at)
            .then_with(|| a.id.cmp(&b.id))
    };
    let best = customers
        .iter()
        .enumerate()
        .min_by(|(_, a), (_, b)| match rule {
            SurvivorRule::MostComplete => completeness(&b.fields)
                .cmp(&completeness(&a.fields))
                .then_with(|| oldest_first(a, b)),
            SurvivorRule::Oldest => oldest_first(a, b),
            SurvivorRule::MostRecentlyUpdated => b
                .updated_at
                .cmp(&a.updated_at)
                .then_with(|| oldest_first(a, b)),
        });
    best.map_or(0, |(index, _)| index)
}

/// The survivor's fields after the merge: its own non-empty values stay; an empty one is
/// filled from the most recently updated other customer that has it; phones, emails,
/// external ids and attributes are unioned (the survivor's attribute wins on a shared key).
pub fn merge_fields(survivor: &Customer, others: &[&Customer]) -> CustomerFields {
    let mut donors: Vec<&Customer> = others.to_vec();
    donors.sort_by(|a, b| {
        b.updated_at
            .cmp(&a.updated_at)
            .then_with(|| a.id.cmp(&b.id))
    });
    let mut merged = survivor.fields.clone();
    for donor in donors {
        let from = &donor.fields;
        fill(&mut merged.name, &from.name);
        if merged.gender == Gender::Unspecified {
            merged.gender = from.gender;
        }
        if merged.birthday.is_none() {
            merged.birthday = from.birthday;
        }
        // The address parts travel together: a city without its province would mislead.
        if merged.address.province.is_empty() && merged.address.city.is_empty() {
            merged.address.province.clone_from(&from.address.province);
            merged.address.city.clone_from(&from.address.city);
            merged.address.district.clone_from(&from.address.district);
            merged.address.detail.clone_from(&from.address.detail);
        }
        // A district or street only fills in an address of the same province and city.
        if merged.address.province == from.address.province
            && merged.address.city == from.address.city
        {
            fill(&mut merged.address.district, &from.address.district);
            fill(&mut merged.address.detail, &from.address.detail);
        }
        fill(&mut merged.company, &from.company);
        fill(&mut merged.source_channel, &from.source_channel);
        for phone in &from.phones {
            if !merged.phones.contains(phone) {
                merged.phones.push(phone.clone());
            }
        }
        for email in &from.emails {
            if !merged.emails.contains(email) {
                merged.emails.push(email.clone());
            }
        }
        for id in &from.external_ids {
            if !merged.external_ids.contains(id) {
                merged.external_ids.push(id.clone());
            }
        }
        for (key, value) in &from.attributes {
            merged
                .attributes
                .entry(key.clone())
                .or_insert_with(|| value.clone());
        }
    }
    merged
}

fn fill(target: &mut String, value: &str) {
    if target.is_empty() && !value.is_empty() {
        value.clone_into(target);
    }
}

/// A live tag held by one of the merged customers, as far as choosing between tags needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeldTag {
    pub customer_id: String,
    pub tag_id: String,
    pub category_id: String,
    pub exclusive: bool,
    pub assigned_at: NaiveDateTime,
}

/// Which of `held` the survivor keeps: per tag the most recently assigned (the survivor's own on a tie),
/// and in an exclusive category only the most recent of those. Returns indexes into `held`, in order.
pub fn surviving_tags(held: &[HeldTag], survivor_id: &str) -> Vec<usize> {
    // Newer first; on equal times the survivor's own assignment first, then by customer id.
    let newer = |a: &HeldTag, b: &HeldTag| {
        b.assigned_at
            .cmp(&a.assigned_at)
            .then_with(|| (b.customer_id == survivor_id).cmp(&(a.customer_id == survivor_id)))
            .then_with(|| a.customer_id.cmp(&b.customer_id))
            .then_with(|| a.tag_id.cmp(&b.tag_id))
    };
    let mut best_per_tag: BTreeMap<&str, usize> = BTreeMap::new();
    for (index, tag) in held.iter().enumerate() {
        best_per_tag
            .entry(&tag.tag_id)
            .and_modify(|best| {
                if newer(tag, &held[*best]).is_lt() {
                    *best = index;
                }
            })
            .or_insert(index);
    }
    let mut best_per_exclusive_category: BTreeMap<&str, usize> = BTreeMap::new();
    let mut kept = Vec::new();
    for index in best_per_tag.into_values() {
        let tag = &held[index];
        if tag.exclusive {
            best_per_exclusive_category
                .entry(&tag.category_id)
                .and_modify(|best| {
                    if newer(tag, &held[*best]).is_lt() {
                        *best = index;
                    }
                })
                .or_insert(index);
        } else {
            kept.push(index);
        }
    }
    kept.extend(best_per_exclusive_category.into_values());
    kept.sort_unstable();
    kept
}

/// What undoing a merge does with one of the survivor's values: restore the value from before
/// the merge only where nobody changed it since (a later edit wins over the undo).
pub fn restore_if_unchanged<T: PartialEq + Clone>(before: &T, merged: &T, now: &T) -> T {
    if now == merged {
        before.clone()
    } else {
        now.clone()
    }
}

/// Undoes a list union: removes what the merge added (if still there), keeps later additions.
pub fn remove_added<T: PartialEq + Clone>(before: &[T], merged: &[T], now: &[T]) -> Vec<T> {
    now.iter()
        .filter(|item| before.contains(item) || !merged.contains(item))
        .cloned()
        .collect()
}

/// The survivor's fields after an undo: each field the merge changed goes back to its value from
/// before, unless it was edited since; list items the merge brought in are removed.
pub fn unmerge_fields(
    before: &CustomerFields,
    merged: &CustomerFields,
    now: &CustomerFields,
) -> CustomerFields {
    let mut restored = now.clone();
    restored.name = restore_if_unchanged(&before.name, &merged.name, &now.name);
    restored.gender = restore_if_unchanged(&before.gender, &merged.gender, &now.gender);
    restored.birthday = restore_if_unchanged(&before.birthday, &merged.birthday, &now.birthday);
    restored.address = restore_if_unchanged(&before.address, &merged.address, &now.address);
    restored.company = restore_if_unchanged(&before.company, &merged.company, &now.company);
    restored.source_channel = restore_if_unchanged(
        &before.source_channel,
        &merged.source_channel,
        &now.source_channel,
    );
    restored.phones = remove_added(&before.phones, &merged.phones, &now.phones);
    restored.emails = remove_added(&before.emails, &merged.emails, &now.emails);
    restored.external_ids = remove_added(
        &before.external_ids,
        &merged.external_ids,
        &now.external_ids,
    );
    let mut attributes = now.attributes.clone();
    for (key, merged_value) in &merged.attributes {
        if before.attributes.get(key) == Some(merged_value) {
            continue;
        }
        // The merge brought this key in: drop it unless it was changed since.
        if attributes.get(key) == Some(merged_value) {
            attributes.remove(key);
        }
    }
    restored.attributes = attributes;
    restored
}

#[cfg(test)]
mod tests {
    use chrono::NaiveDate;

    use super::*;
    use crate::customers::{Address, ExternalId};

    fn at(day: u32) -> NaiveDateTime {
        NaiveDate::from_ymd_opt(2026, 1, day)
            .and_then(|d| d.and_hms_opt(0, 0, 0))
            .expect("valid date")
    }

    fn customer(id: &str, created: u32, updated: u32, fields: CustomerFields) -> Customer {
        Customer {
            id: id.to_owned(),
            fields,
            created_at: at(created),
            updated_at: at(updated),
        }
    }

    fn named(name: &str) -> CustomerFields {
        CustomerFields {
            name: name.to_owned(),
            ..CustomerFields::default()
        }
    }

    #[test]
    fn merge_ids_need_two_distinct_customers_and_a_member_survivor() {
        let ids = |list: &[&str]| list.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        assert!(check_merge_ids("customer_ids", &ids(&["a"]), None).is_err());
        let repeat = check_merge_ids("customer_ids", &ids(&["a", "b", "a"]), None)
            .expect_err("a repeat is refused");
        assert_eq!(repeat.parts().0, "customer_ids[2]");
        assert!(check_merge_ids("customer_ids", &ids(&["a", "b"]), Some("c")).is_err());
        assert!(check_merge_ids("customer_ids", &ids(&["a", "b"]), Some("b")).is_ok());
        assert!(check_merge_ids("customer_ids", &ids(&["a", " "]), None).is_err());
    }

    #[test]
    fn thresholds_must_be_probabilities_with_review_below_merge() {
        assert!(check_thresholds(0.95, 0.5).is_ok());
        assert!(check_thresholds(0.5, 0.5).is_ok());
        assert_eq!(
            check_thresholds(1.5, 0.5).expect_err("above 1").parts().0,
            "merge_threshold"
        );
        assert_eq!(
            check_thresholds(0.9, -0.1).expect_err("below 0").parts().0,
            "review_threshold"
        );
        assert!(check_thresholds(0.6, 0.7).is_err());
        assert!(check_thresholds(f64::NAN, 0.5).is_err());
    }

    #[test]
    fn survivor_rules_pick_as_named_and_ties_do_not_depend_on_order() {
        let mut rich = named("张伟");
        rich.phones = vec!["+8613800138000".into()];
        let customers = vec![
            customer("b", 2, 9, named("张伟")),
            customer("a", 3, 4, rich),
            customer("c", 1, 5, named("张伟")),
        ];
        assert_eq!(choose_survivor(&customers, SurvivorRule::MostComplete), 1);
        assert_eq!(choose_survivor(&customers, SurvivorRule::Oldest), 2);
        assert_eq!(
            choose_survivor(&customers, SurvivorRule::MostRecentlyUpdated),
            0
        );
        let tied = vec![
            customer("y", 1, 1, named("x")),
            customer("x", 1, 1, named("x")),
        ];
        assert_eq!(choose_survivor(&tied, SurvivorRule::Oldest), 1);
        let reversed = vec![tied[1].clone(), tied[0].clone()];
        assert_eq!(choose_survivor(&reversed, SurvivorRule::Oldest), 0);
    }

    #[test]
    fn merged_fields_keep_the_survivors_values_and_union_the_lists() {
        let mut survivor_fields = named("张伟");
        survivor_fields.phones = vec!["+8613800138000".into()];
        survivor_fields
            .attributes
            .insert("会员等级".into(), "金卡".into());
        let mut older = named("Zhang Wei");
        older.phones = vec!["+8613800138000".into(), "+8613900139000".into()];
        older.emails = vec!["zw@example.com".into()];
        older.birthday = NaiveDate::from_ymd_opt(1990, 1, 2);
        older.address = Address {
            province: "广东".into(),
            city: "深圳".into(),
            district: String::new(),
            detail: "科技园".into(),
        };
        older.external_ids = vec![ExternalId {
            channel: "wecom".into(),
            external_id: "wm1".into(),
        }];
        older.attributes.insert("会员等级".into(), "银卡".into());
        older.attributes.insert("来源活动".into(), "双11".into());
        let survivor = customer("s", 1, 5, survivor_fields);
        let other = customer("o", 2, 3, older);
        let merged = merge_fields(&survivor, &[&other]);
        assert_eq!(merged.name, "张伟");
        assert_eq!(merged.phones, vec!["+8613800138000", "+8613900139000"]);
        assert_eq!(merged.emails, vec!["zw@example.com"]);
        assert_eq!(merged.birthday, NaiveDate::from_ymd_opt(1990, 1, 2));
        assert_eq!(merged.address.city, "深圳");
        assert_eq!(merged.external_ids.len(), 1);
        assert_eq!(merged.attributes["会员等级"], "金卡");
        assert_eq!(merged.attributes["来源活动"], "双11");
    }

    #[test]
    fn address_parts_are_never_mixed_across_cities() {
        let mut survivor_fields = named("张伟");
        survivor_fields.address.province = "广东".into();
        survivor_fields.address.city = "深圳".into();
        let mut elsewhere = named("张伟");
        elsewhere.address = Address {
            province: "北京".into(),
            city: "北京".into(),
            district: "朝阳区".into(),
            detail: "建国路 1 号".into(),
        };
        let mut same_city = named("张伟");
        same_city.address = Address {
            province: "广东".into(),
            city: "深圳".into(),
            district: "南山区".into(),
            detail: String::new(),
        };
        let survivor = customer("s", 1, 1, survivor_fields);
        let beijing = customer("b", 2, 9, elsewhere);
        let shenzhen = customer("z", 2, 3, same_city);
        let merged = merge_fields(&survivor, &[&beijing, &shenzhen]);
        assert_eq!(merged.address.city, "深圳");
        assert_eq!(
            merged.address.district, "南山区",
            "from the donor in the same city"
        );
        assert_eq!(merged.address.detail, "", "never a street of another city");
    }

    #[test]
    fn surviving_tags_keep_the_newest_and_one_per_exclusive_category() {
        let held = |customer: &str, tag: &str, category: &str, exclusive: bool, day: u32| HeldTag {
            customer_id: customer.into(),
            tag_id: tag.into(),
            category_id: category.into(),
            exclusive,
            assigned_at: at(day),
        };
        let tags = vec![
            held("s", "vip", "level", true, 1),
            held("o", "normal", "level", true, 5),
            held("s", "likes-tea", "interest", false, 2),
            held("o", "likes-tea", "interest", false, 7),
            held("o", "likes-coffee", "interest", false, 3),
            held("s", "churn", "risk", false, 4),
            held("o", "churn", "risk", false, 4),
        ];
        let kept = surviving_tags(&tags, "s");
        assert_eq!(kept, vec![1, 3, 4, 5]);
    }

    #[test]
    fn unmerge_restores_untouched_fields_and_keeps_later_edits() {
        let mut before = named("张伟");
        before.phones = vec!["+8613800138000".into()];
        let mut merged = before.clone();
        merged.company = "腾讯".into();
        merged.phones.push("+8613900139000".into());
        merged.attributes.insert("来源活动".into(), "双11".into());
        assert_eq!(unmerge_fields(&before, &merged, &merged), before);

        let mut edited = merged.clone();
        edited.company = "阿里".into();
        edited.phones.push("+8613700137000".into());
        let restored = unmerge_fields(&before, &merged, &edited);
        assert_eq!(restored.company, "阿里");
        assert_eq!(restored.phones, vec!["+8613800138000", "+8613700137000"]);
        assert!(restored.attributes.is_empty());
    }

    mod properties {
        use proptest::prelude::*;

        use super::*;

        fn fields() -> impl Strategy<Value = CustomerFields> {
            (
                prop::option::of("[张王李]{1,3}"),
                prop::collection::vec("\\+86138[0-9]{2}", 0..3),
                prop::collection::vec("[a-c]@x\\.cn", 0..3),
                prop::collection::vec(("[ab]", "[0-9]{1,2}"), 0..3),
                prop::collection::btree_map("[k-m]", "[0-9]", 0..3),
                prop::option::of("[甲乙]"),
            )
                .prop_map(|(name, phones, emails, ids, attributes, company)| {
                    let mut fields = CustomerFields {
                        name: name.unwrap_or_default(),
                        company: company.unwrap_or_default(),
                        attributes,
                        ..CustomerFields::default()
                    };
                    for phone in phones {
                        if !fields.phones.contains(&phone) {
                            fields.phones.push(phone);
                        }
                    }
                    for email in emails {
                        if !fields.emails.contains(&email) {
                            fields.emails.push(email);
                        }
                    }
                    for (channel, external_id) in ids {
                        let id = ExternalId {
                            channel,
                            external_id,
                        };
                        if !fields.external_ids.contains(&id) {
                            fields.external_ids.push(id);
                        }
                    }
                    fields
                })
        }

        proptest! {
            /// A merge never drops a phone, email, external id or attribute key, and undoing it
            /// (with nothing changed since) gives the survivor back exactly.
            #[test]
            fn merge_keeps_everything_and_unmerge_restores(
                survivor in fields(),
                others in prop::collection::vec(fields(), 1..4),
            ) {
                let survivor = customer("s", 1, 1, survivor);
                let others: Vec<Customer> = others
                    .into_iter()
                    .enumerate()
                    .map(|(i, f)| customer(&format!("o{i}"), 2, 2 + u32::try_from(i).unwrap_or(0), f))
                    .collect();
                let refs: Vec<&Customer> = others.iter().collect();
                let merged = merge_fields(&survivor, &refs);
                for one in std::iter::once(&survivor).chain(others.iter()) {
                    for phone in &one.fields.phones {
                        prop_assert!(merged.phones.contains(phone));
                    }
                    for email in &one.fields.emails {
                        prop_assert!(merged.emails.contains(email));
                    }
                    for id in &one.fields.external_ids {
                        prop_assert!(merged.external_ids.contains(id));
                    }
                    for key in one.fields.attributes.keys() {
                        prop_assert!(merged.attributes.contains_key(key));
                    }
                }
                prop_assert_eq!(
                    unmerge_fields(&survivor.fields, &merged, &merged),
                    survivor.fields.clone()
                );
            }

            /// Every tag survives a merge except those an exclusive category or a newer
            /// assignment of the same tag displaces, and no exclusive category keeps two.
            #[test]
            fn surviving_tags_drop_only_what_a_rule_displaces(
                held in prop::collection::vec((0..3_u8, 0..6_u8, any::<bool>(), 1..28_u32), 1..12),
            ) {
                let held: Vec<HeldTag> = held
                    .into_iter()
                    .map(|(owner, tag, exclusive_category, day)| HeldTag {
                        customer_id: format!("c{owner}"),
                        tag_id: format!("t{tag}"),
                        // Tags 0-2 belong to one exclusive category, 3-5 each to its own open one.
                        category_id: if tag < 3 { "tier".to_owned() } else { format!("open{tag}") },
                        exclusive: tag < 3 && exclusive_category,
                        assigned_at: at(day),
                    })
                    .collect();
                // A category is exclusive or not, whatever the row says.
                let exclusive = held.iter().any(|h| h.exclusive);
                let held: Vec<HeldTag> = held
                    .into_iter()
                    .map(|mut h| {
                        h.exclusive = exclusive && h.category_id == "tier";
                        h
                    })
                    .collect();
                let kept = surviving_tags(&held, "c0");
                let kept_tags: std::collections::BTreeSet<&str> =
                    kept.iter().map(|i| held[*i].tag_id.as_str()).collect();
                prop_assert_eq!(kept_tags.len(), kept.len(), "one row per tag");
                for tag in &held {
                    if !tag.exclusive {
                        prop_assert!(kept_tags.contains(tag.tag_id.as_str()), "{} dropped", tag.tag_id);
                    }
                }
                let in_tier = kept.iter().filter(|i| held[**i].exclusive).count();
                prop_assert!(in_tier <= 1);
                if exclusive {
                    prop_assert_eq!(in_tier, 1);
                }
            }
        }
    }
}
