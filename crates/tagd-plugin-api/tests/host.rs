//! End-to-end tests of the host side: real plugin libraries run in real worker
//! processes (`tagd-plugin-worker`), misbehaving in every way the supervisor
//! must survive.
//!
//! The plugin libraries are built on first use with `cargo build -p …` (a
//! plain `cargo test -p tagd-plugin-api` does not build other packages' cdylibs).
#![expect(
    clippy::unwrap_used,
    reason = "test helpers outside #[test] functions unwrap too"
)]

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    process::Command,
    sync::OnceLock,
    time::Duration,
};

use tagd_plugin_api::{
    Error,
    abi::ABI_VERSION,
    host::{Event, Limits, Plugin, spawn},
    pb::Done,
};

const PLUGIN_CRATES: &[&str] = &[
    "tagd-plugin-test-crash",
    "tagd-plugin-test-wrong-abi",
    "tagd-plugin-vcard",
    "tagd-plugin-wecom",
    "tagd-plugin-spreadsheet",
    "tagd-plugin-orders",
];

/// `target/<profile>/`, where cargo puts the workspace's cdylibs.
fn target_profile_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    // target/<profile>/deps/host-<hash>
    exe.parent().unwrap().parent().unwrap().to_owned()
}

/// Builds the plugin crates once per test run, in this test's profile.
fn build_plugins() {
    static BUILT: OnceLock<()> = OnceLock::new();
    BUILT.get_or_init(|| {
        let mut cargo = Command::new(env!("CARGO"));
        cargo.arg("build").current_dir(env!("CARGO_MANIFEST_DIR"));
        if target_profile_dir().ends_with("release") {
            cargo.arg("--release");
        }
        for name in PLUGIN_CRATES {
            cargo.args(["-p", name]);
        }
        let status = cargo.status().expect("running cargo build for the plugins");
        assert!(status.success(), "cargo build of the plugins failed");
    });
}

/// The built library of plugin crate `name`.
pub fn plugin_library(name: &str) -> PathBuf {
    build_plugins();
    let path = target_profile_dir().join(format!("lib{}.so", name.replace('-', "_")));
    assert!(
        path.exists(),
        "{} missing after cargo build",
        path.display()
    );
    path
}

fn worker(plugin: &Path, source: &Path, options: &[(&str, &str)]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_tagd-plugin-worker"));
    command.arg(plugin).arg(source);
    for (k, v) in options {
        command.arg(format!("{k}={v}"));
    }
    command
}

fn limits() -> Limits {
    Limits {
        stall_timeout: Duration::from_secs(20),
        memory_limit_bytes: Some(1 << 30),
        ..Limits::default()
    }
}

/// Runs a worker to the end: the records' external ids, the Done frame, or the error.
async fn run(command: Command, limits: Limits) -> Result<(Vec<String>, Done), Error> {
    let mut run = spawn(command, "test", limits)?;
    let mut ids = Vec::new();
    let mut saw_info = false;
    while let Some(event) = run.next().await? {
        match event {
            Event::Info(info) => {
                assert_eq!(info.abi_version, ABI_VERSION);
                saw_info = true;
            }
            Event::Batch(batch) => ids.extend(batch.records.into_iter().map(|r| r.external_id)),
            Event::Done(done) => {
                assert!(saw_info, "Done before Info");
                assert!(run.next().await?.is_none());
                return Ok((ids, done));
            }
        }
    }
    panic!("stream ended without Done");
}

fn crash_plugin(mode: &str) -> Command {
    worker(
        &plugin_library("tagd-plugin-test-crash"),
        Path::new("/dev/null"),
        &[("mode", mode)],
    )
}

#[tokio::test]
async fn good_plugin_streams_records_and_done() {
    let mut command = crash_plugin("ok");
    command.arg("count=1201");
    let (ids, done) = run(command, limits()).await.unwrap();
    assert_eq!(ids.len(), 1201);
    assert_eq!(ids[0], "test-1");
    assert_eq!(done.records, 1201);
}

#[tokio::test]
async fn plugin_writing_to_stdout_does_not_corrupt_frames() {
    let (ids, _) = run(crash_plugin("noisy"), limits()).await.unwrap();
    assert_eq!(ids, ["test-1", "test-2", "test-3"]);
}

