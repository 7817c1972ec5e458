//! Peak memory of reading a generated 200,000-row workbook (`TAGD_XLSX_ROWS`
//! for another size): streamed row by row against the whole sheet loaded, as
//! the plugin did before. Heap is counted by a global allocator (this file
//! holds one test, so nothing else allocates meanwhile); the resident-set peak
//! (`VmHWM`, reset through `/proc/self/clear_refs`) is printed beside it.
#![expect(
    clippy::unwrap_used,
    reason = "test helpers outside #[test] functions unwrap too"
)]

use std::{
    alloc::{GlobalAlloc, Layout, System},
    collections::BTreeMap,
    path::Path,
    sync::atomic::{AtomicUsize, Ordering},
    time::Instant,
};

use calamine::{Reader, open_workbook_auto};
use rust_xlsxwriter::Workbook;
use tagd_plugin_api::Options;
use tagd_plugin_spreadsheet::SheetReader;

struct Counting;

static CURRENT: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

fn grew(bytes: usize) {
    let now = CURRENT.fetch_add(bytes, Ordering::Relaxed) + bytes;
    PEAK.fetch_max(now, Ordering::Relaxed);
}

fn shrank(bytes: usize) {
    CURRENT.fetch_sub(bytes, Ordering::Relaxed);
}

#[expect(unsafe_code, reason = "a counting wrapper around the system allocator")]
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's layout is passed on unchanged.
        let ptr = unsafe { System.alloc(layout) };
        if !ptr.is_null() {
            grew(layout.size());
        }
        ptr
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as above.
        let ptr = unsafe { System.alloc_zeroed(layout) };
        if !ptr.is_null() {
            grew(layout.size());
        }
        ptr
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from this allocator (the system's) with `layout`.
        unsafe { System.dealloc(ptr, layout) };
        shrank(layout.size());
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: as for `dealloc`; the caller guarantees `new_size`.
        let new = unsafe { System.realloc(ptr, layout, new_size) };
        if !new.is_null() {
            shrank(layout.size());
            grew(new_size);
        }
        new
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Live heap bytes now; the peak restarts from here.
fn reset_peak() -> usize {
    let now = CURRENT.load(Ordering::Relaxed);
    PEAK.store(now, Ordering::Relaxed);
    now
}

fn peak_above(base: usize) -> usize {
    PEAK.load(Ordering::Relaxed).saturating_sub(base)
}

/// A `/proc/self/status` figure in KiB.
fn status_kib(key: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with(key))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Resets `VmHWM` to the current resident size; the RSS then, if it worked.
fn reset_hwm() -> Option<u64> {
    std::fs::write("/proc/self/clear_refs", "5").ok()?;
    status_kib("VmRSS:")
}

fn hwm_above(rss: Option<u64>) -> String {
    match (rss, status_kib("VmHWM:")) {
        (Some(rss), Some(hwm)) => format!("{:.1} MiB", hwm.saturating_sub(rss) as f64 / 1024.0),
        _ => "n/a".to_owned(),
    }
}

fn mib(bytes: usize) -> f64 {
    bytes as f64 / f64::from(1 << 20)
}

/// The bench's workbook: distinct names, phones (numbers) and emails, two tags,
/// strings in the shared-string table as Excel writes them.
fn generate(path: &Path, rows: u32) {
    let mut workbook = Workbook::new();
    let sheet = workbook.add_worksheet_with_low_memory().unwrap();
    for (col, header) in ["客户名称", "手机号", "邮箱", "标签"].iter().enumerate() {
        sheet
            .write_string(0, u16::try_from(col).unwrap(), *header)
            .unwrap();
    }
    let values = ["高价值", "中价值", "低价值"];
    let activity = ["活跃", "沉睡", "流失", "新客"];
    for i in 1..=rows {
        let n = i as usize;
        sheet
            .write_string(i, 0, format!("客户{i:07}"))
            .unwrap()
            .write_number(i, 1, 13_700_000_000.0 + f64::from(i))
            .unwrap()
            .write_string(i, 2, format!("c{i:07}@example.com"))
            .unwrap()
            .write_string(i, 3, format!("{}；{}", values[n % 3], activity[n % 4]))
            .unwrap();
    }
    workbook.save(path).unwrap();
}

#[test]
fn a_large_workbook_streams_in_bounded_memory() {
    let rows: u32 = std::env::var("TAGD_XLSX_ROWS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200_000);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("large.xlsx");
    generate(&path, rows);
    let size = std::fs::metadata(&path).unwrap().len();

    // Streamed: what the plugin does now.
    let rss = reset_hwm();
    let base = reset_peak();
    let started = Instant::now();
    let reader = SheetReader::open(&path, &Options::new(BTreeMap::new())).unwrap();
    let open_time = started.elapsed();
    let opened = peak_above(base);
    let after_open = reset_peak();
    let (mut records, mut last) = (0_u32, None);
    for item in reader {
        let record = item.unwrap();
        records += 1;
        last = Some(record);
    }
    let streaming = peak_above(after_open);
    let read_time = started.elapsed();
    let streamed_total = opened.max(after_open - base + streaming);
    let streamed_hwm = hwm_above(rss);
    assert_eq!(records, rows);
    let last = last.unwrap();
    assert_eq!(last.position, u64::from(rows) + 1);
    assert_eq!(
        last.customer.unwrap().phones,
        vec![(13_700_000_000_u64 + u64::from(rows)).to_string()]
    );

    // Loaded whole: the sheet as calamine's range and as rows of text, as the
    // plugin held it before.
    let rss = reset_hwm();
    let base = reset_peak();
    let started = Instant::now();
    {
        let mut workbook = open_workbook_auto(&path).unwrap();
        let name = workbook.sheet_names()[0].clone();
        let range = workbook.worksheet_range(&name).unwrap();
        let text: Vec<Vec<String>> = range
            .rows()
            .map(|row| row.iter().map(ToString::to_string).collect())
            .collect();
        assert_eq!(text.len(), rows as usize + 1);
    }
    let loaded = peak_above(base);
    let load_time = started.elapsed();
    let loaded_hwm = hwm_above(rss);

    eprintln!(
        "{rows} rows, {:.1} MiB file: streamed peak heap {:.1} MiB (open: {:.1} MiB for shared strings and styles; \
         rows: {:.2} MiB above that), RSS peak +{streamed_hwm}, {:.1} s ({:.1} s to open); \
         loaded whole {:.1} MiB heap, RSS peak +{loaded_hwm}, {:.1} s",
        mib(usize::try_from(size).unwrap()),
        mib(streamed_total),
        mib(opened),
        mib(streaming),
        read_time.as_secs_f64(),
        open_time.as_secs_f64(),
        mib(loaded),
        load_time.as_secs_f64(),
    );
    // Reading rows adds a bounded amount (the row channel, XML buffers),
    // whatever the row count; only the shared-string table grows with the file.
    assert!(
        streaming < 4 << 20,
        "streaming rows took {:.1} MiB above the opened workbook",
        mib(streaming)
    );
    if rows >= 50_000 {
        assert!(
            streamed_total * 4 < loaded,
            "streamed {:.1} MiB is not well below loaded {:.1} MiB",
            mib(streamed_total),
            mib(loaded)
        );
    }
}
