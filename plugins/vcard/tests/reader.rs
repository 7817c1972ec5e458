//! The vCard reader against the sample files in `testdata/` and arbitrary bytes.
#![expect(
    clippy::unwrap_used,
    reason = "test helpers outside #[test] functions unwrap too"
)]

use std::{collections::BTreeMap, fs::File, io::BufReader, path::PathBuf};

use proptest::prelude::*;
use tagd_plugin_api::{ImportRecord, Options, RowError};
use tagd_plugin_vcard::VcardReader;

fn sample(name: &str) -> BufReader<File> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("testdata")
        .join(name);
    BufReader::new(File::open(path).unwrap())
}

fn options(pairs: &[(&str, &str)]) -> Options {
    Options::new(
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect::<BTreeMap<_, _>>(),
    )
}

fn read(name: &str, pairs: &[(&str, &str)]) -> (Vec<ImportRecord>, Vec<RowError>) {
    let mut records = Vec::new();
    let mut errors = Vec::new();
    for item in VcardReader::new(sample(name), &options(pairs)).unwrap() {
        match item {
            Ok(r) => records.push(r),
            Err(e) => errors.push(e),
        }
    }
    (records, errors)
}

#[test]
fn reads_vcard_3_with_folding_and_quoted_printable() {
    let (records, errors) = read("contacts-v3.vcf", &[("tag_category", "来源")]);
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(records.len(), 3);
    let first = &records[0];
    let c = first.customer.as_ref().unwrap();
    assert_eq!(first.position, 1);
    assert_eq!(first.external_id, "3f1b2c9e-0000-4000-8000-000000000001");
    assert_eq!(c.name, "张三");
    assert_eq!(c.phones, vec!["138 0000 0001", "+86 10 8888 0000"]);
    assert_eq!(c.emails, vec!["zhangsan@example.com", "zs@corp.example.cn"]);
    assert_eq!(c.company, "示例科技有限公司");
    assert_eq!(c.attributes["title"], "采购经理");
    assert_eq!(
        c.attributes["note"],
        "第一行\n第二行，很长的备注会被折行，然后继续。"
    );
    assert_eq!((c.province.as_str(), c.city.as_str()), ("浙江", "杭州"));
    assert_eq!(c.birthday, "1990-04-15");
    let tags: Vec<_> = first
        .tags
        .iter()
        .map(|t| (t.category.as_str(), t.name.as_str()))
        .collect();
    assert_eq!(tags, vec![("来源", "VIP"), ("来源", "老客户")]);

    let second = records[1].customer.as_ref().unwrap();
    assert_eq!(second.name, "李四");
    assert_eq!(
        (second.city.as_str(), second.province.as_str()),
        ("南京", "江苏")
    );
    assert_eq!(second.detail, "中山路 8 号");
    assert_eq!(
        records[2].customer.as_ref().unwrap().emails,
        vec!["jane@example.com"]
    );
}

#[test]
fn reads_vcard_4_uris_and_gender() {
    let (records, errors) = read("contacts-v4.vcf", &[]);
    assert!(errors.is_empty(), "{errors:?}");
    let r = &records[0];
    let c = r.customer.as_ref().unwrap();
    assert_eq!(r.external_id, "4fbe8971-0bc3-424c-9c26-36c3e1eff6b1");
    assert_eq!(
        (c.name.as_str(), c.gender.as_str(), c.birthday.as_str()),
        ("Wang Wu", "M", "--0415")
    );
    assert_eq!(
        c.phones,
        vec!["+86-137-0000-0003", "+86-21-5555-0000;ext=12"]
    );
    assert_eq!(c.city, "Springfield");
    let tags: Vec<_> = r.tags.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(tags, vec!["prospect", "trade-show,2024"]);
}

#[test]
fn truncated_file_keeps_complete_cards_and_reports_the_rest() {
    let (records, errors) = read("truncated.vcf", &[]);
    assert_eq!(records.len(), 1);
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0].row, 5);
    assert!(errors[0].reason.contains("no END:VCARD"), "{errors:?}");
}

#[test]
fn gbk_needs_the_encoding_option() {
    let (records, errors) = read("gbk.vcf", &[]);
    assert!(records.is_empty());
    assert!(errors[0].reason.contains("not valid UTF-8"), "{errors:?}");
    let (records, errors) = read("gbk.vcf", &[("encoding", "gbk")]);
    assert!(errors.is_empty());
    assert_eq!(records[0].customer.as_ref().unwrap().name, "赵六");
    assert_eq!(records[0].tags[0].name, "经销商");
}

#[test]
fn binary_and_empty_files_are_refused_at_open() {
    let err = VcardReader::new(sample("binary.vcf"), &options(&[])).unwrap_err();
    assert!(err.to_string().starts_with("not a vCard file"), "{err}");
    let err = VcardReader::new(sample("empty.vcf"), &options(&[])).unwrap_err();
    assert!(err.to_string().contains("empty"), "{err}");
    assert!(VcardReader::new(sample("gbk.vcf"), &options(&[("encoding", "klingon")])).is_err());
}

#[test]
fn a_ten_megabyte_line_is_one_row_error() {
    let mut input = b"BEGIN:VCARD\nFN:".to_vec();
    input.extend(std::iter::repeat_n(b'x', 10 << 20));
    input.extend_from_slice(b"\nEND:VCARD\nBEGIN:VCARD\nFN:ok\nEND:VCARD\n");
    let items: Vec<_> = VcardReader::new(input.as_slice(), &options(&[]))
        .unwrap()
        .collect();
    assert_eq!(items.len(), 2);
    assert!(
        items[0]
            .as_ref()
            .unwrap_err()
            .reason
            .contains("exceeds the limit")
    );
    assert_eq!(
        items[1].as_ref().unwrap().customer.as_ref().unwrap().name,
        "ok"
    );
}

#[test]
fn streams_many_cards() {
    let card = b"BEGIN:VCARD\r\nFN:x\r\nTEL:1\r\nEND:VCARD\r\n";
    let input: Vec<u8> = card
        .iter()
        .copied()
        .cycle()
        .take(card.len() * 20_000)
        .collect();
    assert_eq!(
        VcardReader::new(input.as_slice(), &options(&[]))
            .unwrap()
            .filter(Result::is_ok)
            .count(),
        20_000
    );
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(body in proptest::collection::vec(any::<u8>(), 0..2048)) {
        if let Ok(reader) = VcardReader::new(body.as_slice(), &options(&[])) {
            for _ in reader {}
        }
        let mut card = b"BEGIN:VCARD\n".to_vec();
        card.extend_from_slice(&body);
        if let Ok(reader) = VcardReader::new(card.as_slice(), &options(&[])) {
            for _ in reader {}
        }
    }

    #[test]
    fn arbitrary_property_lines_never_panic(lines in proptest::collection::vec("[A-Z;=:,\\\\ \"a-z0-9.=-]{0,40}", 0..30)) {
        let text = format!("BEGIN:VCARD\n{}\nEND:VCARD\n", lines.join("\n"));
        for _ in VcardReader::new(text.as_bytes(), &options(&[])).unwrap() {}
    }
}
