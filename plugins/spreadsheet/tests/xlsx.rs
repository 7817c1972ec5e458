//! The streamed XLSX reader on generated workbooks: formulas, merged cells,
//! dates, shared and inline strings, empty and header-only sheets, broken zips.
#![expect(
    clippy::unwrap_used,
    reason = "test helpers outside #[test] functions unwrap too"
)]

use std::{
    collections::BTreeMap,
    fs::File,
    io::Write,
    path::{Path, PathBuf},
};

use rust_xlsxwriter::{ExcelDateTime, Format, Formula, Workbook, Worksheet};
use tagd_plugin_api::{Customer, ImportRecord, Options, RowError};
use tagd_plugin_spreadsheet::SheetReader;
use zip::{ZipArchive, ZipWriter, write::SimpleFileOptions};

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

fn customer(record: &ImportRecord) -> &Customer {
    record.customer.as_ref().unwrap()
}

fn tags(record: &ImportRecord) -> Vec<(&str, &str)> {
    record
        .tags
        .iter()
        .map(|t| (t.category.as_str(), t.name.as_str()))
        .collect()
}

fn headers(sheet: &mut Worksheet, names: &[&str]) {
    for (col, name) in names.iter().enumerate() {
        sheet
            .write_string(0, u16::try_from(col).unwrap(), *name)
            .unwrap();
    }
}

/// A workbook written by `fill` into a temporary directory.
fn workbook(name: &str, fill: impl FnOnce(&mut Workbook)) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(name);
    let mut workbook = Workbook::new();
    fill(&mut workbook);
    workbook.save(&path).unwrap();
    (dir, path)
}

#[test]
fn formulas_yield_their_cached_values() {
    let (_dir, path) = workbook("formulas.xlsx", |wb| {
        let sheet = wb.add_worksheet();
        headers(sheet, &["姓名", "手机号", "积分", "生日", "会员", "标签"]);
        let date = Format::new().set_num_format("yyyy-mm-dd");
        sheet
            .write_formula(
                1,
                0,
                Formula::new("=UPPER(\"zhang san\")").set_result("ZHANG SAN"),
            )
            .unwrap()
            .write_formula(
                1,
                1,
                Formula::new("=13800000000+1").set_result("13800000001"),
            )
            .unwrap()
            .write_formula(1, 2, Formula::new("=10/4").set_result("2.5"))
            .unwrap()
            .write_formula_with_format(
                1,
                3,
                Formula::new("=DATE(1990,4,15)").set_result("32978"),
                &date,
            )
            .unwrap()
            .write_formula(1, 4, Formula::new("=1>0").set_result("TRUE"))
            .unwrap()
            .write_formula(
                1,
                5,
                Formula::new("=\"VIP\"&\"、\"&\"老客户\"").set_result("VIP、老客户"),
            )
            .unwrap();
        // A formula whose cached value is an error makes its row an error.
        sheet.write_string(2, 0, "李四").unwrap();
        sheet
            .write_formula(2, 2, Formula::new("=1/0").set_result("#DIV/0!"))
            .unwrap();
        sheet.write_string(3, 0, "王五").unwrap();
    });
    let (records, errors) = read_path(&path, &[]);
    assert_eq!(records.len(), 2, "{errors:?}");
    let c = customer(&records[0]);
    assert_eq!(c.name, "ZHANG SAN");
    assert_eq!(c.phones, vec!["13800000001"]);
    assert_eq!(c.birthday, "1990-04-15");
    assert_eq!(c.attributes["积分"], "2.5");
    assert_eq!(c.attributes["会员"], "true");
    assert_eq!(tags(&records[0]), vec![("", "VIP"), ("", "老客户")]);
    assert!(c.attributes.values().all(|v| !v.starts_with('=')), "{c:?}");
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0].row, 3);
    assert!(errors[0].reason.contains("#DIV/0!"), "{errors:?}");
    assert_eq!(records[1].position, 4);
}

