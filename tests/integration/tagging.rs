//! Scenarios for tagging: assignments, value checks, exclusive categories,
//! expiry, batches and the history of every change.

use std::time::Duration;

use tagd_proto::v1 as pb;
use tonic::Code;

use crate::fixtures::{
    self, UNKNOWN_ID, assign, assignment, customer, customer_tags, history, mask,
};
use crate::harness::{As, Backend, TestServer, assert_status, backend_tests};

backend_tests!(
    assignments_are_listed_changed_and_recorded,
    values_are_checked_against_the_tag_type,
    exclusive_category_replaces_the_old_tag,
    concurrent_assignments_keep_one_exclusive_tag,
    concurrent_calls_each_get_their_own_answer,
    forced_deletes_racing_assignments_leave_no_orphans,
    category_changes_racing_assignments_all_succeed,
    assignments_expire_into_history,
    batch_assignment_is_all_or_nothing,
    removals_are_recorded,
    history_pages_newest_first,
);

async fn assignments_are_listed_changed_and_recorded(backend: Backend) {
    let server = TestServer::start(backend).await;
    let behaviour = fixtures::category(&server, "消费行为", false).await;
    let spend = fixtures::tag(
        &server,
        &behaviour.id,
        "年消费额",
        pb::ValueType::Number,
        &[],
    )
    .await;
    let frequent =
        fixtures::tag(&server, &behaviour.id, "高频购买", pb::ValueType::Flag, &[]).await;
    let zhang = customer(&server, "张伟").await;

    let mut writer = server.tagging_as(As::Writer);
    let first = writer
        .assign_tags(pb::AssignTagsRequest {
            customer_id: zhang.id.clone(),
            assignments: vec![
                pb::TagAssignment {
                    source: pb::TagSource::Import.into(),
                    source_ref: "job-7".into(),
                    ..assignment(&spend.id, "05000.0")
                },
                assignment(&frequent.id, ""),
            ],
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (
            first.assigned,
            first.changed,
            first.unchanged,
            first.replaced
        ),
        (2, 0, 0, 0)
    );

    let tags = customer_tags(&server, &zhang.id).await;
    assert_eq!(tags.len(), 2);
    let spend_tag = tags.iter().find(|t| t.tag_id == spend.id).unwrap();
    assert_eq!(spend_tag.value, "5000", "numbers are stored canonically");
    assert_eq!(spend_tag.assigned_by, "crm");
    assert_eq!(spend_tag.source, pb::TagSource::Import as i32);
    assert_eq!(spend_tag.source_ref, "job-7");
    assert_eq!(
        (
            spend_tag.tag_name.as_str(),
            spend_tag.category_name.as_str()
        ),
        ("年消费额", "消费行为")
    );

    let again = assign(
        &server,
        &zhang.id,
        vec![assignment(&spend.id, "5000"), assignment(&frequent.id, "")],
    )
    .await;
    assert_eq!((again.assigned, again.changed, again.unchanged), (0, 0, 2));
    let changed = assign(&server, &zhang.id, vec![assignment(&spend.id, "12000.5")]).await;
    assert_eq!(changed.changed, 1);

    let entries = history(&server, &zhang.id).await;
    assert_eq!(
        entries.len(),
        3,
        "unchanged re-assignments leave no history"
    );
    let change = &entries[0];
    assert_eq!(change.action, pb::HistoryAction::Change as i32);
    assert_eq!(
        (change.old_value.as_str(), change.new_value.as_str()),
        ("5000", "12000.5")
    );
    assert_eq!(change.actor, "ops");
    assert_eq!(change.source, pb::TagSource::Manual as i32);
    assert!(
        entries[1..]
            .iter()
            .all(|e| e.action == pb::HistoryAction::Assign as i32 && e.actor == "crm")
    );
    assert!(entries.windows(2).all(|w| fixtures::instant(w[0].time.as_ref()) >= fixtures::instant(w[1].time.as_ref())), "newest first");
}

async fn values_are_checked_against_the_tag_type(backend: Backend) {
    let server = TestServer::start(backend).await;
    let category = fixtures::category(&server, "画像", false).await;
    let number = fixtures::tag(
        &server,
        &category.id,
        "年消费额",
        pb::ValueType::Number,
        &[],
    )
    .await;
    let tier = fixtures::tag(
        &server,
        &category.id,
        "价值",
        pb::ValueType::Enum,
        &["高价值", "中价值", "低价值"],
    )
    .await;
    let flag = fixtures::tag(&server, &category.id, "流失风险", pb::ValueType::Flag, &[]).await;
    let boolean = fixtures::tag(&server, &category.id, "已关注", pb::ValueType::Bool, &[]).await;
    let date = fixtures::tag(&server, &category.id, "最近联系", pb::ValueType::Date, &[]).await;
    let text = fixtures::tag(&server, &category.id, "备注", pb::ValueType::Text, &[]).await;
    let li = customer(&server, "李四").await;
    let mut tagging = server.tagging();
    let call = |assignments: Vec<pb::TagAssignment>| pb::AssignTagsRequest {
        customer_id: li.id.clone(),
        assignments,
    };

    let cases = [
        (
            assignment(&number.id, "abc"),
            "assignments[0].value: \"abc\" is not a number",
        ),
        (assignment(&number.id, ""), "needs a value"),
        (
            assignment(&tier.id, "超高价值"),
            "not one of the allowed values",
        ),
        (assignment(&flag.id, "yes"), "a flag tag takes no value"),
        (assignment(&boolean.id, "maybe"), "not a boolean"),
        (assignment(&date.id, "2024-02-30"), "not a date"),
        (assignment(&text.id, &"字".repeat(1001)), "limit is 1000"),
    ];
    for (bad, needle) in cases {
        assert_status(
            tagging.assign_tags(call(vec![bad])).await,
            Code::InvalidArgument,
            needle,
        );
    }
    // One bad assignment among good ones writes none of them.
    assert_status(
        tagging
            .assign_tags(call(vec![
                assignment(&flag.id, ""),
                assignment(&number.id, "1e999"),
            ]))
            .await,
        Code::InvalidArgument,
        "assignments[1].value",
    );
    assert_status(
        tagging
            .assign_tags(call(vec![assignment(UNKNOWN_ID, "")]))
            .await,
        Code::NotFound,
        "assignments[0].tag_id: tag",
    );
    assert_status(
        tagging
            .assign_tags(pb::AssignTagsRequest {
                customer_id: UNKNOWN_ID.into(),
                assignments: vec![assignment(&flag.id, "")],
            })
            .await,
        Code::NotFound,
        "customer",
    );
    assert_status(
        tagging
            .assign_tags(call(vec![
                assignment(&flag.id, ""),
                assignment(&flag.id, ""),
            ]))
            .await,
        Code::InvalidArgument,
        "already given at assignments[0]",
    );
    assert_status(
        tagging.assign_tags(call(vec![])).await,
        Code::InvalidArgument,
        "assignments: must not be empty",
    );
    let past = pb::TagAssignment {
        expires_at: Some(prost_types::Timestamp {
            seconds: 1_000_000_000,
            nanos: 0,
        }),
        ..assignment(&flag.id, "")
    };
    assert_status(
        tagging.assign_tags(call(vec![past])).await,
        Code::InvalidArgument,
        "expires_at: is in the past",
    );
    assert!(customer_tags(&server, &li.id).await.is_empty());
    assert!(
        history(&server, &li.id).await.is_empty(),
        "refused calls leave no history"
    );

    let good = assign(
        &server,
        &li.id,
        vec![
            assignment(&tier.id, "高价值"),
            assignment(&boolean.id, "是"),
            assignment(&date.id, "2041-03-04"),
            assignment(&text.id, "喜欢户外"),
        ],
    )
    .await;
    assert_eq!(good.assigned, 4);
    let values: Vec<String> = customer_tags(&server, &li.id)
        .await
        .into_iter()
        .map(|t| t.value)
        .collect();
    for expected in ["高价值", "true", "2041-03-04", "喜欢户外"] {
        assert!(
            values.iter().any(|v| v == expected),
            "{expected} in {values:?}"
        );
    }
}

async fn exclusive_category_replaces_the_old_tag(backend: Backend) {
    let server = TestServer::start(backend).await;
    let tiers = fixtures::category(&server, "价值等级", true).await;
    let high = fixtures::tag(&server, &tiers.id, "高价值", pb::ValueType::Flag, &[]).await;
    let low = fixtures::tag(&server, &tiers.id, "低价值", pb::ValueType::Flag, &[]).await;
    let wang = customer(&server, "王五").await;
    assign(&server, &wang.id, vec![assignment(&high.id, "")]).await;
    let replaced = assign(&server, &wang.id, vec![assignment(&low.id, "")]).await;
    assert_eq!((replaced.assigned, replaced.replaced), (1, 1));
    let held: Vec<String> = customer_tags(&server, &wang.id)
        .await
        .into_iter()
        .map(|t| t.tag_name)
        .collect();
    assert_eq!(held, vec!["低价值"]);
    let entries = history(&server, &wang.id).await;
    let actions: Vec<(i32, String)> = entries
        .iter()
        .map(|e| (e.action, e.tag_name.clone()))
        .collect();
    assert_eq!(
        actions,
        vec![
            (pb::HistoryAction::Assign as i32, "低价值".to_owned()),
            (pb::HistoryAction::Replace as i32, "高价值".to_owned()),
            (pb::HistoryAction::Assign as i32, "高价值".to_owned()),
        ]
    );
    assert_status(
        server
            .tagging()
            .assign_tags(pb::AssignTagsRequest {
                customer_id: wang.id.clone(),
                assignments: vec![assignment(&high.id, ""), assignment(&low.id, "")],
            })
            .await,
        Code::InvalidArgument,
        "exclusive",
    );
}

async fn concurrent_assignments_keep_one_exclusive_tag(backend: Backend) {
    let server = TestServer::start(backend).await;
    let stages = fixtures::category(&server, "生命周期", true).await;
    let mut stage_ids = Vec::new();
    for name in ["潜在客户", "初次接触", "意向客户", "成交客户", "老客户"] {
        stage_ids.push(
            fixtures::tag(&server, &stages.id, name, pb::ValueType::Flag, &[])
                .await
                .id,
        );
    }
    let zhao = customer(&server, "赵六").await;
    let mut calls = Vec::new();
    for round in 0..4 {
        for stage in &stage_ids {
            let mut client = server.tagging();
            let request = pb::AssignTagsRequest {
                customer_id: zhao.id.clone(),
                assignments: vec![assignment(stage, "")],
            };
            calls.push(tokio::spawn(async move {
                let _ = round;
                client.assign_tags(request).await
            }));
        }
    }
    for call in calls {
        call.await.unwrap().unwrap();
    }
    let held = customer_tags(&server, &zhao.id).await;
    assert_eq!(
        held.len(),
        1,
        "an exclusive category holds exactly one tag: {held:?}"
    );
    let entries = history(&server, &zhao.id).await;
    let assigns = entries
        .iter()
        .filter(|e| e.action == pb::HistoryAction::Assign as i32)
        .count();
    let replaces = entries
        .iter()
        .filter(|e| e.action == pb::HistoryAction::Replace as i32)
        .count();
    assert_eq!(
        assigns,
        replaces + 1,
        "every assignment but the last was replaced"
    );
}

/// Forced deletes of tags, and of a whole category, race AssignTags and
/// BatchAssignTags calls of those tags: every assignment either commits before
/// the delete, which then removes it (with its history entry), or fails
/// NOT_FOUND naming the tag and writes nothing. No assignment outlives its tag.
async fn forced_deletes_racing_assignments_leave_no_orphans(backend: Backend) {
    const CUSTOMERS: usize = 6;
    const TAGS: usize = 8;
    const ROUNDS: u64 = 4;
    let server = TestServer::start(backend).await;
    let doomed = fixtures::category(&server, "逐个删除", false).await;
    let condemned = fixtures::category(&server, "整类删除", false).await;
    let mut single_tags = Vec::new();
    let mut category_tags = Vec::new();
    for index in 0..TAGS {
        let name = format!("标签{index}");
        single_tags.push(
            fixtures::tag(&server, &doomed.id, &name, pb::ValueType::Flag, &[])
                .await
                .id,
        );
        category_tags.push(
            fixtures::tag(&server, &condemned.id, &name, pb::ValueType::Flag, &[])
                .await
                .id,
        );
    }
    let all_tags: Vec<String> = single_tags.iter().chain(&category_tags).cloned().collect();
    let customers: Vec<String> = fixtures::numbered_customers(&server, "竞速", CUSTOMERS)
        .await
        .into_iter()
        .map(|c| c.id)
        .collect();

    // The first customer holds every tag before the race: the deletes have something to remove.
    let held_before = assign(
        &server,
        &customers[0],
        all_tags.iter().map(|tag| assignment(tag, "")).collect(),
    )
    .await;
    let mut assigned = held_before.assigned;

    // Assignments start at once and keep coming in rounds; the deletes start among them.
    let mut assigns = Vec::new();
    for round in 0..ROUNDS {
        for tag_id in &all_tags {
            for customer_id in &customers {
                let mut client = server.tagging_as(As::Writer);
                let request = pb::AssignTagsRequest {
                    customer_id: customer_id.clone(),
                    assignments: vec![assignment(tag_id, "")],
                };
                assigns.push(tokio::spawn(async move {
                    tokio::time::sleep(Duration::from_millis(round * 6)).await;
                    client.assign_tags(request).await
                }));
            }
        }
        // Batches too: every customer, a tag deleted alone and one of the deleted category.
        for index in 0..TAGS {
            let mut client = server.tagging_as(As::Writer);
            let pair = [&single_tags[index], &category_tags[TAGS - 1 - index]];
            let entries = customers
                .iter()
                .map(|customer_id| pb::CustomerAssignments {
                    customer_id: customer_id.clone(),
                    assignments: pair.iter().map(|tag| assignment(tag, "")).collect(),
                })
                .collect();
            assigns.push(tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(round * 6 + 3)).await;
                client
                    .batch_assign_tags(pb::BatchAssignTagsRequest { entries })
                    .await
            }));
        }
    }
    let mut deletes = Vec::new();
    for (index, tag_id) in single_tags.iter().enumerate() {
        let mut client = server.tags();
        let request = pb::DeleteTagRequest {
            id: tag_id.clone(),
            force: true,
        };
        deletes.push(tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(2 + index as u64 * 2)).await;
            client.delete_tag(request).await
        }));
    }
    let mut client = server.tags();
    let request = pb::DeleteCategoryRequest {
        id: condemned.id.clone(),
        force: true,
    };
    deletes.push(tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(9)).await;
        client.delete_category(request).await
    }));

    for call in assigns {
        match call.await.unwrap() {
            Ok(response) => assigned += response.into_inner().assigned,
            result => assert_status(result, Code::NotFound, "tag"),
        }
    }
    let mut removed = 0;
    for call in deletes {
        removed += call
            .await
            .unwrap()
            .unwrap()
            .into_inner()
            .removed_assignments;
    }
    assert_eq!(
        removed, assigned,
        "the deletes removed every assignment that was made, so none is left behind"
    );

    // Once the deletes are done, an assignment of a deleted tag names it.
    assert_status(
        server
            .tagging_as(As::Writer)
            .assign_tags(pb::AssignTagsRequest {
                customer_id: customers[1].clone(),
                assignments: vec![assignment(&single_tags[0], "")],
            })
            .await,
        Code::NotFound,
        &format!("assignments[0].tag_id: tag {:?} not found", single_tags[0]),
    );
    let mut tags = server.tags();
    for tag_id in &all_tags {
        assert_status(
            tags.get_tag(pb::GetTagRequest { id: tag_id.clone() }).await,
            Code::NotFound,
            tag_id,
        );
    }
    for customer_id in &customers {
        for held in customer_tags(&server, customer_id).await {
            tags.get_tag(pb::GetTagRequest { id: held.tag_id })
                .await
                .unwrap();
        }
        // Per deleted tag, every assignment in the history has its removal after it.
        let mut net: std::collections::HashMap<String, i64> = std::collections::HashMap::new();
        for entry in history(&server, customer_id).await.iter().rev() {
            let held = net.entry(entry.tag_id.clone()).or_default();
            if entry.action == pb::HistoryAction::Assign as i32 {
                *held += 1;
            } else if entry.action == pb::HistoryAction::Remove as i32 {
                *held -= 1;
            }
            assert!(
                (0..=1).contains(held),
                "history of {}: {held}",
                entry.tag_id
            );
        }
        for (tag_id, held) in net {
            assert_eq!(
                held, 0,
                "customer {customer_id} still holds deleted tag {tag_id}"
            );
        }
    }
}

