//! The orders reader against the samples in `testdata/` and arbitrary bytes.
#![expect(
    clippy::unwrap_used,
    reason = "test helpers outside #[test] functions unwrap too"
)]

use std::{collections::BTreeMap, fs::File, io::BufReader, path::PathBuf};

use proptest::prelude::*;
use tagd_plugin_api::{ImportRecord, Options, RowError};
use tagd_plugin_orders::OrdersReader;

fn options(pairs: &[(&str, &str)]) -> Options {
    Options::new(
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect::<BTreeMap<_, _>>(),
    )
}

fn open(name: &str, pairs: &[(&str, &str)]) -> Result<OrdersReader<BufReader<File>>, String> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("testdata")
        .join(name);
    OrdersReader::new(BufReader::new(File::open(path).unwrap()), &options(pairs))
        .map_err(|e| e.to_string())
}

fn read(name: &str, pairs: &[(&str, &str)]) -> (Vec<ImportRecord>, Vec<RowError>) {
    let (mut records, mut errors) = (Vec::new(), Vec::new());
    for item in open(name, pairs).unwrap() {
        match item {
            Ok(r) => records.push(r),
            Err(e) => errors.push(e),
        }
    }
    (records, errors)
}

#[test]
fn maps_orders_and_reports_bad_lines() {
    let (records, errors) = read("orders.jsonl", &[("currency", "CNY")]);
    assert_eq!(records.len(), 2);
    let rows: Vec<u64> = errors.iter().map(|e| e.row).collect();
    assert_eq!(rows, vec![2, 4, 5], "{errors:?}");
    assert!(
        errors[0].reason.contains("expected a string or a number"),
        "{errors:?}"
    );
    assert!(errors[1].reason.contains("no buyer"));
    assert!(errors[2].reason.contains("not an order object"));

    let first = &records[0];
    let c = first.customer.as_ref().unwrap();
    assert_eq!((first.position, first.external_id.as_str()), (1, "buyer-1"));
    assert_eq!((c.name.as_str(), c.district.as_str()), ("张三", "西湖区"));
    assert_eq!(c.emails, vec!["zhangsan@example.com"]);
    let p = &first.purchases[0];
    assert_eq!(
        (p.order_id.as_str(), p.total.as_str(), p.status.as_str()),
        ("E1001", "199.00", "paid")
    );
    assert_eq!(
        (
            p.items[0].product_id.as_str(),
            p.items[0].quantity.as_str(),
            p.items[0].unit_price.as_str()
        ),
        ("P-100", "2", "99.50")
    );

    let second = &records[1];
    assert_eq!(
        (second.position, second.external_id.as_str()),
        (6, "lisi88")
    );
    let p = &second.purchases[0];
    assert_eq!(
        (p.order_id.as_str(), p.total.as_str(), p.currency.as_str()),
        ("20240602", "58", "CNY")
    );
}

#[test]
fn id_channel_moves_buyer_ids() {
    let (records, _) = read("orders.jsonl", &[("id_channel", "taobao")]);
    assert!(records[0].external_id.is_empty());
    assert_eq!(
        (
            records[0].other_ids[0].channel.as_str(),
            records[0].other_ids[0].id.as_str()
        ),
        ("taobao", "buyer-1")
    );
}

#[test]
fn bad_files_are_refused_at_open() {
    assert!(
        open("array.json", &[])
            .unwrap_err()
            .contains("a JSON array")
    );
    assert!(open("empty.jsonl", &[]).unwrap_err().contains("empty"));
    assert!(
        open("binary.jsonl", &[])
            .unwrap_err()
            .starts_with("not JSON Lines")
    );
}

#[test]
fn a_ten_megabyte_line_is_parsed() {
    let mut input = br#"{"order_id": "1", "buyer": {"name": ""#.to_vec();
    input.extend(std::iter::repeat_n(b'x', 10 << 20));
    input.extend_from_slice(b"\"}}\n");
    let items: Vec<_> = OrdersReader::new(input.as_slice(), &options(&[]))
        .unwrap()
        .collect();
    assert_eq!(items.len(), 1);
    assert_eq!(
        items[0]
            .as_ref()
            .unwrap()
            .customer
            .as_ref()
            .unwrap()
            .name
            .len(),
        10 << 20
    );
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(body in proptest::collection::vec(any::<u8>(), 0..2048)) {
        for prefix in [&b""[..], b"{"] {
            let mut input = prefix.to_vec();
            input.extend_from_slice(&body);
            if let Ok(reader) = OrdersReader::new(input.as_slice(), &options(&[])) {
                for _ in reader {}
            }
        }
    }

    #[test]
    fn arbitrary_order_shapes_never_panic(parts in proptest::collection::vec("[\\[\\]{}\",:a-z0-9 ]{0,20}", 0..20)) {
        let input = format!("{{\"order_id\": 1, \"buyer\": {}\n", parts.concat());
        for _ in OrdersReader::new(input.as_bytes(), &options(&[])).unwrap() {}
    }
}