#[test]
fn merged_cells_follow_what_the_user_means() {
    let (_dir, path) = workbook("merged.xlsx", |wb| {
        let plain = Format::new();
        let sheet = wb.add_worksheet();
        // A header merged across three columns: each of them holds tags.
        headers(sheet, &["姓名", "城市"]);
        sheet.merge_range(0, 2, 0, 4, "标签", &plain).unwrap();
        // A city merged down three rows: the three customers live there.
        sheet.write_string(1, 0, "张三").unwrap();
        sheet.merge_range(1, 1, 3, 1, "杭州", &plain).unwrap();
        sheet.write_string(1, 2, "VIP").unwrap();
        sheet.write_string(1, 3, "老客户").unwrap();
        sheet.write_string(2, 0, "李四").unwrap();
        sheet.write_string(2, 2, "新客").unwrap();
        sheet.write_string(3, 0, "王五").unwrap();
        // A section heading across the whole header width.
        sheet.merge_range(4, 0, 4, 4, "华北区", &plain).unwrap();
        sheet.write_string(5, 0, "赵六").unwrap();
        sheet.write_string(5, 1, "北京").unwrap();
        // A value merged across columns in a data row stays in its first column.
        sheet.write_string(6, 0, "钱七").unwrap();
        sheet.merge_range(6, 1, 6, 2, "天津", &plain).unwrap();

        // Two header rows: 姓名 spans both, 联系方式 spans the two columns below it.
        let two = wb.add_worksheet().set_name("两行表头").unwrap();
        two.merge_range(0, 0, 1, 0, "姓名", &plain).unwrap();
        two.merge_range(0, 1, 0, 2, "联系方式", &plain).unwrap();
        two.write_string(1, 1, "手机号").unwrap();
        two.write_string(1, 2, "邮箱").unwrap();
        two.write_string(2, 0, "孙八").unwrap();
        two.write_string(2, 1, "13800000008").unwrap();
        two.write_string(2, 2, "sun@example.com").unwrap();
    });
    let (records, errors) = read_path(&path, &[]);
    let summary: Vec<_> = records
        .iter()
        .map(|r| {
            (
                r.position,
                customer(r).name.as_str(),
                customer(r).city.as_str(),
                tags(r),
            )
        })
        .collect();
    assert_eq!(
        summary,
        vec![
            (2, "张三", "杭州", vec![("", "VIP"), ("", "老客户")]),
            (3, "李四", "杭州", vec![("", "新客")]),
            (4, "王五", "杭州", vec![]),
            (6, "赵六", "北京", vec![]),
            (7, "钱七", "天津", vec![]),
        ]
    );
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(errors[0].row, 5);
    assert!(errors[0].reason.contains("section heading"), "{errors:?}");
    assert_eq!(errors[0].raw_value, "华北区");

    // `map.<header>` applies to every column a merged header covers.
    let (records, _) = read_path(&path, &[("map.标签", "tag:兴趣")]);
    assert_eq!(tags(&records[0]), vec![("兴趣", "VIP"), ("兴趣", "老客户")]);

    let (records, errors) = read_path(&path, &[("sheet", "两行表头"), ("header_row", "2")]);
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(records.len(), 1);
    let c = customer(&records[0]);
    assert_eq!(
        (c.name.as_str(), c.phones[0].as_str(), c.emails[0].as_str()),
        ("孙八", "13800000008", "sun@example.com")
    );
    assert_eq!(records[0].position, 3);
}

#[test]
fn date_cells_by_number_format() {
    let (_dir, path) = workbook("dates.xlsx", |wb| {
        let sheet = wb.add_worksheet();
        headers(
            sheet,
            &["姓名", "生日", "注册时间", "首单", "末单", "编号", "备注"],
        );
        let date = ExcelDateTime::from_ymd(1990, 4, 15).unwrap();
        let when = ExcelDateTime::from_ymd(2024, 1, 2)
            .unwrap()
            .and_hms(13, 45, 30)
            .unwrap();
        sheet.write_string(1, 0, "张三").unwrap();
        sheet
            .write_datetime_with_format(1, 1, &date, &Format::new().set_num_format("yyyy/m/d"))
            .unwrap()
            .write_datetime_with_format(
                1,
                2,
                &when,
                &Format::new().set_num_format("yyyy-mm-dd hh:mm:ss"),
            )
            .unwrap()
            .write_datetime_with_format(
                1,
                3,
                &date,
                &Format::new().set_num_format("yyyy\"年\"m\"月\"d\"日\""),
            )
            .unwrap()
            // Built-in format 14 (m/d/yyyy).
            .write_datetime_with_format(1, 4, &date, &Format::new().set_num_format_index(14))
            .unwrap()
            // The same serial number without a date format stays a number.
            .write_number(1, 5, 32978.0)
            .unwrap()
            // A date typed as text stays raw (the host cleanses it).
            .write_string(1, 6, "1990/4/15")
            .unwrap();
    });
    let (records, errors) = read_path(&path, &[]);
    assert!(errors.is_empty(), "{errors:?}");
    let c = customer(&records[0]);
    assert_eq!(c.birthday, "1990-04-15");
    assert_eq!(c.attributes["注册时间"], "2024-01-02 13:45:30");
    assert_eq!(c.attributes["首单"], "1990-04-15");
    assert_eq!(c.attributes["末单"], "1990-04-15");
    assert_eq!(records[0].external_id, "32978");
    assert_eq!(c.attributes["备注"], "1990/4/15");
}

