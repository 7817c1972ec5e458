//! SegmentService: segments over the condition language, counted and listed
//! from the in-memory index (the reference path for what it does not hold),
//! kept in step with this server's writes and with another server's over
//! the same MariaDB database.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use tagd_proto::v1 as pb;
use tonic::Code;

use crate::fixtures::{UNKNOWN_ID, assign, assignment, category, count_condition, mask, tag, text};
use crate::harness::{As, Backend, Database, Options, TestServer, assert_status, backend_tests};

backend_tests!(
    segments_count_and_list_what_a_hand_count_says,
    bad_conditions_are_refused_with_where_and_what,
    snapshots_freeze_exports_stream_and_comparisons_overlap,
    streamed_members_are_the_paged_members_from_one_evaluation,
    catalogue_writes_show_in_the_next_count,
    a_delete_shows_in_the_next_count_whatever_the_follower_polled,
);

/// The catalogue and customers the scenarios share.
struct World {
    value: pb::Tag,
    churn: pb::Tag,
    spend: pb::Tag,
    /// 张伟 北京 female 30 (高价值, 流失风险, 年消费额 8000)
    zhang: pb::Customer,
    /// 李娜 北京 female 40 (高价值)
    li: pb::Customer,
    /// 王芳 上海 female 28 (高价值, 年消费额 3000)
    wang: pb::Customer,
    /// 赵强 北京 male, no birthday (低价值, 流失风险)
    zhao: pb::Customer,
}

