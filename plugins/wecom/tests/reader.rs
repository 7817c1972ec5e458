//! The WeCom reader against the sample files in `testdata/` and arbitrary bytes.
#![expect(
    clippy::unwrap_used,
    reason = "test helpers outside #[test] functions unwrap too"
)]

use std::{collections::BTreeMap, fs::File, io::BufReader, path::PathBuf};

use proptest::prelude::*;
use tagd_plugin_api::{ImportRecord, Options, RowError};
use tagd_plugin_wecom::WecomReader;

fn testdata(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("testdata")
        .join(name)
}

fn options(pairs: &[(&str, &str)]) -> Options {
    Options::new(
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect::<BTreeMap<_, _>>(),
    )
}

fn open(name: &str, pairs: &[(&str, &str)]) -> Result<WecomReader, String> {
    let file = BufReader::new(File::open(testdata(name)).unwrap());
    WecomReader::new(file, &options(pairs)).map_err(|e| e.to_string())
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

fn tags(record: &ImportRecord) -> Vec<(&str, &str)> {
    record
        .tags
        .iter()
        .map(|t| (t.category.as_str(), t.name.as_str()))
        .collect()
}

#[test]
fn maps_a_json_array_of_get_responses() {
    let (records, errors) = read("contacts.json", &[]);
    assert_eq!(records.len(), 2);
    assert_eq!(errors.len(), 1);
    assert_eq!(
        (errors[0].row, errors[0].reason.as_str()),
        (3, "WeCom error 84061: not external contact")
    );

    let li = &records[0];
    let c = li.customer.as_ref().unwrap();
    assert_eq!(li.position, 1);
    assert_eq!(li.external_id, "wmLISI0000000000000000000001");
    assert_eq!(li.other_ids[0].channel, "wechat_unionid");
    assert_eq!((c.name.as_str(), c.gender.as_str()), ("李四", "female"));
    assert_eq!(c.company, "示例科技有限公司");
    assert_eq!(c.attributes["position"], "采购经理");
    assert_eq!(c.phones, vec!["13800000001", "021-55550000"]);
    assert_eq!(
        tags(li),
        vec![
            ("兴趣", "母婴"),
            ("客户等级", "重要客户"),
            ("意向", "高"),
            ("添加方式", "扫描二维码"),
            ("添加方式", "管理员分配"),
            ("渠道活码", "spring_fair"),
        ]
    );
    assert_eq!(li.interactions.len(), 2);
    let first = &li.interactions[0];
    assert_eq!(
        (first.time.as_str(), first.staff.as_str()),
        ("2023-11-14T22:13:20Z", "zhangsan")
    );
    assert_eq!(first.outcome, "老客户，年底续约");
    assert!(first.summary.contains("李四-示例科技"));
    assert_eq!(records[1].customer.as_ref().unwrap().gender, "male");
}

#[test]
fn options_drop_personal_and_source_tags() {
    let (records, _) = read(
        "contacts.json",
        &[("personal_tags", "false"), ("source_tags", "no")],
    );
    assert_eq!(
        tags(&records[0]),
        vec![("客户等级", "重要客户"), ("意向", "高")]
    );
    assert!(
        open("contacts.json", &[("personal_tags", "maybe")])
            .unwrap_err()
            .contains("personal_tags")
    );
}

#[test]
fn json_lines_report_the_bad_line_and_go_on() {
    let (records, errors) = read("contacts.jsonl", &[]);
    assert_eq!(records.len(), 2);
    assert_eq!(records[1].position, 4);
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0].row, 2);
    assert!(
        errors[0].reason.starts_with("not a WeCom contact object"),
        "{errors:?}"
    );
}

#[test]
fn batch_items_are_named_through_the_tag_library() {
    let library = testdata("tag-library.json");
    let (records, errors) = read("batch.json", &[("tag_library", library.to_str().unwrap())]);
    assert_eq!(records.len(), 1);
    assert_eq!(
        tags(&records[0]),
        vec![("客户等级", "重要客户"), ("添加方式", "搜索手机号")]
    );
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0].raw_value, "etMISSING");
    assert!(
        open("batch.json", &[("tag_library", "/nonexistent.json")])
            .unwrap_err()
            .contains("tag_library")
    );
}

#[test]
fn bad_files_get_clear_results() {
    let (records, errors) = read("truncated.json", &[]);
    assert_eq!(records.len(), 1);
    assert!(
        errors.last().unwrap().reason.contains("truncated"),
        "{errors:?}"
    );
    assert!(
        open("binary.json", &[])
            .unwrap_err()
            .starts_with("not a WeCom export")
    );
    assert!(open("empty.json", &[]).unwrap_err().contains("empty"));
    assert!(
        open("pretty-object.json", &[])
            .unwrap_err()
            .contains("pretty-printed")
    );
}

#[test]
fn wrong_types_are_row_errors() {
    let input = br#"[{"external_contact": {"external_userid": "wm1", "name": 5}}, {"external_contact": {"name": "no id"}}, 7]"#;
    let items: Vec<_> = WecomReader::new(&input[..], &options(&[]))
        .unwrap()
        .collect();
    assert_eq!(items.len(), 3);
    assert!(items.iter().all(Result::is_err));
    assert!(
        items[1]
            .as_ref()
            .unwrap_err()
            .reason
            .contains("missing external_userid")
    );
}

#[test]
fn a_ten_megabyte_line_is_one_row_error_or_object() {
    let mut input = br#"{"external_contact": {"external_userid": "wm1", "name": ""#.to_vec();
    input.extend(std::iter::repeat_n(b'x', 10 << 20));
    input.extend_from_slice(b"\"}}\n{\"external_contact\": {\"external_userid\": \"wm2\"}}\n");
    let items: Vec<_> = WecomReader::new(std::io::Cursor::new(input), &options(&[]))
        .unwrap()
        .collect();
    assert_eq!(items.len(), 2);
    assert_eq!(items[1].as_ref().unwrap().external_id, "wm2");
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(body in proptest::collection::vec(any::<u8>(), 0..2048)) {
        for prefix in [&b""[..], b"[", b"{"] {
            let mut input = prefix.to_vec();
            input.extend_from_slice(&body);
            if let Ok(reader) = WecomReader::new(std::io::Cursor::new(input), &options(&[])) {
                for _ in reader {}
            }
        }
    }

    #[test]
    fn arbitrary_json_shapes_never_panic(parts in proptest::collection::vec("[\\[\\]{}\",:a-z0-9 ]{0,20}", 0..20)) {
        let input = format!("[{{\"external_contact\":{}", parts.concat());
        for _ in WecomReader::new(std::io::Cursor::new(input.into_bytes()), &options(&[])).unwrap() {}
    }
}
