//! Scenarios for imports: a spreadsheet through its plugin worker into customers
//! and tags, the report of rejected rows, idempotent re-runs, dry runs, refused
//! requests, and plugins that crash, hang or were built for another ABI.

use std::path::{Path, PathBuf};

use tagd_proto::v1 as pb;
use tonic::Code;

use crate::fixtures::customers_with_phone;
use crate::harness::{
    As, Backend, Options, TestServer, assert_status, backend_tests, build_plugins,
};

backend_tests!(
    spreadsheet_rows_become_customers_with_tags,
    orders_and_wecom_contacts_bring_purchases_and_interactions,
    vcards_and_workbooks_are_imported,
    a_dry_run_reports_and_writes_nothing,
    uploaded_files_are_imported_and_then_removed,
    a_revert_undoes_an_import_unless_its_customers_changed_since,
    rows_that_duplicate_stored_customers_are_linked_not_twinned,
    import_requests_are_checked,
    broken_plugins_fail_their_job_not_the_server,
    libraries_that_are_not_plugins_are_listed_with_the_reason,
    a_running_import_can_be_cancelled,
    an_import_interrupted_by_a_restart_is_marked_failed,
);

const CUSTOMERS_CSV: &str = "\
客户名称,手机号,邮箱,性别,生日,省份,城市,标签
张伟,138-0013-8000,zhang.wei@Example.COM,男,1990年1月2日,广东省,深圳市,VIP；老客户
李娜,+86 139 0013 9000,,女士,1985/7/1,北京市,北京,VIP
王芳,12345,,女,,浙江,杭州,
赵磊,13700137000,not-an-email,,,,,
张伟,13800138000,,,,,,意向客户
";

/// A server that may import from a fresh folder; returns the folder too.
async fn import_server(backend: Backend, stall_secs: u32) -> (TestServer, tempfile::TempDir) {
    build_plugins();
    let folder = tempfile::tempdir().unwrap();
    let config = format!(
        "import_dirs = [\"{}\"]\nimport_stall_secs = {stall_secs}\n",
        folder.path().display()
    );
    let server = TestServer::start_with(
        backend,
        Options {
            extra_config: config,
            ..Options::default()
        },
    )
    .await;
    (server, folder)
}

fn write_file(folder: &Path, name: &str, contents: &str) -> PathBuf {
    let path = folder.join(name);
    std::fs::write(&path, contents).unwrap();
    path
}

fn request(importer: &str, path: &Path) -> pb::StartImportRequest {
    pb::StartImportRequest {
        importer: importer.to_owned(),
        source_path: path.display().to_string(),
        create_missing_tags: true,
        ..pb::StartImportRequest::default()
    }
}

/// Starts an import and follows it to its end with WatchJob; returns every update.
async fn run_import(server: &TestServer, request: pb::StartImportRequest) -> Vec<pb::Job> {
    let job = server
        .imports()
        .start_import(request)
        .await
        .unwrap()
        .into_inner();
    watch_to_end(server, &job.id).await
}

async fn watch_to_end(server: &TestServer, job_id: &str) -> Vec<pb::Job> {
    let mut stream = server
        .jobs()
        .watch_job(pb::WatchJobRequest {
            job_id: job_id.to_owned(),
        })
        .await
        .unwrap()
        .into_inner();
    let mut updates = Vec::new();
    let watching = async {
        while let Some(update) = stream.message().await.unwrap() {
            updates.push(update);
        }
    };
    tokio::time::timeout(std::time::Duration::from_secs(60), watching)
        .await
        .expect("the job ends within a minute");
    assert!(!updates.is_empty(), "WatchJob sends the job at least once");
    updates
}

fn progress(job: &pb::Job) -> pb::JobProgress {
    job.progress.unwrap_or_default()
}

fn state(job: &pb::Job) -> pb::JobState {
    pb::JobState::try_from(job.state).unwrap()
}

async fn report(server: &TestServer, job_id: &str) -> Vec<pb::RejectedRow> {
    server
        .imports()
        .get_import_report(pb::GetImportReportRequest {
            job_id: job_id.to_owned(),
            ..pb::GetImportReportRequest::default()
        })
        .await
        .unwrap()
        .into_inner()
        .rows
}

