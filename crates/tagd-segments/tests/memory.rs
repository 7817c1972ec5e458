//! What the server's segment index costs per customer: customers loaded
//! through `IndexState::load_customer` (as the start-up build and the
//! follower do) under a counting allocator, so the figure is the heap the
//! state really keeps, not the index's own estimate. Two shapes: an import
//! row (two flag tags, a channel) and the segments bench's customer (15 of
//! 60 flag tags, province, gender, an attribute, a number tag, some with an
//! expiry). `TAGD_MEMORY_CUSTOMERS` sets how many (default 100,000); run
//! with `--nocapture` to see the breakdown.
#![expect(clippy::unwrap_used, reason = "a failed unwrap is a failed test")]
#![expect(unsafe_code, reason = "a global allocator that counts live bytes")]
#![expect(clippy::print_stdout, reason = "the figures are the test's report")]

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use chrono::{Duration, NaiveDate, NaiveDateTime};
use tagd_core::customers::{Address, Customer, CustomerFields, Gender};
use tagd_core::tags::ValueType;
use tagd_segments::IndexState;
use tagd_store::LiveAssignment;

/// Counts the bytes live on the heap (this test binary only).
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every call is forwarded to the system allocator unchanged; only a counter is kept.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size(), Ordering::Relaxed);
        // SAFETY: same layout, forwarded.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        // SAFETY: the pointer came from `alloc` with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(new_size, Ordering::Relaxed);
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

fn customers() -> usize {
    std::env::var("TAGD_MEMORY_CUSTOMERS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(100_000)
}

fn now() -> NaiveDateTime {
    NaiveDate::from_ymd_opt(2026, 6, 15)
        .unwrap()
        .and_hms_opt(12, 0, 0)
        .unwrap()
}

/// UUIDv7-like ids in creation order, as the store hands them out.
fn id(index: usize) -> String {
    format!("019ad0b2-c3d4-7e5f-8a9b-{index:012x}")
}

fn tag_id(index: usize) -> String {
    format!("019ad0a0-0000-7000-8000-{index:012x}")
}

/// Loads `n` customers of one shape in pages of 2,000 (as the build does)
/// and answers the bytes the state keeps per customer.
fn bytes_per_customer(
    shape: &str,
    n: usize,
    tags: &[(String, ValueType)],
    make: impl Fn(usize) -> (Customer, Vec<LiveAssignment>),
) -> f64 {
    let before = LIVE.load(Ordering::Relaxed);
    let mut state = IndexState::default();
    for (tag, value_type) in tags {
        state.set_tag_type(tag, *value_type);
    }
    for start in (0..n).step_by(2_000) {
        let page: Vec<(Customer, Vec<LiveAssignment>)> =
            (start..(start + 2_000).min(n)).map(&make).collect();
        for (customer, assignments) in &page {
            let held: Vec<&LiveAssignment> = assignments.iter().collect();
            state.load_customer(customer, &held, now());
        }
    }
    state.compact();
    let live = LIVE.load(Ordering::Relaxed).saturating_sub(before);
    let report = state.index.memory();
    #[expect(clippy::cast_precision_loss, reason = "a ratio for a report")]
    let per = |bytes: usize| bytes as f64 / n as f64;
    println!(
        "{shape}: {n} customers: heap {:.1} MiB = {:.0} B/customer (index's own estimate {:.0} \
         B: ids {:.0}, tags {:.0}, fields {:.0}, attributes {:.0}, numbers {:.0}; bookkeeping {:.0} B)",
        live as f64 / f64::from(1 << 20),
        per(live),
        per(report.total()),
        per(report.ids),
        per(report.tags),
        per(report.fields),
        per(report.attributes),
        per(report.numbers),
        per(state.bookkeeping_bytes()),
    );
    drop(state);
    per(live)
}

/// One test, not two: the counter sees every thread's allocations, so
/// measurements must not run side by side.
#[test]
fn a_customer_costs_less_in_the_index_than_in_its_rows() {
    an_imported_customer_costs_little();
    a_customer_with_fifteen_tags_costs_less_than_its_rows();
}

fn an_imported_customer_costs_little() {
    let n = customers();
    let tags: Vec<(String, ValueType)> = (0..7).map(|k| (tag_id(k), ValueType::Flag)).collect();
    let per = bytes_per_customer("import rows", n, &tags, |i| {
        let customer = Customer {
            id: id(i),
            fields: CustomerFields {
                name: format!("客户{i:07}"),
                source_channel: "spreadsheet".to_owned(),
                ..CustomerFields::default()
            },
            created_at: now(),
            updated_at: now(),
        };
        let assignments = [i % 3, 3 + i % 4]
            .into_iter()
            .map(|k| LiveAssignment {
                customer_id: id(i),
                tag_id: tag_id(k),
                value: None,
                expires_at: None,
            })
            .collect();
        (customer, assignments)
    });
    assert!(per < 120.0, "{per:.0} B per imported customer");
}

fn a_customer_with_fifteen_tags_costs_less_than_its_rows() {
    let n = customers();
    let mut tags: Vec<(String, ValueType)> =
        (0..60).map(|k| (tag_id(k), ValueType::Flag)).collect();
    tags.push((tag_id(60), ValueType::Number));
    const PROVINCES: [&str; 8] = [
        "北京", "上海", "广东", "浙江", "江苏", "四川", "湖北", "山东",
    ];
    let per = bytes_per_customer("segments bench", n, &tags, |i| {
        let customer = Customer {
            id: id(i),
            fields: CustomerFields {
                name: format!("客户 {i:07}"),
                gender: if i % 2 == 0 {
                    Gender::Female
                } else {
                    Gender::Male
                },
                address: Address {
                    province: PROVINCES[i % 8].to_owned(),
                    ..Address::default()
                },
                attributes: [(
                    "会员等级".to_owned(),
                    ["金卡", "银卡", "普通"][i % 3].to_owned(),
                )]
                .into_iter()
                .collect(),
                ..CustomerFields::default()
            },
            created_at: now(),
            updated_at: now(),
        };
        // 14 distinct flags spread over the 60 (a cheap deterministic draw), one number tag.
        let mut assignments: Vec<LiveAssignment> = (0..14)
            .map(|k| LiveAssignment {
                customer_id: id(i),
                tag_id: tag_id((i * 7 + k * 4 + k * k) % 60),
                value: None,
                // One customer in ten holds one tag that expires.
                expires_at: (k == 0 && i % 10 == 0).then(|| now() + Duration::days(30)),
            })
            .collect();
        assignments.sort_by(|a, b| a.tag_id.cmp(&b.tag_id));
        assignments.dedup_by(|a, b| a.tag_id == b.tag_id);
        assignments.push(LiveAssignment {
            customer_id: id(i),
            tag_id: tag_id(60),
            value: Some((i % 10_000).to_string()),
            expires_at: None,
        });
        (customer, assignments)
    });
    // The database keeps ≥ 15 rows of ~150 bytes (plus indexes) for the same customer.
    assert!(per < 400.0, "{per:.0} B per customer with 15 tags");
}