/// Concurrent AssignTags calls are committed together; each keeps its own
/// outcome, error and actor, and a bad call writes nothing for anyone.
async fn concurrent_calls_each_get_their_own_answer(backend: Backend) {
    const CUSTOMERS: usize = 12;
    const ROUNDS: usize = 8;
    let server = TestServer::start(backend).await;
    let spending = fixtures::category(&server, "消费", false).await;
    let amount = fixtures::tag(
        &server,
        &spending.id,
        "年消费额",
        pb::ValueType::Number,
        &[],
    )
    .await;
    let customers: Vec<String> = fixtures::numbered_customers(&server, "客户", CUSTOMERS)
        .await
        .into_iter()
        .map(|c| c.id)
        .collect();
    let mut calls = Vec::new();
    for round in 0..ROUNDS {
        for (index, customer_id) in customers.iter().enumerate() {
            // Every call sets a value of its own; every third customer also gets a bad value,
            // and one call per round names a customer that does not exist.
            let who = if (index + round) % 2 == 0 {
                As::Writer
            } else {
                As::Admin
            };
            let value = format!("{}", index * 1_000 + round);
            let mut requests = vec![(who, customer_id.clone(), value.clone(), Code::Ok)];
            if index % 3 == 0 {
                requests.push((
                    As::Writer,
                    customer_id.clone(),
                    "abc".to_owned(),
                    Code::InvalidArgument,
                ));
            }
            if index == round {
                requests.push((As::Admin, UNKNOWN_ID.to_owned(), value, Code::NotFound));
            }
            for (who, customer_id, value, expected) in requests {
                let mut client = server.tagging_as(who);
                let request = pb::AssignTagsRequest {
                    customer_id,
                    assignments: vec![assignment(&amount.id, &value)],
                };
                calls.push(tokio::spawn(async move {
                    (who, value, expected, client.assign_tags(request).await)
                }));
            }
        }
    }
    let mut actor_of_value = std::collections::HashMap::new();
    for call in calls {
        let (who, value, expected, result) = call.await.unwrap();
        match (expected, result) {
            (Code::Ok, Ok(response)) => {
                let response = response.into_inner();
                assert_eq!(response.assigned + response.changed, 1, "{response:?}");
                let actor = if matches!(who, As::Writer) {
                    "crm"
                } else {
                    "ops"
                };
                actor_of_value.insert(value, actor);
            }
            (Code::InvalidArgument, result) => {
                assert_status(result, Code::InvalidArgument, "assignments[0].value");
            }
            (Code::NotFound, result) => assert_status(result, Code::NotFound, "customer_id"),
            (expected, result) => panic!("expected {expected:?}, got {result:?}"),
        }
    }
    for customer_id in &customers {
        let entries = history(&server, customer_id).await;
        assert_eq!(
            entries.len(),
            ROUNDS,
            "one entry per good call: {entries:?}"
        );
        for entry in &entries {
            let value = entry.new_value.as_str();
            assert_eq!(
                actor_of_value.get(value).copied(),
                Some(entry.actor.as_str()),
                "the entry for value {value} names the caller that set it"
            );
        }
        let held = customer_tags(&server, customer_id).await;
        assert_eq!(held.len(), 1);
        assert_eq!(
            held[0].value, entries[0].new_value,
            "the newest entry is what is held"
        );
    }
}

