//! The spreadsheet reader against the samples in `testdata/`, generated
//! workbooks, big files and arbitrary bytes.
#![expect(
    clippy::unwrap_used,
    reason = "test helpers outside #[test] functions unwrap too"
)]

use std::{
    collections::BTreeMap,
    io::Write,
    path::{Path, PathBuf},
};

use proptest::prelude::*;
use rust_xlsxwriter::{ExcelDateTime, Format, Workbook};
use tagd_plugin_api::{ImportRecord, Options, RowError};
use tagd_plugin_spreadsheet::SheetReader;

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

fn read_path(path: &Path, pairs: &[(&str, &str)]) -> (Vec<ImportRecord>, Vec<RowError>) {
    let (mut records, mut errors) = (Vec::new(), Vec::new());
    for item in SheetReader::open(path, &options(pairs)).unwrap() {
        match item {
            Ok(r) => records.push(r),
            Err(e) => errors.push(e),
        }
    }
    (records, errors)
}

fn read(name: &str, pairs: &[(&str, &str)]) -> (Vec<ImportRecord>, Vec<RowError>) {
    read_path(&testdata(name), pairs)
}

fn open_error(name: &str, pairs: &[(&str, &str)]) -> String {
    SheetReader::open(&testdata(name), &options(pairs))
        .unwrap_err()
        .to_string()
}

fn tags(record: &ImportRecord) -> Vec<(&str, &str)> {
    record
        .tags
        .iter()
        .map(|t| (t.category.as_str(), t.name.as_str()))
        .collect()
}

fn check_customers(records: &[ImportRecord], errors: &[RowError]) {
    assert_eq!(records.len(), 3, "{errors:?}");
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0].row, 5);
    let c = records[0].customer.as_ref().unwrap();
    assert_eq!(records[0].position, 2);
    assert_eq!(
        (c.name.as_str(), c.gender.as_str(), c.birthday.as_str()),
        ("张三", "男", "1990-04-15")
    );
    assert_eq!(c.phones, vec!["13800000001"]);
    assert_eq!(c.emails, vec!["zhangsan@example.com"]);
    assert_eq!(
        (c.province.as_str(), c.city.as_str(), c.detail.as_str()),
        ("浙江", "杭州", "人民路 1 号")
    );
    assert_eq!(c.company, "示例科技");
    assert_eq!(c.attributes["备注"], "年底续约");
    assert_eq!(tags(&records[0]), vec![("", "VIP"), ("", "老客户")]);
    let li = records[1].customer.as_ref().unwrap();
    assert_eq!(li.phones, vec!["13900000002", "021-55550000"]);
    assert_eq!(tags(&records[1]), vec![("", "母婴"), ("", "高意向")]);
    let wang = records[2].customer.as_ref().unwrap();
    assert_eq!(
        (wang.name.as_str(), wang.detail.as_str()),
        ("王五, \"小王\"", "多行\n地址")
    );
}

#[test]
fn reads_utf8_with_and_without_bom_and_gbk() {
    for name in ["customers.csv", "customers-bom.csv", "customers-gbk.csv"] {
        let (records, errors) = read(name, &[]);
        check_customers(&records, &errors);
    }
    let (records, errors) = read("customers-gbk.csv", &[("encoding", "gbk")]);
    check_customers(&records, &errors);
}

#[test]
fn wrong_encoding_option_is_reported() {
    let err = open_error("customers-gbk.csv", &[("encoding", "utf-8")]);
    assert!(err.contains("not valid text"), "{err}");
}

#[test]
fn english_headers_and_separators() {
    let (records, _) = read(
        "english.csv",
        &[
            ("tag_separators", "|"),
            ("tag_category", "source"),
            ("map.Level", "tag:会员等级"),
        ],
    );
    let c = records[0].customer.as_ref().unwrap();
    assert_eq!(
        (c.name.as_str(), c.gender.as_str(), c.birthday.as_str()),
        ("Jane Doe", "F", "1992-03-04")
    );
    assert_eq!(c.phones, vec!["+1 555 0100"]);
    assert_eq!(
        tags(&records[0]),
        vec![
            ("source", "prospect"),
            ("source", "trade-show"),
            ("会员等级", "gold")
        ]
    );
}

#[test]
fn one_column_per_tag_category() {
    let (records, _) = read("tag-columns.csv", &[("tag_columns", "客户等级,兴趣")]);
    assert_eq!(
        tags(&records[0]),
        vec![("客户等级", "金牌"), ("兴趣", "母婴"), ("兴趣", "美妆")]
    );
    let (records, _) = read("tag-columns.csv", &[("keep_unmapped", "false")]);
    assert!(records[0].tags.is_empty());
    assert!(records[0].customer.as_ref().unwrap().attributes.is_empty());
}

#[test]
fn bad_files_get_clear_results() {
    assert!(open_error("missing-columns.csv", &[]).starts_with("missing required columns"));
    assert!(open_error("empty.csv", &[]).contains("empty"));
    assert!(open_error("binary.csv", &[]).contains("not a text file"));
    assert!(open_error("customers.csv", &[("map.nope", "name")]).contains("no column `nope`"));
    assert!(open_error("customers.csv", &[("format", "pdf")]).contains("unknown format"));
    assert!(open_error("customers.csv", &[("format", "xlsx")]).contains("as a workbook"));
    let (records, errors) = read("header-only.csv", &[]);
    assert!(records.is_empty() && errors.is_empty());
    // An unterminated quote runs to the end of the file: one record with the rest in it.
    let (records, _) = read("truncated.csv", &[]);
    assert_eq!(records.len(), 2);
    assert_eq!(records[1].customer.as_ref().unwrap().phones, vec!["139"]);
}

