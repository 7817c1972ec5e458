//! RuleService: rules keep a tag on exactly the customers who match, never
//! override a manual assignment unless told, replace correctly inside an
//! exclusive category, never run twice at once, run on their schedule, and
//! the ready-made templates tag customers by what they bought.

use chrono::{Duration, Utc};
use tagd_proto::v1 as pb;
use tonic::Code;

use crate::fixtures::{
    UNKNOWN_ID, assign, assignment, category, customer_tags, history, mask, tag, text,
};
use crate::harness::{As, Backend, Options, TestServer, assert_status, backend_tests};

backend_tests!(
    a_rule_tags_who_matches_and_untags_who_stops_matching,
    rules_leave_manual_tags_alone_and_replace_within_an_exclusive_category,
    a_rule_never_runs_twice_at_once,
    rules_run_on_their_schedule,
    bad_rules_are_refused_naming_the_field,
    templates_tag_customers_by_what_they_bought,
    a_template_installs_whole_or_not_at_all,
);

fn rule_request(name: &str, tag_id: &str, value: &str, condition: &str) -> pb::CreateRuleRequest {
    pb::CreateRuleRequest {
        name: name.to_owned(),
        tag_id: tag_id.to_owned(),
        value: value.to_owned(),
        condition: text(condition),
        ..pb::CreateRuleRequest::default()
    }
}

async fn create_rule(server: &TestServer, request: pb::CreateRuleRequest) -> pb::Rule {
    server
        .rules()
        .create_rule(request)
        .await
        .unwrap()
        .into_inner()
}

async fn run(server: &TestServer, rule_id: &str) -> pb::RuleRun {
    let mut runs = server
        .rules()
        .run_rules(pb::RunRulesRequest {
            id: rule_id.to_owned(),
        })
        .await
        .unwrap()
        .into_inner()
        .runs;
    assert_eq!(runs.len(), 1);
    let run = runs.remove(0);
    assert_eq!(run.state(), pb::RuleRunState::Succeeded, "{}", run.error);
    run
}

async fn person(server: &TestServer, name: &str, province: &str, level: &str) -> pb::Customer {
    server
        .customers()
        .create_customer(pb::CreateCustomerRequest {
            customer: Some(pb::Customer {
                name: name.to_owned(),
                address: Some(pb::Address {
                    province: province.to_owned(),
                    ..Default::default()
                }),
                attributes: [("会员等级".to_owned(), level.to_owned())].into(),
                ..pb::Customer::default()
            }),
        })
        .await
        .unwrap()
        .into_inner()
}

async fn move_to(server: &TestServer, customer: &pb::Customer, province: &str) {
    server
        .customers()
        .update_customer(pb::UpdateCustomerRequest {
            customer: Some(pb::Customer {
                id: customer.id.clone(),
                address: Some(pb::Address {
                    province: province.to_owned(),
                    ..Default::default()
                }),
                ..pb::Customer::default()
            }),
            update_mask: mask(&["address.province"]),
        })
        .await
        .unwrap();
}

async fn set_level(server: &TestServer, customer: &pb::Customer, level: &str) {
    server
        .customers()
        .update_customer(pb::UpdateCustomerRequest {
            customer: Some(pb::Customer {
                id: customer.id.clone(),
                attributes: [("会员等级".to_owned(), level.to_owned())].into(),
                ..pb::Customer::default()
            }),
            update_mask: mask(&["attributes"]),
        })
        .await
        .unwrap();
}

/// The customer's tags of `tag_id`: (value, source, source_ref).
async fn held(
    server: &TestServer,
    customer_id: &str,
    tag_id: &str,
) -> Option<(String, pb::TagSource, String)> {
    customer_tags(server, customer_id)
        .await
        .into_iter()
        .find(|held| held.tag_id == tag_id)
        .map(|held| (held.value.clone(), held.source(), held.source_ref))
}