async fn spreadsheet_rows_become_customers_with_tags(backend: Backend) {
    let (server, folder) = import_server(backend, 3).await;
    let path = write_file(folder.path(), "customers.csv", CUSTOMERS_CSV);
    let updates = run_import(&server, request("spreadsheet", &path)).await;
    let done = updates.last().unwrap();
    assert_eq!(state(done), pb::JobState::Succeeded, "{done:?}");
    let counts = progress(done);
    assert_eq!(counts.rows_read, 5);
    assert_eq!(counts.bytes_total, CUSTOMERS_CSV.len() as u64);
    assert_eq!(counts.eta_seconds, 0, "a finished job has no time left");
    assert!(counts.rows_per_second > 0.0);
    // 张伟 twice (the second row updates the first), 李娜 once; 王芳 and 赵磊 rejected.
    assert_eq!((counts.created, counts.rejected), (2, 2), "{counts:?}");
    assert_eq!(counts.updated + counts.unchanged, 1, "{counts:?}");
    assert_eq!(
        counts.tags_added, 4,
        "VIP and 老客户, VIP, then 意向客户: {counts:?}"
    );

    let rejected = report(&server, &done.id).await;
    let summary: Vec<(u64, &str)> = rejected.iter().map(|r| (r.row, r.field.as_str())).collect();
    assert_eq!(
        summary,
        vec![(4, "phones[0]"), (5, "emails[0]")],
        "{rejected:?}"
    );
    assert_eq!(rejected[0].raw_value, "12345");
    assert!(!rejected[1].reason.is_empty());

    let zhang = customers_with_phone(&server, "+8613800138000").await;
    assert_eq!(zhang.len(), 1, "both 张伟 rows are one customer: {zhang:?}");
    let zhang = &zhang[0];
    assert_eq!(zhang.name, "张伟");
    assert_eq!(zhang.emails, vec!["zhang.wei@example.com".to_owned()]);
    assert_eq!(zhang.birthday, "1990-01-02");
    let address = zhang.address.clone().unwrap_or_default();
    assert_eq!(
        (address.province.as_str(), address.city.as_str()),
        ("广东", "深圳")
    );
    let tags = server
        .tagging()
        .list_customer_tags(pb::ListCustomerTagsRequest {
            customer_id: zhang.id.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .tags;
    let mut names: Vec<&str> = tags.iter().map(|t| t.tag_name.as_str()).collect();
    names.sort_unstable();
    assert_eq!(names, vec!["VIP", "意向客户", "老客户"]);
    for tag in &tags {
        assert_eq!(tag.source, pb::TagSource::Import as i32);
        assert_eq!(tag.source_ref, done.id, "history and tags name the job");
    }

    // The same file again changes nothing.
    let again = run_import(&server, request("spreadsheet", &path)).await;
    let counts = progress(again.last().unwrap());
    assert_eq!(state(again.last().unwrap()), pb::JobState::Succeeded);
    assert_eq!(
        (counts.created, counts.updated, counts.tags_added),
        (0, 0, 0),
        "{counts:?}"
    );
    assert_eq!(
        customers_with_phone(&server, "+8613800138000").await.len(),
        1
    );

    let jobs = server
        .jobs()
        .list_jobs(pb::ListJobsRequest::default())
        .await
        .unwrap()
        .into_inner()
        .jobs;
    assert_eq!(jobs.len(), 2);
    assert_eq!(jobs[0].id, again.last().unwrap().id, "newest first");
    assert_eq!(jobs[1].created_by, "ops");
}

const ORDERS_JSONL: &str = r#"{"order_id": "E1001", "created_at": "2024-06-01 10:00:00", "currency": "CNY", "total": "199.00", "buyer": {"id": "buyer-1", "name": "张三", "phone": "13800000001"}, "items": [{"sku": "P-100", "name": "婴儿奶粉", "category": "母婴", "quantity": 2, "price": "99.50"}]}
{"order_id": "E1002", "created_at": "2024-06-03 09:30:00", "buyer": {"id": "buyer-1", "name": "张三", "phone": "13800000001"}, "items": [{"sku": "P-200", "name": "纸尿裤", "category": "母婴", "quantity": 1, "price": "89.00"}]}
{"order_id": "E1003", "created_at": "2024-06-04 09:30:00", "buyer": {"id": "buyer-2", "name": "李四"}, "items": [{"sku": "P-300", "name": "奶瓶", "category": "母婴", "quantity": -1, "price": "39.00"}]}
{"order_id": "E1004", "created_at": "2024-06-05 09:30:00", "currency": "XYZ", "total": "5", "buyer": {"id": "buyer-3", "name": "王五"}, "items": []}
"#;

const WECOM_JSON: &str = r#"[{"errcode": 0, "errmsg": "ok",
  "external_contact": {"external_userid": "wmAAAA", "name": "李四", "type": 1, "gender": 2, "unionid": "oUNION1", "corp_name": "示例科技"},
  "follow_user": [{"userid": "zhangsan", "remark": "李四-示例科技", "description": "老客户，年底续约", "createtime": 1700000000,
    "tags": [{"group_name": "客户等级", "tag_name": "重要客户", "type": 1}, {"group_name": "兴趣", "tag_name": "母婴", "type": 2}],
    "remark_mobiles": ["13900000002"]}]}]"#;