/// The same rows through the shared-string table (Excel's way) and as inline strings.
#[test]
fn shared_and_inline_strings_read_alike() {
    fn fill(sheet: &mut Worksheet) {
        headers(sheet, &["姓名", "手机号", "备注", "标签"]);
        for row in 1..=3_u32 {
            sheet
                .write_string(row, 0, format!("客户{row}"))
                .unwrap()
                .write_number(row, 1, 13_800_000_000.0 + f64::from(row))
                .unwrap()
                .write_string(row, 2, " <a & b> \"q\" ")
                .unwrap()
                .write_string(row, 3, "VIP；老客户")
                .unwrap();
        }
    }
    let (_shared_dir, shared) = workbook("shared.xlsx", |wb| fill(wb.add_worksheet()));
    let (_inline_dir, inline) = workbook("inline.xlsx", |wb| {
        fill(wb.add_worksheet_with_constant_memory().unwrap());
    });
    // Entry names are stored uncompressed in the zip.
    let has_shared_strings = |path: &Path| {
        let name = b"xl/sharedStrings.xml";
        let bytes = std::fs::read(path).unwrap();
        bytes.windows(name.len()).any(|w| w == name)
    };
    assert!(
        has_shared_strings(&shared) && !has_shared_strings(&inline),
        "the writer changed its string storage"
    );
    let (a, errors_a) = read_path(&shared, &[]);
    let (b, errors_b) = read_path(&inline, &[]);
    assert!(errors_a.is_empty() && errors_b.is_empty());
    assert_eq!(a, b);
    assert_eq!(a.len(), 3);
    let c = customer(&a[2]);
    assert_eq!(
        (c.name.as_str(), c.phones[0].as_str()),
        ("客户3", "13800000003")
    );
    assert_eq!(c.attributes["备注"], "<a & b> \"q\"");
    assert_eq!(tags(&a[2]), vec![("", "VIP"), ("", "老客户")]);
}

#[test]
fn empty_and_header_only_sheets() {
    let (_dir, path) = workbook("empty.xlsx", |wb| {
        wb.add_worksheet();
        headers(
            wb.add_worksheet().set_name("表头").unwrap(),
            &["姓名", "手机号"],
        );
        let gaps = wb.add_worksheet().set_name("空行").unwrap();
        headers(gaps, &["姓名", "手机号"]);
        gaps.write_string(9, 0, "张三").unwrap();
    });
    let err = SheetReader::open(&path, &options(&[]))
        .unwrap_err()
        .to_string();
    assert!(err.contains("no header row"), "{err}");
    let (records, errors) = read_path(&path, &[("sheet", "表头")]);
    assert!(records.is_empty() && errors.is_empty());
    let err = SheetReader::open(&path, &options(&[("sheet", "表头"), ("header_row", "3")]))
        .unwrap_err()
        .to_string();
    assert!(err.contains("expected at row 3"), "{err}");
    // Missing rows are skipped; positions are the sheet's row numbers.
    let (records, _) = read_path(&path, &[("sheet", "空行")]);
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].position, 10);
}

fn many_rows(path: &Path, rows: u32) {
    let mut wb = Workbook::new();
    let sheet = wb.add_worksheet_with_constant_memory().unwrap();
    headers(sheet, &["姓名", "手机号"]);
    for row in 1..=rows {
        sheet
            .write_string(row, 0, format!("客户{row}"))
            .unwrap()
            .write_number(row, 1, 13_700_000_000.0 + f64::from(row))
            .unwrap();
    }
    wb.save(path).unwrap();
}

#[test]
fn corrupt_zips_are_reported_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.xlsx");
    many_rows(&good, 20_000);
    let bytes = std::fs::read(&good).unwrap();

    // Cut in half: the zip directory at the end is gone.
    let cut = dir.path().join("cut.xlsx");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    // Not a zip at all.
    let junk = dir.path().join("junk.xlsx");
    std::fs::write(&junk, b"this is not a workbook").unwrap();
    for path in [&cut, &junk] {
        let err = SheetReader::open(path, &options(&[]))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains(&path.display().to_string()) && err.contains("as a workbook"),
            "{err}"
        );
    }

    // The sheet's compressed data damaged in the middle. Opening reads the
    // sheet through once for its merged ranges, so the damage is found there;
    // found while streaming, it would end the rows with one error naming the file.
    let name = b"xl/worksheets/sheet1.xml";
    let at = bytes.windows(name.len()).position(|w| w == name).unwrap();
    let field = |offset: usize| usize::from(u16::from_le_bytes([bytes[offset], bytes[offset + 1]]));
    let compressed = u32::from_le_bytes(bytes[at - 12..at - 8].try_into().unwrap()) as usize;
    let data = at + name.len() + field(at - 2);
    let mut damaged = bytes.clone();
    for b in &mut damaged[data + compressed / 2..data + compressed / 2 + 64] {
        *b ^= 0x5a;
    }
    let broken = dir.path().join("broken.xlsx");
    std::fs::write(&broken, &damaged).unwrap();
    match SheetReader::open(&broken, &options(&[])) {
        Err(e) => {
            eprintln!("open error: {e}");
            assert!(e.to_string().contains("broken.xlsx"), "{e}");
        }
        Ok(reader) => {
            let items: Vec<_> = reader.collect();
            let errors: Vec<_> = items.iter().filter_map(|i| i.as_ref().err()).collect();
            assert!(items.len() < 20_000, "damage not noticed");
            let last = errors.last().unwrap();
            eprintln!("{} items, last error: {last:?}", items.len());
            assert!(
                last.reason.contains("broken.xlsx") && last.reason.contains("cannot read sheet"),
                "{last:?}"
            );
        }
    }
}

