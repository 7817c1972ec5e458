//! Scenarios for customer activity: recording and listing purchases and
//! interactions, follow-ups due, and the metrics computed from both.

use chrono::{Duration, Utc};
use tagd_proto::v1 as pb;
use tonic::Code;

use crate::fixtures::{UNKNOWN_ID, count_condition, customer};
use crate::harness::{As, Backend, Options, TestServer, assert_status, backend_tests};

backend_tests!(
    purchases_are_recorded_idempotently_and_listed_newest_first,
    bad_purchases_are_refused_naming_the_field_and_write_nothing,
    a_recorded_order_is_never_rewritten,
    interactions_are_recorded_once_and_listed_newest_first,
    due_follow_ups_span_customers_and_close_with_a_later_contact,
    metrics_are_computed_from_purchases_and_interactions,
    metric_conditions_are_counted_by_the_index_and_follow_new_activity,
    readers_read_activity_but_cannot_record_it,
);

/// A time `days` days and `hours` hours ago, to the second.
fn ago(days: i64, hours: i64) -> prost_types::Timestamp {
    let time = Utc::now() - Duration::days(days) - Duration::hours(hours);
    prost_types::Timestamp {
        seconds: time.timestamp(),
        nanos: 0,
    }
}

fn item(category: &str, quantity: i64, unit_price: &str) -> pb::PurchaseItem {
    pb::PurchaseItem {
        product_id: format!("sku-{category}"),
        name: format!("{category} 商品"),
        category: category.to_owned(),
        quantity,
        unit_price: unit_price.to_owned(),
    }
}

fn order(
    customer_id: &str,
    order_id: &str,
    time: prost_types::Timestamp,
    total: &str,
    items: Vec<pb::PurchaseItem>,
) -> pb::Purchase {
    pb::Purchase {
        customer_id: customer_id.to_owned(),
        channel: "shop".to_owned(),
        order_id: order_id.to_owned(),
        order_time: Some(time),
        total: total.to_owned(),
        status: "paid".to_owned(),
        items,
        ..pb::Purchase::default()
    }
}

async fn record(
    server: &TestServer,
    purchases: Vec<pb::Purchase>,
) -> Result<pb::RecordPurchasesResponse, tonic::Status> {
    server
        .purchases()
        .record_purchases(pb::RecordPurchasesRequest { purchases })
        .await
        .map(tonic::Response::into_inner)
}

async fn all_purchases(server: &TestServer, customer_id: &str) -> Vec<pb::Purchase> {
    server
        .purchases()
        .list_purchases(pb::ListPurchasesRequest {
            customer_id: customer_id.to_owned(),
            page_size: 1000,
            page_token: String::new(),
        })
        .await
        .unwrap()
        .into_inner()
        .purchases
}