#[test]
fn a_ten_megabyte_line_is_read_and_a_longer_one_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("long.csv");
    let mut file = std::fs::File::create(&path).unwrap();
    write!(file, "姓名,备注\n张三,").unwrap();
    file.write_all(&vec![b'x'; 10 << 20]).unwrap();
    write!(file, "\n李四,ok\n").unwrap();
    drop(file);
    let (records, errors) = read_path(&path, &[]);
    assert_eq!((records.len(), errors.len()), (2, 0));
    assert_eq!(
        records[0].customer.as_ref().unwrap().attributes["备注"].len(),
        10 << 20
    );

    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .unwrap();
    file.write_all(&vec![b'y'; 17 << 20]).unwrap();
    drop(file);
    let (records, errors) = read_path(&path, &[]);
    assert_eq!(records.len(), 2);
    assert!(
        errors[0].reason.contains("longer than 16 MiB"),
        "{errors:?}"
    );
}

fn write_workbook(path: &Path) {
    let mut workbook = Workbook::new();
    let sheet = workbook.add_worksheet();
    for (col, header) in ["姓名", "手机号", "生日", "积分", "标签"]
        .iter()
        .enumerate()
    {
        sheet
            .write_string(0, u16::try_from(col).unwrap(), *header)
            .unwrap();
    }
    sheet.write_string(1, 0, "张三").unwrap();
    // Phone numbers typed as numbers are common in real sheets.
    sheet.write_number(1, 1, 13_800_000_001.0).unwrap();
    let date = ExcelDateTime::from_ymd(1990, 4, 15).unwrap();
    sheet
        .write_datetime_with_format(1, 2, &date, &Format::new().set_num_format("yyyy-mm-dd"))
        .unwrap();
    sheet.write_number(1, 3, 12.5).unwrap();
    sheet.write_string(1, 4, "VIP、老客户").unwrap();
    sheet.write_string(2, 0, "李四").unwrap();
    let other = workbook.add_worksheet().set_name("第二页").unwrap();
    other.write_string(0, 0, "Email").unwrap();
    other.write_string(1, 0, "a@example.com").unwrap();
    workbook.save(path).unwrap();
}

#[test]
fn reads_xlsx_with_typed_cells_and_sheets() {
    let sample = testdata("customers.xlsx");
    let (records, errors) = read_path(&sample, &[]);
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(records.len(), 2);
    let c = records[0].customer.as_ref().unwrap();
    assert_eq!(records[0].position, 2);
    assert_eq!(
        (c.phones[0].as_str(), c.birthday.as_str()),
        ("13800000001", "1990-04-15")
    );
    assert_eq!(c.attributes["积分"], "12.5");
    assert_eq!(tags(&records[0]), vec![("", "VIP"), ("", "老客户")]);
    let (records, _) = read_path(&sample, &[("sheet", "第二页")]);
    assert_eq!(
        records[0].customer.as_ref().unwrap().emails,
        vec!["a@example.com"]
    );
    let err = SheetReader::open(&sample, &options(&[("sheet", "nope")])).unwrap_err();
    assert!(err.to_string().contains("no sheet `nope`"));
    // An XLSX named .csv is recognised, not parsed as text.
    let dir = tempfile::tempdir().unwrap();
    let renamed = dir.path().join("really.csv");
    std::fs::copy(&sample, &renamed).unwrap();
    let err = SheetReader::open(&renamed, &options(&[])).unwrap_err();
    assert!(err.to_string().contains("ZIP (XLSX/ODS)"), "{err}");
}

/// Regenerates `testdata/customers.xlsx`: `cargo test -p tagd-plugin-spreadsheet -- --ignored regenerate`.
#[test]
#[ignore = "writes the sample workbook into testdata/"]
fn regenerate_xlsx_sample() {
    write_workbook(&testdata("customers.xlsx"));
}

#[test]
fn streams_many_rows() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("many.csv");
    let mut file = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
    writeln!(file, "姓名,手机号,标签").unwrap();
    for i in 0..50_000 {
        writeln!(file, "客户{i},138{i:08},VIP").unwrap();
    }
    drop(file);
    let count = SheetReader::open(&path, &options(&[]))
        .unwrap()
        .filter(Result::is_ok)
        .count();
    assert_eq!(count, 50_000);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn arbitrary_bytes_never_panic(body in proptest::collection::vec(any::<u8>(), 0..2048), ext in prop_oneof![Just("csv"), Just("xlsx")]) {
        let dir = tempfile::tempdir().unwrap();
        for prefix in [&b""[..], "姓名,手机\n".as_bytes()] {
            let path = dir.path().join(format!("input.{ext}"));
            let mut bytes = prefix.to_vec();
            bytes.extend_from_slice(&body);
            std::fs::write(&path, bytes).unwrap();
            if let Ok(reader) = SheetReader::open(&path, &options(&[])) {
                for _ in reader {}
            }
        }
    }
}