#[tokio::test]
async fn panic_is_reported_with_the_plugins_message() {
    let err = run(crash_plugin("panic"), limits()).await.unwrap_err();
    assert!(matches!(err, Error::Plugin { .. }), "{err:?}");
    assert!(err.to_string().contains("plugin panicked: boom"), "{err}");
}

#[tokio::test]
async fn panic_or_error_in_open_is_reported() {
    let err = run(crash_plugin("panic-in-open"), limits())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("boom in open"), "{err}");
    let err = run(crash_plugin("open-error"), limits()).await.unwrap_err();
    assert!(err.to_string().contains("refuses to open"), "{err}");
}

#[tokio::test]
async fn segfault_is_reported_as_a_crash() {
    let err = run(crash_plugin("segfault"), limits()).await.unwrap_err();
    assert_eq!(err.to_string(), "plugin test crashed (SIGSEGV)");
}

#[tokio::test]
async fn abort_is_reported_as_sigabrt() {
    let err = run(crash_plugin("abort"), limits()).await.unwrap_err();
    assert_eq!(err.to_string(), "plugin test crashed (SIGABRT)");
}

#[tokio::test]
async fn hang_is_killed_after_the_stall_timeout() {
    let limits = Limits {
        stall_timeout: Duration::from_secs(2),
        ..limits()
    };
    let started = std::time::Instant::now();
    let err = run(crash_plugin("hang"), limits).await.unwrap_err();
    assert_eq!(err.to_string(), "plugin test made no progress for 2 s");
    assert!(started.elapsed() < Duration::from_secs(15));
}

#[tokio::test]
async fn memory_hog_hits_the_memory_limit() {
    let limits = Limits {
        memory_limit_bytes: Some(512 << 20),
        ..limits()
    };
    let err = run(crash_plugin("leak-memory"), limits).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "plugin test exceeded the memory limit of 512 MiB"
    );
}

#[tokio::test]
async fn wrong_abi_is_refused_naming_both_versions() {
    let library = plugin_library("tagd-plugin-test-wrong-abi");
    let err = run(worker(&library, Path::new("/dev/null"), &[]), limits())
        .await
        .unwrap_err();
    let message = err.to_string();
    assert!(
        message.contains(&library.display().to_string()),
        "{message}"
    );
    assert!(message.contains("ABI version 999"), "{message}");
    assert!(
        message.contains(&format!("host speaks version {ABI_VERSION}")),
        "{message}"
    );
}

#[test]
fn loader_refuses_wrong_abi_in_process() {
    let library = plugin_library("tagd-plugin-test-wrong-abi");
    let err = Plugin::load(&library).unwrap_err();
    assert!(
        matches!(
            err,
            Error::AbiMismatch {
                plugin: 999,
                host: ABI_VERSION,
                ..
            }
        ),
        "{err:?}"
    );
}

#[tokio::test]
async fn random_bytes_named_so_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let fake = dir.path().join("libfake.so");
    std::fs::write(
        &fake,
        (0..4096_u32)
            .map(|i| (i * 7919 % 251) as u8)
            .collect::<Vec<_>>(),
    )
    .unwrap();
    let err = run(worker(&fake, Path::new("/dev/null"), &[]), limits())
        .await
        .unwrap_err();
    let message = err.to_string();
    assert!(
        message.contains("libfake.so: not a loadable plugin"),
        "{message}"
    );
}

#[tokio::test]
async fn library_without_entry_symbol_is_refused() {
    // Any shared library that is not a plugin: the C maths library is everywhere.
    let Some(libm) = [
        "/lib/x86_64-linux-gnu/libm.so.6",
        "/usr/lib/x86_64-linux-gnu/libm.so.6",
        "/lib64/libm.so.6",
        "/usr/lib/libm.so.6",
    ]
    .into_iter()
    .map(Path::new)
    .find(|p| p.exists()) else {
        return;
    };
    let err = run(worker(libm, Path::new("/dev/null"), &[]), limits())
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("exports no `tagd_plugin_entry` symbol"),
        "{err}"
    );
}