async fn purchases_are_recorded_idempotently_and_listed_newest_first(backend: Backend) {
    let server = TestServer::start(backend).await;
    let zhang = customer(&server, "张伟").await;
    let li = customer(&server, "李娜").await;
    let batch = vec![
        order(
            &zhang.id,
            "E1",
            ago(10, 0),
            "",
            vec![item("母婴", 2, "99.50")],
        ),
        order(
            &zhang.id,
            "E2",
            ago(1, 0),
            "300",
            vec![item("食品", 1, "300")],
        ),
        order(&li.id, "E3", ago(5, 0), "12.3", vec![]),
        order(&zhang.id, "E4", ago(3, 0), "8", vec![]),
    ];
    let first = record(&server, batch.clone()).await.unwrap();
    assert_eq!((first.created, first.unchanged), (4, 0));
    assert!(
        first
            .results
            .iter()
            .all(|r| r.outcome == i32::from(pb::RecordOutcome::Created))
    );

    let again = record(&server, batch.clone()).await.unwrap();
    assert_eq!(
        (again.created, again.unchanged),
        (0, 4),
        "a retry changes nothing"
    );
    let ids = |response: &pb::RecordPurchasesResponse| -> Vec<String> {
        response
            .results
            .iter()
            .map(|r| r.purchase_id.clone())
            .collect()
    };
    assert_eq!(ids(&again), ids(&first), "the stored orders are reported");

    // A batch mixing a known order with a new one: only the new one is created.
    let mixed = record(
        &server,
        vec![
            batch[0].clone(),
            order(&li.id, "E5", ago(2, 0), "1", vec![]),
        ],
    )
    .await
    .unwrap();
    assert_eq!((mixed.created, mixed.unchanged), (1, 1));

    let listed = all_purchases(&server, &zhang.id).await;
    let order_ids: Vec<&str> = listed.iter().map(|p| p.order_id.as_str()).collect();
    assert_eq!(order_ids, ["E2", "E4", "E1"], "newest first");
    let e1 = &listed[2];
    assert_eq!(
        e1.total, "199.00",
        "an order without a total sums its items"
    );
    assert_eq!(e1.currency, "CNY");
    assert_eq!(e1.channel, "shop");
    assert_eq!(e1.status, "paid");
    assert_eq!(e1.items.len(), 1);
    assert_eq!(e1.items[0].unit_price, "99.50");
    assert_eq!(e1.items[0].quantity, 2);
    assert_eq!(e1.items[0].category, "母婴");
    assert_eq!(e1.order_time, batch[0].order_time);
    assert_eq!(e1.source_ref, "", "recorded through the API, not an import");
    assert!(e1.record_time.is_some());
    assert_eq!(e1.id, first.results[0].purchase_id);

    // Paging: two, then one, then nothing more.
    let mut seen = Vec::new();
    let mut token = String::new();
    let mut pages = 0;
    loop {
        let page = server
            .purchases()
            .list_purchases(pb::ListPurchasesRequest {
                customer_id: zhang.id.clone(),
                page_size: 2,
                page_token: token,
            })
            .await
            .unwrap()
            .into_inner();
        pages += 1;
        seen.extend(page.purchases.into_iter().map(|p| p.order_id));
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    assert_eq!(seen, ["E2", "E4", "E1"]);
    assert_eq!(pages, 2);

    let li_orders = all_purchases(&server, &li.id).await;
    assert_eq!(
        li_orders
            .iter()
            .map(|p| p.order_id.as_str())
            .collect::<Vec<_>>(),
        ["E5", "E3"]
    );
    assert_eq!(li_orders[1].total, "12.30");

    assert_status(
        server
            .purchases()
            .list_purchases(pb::ListPurchasesRequest {
                customer_id: UNKNOWN_ID.to_owned(),
                ..pb::ListPurchasesRequest::default()
            })
            .await,
        Code::NotFound,
        "customer",
    );
    assert_status(
        server
            .purchases()
            .list_purchases(pb::ListPurchasesRequest {
                customer_id: zhang.id.clone(),
                page_token: "garbage".to_owned(),
                ..pb::ListPurchasesRequest::default()
            })
            .await,
        Code::InvalidArgument,
        "page_token",
    );
}

async fn bad_purchases_are_refused_naming_the_field_and_write_nothing(backend: Backend) {
    let server = TestServer::start(backend).await;
    let zhang = customer(&server, "张伟").await;
    let good = order(
        &zhang.id,
        "G1",
        ago(1, 0),
        "10",
        vec![item("食品", 1, "10")],
    );
    let with_item = |item: pb::PurchaseItem| {
        let mut bad = order(&zhang.id, "B1", ago(2, 0), "10", vec![item]);
        bad.items.insert(0, self::item("母婴", 1, "1"));
        bad
    };
    let mut unknown_currency = order(&zhang.id, "B1", ago(2, 0), "10", vec![]);
    unknown_currency.currency = "XYZ".to_owned();
    let mut no_time = order(&zhang.id, "B1", ago(2, 0), "10", vec![]);
    no_time.order_time = None;
    let mut no_channel = order(&zhang.id, "B1", ago(2, 0), "10", vec![]);
    no_channel.channel = String::new();
    let cases: Vec<(pb::Purchase, Code, &str)> = vec![
        (
            order(&zhang.id, "G1", ago(3, 0), "5", vec![]),
            Code::InvalidArgument,
            "purchases[1].order_id: is the same order as purchases[0]",
        ),
        (
            with_item(item("食品", 0, "1")),
            Code::InvalidArgument,
            "purchases[1].items[1].quantity: must be positive, got 0",
        ),
        (
            with_item(item("食品", -3, "1")),
            Code::InvalidArgument,
            "purchases[1].items[1].quantity: must be positive, got -3",
        ),
        (
            with_item(item("食品", 1, "-5")),
            Code::InvalidArgument,
            "purchases[1].items[1].unit_price",
        ),
        (
            order(&zhang.id, "B1", ago(2, 0), "-1", vec![]),
            Code::InvalidArgument,
            "purchases[1].total",
        ),
        (
            unknown_currency,
            Code::InvalidArgument,
            "purchases[1].currency: \"XYZ\" is not a known currency code",
        ),
        (
            no_time,
            Code::InvalidArgument,
            "purchases[1].order_time: must be set",
        ),
        (no_channel, Code::InvalidArgument, "purchases[1].channel"),
        (
            order(&zhang.id, "", ago(2, 0), "1", vec![]),
            Code::InvalidArgument,
            "purchases[1].order_id: must not be empty",
        ),
        (
            order(UNKNOWN_ID, "B1", ago(2, 0), "1", vec![]),
            Code::NotFound,
            "purchases[1].customer_id: customer",
        ),
        (
            order("not-an-id", "B1", ago(2, 0), "1", vec![]),
            Code::InvalidArgument,
            "purchases[1].customer_id",
        ),
    ];
    for (bad, code, needle) in cases {
        assert_status(record(&server, vec![good.clone(), bad]).await, code, needle);
        assert!(
            all_purchases(&server, &zhang.id).await.is_empty(),
            "a refused batch writes nothing ({needle})"
        );
    }
    assert_status(
        record(&server, vec![]).await,
        Code::InvalidArgument,
        "purchases",
    );
    let too_many: Vec<pb::Purchase> = (0..1001)
        .map(|n| order(&zhang.id, &format!("N{n}"), ago(1, 0), "1", vec![]))
        .collect();
    assert_status(
        record(&server, too_many).await,
        Code::InvalidArgument,
        "has 1001; the limit is 1000",
    );
    assert!(all_purchases(&server, &zhang.id).await.is_empty());
    let exactly = (0..1000)
        .map(|n| order(&zhang.id, &format!("N{n}"), ago(1, 0), "1", vec![]))
        .collect();
    assert_eq!(record(&server, exactly).await.unwrap().created, 1000);
}

async fn a_recorded_order_is_never_rewritten(backend: Backend) {
    let server = TestServer::start(backend).await;
    let zhang = customer(&server, "张伟").await;
    let li = customer(&server, "李娜").await;
    let original = order(
        &zhang.id,
        "E1",
        ago(1, 0),
        "10",
        vec![item("食品", 1, "10")],
    );
    record(&server, vec![original.clone()]).await.unwrap();
    let fresh = order(&zhang.id, "E2", ago(1, 0), "5", vec![]);

    let mut dearer = original.clone();
    dearer.total = "11".to_owned();
    let mut other_items = original.clone();
    other_items.items[0].quantity = 2;
    let mut elsewhere = original.clone();
    elsewhere.customer_id = li.id.clone();
    for (changed, fields) in [
        (dearer, "another total"),
        (other_items, "another items"),
        (elsewhere, "another customer_id"),
    ] {
        assert_status(
            record(&server, vec![fresh.clone(), changed]).await,
            Code::AlreadyExists,
            &format!("purchases[1]: order shop/E1 is already recorded with {fields}"),
        );
    }
    let stored = all_purchases(&server, &zhang.id).await;
    assert_eq!(stored.len(), 1, "E2 was not written either");
    assert_eq!(stored[0].total, "10.00");
    assert!(all_purchases(&server, &li.id).await.is_empty());

    // The same order id in another channel is another order.
    let mut other_channel = original.clone();
    other_channel.channel = "tmall".to_owned();
    assert_eq!(
        record(&server, vec![other_channel]).await.unwrap().created,
        1
    );
    // Channel names are case-folded: SHOP is the channel shop.
    let mut shouted = original.clone();
    shouted.channel = "SHOP".to_owned();
    assert_eq!(record(&server, vec![shouted]).await.unwrap().unchanged, 1);
}

fn contact(
    customer_id: &str,
    time: prost_types::Timestamp,
    summary: &str,
    next_follow_up: &str,
) -> pb::Interaction {
    pb::Interaction {
        customer_id: customer_id.to_owned(),
        time: Some(time),
        channel: pb::InteractionChannel::Phone.into(),
        direction: pb::InteractionDirection::Outbound.into(),
        staff: "王芳".to_owned(),
        summary: summary.to_owned(),
        outcome: "有意向".to_owned(),
        next_follow_up: next_follow_up.to_owned(),
        ..pb::Interaction::default()
    }
}

async fn record_contact(
    server: &TestServer,
    interaction: pb::Interaction,
) -> Result<pb::RecordInteractionResponse, tonic::Status> {
    server
        .interactions()
        .record_interaction(pb::RecordInteractionRequest {
            interaction: Some(interaction),
        })
        .await
        .map(tonic::Response::into_inner)
}

async fn all_interactions(server: &TestServer, customer_id: &str) -> Vec<pb::Interaction> {
    server
        .interactions()
        .list_interactions(pb::ListInteractionsRequest {
            customer_id: customer_id.to_owned(),
            page_size: 1000,
            page_token: String::new(),
        })
        .await
        .unwrap()
        .into_inner()
        .interactions
}

async fn interactions_are_recorded_once_and_listed_newest_first(backend: Backend) {
    let server = TestServer::start(backend).await;
    let zhang = customer(&server, "张伟").await;
    let call = contact(&zhang.id, ago(3, 0), "介绍新品", "2026-12-05");
    let first = record_contact(&server, call.clone()).await.unwrap();
    assert!(first.created);
    let stored = first.interaction.unwrap();
    assert_eq!(stored.customer_id, zhang.id);
    assert_eq!(stored.channel, i32::from(pb::InteractionChannel::Phone));
    assert_eq!(
        stored.direction,
        i32::from(pb::InteractionDirection::Outbound)
    );
    assert_eq!(stored.staff, "王芳");
    assert_eq!(stored.summary, "介绍新品");
    assert_eq!(stored.outcome, "有意向");
    assert_eq!(stored.next_follow_up, "2026-12-05");
    assert_eq!(stored.time, call.time);

    let again = record_contact(&server, call.clone()).await.unwrap();
    assert!(!again.created, "the same contact is stored once");
    assert_eq!(again.interaction.unwrap().id, stored.id);

    let mut wechat = contact(&zhang.id, ago(1, 0), "发送报价", "");
    wechat.channel = pb::InteractionChannel::Wechat.into();
    wechat.direction = pb::InteractionDirection::Unspecified.into();
    record_contact(&server, wechat).await.unwrap();
    record_contact(&server, contact(&zhang.id, ago(2, 0), "确认需求", ""))
        .await
        .unwrap();

    let listed = all_interactions(&server, &zhang.id).await;
    let summaries: Vec<&str> = listed.iter().map(|i| i.summary.as_str()).collect();
    assert_eq!(
        summaries,
        ["发送报价", "确认需求", "介绍新品"],
        "newest first"
    );
    assert_eq!(listed[0].direction, 0);
    assert_eq!(listed[0].next_follow_up, "");

    let page = server
        .interactions()
        .list_interactions(pb::ListInteractionsRequest {
            customer_id: zhang.id.clone(),
            page_size: 2,
            page_token: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(page.interactions.len(), 2);
    let rest = server
        .interactions()
        .list_interactions(pb::ListInteractionsRequest {
            customer_id: zhang.id.clone(),
            page_size: 2,
            page_token: page.next_page_token,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(rest.interactions.len(), 1);
    assert_eq!(rest.interactions[0].summary, "介绍新品");
    assert!(rest.next_page_token.is_empty());

    let mut no_channel = contact(&zhang.id, ago(1, 0), "x", "");
    no_channel.channel = 0;
    let mut no_time = contact(&zhang.id, ago(1, 0), "x", "");
    no_time.time = None;
    let long_summary = contact(&zhang.id, ago(1, 0), &"长".repeat(2001), "");
    for (bad, code, needle) in [
        (
            no_channel,
            Code::InvalidArgument,
            "interaction.channel: must be set",
        ),
        (
            no_time,
            Code::InvalidArgument,
            "interaction.time: must be set",
        ),
        (
            contact(&zhang.id, ago(1, 0), "x", "next tuesday"),
            Code::InvalidArgument,
            "interaction.next_follow_up: \"next tuesday\" is not a date",
        ),
        (long_summary, Code::InvalidArgument, "interaction.summary"),
        (
            contact(UNKNOWN_ID, ago(1, 0), "x", ""),
            Code::NotFound,
            "interaction.customer_id: customer",
        ),
    ] {
        assert_status(record_contact(&server, bad).await, code, needle);
    }
    assert_status(
        server
            .interactions()
            .record_interaction(pb::RecordInteractionRequest { interaction: None })
            .await,
        Code::InvalidArgument,
        "interaction: must be set",
    );
    assert_eq!(
        all_interactions(&server, &zhang.id).await.len(),
        3,
        "refused calls wrote nothing"
    );
    assert_status(
        server
            .interactions()
            .list_interactions(pb::ListInteractionsRequest {
                customer_id: UNKNOWN_ID.to_owned(),
                ..pb::ListInteractionsRequest::default()
            })
            .await,
        Code::NotFound,
        "customer",
    );
}

async fn due(
    server: &TestServer,
    before: &str,
    page_size: u32,
    page_token: String,
) -> pb::ListDueFollowUpsResponse {
    server
        .interactions()
        .list_due_follow_ups(pb::ListDueFollowUpsRequest {
            before: before.to_owned(),
            page_size,
            page_token,
        })
        .await
        .unwrap()
        .into_inner()
}

async fn due_follow_ups_span_customers_and_close_with_a_later_contact(backend: Backend) {
    let server = TestServer::start(backend).await;
    let zhang = customer(&server, "张伟").await;
    let li = customer(&server, "李娜").await;
    let wang = customer(&server, "王强").await;
    let zhao = customer(&server, "赵敏").await;
    record_contact(
        &server,
        contact(&zhang.id, ago(20, 0), "张 首次", "2026-03-10"),
    )
    .await
    .unwrap();
    record_contact(
        &server,
        contact(&li.id, ago(20, 0), "李 首次", "2026-03-01"),
    )
    .await
    .unwrap();
    record_contact(
        &server,
        contact(&wang.id, ago(20, 0), "王 首次", "2026-03-05"),
    )
    .await
    .unwrap();
    // Wang was called back since: that contact closes the planned follow-up.
    record_contact(&server, contact(&wang.id, ago(10, 0), "王 回访", ""))
        .await
        .unwrap();
    // Zhao's follow-up is after the date asked about.
    record_contact(
        &server,
        contact(&zhao.id, ago(20, 0), "赵 首次", "2026-04-01"),
    )
    .await
    .unwrap();

    let listed = due(&server, "2026-04-01", 0, String::new()).await;
    let summaries: Vec<&str> = listed
        .interactions
        .iter()
        .map(|i| i.summary.as_str())
        .collect();
    assert_eq!(summaries, ["李 首次", "张 首次"], "oldest due first");
    assert!(listed.next_page_token.is_empty());
    assert_eq!(listed.interactions[0].customer_id, li.id);

    let first = due(&server, "2026-04-02", 2, String::new()).await;
    assert_eq!(first.interactions.len(), 2);
    let second = due(&server, "2026-04-02", 2, first.next_page_token).await;
    assert_eq!(
        second
            .interactions
            .iter()
            .map(|i| i.summary.as_str())
            .collect::<Vec<_>>(),
        ["赵 首次"]
    );
    assert!(second.next_page_token.is_empty());

    assert!(
        due(&server, "2026-03-01", 0, String::new())
            .await
            .interactions
            .is_empty(),
        "before is exclusive"
    );

    for (before, needle) in [
        ("", "before: must be set"),
        ("March", "before: \"March\" is not a date"),
    ] {
        assert_status(
            server
                .interactions()
                .list_due_follow_ups(pb::ListDueFollowUpsRequest {
                    before: before.to_owned(),
                    ..pb::ListDueFollowUpsRequest::default()
                })
                .await,
            Code::InvalidArgument,
            needle,
        );
    }
}

/// Amounts as (currency, amount) pairs.
type Amounts = Vec<(String, String)>;

fn money(amounts: &[pb::Money]) -> Amounts {
    amounts
        .iter()
        .map(|m| (m.currency.clone(), m.amount.clone()))
        .collect()
}

async fn metrics_are_computed_from_purchases_and_interactions(backend: Backend) {
    let server = TestServer::start_with(
        backend,
        Options {
            extra_config: "metric_windows_days = [400, 30, 90]".to_owned(),
            ..Options::default()
        },
    )
    .await;
    let zhang = customer(&server, "张伟").await;
    let mut usd = order(
        &zhang.id,
        "U1",
        ago(5, 0),
        "20",
        vec![item("数码", 1, "20")],
    );
    usd.currency = "USD".to_owned();
    record(
        &server,
        vec![
            order(
                &zhang.id,
                "E1",
                ago(2, 1),
                "100",
                vec![
                    item("母婴", 1, "60"),
                    item("食品", 2, "20"),
                    item("母婴", 1, "0"),
                ],
            ),
            order(
                &zhang.id,
                "E2",
                ago(40, 0),
                "50",
                vec![item("食品", 1, "50")],
            ),
            order(
                &zhang.id,
                "E3",
                ago(100, 0),
                "25.50",
                vec![item("母婴", 1, "25.50")],
            ),
            order(&zhang.id, "E4", ago(120, 0), "10", vec![]),
            order(&zhang.id, "E5", ago(500, 0), "7", vec![]),
            usd,
        ],
    )
    .await
    .unwrap();
    record_contact(&server, contact(&zhang.id, ago(1, 2), "回访", ""))
        .await
        .unwrap();
    record_contact(&server, contact(&zhang.id, ago(8, 0), "首次", ""))
        .await
        .unwrap();

    let metrics = server
        .metrics_as(As::Reader)
        .get_customer_metrics(pb::GetCustomerMetricsRequest {
            customer_id: zhang.id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(metrics.customer_id, zhang.id);
    assert_eq!(metrics.recency_days, Some(2));
    let e1_time = all_purchases(&server, &zhang.id).await[0].order_time;
    assert_eq!(metrics.last_purchase_time, e1_time);
    let windows: Vec<(u32, u64, Amounts)> = metrics
        .windows
        .iter()
        .map(|w| (w.days, w.order_count, money(&w.amounts)))
        .collect();
    let usd_and = |cny: &str, usd: &str| {
        vec![
            ("CNY".to_owned(), cny.to_owned()),
            ("USD".to_owned(), usd.to_owned()),
        ]
    };
    assert_eq!(
        windows,
        [
            // E1 + U1
            (30, 2, usd_and("100.00", "20.00")),
            // + E2
            (90, 3, usd_and("150.00", "20.00")),
            // + E3 + E4 (E5 is 500 days old)
            (400, 5, usd_and("185.50", "20.00")),
        ],
        "windows in ascending order, per currency"
    );
    assert_eq!(metrics.lifetime_order_count, 6);
    assert_eq!(money(&metrics.lifetime_amounts), usd_and("192.50", "20.00"));
    // 192.50 / 5 = 38.50; 20 / 1
    assert_eq!(
        money(&metrics.average_order_values),
        usd_and("38.50", "20.00")
    );
    let categories: Vec<(&str, u64)> = metrics
        .categories
        .iter()
        .map(|c| (c.category.as_str(), c.order_count))
        .collect();
    assert_eq!(categories, [("母婴", 2), ("食品", 2), ("数码", 1)]);
    let last_contact = all_interactions(&server, &zhang.id).await[0].time;
    assert_eq!(metrics.last_interaction_time, last_contact);
    // Last 90 days: E1, U1, E2; the 90 before: E3, E4.
    assert_eq!(
        (metrics.recent_order_count, metrics.previous_order_count),
        (3, 2)
    );
    assert_eq!(metrics.frequency_ratio, Some(1.5));
    assert_eq!(
        metrics.frequency_trend,
        i32::from(pb::FrequencyTrend::Rising)
    );

    // Always current: a new order shows at once.
    record(
        &server,
        vec![order(&zhang.id, "E6", ago(0, 1), "1", vec![])],
    )
    .await
    .unwrap();
    let now = server
        .metrics_as(As::Reader)
        .get_customer_metrics(pb::GetCustomerMetricsRequest {
            customer_id: zhang.id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(now.recency_days, Some(0));
    assert_eq!(now.lifetime_order_count, 7);

    let quiet = customer(&server, "李娜").await;
    let empty = server
        .metrics_as(As::Reader)
        .get_customer_metrics(pb::GetCustomerMetricsRequest {
            customer_id: quiet.id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(empty.recency_days, None);
    assert_eq!(empty.last_purchase_time, None);
    assert_eq!(empty.last_interaction_time, None);
    assert_eq!(empty.lifetime_order_count, 0);
    assert!(empty.lifetime_amounts.is_empty() && empty.categories.is_empty());
    assert_eq!(
        empty
            .windows
            .iter()
            .map(|w| w.order_count)
            .collect::<Vec<_>>(),
        [0, 0, 0]
    );
    assert_eq!(empty.frequency_ratio, None);
    assert_eq!(empty.frequency_trend, i32::from(pb::FrequencyTrend::None));

    assert_status(
        server
            .metrics_as(As::Reader)
            .get_customer_metrics(pb::GetCustomerMetricsRequest {
                customer_id: UNKNOWN_ID.to_owned(),
            })
            .await,
        Code::NotFound,
        "customer",
    );
}

/// Counts a condition the segment index must answer, asserting that it did.
async fn indexed_count(server: &TestServer, condition: &str) -> u64 {
    let answer = count_condition(server, condition).await;
    assert!(
        answer.from_index,
        "{condition}: answered by the reference path: {}",
        answer.fallback_reason
    );
    answer.count
}

/// Metrics and categories bought are in the segment index: counted without
/// evaluating every customer, and recomputed as soon as an order or a
/// contact is recorded.
async fn metric_conditions_are_counted_by_the_index_and_follow_new_activity(backend: Backend) {
    let server = TestServer::start(backend).await;
    let zhang = customer(&server, "张伟").await;
    let li = customer(&server, "李娜").await;
    let wang = customer(&server, "王芳").await;
    record(
        &server,
        vec![
            order(
                &zhang.id,
                "M1",
                ago(3, 0),
                "300",
                vec![item("母婴", 1, "300")],
            ),
            order(
                &zhang.id,
                "M2",
                ago(20, 0),
                "120",
                vec![item("母婴", 2, "60")],
            ),
            order(
                &li.id,
                "M3",
                ago(100, 0),
                "5000",
                vec![item("数码", 1, "5000")],
            ),
        ],
    )
    .await
    .unwrap();
    record_contact(&server, contact(&wang.id, ago(3, 0), "初次接触", ""))
        .await
        .unwrap();

    for (condition, expected) in [
        ("orders_90d >= 2", 1),
        ("orders_365d >= 1", 2),
        ("spent_30d > 400", 1),
        ("recency_days > 90", 1),
        ("recency_days <= 90 OR last_interaction_days < 7", 2),
        ("avg_order_value >= 1000", 1),
        (r#"bought_category("母婴")"#, 1),
        (r#"spent_365d > 0 AND NOT bought_category("数码")"#, 1),
        ("NOT orders_365d >= 1", 1),
    ] {
        assert_eq!(
            indexed_count(&server, condition).await,
            expected,
            "{condition}"
        );
    }

    // New activity shows in the next count.
    record(
        &server,
        vec![order(
            &wang.id,
            "M4",
            ago(0, 1),
            "80",
            vec![item("母婴", 1, "80")],
        )],
    )
    .await
    .unwrap();
    assert_eq!(
        indexed_count(&server, r#"bought_category("母婴")"#).await,
        2
    );
    assert_eq!(indexed_count(&server, "orders_30d >= 1").await, 2);
    record_contact(&server, contact(&li.id, ago(0, 2), "回访", ""))
        .await
        .unwrap();
    assert_eq!(indexed_count(&server, "last_interaction_days < 7").await, 2);

    // Raw purchase events with their own filters are evaluated customer by customer, and
    // agree.
    let events = count_condition(&server, r#"purchases(category = "母婴", days = 90) >= 1"#).await;
    assert_eq!((events.count, events.from_index), (2, false));
    assert!(
        events.fallback_reason.contains("purchases"),
        "{}",
        events.fallback_reason
    );

    // A deleted customer's metrics leave with it.
    server
        .customers()
        .delete_customer(pb::DeleteCustomerRequest {
            id: zhang.id.clone(),
        })
        .await
        .unwrap();
    assert_eq!(indexed_count(&server, "orders_90d >= 2").await, 0);
    assert_eq!(
        indexed_count(&server, r#"bought_category("母婴")"#).await,
        1
    );
}

async fn readers_read_activity_but_cannot_record_it(backend: Backend) {
    let server = TestServer::start(backend).await;
    let zhang = customer(&server, "张伟").await;
    let reader_record = server
        .purchases_as(As::Reader)
        .record_purchases(pb::RecordPurchasesRequest {
            purchases: vec![order(&zhang.id, "E1", ago(1, 0), "1", vec![])],
        })
        .await;
    assert_status(reader_record, Code::PermissionDenied, "needs writer");
    assert_status(
        server
            .interactions_as(As::Reader)
            .record_interaction(pb::RecordInteractionRequest {
                interaction: Some(contact(&zhang.id, ago(1, 0), "x", "")),
            })
            .await,
        Code::PermissionDenied,
        "needs writer",
    );
    assert_status(
        server
            .metrics_as(As::Nobody)
            .get_customer_metrics(pb::GetCustomerMetricsRequest {
                customer_id: zhang.id.clone(),
            })
            .await,
        Code::Unauthenticated,
        "authorization",
    );
    assert!(all_purchases(&server, &zhang.id).await.is_empty());

    server
        .purchases_as(As::Writer)
        .record_purchases(pb::RecordPurchasesRequest {
            purchases: vec![order(&zhang.id, "E1", ago(1, 0), "1", vec![])],
        })
        .await
        .unwrap();
    server
        .interactions_as(As::Writer)
        .record_interaction(pb::RecordInteractionRequest {
            interaction: Some(contact(&zhang.id, ago(1, 0), "x", "2026-01-01")),
        })
        .await
        .unwrap();
    let listed = server
        .purchases_as(As::Reader)
        .list_purchases(pb::ListPurchasesRequest {
            customer_id: zhang.id.clone(),
            ..pb::ListPurchasesRequest::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.purchases.len(), 1);
    let contacts = server
        .interactions_as(As::Reader)
        .list_interactions(pb::ListInteractionsRequest {
            customer_id: zhang.id.clone(),
            ..pb::ListInteractionsRequest::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(contacts.interactions.len(), 1);
    let due = server
        .interactions_as(As::Reader)
        .list_due_follow_ups(pb::ListDueFollowUpsRequest {
            before: "2026-01-02".to_owned(),
            ..pb::ListDueFollowUpsRequest::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(due.interactions.len(), 1);

    // Deleting the customer deletes its activity; metrics then say not found.
    server
        .customers()
        .delete_customer(pb::DeleteCustomerRequest {
            id: zhang.id.clone(),
        })
        .await
        .unwrap();
    assert_status(
        server
            .metrics_as(As::Reader)
            .get_customer_metrics(pb::GetCustomerMetricsRequest {
                customer_id: zhang.id.clone(),
            })
            .await,
        Code::NotFound,
        "customer",
    );
}