async fn orders_and_wecom_contacts_bring_purchases_and_interactions(backend: Backend) {
    let (server, folder) = import_server(backend, 3).await;
    let orders = write_file(folder.path(), "orders.jsonl", ORDERS_JSONL);
    let done = run_import(&server, request("orders", &orders)).await;
    let done = done.last().unwrap();
    assert_eq!(state(done), pb::JobState::Succeeded, "{done:?}");
    let counts = progress(done);
    assert_eq!(
        (counts.created, counts.purchases_added),
        (1, 2),
        "{counts:?}"
    );
    let rejected = report(&server, &done.id).await;
    let fields: Vec<&str> = rejected.iter().map(|r| r.field.as_str()).collect();
    assert_eq!(
        fields,
        vec!["purchases[0].items[0].quantity", "purchases[0].currency"],
        "{rejected:?}"
    );
    assert_eq!(rejected[1].raw_value, "E1004");
    // Orders are known by channel and order id: the same file adds nothing.
    let again = run_import(&server, request("orders", &orders)).await;
    assert_eq!(progress(again.last().unwrap()).purchases_added, 0);
    // Deleting the customer deletes its orders: importing again brings both back.
    let zhang = customers_with_phone(&server, "+8613800000001").await;
    server
        .customers()
        .delete_customer(pb::DeleteCustomerRequest {
            id: zhang[0].id.clone(),
        })
        .await
        .unwrap();
    let again = run_import(&server, request("orders", &orders)).await;
    let counts = progress(again.last().unwrap());
    assert_eq!(
        (counts.created, counts.purchases_added),
        (1, 2),
        "{counts:?}"
    );

    let contacts = write_file(folder.path(), "contacts.json", WECOM_JSON);
    let done = run_import(&server, request("wecom", &contacts)).await;
    let done = done.last().unwrap();
    assert_eq!(state(done), pb::JobState::Succeeded, "{done:?}");
    let counts = progress(done);
    assert_eq!(
        (counts.created, counts.tags_added, counts.interactions_added),
        (1, 2, 1),
        "{counts:?}"
    );
    let li = customers_with_phone(&server, "+8613900000002").await;
    assert_eq!(li.len(), 1, "{li:?}");
    let tags = server
        .tagging()
        .list_customer_tags(pb::ListCustomerTagsRequest {
            customer_id: li[0].id.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .tags;
    let mut named: Vec<(&str, &str)> = tags
        .iter()
        .map(|t| (t.category_name.as_str(), t.tag_name.as_str()))
        .collect();
    named.sort_unstable();
    assert_eq!(named, vec![("兴趣", "母婴"), ("客户等级", "重要客户")]);
    let again = run_import(&server, request("wecom", &contacts)).await;
    let counts = progress(again.last().unwrap());
    assert_eq!(
        (counts.created, counts.interactions_added),
        (0, 0),
        "{counts:?}"
    );
}

fn upload_messages(file_name: &str, contents: &[u8]) -> Vec<pb::UploadImportRequest> {
    use pb::upload_import_request::Part;
    let start = pb::UploadStart {
        request: Some(pb::StartImportRequest {
            importer: "spreadsheet".to_owned(),
            create_missing_tags: true,
            ..pb::StartImportRequest::default()
        }),
        file_name: file_name.to_owned(),
    };
    let mut messages = vec![pb::UploadImportRequest {
        part: Some(Part::Start(start)),
    }];
    for chunk in contents.chunks(64) {
        messages.push(pb::UploadImportRequest {
            part: Some(Part::Chunk(chunk.to_vec())),
        });
    }
    messages
}

async fn uploaded_files_are_imported_and_then_removed(backend: Backend) {
    build_plugins();
    let uploads = tempfile::tempdir().unwrap();
    let server = TestServer::start_with(
        backend,
        Options {
            extra_config: format!(
                "upload_dir = \"{}\"\nmax_upload_mb = 1\n",
                uploads.path().display()
            ),
            ..Options::default()
        },
    )
    .await;
    let messages = upload_messages("客户.csv", CUSTOMERS_CSV.as_bytes());
    let job = server
        .imports()
        .upload_import(tokio_stream::iter(messages.clone()))
        .await
        .unwrap()
        .into_inner();
    let done = watch_to_end(&server, &job.id).await;
    let done = done.last().unwrap();
    assert_eq!(state(done), pb::JobState::Succeeded, "{done:?}");
    assert_eq!((progress(done).created, progress(done).rejected), (2, 2));
    assert_eq!(
        customers_with_phone(&server, "+8613800138000").await.len(),
        1
    );
    assert_eq!(
        std::fs::read_dir(uploads.path()).unwrap().count(),
        0,
        "the uploaded copy is removed when its import ends"
    );

    assert_status(
        server
            .imports_as(As::Writer)
            .upload_import(tokio_stream::iter(messages))
            .await,
        Code::PermissionDenied,
        "",
    );
    let too_big = upload_messages("big.csv", &vec![b'x'; (1 << 20) + 1]);
    assert_status(
        server
            .imports()
            .upload_import(tokio_stream::iter(too_big))
            .await,
        Code::InvalidArgument,
        "larger than",
    );
    let headless = vec![pb::UploadImportRequest {
        part: Some(pb::upload_import_request::Part::Chunk(b"a,b".to_vec())),
    }];
    assert_status(
        server
            .imports()
            .upload_import(tokio_stream::iter(headless))
            .await,
        Code::InvalidArgument,
        "first message",
    );
    assert_eq!(std::fs::read_dir(uploads.path()).unwrap().count(), 0);
}

async fn revert(
    server: &TestServer,
    job_id: &str,
) -> Result<pb::RevertImportResponse, tonic::Status> {
    server
        .imports()
        .revert_import(pb::RevertImportRequest {
            job_id: job_id.to_owned(),
        })
        .await
        .map(tonic::Response::into_inner)
}

async fn a_revert_undoes_an_import_unless_its_customers_changed_since(backend: Backend) {
    let (server, folder) = import_server(backend, 3).await;
    // Before the import: 张伟 exists with another email, and holds 高价值 in an exclusive category.
    let tiers = crate::fixtures::category(&server, "价值等级", true).await;
    let high = crate::fixtures::tag(&server, &tiers.id, "高价值", pb::ValueType::Flag, &[]).await;
    crate::fixtures::tag(&server, &tiers.id, "中价值", pb::ValueType::Flag, &[]).await;
    let zhang = server
        .customers()
        .upsert_customers(pb::UpsertCustomersRequest {
            entries: vec![pb::UpsertCustomerEntry {
                key: Some(pb::ExternalId {
                    channel: "spreadsheet".to_owned(),
                    external_id: "phone:+8613800138000".to_owned(),
                }),
                customer: Some(pb::Customer {
                    name: "张伟".to_owned(),
                    emails: vec!["old@example.com".to_owned()],
                    ..pb::Customer::default()
                }),
            }],
        })
        .await
        .unwrap()
        .into_inner()
        .results[0]
        .customer_id
        .clone();
    crate::fixtures::assign(
        &server,
        &zhang,
        vec![crate::fixtures::assignment(&high.id, "")],
    )
    .await;
    let before = server
        .customers()
        .get_customer(pb::GetCustomerRequest { id: zhang.clone() })
        .await
        .unwrap()
        .into_inner();

    let csv = "客户名称,手机号,邮箱,价值等级\n张伟,13800138000,new@example.com,中价值\n刘洋,13600136000,,\n";
    let path = write_file(folder.path(), "tiers.csv", csv);
    let mut start = request("spreadsheet", &path);
    start
        .options
        .insert("tag_columns".to_owned(), "价值等级".to_owned());
    let done = run_import(&server, start).await;
    let done = done.last().unwrap().clone();
    let counts = progress(&done);
    assert_eq!((counts.created, counts.updated), (1, 1), "{counts:?}");
    let held = crate::fixtures::customer_tags(&server, &zhang).await;
    assert_eq!(
        held.iter().map(|t| t.tag_name.as_str()).collect::<Vec<_>>(),
        vec!["中价值"]
    );

    let undone = revert(&server, &done.id).await.unwrap();
    assert_eq!(state(undone.job.as_ref().unwrap()), pb::JobState::Reverted);
    assert_eq!(
        (undone.customers_deleted, undone.customers_restored),
        (1, 1),
        "{undone:?}"
    );
    assert_eq!(
        (undone.tags_removed, undone.tags_restored),
        (1, 1),
        "{undone:?}"
    );
    assert!(
        customers_with_phone(&server, "+8613600136000")
            .await
            .is_empty(),
        "刘洋 is gone"
    );
    let after = server
        .customers()
        .get_customer(pb::GetCustomerRequest { id: zhang.clone() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (
            after.emails.clone(),
            after.phones.clone(),
            after.name.clone()
        ),
        (
            before.emails.clone(),
            before.phones.clone(),
            before.name.clone()
        ),
        "张伟's fields are as before the import"
    );
    let held = crate::fixtures::customer_tags(&server, &zhang).await;
    assert_eq!(
        held.iter().map(|t| t.tag_name.as_str()).collect::<Vec<_>>(),
        vec!["高价值"],
        "the replaced tag is back"
    );
    assert_status(
        revert(&server, &done.id).await,
        Code::FailedPrecondition,
        "already reverted",
    );

    // Import again, then change a customer it touched: the revert is refused and changes nothing.
    let mut start = request("spreadsheet", &path);
    start
        .options
        .insert("tag_columns".to_owned(), "价值等级".to_owned());
    let again = run_import(&server, start).await;
    let again = again.last().unwrap().clone();
    crate::fixtures::assign(
        &server,
        &zhang,
        vec![crate::fixtures::assignment(&high.id, "")],
    )
    .await;
    assert_status(
        revert(&server, &again.id).await,
        Code::FailedPrecondition,
        &zhang,
    );
    assert_eq!(
        customers_with_phone(&server, "+8613600136000").await.len(),
        1
    );
    assert_status(
        revert(&server, crate::fixtures::UNKNOWN_ID).await,
        Code::NotFound,
        "job",
    );

    // A customer the import created and that was merged away since lives on in the survivor:
    // the revert is refused rather than taking from the survivor what the merge gave it.
    let newcomer = write_file(
        folder.path(),
        "newcomer.csv",
        "客户名称,手机号\n陈静,13500135000\n",
    );
    let third = run_import(&server, request("spreadsheet", &newcomer)).await;
    let third = third.last().unwrap().clone();
    let chen = customers_with_phone(&server, "+8613500135000").await;
    let merged = server
        .dedupe()
        .merge_customers(pb::MergeCustomersRequest {
            customer_ids: vec![zhang.clone(), chen[0].id.clone()],
            survivor_id: zhang.clone(),
            ..pb::MergeCustomersRequest::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_status(
        revert(&server, &third.id).await,
        Code::FailedPrecondition,
        &format!("merged into {zhang} by merge {}", merged.id),
    );
}

/// The plugins' own sample files, as a user would import them.
fn sample(plugin: &str, name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../plugins")
        .join(plugin)
        .join("testdata")
        .join(name)
}

async fn vcards_and_workbooks_are_imported(backend: Backend) {
    let (server, folder) = import_server(backend, 3).await;
    let vcards = folder.path().join("contacts.vcf");
    std::fs::copy(sample("vcard", "contacts-v3.vcf"), &vcards).unwrap();
    let done = run_import(&server, request("vcard", &vcards)).await;
    let done = done.last().unwrap();
    assert_eq!(state(done), pb::JobState::Succeeded, "{done:?}");
    assert!(progress(done).created >= 3, "{done:?}");
    let zhang = customers_with_phone(&server, "+8613800000001").await;
    assert_eq!(zhang.len(), 1);
    assert_eq!(zhang[0].name, "张三");
    assert!(zhang[0].emails.contains(&"zhangsan@example.com".to_owned()));
    let li = customers_with_phone(&server, "+8613900000002").await;
    assert_eq!(li[0].name, "李四", "quoted-printable names are decoded");
    let tags = crate::fixtures::customer_tags(&server, &zhang[0].id).await;
    let mut names: Vec<&str> = tags.iter().map(|t| t.tag_name.as_str()).collect();
    names.sort_unstable();
    assert_eq!(names, vec!["VIP", "老客户"], "CATEGORIES become tags");

    let workbook = folder.path().join("customers.xlsx");
    std::fs::copy(sample("spreadsheet", "customers.xlsx"), &workbook).unwrap();
    let done = run_import(&server, request("spreadsheet", &workbook)).await;
    let done = done.last().unwrap();
    assert_eq!(state(done), pb::JobState::Succeeded, "{done:?}");
    assert!(progress(done).rows_read > 0, "{done:?}");
    assert_eq!(
        progress(done).rows_read,
        progress(done).created
            + progress(done).updated
            + progress(done).unchanged
            + progress(done).rejected,
        "every row is accounted for: {done:?}"
    );
}

async fn a_dry_run_reports_and_writes_nothing(backend: Backend) {
    let (server, folder) = import_server(backend, 3).await;
    let path = write_file(folder.path(), "customers.csv", CUSTOMERS_CSV);
    let updates = run_import(
        &server,
        pb::StartImportRequest {
            dry_run: true,
            ..request("spreadsheet", &path)
        },
    )
    .await;
    let done = updates.last().unwrap();
    assert!(done.dry_run);
    assert_eq!(state(done), pb::JobState::Succeeded);
    let counts = progress(done);
    assert_eq!((counts.created, counts.rejected), (2, 2), "{counts:?}");
    assert_eq!(
        counts.updated + counts.unchanged,
        1,
        "the repeated row: {counts:?}"
    );
    assert_eq!(
        report(&server, &done.id).await.len(),
        2,
        "the report is kept"
    );
    assert!(
        customers_with_phone(&server, "+8613800138000")
            .await
            .is_empty()
    );
    let categories = server
        .tags()
        .list_categories(pb::ListCategoriesRequest::default())
        .await
        .unwrap()
        .into_inner()
        .categories;
    assert!(categories.is_empty(), "no tag was created: {categories:?}");
}

/// With `link_duplicates_at`, a row no stored identity holds but that scores as
/// a stored customer's duplicate updates that customer instead of creating a twin.
async fn rows_that_duplicate_stored_customers_are_linked_not_twinned(backend: Backend) {
    let (server, folder) = import_server(backend, 3).await;
    let stored = server
        .customers()
        .create_customer(pb::CreateCustomerRequest {
            customer: Some(pb::Customer {
                name: "张伟".to_owned(),
                phones: vec!["13800138000".to_owned()],
                birthday: "1990-01-02".to_owned(),
                ..pb::Customer::default()
            }),
        })
        .await
        .unwrap()
        .into_inner();
    let path = write_file(
        folder.path(),
        "linked.csv",
        "客户名称,手机号,邮箱,生日\n张伟,138-0013-8000,zhang.wei@example.com,1990/1/2\n李娜,13900139000,,\n",
    );

    // Without linking, the file's 张伟 would be a second customer.
    let rehearsal = run_import(
        &server,
        pb::StartImportRequest {
            dry_run: true,
            ..request("spreadsheet", &path)
        },
    )
    .await;
    assert_eq!(progress(rehearsal.last().unwrap()).created, 2);

    let linking = pb::StartImportRequest {
        link_duplicates_at: 0.9,
        ..request("spreadsheet", &path)
    };
    let linked = run_import(&server, linking.clone()).await;
    let done = linked.last().unwrap();
    assert_eq!(state(done), pb::JobState::Succeeded);
    assert_eq!(
        (progress(done).created, progress(done).updated),
        (1, 1),
        "李娜 is new; 张伟 is the stored customer"
    );
    let zhang = customers_with_phone(&server, "+8613800138000").await;
    assert_eq!(zhang.len(), 1, "no twin: {zhang:?}");
    assert_eq!(zhang[0].id, stored.id);
    assert_eq!(zhang[0].emails, vec!["zhang.wei@example.com".to_owned()]);
    assert!(
        zhang[0]
            .external_ids
            .iter()
            .any(|id| id.channel == "spreadsheet"),
        "the stored customer took over the row's identity: {:?}",
        zhang[0].external_ids
    );

    // The identity is held now: importing again finds both by it and changes nothing.
    let again = run_import(&server, linking).await;
    let again = progress(again.last().unwrap());
    assert_eq!((again.created, again.updated, again.unchanged), (0, 0, 2));

    for bad in [-0.1, 1.5, f64::NAN] {
        assert_status(
            server
                .imports()
                .start_import(pb::StartImportRequest {
                    link_duplicates_at: bad,
                    ..request("spreadsheet", &path)
                })
                .await,
            Code::InvalidArgument,
            "link_duplicates_at",
        );
    }
}

async fn import_requests_are_checked(backend: Backend) {
    let (server, folder) = import_server(backend, 3).await;
    let path = write_file(folder.path(), "customers.csv", CUSTOMERS_CSV);
    let outside = tempfile::NamedTempFile::new().unwrap();
    assert_status(
        server
            .imports()
            .start_import(request("spreadsheet", outside.path()))
            .await,
        Code::PermissionDenied,
        "outside the folders",
    );
    assert_status(
        server
            .imports()
            .start_import(request("spreadsheet", &folder.path().join("../etc/passwd")))
            .await,
        Code::InvalidArgument,
        "source_path",
    );
    assert_status(
        server.imports().start_import(request("nope", &path)).await,
        Code::NotFound,
        "available: ",
    );
    assert_status(
        server
            .imports_as(As::Writer)
            .start_import(request("spreadsheet", &path))
            .await,
        Code::PermissionDenied,
        "",
    );
    let importers = server
        .imports_as(As::Reader)
        .list_importers(pb::ListImportersRequest {})
        .await
        .unwrap()
        .into_inner()
        .importers;
    let spreadsheet = importers.iter().find(|i| i.name == "spreadsheet").unwrap();
    assert_eq!(spreadsheet.channel, "spreadsheet");
    assert!(spreadsheet.error.is_empty());
    assert!(
        spreadsheet
            .options
            .iter()
            .any(|o| o.name == "tag_separators")
    );
    let wrong_abi = importers
        .iter()
        .find(|i| i.path.contains("test_wrong_abi"))
        .unwrap();
    assert!(wrong_abi.error.contains("999"), "{wrong_abi:?}");
    assert_status(
        server
            .imports()
            .start_import(request(&wrong_abi.name, &path))
            .await,
        Code::FailedPrecondition,
        "cannot be used",
    );
    assert_status(
        server
            .jobs()
            .get_job(pb::GetJobRequest {
                job_id: crate::fixtures::UNKNOWN_ID.to_owned(),
            })
            .await,
        Code::NotFound,
        "job_id",
    );
}

async fn broken_plugins_fail_their_job_not_the_server(backend: Backend) {
    let (server, folder) = import_server(backend, 3).await;
    let path = write_file(folder.path(), "anything.txt", "x");
    for (mode, expected) in [
        ("segfault", "SIGSEGV"),
        ("abort", "SIGABRT"),
        ("panic", "panicked"),
        ("hang", "no progress"),
    ] {
        let mut start = request("test-crash", &path);
        start.options.insert("mode".to_owned(), mode.to_owned());
        let updates = run_import(&server, start).await;
        let done = updates.last().unwrap();
        assert_eq!(state(done), pb::JobState::Failed, "{mode}: {done:?}");
        assert!(done.error.contains(expected), "{mode}: {}", done.error);
    }
    // The server still serves.
    server
        .tags()
        .list_categories(pb::ListCategoriesRequest::default())
        .await
        .unwrap();
}

async fn a_running_import_can_be_cancelled(backend: Backend) {
    let (server, folder) = import_server(backend, 3).await;
    let path = write_file(folder.path(), "anything.txt", "x");
    let mut start = request("test-crash", &path);
    start.options.insert("mode".to_owned(), "hang".to_owned());
    let job = server
        .imports()
        .start_import(start)
        .await
        .unwrap()
        .into_inner();
    assert_eq!(state(&job), pb::JobState::Running);
    server
        .jobs()
        .cancel_job(pb::CancelJobRequest {
            job_id: job.id.clone(),
        })
        .await
        .unwrap();
    let done = watch_to_end(&server, &job.id).await;
    assert_eq!(state(done.last().unwrap()), pb::JobState::Cancelled);
    assert_status(
        server
            .jobs()
            .cancel_job(pb::CancelJobRequest { job_id: job.id })
            .await,
        Code::FailedPrecondition,
        "already finished",
    );
}

async fn an_import_interrupted_by_a_restart_is_marked_failed(backend: Backend) {
    // Long enough that the job is still running when the server stops.
    let (server, folder) = import_server(backend, 600).await;
    let path = write_file(folder.path(), "anything.txt", "x");
    let mut start = request("test-crash", &path);
    start.options.insert("mode".to_owned(), "hang".to_owned());
    let job = server
        .imports()
        .start_import(start)
        .await
        .unwrap()
        .into_inner();
    let (_, database) = server.terminate().await;
    let config = format!("import_dirs = [\"{}\"]\n", folder.path().display());
    let server = TestServer::start_on(
        database,
        Options {
            extra_config: config,
            ..Options::default()
        },
    )
    .await;
    let job = server
        .jobs()
        .get_job(pb::GetJobRequest { job_id: job.id })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(state(&job), pb::JobState::Failed);
    assert!(job.error.contains("interrupted"), "{}", job.error);
}

async fn libraries_that_are_not_plugins_are_listed_with_the_reason(backend: Backend) {
    build_plugins();
    let plugins = tempfile::tempdir().unwrap();
    let built = Path::new(crate::harness::tagd_binary())
        .parent()
        .unwrap()
        .join("libtagd_plugin_spreadsheet.so");
    std::fs::copy(&built, plugins.path().join("libtagd_plugin_spreadsheet.so")).unwrap();
    // Random bytes, an empty file, and a real shared library that is no plugin.
    std::fs::write(plugins.path().join("libjunk.so"), b"\x7fELF but not really").unwrap();
    std::fs::write(plugins.path().join("libempty.so"), b"").unwrap();
    std::fs::copy(
        "/lib/x86_64-linux-gnu/libm.so.6",
        plugins.path().join("libnot_a_plugin.so"),
    )
    .unwrap();
    let folder = tempfile::tempdir().unwrap();
    let server = TestServer::start_with(
        backend,
        Options {
            extra_config: format!(
                "plugins_dir = \"{}\"\nimport_dirs = [\"{}\"]\n",
                plugins.path().display(),
                folder.path().display()
            ),
            ..Options::default()
        },
    )
    .await;
    let importers = server
        .imports()
        .list_importers(pb::ListImportersRequest {})
        .await
        .unwrap()
        .into_inner()
        .importers;
    assert_eq!(importers.len(), 4, "{importers:#?}");
    for file in ["libjunk.so", "libempty.so", "libnot_a_plugin.so"] {
        let listed = importers.iter().find(|i| i.path.ends_with(file)).unwrap();
        assert!(
            !listed.error.is_empty(),
            "{file} is listed as unusable: {listed:?}"
        );
    }
    let not_a_plugin = importers
        .iter()
        .find(|i| i.path.ends_with("libnot_a_plugin.so"))
        .unwrap();
    assert!(
        not_a_plugin.error.contains("symbol") || not_a_plugin.error.contains("tagd_plugin"),
        "{not_a_plugin:?}"
    );
    // The good plugin still works beside them, and the server still serves.
    let path = write_file(
        folder.path(),
        "one.csv",
        "客户名称,手机号\n陈静,13500135000\n",
    );
    let done = run_import(&server, request("spreadsheet", &path)).await;
    assert_eq!(state(done.last().unwrap()), pb::JobState::Succeeded);
    assert_eq!(
        customers_with_phone(&server, "+8613500135000").await.len(),
        1
    );
}
