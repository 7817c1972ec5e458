//! Scenarios for running tagd: start-up errors, restarts, shutdown, limits, migrate.

use std::process::Stdio;

use tagd_proto::v1 as pb;
use tonic::Code;

use crate::fixtures::{self, customer};
use crate::harness::{Backend, Database, Options, TestServer, backend_tests, tagd_command};

backend_tests!(
    data_survives_a_graceful_restart,
    oversized_requests_are_refused,
    migrate_is_idempotent
);

async fn data_survives_a_graceful_restart(backend: Backend) {
    let server = TestServer::start(backend).await;
    let tag = fixtures::flag_tag(&server, "老客户").await;
    let wu = customer(&server, "吴十").await;
    fixtures::assign(&server, &wu.id, vec![fixtures::assignment(&tag.id, "")]).await;
    let (exit, database) = server.terminate().await;
    assert!(exit.success(), "SIGTERM stops tagd cleanly: {exit:?}");

    let restarted = TestServer::start_on(database, Options::default()).await;
    let fetched = restarted
        .customers()
        .get_customer(pb::GetCustomerRequest { id: wu.id.clone() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(fetched, wu);
    assert_eq!(fixtures::customer_tags(&restarted, &wu.id).await.len(), 1);
}

async fn oversized_requests_are_refused(backend: Backend) {
    let server = TestServer::start_with(
        backend,
        Options {
            extra_config: "max_request_bytes = 65536".into(),
            ..Options::default()
        },
    )
    .await;
    let huge = pb::CreateCategoryRequest {
        name: "大".into(),
        description: "字".repeat(40_000),
        exclusive: false,
    };
    let status = server.tags().create_category(huge).await.unwrap_err();
    assert!(
        matches!(status.code(), Code::OutOfRange | Code::ResourceExhausted),
        "{status:?}"
    );
    // The server keeps serving.
    fixtures::category(&server, "小", false).await;
}

async fn migrate_is_idempotent(backend: Backend) {
    let database = Database::fresh(backend).await;
    for expected in ["applied migrations", "database is up to date"] {
        let output = tagd_command()
            .arg("migrate")
            .env("TAGD_DATABASE_URL", &database.url)
            .output()
            .await
            .unwrap();
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(stdout.contains(expected), "{stdout}");
    }
}

/// Runs `tagd serve` expecting it to refuse to start; returns its stderr.
async fn refused_start(env: &[(&str, &str)]) -> String {
    let mut command = tagd_command();
    command
        .arg("serve")
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    for (key, value) in env {
        command.env(key, value);
    }
    let output = tokio::time::timeout(std::time::Duration::from_secs(60), command.output())
        .await
        .expect("tagd should exit, not serve")
        .unwrap();
    assert!(!output.status.success(), "tagd should exit non-zero");
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_configuration_stops_start_up_with_a_reason() {
    let dir = tempfile::tempdir().unwrap();
    let sqlite = format!("sqlite://{}", dir.path().join("t.db").display());
    let stderr = refused_start(&[("TAGD_DATABASE_URL", &sqlite), ("TAGD_LISTEN_PORT", "1")]).await;
    assert!(stderr.contains("unknown field `listen_port`"), "{stderr}");
    let stderr =
        refused_start(&[("TAGD_DATABASE_URL", &sqlite), ("TAGD_LISTEN", "0.0.0.0:0")]).await;
    assert!(
        stderr.contains("refusing to listen on 0.0.0.0:0 without API keys"),
        "{stderr}"
    );
    let stderr = refused_start(&[("TAGD_DATABASE_URL", "postgres://localhost/x")]).await;
    assert!(stderr.contains("unsupported database_url"), "{stderr}");
    let stderr = refused_start(&[
        ("TAGD_DATABASE_URL", "mysql://root@127.0.0.1:1/nothing"),
        ("TAGD_LISTEN", "127.0.0.1:0"),
    ])
    .await;
    assert!(
        stderr.contains("cannot open the database at mysql://root@127.0.0.1:1/nothing"),
        "{stderr}"
    );
    let stderr = refused_start(&[
        ("TAGD_DATABASE_URL", &sqlite),
        ("TAGD_PHONE_REGION", "Atlantis"),
    ])
    .await;
    assert!(stderr.contains("phone_region"), "{stderr}");
    for (key, value, reason) in [
        (
            "TAGD_IMPORT_STALL_SECS",
            "0",
            "import_stall_secs must be at least 1",
        ),
        (
            "TAGD_IMPORT_MEMORY_MB",
            "10",
            "import_memory_mb must be at least 64",
        ),
        (
            "TAGD_MAX_UPLOAD_MB",
            "0",
            "max_upload_mb must be at least 1",
        ),
        (
            "TAGD_SQLITE_CACHE_MIB",
            "0",
            "sqlite_cache_mib must be 1..=65536, got 0",
        ),
        (
            "TAGD_METRIC_WINDOWS_DAYS",
            "30,90,30",
            "metric_windows_days: lists 30 days twice",
        ),
        (
            "TAGD_METRIC_WINDOWS_DAYS",
            "0",
            "metric_windows_days: 0 is not 1..=36500 days",
        ),
        (
            "TAGD_METRIC_WINDOWS_DAYS",
            "30,x",
            "\"x\" is not a whole number of days",
        ),
        (
            "TAGD_METRIC_WINDOWS_DAYS",
            "-3",
            "-3 is not a whole number of days",
        ),
    ] {
        let stderr = refused_start(&[("TAGD_DATABASE_URL", &sqlite), (key, value)]).await;
        assert!(stderr.contains(reason), "{key}={value}: {stderr}");
    }
    let config = dir.path().join("tagd.toml");
    std::fs::write(
        &config,
        "[[auth.keys]]\nname = \"x\"\nkey = \"short\"\nrole = \"admin\"\n",
    )
    .unwrap();
    let output = tagd_command()
        .arg("serve")
        .arg("--config")
        .arg(&config)
        .output()
        .await
        .unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("auth.keys[0].key"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mysql_connections_lost_under_the_pool_are_replaced() {
    let server = TestServer::start(Backend::Mysql).await;
    let zheng = customer(&server, "郑十一").await;
    let mut customers = server.customers();
    let get = pb::GetCustomerRequest {
        id: zheng.id.clone(),
    };
    // Use several pooled connections, then kill them all behind tagd's back.
    let mut calls = Vec::new();
    for _ in 0..8 {
        let mut client = customers.clone();
        let request = get.clone();
        calls.push(tokio::spawn(
            async move { client.get_customer(request).await },
        ));
    }
    for call in calls {
        call.await.unwrap().unwrap();
    }
    assert!(server.database.kill_mysql_connections().await > 0);
    // Each dead connection may fail one call; it is then dropped, never reused.
    let mut failures = 0;
    for _ in 0..20 {
        match customers.get_customer(get.clone()).await {
            Ok(found) => assert_eq!(found.into_inner(), zheng),
            Err(status) => {
                assert_eq!(status.code(), Code::Internal, "{status:?}");
                failures += 1;
            }
        }
    }
    assert!(
        failures <= 4,
        "pool_size is 4 in tests; {failures} calls failed"
    );
    for _ in 0..10 {
        customers.get_customer(get.clone()).await.unwrap();
    }
}

/// On SQLite the write-ahead log is folded into the database file by the server's own
/// checkpoint thread while it runs: a commit leaves the log to it instead of copying the
/// log itself, so with no checkpoint thread the file would not grow until the server
/// stopped (the writers' own threshold is 64 MiB of log, far above what this writes).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_log_is_folded_into_the_database_file_while_the_server_runs() {
    let server = TestServer::start(Backend::Sqlite).await;
    let path = std::path::PathBuf::from(
        server
            .database
            .url
            .strip_prefix("sqlite://")
            .expect("a SQLite test database"),
    );
    let size = || std::fs::metadata(&path).map_or(0, |meta| meta.len());
    let before = size();
    let mut customers = server.customers();
    for batch in 0..3 {
        let entries = (0..1_000)
            .map(|n| pb::UpsertCustomerEntry {
                key: Some(pb::ExternalId {
                    channel: "shop".into(),
                    external_id: format!("{batch}-{n}"),
                }),
                customer: Some(pb::Customer {
                    name: format!("客户{batch}-{n}"),
                    phones: vec![format!("1380013{batch}{n:03}")],
                    company: "深圳市某某科技有限公司".repeat(4),
                    ..pb::Customer::default()
                }),
            })
            .collect();
        customers
            .upsert_customers(pb::UpsertCustomersRequest { entries })
            .await
            .unwrap();
    }
    // 3,000 customers are a few MiB of pages; poll while the thread folds them in.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while size() < before + 1024 * 1024 && std::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(
        size() >= before + 1024 * 1024,
        "the database file stayed at {} bytes (was {before}) while the log held the writes",
        size()
    );
    // Folding the log in loses nothing: the last customer written is found by its phone.
    let listed = customers
        .list_customers(pb::ListCustomersRequest {
            phone: "13800132999".into(),
            ..pb::ListCustomersRequest::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        listed
            .customers
            .iter()
            .map(|customer| customer.name.as_str())
            .collect::<Vec<_>>(),
        ["客户2-999"]
    );
}
