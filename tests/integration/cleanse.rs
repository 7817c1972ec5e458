//! Scenarios for cleanse jobs: a dry run that reports and writes nothing, a run that
//! standardises customers and keeps the old values in their field history, a second
//! run with nothing left to do, one cleanse at a time, the report's errors and roles,
//! identities that would collide, and the CLI.

use tagd_proto::v1 as pb;
use tonic::Code;

use crate::fixtures::{UNKNOWN_ID, create_customer, get_customer};
use crate::harness::{As, Backend, TestServer, assert_status, backend_tests, build_plugins};

backend_tests!(
    a_dry_run_reports_and_a_run_standardises_with_history,
    only_one_cleanse_runs_at_a_time,
    a_cleanse_interrupted_by_a_restart_ends_failed_and_can_be_run_again,
    reports_are_checked_and_admin_only,
    a_standard_form_another_customer_holds_is_reported_not_written,
    deleting_a_customer_deletes_its_field_history,
    the_cli_runs_and_reports_a_cleanse,
);

fn messy(name: &str, province: &str, city: &str, emails: &[&str]) -> pb::Customer {
    pb::Customer {
        name: name.to_owned(),
        emails: emails.iter().map(|e| (*e).to_owned()).collect(),
        address: Some(pb::Address {
            province: province.to_owned(),
            city: city.to_owned(),
            ..pb::Address::default()
        }),
        ..pb::Customer::default()
    }
}

async fn start(server: &TestServer, request: pb::StartCleanseRequest) -> pb::Job {
    server
        .cleanse()
        .start_cleanse(request)
        .await
        .unwrap()
        .into_inner()
}

/// Follows a job with WatchJob to its end; returns the last update.
async fn finished(server: &TestServer, job_id: &str) -> pb::Job {
    let mut stream = server
        .jobs()
        .watch_job(pb::WatchJobRequest {
            job_id: job_id.to_owned(),
        })
        .await
        .unwrap()
        .into_inner();
    let mut last = None;
    let watching = async {
        while let Some(update) = stream.message().await.unwrap() {
            last = Some(update);
        }
    };
    tokio::time::timeout(std::time::Duration::from_secs(120), watching)
        .await
        .expect("the job ends within two minutes");
    let job = last.expect("WatchJob sends the job at least once");
    assert_ne!(state(&job), pb::JobState::Running);
    job
}

async fn run(server: &TestServer, request: pb::StartCleanseRequest) -> pb::Job {
    let job = start(server, request).await;
    assert_eq!(state(&job), pb::JobState::Running);
    assert_eq!(
        pb::JobKind::try_from(job.kind).unwrap(),
        pb::JobKind::Cleanse
    );
    finished(server, &job.id).await
}

fn state(job: &pb::Job) -> pb::JobState {
    pb::JobState::try_from(job.state).unwrap()
}

fn progress(job: &pb::Job) -> pb::JobProgress {
    job.progress.unwrap_or_default()
}

async fn report(server: &TestServer, job_id: &str) -> pb::GetCleanseReportResponse {
    server
        .cleanse()
        .get_cleanse_report(pb::GetCleanseReportRequest {
            job_id: job_id.to_owned(),
            ..pb::GetCleanseReportRequest::default()
        })
        .await
        .unwrap()
        .into_inner()
}

/// (changed, duplicates removed, unfixable) of one field; zeros when absent.
fn counts(report: &pb::GetCleanseReportResponse, field: &str) -> (u64, u64, u64) {
    report
        .fields
        .iter()
        .find(|count| count.field == field)
        .map_or((0, 0, 0), |c| {
            (c.changed, c.duplicates_removed, c.unfixable)
        })
}

async fn field_history(server: &TestServer, customer_id: &str) -> Vec<pb::FieldHistoryEntry> {
    server
        .customers_as(As::Reader)
        .get_field_history(pb::GetFieldHistoryRequest {
            customer_id: customer_id.to_owned(),
            ..pb::GetFieldHistoryRequest::default()
        })
        .await
        .unwrap()
        .into_inner()
        .entries
}

fn province(customer: &pb::Customer) -> &str {
    customer
        .address
        .as_ref()
        .map_or("", |a| a.province.as_str())
}

fn city(customer: &pb::Customer) -> &str {
    customer.address.as_ref().map_or("", |a| a.city.as_str())
}

