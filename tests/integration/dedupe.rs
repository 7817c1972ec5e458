//! Scenarios for de-duplication: explicit merges and their exact undo, merged-away
//! ids, dedupe jobs with the review queue, and FindDuplicates.

use tagd_proto::v1 as pb;
use tonic::Code;

use crate::fixtures::{
    self, UNKNOWN_ID, all_customers, assign, assignment, create_customer, customer_tags,
    get_customer, history,
};
use crate::harness::{As, Backend, Options, TestServer, assert_status, backend_tests};

backend_tests!(
    a_merge_keeps_everything_and_unmerge_restores_it_exactly,
    merge_requests_are_checked,
    a_survivor_merged_again_must_be_unmerged_first,
    a_dedupe_run_merges_the_certain_and_queues_the_doubtful,
    dedupe_requests_are_checked,
    find_duplicates_warns_before_a_twin_is_created,
    a_name_written_in_pinyin_finds_the_customer_written_in_han,
    a_thousand_identical_records_become_one_and_names_alone_merge_nothing,
    a_batch_of_dedupe_merges_unmerges_each_exactly,
    a_bad_cluster_in_a_batch_fails_alone,
);

fn person(name: &str, phone: &str, email: &str, birthday: &str, city: &str) -> pb::Customer {
    pb::Customer {
        name: name.to_owned(),
        phones: [phone]
            .iter()
            .filter(|p| !p.is_empty())
            .map(|p| (*p).to_owned())
            .collect(),
        emails: [email]
            .iter()
            .filter(|e| !e.is_empty())
            .map(|e| (*e).to_owned())
            .collect(),
        birthday: birthday.to_owned(),
        address: Some(pb::Address {
            province: "广东".into(),
            city: city.to_owned(),
            ..pb::Address::default()
        }),
        ..pb::Customer::default()
    }
}

/// FindDuplicates for a draft, as a reader.
async fn find_draft(server: &TestServer, draft: pb::Customer) -> Vec<pb::DuplicateMatch> {
    server
        .dedupe_as(As::Reader)
        .find_duplicates(pb::FindDuplicatesRequest {
            subject: Some(pb::find_duplicates_request::Subject::Draft(draft)),
            ..pb::FindDuplicatesRequest::default()
        })
        .await
        .unwrap()
        .into_inner()
        .matches
}

async fn merge(server: &TestServer, ids: &[&str], survivor: &str) -> pb::Merge {
    server
        .dedupe()
        .merge_customers(pb::MergeCustomersRequest {
            customer_ids: ids.iter().map(|id| (*id).to_owned()).collect(),
            survivor_id: survivor.to_owned(),
            reason: "ticket 42".into(),
            ..pb::MergeCustomersRequest::default()
        })
        .await
        .unwrap()
        .into_inner()
}

async fn unmerge(server: &TestServer, merge_id: &str) -> Result<pb::Merge, tonic::Status> {
    server
        .dedupe()
        .unmerge(pb::UnmergeRequest {
            merge_id: merge_id.to_owned(),
        })
        .await
        .map(tonic::Response::into_inner)
}

/// Everything the API shows of a customer: the record, its tags and history, its orders and contacts.
#[derive(Debug, PartialEq)]
struct Everything {
    customer: pb::Customer,
    tags: Vec<pb::CustomerTag>,
    history: Vec<pb::TagHistoryEntry>,
    purchases: Vec<pb::Purchase>,
    interactions: Vec<pb::Interaction>,
    field_history: Vec<pb::FieldHistoryEntry>,
}

async fn everything(server: &TestServer, id: &str) -> Everything {
    Everything {
        customer: get_customer(server, id).await,
        tags: customer_tags(server, id).await,
        history: history(server, id).await,
        purchases: server
            .purchases()
            .list_purchases(pb::ListPurchasesRequest {
                customer_id: id.to_owned(),
                ..pb::ListPurchasesRequest::default()
            })
            .await
            .unwrap()
            .into_inner()
            .purchases,
        interactions: server
            .interactions()
            .list_interactions(pb::ListInteractionsRequest {
                customer_id: id.to_owned(),
                ..pb::ListInteractionsRequest::default()
            })
            .await
            .unwrap()
            .into_inner()
            .interactions,
        field_history: server
            .customers()
            .get_field_history(pb::GetFieldHistoryRequest {
                customer_id: id.to_owned(),
                ..pb::GetFieldHistoryRequest::default()
            })
            .await
            .unwrap()
            .into_inner()
            .entries,
    }
}