async fn assignments_expire_into_history(backend: Backend) {
    let server = TestServer::start(backend).await;
    let category = fixtures::category(&server, "活动", false).await;
    let mut tags = server.tags();
    let mut spec = fixtures::tag_spec(&category.id, "双十一参与", pb::ValueType::Flag, &[]);
    spec.default_validity = Some(prost_types::Duration {
        seconds: 1,
        nanos: 0,
    });
    let short = tags
        .create_tag(pb::CreateTagRequest { tag: Some(spec) })
        .await
        .unwrap()
        .into_inner();
    let lasting = fixtures::tag(&server, &category.id, "会员", pb::ValueType::Flag, &[]).await;
    let qian = customer(&server, "钱七").await;
    let far_future = prost_types::Timestamp {
        seconds: 2_524_608_000,
        nanos: 123_456_000,
    }; // 2050-01-01, after 2038
    assign(
        &server,
        &qian.id,
        vec![
            assignment(&short.id, ""),
            pb::TagAssignment {
                expires_at: Some(far_future),
                ..assignment(&lasting.id, "")
            },
        ],
    )
    .await;
    let held = customer_tags(&server, &qian.id).await;
    assert_eq!(held.len(), 2);
    let lasting_held = held.iter().find(|t| t.tag_id == lasting.id).unwrap();
    assert_eq!(
        lasting_held.expires_at,
        Some(far_future),
        "a post-2038 expiry reads back exactly"
    );
    assert!(
        held.iter()
            .any(|t| t.tag_id == short.id && t.expires_at.is_some())
    );

    tokio::time::sleep(Duration::from_millis(1_300)).await;
    let held: Vec<String> = customer_tags(&server, &qian.id)
        .await
        .into_iter()
        .map(|t| t.tag_id)
        .collect();
    assert_eq!(
        held,
        vec![lasting.id.clone()],
        "expired assignments are hidden at once"
    );
    let in_filter = server
        .customers()
        .list_customers(pb::ListCustomersRequest {
            tag_id: short.id.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(
        in_filter.customers.is_empty(),
        "and no longer match filters"
    );

    // The sweeper (every second in tests) records the expiry.
    let mut expired = None;
    for _ in 0..50 {
        expired = history(&server, &qian.id)
            .await
            .into_iter()
            .find(|e| e.action == pb::HistoryAction::Expire as i32);
        if expired.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let expired = expired.expect("an expire entry within 10 s");
    assert_eq!(
        (expired.tag_id.as_str(), expired.actor.as_str()),
        (short.id.as_str(), "system")
    );

    // Assigning again starts a fresh assignment.
    let again = assign(&server, &qian.id, vec![assignment(&short.id, "")]).await;
    assert_eq!(again.assigned, 1);
}

async fn batch_assignment_is_all_or_nothing(backend: Backend) {
    let server = TestServer::start(backend).await;
    let category = fixtures::category(&server, "营销", false).await;
    let mut tag_ids = Vec::new();
    for name in ["短信", "邮件", "电话", "微信", "上门"] {
        tag_ids.push(
            fixtures::tag(&server, &category.id, name, pb::ValueType::Number, &[])
                .await
                .id,
        );
    }
    let mut entries = Vec::new();
    let mut upsert = Vec::new();
    for i in 0..2000 {
        upsert.push(pb::UpsertCustomerEntry {
            key: Some(pb::ExternalId {
                channel: "bench".into(),
                external_id: format!("c{i}"),
            }),
            customer: Some(pb::Customer {
                name: format!("客户{i}"),
                ..Default::default()
            }),
        });
    }
    let mut customer_ids = Vec::new();
    for chunk in upsert.chunks(1000) {
        let response = server
            .customers()
            .upsert_customers(pb::UpsertCustomersRequest {
                entries: chunk.to_vec(),
            })
            .await
            .unwrap()
            .into_inner();
        customer_ids.extend(response.results.into_iter().map(|r| r.customer_id));
    }
    for (i, customer_id) in customer_ids.iter().enumerate() {
        entries.push(pb::CustomerAssignments {
            customer_id: customer_id.clone(),
            assignments: tag_ids
                .iter()
                .map(|tag| assignment(tag, &i.to_string()))
                .collect(),
        });
    }
    let mut tagging = server.tagging();

    // A bad row anywhere refuses the whole batch, naming the row.
    let mut bad_value = entries.clone();
    bad_value[1500].assignments[3].value = "lots".into();
    assert_status(
        tagging
            .batch_assign_tags(pb::BatchAssignTagsRequest { entries: bad_value })
            .await,
        Code::InvalidArgument,
        "entries[1500].assignments[3].value",
    );
    let mut bad_customer = entries.clone();
    bad_customer[1999].customer_id = UNKNOWN_ID.into();
    assert_status(
        tagging
            .batch_assign_tags(pb::BatchAssignTagsRequest {
                entries: bad_customer,
            })
            .await,
        Code::NotFound,
        "entries[1999].customer_id",
    );
    let mut too_many = entries.clone();
    too_many[0].assignments.push(assignment(&tag_ids[0], "1"));
    assert_status(
        tagging
            .batch_assign_tags(pb::BatchAssignTagsRequest { entries: too_many })
            .await,
        Code::InvalidArgument,
        "10001 assignments; the limit is 10000",
    );
    assert!(
        customer_tags(&server, &customer_ids[0]).await.is_empty(),
        "refused batches wrote nothing"
    );
    assert!(history(&server, &customer_ids[1500]).await.is_empty());

    // 10,000 assignments in one call: more rows than one statement may carry on MySQL.
    let done = tagging
        .batch_assign_tags(pb::BatchAssignTagsRequest {
            entries: entries.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(done.assigned, 10_000);
    let last = customer_tags(&server, &customer_ids[1999]).await;
    assert_eq!(last.len(), 5);
    assert!(last.iter().all(|t| t.value == "1999"));
    let again = tagging
        .batch_assign_tags(pb::BatchAssignTagsRequest { entries })
        .await
        .unwrap()
        .into_inner();
    assert_eq!((again.assigned, again.unchanged), (0, 10_000));
}

async fn removals_are_recorded(backend: Backend) {
    let server = TestServer::start(backend).await;
    let churn = fixtures::flag_tag(&server, "流失风险").await;
    let complaint = fixtures::flag_tag(&server, "投诉").await;
    let sun = customer(&server, "孙八").await;
    assign(&server, &sun.id, vec![assignment(&churn.id, "")]).await;
    let mut tagging = server.tagging();
    let removed = tagging
        .remove_tags(pb::RemoveTagsRequest {
            customer_id: sun.id.clone(),
            tag_ids: vec![churn.id.clone(), complaint.id.clone()],
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(removed.removed, 1, "tags not held are ignored");
    assert!(customer_tags(&server, &sun.id).await.is_empty());
    let last = &history(&server, &sun.id).await[0];
    assert_eq!(
        (last.action, last.old_value.as_str()),
        (pb::HistoryAction::Remove as i32, "")
    );
    assert_eq!(last.tag_name, "流失风险");
    assert_status(
        tagging
            .remove_tags(pb::RemoveTagsRequest {
                customer_id: UNKNOWN_ID.into(),
                tag_ids: vec![churn.id.clone()],
            })
            .await,
        Code::NotFound,
        "customer",
    );
    assert_status(
        tagging
            .remove_tags(pb::RemoveTagsRequest {
                customer_id: sun.id.clone(),
                tag_ids: vec![],
            })
            .await,
        Code::InvalidArgument,
        "tag_ids",
    );
    assert_status(
        tagging
            .list_customer_tags(pb::ListCustomerTagsRequest {
                customer_id: UNKNOWN_ID.into(),
            })
            .await,
        Code::NotFound,
        "customer",
    );
}

async fn history_pages_newest_first(backend: Backend) {
    let server = TestServer::start(backend).await;
    let category = fixtures::category(&server, "积分", false).await;
    let points = fixtures::tag(&server, &category.id, "积分", pb::ValueType::Number, &[]).await;
    let zhou = customer(&server, "周九").await;
    for value in 1..=7 {
        assign(
            &server,
            &zhou.id,
            vec![assignment(&points.id, &value.to_string())],
        )
        .await;
    }
    let mut tagging = server.tagging();
    let mut values = Vec::new();
    let mut token = String::new();
    loop {
        let page = tagging
            .get_tag_history(pb::GetTagHistoryRequest {
                customer_id: zhou.id.clone(),
                page_size: 3,
                page_token: token,
            })
            .await
            .unwrap()
            .into_inner();
        values.extend(page.entries.into_iter().map(|e| e.new_value));
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    assert_eq!(values, vec!["7", "6", "5", "4", "3", "2", "1"]);
    assert_status(
        tagging
            .get_tag_history(pb::GetTagHistoryRequest {
                customer_id: UNKNOWN_ID.into(),
                page_size: 0,
                page_token: String::new(),
            })
            .await,
        Code::NotFound,
        "customer",
    );
}

/// A category renamed and made exclusive (which locks the category, then its tags) while
/// AssignTags calls of its tag are in flight: assignments lock the tag but not its
/// category, so neither side waits on the other in a cycle, and every call succeeds.
async fn category_changes_racing_assignments_all_succeed(backend: Backend) {
    const CUSTOMERS: usize = 16;
    const ROUNDS: usize = 3;
    const EDITS: usize = 12;
    let server = TestServer::start(backend).await;
    let value = fixtures::category(&server, "价值等级", false).await;
    let score = fixtures::tag(&server, &value.id, "价值分", pb::ValueType::Number, &[]).await;
    let customers: Vec<String> = fixtures::numbered_customers(&server, "客户", CUSTOMERS)
        .await
        .into_iter()
        .map(|c| c.id)
        .collect();
    let mut calls = Vec::new();
    for round in 0..ROUNDS {
        for (index, customer_id) in customers.iter().enumerate() {
            let mut tagging = server.tagging();
            let request = pb::AssignTagsRequest {
                customer_id: customer_id.clone(),
                assignments: vec![assignment(&score.id, &format!("{}", round * 100 + index))],
            };
            calls.push(tokio::spawn(async move {
                tagging.assign_tags(request).await.map(|_| ())
            }));
        }
    }
    let mut names = vec![value.name.clone()];
    for edit in 0..EDITS {
        let name = format!("价值等级{edit}");
        names.push(name.clone());
        let mut tags = server.tags();
        let request = pb::UpdateCategoryRequest {
            category: Some(pb::Category {
                id: value.id.clone(),
                name,
                exclusive: edit % 2 == 0,
                ..pb::Category::default()
            }),
            update_mask: mask(&["name", "exclusive"]),
        };
        calls.push(tokio::spawn(async move {
            tags.update_category(request).await.map(|_| ())
        }));
    }
    for call in calls {
        call.await.unwrap().expect("every call succeeds");
    }
    for customer_id in &customers {
        let entries = history(&server, customer_id).await;
        assert_eq!(entries.len(), ROUNDS, "{entries:?}");
        for entry in entries {
            assert!(
                names.contains(&entry.category_name),
                "history names the category as it was called: {entry:?}"
            );
        }
    }
}