async fn person(
    server: &TestServer,
    name: &str,
    province: &str,
    gender: pb::Gender,
    birthday: &str,
    level: &str,
) -> pb::Customer {
    server
        .customers()
        .create_customer(pb::CreateCustomerRequest {
            customer: Some(pb::Customer {
                name: name.to_owned(),
                gender: gender.into(),
                birthday: birthday.to_owned(),
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

/// A birthday `years` years and a few days ago.
fn born(years: i32) -> String {
    use chrono::Datelike;
    let today = chrono::Utc::now().date_naive() - chrono::Days::new(3);
    today
        .with_year(today.year() - years)
        .unwrap_or(today)
        .format("%Y-%m-%d")
        .to_string()
}

async fn world(server: &TestServer) -> World {
    let levels = category(server, "客户价值", true).await;
    let value = tag(
        server,
        &levels.id,
        "价值等级",
        pb::ValueType::Enum,
        &["高价值", "中价值", "低价值"],
    )
    .await;
    let risks = category(server, "风险", false).await;
    let churn = tag(server, &risks.id, "流失风险", pb::ValueType::Flag, &[]).await;
    let money = category(server, "消费", false).await;
    let spend = tag(server, &money.id, "年消费额", pb::ValueType::Number, &[]).await;
    let zhang = person(
        server,
        "张伟",
        "北京",
        pb::Gender::Female,
        &born(30),
        "金卡",
    )
    .await;
    let li = person(
        server,
        "李娜",
        "北京",
        pb::Gender::Female,
        &born(40),
        "银卡",
    )
    .await;
    let wang = person(
        server,
        "王芳",
        "上海",
        pb::Gender::Female,
        &born(28),
        "金卡",
    )
    .await;
    let zhao = person(server, "赵强", "北京", pb::Gender::Male, "", "普通").await;
    assign(
        server,
        &zhang.id,
        vec![
            assignment(&value.id, "高价值"),
            assignment(&churn.id, ""),
            assignment(&spend.id, "8000"),
        ],
    )
    .await;
    assign(server, &li.id, vec![assignment(&value.id, "高价值")]).await;
    assign(
        server,
        &wang.id,
        vec![
            assignment(&value.id, "高价值"),
            assignment(&spend.id, "3000"),
        ],
    )
    .await;
    assign(
        server,
        &zhao.id,
        vec![assignment(&value.id, "低价值"), assignment(&churn.id, "")],
    )
    .await;
    World {
        value,
        churn,
        spend,
        zhang,
        li,
        wang,
        zhao,
    }
}

async fn create(server: &TestServer, name: &str, condition: &str) -> pb::Segment {
    server
        .segments()
        .create_segment(pb::CreateSegmentRequest {
            name: name.to_owned(),
            description: String::new(),
            condition: text(condition),
        })
        .await
        .unwrap()
        .into_inner()
}

async fn count(server: &TestServer, segment_id: &str) -> pb::CountResponse {
    server
        .segments_as(As::Reader)
        .count_segment(pb::CountSegmentRequest {
            segment_id: segment_id.to_owned(),
        })
        .await
        .unwrap()
        .into_inner()
}

/// Every member, read a page of `page_size` at a time.
async fn members(server: &TestServer, segment_id: &str, page_size: u32) -> BTreeSet<String> {
    let mut all = BTreeSet::new();
    let mut token = String::new();
    loop {
        let page = server
            .segments()
            .list_segment_members(pb::ListSegmentMembersRequest {
                segment_id: segment_id.to_owned(),
                page_size,
                page_token: token,
            })
            .await
            .unwrap()
            .into_inner();
        assert!(page.customer_ids.len() <= page_size as usize);
        for id in page.customer_ids {
            assert!(all.insert(id), "a member listed twice");
        }
        if page.next_page_token.is_empty() {
            assert_eq!(page.total, all.len() as u64);
            return all;
        }
        token = page.next_page_token;
    }
}

/// Every member through StreamSegmentMembers, in the order streamed, checking each chunk;
/// the packed form is read too and must say the same.
async fn streamed(
    server: &TestServer,
    segment_id: &str,
    chunk_size: u32,
) -> Result<Vec<String>, tonic::Status> {
    let mut forms = Vec::new();
    for packed in [false, true] {
        let mut stream = server
            .segments_as(As::Reader)
            .stream_segment_members(pb::StreamSegmentMembersRequest {
                segment_id: segment_id.to_owned(),
                chunk_size,
                packed,
            })
            .await?
            .into_inner();
        let mut all = Vec::new();
        let mut chunks = 0;
        let mut total = None;
        while let Some(chunk) = stream.message().await? {
            chunks += 1;
            let ids: Vec<String> = if packed {
                assert!(chunk.customer_ids.is_empty());
                let text = String::from_utf8(chunk.packed_ids).unwrap();
                assert!(text.is_empty() || text.ends_with('\n'), "{text:?}");
                text.lines().map(str::to_owned).collect()
            } else {
                assert!(chunk.packed_ids.is_empty());
                chunk.customer_ids
            };
            if chunk_size > 0 {
                assert!(ids.len() <= chunk_size as usize);
            }
            assert_eq!(*total.get_or_insert(chunk.total), chunk.total);
            all.extend(ids);
        }
        assert!(chunks >= 1, "even an empty segment streams one chunk");
        assert_eq!(total, Some(all.len() as u64));
        forms.push(all);
    }
    assert_eq!(forms[0], forms[1], "the packed form holds the same ids");
    Ok(forms.swap_remove(0))
}

fn ids(customers: &[&pb::Customer]) -> BTreeSet<String> {
    customers.iter().map(|c| c.id.clone()).collect()
}

async fn segments_count_and_list_what_a_hand_count_says(backend: Backend) {
    let server = TestServer::start(backend).await;
    let w = world(&server).await;

    let beijing_high = create(
        &server,
        "北京高价值",
        r#"tag("价值等级") = "高价值" AND province = "北京""#,
    )
    .await;
    assert_eq!(beijing_high.kind, pb::SegmentKind::Dynamic as i32);
    assert_eq!(
        beijing_high.condition,
        r#"tag("价值等级") = "高价值" AND province = "北京""#
    );
    assert!(beijing_high.condition_tree.is_some());
    let counted = count(&server, &beijing_high.id).await;
    assert_eq!((counted.count, counted.from_index), (2, true));
    assert_eq!(
        members(&server, &beijing_high.id, 1).await,
        ids(&[&w.zhang, &w.li])
    );

    // A segment over a segment, the issue's examples, and the structured form.
    let at_risk = create(
        &server,
        "北京高价值流失",
        r#"in_segment("北京高价值") AND has_tag("流失风险")"#,
    )
    .await;
    assert_eq!(count(&server, &at_risk.id).await.count, 1);
    for (condition, expected) in [
        (r#"tag("年消费额") >= 5000"#, 1),
        (r#"gender = "女" AND age between 25 and 35"#, 2),
        (r#"attr("会员等级") = "金卡""#, 2),
        (r#"NOT has_tag("流失风险") OR province = "上海""#, 2),
        (
            r#"tag("客户价值/价值等级") in ["高价值", "低价值"] AND NOT age >= 0"#,
            1,
        ),
    ] {
        let answer = count_condition(&server, condition).await;
        assert_eq!(answer.count, expected, "{condition}");
        assert!(answer.from_index, "{condition}: {}", answer.fallback_reason);
    }
    let tree = server
        .segments()
        .validate_condition(pb::ValidateConditionRequest {
            condition: text(r#"has_tag("流失风险") and (province = "北京")"#),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        tree.condition,
        r#"has_tag("流失风险") AND province = "北京""#
    );
    let by_tree = server
        .segments()
        .count_condition(pb::CountConditionRequest {
            condition: Some(pb::ConditionInput {
                form: Some(pb::condition_input::Form::Tree(
                    tree.condition_tree.unwrap(),
                )),
            }),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(by_tree.count, 2);

    // What the index does not hold is answered by evaluating every customer.
    let named = count_condition(&server, r#"name contains "张" OR tag("年消费额") < 5000"#).await;
    assert_eq!((named.count, named.from_index), (2, false));
    assert!(
        named.fallback_reason.contains("name"),
        "{}",
        named.fallback_reason
    );

    // Writes show in the next count: assign, remove, change a field, delete.
    assign(&server, &w.wang.id, vec![assignment(&w.churn.id, "")]).await;
    server
        .customers()
        .update_customer(pb::UpdateCustomerRequest {
            customer: Some(pb::Customer {
                id: w.wang.id.clone(),
                address: Some(pb::Address {
                    province: "北京".into(),
                    ..Default::default()
                }),
                ..pb::Customer::default()
            }),
            update_mask: mask(&["address.province"]),
        })
        .await
        .unwrap();
    assert_eq!(count(&server, &beijing_high.id).await.count, 3);
    assert_eq!(
        members(&server, &at_risk.id, 10).await,
        ids(&[&w.zhang, &w.wang])
    );
    server
        .tagging()
        .remove_tags(pb::RemoveTagsRequest {
            customer_id: w.zhang.id.clone(),
            tag_ids: vec![w.churn.id.clone()],
        })
        .await
        .unwrap();
    assert_eq!(members(&server, &at_risk.id, 10).await, ids(&[&w.wang]));
    server
        .customers()
        .delete_customer(pb::DeleteCustomerRequest {
            id: w.li.id.clone(),
        })
        .await
        .unwrap();
    assert_eq!(
        members(&server, &beijing_high.id, 10).await,
        ids(&[&w.zhang, &w.wang])
    );

    // An assignment stops counting when it expires, before any sweep.
    let soon = chrono::Utc::now() + chrono::Duration::milliseconds(1500);
    server
        .tagging()
        .assign_tags(pb::AssignTagsRequest {
            customer_id: w.zhao.id.clone(),
            assignments: vec![pb::TagAssignment {
                expires_at: Some(prost_types::Timestamp {
                    seconds: soon.timestamp(),
                    nanos: 0,
                }),
                ..assignment(&w.spend.id, "99999")
            }],
        })
        .await
        .unwrap();
    assert_eq!(
        count_condition(&server, r#"tag("年消费额") > 9000"#)
            .await
            .count,
        1
    );
    tokio::time::sleep(Duration::from_millis(2000)).await;
    assert_eq!(
        count_condition(&server, r#"tag("年消费额") > 9000"#)
            .await
            .count,
        0
    );

    // Get, list, update, delete; references protect a segment.
    let got = server
        .segments_as(As::Reader)
        .get_segment(pb::GetSegmentRequest {
            segment_id: beijing_high.id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(got.name, "北京高价值");
    let listed = server
        .segments_as(As::Reader)
        .list_segments(pb::ListSegmentsRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.segments.len(), 2);
    assert_status(
        server
            .segments()
            .update_segment(pb::UpdateSegmentRequest {
                segment_id: beijing_high.id.clone(),
                name: Some("首都高价值".into()),
                ..Default::default()
            })
            .await,
        Code::FailedPrecondition,
        "北京高价值流失",
    );
    assert_status(
        server
            .segments()
            .delete_segment(pb::DeleteSegmentRequest {
                segment_id: beijing_high.id.clone(),
            })
            .await,
        Code::FailedPrecondition,
        "in_segment",
    );
    let updated = server
        .segments()
        .update_segment(pb::UpdateSegmentRequest {
            segment_id: beijing_high.id.clone(),
            description: Some("北京的高价值客户".into()),
            condition: text(r#"tag("价值等级") = "高价值" AND province = "上海""#),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(updated.description, "北京的高价值客户");
    assert_eq!(count(&server, &beijing_high.id).await.count, 0);
    assert_status(
        server
            .segments()
            .create_segment(pb::CreateSegmentRequest {
                name: "北京高价值".into(),
                condition: text(r#"has_tag("流失风险")"#),
                ..Default::default()
            })
            .await,
        Code::AlreadyExists,
        "北京高价值",
    );
    for id in [&at_risk.id, &beijing_high.id] {
        server
            .segments()
            .delete_segment(pb::DeleteSegmentRequest {
                segment_id: id.clone(),
            })
            .await
            .unwrap();
    }
    assert_status(
        server
            .segments()
            .get_segment(pb::GetSegmentRequest {
                segment_id: at_risk.id.clone(),
            })
            .await,
        Code::NotFound,
        "segment",
    );
    assert_status(
        server
            .segments_as(As::Reader)
            .create_segment(pb::CreateSegmentRequest {
                name: "x".into(),
                condition: text(r#"has_tag("流失风险")"#),
                ..Default::default()
            })
            .await,
        Code::PermissionDenied,
        "admin",
    );
    let _ = w.value;
}

async fn bad_conditions_are_refused_with_where_and_what(backend: Backend) {
    let server = TestServer::start(backend).await;
    let w = world(&server).await;
    let refuse = async |condition: String, needle: &str| {
        let result = server
            .segments()
            .validate_condition(pb::ValidateConditionRequest {
                condition: text(&condition),
            })
            .await;
        assert_status(result, Code::InvalidArgument, needle);
    };
    refuse(
        "has_tag(\"流失风险\") AND\n  province = ".into(),
        "line 2, column 14: expected a value",
    )
    .await;
    refuse(
        r#"tag("不存在的标签") = "x""#.into(),
        "unknown tag \"不存在的标签\"",
    )
    .await;
    refuse(
        r#"attr("星座") = "狮子""#.into(),
        "unknown attribute \"星座\"",
    )
    .await;
    refuse(r#"tag("价值等级") = "超高价值""#.into(), "价值等级").await;
    let deep = format!("{}has_tag(\"流失风险\"){}", "(".repeat(65), ")".repeat(65));
    refuse(deep, "deeper than 64 levels").await;
    let huge = format!(
        "has_tag(\"流失风险\"){}",
        " OR has_tag(\"流失风险\")".repeat(4000)
    );
    assert!(huge.len() > 64 * 1024);
    refuse(huge, "the limit is 65536 bytes").await;

    // A structured tree deeper than 64 levels.
    let mut tree = pb::Condition {
        node: Some(pb::condition::Node::Predicate(pb::Predicate {
            kind: Some(pb::predicate::Kind::HasTag("流失风险".into())),
        })),
    };
    for _ in 0..70 {
        tree = pb::Condition {
            node: Some(pb::condition::Node::Not(Box::new(tree))),
        };
    }
    assert_status(
        server
            .segments()
            .count_condition(pb::CountConditionRequest {
                condition: Some(pb::ConditionInput {
                    form: Some(pb::condition_input::Form::Tree(tree)),
                }),
            })
            .await,
        Code::InvalidArgument,
        "the limit is 64",
    );
    assert_status(
        server
            .segments()
            .count_condition(pb::CountConditionRequest { condition: None })
            .await,
        Code::InvalidArgument,
        "condition: must be set",
    );

    // Cycles through in_segment are refused, directly and through others.
    let first = create(&server, "甲", r#"has_tag("流失风险")"#).await;
    create(&server, "乙", r#"in_segment("甲") AND province = "北京""#).await;
    assert_status(
        server
            .segments()
            .update_segment(pb::UpdateSegmentRequest {
                segment_id: first.id.clone(),
                condition: text(r#"in_segment("乙")"#),
                ..Default::default()
            })
            .await,
        Code::InvalidArgument,
        "甲 → 乙 → 甲",
    );
    assert_status(
        server
            .segments()
            .create_segment(pb::CreateSegmentRequest {
                name: "丙".into(),
                condition: text(r#"in_segment("丙")"#),
                ..Default::default()
            })
            .await,
        Code::InvalidArgument,
        "cycle",
    );
    assert_status(
        server
            .segments()
            .count_segment(pb::CountSegmentRequest {
                segment_id: UNKNOWN_ID.into(),
            })
            .await,
        Code::NotFound,
        "segment",
    );

    // A saved segment whose tag is deleted since can no longer be counted.
    let spenders = create(&server, "大客户", r#"tag("年消费额") >= 5000"#).await;
    assert_eq!(count(&server, &spenders.id).await.count, 1);
    server
        .tags()
        .delete_tag(pb::DeleteTagRequest {
            id: w.spend.id.clone(),
            force: true,
        })
        .await
        .unwrap();
    assert_status(
        server
            .segments()
            .count_segment(pb::CountSegmentRequest {
                segment_id: spenders.id.clone(),
            })
            .await,
        Code::FailedPrecondition,
        "unknown tag \"年消费额\"",
    );
}

async fn snapshots_freeze_exports_stream_and_comparisons_overlap(backend: Backend) {
    let server = TestServer::start(backend).await;
    let w = world(&server).await;
    let high = create(&server, "高价值", r#"tag("价值等级") = "高价值""#).await;
    let churn = create(&server, "流失", r#"has_tag("流失风险")"#).await;
    let beijing = create(&server, "北京", r#"province = "北京""#).await;

    let frozen = server
        .segments()
        .snapshot_segment(pb::SnapshotSegmentRequest {
            segment_id: high.id.clone(),
            name: "高价值 十一月".into(),
            description: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(frozen.kind, pb::SegmentKind::Static as i32);
    let before = ids(&[&w.zhang, &w.li, &w.wang]);
    assert_eq!(members(&server, &frozen.id, 2).await, before);
    assign(&server, &w.zhao.id, vec![assignment(&w.value.id, "高价值")]).await;
    assert_eq!(count(&server, &high.id).await.count, 4);
    assert_eq!(count(&server, &frozen.id).await.count, 3);
    assert_eq!(members(&server, &frozen.id, 2).await, before);
    // A second snapshot records the grown size: GetTagStats shows the segment over time.
    server
        .segments()
        .snapshot_segment(pb::SnapshotSegmentRequest {
            segment_id: high.id.clone(),
            name: "高价值 十二月".into(),
            description: String::new(),
        })
        .await
        .unwrap();
    let stats = server
        .tags_as(As::Reader)
        .get_tag_stats(pb::GetTagStatsRequest {
            include_segments: true,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let over_time = stats
        .segments
        .iter()
        .find(|s| s.segment_id == high.id)
        .unwrap();
    assert_eq!(over_time.segment_name, "高价值");
    assert_eq!(
        over_time
            .sizes
            .iter()
            .map(|s| s.members)
            .collect::<Vec<_>>(),
        vec![3, 4],
        "oldest first"
    );
    assert_status(
        server
            .segments()
            .update_segment(pb::UpdateSegmentRequest {
                segment_id: frozen.id.clone(),
                condition: text(r#"has_tag("流失风险")"#),
                ..Default::default()
            })
            .await,
        Code::FailedPrecondition,
        "static",
    );

    // Export: CSV with Chinese headers, one row per member with its tags.
    let mut stream = server
        .segments_as(As::Reader)
        .export_segment(pb::ExportSegmentRequest {
            segment_id: churn.id.clone(),
            columns: vec![
                pb::ExportColumn::Id as i32,
                pb::ExportColumn::Name as i32,
                pb::ExportColumn::Province as i32,
                pb::ExportColumn::Tags as i32,
            ],
            chinese_headers: true,
            format: pb::ExportFormat::Csv as i32,
        })
        .await
        .unwrap()
        .into_inner();
    let mut bytes = Vec::new();
    while let Some(chunk) = stream.message().await.unwrap() {
        bytes.extend(chunk.data);
    }
    let csv = String::from_utf8(bytes).unwrap();
    let csv = csv.strip_prefix('\u{feff}').expect("a byte-order mark");
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines[0], "客户ID,姓名,省份,标签");
    assert_eq!(lines.len(), 3, "{csv}");
    let zhang_line = lines
        .iter()
        .find(|line| line.starts_with(&w.zhang.id))
        .expect("张伟 exported");
    assert!(zhang_line.contains(",张伟,北京,"), "{zhang_line}");
    assert!(zhang_line.contains("风险/流失风险"), "{zhang_line}");
    assert!(
        zhang_line.contains("客户价值/价值等级=高价值"),
        "{zhang_line}"
    );
    assert!(zhang_line.contains("消费/年消费额=8000"), "{zhang_line}");

    // The same as XLSX: one sheet, Chinese headers.
    let mut stream = server
        .segments_as(As::Reader)
        .export_segment(pb::ExportSegmentRequest {
            segment_id: churn.id.clone(),
            columns: vec![pb::ExportColumn::Name as i32, pb::ExportColumn::Tags as i32],
            chinese_headers: true,
            format: pb::ExportFormat::Xlsx as i32,
        })
        .await
        .unwrap()
        .into_inner();
    let mut bytes = Vec::new();
    while let Some(chunk) = stream.message().await.unwrap() {
        bytes.extend(chunk.data);
    }
    use calamine::Reader as _;
    let mut workbook = calamine::Xlsx::new(std::io::Cursor::new(bytes)).unwrap();
    let sheet = workbook.worksheet_range_at(0).unwrap().unwrap();
    let rows: Vec<Vec<String>> = sheet
        .rows()
        .map(|row| row.iter().map(ToString::to_string).collect())
        .collect();
    assert_eq!(rows[0], vec!["姓名", "标签"]);
    assert_eq!(rows.len(), 3);
    assert!(
        rows.iter()
            .any(|row| row[0] == "张伟" && row[1].contains("风险/流失风险")),
        "{rows:?}"
    );

    // Compare: sizes, pairs, everyone.
    let compared = server
        .segments_as(As::Reader)
        .compare_segments(pb::CompareSegmentsRequest {
            segment_ids: vec![high.id.clone(), churn.id.clone(), beijing.id.clone()],
        })
        .await
        .unwrap()
        .into_inner();
    let sizes: Vec<u64> = compared.sizes.iter().map(|size| size.count).collect();
    assert_eq!(sizes, vec![4, 2, 3]);
    let pairs: Vec<u64> = compared.pairs.iter().map(|pair| pair.count).collect();
    // high∩churn = 张伟 赵强; high∩北京 = 张伟 李娜 赵强; churn∩北京 = 张伟 赵强.
    assert_eq!(pairs, vec![2, 3, 2]);
    assert_eq!(compared.all.unwrap().count, 2);
    assert_status(
        server
            .segments()
            .compare_segments(pb::CompareSegmentsRequest {
                segment_ids: vec![high.id.clone()],
            })
            .await,
        Code::InvalidArgument,
        "segment_ids",
    );

    // A merge moves 赵强's tags to 张伟 and removes 赵强; an unmerge puts him back.
    let merge = server
        .dedupe()
        .merge_customers(pb::MergeCustomersRequest {
            customer_ids: vec![w.zhang.id.clone(), w.zhao.id.clone()],
            survivor_id: w.zhang.id.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(members(&server, &churn.id, 10).await, ids(&[&w.zhang]));
    assert_eq!(count(&server, &high.id).await.count, 3);
    server
        .dedupe()
        .unmerge(pb::UnmergeRequest { merge_id: merge.id })
        .await
        .unwrap();
    assert_eq!(
        members(&server, &churn.id, 10).await,
        ids(&[&w.zhang, &w.zhao])
    );
    assert_eq!(count(&server, &high.id).await.count, 4);
}

/// Two servers over one MariaDB database: a write through the first shows
/// in the second's count within a second, with no call to the second in
/// between.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_server_sees_the_first_ones_writes_within_a_second() {
    let database = Database::fresh(Backend::Mysql).await;
    let shared = database.shared();
    let first = TestServer::start_on(database, Options::default()).await;
    let w = world(&first).await;
    let second = TestServer::start_on(shared, Options::default()).await;
    let segment = create(&second, "流失", r#"has_tag("流失风险")"#).await;
    assert_eq!(count(&second, &segment.id).await.count, 2);

    for customer in [&w.li, &w.wang] {
        let target = count(&second, &segment.id).await.count + 1;
        assign(&first, &customer.id, vec![assignment(&w.churn.id, "")]).await;
        let written = Instant::now();
        loop {
            let seen = count(&second, &segment.id).await.count;
            if seen == target {
                break;
            }
            assert!(
                written.elapsed() < Duration::from_secs(1),
                "the second server still counts {seen}, not {target}, a second after the write"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    // A field change made on the second shows on the first too.
    second
        .customers()
        .update_customer(pb::UpdateCustomerRequest {
            customer: Some(pb::Customer {
                id: w.zhao.id.clone(),
                address: Some(pb::Address {
                    province: "上海".into(),
                    ..Default::default()
                }),
                ..pb::Customer::default()
            }),
            update_mask: mask(&["address.province"]),
        })
        .await
        .unwrap();
    let written = Instant::now();
    while count_condition(&first, r#"province = "上海""#).await.count != 2 {
        assert!(written.elapsed() < Duration::from_secs(1));
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // An order recorded on the first moves the second's metric counts (the follower reads
    // orders as it reads tag history).
    let ordered_at = chrono::Utc::now() - chrono::Duration::days(2);
    first
        .purchases()
        .record_purchases(pb::RecordPurchasesRequest {
            purchases: vec![pb::Purchase {
                customer_id: w.wang.id.clone(),
                channel: "shop".to_owned(),
                order_id: "S-1".to_owned(),
                order_time: Some(prost_types::Timestamp {
                    seconds: ordered_at.timestamp(),
                    nanos: 0,
                }),
                total: "99".to_owned(),
                status: "paid".to_owned(),
                ..pb::Purchase::default()
            }],
        })
        .await
        .unwrap();
    let written = Instant::now();
    loop {
        let answer = count_condition(&second, "orders_30d >= 1 AND recency_days = 2").await;
        assert!(answer.from_index, "{}", answer.fallback_reason);
        if answer.count == 1 {
            break;
        }
        assert!(
            written.elapsed() < Duration::from_secs(1),
            "the second server still counts {} buyers a second after the order",
            answer.count
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // Catalogue writes on the first: a tag created there binds on the second at once (its
    // catalogue is kept in memory, and read again when a name is unknown)…
    let vip = crate::fixtures::flag_tag(&first, "贵宾").await;
    count_condition(&second, r#"has_tag("贵宾")"#).await;
    // …and a segment's changed condition counts on the second within a second.
    first
        .segments()
        .update_segment(pb::UpdateSegmentRequest {
            segment_id: segment.id.clone(),
            name: None,
            description: None,
            condition: text(r#"has_tag("贵宾")"#),
        })
        .await
        .unwrap();
    assign(&first, &w.li.id, vec![assignment(&vip.id, "")]).await;
    let written = Instant::now();
    loop {
        let seen = count(&second, &segment.id).await.count;
        if seen == 1 {
            break;
        }
        assert!(
            written.elapsed() < Duration::from_secs(1),
            "the second server still counts {seen} for the changed condition a second after"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // The streamed members agree on both servers.
    assert_eq!(
        streamed(&second, &segment.id, 0).await.unwrap(),
        streamed(&first, &segment.id, 0).await.unwrap()
    );
}

/// StreamSegmentMembers answers, in id order and in chunks, exactly the
/// members ListSegmentMembers pages through: dynamic, static and empty
/// segments; bad input is refused before the first chunk.
async fn streamed_members_are_the_paged_members_from_one_evaluation(backend: Backend) {
    let server = TestServer::start(backend).await;
    let w = world(&server).await;
    let valued = create(&server, "有价值等级", r#"has_tag("价值等级")"#).await;
    let beijing = create(&server, "北京女", r#"province = "北京" AND gender = "女""#).await;
    let nobody = create(&server, "无人", r#"province = "西藏""#).await;
    // A condition the index cannot answer goes through the reference path.
    let zhangs = create(&server, "姓张", r#"name contains "张""#).await;
    let frozen = server
        .segments()
        .snapshot_segment(pb::SnapshotSegmentRequest {
            segment_id: beijing.id.clone(),
            name: "北京女 冻结".into(),
            description: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    for (segment, expected) in [
        (&valued, ids(&[&w.zhang, &w.li, &w.wang, &w.zhao])),
        (&beijing, ids(&[&w.zhang, &w.li])),
        (&nobody, BTreeSet::new()),
        (&zhangs, ids(&[&w.zhang])),
        (&frozen, ids(&[&w.zhang, &w.li])),
    ] {
        assert_eq!(members(&server, &segment.id, 2).await, expected);
        for chunk_size in [0, 1, 3, 50_000] {
            let all = streamed(&server, &segment.id, chunk_size).await.unwrap();
            let sorted: Vec<String> = expected.iter().cloned().collect();
            assert_eq!(all, sorted, "{} in chunks of {chunk_size}", segment.name);
        }
    }
    // A member gained is in the next stream (this server's own write).
    assign(&server, &w.wang.id, vec![assignment(&w.churn.id, "")]).await;
    let churned = create(&server, "流失", r#"has_tag("流失风险")"#).await;
    assert_eq!(
        streamed(&server, &churned.id, 0).await.unwrap(),
        ids(&[&w.zhang, &w.wang, &w.zhao])
            .into_iter()
            .collect::<Vec<_>>()
    );

    assert_status(
        streamed(&server, &valued.id, 50_001).await,
        Code::InvalidArgument,
        "chunk_size",
    );
    assert_status(
        streamed(&server, "", 0).await,
        Code::InvalidArgument,
        "segment_id",
    );
    assert_status(
        streamed(&server, UNKNOWN_ID, 0).await,
        Code::NotFound,
        "segment",
    );
    // A segment whose tag was deleted since cannot be evaluated.
    let spenders = create(&server, "大客户", r#"tag("年消费额") >= 5000"#).await;
    server
        .tags()
        .delete_tag(pb::DeleteTagRequest {
            id: w.spend.id.clone(),
            force: true,
        })
        .await
        .unwrap();
    assert_status(
        streamed(&server, &spenders.id, 0).await,
        Code::FailedPrecondition,
        "unknown tag \"年消费额\"",
    );
}

/// Counts bind against a catalogue kept in memory: every catalogue write of
/// this server (tag, category and segment create, rename, delete, condition
/// change) shows in the very next call.
async fn catalogue_writes_show_in_the_next_count(backend: Backend) {
    let server = TestServer::start(backend).await;
    let w = world(&server).await;
    let churned = create(&server, "流失", r#"has_tag("流失风险")"#).await;
    assert_eq!(count(&server, &churned.id).await.count, 2);
    // Counted twice: the second answer comes from what the first bound.
    assert_eq!(count(&server, &churned.id).await.count, 2);

    // A tag just created binds in the next condition.
    let vip = crate::fixtures::flag_tag(&server, "贵宾").await;
    assert_eq!(
        count_condition(&server, r#"has_tag("贵宾")"#).await.count,
        0
    );
    assign(&server, &w.li.id, vec![assignment(&vip.id, "")]).await;
    assert_eq!(
        count_condition(&server, r#"has_tag("贵宾")"#).await.count,
        1
    );

    // A changed condition counts at once.
    server
        .segments()
        .update_segment(pb::UpdateSegmentRequest {
            segment_id: churned.id.clone(),
            name: None,
            description: None,
            condition: text(r#"has_tag("流失风险") OR has_tag("贵宾")"#),
        })
        .await
        .unwrap();
    assert_eq!(count(&server, &churned.id).await.count, 3);

    // A renamed tag binds by its new name only.
    let temporary = crate::fixtures::flag_tag(&server, "临时").await;
    assign(&server, &w.li.id, vec![assignment(&temporary.id, "")]).await;
    assert_eq!(
        count_condition(&server, r#"has_tag("临时")"#).await.count,
        1
    );
    server
        .tags()
        .update_tag(pb::UpdateTagRequest {
            tag: Some(pb::Tag {
                id: temporary.id.clone(),
                name: "至尊".into(),
                ..pb::Tag::default()
            }),
            update_mask: mask(&["name"]),
        })
        .await
        .unwrap();
    assert_eq!(
        count_condition(&server, r#"has_tag("至尊")"#).await.count,
        1
    );
    assert_status(
        server
            .segments()
            .count_condition(pb::CountConditionRequest {
                condition: text(r#"has_tag("临时")"#),
            })
            .await,
        Code::InvalidArgument,
        "临时",
    );

    // A segment just created can be named, and once deleted it cannot.
    let nested = create(&server, "嵌套", r#"in_segment("流失") AND gender = "女""#).await;
    assert_eq!(count(&server, &nested.id).await.count, 2);
    server
        .segments()
        .delete_segment(pb::DeleteSegmentRequest {
            segment_id: nested.id.clone(),
        })
        .await
        .unwrap();
    assert_status(
        server
            .segments()
            .count_segment(pb::CountSegmentRequest {
                segment_id: nested.id.clone(),
            })
            .await,
        Code::NotFound,
        "segment",
    );
}

/// A deleted customer leaves no change row behind, so the follower's own
/// poll — here every millisecond, so one lands between the delete and the
/// count — must not settle the reconcile this server owes its reads.
async fn a_delete_shows_in_the_next_count_whatever_the_follower_polled(backend: Backend) {
    let server = TestServer::start_with(
        backend,
        Options {
            extra_config: "segment_poll_millis = 1".to_owned(),
            ..Options::default()
        },
    )
    .await;
    let w = world(&server).await;
    let churned = create(&server, "流失", r#"has_tag("流失风险")"#).await;
    assert_eq!(count(&server, &churned.id).await.count, 2);
    for round in 0..5 {
        let extra = person(
            &server,
            &format!("临时{round}"),
            "上海",
            pb::Gender::Male,
            "",
            "普通",
        )
        .await;
        assign(&server, &extra.id, vec![assignment(&w.churn.id, "")]).await;
        assert_eq!(count(&server, &churned.id).await.count, 3, "round {round}");
        server
            .customers()
            .delete_customer(pb::DeleteCustomerRequest {
                id: extra.id.clone(),
            })
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert_eq!(count(&server, &churned.id).await.count, 2, "round {round}");
        assert!(
            !members(&server, &churned.id, 10).await.contains(&extra.id),
            "round {round}"
        );
    }
}