async fn order_and_contact(server: &TestServer, customer_id: &str, order_id: &str) {
    let time = Some(prost_types::Timestamp {
        seconds: 1_735_000_000,
        nanos: 0,
    });
    server
        .purchases()
        .record_purchases(pb::RecordPurchasesRequest {
            purchases: vec![pb::Purchase {
                customer_id: customer_id.to_owned(),
                channel: "shop".into(),
                order_id: order_id.to_owned(),
                order_time: time,
                items: vec![pb::PurchaseItem {
                    product_id: "P1".into(),
                    name: "婴儿奶粉".into(),
                    category: "母婴".into(),
                    quantity: 2,
                    unit_price: "99.50".into(),
                }],
                ..pb::Purchase::default()
            }],
        })
        .await
        .unwrap();
    server
        .interactions()
        .record_interaction(pb::RecordInteractionRequest {
            interaction: Some(pb::Interaction {
                customer_id: customer_id.to_owned(),
                time,
                channel: pb::InteractionChannel::Phone.into(),
                staff: "小李".into(),
                summary: format!("回访 {order_id}"),
                ..pb::Interaction::default()
            }),
        })
        .await
        .unwrap();
}

async fn a_merge_keeps_everything_and_unmerge_restores_it_exactly(backend: Backend) {
    let server = TestServer::start(backend).await;
    let tier = fixtures::category(&server, "价值等级", true).await;
    let high = fixtures::tag(&server, &tier.id, "高价值", pb::ValueType::Flag, &[]).await;
    let middle = fixtures::tag(&server, &tier.id, "中价值", pb::ValueType::Flag, &[]).await;
    let interests = fixtures::category(&server, "兴趣", false).await;
    let tea = fixtures::tag(&server, &interests.id, "茶", pb::ValueType::Flag, &[]).await;
    let coffee = fixtures::tag(&server, &interests.id, "咖啡", pb::ValueType::Flag, &[]).await;
    let spend = fixtures::tag(
        &server,
        &interests.id,
        "年消费额",
        pb::ValueType::Number,
        &[],
    )
    .await;

    let mut first = person("张伟", "13800138000", "zw@example.com", "", "深圳");
    first.external_ids = vec![pb::ExternalId {
        channel: "wecom".into(),
        external_id: "wm1".into(),
    }];
    first.attributes.insert("会员等级".into(), "金卡".into());
    let first = create_customer(&server, first).await;
    let mut second = person("Zhang Wei", "13900139000", "", "1990-01-02", "深圳");
    second.company = "示例科技".into();
    second.external_ids = vec![pb::ExternalId {
        channel: "shop".into(),
        external_id: "s1".into(),
    }];
    second.attributes.insert("会员等级".into(), "银卡".into());
    second.attributes.insert("来源活动".into(), "双11".into());
    let second = create_customer(&server, second).await;
    assign(
        &server,
        &first.id,
        vec![
            assignment(&high.id, ""),
            assignment(&tea.id, ""),
            assignment(&spend.id, "100"),
        ],
    )
    .await;
    assign(
        &server,
        &second.id,
        vec![
            assignment(&middle.id, ""),
            assignment(&coffee.id, ""),
            assignment(&spend.id, "250"),
        ],
    )
    .await;
    order_and_contact(&server, &first.id, "E1").await;
    order_and_contact(&server, &second.id, "E2").await;
    let first_before = everything(&server, &first.id).await;
    let second_before = everything(&server, &second.id).await;

    let merged = merge(&server, &[&second.id, &first.id], &first.id).await;
    assert_eq!(merged.survivor_id, first.id);
    assert_eq!(merged.merged_ids, vec![second.id.clone()]);
    assert_eq!(merged.reason, "ticket 42");
    assert_eq!(merged.actor, "ops");

    let merged_view = everything(&server, &first.id).await;
    let (survivor, tags, log) = (
        merged_view.customer.clone(),
        merged_view.tags.clone(),
        merged_view.history.clone(),
    );
    assert_eq!(
        merged_view.purchases.len(),
        2,
        "the other's orders move over"
    );
    assert_eq!(merged_view.interactions.len(), 2, "and its contacts");
    let filled: Vec<(&str, &str, &str)> = merged_view
        .field_history
        .iter()
        .filter(|e| e.source_ref == merged.id)
        .map(|e| (e.field.as_str(), e.old_value.as_str(), e.new_value.as_str()))
        .collect();
    assert!(
        filled.contains(&("birthday", "", "1990-01-02")),
        "the survivor's field history says what the merge filled: {filled:?}"
    );
    assert_eq!(survivor.name, "张伟", "the survivor's own values stay");
    assert_eq!(survivor.phones, vec!["+8613800138000", "+8613900139000"]);
    assert_eq!(survivor.birthday, "1990-01-02", "an empty field is filled");
    assert_eq!(survivor.company, "示例科技");
    assert_eq!(
        survivor.external_ids.len(),
        2,
        "{:?}",
        survivor.external_ids
    );
    assert_eq!(survivor.attributes["会员等级"], "金卡");
    assert_eq!(survivor.attributes["来源活动"], "双11");
    let mut names: Vec<&str> = tags.iter().map(|t| t.tag_name.as_str()).collect();
    names.sort_unstable();
    assert_eq!(
        names,
        vec!["中价值", "咖啡", "年消费额", "茶"],
        "the newer exclusive tag wins; nothing else is dropped"
    );
    let spent = tags.iter().find(|t| t.tag_id == spend.id).unwrap();
    assert_eq!(spent.value, "250", "the newer value of a shared tag wins");
    assert_eq!(
        log.len(),
        first_before.history.len() + second_before.history.len() + 4,
        "the other's history moves over, plus the merge's own entries (中价值 and 咖啡 assigned, 年消费额 changed, 高价值 replaced): {log:#?}"
    );
    assert!(
        log.iter()
            .any(|e| e.source == i32::from(pb::TagSource::Merge) && e.source_ref == merged.id)
    );

    // The lookups by phone and email follow the survivor's merged lists.
    assert_eq!(
        holders_of_phone(&server, "+8613900139000").await,
        vec![first.id.clone()],
        "the other's phone now finds the survivor"
    );
    assert_eq!(
        holders_of_phone(&server, "+8613800138000").await,
        vec![first.id.clone()]
    );
    assert_identity_held(&server, "shop", "s1", &first.id).await;

    // The merged-away id still leads somewhere; writes to it are refused.
    let resolved = get_customer(&server, &second.id).await;
    assert_eq!(
        resolved.id, first.id,
        "GetCustomer answers with the survivor"
    );
    assert_eq!(all_customers(&server).await.len(), 1);
    assert_status(
        server
            .tagging()
            .assign_tags(pb::AssignTagsRequest {
                customer_id: second.id.clone(),
                assignments: vec![assignment(&tea.id, "")],
            })
            .await,
        Code::NotFound,
        &second.id,
    );
    let listed = server
        .dedupe()
        .list_merges(pb::ListMergesRequest {
            customer_id: second.id.clone(),
            ..pb::ListMergesRequest::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.merges.len(), 1);
    assert_eq!(listed.merges[0].id, merged.id);

    let undone = unmerge(&server, &merged.id).await.unwrap();
    assert!(undone.undone_at.is_some());
    assert_eq!(undone.undone_by, "ops");
    assert_eq!(
        everything(&server, &first.id).await,
        first_before,
        "the survivor is as it was"
    );
    assert_eq!(
        everything(&server, &second.id).await,
        second_before,
        "the merged customer is back, exactly"
    );
    assert_eq!(
        holders_of_phone(&server, "+8613900139000").await,
        vec![second.id.clone()],
        "after the undo, the phone finds its own customer again"
    );
    assert_eq!(
        holders_of_phone(&server, "+8613800138000").await,
        vec![first.id.clone()]
    );
    assert_identity_held(&server, "shop", "s1", &second.id).await;
    assert_status(
        unmerge(&server, &merged.id).await,
        Code::FailedPrecondition,
        "already undone",
    );
}

/// A new customer claiming this channel identity is refused, naming `holder`
/// (the identity index rows).
async fn assert_identity_held(server: &TestServer, channel: &str, external_id: &str, holder: &str) {
    let mut claimant = person("测试", "", "", "", "深圳");
    claimant.external_ids = vec![pb::ExternalId {
        channel: channel.to_owned(),
        external_id: external_id.to_owned(),
    }];
    assert_status(
        server
            .customers()
            .create_customer(pb::CreateCustomerRequest {
                customer: Some(claimant),
            })
            .await,
        Code::AlreadyExists,
        &format!("{channel}:{external_id} already belongs to customer {holder}"),
    );
}

/// The ids of the customers ListCustomers finds by this phone.
async fn holders_of_phone(server: &TestServer, phone: &str) -> Vec<String> {
    fixtures::customers_with_phone(server, phone)
        .await
        .into_iter()
        .map(|c| c.id)
        .collect()
}

async fn merge_requests_are_checked(backend: Backend) {
    let server = TestServer::start(backend).await;
    let a = fixtures::customer(&server, "甲").await;
    let b = fixtures::customer(&server, "乙").await;
    let request = |ids: &[&str], survivor: &str| pb::MergeCustomersRequest {
        customer_ids: ids.iter().map(|id| (*id).to_owned()).collect(),
        survivor_id: survivor.to_owned(),
        ..pb::MergeCustomersRequest::default()
    };
    let mut dedupe = server.dedupe();
    assert_status(
        dedupe.merge_customers(request(&[&a.id], "")).await,
        Code::InvalidArgument,
        "at least two",
    );
    assert_status(
        dedupe.merge_customers(request(&[&a.id, &a.id], "")).await,
        Code::InvalidArgument,
        "customer_ids[1]: repeats customer_ids[0]",
    );
    assert_status(
        dedupe
            .merge_customers(request(&[&a.id, UNKNOWN_ID], ""))
            .await,
        Code::NotFound,
        "customer_ids[1]",
    );
    assert_status(
        dedupe
            .merge_customers(request(&[&a.id, &b.id], UNKNOWN_ID))
            .await,
        Code::InvalidArgument,
        "survivor_id",
    );
    assert_status(
        dedupe
            .merge_customers(pb::MergeCustomersRequest {
                reason: "x".repeat(501),
                ..request(&[&a.id, &b.id], "")
            })
            .await,
        Code::InvalidArgument,
        "reason",
    );
    assert_status(
        server
            .dedupe_as(As::Writer)
            .merge_customers(request(&[&a.id, &b.id], ""))
            .await,
        Code::PermissionDenied,
        "admin",
    );
    assert_status(unmerge(&server, UNKNOWN_ID).await, Code::NotFound, "merge");
    assert_status(
        dedupe
            .list_merges(pb::ListMergesRequest {
                customer_id: "%".into(),
                ..pb::ListMergesRequest::default()
            })
            .await,
        Code::InvalidArgument,
        "customer_id",
    );
    assert_eq!(
        all_customers(&server).await.len(),
        2,
        "nothing was merged by a refused call"
    );

    let merged = merge(&server, &[&a.id, &b.id], &a.id).await;
    assert_status(
        dedupe.merge_customers(request(&[&a.id, &b.id], "")).await,
        Code::FailedPrecondition,
        &format!("already merged into {}", a.id),
    );
    assert_eq!(merged.merged_ids, vec![b.id.clone()]);
}

async fn a_survivor_merged_again_must_be_unmerged_first(backend: Backend) {
    let server = TestServer::start(backend).await;
    let a = fixtures::customer(&server, "甲").await;
    let b = fixtures::customer(&server, "乙").await;
    let c = fixtures::customer(&server, "丙").await;
    let a_before = get_customer(&server, &a.id).await;
    let b_before = get_customer(&server, &b.id).await;
    let c_before = get_customer(&server, &c.id).await;
    let first = merge(&server, &[&a.id, &b.id], &a.id).await;
    let second = merge(&server, &[&a.id, &c.id], &c.id).await;
    assert_eq!(
        get_customer(&server, &b.id).await.id,
        c.id,
        "a chain of merges is followed"
    );
    assert_status(
        unmerge(&server, &first.id).await,
        Code::FailedPrecondition,
        &second.id,
    );
    unmerge(&server, &second.id).await.unwrap();
    unmerge(&server, &first.id).await.unwrap();
    assert_eq!(get_customer(&server, &a.id).await, a_before);
    assert_eq!(get_customer(&server, &b.id).await, b_before);
    assert_eq!(get_customer(&server, &c.id).await, c_before);
}

async fn run_dedupe(server: &TestServer, request: pb::StartDedupeRequest) -> pb::Job {
    let job = server
        .dedupe()
        .start_dedupe(request)
        .await
        .unwrap()
        .into_inner();
    assert_eq!(job.kind, i32::from(pb::JobKind::Dedupe));
    let mut stream = server
        .jobs()
        .watch_job(pb::WatchJobRequest { job_id: job.id })
        .await
        .unwrap()
        .into_inner();
    let mut last = None;
    let watching = async {
        while let Some(update) = stream.message().await.unwrap() {
            last = Some(update);
        }
    };
    tokio::time::timeout(std::time::Duration::from_secs(60), watching)
        .await
        .expect("the dedupe job ends within a minute");
    let last = last.expect("at least one update");
    assert_eq!(last.state, i32::from(pb::JobState::Succeeded), "{last:?}");
    last
}

async fn open_candidates(server: &TestServer) -> Vec<pb::Candidate> {
    server
        .dedupe()
        .list_candidates(pb::ListCandidatesRequest::default())
        .await
        .unwrap()
        .into_inner()
        .candidates
}

async fn a_dedupe_run_merges_the_certain_and_queues_the_doubtful(backend: Backend) {
    let server = TestServer::start(backend).await;
    // The same person twice, written differently.
    let zhang = create_customer(
        &server,
        person(
            "张伟",
            "138-0013-8000",
            "zhang.wei@example.com",
            "1990-01-02",
            "深圳",
        ),
    )
    .await;
    let zhang_again = create_customer(
        &server,
        person(
            "Zhang Wei",
            "+86 138 0013 8000",
            "Zhang.Wei@example.com",
            "1990-01-02",
            "深圳市",
        ),
    )
    .await;
    // Namesakes sharing a phone but born on different days: doubtful, for a human.
    let li = create_customer(
        &server,
        person("李娜", "13900139000", "", "1985-07-01", "广州"),
    )
    .await;
    let li_other = create_customer(
        &server,
        person("李娜", "13900139000", "", "1962-03-15", "广州"),
    )
    .await;
    // Someone else entirely.
    create_customer(
        &server,
        person(
            "王芳",
            "13700137000",
            "wf@example.com",
            "1979-11-30",
            "杭州",
        ),
    )
    .await;

    let dry = run_dedupe(
        &server,
        pb::StartDedupeRequest {
            dry_run: true,
            ..pb::StartDedupeRequest::default()
        },
    )
    .await;
    let counts = dry.progress.unwrap_or_default();
    assert_eq!(counts.rows_read, 5);
    assert_eq!((counts.clusters, counts.merged), (1, 1), "{counts:?}");
    assert!(counts.queued_for_review >= 1, "{counts:?}");
    assert!(counts.comparisons >= 2, "{counts:?}");
    assert_eq!(
        all_customers(&server).await.len(),
        5,
        "a dry run merges nothing"
    );
    assert!(
        open_candidates(&server).await.is_empty(),
        "a dry run queues nothing"
    );

    let applied = run_dedupe(&server, pb::StartDedupeRequest::default()).await;
    assert_eq!(applied.progress.unwrap_or_default().merged, 1);
    // Incremental: with nobody created or changed since, the next run compares nothing.
    let idle = run_dedupe(&server, pb::StartDedupeRequest::default()).await;
    let idle = idle.progress.unwrap_or_default();
    assert_eq!(
        (idle.rows_read, idle.comparisons, idle.merged),
        (4, 0, 0),
        "{idle:?}"
    );
    assert_eq!(all_customers(&server).await.len(), 4);
    let survivor = get_customer(&server, &zhang_again.id).await;
    assert!(survivor.id == zhang.id || survivor.id == zhang_again.id);
    let merges = server
        .dedupe()
        .list_merges(pb::ListMergesRequest {
            job_id: applied.id.clone(),
            ..pb::ListMergesRequest::default()
        })
        .await
        .unwrap()
        .into_inner()
        .merges;
    assert_eq!(merges.len(), 1);

    let queue = open_candidates(&server).await;
    let pair = queue
        .iter()
        .find(|c| {
            let ids = [
                c.left.as_ref().unwrap().id.as_str(),
                c.right.as_ref().unwrap().id.as_str(),
            ];
            ids.contains(&li.id.as_str()) && ids.contains(&li_other.id.as_str())
        })
        .unwrap_or_else(|| panic!("the namesakes are queued: {queue:#?}"));
    let explanation = pair.explanation.clone().unwrap();
    assert!(
        explanation.fields.iter().any(|f| f.field == "phone"),
        "{explanation:?}"
    );
    assert!(
        !explanation.guard.is_empty(),
        "the rule that held it back is named: {explanation:?}"
    );
    assert!(pair.score < 0.95 && pair.score >= 0.5, "{}", pair.score);

    let resolved = server
        .dedupe()
        .resolve_candidate(pb::ResolveCandidateRequest {
            candidate_id: pair.id.clone(),
            resolution: pb::Resolution::NotDuplicate.into(),
            ..pb::ResolveCandidateRequest::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        resolved.candidate.unwrap().state,
        i32::from(pb::CandidateState::NotDuplicate)
    );
    assert_status(
        server
            .dedupe()
            .resolve_candidate(pb::ResolveCandidateRequest {
                candidate_id: pair.id.clone(),
                resolution: pb::Resolution::Merge.into(),
                ..pb::ResolveCandidateRequest::default()
            })
            .await,
        Code::FailedPrecondition,
        "already resolved",
    );
    // "Not a duplicate" is remembered: a full run does not propose the pair again.
    run_dedupe(
        &server,
        pb::StartDedupeRequest {
            full: true,
            ..pb::StartDedupeRequest::default()
        },
    )
    .await;
    assert!(
        !open_candidates(&server)
            .await
            .iter()
            .any(|c| c.id == pair.id
                || [
                    c.left.as_ref().map(|l| l.id.clone()),
                    c.right.as_ref().map(|r| r.id.clone())
                ]
                .contains(&Some(li.id.clone()))),
        "the pair is not proposed again"
    );
    assert_eq!(all_customers(&server).await.len(), 4, "and never merged");

    // A queued pair whose customer is merged by hand meanwhile leaves the queue at the next run.
    let chen = create_customer(
        &server,
        person(
            "陈静",
            "13500135000",
            "cj@example.com",
            "1991-04-05",
            "杭州",
        ),
    )
    .await;
    let chen_other = create_customer(
        &server,
        person(
            "陈静",
            "13500135000",
            "cj@example.com",
            "1960-09-09",
            "杭州",
        ),
    )
    .await;
    run_dedupe(&server, pb::StartDedupeRequest::default()).await;
    assert_eq!(
        open_candidates(&server).await.len(),
        1,
        "the new namesakes are queued"
    );
    merge(&server, &[&chen.id, &chen_other.id], &chen.id).await;
    run_dedupe(&server, pb::StartDedupeRequest::default()).await;
    assert!(
        open_candidates(&server).await.is_empty(),
        "nobody can settle a pair whose customer is gone"
    );
}

async fn dedupe_requests_are_checked(backend: Backend) {
    let server = TestServer::start(backend).await;
    let mut dedupe = server.dedupe();
    assert_status(
        dedupe
            .start_dedupe(pb::StartDedupeRequest {
                merge_threshold: 1.5,
                ..pb::StartDedupeRequest::default()
            })
            .await,
        Code::InvalidArgument,
        "merge_threshold",
    );
    assert_status(
        dedupe
            .start_dedupe(pb::StartDedupeRequest {
                merge_threshold: 0.6,
                review_threshold: 0.8,
                ..pb::StartDedupeRequest::default()
            })
            .await,
        Code::InvalidArgument,
        "review_threshold",
    );
    assert_status(
        dedupe
            .start_dedupe(pb::StartDedupeRequest {
                blocking_keys: vec![99],
                ..pb::StartDedupeRequest::default()
            })
            .await,
        Code::InvalidArgument,
        "blocking_keys[0]",
    );
    assert_status(
        server
            .dedupe_as(As::Writer)
            .start_dedupe(pb::StartDedupeRequest::default())
            .await,
        Code::PermissionDenied,
        "admin",
    );
    assert_status(
        dedupe
            .resolve_candidate(pb::ResolveCandidateRequest {
                candidate_id: UNKNOWN_ID.into(),
                resolution: pb::Resolution::Merge.into(),
                ..pb::ResolveCandidateRequest::default()
            })
            .await,
        Code::NotFound,
        "candidate_id",
    );
    assert_status(
        dedupe
            .list_candidates(pb::ListCandidatesRequest {
                state: 42,
                ..pb::ListCandidatesRequest::default()
            })
            .await,
        Code::InvalidArgument,
        "state",
    );
}

async fn find_duplicates_warns_before_a_twin_is_created(backend: Backend) {
    let server = TestServer::start(backend).await;
    let stored = create_customer(
        &server,
        person(
            "张伟",
            "13800138000",
            "zhang.wei@example.com",
            "1990-01-02",
            "深圳",
        ),
    )
    .await;
    create_customer(
        &server,
        person(
            "王芳",
            "13700137000",
            "wf@example.com",
            "1979-11-30",
            "杭州",
        ),
    )
    .await;
    let mut reader = server.dedupe_as(As::Reader);
    let found = find_draft(
        &server,
        person("Zhang Wei", "+86 138-0013-8000", "", "1990-01-02", "深圳市"),
    )
    .await;
    assert_eq!(found.len(), 1, "{found:#?}");
    assert_eq!(found[0].customer.as_ref().unwrap().id, stored.id);
    assert!(found[0].score >= 0.95, "{}", found[0].score);
    assert!(!found[0].explanation.as_ref().unwrap().fields.is_empty());
    // A bar above the auto-merge threshold is still a bar, not a threshold conflict.
    let strict = reader
        .find_duplicates(pb::FindDuplicatesRequest {
            subject: Some(pb::find_duplicates_request::Subject::Draft(person(
                "Zhang Wei",
                "+86 138-0013-8000",
                "",
                "1990-01-02",
                "深圳市",
            ))),
            min_score: 0.999,
            ..pb::FindDuplicatesRequest::default()
        })
        .await
        .unwrap()
        .into_inner()
        .matches;
    assert!(
        strict.iter().all(|found| found.score >= 0.999),
        "{strict:#?}"
    );

    let by_id = reader
        .find_duplicates(pb::FindDuplicatesRequest {
            subject: Some(pb::find_duplicates_request::Subject::CustomerId(
                stored.id.clone(),
            )),
            ..pb::FindDuplicatesRequest::default()
        })
        .await
        .unwrap()
        .into_inner()
        .matches;
    assert!(
        by_id.is_empty(),
        "a customer is not its own duplicate: {by_id:#?}"
    );

    assert_status(
        reader
            .find_duplicates(pb::FindDuplicatesRequest::default())
            .await,
        Code::InvalidArgument,
        "subject",
    );
    assert_status(
        reader
            .find_duplicates(pb::FindDuplicatesRequest {
                subject: Some(pb::find_duplicates_request::Subject::CustomerId(
                    UNKNOWN_ID.into(),
                )),
                ..pb::FindDuplicatesRequest::default()
            })
            .await,
        Code::NotFound,
        "customer",
    );
    assert_status(
        reader
            .find_duplicates(pb::FindDuplicatesRequest {
                subject: Some(pb::find_duplicates_request::Subject::CustomerId(
                    stored.id.clone(),
                )),
                limit: 101,
                ..pb::FindDuplicatesRequest::default()
            })
            .await,
        Code::InvalidArgument,
        "limit",
    );
    assert_status(
        reader
            .find_duplicates(pb::FindDuplicatesRequest {
                subject: Some(pb::find_duplicates_request::Subject::Draft(person(
                    "x", "12", "", "", "",
                ))),
                ..pb::FindDuplicatesRequest::default()
            })
            .await,
        Code::InvalidArgument,
        "draft.phones[0]",
    );
}

/// FindDuplicates for a draft that shares no phone or email with anyone: the stored customer is
/// found by the pinyin key of the name, including on rows written before that key was stored.
async fn a_name_written_in_pinyin_finds_the_customer_written_in_han(backend: Backend) {
    let server = TestServer::start(backend).await;
    let stored = create_customer(&server, person("张伟", "", "", "1990-01-02", "深圳")).await;
    create_customer(&server, person("王芳", "", "", "1990-01-02", "深圳")).await;
    // As a database from before the key existed: the server fills it in at start-up.
    let (_, database) = server.terminate().await;
    assert_eq!(
        database
            .execute("UPDATE customers SET name_pinyin = NULL", &[])
            .await,
        2
    );
    let server = TestServer::start_on(database, Options::default()).await;
    let find = |name: &str| find_draft(&server, person(name, "", "", "1990-01-02", "深圳市"));
    for spelling in ["Zhang Wei", "wei zhang", "ZHANG  WEI", "张 伟"] {
        let found = find(spelling).await;
        assert_eq!(
            found
                .iter()
                .map(|found| found.customer.as_ref().unwrap().id.as_str())
                .collect::<Vec<_>>(),
            [stored.id.as_str()],
            "{spelling}: {found:#?}"
        );
    }
    assert!(find("Li Na").await.is_empty());
}

async fn a_thousand_identical_records_become_one_and_names_alone_merge_nothing(backend: Backend) {
    let server = TestServer::start(backend).await;
    let entries: Vec<pb::UpsertCustomerEntry> = (0..1000)
        .map(|i| pb::UpsertCustomerEntry {
            key: Some(pb::ExternalId {
                channel: "shop".into(),
                external_id: format!("buyer-{i}"),
            }),
            customer: Some(person(
                "张伟",
                "13800138000",
                "zw@example.com",
                "1990-01-02",
                "深圳",
            )),
        })
        .collect();
    server
        .customers()
        .upsert_customers(pb::UpsertCustomersRequest { entries })
        .await
        .unwrap();
    // Same name, nothing else: never merged on the name alone.
    create_customer(&server, person("王芳", "", "", "", "")).await;
    create_customer(&server, person("王芳", "", "", "", "")).await;

    let done = run_dedupe(&server, pb::StartDedupeRequest::default()).await;
    let counts = done.progress.unwrap_or_default();
    assert_eq!(counts.merged, 999, "{counts:?}");
    let left = all_customers(&server).await;
    assert_eq!(left.len(), 3, "one 张伟 and both 王芳");
    let zhang = left.iter().find(|c| c.name == "张伟").unwrap();
    assert_eq!(
        zhang.external_ids.len(),
        1000,
        "every channel identity is kept"
    );
}

/// Distinct people (no two share a name, phone, email or birthday) for batch scenarios.
fn someone(index: usize) -> pb::Customer {
    const SURNAMES: [&str; 6] = ["张", "王", "李", "刘", "陈", "杨"];
    const GIVEN: [&str; 6] = ["伟", "芳", "娜", "洋", "静", "磊"];
    person(
        &format!("{}{}", SURNAMES[index / 6 % 6], GIVEN[index % 6]),
        &format!("1380013{index:04}"),
        &format!("p{index}@example.com"),
        &format!("1980-{:02}-{:02}", index / 28 + 1, index % 28 + 1),
        "深圳",
    )
}

/// `count` people, each created twice, with a tag, an order and a contact on each record;
/// returns both records' ids per person.
async fn duplicated_people(server: &TestServer, count: usize) -> Vec<(String, String)> {
    let interests = fixtures::category(server, "兴趣", false).await;
    let tea = fixtures::tag(server, &interests.id, "茶", pb::ValueType::Flag, &[]).await;
    let spend = fixtures::tag(
        server,
        &interests.id,
        "年消费额",
        pb::ValueType::Number,
        &[],
    )
    .await;
    let mut pairs = Vec::with_capacity(count);
    for index in 0..count {
        let first = create_customer(server, someone(index)).await;
        let second = create_customer(server, someone(index)).await;
        assign(server, &first.id, vec![assignment(&tea.id, "")]).await;
        assign(
            server,
            &second.id,
            vec![assignment(&spend.id, &format!("{}", 100 + index))],
        )
        .await;
        order_and_contact(server, &first.id, &format!("B{index}a")).await;
        order_and_contact(server, &second.id, &format!("B{index}b")).await;
        pairs.push((first.id, second.id));
    }
    pairs
}

async fn job_merges(server: &TestServer, job_id: &str) -> Vec<pb::Merge> {
    let mut merges = Vec::new();
    let mut page_token = String::new();
    loop {
        let page = server
            .dedupe()
            .list_merges(pb::ListMergesRequest {
                job_id: job_id.to_owned(),
                page_token,
                page_size: 100,
                ..pb::ListMergesRequest::default()
            })
            .await
            .unwrap()
            .into_inner();
        merges.extend(page.merges);
        if page.next_page_token.is_empty() {
            return merges;
        }
        page_token = page.next_page_token;
    }
}

async fn a_batch_of_dedupe_merges_unmerges_each_exactly(backend: Backend) {
    let server = TestServer::start(backend).await;
    let pairs = duplicated_people(&server, 30).await;
    let mut before = Vec::with_capacity(pairs.len());
    for (first, second) in &pairs {
        before.push((
            everything(&server, first).await,
            everything(&server, second).await,
        ));
    }

    // Thirty clusters: one batch, written set-based.
    let job = run_dedupe(&server, pb::StartDedupeRequest::default()).await;
    let counts = job.progress.unwrap_or_default();
    assert_eq!((counts.merged, counts.rejected), (30, 0), "{counts:?}");
    let merges = job_merges(&server, &job.id).await;
    assert_eq!(merges.len(), 30);
    for (first, second) in &pairs {
        let merge = merges
            .iter()
            .find(|m| &m.survivor_id == first || &m.survivor_id == second)
            .unwrap_or_else(|| panic!("a merge of {first} and {second}: {merges:#?}"));
        let other = if &merge.survivor_id == first {
            second
        } else {
            first
        };
        assert_eq!(merge.merged_ids, vec![other.clone()]);
        let merged = everything(&server, &merge.survivor_id).await;
        assert_eq!(merged.purchases.len(), 2, "both orders on the survivor");
        assert_eq!(merged.interactions.len(), 2, "both contacts");
        assert_eq!(merged.tags.len(), 2, "both tags");
        assert_eq!(get_customer(&server, other).await.id, merge.survivor_id);
    }

    // Every third merge undone: those people come back exactly, the others stay merged.
    for (index, ((first, second), (first_before, second_before))) in
        pairs.iter().zip(&before).enumerate()
    {
        let merge = merges
            .iter()
            .find(|m| &m.survivor_id == first || &m.survivor_id == second)
            .unwrap();
        if index % 3 == 0 {
            unmerge(&server, &merge.id).await.unwrap();
            assert_eq!(
                &everything(&server, first).await,
                first_before,
                "pair {index}"
            );
            assert_eq!(
                &everything(&server, second).await,
                second_before,
                "pair {index}"
            );
        } else {
            let other = if &merge.survivor_id == first {
                second
            } else {
                first
            };
            assert_eq!(
                get_customer(&server, other).await.id,
                merge.survivor_id,
                "pair {index}"
            );
        }
    }
    assert_eq!(
        all_customers(&server).await.len(),
        40,
        "10 pairs apart, 20 merged"
    );
}

async fn a_bad_cluster_in_a_batch_fails_alone(backend: Backend) {
    let server = TestServer::start(backend).await;
    let pairs = duplicated_people(&server, 6).await;
    let (bad_first, bad_second) = pairs[2].clone();
    let bad_before = (
        everything(&server, &bad_first).await,
        everything(&server, &bad_second).await,
    );
    // Redirects left behind by a hand edit: whichever of the pair the merge takes away
    // already has a `merged_customers` row, so writing the batch breaks its primary key.
    for id in [&bad_first, &bad_second] {
        server
            .database
            .execute(
                "INSERT INTO merged_customers (customer_id, merge_id, survivor_id) VALUES (?, ?, ?)",
                &[id, "hand-edit", id],
            )
            .await;
    }

    let job = run_dedupe(&server, pb::StartDedupeRequest::default()).await;
    let counts = job.progress.unwrap_or_default();
    assert_eq!(
        (counts.clusters, counts.merged, counts.rejected),
        (6, 5, 1),
        "{counts:?}"
    );
    let merges = job_merges(&server, &job.id).await;
    assert_eq!(merges.len(), 5);
    for (index, (first, second)) in pairs.iter().enumerate() {
        let merged = merges
            .iter()
            .any(|m| &m.survivor_id == first || &m.survivor_id == second);
        assert_eq!(merged, index != 2, "pair {index}");
    }
    assert_eq!(
        (
            everything(&server, &bad_first).await,
            everything(&server, &bad_second).await
        ),
        bad_before,
        "the bad cluster is left as it was"
    );
    assert_eq!(all_customers(&server).await.len(), 7);
}