#[tokio::test]
async fn missing_worker_binary_is_an_io_error() {
    let err = spawn(Command::new("/nonexistent/tagd-worker"), "test", limits()).unwrap_err();
    assert!(
        err.to_string()
            .contains("spawning the worker for plugin test"),
        "{err}"
    );
}

#[tokio::test]
async fn probe_reports_metadata_only() {
    let mut command = Command::new(env!("CARGO_BIN_EXE_tagd-plugin-worker"));
    command
        .arg("--probe")
        .arg(plugin_library("tagd-plugin-test-crash"));
    let mut run = spawn(command, "test", limits()).unwrap();
    let Some(Event::Info(info)) = run.next().await.unwrap() else {
        panic!("no info")
    };
    assert_eq!(info.name, "test-crash");
    assert!(info.options.iter().any(|o| o.name == "mode"));
    assert!(matches!(run.next().await.unwrap(), Some(Event::Done(_))));
}

#[test]
fn loader_runs_a_plugin_in_process() {
    let plugin = Plugin::load(&plugin_library("tagd-plugin-test-crash")).unwrap();
    let mut options = BTreeMap::new();
    options.insert("count".to_owned(), "7".to_owned());
    let mut session = plugin.open(Path::new("/dev/null"), &options).unwrap();
    let first = session.next_batch(5).unwrap().unwrap();
    assert_eq!(first.records.len(), 5);
    let second = session.next_batch(5).unwrap().unwrap();
    assert_eq!(second.records.len(), 2);
    assert!(session.next_batch(5).unwrap().is_none());
}

fn plugin_testdata(plugin: &str, file: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../plugins")
        .join(plugin)
        .join("testdata")
        .join(file)
}

#[tokio::test]
async fn channel_plugins_run_in_workers() {
    let cases = [
        ("tagd-plugin-vcard", "vcard", "contacts-v3.vcf", 3),
        ("tagd-plugin-wecom", "wecom", "contacts.json", 2),
        (
            "tagd-plugin-spreadsheet",
            "spreadsheet",
            "customers.xlsx",
            2,
        ),
        (
            "tagd-plugin-spreadsheet",
            "spreadsheet",
            "customers-gbk.csv",
            3,
        ),
        ("tagd-plugin-orders", "orders", "orders.jsonl", 2),
    ];
    for (krate, dir, file, expected) in cases {
        let command = worker(&plugin_library(krate), &plugin_testdata(dir, file), &[]);
        let (ids, done) = run(command, limits()).await.unwrap();
        assert_eq!(ids.len(), expected, "{krate} {file}");
        assert_eq!(done.records, expected as u64);
    }
}

#[tokio::test]
async fn open_errors_of_channel_plugins_name_the_problem() {
    let command = worker(
        &plugin_library("tagd-plugin-spreadsheet"),
        &plugin_testdata("spreadsheet", "binary.csv"),
        &[],
    );
    let err = run(command, limits()).await.unwrap_err();
    assert!(err.to_string().contains("not a text file"), "{err}");
}

/// A big CSV through a real worker under a 512 MiB address-space limit: the
/// rows stream, memory stays flat. `TAGD_BIG_ROWS` sets the row count (the
/// issue's 5,000,000 takes a few minutes in a debug build).
#[tokio::test]
async fn big_csv_streams_in_constant_memory() {
    let rows: u64 = std::env::var("TAGD_BIG_ROWS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200_000);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big.csv");
    {
        use std::io::Write;
        let mut file = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
        writeln!(file, "客户编号,姓名,手机号,标签").unwrap();
        for i in 0..rows {
            writeln!(file, "c{i},客户{i},138{:08},VIP|老客户", i % 100_000_000).unwrap();
        }
    }
    let limits = Limits {
        memory_limit_bytes: Some(512 << 20),
        stall_timeout: Duration::from_secs(60),
        ..Limits::default()
    };
    let mut run = spawn(
        worker(&plugin_library("tagd-plugin-spreadsheet"), &path, &[]),
        "spreadsheet",
        limits,
    )
    .unwrap();
    let mut count = 0_u64;
    while let Some(event) = run.next().await.unwrap() {
        if let Event::Batch(batch) = event {
            count += batch.records.len() as u64;
            assert!(batch.errors.is_empty());
        }
    }
    assert_eq!(count, rows);
}
