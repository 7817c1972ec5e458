//! Scenarios for the tag catalogue: categories and tags.

use tagd_proto::v1 as pb;
use tonic::Code;

use crate::fixtures::{
    self, UNKNOWN_ID, assign, assignment, customer, customer_tags, history, mask, tag_spec,
};
use crate::harness::{As, Backend, TestServer, assert_status, backend_tests};

backend_tests!(
    categories_are_created_listed_renamed_and_deleted,
    category_names_are_unique_after_normalisation,
    bad_category_input_is_rejected,
    tags_of_every_type_are_managed,
    bad_tag_input_is_rejected,
    deleting_assigned_tags_needs_force,
    tag_type_cannot_change_under_assignments,
    category_cannot_become_exclusive_while_doubled,
    a_category_made_exclusive_amid_assignments_stays_exclusive,
    a_rule_and_a_delete_of_its_tag_never_both_succeed,
    tag_stats_count_holders_values_and_sources,
);

async fn categories_are_created_listed_renamed_and_deleted(backend: Backend) {
    let server = TestServer::start(backend).await;
    let mut tags = server.tags();
    let mut ids = Vec::new();
    for name in ["价值等级", "生命周期", "兴趣爱好"] {
        ids.push(
            fixtures::category(&server, name, name == "价值等级")
                .await
                .id,
        );
    }
    let first = tags
        .list_categories(pb::ListCategoriesRequest {
            page_size: 2,
            page_token: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(first.categories.len(), 2);
    assert!(!first.next_page_token.is_empty());
    let second = tags
        .list_categories(pb::ListCategoriesRequest {
            page_size: 2,
            page_token: first.next_page_token,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(second.categories.len(), 1);
    assert_eq!(second.next_page_token, "");
    let listed: Vec<String> = first
        .categories
        .iter()
        .chain(&second.categories)
        .map(|c| c.id.clone())
        .collect();
    assert_eq!(
        listed, ids,
        "categories list in creation order across pages"
    );
    assert!(first.categories[0].exclusive);

    let renamed = tags
        .update_category(pb::UpdateCategoryRequest {
            category: Some(pb::Category {
                id: ids[1].clone(),
                name: "客户生命周期".into(),
                description: "ignored: not in the mask".into(),
                ..pb::Category::default()
            }),
            update_mask: mask(&["name"]),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(renamed.name, "客户生命周期");
    assert_eq!(
        renamed.description, "生命周期 category",
        "fields outside the mask are kept"
    );
    assert!(
        fixtures::instant(renamed.update_time.as_ref())
            > fixtures::instant(renamed.create_time.as_ref())
    );

    let deleted = tags
        .delete_category(pb::DeleteCategoryRequest {
            id: ids[2].clone(),
            force: false,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(deleted.deleted_tags, 0);
    let remaining = tags
        .list_categories(pb::ListCategoriesRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(remaining.categories.len(), 2);
    assert_status(
        tags.delete_category(pb::DeleteCategoryRequest {
            id: ids[2].clone(),
            force: false,
        })
        .await,
        Code::NotFound,
        &ids[2],
    );
}

async fn category_names_are_unique_after_normalisation(backend: Backend) {
    let server = TestServer::start(backend).await;
    let mut tags = server.tags();
    fixtures::category(&server, "VIP Level", false).await;
    for clash in ["vip level", "  VIP   Level ", "ＶＩＰ Ｌｅｖｅｌ"] {
        assert_status(
            tags.create_category(pb::CreateCategoryRequest {
                name: clash.into(),
                ..Default::default()
            })
            .await,
            Code::AlreadyExists,
            "VIP Level",
        );
    }
    let other = fixtures::category(&server, "Region", false).await;
    assert_status(
        tags.update_category(pb::UpdateCategoryRequest {
            category: Some(pb::Category {
                id: other.id,
                name: "vip LEVEL".into(),
                ..Default::default()
            }),
            update_mask: mask(&["name"]),
        })
        .await,
        Code::AlreadyExists,
        "taken",
    );
}

async fn bad_category_input_is_rejected(backend: Backend) {
    let server = TestServer::start(backend).await;
    let mut tags = server.tags();
    assert_status(
        tags.create_category(pb::CreateCategoryRequest {
            name: "  ".into(),
            ..Default::default()
        })
        .await,
        Code::InvalidArgument,
        "name: must not be empty",
    );
    assert_status(
        tags.create_category(pb::CreateCategoryRequest {
            name: "类".repeat(201),
            ..Default::default()
        })
        .await,
        Code::InvalidArgument,
        "name: is 201 characters long; the limit is 200",
    );
    assert_status(
        tags.list_categories(pb::ListCategoriesRequest {
            page_size: 1001,
            page_token: String::new(),
        })
        .await,
        Code::InvalidArgument,
        "page_size",
    );
    assert_status(
        tags.list_categories(pb::ListCategoriesRequest {
            page_size: 10,
            page_token: "garbage".into(),
        })
        .await,
        Code::InvalidArgument,
        "page_token",
    );
    let category = fixtures::category(&server, "价值等级", false).await;
    assert_status(
        tags.update_category(pb::UpdateCategoryRequest {
            category: Some(pb::Category {
                id: category.id.clone(),
                ..Default::default()
            }),
            update_mask: None,
        })
        .await,
        Code::InvalidArgument,
        "update_mask",
    );
    assert_status(
        tags.update_category(pb::UpdateCategoryRequest {
            category: Some(pb::Category {
                id: category.id.clone(),
                ..Default::default()
            }),
            update_mask: mask(&["colour"]),
        })
        .await,
        Code::InvalidArgument,
        "colour",
    );
    assert_status(
        tags.update_category(pb::UpdateCategoryRequest {
            category: Some(pb::Category {
                id: UNKNOWN_ID.into(),
                name: "x".into(),
                ..Default::default()
            }),
            update_mask: mask(&["name"]),
        })
        .await,
        Code::NotFound,
        UNKNOWN_ID,
    );
    assert_status(
        tags.delete_category(pb::DeleteCategoryRequest {
            id: "42".into(),
            force: false,
        })
        .await,
        Code::InvalidArgument,
        "id: \"42\" is not a tagd id",
    );
    let all = tags
        .list_categories(pb::ListCategoriesRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(all.categories.len(), 1, "rejected calls wrote nothing");
}

async fn tags_of_every_type_are_managed(backend: Backend) {
    let server = TestServer::start(backend).await;
    let mut tags = server.tags();
    let value = fixtures::category(&server, "价值等级", true).await;
    let behaviour = fixtures::category(&server, "消费行为", false).await;
    let tier = fixtures::tag(
        &server,
        &value.id,
        "价值层级",
        pb::ValueType::Enum,
        &["高价值", "中价值", "低价值"],
    )
    .await;
    assert_eq!(tier.enum_values, vec!["高价值", "中价值", "低价值"]);
    assert_eq!(tier.value_type, pb::ValueType::Enum as i32);
    for (name, value_type) in [
        ("年消费额", pb::ValueType::Number),
        ("备注", pb::ValueType::Text),
        ("已关注公众号", pb::ValueType::Bool),
        ("最近联系日期", pb::ValueType::Date),
        ("高频购买", pb::ValueType::Flag),
    ] {
        let created = fixtures::tag(&server, &behaviour.id, name, value_type, &[]).await;
        assert_eq!(created.value_type, value_type as i32);
        let fetched = tags
            .get_tag(pb::GetTagRequest {
                id: created.id.clone(),
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(fetched, created);
    }
    // The same name is fine in another category.
    fixtures::tag(&server, &value.id, "高频购买", pb::ValueType::Flag, &[]).await;

    let in_behaviour = tags
        .list_tags(pb::ListTagsRequest {
            category_id: behaviour.id.clone(),
            page_size: 3,
            page_token: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(in_behaviour.tags.len(), 3);
    let rest = tags
        .list_tags(pb::ListTagsRequest {
            category_id: behaviour.id.clone(),
            page_size: 3,
            page_token: in_behaviour.next_page_token,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(rest.tags.len(), 2);
    assert!(rest.next_page_token.is_empty());
    let everything = tags
        .list_tags(pb::ListTagsRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(everything.tags.len(), 7);

    let updated = tags
        .update_tag(pb::UpdateTagRequest {
            tag: Some(pb::Tag {
                id: tier.id.clone(),
                name: "价值分层".into(),
                enum_values: vec![
                    "高价值".into(),
                    "中价值".into(),
                    "低价值".into(),
                    "沉睡".into(),
                ],
                default_validity: Some(prost_types::Duration {
                    seconds: 86_400,
                    nanos: 0,
                }),
                ..pb::Tag::default()
            }),
            update_mask: mask(&["name", "enum_values", "default_validity"]),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(updated.name, "价值分层");
    assert_eq!(updated.enum_values.len(), 4);
    assert_eq!(updated.default_validity.map(|d| d.seconds), Some(86_400));
    assert_eq!(updated.create_time, tier.create_time);

    tags.delete_tag(pb::DeleteTagRequest {
        id: tier.id.clone(),
        force: false,
    })
    .await
    .unwrap();
    assert_status(
        tags.get_tag(pb::GetTagRequest {
            id: tier.id.clone(),
        })
        .await,
        Code::NotFound,
        &tier.id,
    );
}

async fn bad_tag_input_is_rejected(backend: Backend) {
    let server = TestServer::start(backend).await;
    let mut tags = server.tags();
    let category = fixtures::category(&server, "兴趣", false).await;
    let create = |tag: pb::Tag| pb::CreateTagRequest { tag: Some(tag) };
    assert_status(
        tags.create_tag(create(tag_spec(
            &category.id,
            "母婴",
            pb::ValueType::Enum,
            &[],
        )))
        .await,
        Code::InvalidArgument,
        "tag.enum_values: an enum tag needs at least one value",
    );
    assert_status(
        tags.create_tag(create(tag_spec(
            &category.id,
            "母婴",
            pb::ValueType::Number,
            &["a"],
        )))
        .await,
        Code::InvalidArgument,
        "tag.enum_values",
    );
    assert_status(
        tags.create_tag(create(tag_spec(
            &category.id,
            "母婴",
            pb::ValueType::Unspecified,
            &[],
        )))
        .await,
        Code::InvalidArgument,
        "tag.value_type",
    );
    assert_status(
        tags.create_tag(create(tag_spec(
            UNKNOWN_ID,
            "母婴",
            pb::ValueType::Flag,
            &[],
        )))
        .await,
        Code::NotFound,
        "category",
    );
    assert_status(
        tags.create_tag(pb::CreateTagRequest { tag: None }).await,
        Code::InvalidArgument,
        "tag: must be set",
    );
    let mut negative = tag_spec(&category.id, "母婴", pb::ValueType::Flag, &[]);
    negative.default_validity = Some(prost_types::Duration {
        seconds: -5,
        nanos: 0,
    });
    assert_status(
        tags.create_tag(create(negative)).await,
        Code::InvalidArgument,
        "tag.default_validity",
    );
    fixtures::tag(&server, &category.id, "母婴", pb::ValueType::Flag, &[]).await;
    assert_status(
        tags.create_tag(create(tag_spec(
            &category.id,
            " 母婴 ",
            pb::ValueType::Flag,
            &[],
        )))
        .await,
        Code::AlreadyExists,
        "母婴",
    );
    assert_status(
        tags.get_tag(pb::GetTagRequest {
            id: UNKNOWN_ID.into(),
        })
        .await,
        Code::NotFound,
        UNKNOWN_ID,
    );
    assert_status(
        tags.list_tags(pb::ListTagsRequest {
            category_id: UNKNOWN_ID.into(),
            ..Default::default()
        })
        .await,
        Code::NotFound,
        "category",
    );
}

async fn deleting_assigned_tags_needs_force(backend: Backend) {
    let server = TestServer::start(backend).await;
    let mut tags = server.tags();
    let category = fixtures::category(&server, "风险", false).await;
    let churn = fixtures::tag(&server, &category.id, "流失风险", pb::ValueType::Flag, &[]).await;
    let complaint = fixtures::tag(&server, &category.id, "投诉", pb::ValueType::Flag, &[]).await;
    let zhang = customer(&server, "张伟").await;
    assign(
        &server,
        &zhang.id,
        vec![assignment(&churn.id, ""), assignment(&complaint.id, "")],
    )
    .await;

    assert_status(
        tags.delete_tag(pb::DeleteTagRequest {
            id: churn.id.clone(),
            force: false,
        })
        .await,
        Code::FailedPrecondition,
        "force",
    );
    assert_status(
        tags.delete_category(pb::DeleteCategoryRequest {
            id: category.id.clone(),
            force: false,
        })
        .await,
        Code::FailedPrecondition,
        "force",
    );
    assert_eq!(
        customer_tags(&server, &zhang.id).await.len(),
        2,
        "a refused delete keeps every assignment"
    );

    let deleted = tags
        .delete_tag(pb::DeleteTagRequest {
            id: churn.id.clone(),
            force: true,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(deleted.removed_assignments, 1);
    let removed = &history(&server, &zhang.id).await[0];
    assert_eq!(removed.action, pb::HistoryAction::Remove as i32);
    assert_eq!(removed.tag_name, "流失风险");
    assert_eq!(removed.category_name, "风险");

    let deleted = tags
        .delete_category(pb::DeleteCategoryRequest {
            id: category.id.clone(),
            force: true,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!((deleted.deleted_tags, deleted.removed_assignments), (1, 1));
    assert!(customer_tags(&server, &zhang.id).await.is_empty());
    assert_status(
        tags.get_tag(pb::GetTagRequest { id: complaint.id }).await,
        Code::NotFound,
        "tag",
    );
}

async fn tag_type_cannot_change_under_assignments(backend: Backend) {
    let server = TestServer::start(backend).await;
    let mut tags = server.tags();
    let category = fixtures::category(&server, "价值等级", false).await;
    let tier = fixtures::tag(
        &server,
        &category.id,
        "层级",
        pb::ValueType::Enum,
        &["高", "中", "低"],
    )
    .await;
    let li = customer(&server, "李四").await;
    assign(&server, &li.id, vec![assignment(&tier.id, "高")]).await;
    assert_status(
        tags.update_tag(pb::UpdateTagRequest {
            tag: Some(pb::Tag {
                id: tier.id.clone(),
                value_type: pb::ValueType::Number.into(),
                ..Default::default()
            }),
            update_mask: mask(&["value_type", "enum_values"]),
        })
        .await,
        Code::FailedPrecondition,
        "value type",
    );
    assert_status(
        tags.update_tag(pb::UpdateTagRequest {
            tag: Some(pb::Tag {
                id: tier.id.clone(),
                enum_values: vec!["中".into(), "低".into()],
                ..Default::default()
            }),
            update_mask: mask(&["enum_values"]),
        })
        .await,
        Code::FailedPrecondition,
        "\"高\"",
    );
    let unchanged = tags
        .get_tag(pb::GetTagRequest {
            id: tier.id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(unchanged, tier);
}

async fn category_cannot_become_exclusive_while_doubled(backend: Backend) {
    let server = TestServer::start(backend).await;
    let mut tags = server.tags();
    let category = fixtures::category(&server, "生命周期", false).await;
    let lead = fixtures::tag(&server, &category.id, "潜在客户", pb::ValueType::Flag, &[]).await;
    let buyer = fixtures::tag(&server, &category.id, "成交客户", pb::ValueType::Flag, &[]).await;
    let wang = customer(&server, "王五").await;
    assign(
        &server,
        &wang.id,
        vec![assignment(&lead.id, ""), assignment(&buyer.id, "")],
    )
    .await;
    let make_exclusive = pb::UpdateCategoryRequest {
        category: Some(pb::Category {
            id: category.id.clone(),
            exclusive: true,
            ..Default::default()
        }),
        update_mask: mask(&["exclusive"]),
    };
    assert_status(
        tags.update_category(make_exclusive.clone()).await,
        Code::FailedPrecondition,
        &wang.id,
    );
    server
        .tagging()
        .remove_tags(pb::RemoveTagsRequest {
            customer_id: wang.id.clone(),
            tag_ids: vec![lead.id.clone()],
        })
        .await
        .unwrap();
    let exclusive = tags
        .update_category(make_exclusive)
        .await
        .unwrap()
        .into_inner();
    assert!(exclusive.exclusive);
}

/// UpdateCategory making a category exclusive while assignments of its tags are
/// in flight: either it is refused (a customer already held two) or, once it has
/// committed, no customer holds two of its tags.
async fn a_category_made_exclusive_amid_assignments_stays_exclusive(backend: Backend) {
    const CUSTOMERS: usize = 8;
    const ROUNDS: usize = 4;
    let server = TestServer::start(backend).await;
    let people: Vec<String> = fixtures::numbered_customers(&server, "排他", CUSTOMERS)
        .await
        .into_iter()
        .map(|c| c.id)
        .collect();
    let mut made_exclusive = 0;
    for round in 0..ROUNDS {
        let category = fixtures::category(&server, &format!("阶段{round}"), false).await;
        let first =
            fixtures::tag(&server, &category.id, "初次接触", pb::ValueType::Flag, &[]).await;
        let second =
            fixtures::tag(&server, &category.id, "意向客户", pb::ValueType::Flag, &[]).await;
        for person in &people {
            assign(&server, person, vec![assignment(&first.id, "")]).await;
        }
        let mut calls = Vec::new();
        for (index, person) in people.iter().enumerate() {
            let mut client = server.tagging_as(As::Writer);
            let request = pb::AssignTagsRequest {
                customer_id: person.clone(),
                assignments: vec![assignment(&second.id, "")],
            };
            calls.push(tokio::spawn(async move {
                tokio::time::sleep(std::time::Duration::from_millis(1 + index as u64)).await;
                client.assign_tags(request).await.map(|_| ())
            }));
        }
        let mut tags = server.tags();
        let request = pb::UpdateCategoryRequest {
            category: Some(pb::Category {
                id: category.id.clone(),
                exclusive: true,
                ..Default::default()
            }),
            update_mask: mask(&["exclusive"]),
        };
        let update = tokio::spawn(async move {
            // Sooner or later among the assignments, round by round.
            tokio::time::sleep(std::time::Duration::from_millis(round as u64)).await;
            tags.update_category(request).await.map(|_| ())
        });
        for call in calls {
            call.await.unwrap().unwrap();
        }
        let exclusive = match update.await.unwrap() {
            Ok(()) => true,
            result => {
                assert_status(result, Code::FailedPrecondition, "more than one");
                false
            }
        };
        if exclusive {
            made_exclusive += 1;
            for person in &people {
                let held = customer_tags(&server, person)
                    .await
                    .into_iter()
                    .filter(|held| held.tag_id == first.id || held.tag_id == second.id)
                    .count();
                assert_eq!(
                    held, 1,
                    "{person} holds {held} tags of exclusive {category:?}"
                );
            }
        }
    }
    eprintln!("made exclusive in {made_exclusive} of {ROUNDS} rounds");
}

/// CreateRule for a tag racing a forced DeleteTag of it: exactly one wins, so no
/// rule is ever left setting a tag that does not exist.
async fn a_rule_and_a_delete_of_its_tag_never_both_succeed(backend: Backend) {
    const TAGS: usize = 12;
    let server = TestServer::start(backend).await;
    let category = fixtures::category(&server, "规则目标", false).await;
    let mut races = Vec::new();
    for index in 0..TAGS {
        let tag = fixtures::tag(
            &server,
            &category.id,
            &format!("目标{index}"),
            pb::ValueType::Flag,
            &[],
        )
        .await;
        let mut rules = server.rules();
        let rule = pb::CreateRuleRequest {
            name: format!("规则{index}"),
            tag_id: tag.id.clone(),
            condition: Some(pb::ConditionInput {
                form: Some(pb::condition_input::Form::Text(
                    "province = \"北京\"".to_owned(),
                )),
            }),
            ..pb::CreateRuleRequest::default()
        };
        let mut tags = server.tags();
        let delete = pb::DeleteTagRequest {
            id: tag.id.clone(),
            force: true,
        };
        // Staggered both ways, so that either call may go first.
        let (rule_delay, delete_delay) = if index % 2 == 0 {
            (0, index as u64 % 4)
        } else {
            (index as u64 % 4, 0)
        };
        let created = tokio::spawn(async move {
            tokio::time::sleep(std::time::Duration::from_millis(rule_delay)).await;
            rules.create_rule(rule).await
        });
        let deleted = tokio::spawn(async move {
            tokio::time::sleep(std::time::Duration::from_millis(delete_delay)).await;
            tags.delete_tag(delete).await
        });
        races.push((tag.id, created, deleted));
    }
    let mut rules_won = 0;
    for (tag_id, created, deleted) in races {
        let created = created.await.unwrap();
        let deleted = deleted.await.unwrap();
        match (created, deleted) {
            (Ok(_), deleted) => {
                assert_status(deleted, Code::FailedPrecondition, "tag rules set it");
                server
                    .tags()
                    .get_tag(pb::GetTagRequest { id: tag_id })
                    .await
                    .unwrap();
                rules_won += 1;
            }
            (created, Ok(_)) => assert_status(created, Code::NotFound, &tag_id),
            (created, deleted) => panic!("neither won: {created:?} / {deleted:?}"),
        }
    }
    let listed = server
        .rules()
        .list_rules(pb::ListRulesRequest::default())
        .await
        .unwrap()
        .into_inner()
        .rules
        .len();
    assert_eq!(
        listed, rules_won,
        "every rule listed sets a tag that exists"
    );
}

async fn tag_stats_count_holders_values_and_sources(backend: Backend) {
    let server = TestServer::start(backend).await;
    let levels = fixtures::category(&server, "会员", false).await;
    let card = fixtures::tag(
        &server,
        &levels.id,
        "会员等级",
        pb::ValueType::Enum,
        &["金卡", "银卡"],
    )
    .await;
    let spend = fixtures::tag(&server, &levels.id, "年消费额", pb::ValueType::Number, &[]).await;
    let vip = fixtures::tag(&server, &levels.id, "VIP", pb::ValueType::Flag, &[]).await;
    let mut ids = Vec::new();
    for name in ["甲", "乙", "丙", "丁"] {
        ids.push(customer(&server, name).await.id);
    }
    for (customer, card_value, spent) in
        [(0, "金卡", "100"), (1, "金卡", "500"), (2, "银卡", "1000")]
    {
        assign(
            &server,
            &ids[customer],
            vec![
                assignment(&card.id, card_value),
                assignment(&spend.id, spent),
            ],
        )
        .await;
    }
    let mut by_rule = assignment(&vip.id, "");
    by_rule.source = pb::TagSource::Rule.into();
    assign(&server, &ids[0], vec![by_rule]).await;
    // An assignment that expires is not counted once it has.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    let mut fleeting = assignment(&vip.id, "");
    fleeting.expires_at = Some(prost_types::Timestamp {
        seconds: i64::try_from(now.as_secs()).unwrap() + 1,
        nanos: 0,
    });
    assign(&server, &ids[3], vec![fleeting]).await;
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;

    let report = server
        .tags_as(As::Reader)
        .get_tag_stats(pb::GetTagStatsRequest {
            category_id: levels.id.clone(),
            histogram_buckets: 2,
            ..pb::GetTagStatsRequest::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(report.total_customers, 4);
    let of = |tag: &pb::Tag| {
        report
            .tags
            .iter()
            .find(|s| s.tag.as_ref().unwrap().id == tag.id)
            .unwrap()
            .clone()
    };
    let cards = of(&card);
    assert_eq!(
        (cards.customers, cards.coverage, cards.distinct_values),
        (3, 0.75, 2)
    );
    assert_eq!(cards.category_name, "会员");
    assert_eq!(
        cards
            .top_values
            .iter()
            .map(|v| (v.value.as_str(), v.customers))
            .collect::<Vec<_>>(),
        vec![("金卡", 2), ("银卡", 1)]
    );
    assert_eq!(
        cards.by_source,
        vec![pb::SourceCount {
            source: "manual".into(),
            assignments: 3
        }]
    );
    let spent = of(&spend);
    assert_eq!(
        spent
            .histogram
            .iter()
            .map(|b| (b.lower, b.upper, b.customers))
            .collect::<Vec<_>>(),
        vec![(100.0, 550.0, 2), (550.0, 1000.0, 1)]
    );
    let vips = of(&vip);
    assert_eq!(
        (vips.customers, vips.distinct_values),
        (1, 0),
        "the expired assignment is not counted"
    );
    assert_eq!(
        vips.by_source,
        vec![pb::SourceCount {
            source: "rule".into(),
            assignments: 1
        }]
    );

    let one = server
        .tags()
        .get_tag_stats(pb::GetTagStatsRequest {
            tag_id: vip.id.clone(),
            ..pb::GetTagStatsRequest::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(one.tags.len(), 1);
    assert_status(
        server
            .tags()
            .get_tag_stats(pb::GetTagStatsRequest {
                tag_id: UNKNOWN_ID.into(),
                ..pb::GetTagStatsRequest::default()
            })
            .await,
        Code::NotFound,
        "tag",
    );
    assert_status(
        server
            .tags()
            .get_tag_stats(pb::GetTagStatsRequest {
                top_values: 101,
                ..pb::GetTagStatsRequest::default()
            })
            .await,
        Code::InvalidArgument,
        "top_values",
    );
}