async fn a_rule_tags_who_matches_and_untags_who_stops_matching(backend: Backend) {
    let server = TestServer::start(backend).await;
    let region = category(&server, "地域", false).await;
    let beijing = tag(&server, &region.id, "北京客户", pb::ValueType::Flag, &[]).await;
    let zhang = person(&server, "张伟", "北京", "金卡").await;
    let li = person(&server, "李娜", "上海", "金卡").await;
    let wang = person(&server, "王芳", "北京", "银卡").await;
    // 王芳 was tagged by hand before the rule existed.
    assign(&server, &wang.id, vec![assignment(&beijing.id, "")]).await;

    let rule = create_rule(
        &server,
        pb::CreateRuleRequest {
            description: "北京的客户".to_owned(),
            ..rule_request("北京客户", &beijing.id, "", r#"province = "北京""#)
        },
    )
    .await;
    assert_eq!(rule.condition, r#"province = "北京""#);
    assert!(
        rule.enabled && rule.next_run_time.is_none(),
        "no interval, no schedule"
    );

    let preview = server
        .rules()
        .preview_rule(pb::PreviewRuleRequest {
            id: rule.id.clone(),
            ..pb::PreviewRuleRequest::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (preview.matched, preview.gain, preview.keep, preview.lose),
        (2, 1, 1, 0)
    );
    assert_eq!(preview.gain_sample, vec![zhang.id.clone()]);
    assert!(
        held(&server, &zhang.id, &beijing.id).await.is_none(),
        "a preview writes nothing"
    );

    let first = run(&server, &rule.id).await;
    assert_eq!(
        (first.matched, first.gained, first.kept, first.lost),
        (2, 1, 1, 0)
    );
    assert_eq!(first.evaluated, 3);
    assert_eq!(first.actor, "ops");
    assert_eq!(
        held(&server, &zhang.id, &beijing.id).await,
        Some((String::new(), pb::TagSource::Rule, rule.id.clone()))
    );
    assert!(held(&server, &li.id, &beijing.id).await.is_none());
    let gained = history(&server, &zhang.id).await;
    assert_eq!(gained.len(), 1);
    assert_eq!(gained[0].action(), pb::HistoryAction::Assign);
    assert_eq!(
        (gained[0].source(), gained[0].source_ref.as_str()),
        (pb::TagSource::Rule, rule.id.as_str())
    );

    // A second run changes nothing.
    let again = run(&server, &rule.id).await;
    assert_eq!((again.gained, again.lost, again.kept), (0, 0, 2));

    // Both leave 北京: the rule takes back what it gave, never the hand-made tag.
    move_to(&server, &zhang, "上海").await;
    move_to(&server, &wang, "上海").await;
    let third = run(&server, &rule.id).await;
    assert_eq!((third.matched, third.lost), (0, 1));
    assert!(held(&server, &zhang.id, &beijing.id).await.is_none());
    assert_eq!(
        held(&server, &wang.id, &beijing.id).await.map(|h| h.1),
        Some(pb::TagSource::Manual)
    );
    let removal = &history(&server, &zhang.id).await[0];
    assert_eq!(removal.action(), pb::HistoryAction::Remove);
    assert_eq!(
        (removal.source(), removal.source_ref.as_str()),
        (pb::TagSource::Rule, rule.id.as_str())
    );

    let runs = server
        .rules()
        .list_rule_runs(pb::ListRuleRunsRequest {
            rule_id: rule.id.clone(),
            page_size: 2,
            ..pb::ListRuleRunsRequest::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        runs.runs.iter().map(|r| r.id.clone()).collect::<Vec<_>>(),
        vec![third.id.clone(), again.id.clone()],
        "newest first"
    );
    assert!(!runs.next_page_token.is_empty());
    let stored = server
        .rules()
        .get_rule(pb::GetRuleRequest {
            id: rule.id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(stored.last_run.map(|r| r.id), Some(third.id));

    // Readers see rules; only admins change or run them.
    let listed = server
        .rules_as(As::Reader)
        .list_rules(pb::ListRulesRequest {
            tag_id: beijing.id.clone(),
            ..pb::ListRulesRequest::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.rules.len(), 1);
    assert_status(
        server
            .rules_as(As::Writer)
            .run_rules(pb::RunRulesRequest {
                id: rule.id.clone(),
            })
            .await,
        Code::PermissionDenied,
        "needs admin",
    );

    // Deleting the rule with its assignments takes back what it gave (none left now),
    // and a deleted rule is gone.
    zhang_back_and_delete(&server, &rule, &zhang, &beijing).await;
}

async fn zhang_back_and_delete(
    server: &TestServer,
    rule: &pb::Rule,
    zhang: &pb::Customer,
    beijing: &pb::Tag,
) {
    move_to(server, zhang, "北京").await;
    run(server, &rule.id).await;
    assert!(held(server, &zhang.id, &beijing.id).await.is_some());
    let deleted = server
        .rules()
        .delete_rule(pb::DeleteRuleRequest {
            id: rule.id.clone(),
            remove_assignments: true,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(deleted.removed, 1);
    assert!(held(server, &zhang.id, &beijing.id).await.is_none());
    assert_status(
        server
            .rules()
            .get_rule(pb::GetRuleRequest {
                id: rule.id.clone(),
            })
            .await,
        Code::NotFound,
        "rule",
    );
}

async fn rules_leave_manual_tags_alone_and_replace_within_an_exclusive_category(backend: Backend) {
    let server = TestServer::start(backend).await;
    let tiers = category(&server, "价值等级", true).await;
    let high = tag(&server, &tiers.id, "高价值", pb::ValueType::Flag, &[]).await;
    let middle = tag(&server, &tiers.id, "中价值", pb::ValueType::Flag, &[]).await;
    let by_hand = person(&server, "手工", "北京", "金卡").await;
    let promoted = person(&server, "升级", "北京", "银卡").await;
    let fresh = person(&server, "新人", "北京", "金卡").await;
    assign(&server, &by_hand.id, vec![assignment(&middle.id, "")]).await;

    let silver = create_rule(
        &server,
        rule_request("银卡中价值", &middle.id, "", r#"attr("会员等级") = "银卡""#),
    )
    .await;
    let gold = create_rule(
        &server,
        rule_request("金卡高价值", &high.id, "", r#"attr("会员等级") = "金卡""#),
    )
    .await;
    assert_eq!(run(&server, &silver.id).await.gained, 1);
    assert_eq!(
        held(&server, &promoted.id, &middle.id).await.map(|h| h.1),
        Some(pb::TagSource::Rule)
    );

    set_level(&server, &promoted, "金卡").await;
    let gold_run = run(&server, &gold.id).await;
    assert_eq!(
        (
            gold_run.matched,
            gold_run.gained,
            gold_run.changed,
            gold_run.held_back
        ),
        (3, 1, 1, 1),
        "新人 gains, 升级's rule-given 中价值 is replaced, 手工's manual one is held back"
    );
    let tiers_of = |tags: Vec<pb::CustomerTag>| {
        tags.into_iter()
            .filter(|t| t.category_id == tiers.id)
            .map(|t| t.tag_name)
            .collect::<Vec<_>>()
    };
    assert_eq!(
        tiers_of(customer_tags(&server, &promoted.id).await),
        vec!["高价值"]
    );
    assert_eq!(
        tiers_of(customer_tags(&server, &fresh.id).await),
        vec!["高价值"]
    );
    assert_eq!(
        tiers_of(customer_tags(&server, &by_hand.id).await),
        vec!["中价值"]
    );
    let replaced = history(&server, &promoted.id).await;
    assert!(
        replaced
            .iter()
            .any(|e| e.action() == pb::HistoryAction::Replace
                && e.tag_id == middle.id
                && e.source() == pb::TagSource::Rule
                && e.source_ref == gold.id),
        "the exclusive category's old tag is recorded as replaced: {replaced:?}"
    );
    // The silver rule no longer owns 升级's tier: its next run removes nothing.
    set_level(&server, &promoted, "铜卡").await;
    assert_eq!(run(&server, &silver.id).await.lost, 0);
    assert!(held(&server, &promoted.id, &high.id).await.is_some());

    // Told to override, the rule replaces the manual assignment too.
    server
        .rules()
        .update_rule(pb::UpdateRuleRequest {
            id: gold.id.clone(),
            update_mask: mask(&["overrides_manual"]),
            overrides_manual: true,
            ..pb::UpdateRuleRequest::default()
        })
        .await
        .unwrap();
    let overriding = run(&server, &gold.id).await;
    assert_eq!(
        (overriding.changed, overriding.held_back, overriding.lost),
        (1, 0, 1)
    );
    assert_eq!(
        tiers_of(customer_tags(&server, &by_hand.id).await),
        vec!["高价值"]
    );
}

async fn a_rule_never_runs_twice_at_once(backend: Backend) {
    let server = TestServer::start(backend).await;
    let risk = category(&server, "风险", false).await;
    let silent = tag(&server, &risk.id, "未购买", pb::ValueType::Flag, &[]).await;
    // Enough customers that writing their tags takes a while: the runs overlap.
    let entries: Vec<pb::UpsertCustomerEntry> = (0..5_000)
        .map(|i| pb::UpsertCustomerEntry {
            key: Some(pb::ExternalId {
                channel: "crm".to_owned(),
                external_id: format!("c{i}"),
            }),
            customer: Some(pb::Customer {
                name: format!("客户{i}"),
                ..pb::Customer::default()
            }),
        })
        .collect();
    for chunk in entries.chunks(1_000) {
        server
            .customers()
            .upsert_customers(pb::UpsertCustomersRequest {
                entries: chunk.to_vec(),
            })
            .await
            .unwrap();
    }
    let rule = create_rule(
        &server,
        rule_request("未购买", &silent.id, "", "orders_90d = 0"),
    )
    .await;
    let request = pb::RunRulesRequest {
        id: rule.id.clone(),
    };
    let (mut first, mut second) = (server.rules(), server.rules());
    let (a, b) = tokio::join!(first.run_rules(request.clone()), second.run_rules(request));
    let (winner, loser) = match (a, b) {
        (Ok(winner), Err(loser)) | (Err(loser), Ok(winner)) => (winner.into_inner(), loser),
        (a, b) => panic!("exactly one of two simultaneous runs goes ahead: {a:?} {b:?}"),
    };
    assert_eq!(
        loser.code(),
        Code::FailedPrecondition,
        "{}",
        loser.message()
    );
    assert!(
        loser.message().contains("already running"),
        "{}",
        loser.message()
    );
    assert_eq!(winner.runs[0].gained, 5_000);
    // Once it ends, the rule runs again (and finds nothing to do).
    assert_eq!(run(&server, &rule.id).await.kept, 5_000);
}

async fn rules_run_on_their_schedule(backend: Backend) {
    let server = TestServer::start_with(
        backend,
        Options {
            extra_config: "rule_tick_secs = 1".to_owned(),
            ..Options::default()
        },
    )
    .await;
    let region = category(&server, "地域", false).await;
    let beijing = tag(&server, &region.id, "北京客户", pb::ValueType::Flag, &[]).await;
    let zhang = person(&server, "张伟", "北京", "金卡").await;
    let rule = create_rule(
        &server,
        pb::CreateRuleRequest {
            interval_seconds: 3_600,
            ..rule_request("北京客户", &beijing.id, "", r#"province = "北京""#)
        },
    )
    .await;
    let next = rule.next_run_time.expect("a scheduled rule has a next run");
    let in_an_hour = Utc::now() + Duration::hours(1);
    assert!(
        (next.seconds - in_an_hour.timestamp()).abs() < 60,
        "{next:?}"
    );
    assert!(held(&server, &zhang.id, &beijing.id).await.is_none());

    // An hour passes.
    server
        .database
        .execute(
            "UPDATE tag_rules SET next_run_at = '2000-01-01 00:00:00' WHERE id = ?",
            &[&rule.id],
        )
        .await;
    let mut scheduled = None;
    for _ in 0..100 {
        let runs = server
            .rules()
            .list_rule_runs(pb::ListRuleRunsRequest {
                rule_id: rule.id.clone(),
                ..pb::ListRuleRunsRequest::default()
            })
            .await
            .unwrap()
            .into_inner()
            .runs;
        if let Some(done) = runs
            .into_iter()
            .find(|r| r.state() == pb::RuleRunState::Succeeded)
        {
            scheduled = Some(done);
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let scheduled = scheduled.expect("the scheduler ran the due rule within 10 s");
    assert_eq!(
        (scheduled.trigger(), scheduled.actor.as_str()),
        (pb::RuleRunTrigger::Schedule, "scheduler")
    );
    assert_eq!(scheduled.gained, 1);
    assert!(held(&server, &zhang.id, &beijing.id).await.is_some());
    let after = server
        .rules()
        .get_rule(pb::GetRuleRequest {
            id: rule.id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(
        after
            .next_run_time
            .is_some_and(|t| t.seconds > Utc::now().timestamp() + 3_000),
        "the next run is an interval away"
    );

    // Disabled rules are not scheduled.
    let disabled = server
        .rules()
        .update_rule(pb::UpdateRuleRequest {
            id: rule.id.clone(),
            update_mask: mask(&["enabled"]),
            enabled: false,
            ..pb::UpdateRuleRequest::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(!disabled.enabled && disabled.next_run_time.is_none());
}

async fn bad_rules_are_refused_naming_the_field(backend: Backend) {
    let server = TestServer::start(backend).await;
    let tiers = category(&server, "价值等级", false).await;
    let tier = tag(
        &server,
        &tiers.id,
        "等级",
        pb::ValueType::Enum,
        &["高", "低"],
    )
    .await;
    let flag = tag(&server, &tiers.id, "标记", pb::ValueType::Flag, &[]).await;
    let mut rules = server.rules();
    let good = rule_request("好规则", &tier.id, "高", r#"province = "北京""#);
    assert_status(
        rules
            .create_rule(pb::CreateRuleRequest {
                tag_id: UNKNOWN_ID.to_owned(),
                ..good.clone()
            })
            .await,
        Code::NotFound,
        "tag_id",
    );
    assert_status(
        rules
            .create_rule(pb::CreateRuleRequest {
                condition: text("province = "),
                ..good.clone()
            })
            .await,
        Code::InvalidArgument,
        "condition.text",
    );
    assert_status(
        rules
            .create_rule(pb::CreateRuleRequest {
                condition: text(r#"has_tag("没有这个标签")"#),
                ..good.clone()
            })
            .await,
        Code::InvalidArgument,
        "没有这个标签",
    );
    assert_status(
        rules
            .create_rule(pb::CreateRuleRequest {
                value: "中".to_owned(),
                ..good.clone()
            })
            .await,
        Code::InvalidArgument,
        "value",
    );
    assert_status(
        rules
            .create_rule(pb::CreateRuleRequest {
                tag_id: flag.id.clone(),
                ..good.clone()
            })
            .await,
        Code::InvalidArgument,
        "value",
    );
    assert_status(
        rules
            .create_rule(pb::CreateRuleRequest {
                interval_seconds: 5,
                ..good.clone()
            })
            .await,
        Code::InvalidArgument,
        "interval_seconds",
    );
    assert_status(
        rules
            .create_rule(pb::CreateRuleRequest {
                name: "  ".to_owned(),
                ..good.clone()
            })
            .await,
        Code::InvalidArgument,
        "name",
    );
    let created = rules.create_rule(good.clone()).await.unwrap().into_inner();
    assert_status(
        rules
            .create_rule(pb::CreateRuleRequest {
                name: "好规则 ".to_owned(),
                ..good.clone()
            })
            .await,
        Code::AlreadyExists,
        "好规则",
    );
    assert_status(
        server.rules_as(As::Writer).create_rule(good.clone()).await,
        Code::PermissionDenied,
        "needs admin",
    );
    assert_status(
        rules
            .update_rule(pb::UpdateRuleRequest {
                id: created.id.clone(),
                update_mask: mask(&["tag_id"]),
                ..pb::UpdateRuleRequest::default()
            })
            .await,
        Code::InvalidArgument,
        "update_mask",
    );
    assert_status(
        rules
            .update_rule(pb::UpdateRuleRequest {
                id: created.id.clone(),
                update_mask: mask(&["value"]),
                value: "中".to_owned(),
                ..pb::UpdateRuleRequest::default()
            })
            .await,
        Code::InvalidArgument,
        "value",
    );
    assert_status(
        rules
            .run_rules(pb::RunRulesRequest {
                id: UNKNOWN_ID.to_owned(),
            })
            .await,
        Code::NotFound,
        "rule",
    );
    assert_status(
        rules.preview_rule(pb::PreviewRuleRequest::default()).await,
        Code::InvalidArgument,
        "id",
    );
    assert_status(
        rules
            .install_template(pb::InstallTemplateRequest::default())
            .await,
        Code::InvalidArgument,
        "template",
    );
    assert_status(
        install(&server, pb::RuleTemplate::ValueTier, false, 0).await,
        Code::FailedPrecondition,
        "no customer has an order",
    );
    // An unsaved draft previews without a name; nothing is stored by it.
    let draft = rules
        .preview_rule(pb::PreviewRuleRequest {
            draft: Some(pb::CreateRuleRequest {
                name: String::new(),
                ..good
            }),
            ..pb::PreviewRuleRequest::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(draft.matched, 0);
    let all = rules
        .list_rules(pb::ListRulesRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(all.rules.len(), 1);

    // Nor can the tag it sets, even with force.
    assert_status(
        server
            .tags()
            .delete_tag(pb::DeleteTagRequest {
                id: tier.id.clone(),
                force: true,
            })
            .await,
        Code::FailedPrecondition,
        "好规则",
    );

    // A segment a rule's condition names cannot be deleted from under it.
    let capital = server
        .segments()
        .create_segment(pb::CreateSegmentRequest {
            name: "首都".to_owned(),
            description: String::new(),
            condition: text(r#"province = "北京""#),
        })
        .await
        .unwrap()
        .into_inner();
    rules
        .create_rule(rule_request(
            "首都客户",
            &tier.id,
            "高",
            r#"in_segment("首都")"#,
        ))
        .await
        .unwrap();
    assert_status(
        server
            .segments()
            .delete_segment(pb::DeleteSegmentRequest {
                segment_id: capital.id,
            })
            .await,
        Code::FailedPrecondition,
        "rule \"首都客户\"",
    );
}

async fn install(
    server: &TestServer,
    template: pb::RuleTemplate,
    replace: bool,
    interval_seconds: u64,
) -> Result<pb::InstallTemplateResponse, tonic::Status> {
    server
        .rules()
        .install_template(pb::InstallTemplateRequest {
            template: template.into(),
            replace,
            interval_seconds,
        })
        .await
        .map(tonic::Response::into_inner)
}

fn days_ago(days: i64) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: (Utc::now() - Duration::days(days)).timestamp(),
        nanos: 0,
    }
}

async fn templates_tag_customers_by_what_they_bought(backend: Backend) {
    let server = TestServer::start(backend).await;
    let mut buyers = Vec::new();
    for (i, spent) in ["100", "200", "300", "400", "1000"].iter().enumerate() {
        let buyer = person(&server, &format!("买家{i}"), "北京", "金卡").await;
        server
            .purchases()
            .record_purchases(pb::RecordPurchasesRequest {
                purchases: vec![pb::Purchase {
                    customer_id: buyer.id.clone(),
                    channel: "shop".to_owned(),
                    order_id: format!("o{i}"),
                    order_time: Some(days_ago(10)),
                    total: (*spent).to_owned(),
                    status: "paid".to_owned(),
                    ..pb::Purchase::default()
                }],
            })
            .await
            .unwrap();
        buyers.push(buyer);
    }
    let browser = person(&server, "只看不买", "北京", "金卡").await;

    let mut rules = server.rules();
    let tier = install(&server, pb::RuleTemplate::ValueTier, false, 0)
        .await
        .unwrap();
    assert_eq!(tier.rules.len(), 3);
    assert_eq!(tier.tag_ids.len(), 3);
    assert!(
        tier.rules
            .iter()
            .all(|r| r.template == "value_tier" && r.interval_seconds == 86_400)
    );
    let runs = rules
        .run_rules(pb::RunRulesRequest::default())
        .await
        .unwrap()
        .into_inner()
        .runs;
    assert_eq!(runs.len(), 3);
    let tier_of = |tags: Vec<pb::CustomerTag>| {
        tags.into_iter()
            .filter(|t| t.category_id == tier.category_id)
            .map(|t| t.tag_name)
            .collect::<Vec<_>>()
    };
    let mut tiers = Vec::new();
    for buyer in &buyers {
        tiers.push(tier_of(customer_tags(&server, &buyer.id).await).join(","));
    }
    assert_eq!(tiers, ["低价值", "低价值", "中价值", "高价值", "高价值"]);
    assert!(tier_of(customer_tags(&server, &browser.id).await).is_empty());

    // A second install is refused; with replace, the same rules are updated in place.
    assert_status(
        install(&server, pb::RuleTemplate::ValueTier, false, 0).await,
        Code::AlreadyExists,
        "already installed",
    );
    let again = install(&server, pb::RuleTemplate::ValueTier, true, 7_200)
        .await
        .unwrap();
    assert_eq!(
        again.rules.iter().map(|r| r.id.clone()).collect::<Vec<_>>(),
        tier.rules.iter().map(|r| r.id.clone()).collect::<Vec<_>>()
    );
    assert!(again.rules.iter().all(|r| r.interval_seconds == 7_200));

    let rfm = install(&server, pb::RuleTemplate::Rfm, false, 0)
        .await
        .unwrap();
    assert_eq!(rfm.rules.len(), 23);
    for rule in &rfm.rules {
        run(&server, &rule.id).await;
    }
    let top = customer_tags(&server, &buyers[4].id).await;
    let class = top
        .iter()
        .find(|t| t.tag_name == "RFM分类")
        .expect("an RFM class");
    // Everyone ordered once, so nobody is above the median order count.
    assert_eq!(class.value, "重要发展客户", "{top:?}");
    assert_eq!(
        top.iter()
            .find(|t| t.tag_name == "M分")
            .map(|t| t.value.as_str()),
        Some("5")
    );
    assert!(
        customer_tags(&server, &browser.id).await.is_empty(),
        "non-buyers get no RFM class"
    );

    let lifecycle = install(&server, pb::RuleTemplate::Lifecycle, false, 0)
        .await
        .unwrap();
    for rule in &lifecycle.rules {
        run(&server, &rule.id).await;
    }
    let stage = |tags: Vec<pb::CustomerTag>| {
        tags.into_iter()
            .filter(|t| t.category_id == lifecycle.category_id)
            .map(|t| t.tag_name)
            .collect::<Vec<_>>()
    };
    assert_eq!(
        stage(customer_tags(&server, &browser.id).await),
        vec!["潜在客户"]
    );
    assert_eq!(
        stage(customer_tags(&server, &buyers[0].id).await),
        vec!["成交客户"]
    );

    let churn = install(&server, pb::RuleTemplate::ChurnRisk, false, 0)
        .await
        .unwrap();
    assert_eq!(churn.rules.len(), 2);
}

/// Everything the catalogue and the rule list hold, to compare before and after.
async fn catalogue_and_rules(
    server: &TestServer,
) -> (Vec<pb::Category>, Vec<pb::Tag>, Vec<pb::Rule>) {
    let mut tags = server.tags();
    let categories = tags
        .list_categories(pb::ListCategoriesRequest {
            page_size: 1000,
            page_token: String::new(),
        })
        .await
        .unwrap()
        .into_inner()
        .categories;
    let all_tags = tags
        .list_tags(pb::ListTagsRequest {
            page_size: 1000,
            ..pb::ListTagsRequest::default()
        })
        .await
        .unwrap()
        .into_inner()
        .tags;
    let rules = server
        .rules()
        .list_rules(pb::ListRulesRequest {
            page_size: 1000,
            ..pb::ListRulesRequest::default()
        })
        .await
        .unwrap()
        .into_inner()
        .rules;
    (categories, all_tags, rules)
}

/// An install that fails half-way (after its category and tags, at its last rule; or
/// at its last tag) leaves nothing behind; a second install with `replace` changes nothing.
async fn a_template_installs_whole_or_not_at_all(backend: Backend) {
    let server = TestServer::start(backend).await;
    // A hand-written rule holds the name of the lifecycle template's last rule.
    let own = category(&server, "手工", false).await;
    let own_tag = tag(&server, &own.id, "老主顾", pb::ValueType::Flag, &[]).await;
    let squatter = create_rule(
        &server,
        rule_request("生命周期·老客户", &own_tag.id, "", "recency_days >= 0"),
    )
    .await;
    let before = catalogue_and_rules(&server).await;
    assert_status(
        install(&server, pb::RuleTemplate::Lifecycle, false, 0).await,
        Code::AlreadyExists,
        "rule \"生命周期·老客户\"",
    );
    assert_eq!(
        catalogue_and_rules(&server).await,
        before,
        "no category, tag or rule of the failed install is left"
    );

    // Without that rule, the template's category exists with its last tag of another type.
    server
        .rules()
        .delete_rule(pb::DeleteRuleRequest {
            id: squatter.id,
            ..pb::DeleteRuleRequest::default()
        })
        .await
        .unwrap();
    let stages = category(&server, "生命周期", true).await;
    let wrong = tag(&server, &stages.id, "老客户", pb::ValueType::Text, &[]).await;
    let before = catalogue_and_rules(&server).await;
    assert_status(
        install(&server, pb::RuleTemplate::Lifecycle, false, 0).await,
        Code::FailedPrecondition,
        "生命周期/老客户 exists as text",
    );
    assert_eq!(
        catalogue_and_rules(&server).await,
        before,
        "the tags created before the misfit are gone again"
    );

    server
        .tags()
        .delete_tag(pb::DeleteTagRequest {
            id: wrong.id,
            force: false,
        })
        .await
        .unwrap();
    let first = install(&server, pb::RuleTemplate::Lifecycle, false, 0)
        .await
        .unwrap();
    assert_eq!(
        first.category_id, stages.id,
        "the existing category is used"
    );
    assert_eq!((first.tag_ids.len(), first.rules.len()), (5, 5));
    let installed = catalogue_and_rules(&server).await;
    assert_status(
        install(&server, pb::RuleTemplate::Lifecycle, false, 0).await,
        Code::AlreadyExists,
        "already installed",
    );
    let again = install(&server, pb::RuleTemplate::Lifecycle, true, 0)
        .await
        .unwrap();
    assert_eq!(
        again.rules, first.rules,
        "the same rules, not even rewritten"
    );
    assert_eq!(again.tag_ids, first.tag_ids);
    assert_eq!(
        catalogue_and_rules(&server).await,
        installed,
        "installing again changed nothing"
    );
}