#[test]
fn dropping_the_reader_mid_sheet_stops_its_thread() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("many.xlsx");
    many_rows(&path, 5_000);
    let mut reader = SheetReader::open(&path, &options(&[])).unwrap();
    let first: Vec<_> = reader.by_ref().take(10).collect();
    assert_eq!(first.len(), 10);
    drop(reader);
    let count = SheetReader::open(&path, &options(&[]))
        .unwrap()
        .filter(Result::is_ok)
        .count();
    assert_eq!(count, 5_000);
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(32))]

    /// Damaged workbooks end in an open error or row errors: no panic, no hang.
    #[test]
    fn damaged_workbooks_never_panic(
        flips in proptest::collection::vec((proptest::prelude::any::<proptest::sample::Index>(), 1_u8..=255), 1..8),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("damaged.xlsx");
        many_rows(&path, 200);
        let mut bytes = std::fs::read(&path).unwrap();
        for (at, mask) in flips {
            let at = at.index(bytes.len());
            bytes[at] ^= mask;
        }
        std::fs::write(&path, &bytes).unwrap();
        if let Ok(reader) = SheetReader::open(&path, &options(&[])) {
            for _ in reader {}
        }
    }
}

/// A generated workbook whose first sheet's XML is replaced by `body` (the
/// `<sheetData>` and what follows it): cases no writer produces.
fn with_sheet_xml(path: &Path, body: &str) {
    let generated = path.with_extension("generated.xlsx");
    let mut workbook = Workbook::new();
    workbook.add_worksheet().write_string(0, 0, "x").unwrap();
    workbook.save(&generated).unwrap();
    let mut archive = ZipArchive::new(File::open(&generated).unwrap()).unwrap();
    let mut out = ZipWriter::new(File::create(path).unwrap());
    for i in 0..archive.len() {
        let file = archive.by_index_raw(i).unwrap();
        if file.name().unwrap() == "xl/worksheets/sheet1.xml" {
            drop(file);
            out.start_file("xl/worksheets/sheet1.xml", SimpleFileOptions::default())
                .unwrap();
            write!(
                out,
                r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?><worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">{body}</worksheet>"#
            )
            .unwrap();
        } else {
            out.raw_copy_file(file).unwrap();
        }
    }
    out.finish().unwrap();
}

fn inline(cell: &str, text: &str) -> String {
    format!(r#"<c r="{cell}" t="inlineStr"><is><t>{text}</t></is></c>"#)
}

#[test]
fn a_sheet_broken_midway_ends_with_one_error_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("midway.xlsx");
    let body = format!(
        "<sheetData>\
         <row r=\"1\">{}{}</row>\
         <row r=\"2\">{}<c r=\"B2\"><f>1+1</f></c></row>\
         <row r=\"3\">{}{}</row>\
         <row r=\"4\">{}</row>\
         <row r=\"5\"><c r=\"A5\"><bogus/></c></row>\
         <row r=\"6\">{}</row>\
         </sheetData>",
        inline("A1", "姓名"),
        inline("B1", "积分"),
        inline("A2", "张三"),
        inline("A3", "李四"),
        inline("XFE3", "far"),
        inline("A4", "王五"),
        inline("A6", "赵六"),
    );
    with_sheet_xml(&path, &body);
    let (records, errors) = read_path(&path, &[]);
    // A formula without a cached value is an empty cell, not its text.
    assert_eq!(records.len(), 1, "{records:?} {errors:?}");
    assert_eq!(customer(&records[0]).name, "张三");
    assert!(customer(&records[0]).attributes.is_empty());
    assert_eq!(errors.len(), 2, "{errors:?}");
    assert_eq!(errors[0].row, 3);
    assert!(
        errors[0].reason.contains("beyond the last column"),
        "{errors:?}"
    );
    // Row 4 was pending when row 5 failed: it is reported unread, not half-imported.
    assert_eq!(errors[1].row, 4);
    assert!(
        errors[1].reason.contains("cannot read sheet `Sheet1` of")
            && errors[1].reason.contains("midway.xlsx")
            && errors[1].reason.contains("rows from 4 on were not read"),
        "{errors:?}"
    );
}