/// Customers CreateCustomer accepts as they are but a cleanse standardises:
/// a name with a loose middle dot, long province and city names, a Gmail
/// address with dots and a +tag, and a province that names no province at all.
struct Seeded {
    ayi: pb::Customer,
    lilei: pb::Customer,
    mars: pb::Customer,
    clean: pb::Customer,
}

async fn seed(server: &TestServer) -> Seeded {
    Seeded {
        ayi: create_customer(server, messy("阿依古丽 • 买买提", "北京市", "北京市", &[])).await,
        lilei: create_customer(
            server,
            messy("李雷", "广东省", "广东省深圳市", &["Li.Lei+shop@gmail.com"]),
        )
        .await,
        mars: create_customer(server, messy("王芳", "火星", "", &[])).await,
        clean: create_customer(server, messy("赵六", "上海", "上海", &["zhao@example.com"])).await,
    }
}

async fn a_dry_run_reports_and_a_run_standardises_with_history(backend: Backend) {
    let server = TestServer::start(backend).await;
    let seeded = seed(&server).await;

    let dry = run(
        &server,
        pb::StartCleanseRequest {
            dry_run: true,
            fold_gmail: true,
            ..pb::StartCleanseRequest::default()
        },
    )
    .await;
    assert_eq!(state(&dry), pb::JobState::Succeeded, "{}", dry.error);
    assert!(dry.dry_run);
    let p = progress(&dry);
    assert_eq!(
        (p.rows_read, p.updated, p.unchanged, p.rejected),
        (4, 2, 2, 1),
        "scanned, changed, unchanged, unfixable"
    );
    let dry_report = report(&server, &dry.id).await;
    assert_eq!(counts(&dry_report, "name"), (1, 0, 0));
    assert_eq!(counts(&dry_report, "address.province"), (2, 0, 1));
    assert_eq!(counts(&dry_report, "address.city"), (2, 0, 0));
    assert_eq!(counts(&dry_report, "emails"), (1, 0, 0));
    assert_eq!(dry_report.unfixable.len(), 1);
    let unfixable = &dry_report.unfixable[0];
    assert_eq!(
        (
            unfixable.customer_id.as_str(),
            unfixable.field.as_str(),
            unfixable.value.as_str()
        ),
        (seeded.mars.id.as_str(), "address.province", "火星")
    );
    assert!(
        unfixable.reason.contains("province"),
        "{}",
        unfixable.reason
    );
    // Nothing written: the customers and their history are as they were.
    assert_eq!(get_customer(&server, &seeded.ayi.id).await, seeded.ayi);
    assert_eq!(get_customer(&server, &seeded.lilei.id).await, seeded.lilei);
    assert!(field_history(&server, &seeded.ayi.id).await.is_empty());

    let applied = run(
        &server,
        pb::StartCleanseRequest {
            fold_gmail: true,
            ..pb::StartCleanseRequest::default()
        },
    )
    .await;
    assert_eq!(
        state(&applied),
        pb::JobState::Succeeded,
        "{}",
        applied.error
    );
    let p = progress(&applied);
    assert_eq!(
        (p.rows_read, p.updated, p.unchanged, p.rejected),
        (4, 2, 2, 1)
    );
    let ayi = get_customer(&server, &seeded.ayi.id).await;
    assert_eq!(ayi.name, "阿依古丽·买买提");
    assert_eq!((province(&ayi), city(&ayi)), ("北京", "北京"));
    let lilei = get_customer(&server, &seeded.lilei.id).await;
    assert_eq!((province(&lilei), city(&lilei)), ("广东", "深圳"));
    assert_eq!(lilei.emails.len(), 1);
    assert!(
        lilei.emails[0].ends_with("@gmail.com") && !lilei.emails[0].contains('+'),
        "{:?}",
        lilei.emails
    );
    // Found by its new standard form.
    let found = server
        .customers()
        .list_customers(pb::ListCustomersRequest {
            email: lilei.emails[0].clone(),
            ..pb::ListCustomersRequest::default()
        })
        .await
        .unwrap()
        .into_inner()
        .customers;
    assert_eq!(found.len(), 1);
    assert_eq!(get_customer(&server, &seeded.mars.id).await, seeded.mars);
    assert_eq!(get_customer(&server, &seeded.clean.id).await, seeded.clean);

    // One history entry per changed field, with the old and new value, the job and the caller.
    let history = field_history(&server, &seeded.ayi.id).await;
    let mut changed: Vec<(&str, &str, &str)> = history
        .iter()
        .map(|e| (e.field.as_str(), e.old_value.as_str(), e.new_value.as_str()))
        .collect();
    changed.sort_unstable();
    assert_eq!(
        changed,
        vec![
            ("address.city", "北京市", "北京"),
            ("address.province", "北京市", "北京"),
            ("name", "阿依古丽 • 买买提", "阿依古丽·买买提"),
        ]
    );
    for entry in &history {
        assert_eq!(
            pb::FieldChangeSource::try_from(entry.source).unwrap(),
            pb::FieldChangeSource::Cleanse
        );
        assert_eq!(entry.source_ref, applied.id);
        assert_eq!(entry.actor, "ops");
        assert_eq!(entry.customer_id, seeded.ayi.id);
        assert!(entry.change_time.is_some());
    }
    let emails = field_history(&server, &seeded.lilei.id).await;
    let email = emails.iter().find(|e| e.field == "emails").unwrap();
    assert_eq!(email.old_value, r#"["Li.Lei+shop@gmail.com"]"#);
    assert_eq!(email.new_value, format!("[\"{}\"]", lilei.emails[0]));
    assert!(field_history(&server, &seeded.mars.id).await.is_empty());

    // Paged newest first.
    let first = server
        .customers()
        .get_field_history(pb::GetFieldHistoryRequest {
            customer_id: seeded.ayi.id.clone(),
            page_size: 2,
            page_token: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(first.entries.len(), 2);
    assert!(!first.next_page_token.is_empty());
    let rest = server
        .customers()
        .get_field_history(pb::GetFieldHistoryRequest {
            customer_id: seeded.ayi.id.clone(),
            page_size: 2,
            page_token: first.next_page_token,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(rest.entries.len(), 1);
    assert!(rest.entries[0].id < first.entries[1].id);

    // Cleansing is idempotent: a second run finds nothing to change.
    let again = run(
        &server,
        pb::StartCleanseRequest {
            fold_gmail: true,
            ..pb::StartCleanseRequest::default()
        },
    )
    .await;
    let p = progress(&again);
    assert_eq!(
        (p.rows_read, p.updated, p.unchanged, p.rejected),
        (4, 0, 4, 1)
    );
    assert_eq!(field_history(&server, &seeded.ayi.id).await.len(), 3);

    // Only the fields asked for.
    let other = create_customer(&server, messy("韩  梅梅", "浙江省", "杭州市", &[])).await;
    let only_city = run(
        &server,
        pb::StartCleanseRequest {
            fields: vec!["address.city".to_owned()],
            ..pb::StartCleanseRequest::default()
        },
    )
    .await;
    assert_eq!(progress(&only_city).updated, 1);
    let other = get_customer(&server, &other.id).await;
    assert_eq!((province(&other), city(&other)), ("浙江省", "杭州"));
    assert_status(
        server
            .cleanse()
            .start_cleanse(pb::StartCleanseRequest {
                fields: vec!["name".to_owned(), "gender".to_owned()],
                ..pb::StartCleanseRequest::default()
            })
            .await,
        Code::InvalidArgument,
        "fields[1]",
    );
}

/// Enough customers that a cleanse of them takes a moment.
async fn seed_many(server: &TestServer, count: usize) {
    let mut customers = server.customers();
    let entries: Vec<pb::UpsertCustomerEntry> = (0..count)
        .map(|i| pb::UpsertCustomerEntry {
            key: Some(pb::ExternalId {
                channel: "crm".to_owned(),
                external_id: format!("c{i}"),
            }),
            customer: Some(messy(&format!("客户 {i}"), "广东省", "深圳市", &[])),
        })
        .collect();
    for chunk in entries.chunks(1_000) {
        customers
            .upsert_customers(pb::UpsertCustomersRequest {
                entries: chunk.to_vec(),
            })
            .await
            .unwrap();
    }
}

async fn only_one_cleanse_runs_at_a_time(backend: Backend) {
    let server = TestServer::start(backend).await;
    seed_many(&server, 3_000).await;
    let request = pb::StartCleanseRequest {
        dry_run: true,
        ..pb::StartCleanseRequest::default()
    };
    let (mut first, mut second) = (server.cleanse(), server.cleanse());
    let (a, b) = tokio::join!(
        first.start_cleanse(request.clone()),
        second.start_cleanse(request.clone())
    );
    let (winner, loser) = match (a, b) {
        (Ok(winner), Err(loser)) | (Err(loser), Ok(winner)) => (winner.into_inner(), loser),
        (a, b) => panic!("exactly one of two simultaneous starts wins: {a:?} {b:?}"),
    };
    assert_eq!(
        loser.code(),
        Code::FailedPrecondition,
        "{}",
        loser.message()
    );
    assert!(
        loser.message().contains(&winner.id),
        "the refusal names the running job: {}",
        loser.message()
    );
    // Imports, reads and writes go on beside it.
    create_customer(&server, messy("李四", "", "", &[])).await;

    let cancelled = server
        .jobs()
        .cancel_job(pb::CancelJobRequest {
            job_id: winner.id.clone(),
        })
        .await;
    let ended = finished(&server, &winner.id).await;
    match cancelled {
        Ok(_) => {
            assert_eq!(state(&ended), pb::JobState::Cancelled);
            assert!(progress(&ended).rows_read < 3_001, "{:?}", progress(&ended));
        }
        // It finished first: cancelling a finished job is refused.
        Err(status) => assert_eq!(status.code(), Code::FailedPrecondition),
    }
    // Once it has ended, the next one may start.
    let next = run(&server, request).await;
    assert_eq!(state(&next), pb::JobState::Succeeded, "{}", next.error);
    assert_eq!(progress(&next).rows_read, 3_001);
    assert_eq!(progress(&next).updated, 3_000);
    assert_eq!(progress(&next).bytes_total, 3_001, "the customers to scan");
}

async fn a_cleanse_interrupted_by_a_restart_ends_failed_and_can_be_run_again(backend: Backend) {
    let server = TestServer::start(backend).await;
    seed_many(&server, 3_000).await;
    let job = start(&server, pb::StartCleanseRequest::default()).await;
    let (_, database) = server.terminate().await;
    let server = TestServer::start_on(database, crate::harness::Options::default()).await;
    let stopped = server
        .jobs()
        .get_job(pb::GetJobRequest {
            job_id: job.id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    // Usually the stop comes mid-run; a fast machine may have finished first.
    match state(&stopped) {
        pb::JobState::Failed => {
            assert!(stopped.error.contains("interrupted"), "{}", stopped.error);
        }
        other => assert_eq!(other, pb::JobState::Succeeded, "never left running"),
    }
    // What the stopped run committed stays; a new run does the rest, after which
    // nothing is left to change.
    let again = run(&server, pb::StartCleanseRequest::default()).await;
    assert_eq!(state(&again), pb::JobState::Succeeded, "{}", again.error);
    let done = progress(&again);
    assert_eq!(done.rows_read, 3_000);
    let last = run(&server, pb::StartCleanseRequest::default()).await;
    assert_eq!(progress(&last).updated, 0);
}

async fn reports_are_checked_and_admin_only(backend: Backend) {
    build_plugins();
    let folder = tempfile::tempdir().unwrap();
    let server = TestServer::start_with(
        backend,
        crate::harness::Options {
            extra_config: format!("import_dirs = [\"{}\"]\n", folder.path().display()),
            ..crate::harness::Options::default()
        },
    )
    .await;
    assert_status(
        server
            .cleanse()
            .get_cleanse_report(pb::GetCleanseReportRequest {
                job_id: UNKNOWN_ID.to_owned(),
                ..pb::GetCleanseReportRequest::default()
            })
            .await,
        Code::NotFound,
        UNKNOWN_ID,
    );

    // An import's id: its report is GetImportReport's.
    let source = folder.path().join("a.csv");
    std::fs::write(&source, "客户名称,手机号\n张伟,13800138000\n").unwrap();
    let import = server
        .imports()
        .start_import(pb::StartImportRequest {
            importer: "spreadsheet".to_owned(),
            source_path: source.display().to_string(),
            ..pb::StartImportRequest::default()
        })
        .await
        .unwrap()
        .into_inner();
    finished(&server, &import.id).await;
    assert_status(
        server
            .cleanse()
            .get_cleanse_report(pb::GetCleanseReportRequest {
                job_id: import.id.clone(),
                ..pb::GetCleanseReportRequest::default()
            })
            .await,
        Code::FailedPrecondition,
        "not a cleanse (its kind is import)",
    );

    for who in [As::Reader, As::Writer] {
        assert_status(
            server
                .cleanse_as(who)
                .start_cleanse(pb::StartCleanseRequest::default())
                .await,
            Code::PermissionDenied,
            "StartCleanse needs admin",
        );
        assert_status(
            server
                .cleanse_as(who)
                .get_cleanse_report(pb::GetCleanseReportRequest {
                    job_id: import.id.clone(),
                    ..pb::GetCleanseReportRequest::default()
                })
                .await,
            Code::PermissionDenied,
            "needs admin",
        );
    }
    assert_status(
        server
            .customers_as(As::Reader)
            .get_field_history(pb::GetFieldHistoryRequest {
                customer_id: UNKNOWN_ID.to_owned(),
                ..pb::GetFieldHistoryRequest::default()
            })
            .await,
        Code::NotFound,
        UNKNOWN_ID,
    );
    assert_status(
        server
            .customers_as(As::Nobody)
            .get_field_history(pb::GetFieldHistoryRequest::default())
            .await,
        Code::Unauthenticated,
        "",
    );
}

async fn a_standard_form_another_customer_holds_is_reported_not_written(backend: Backend) {
    let server = TestServer::start(backend).await;
    let holder = create_customer(&server, messy("张伟", "", "", &["zhangwei@gmail.com"])).await;
    let other = create_customer(
        &server,
        messy("张 伟", "广东省", "", &["Zhang.Wei+news@gmail.com"]),
    )
    .await;
    let job = run(
        &server,
        pb::StartCleanseRequest {
            fold_gmail: true,
            lowercase_email_local_part: true,
            ..pb::StartCleanseRequest::default()
        },
    )
    .await;
    assert_eq!(state(&job), pb::JobState::Succeeded, "{}", job.error);
    let other_now = get_customer(&server, &other.id).await;
    // The email stays as it was; the rest of the customer is cleansed.
    assert_eq!(other_now.emails, other.emails);
    assert_eq!(province(&other_now), "广东");
    let report = report(&server, &job.id).await;
    let reported = report
        .unfixable
        .iter()
        .find(|value| value.field == "emails")
        .expect("the collision is reported");
    assert_eq!(reported.customer_id, other.id);
    assert_eq!(reported.value, "Zhang.Wei+news@gmail.com");
    assert!(reported.reason.contains(&holder.id), "{}", reported.reason);
    assert_eq!(counts(&report, "emails"), (0, 0, 1));
    let history = field_history(&server, &other.id).await;
    assert!(history.iter().all(|e| e.field != "emails"), "{history:?}");
}

async fn deleting_a_customer_deletes_its_field_history(backend: Backend) {
    let server = TestServer::start(backend).await;
    let seeded = seed(&server).await;
    let job = run(&server, pb::StartCleanseRequest::default()).await;
    assert_eq!(field_history(&server, &seeded.ayi.id).await.len(), 3);
    assert_eq!(report(&server, &job.id).await.unfixable.len(), 1);
    for id in [&seeded.ayi.id, &seeded.mars.id] {
        server
            .customers()
            .delete_customer(pb::DeleteCustomerRequest { id: id.clone() })
            .await
            .unwrap();
    }
    assert_status(
        server
            .customers()
            .get_field_history(pb::GetFieldHistoryRequest {
                customer_id: seeded.ayi.id.clone(),
                ..pb::GetFieldHistoryRequest::default()
            })
            .await,
        Code::NotFound,
        &seeded.ayi.id,
    );
    // The report's copy of a deleted customer's value goes with it; the counts stay.
    let after = report(&server, &job.id).await;
    assert!(after.unfixable.is_empty(), "{:?}", after.unfixable);
    assert_eq!(counts(&after, "address.province").2, 1);
    for table in ["customer_field_history", "cleanse_unfixable"] {
        for id in [&seeded.ayi.id, &seeded.mars.id] {
            assert_eq!(server.database.count_rows(table, id).await, 0, "{table}");
        }
    }
    assert_eq!(
        server
            .database
            .count_rows("customer_field_history", &seeded.lilei.id)
            .await,
        2,
        "another customer's history stays (province and city)"
    );
}

async fn the_cli_runs_and_reports_a_cleanse(backend: Backend) {
    crate::cli::cleanse_from_the_cli(backend).await;
}
