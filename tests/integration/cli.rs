//! Scenarios for `tagctl`, the admin CLI: it runs as a subprocess against a real
//! `tagd` and is judged only by its stdout, stderr and exit code.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

use serde_json::Value;

use crate::fixtures::UNKNOWN_ID;
use crate::harness::{
    ADMIN_KEY, Backend, Options, READER_KEY, TestServer, WRITER_KEY, backend_tests, build_plugins,
    tagd_binary,
};

backend_tests!(
    catalogue_customers_and_tagging_round_trip,
    exit_codes_tell_scripts_what_went_wrong,
    files_are_upserted_and_batch_assigned_in_chunks,
    settings_come_from_flags_then_env_then_file,
    imports_are_started_watched_and_reported,
    jobs_are_listed_watched_and_cancelled,
    duplicates_are_found_merged_reviewed_and_undone,
    purchases_interactions_and_metrics_round_trip,
    segments_are_created_counted_exported_and_compared,
    rules_are_created_previewed_run_and_installed,
);

async fn rules_are_created_previewed_run_and_installed(backend: Backend) {
    let server = CliServer::start(backend).await;
    let admin = server.as_key(ADMIN_KEY);
    let category = admin.json(&["categories", "create", "地域"]).await;
    let beijing_tag = admin
        .json(&[
            "tags",
            "create",
            "--category",
            &text(&category["id"]),
            "北京客户",
        ])
        .await;
    let mut ids = Vec::new();
    for (name, province) in [("张伟", "北京"), ("李娜", "北京"), ("王芳", "上海")] {
        let customer = admin
            .json(&["customers", "create", name, "--province", province])
            .await;
        ids.push(text(&customer["id"]));
    }
    let rule = admin
        .json(&[
            "rules",
            "create",
            "北京客户",
            "--tag",
            &text(&beijing_tag["id"]),
            "--condition",
            "province = \"北京\"",
            "--every",
            "3600",
        ])
        .await;
    assert_eq!(rule["interval_seconds"], 3600);
    let rule_id = text(&rule["id"]);
    let preview = admin.json(&["rules", "preview", &rule_id]).await;
    assert_eq!(
        (preview["matched"].clone(), preview["gain"].clone()),
        (2.into(), 2.into())
    );
    let runs = admin.json(&["rules", "run", &rule_id]).await;
    assert_eq!(runs[0]["gained"], 2, "{runs}");
    assert_eq!(runs[0]["state"], "succeeded");
    let table = admin.ok(&["rules", "list"]).await;
    assert!(
        table.contains("every 1h") && table.contains("succeeded +2"),
        "{table}"
    );
    let history = admin.ok(&["rules", "runs", &rule_id]).await;
    assert!(history.contains("manual"), "{history}");
    let tags = admin.ok(&["tagging", "list", &ids[0]]).await;
    assert!(tags.contains("北京客户"), "{tags}");
    let disabled = admin
        .json(&["rules", "update", &rule_id, "--enabled", "false"])
        .await;
    assert_eq!(disabled["enabled"], false);
    admin
        .run(&["rules", "update", &rule_id])
        .await
        .assert_failed(1, "error: nothing to change");
    admin
        .run(&["rules", "install", "value-tier"])
        .await
        .assert_failed(2, "error: FAILED_PRECONDITION");
    let installed = admin.json(&["rules", "install", "lifecycle"]).await;
    assert_eq!(installed.as_array().unwrap().len(), 5);
    server
        .as_key(READER_KEY)
        .run(&["rules", "run", &rule_id])
        .await
        .assert_failed(3, "error: PERMISSION_DENIED");
    let deleted = admin
        .json(&["rules", "delete", &rule_id, "--remove-assignments"])
        .await;
    assert_eq!(deleted["removed"], 2);
}

async fn segments_are_created_counted_exported_and_compared(backend: Backend) {
    let server = CliServer::start(backend).await;
    let admin = server.as_key(ADMIN_KEY);
    let category = admin.json(&["categories", "create", "风险"]).await;
    let churn = admin
        .json(&[
            "tags",
            "create",
            "--category",
            &text(&category["id"]),
            "流失风险",
        ])
        .await;
    let mut ids = Vec::new();
    for (name, province) in [("张伟", "北京"), ("李娜", "北京"), ("王芳", "上海")] {
        let customer = admin
            .json(&["customers", "create", name, "--province", province])
            .await;
        ids.push(text(&customer["id"]));
    }
    for id in &ids[..2] {
        admin
            .ok(&["tagging", "assign", id, &text(&churn["id"])])
            .await;
    }
    let valid = admin
        .ok(&[
            "segments",
            "validate",
            "--condition",
            "has_tag(\"流失风险\") and province = \"北京\"",
        ])
        .await;
    assert!(
        valid.contains("valid: has_tag(\"流失风险\") AND province = \"北京\""),
        "{valid}"
    );
    admin
        .run(&[
            "segments",
            "validate",
            "--condition",
            "has_tag(\"流失风险\") AND",
        ])
        .await
        .assert_failed(
            2,
            "error: INVALID_ARGUMENT: condition.text: line 1, column 20: expected a predicate",
        );
    let file = server.file("beijing.cond", "province = \"北京\"\n");
    let beijing = admin
        .json(&[
            "segments",
            "create",
            "北京",
            "--condition-file",
            &file.display().to_string(),
        ])
        .await;
    assert_eq!(beijing["kind"], "dynamic");
    let churned = admin
        .json(&[
            "segments",
            "create",
            "流失",
            "--condition",
            "has_tag(\"流失风险\")",
        ])
        .await;
    let counted = admin
        .json(&["segments", "count", &text(&beijing["id"])])
        .await;
    assert_eq!(counted["count"], 2);
    assert_eq!(counted["from_index"], true);
    let preview = admin
        .ok(&["segments", "count", "--condition", "province = \"上海\""])
        .await;
    assert!(preview.starts_with("1 customers"), "{preview}");
    let members = admin
        .json(&["segments", "members", &text(&beijing["id"])])
        .await;
    assert_eq!(members.as_array().unwrap().len(), 2);
    let streamed = admin
        .json(&["segments", "members", "--all", &text(&beijing["id"])])
        .await;
    assert_eq!(
        streamed, members,
        "one streamed evaluation lists what the pages do"
    );
    let listed = admin.ok(&["segments", "list"]).await;
    assert!(
        listed.contains("北京") && listed.contains("流失"),
        "{listed}"
    );

    let out = server.dir.path().join("流失.csv");
    admin
        .ok(&[
            "segments",
            "export",
            &text(&churned["id"]),
            "--columns",
            "name,province,tags",
            "--chinese",
            "--output",
            &out.display().to_string(),
        ])
        .await;
    let csv = std::fs::read_to_string(&out).unwrap();
    let csv = csv.trim_start_matches('\u{feff}');
    assert!(csv.starts_with("姓名,省份,标签\r\n"), "{csv}");
    assert!(csv.contains("张伟,北京,风险/流失风险"), "{csv}");
    let sheet = server.dir.path().join("流失.xlsx");
    admin
        .ok(&[
            "segments",
            "export",
            &text(&churned["id"]),
            "--format",
            "xlsx",
            "-o",
            &sheet.display().to_string(),
        ])
        .await;
    assert!(std::fs::read(&sheet).unwrap().starts_with(b"PK\x03\x04"));
    let stdout = admin
        .ok(&[
            "segments",
            "export",
            &text(&beijing["id"]),
            "--columns",
            "id",
        ])
        .await;
    assert_eq!(stdout.lines().count(), 3, "{stdout}");

    let compared = admin
        .json(&[
            "segments",
            "compare",
            &text(&beijing["id"]),
            &text(&churned["id"]),
        ])
        .await;
    assert_eq!(compared["all"]["count"], 2);
    let frozen = admin
        .json(&[
            "segments",
            "snapshot",
            &text(&beijing["id"]),
            "--name",
            "北京 快照",
        ])
        .await;
    assert_eq!(frozen["kind"], "static");
    admin
        .run(&["segments", "delete", UNKNOWN_ID])
        .await
        .assert_failed(2, "error: NOT_FOUND: ");
    admin
        .ok(&["segments", "delete", &text(&frozen["id"])])
        .await;
    server
        .as_key(READER_KEY)
        .run(&[
            "segments",
            "create",
            "x",
            "--condition",
            "province = \"北京\"",
        ])
        .await
        .assert_failed(3, "error: PERMISSION_DENIED");
}

async fn catalogue_customers_and_tagging_round_trip(backend: Backend) {
    let server = CliServer::start(backend).await;
    let admin = server.as_key(ADMIN_KEY);

    let category = admin
        .json(&["categories", "create", "价值等级", "--exclusive"])
        .await;
    assert_eq!(category["name"], "价值等级");
    assert_eq!(category["exclusive"], true);
    let category_id = text(&category["id"]);

    let high = admin
        .json(&["tags", "create", "--category", &category_id, "高价值"])
        .await;
    assert_eq!(high["value_type"], "flag");
    let spend = admin
        .json(&[
            "tags",
            "create",
            "--category",
            &category_id,
            "年消费额",
            "--type",
            "number",
            "--validity",
            "30d",
        ])
        .await;
    assert_eq!(spend["default_validity_secs"], 30 * 86_400);

    let zhang = admin
        .json(&[
            "customers",
            "create",
            "张伟",
            "--phone",
            "138-0013-8000",
            "--province",
            "北京",
            "--attr",
            "会员等级=金卡",
        ])
        .await;
    assert_eq!(zhang["phones"][0], "+8613800138000");
    assert_eq!(zhang["attributes"]["会员等级"], "金卡");
    let zhang_id = text(&zhang["id"]);

    // The category is exclusive: 年消费额 replaces 高价值.
    let first = admin
        .ok(&["tagging", "assign", &zhang_id, &text(&high["id"])])
        .await;
    assert!(first.contains("1 assigned"), "{first}");
    let second = admin
        .json(&[
            "tagging",
            "assign",
            &zhang_id,
            &format!("{}=05000", text(&spend["id"])),
            "--source",
            "import",
            "--source-ref",
            "job-7",
        ])
        .await;
    assert_eq!(
        (second["assigned"].as_u64(), second["replaced"].as_u64()),
        (Some(1), Some(1))
    );

    let held = admin.json(&["tagging", "list", &zhang_id]).await;
    let held = held.as_array().unwrap();
    assert_eq!(held.len(), 1);
    assert_eq!(
        (
            &held[0]["tag_name"],
            &held[0]["value"],
            &held[0]["source"],
            &held[0]["assigned_by"]
        ),
        (
            &Value::from("年消费额"),
            &Value::from("5000"),
            &Value::from("import"),
            &Value::from("ops")
        )
    );
    assert!(
        held[0]["expires_at"].is_string(),
        "the default validity applies"
    );

    let stats = admin
        .json(&["tags", "stats", "--category", &category_id])
        .await;
    let spent = stats
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["tag"] == "年消费额")
        .unwrap();
    assert_eq!(spent["customers"], 1, "{stats}");
    assert_eq!(spent["histogram"][0][2], 1, "{stats}");
    let table = admin
        .ok(&["tags", "stats", "--tag", &text(&spend["id"])])
        .await;
    assert!(
        table.contains("年消费额") && table.contains("import: 1"),
        "{table}"
    );

    let table = admin.ok(&["tagging", "history", &zhang_id]).await;
    for needle in [
        "ACTION",
        "年消费额",
        "高价值",
        "replace",
        "import (job-7)",
        "ops",
    ] {
        assert!(table.contains(needle), "{needle:?} missing from\n{table}");
    }
    assert_aligned(&table);

    let history = admin.json(&["tagging", "history", &zhang_id]).await;
    let history = history.as_array().unwrap();
    let mut actions: Vec<&str> = history
        .iter()
        .map(|entry| entry["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions.pop(),
        Some("assign"),
        "oldest last: 高价值 assigned"
    );
    actions.sort_unstable();
    assert_eq!(
        actions,
        ["assign", "replace"],
        "one transaction: 年消费额 replaced 高价值"
    );
    let spend_entry = history
        .iter()
        .find(|entry| entry["action"] == "assign" && entry["tag_name"] == "年消费额")
        .unwrap();
    assert_eq!(spend_entry["new_value"], "5000");
    assert_eq!(spend_entry["category_name"], "价值等级");
    assert_eq!(spend_entry["source_ref"], "job-7");
    assert_eq!(spend_entry["customer_id"], zhang_id.as_str());
    let newest_only = admin
        .json(&["tagging", "history", &zhang_id, "--limit", "1"])
        .await;
    assert_eq!(newest_only.as_array().unwrap().len(), 1);

    // Lists page through everything; filters and --limit narrow them.
    let reader = server.as_key(READER_KEY);
    assert_eq!(
        reader
            .json(&["tags", "list"])
            .await
            .as_array()
            .unwrap()
            .len(),
        2
    );
    let one = reader.json(&["tags", "list", "--limit", "1"]).await;
    assert_eq!(one.as_array().unwrap().len(), 1);
    let by_tag = reader
        .json(&["customers", "list", "--tag", &text(&spend["id"])])
        .await;
    assert_eq!(by_tag[0]["id"], zhang_id.as_str());
    let by_phone = reader
        .json(&[
            "customers",
            "list",
            "--phone",
            "13800138000",
            "--name",
            "张",
        ])
        .await;
    assert_eq!(by_phone.as_array().unwrap().len(), 1);
    let categories = reader.ok(&["categories", "list"]).await;
    assert!(categories.contains("价值等级"), "{categories}");
    assert_aligned(&categories);

    let renamed = admin
        .json(&[
            "customers",
            "update",
            &zhang_id,
            "--city",
            "海淀",
            "--clear",
            "attributes",
        ])
        .await;
    assert_eq!(renamed["address"]["city"], "海淀");
    assert_eq!(
        renamed["address"]["province"], "北京",
        "other address parts stay"
    );
    assert_eq!(renamed["attributes"], serde_json::json!({}));

    let removed = admin
        .json(&["tagging", "remove", &zhang_id, &text(&spend["id"])])
        .await;
    assert_eq!(removed["removed"], 1);
    let deleted = admin
        .json(&["categories", "delete", &category_id, "--force"])
        .await;
    assert_eq!(deleted["deleted_tags"], 2);
}

async fn exit_codes_tell_scripts_what_went_wrong(backend: Backend) {
    let server = CliServer::start(backend).await;

    let stranger = server
        .as_key("not-a-configured-key-at-all")
        .run(&["tags", "list"])
        .await;
    stranger.assert_failed(3, "error: UNAUTHENTICATED: ");
    assert!(
        !stranger.stderr.contains("not-a-configured-key"),
        "the key is never printed"
    );
    let nobody = server.run_with(&[], &["tags", "list"]).await;
    nobody.assert_failed(3, "error: UNAUTHENTICATED: ");
    let reader = server.as_key(READER_KEY);
    reader
        .run(&["categories", "create", "兴趣"])
        .await
        .assert_failed(3, "error: PERMISSION_DENIED: ");

    let writer = server.as_key(WRITER_KEY);
    writer
        .run(&["tags", "get", UNKNOWN_ID])
        .await
        .assert_failed(2, "error: NOT_FOUND: ");
    writer.ok(&["categories", "create", "兴趣"]).await;
    writer
        .run(&["categories", "create", "兴趣"])
        .await
        .assert_failed(2, "error: ALREADY_EXISTS: ");
    writer
        .run(&["customers", "create", "李娜", "--phone", "not a phone"])
        .await
        .assert_failed(2, "error: INVALID_ARGUMENT: ");

    let unreachable = server
        .run_with(
            &[("TAGCTL_SERVER", "http://127.0.0.1:1")],
            &["tags", "list"],
        )
        .await;
    unreachable.assert_failed(
        4,
        "error: UNAVAILABLE: cannot connect to http://127.0.0.1:1",
    );

    writer
        .run(&["tags", "list", "--bogus"])
        .await
        .assert_failed(1, "error: unexpected argument '--bogus'");
    writer
        .run(&["tags", "list", "--limit", "0"])
        .await
        .assert_failed(1, "error: invalid value '0'");
    writer
        .run(&[
            "customers",
            "upsert",
            "--file",
            "/nonexistent/customers.jsonl",
        ])
        .await
        .assert_failed(1, "error: cannot read /nonexistent/customers.jsonl");
    writer
        .run(&["categories", "update", UNKNOWN_ID])
        .await
        .assert_failed(1, "error: nothing to update");
    let help = writer.run(&["--help"]).await;
    assert_eq!(help.code, 0);
    assert!(help.stdout.contains("Exit codes:"), "{}", help.stdout);
}

async fn files_are_upserted_and_batch_assigned_in_chunks(backend: Backend) {
    let server = CliServer::start(backend).await;
    let admin = server.as_key(ADMIN_KEY);
    let customers = server.file(
        "customers.jsonl",
        r#"{"channel": "shop", "external_id": "u-1", "name": "张伟", "phones": ["13800138000"]}
{"channel": "shop", "external_id": "u-2", "name": "李娜", "gender": "female"}

{"channel": "shop", "external_id": "u-3", "name": "王芳", "address": {"province": "广东", "city": "深圳"}}
"#,
    );
    let upsert = [
        "customers",
        "upsert",
        "--file",
        customers.to_str().unwrap(),
        "--chunk-size",
        "2",
    ];
    let first = admin.json(&upsert).await;
    assert_eq!(
        (first["created"].as_u64(), first["calls"].as_u64()),
        (Some(3), Some(2))
    );
    assert_eq!(
        first["results"][2]["record"],
        format!("{}:4", customers.display())
    );
    let again = admin.json(&upsert).await;
    assert_eq!(
        again["unchanged"], 3,
        "sending the same file twice changes nothing"
    );
    let ids: Vec<String> = first["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| text(&r["customer_id"]))
        .collect();

    let category = admin.json(&["categories", "create", "生命周期"]).await;
    let stage = admin
        .json(&[
            "tags",
            "create",
            "--category",
            &text(&category["id"]),
            "阶段",
            "--type",
            "enum",
            "--enum-value",
            "潜在客户",
            "--enum-value",
            "老客户",
        ])
        .await;
    let stage_id = text(&stage["id"]);
    let lines: Vec<String> = ids
        .iter()
        .map(|id| {
            format!(r#"{{"customer_id": "{id}", "tag_id": "{stage_id}", "value": "老客户"}}"#)
        })
        .collect();
    let batch = server.file("assign.json", &format!("[{}]", lines.join(",\n")));
    let assigned = admin
        .json(&[
            "tagging",
            "batch-assign",
            "--file",
            batch.to_str().unwrap(),
            "--source",
            "import",
        ])
        .await;
    assert_eq!(
        (assigned["assigned"].as_u64(), assigned["records"].as_u64()),
        (Some(3), Some(3))
    );
    let held = admin.json(&["tagging", "list", &ids[1]]).await;
    assert_eq!(
        (&held[0]["value"], &held[0]["source"]),
        (&Value::from("老客户"), &Value::from("import"))
    );

    // A record the server refuses is named by its line; earlier chunks stay applied.
    let line = |customer: &str, value: &str| {
        format!(r#"{{"customer_id": "{customer}", "tag_id": "{stage_id}", "value": "{value}"}}"#)
    };
    let refused = server.file(
        "refused.jsonl",
        &[
            line(&ids[0], "潜在客户"),
            line(&ids[2], "潜在客户"),
            line(&ids[2], "老客户"),
            line(&ids[1], "VIP"),
        ]
        .join("\n"),
    );
    let refused_path = refused.to_str().unwrap();
    let failed = admin
        .run(&[
            "tagging",
            "batch-assign",
            "--file",
            refused_path,
            "--chunk-size",
            "2",
        ])
        .await;
    failed.assert_failed(2, "error: INVALID_ARGUMENT: ");
    let context = format!(
        "(in chunk 2 of 2, records {refused_path}:3 to {refused_path}:4; \
         the failing record is {refused_path}:4; the 1 chunk(s) before it were applied)"
    );
    assert!(failed.stderr.contains(&context), "{}", failed.stderr);
    let first = admin.json(&["tagging", "list", &ids[0]]).await;
    assert_eq!(first[0]["value"], "潜在客户", "the first chunk was applied");
    let third = admin.json(&["tagging", "list", &ids[2]]).await;
    assert_eq!(
        third[0]["value"], "潜在客户",
        "the refused chunk changed nothing"
    );

    // A malformed record is caught before anything is sent.
    let typo = server.file(
        "typo.jsonl",
        r#"{"channel": "shop", "external_id": "u-9", "nmae": "赵六"}"#,
    );
    let typo_run = admin
        .run(&["customers", "upsert", "--file", typo.to_str().unwrap()])
        .await;
    typo_run.assert_failed(
        1,
        &format!("error: {}:1: unknown field `nmae`", typo.display()),
    );
}

async fn settings_come_from_flags_then_env_then_file(backend: Backend) {
    let server = CliServer::start(backend).await;
    let file = server.file(
        "tagctl.toml",
        &format!("server = \"{}\"\nkey = \"{READER_KEY}\"\n", server.url),
    );
    let config = file.to_str().unwrap();

    // The file alone: a reader may list but not create.
    let from_file = server
        .run_with(
            &[("TAGCTL_SERVER", "")],
            &["--config", config, "categories", "list"],
        )
        .await;
    assert_eq!(from_file.code, 0, "{}", from_file.stderr);
    server
        .run_with(&[], &["--config", config, "categories", "create", "地区"])
        .await
        .assert_failed(3, "error: PERMISSION_DENIED: ");

    // The environment beats the file; a flag beats the environment.
    let env_key = [("TAGCTL_KEY", WRITER_KEY)];
    let created = server
        .run_with(
            &env_key,
            &["--config", config, "--json", "categories", "create", "地区"],
        )
        .await;
    assert_eq!(created.code, 0, "{}", created.stderr);
    server
        .run_with(
            &env_key,
            &[
                "--config",
                config,
                "--key",
                "flag-key-is-wrong-000",
                "categories",
                "list",
            ],
        )
        .await
        .assert_failed(3, "error: UNAUTHENTICATED: ");

    // Without --config, ~/.config/tagctl/config.toml is read when present.
    let home = server.dir.path().join("home");
    std::fs::create_dir_all(home.join(".config/tagctl")).unwrap();
    std::fs::copy(&file, home.join(".config/tagctl/config.toml")).unwrap();
    let from_home = server
        .run_with(
            &[("HOME", home.to_str().unwrap())],
            &["--json", "categories", "list"],
        )
        .await;
    assert_eq!(from_home.code, 0, "{}", from_home.stderr);
    let listed: Value = serde_json::from_str(&from_home.stdout).unwrap();
    assert_eq!(listed[0]["name"], "地区");
}

/// A customer sheet whose third line has a phone number too short to be one.
const IMPORT_CSV: &str = "\
客户名称,手机号,邮箱,标签
张伟,138-0013-8000,zhang.wei@example.com,VIP
王芳,12345,,老客户
李娜,13900139000,,VIP；老客户
";

async fn imports_are_started_watched_and_reported(backend: Backend) {
    let server = CliServer::start_importing(backend, 3).await;
    let admin = server.as_key(ADMIN_KEY);
    let folder = server.imports();
    std::fs::write(folder.join("customers.csv"), IMPORT_CSV).unwrap();

    let importers = server.as_key(READER_KEY).json(&["importers"]).await;
    let spreadsheet = importers
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["name"] == "spreadsheet")
        .unwrap_or_else(|| panic!("no spreadsheet importer in {importers}"));
    assert_eq!(spreadsheet["usable"], true);
    assert!(
        spreadsheet["options"]
            .as_array()
            .unwrap()
            .iter()
            .any(|o| o["name"] == "tag_separators"),
        "{spreadsheet}"
    );
    let verbose = admin.ok(&["importers", "--verbose"]).await;
    for needle in ["spreadsheet", "FILE TYPES", "tag_separators", "ok"] {
        assert!(
            verbose.contains(needle),
            "{needle:?} missing from\n{verbose}"
        );
    }

    // FILE is relative to tagctl's directory; the server gets it made absolute.
    let started = admin
        .run_in(
            &folder,
            &[
                "--json",
                "import",
                "spreadsheet",
                "customers.csv",
                "--create-missing-tags",
            ],
        )
        .await;
    assert_eq!(started.code, 0, "{}", started.stderr);
    assert!(
        started.stderr.is_empty(),
        "no progress bar with --json or off a terminal: {}",
        started.stderr
    );
    let job: Value = serde_json::from_str(&started.stdout).unwrap();
    assert_eq!(job["state"], "succeeded", "{job}");
    assert_eq!(job["kind"], "import");
    assert_eq!(
        job["subject"],
        format!("spreadsheet: {}", folder.join("customers.csv").display())
    );
    let counts = &job["progress"];
    assert_eq!(
        (
            counts["rows_read"].as_u64(),
            counts["created"].as_u64(),
            counts["rejected"].as_u64()
        ),
        (Some(3), Some(2), Some(1)),
        "{job}"
    );
    assert_eq!(counts["tags_added"], 3, "VIP, then VIP and 老客户: {job}");
    let job_id = text(&job["id"]);

    let report = admin.json(&["import-report", &job_id]).await;
    assert_eq!(report.as_array().unwrap().len(), 1, "{report}");
    assert_eq!(
        (
            &report[0]["row"],
            &report[0]["field"],
            &report[0]["raw_value"]
        ),
        (
            &Value::from(3),
            &Value::from("phones[0]"),
            &Value::from("12345")
        ),
        "{report}"
    );
    let report_table = admin.ok(&["import-report", &job_id]).await;
    for needle in ["ROW", "RAW VALUE", "phones[0]", "12345"] {
        assert!(
            report_table.contains(needle),
            "{needle:?} missing from\n{report_table}"
        );
    }
    assert!(
        report_table.lines().any(|line| line.starts_with("│ 3 ")),
        "{report_table}"
    );

    // For people: the summary, the rejected row and where the full report is. The
    // customers exist now, so the same file changes nothing but still rejects 王芳.
    let again = admin
        .run(&[
            "import",
            "spreadsheet",
            folder.join("customers.csv").to_str().unwrap(),
            "--create-missing-tags",
        ])
        .await;
    assert_eq!(
        again.code, 0,
        "rejected rows are not a failure: {}",
        again.stderr
    );
    assert!(again.stderr.is_empty(), "{}", again.stderr);
    let summary = &again.stdout;
    let second_id = summary
        .lines()
        .find_map(|line| line.strip_prefix("Every rejected row: tagctl import-report "))
        .unwrap_or_else(|| panic!("no import-report hint in\n{summary}"))
        .trim()
        .to_owned();
    assert_ne!(second_id, job_id);
    for (field, value) in [
        ("state", "succeeded"),
        ("created", "0"),
        ("unchanged", "2"),
        ("rejected", "1"),
        ("job", second_id.as_str()),
    ] {
        assert_eq!(record_field(summary, field), value, "{field} in\n{summary}");
    }
    assert!(!record_field(summary, "duration").is_empty(), "{summary}");
    for needle in [
        "1 row was rejected (the import still succeeded",
        "phones[0]",
        "12345",
    ] {
        assert!(
            summary.contains(needle),
            "{needle:?} missing from\n{summary}"
        );
    }

    // The first import is undone (the second changed nothing); undoing it twice is refused.
    let undone = admin.json(&["import-revert", &job_id]).await;
    assert_eq!(undone["customers_deleted"], 2, "{undone}");
    assert_eq!(
        undone["tags_removed"], 0,
        "their tags went with them: {undone}"
    );
    let refused = admin.run(&["import-revert", &job_id]).await;
    assert_eq!(refused.code, 2, "{}", refused.stderr);
    assert!(
        refused.stderr.contains("already reverted"),
        "{}",
        refused.stderr
    );

    // A plugin that crashes fails its job: exit 2 with the job's error.
    std::fs::write(folder.join("anything.txt"), "x").unwrap();
    let crashed = admin
        .run_in(
            &folder,
            &[
                "import",
                "test-crash",
                "anything.txt",
                "--option",
                "mode=segfault",
            ],
        )
        .await;
    assert_eq!(crashed.code, 2, "{}\n{}", crashed.stdout, crashed.stderr);
    assert!(
        crashed.stderr.starts_with("error: job ") && crashed.stderr.contains("SIGSEGV"),
        "{}",
        crashed.stderr
    );
    assert!(crashed.stdout.contains("failed"), "{}", crashed.stdout);

    // Refusals keep the usual exit codes.
    admin
        .run_in(&folder, &["import", "nope", "customers.csv"])
        .await
        .assert_failed(2, "error: NOT_FOUND: ");
    admin
        .run_in(&folder, &["import", "spreadsheet", "missing.csv"])
        .await
        .assert_failed(2, "error: INVALID_ARGUMENT: ");
    server
        .as_key(WRITER_KEY)
        .run_in(&folder, &["import", "spreadsheet", "customers.csv"])
        .await
        .assert_failed(3, "error: PERMISSION_DENIED: ");
    admin
        .run(&["import", "spreadsheet", "x.csv", "-o", "a=1", "-o", "a=2"])
        .await
        .assert_failed(1, "error: --option a is given twice");
}

async fn jobs_are_listed_watched_and_cancelled(backend: Backend) {
    // A stall limit long enough that only the cancel ends the hanging job.
    let server = CliServer::start_importing(backend, 60).await;
    let admin = server.as_key(ADMIN_KEY);
    let folder = server.imports();
    let sheet = folder.join("customers.csv");
    std::fs::write(&sheet, IMPORT_CSV).unwrap();
    let sheet = sheet.to_str().unwrap();
    let anything = folder.join("anything.txt");
    std::fs::write(&anything, "x").unwrap();
    let anything = anything.to_str().unwrap();

    // --detach prints only the id; `jobs watch` follows the job to its end.
    let detached = admin
        .ok(&[
            "import",
            "spreadsheet",
            sheet,
            "--create-missing-tags",
            "--detach",
        ])
        .await;
    let imported = detached.trim().to_owned();
    assert!(
        !imported.is_empty() && !imported.contains(' '),
        "{detached}"
    );
    let watched = admin.json(&["jobs", "watch", &imported]).await;
    assert_eq!(
        (&watched["state"], &watched["progress"]["created"]),
        (&Value::from("succeeded"), &Value::from(2)),
        "{watched}"
    );
    let watched_table = admin.ok(&["jobs", "watch", &imported]).await;
    assert!(
        watched_table.contains(&format!("tagctl import-report {imported}")),
        "{watched_table}"
    );

    let crashed = admin
        .run(&[
            "import",
            "test-crash",
            anything,
            "-o",
            "mode=segfault",
            "--detach",
        ])
        .await;
    assert_eq!(crashed.code, 0, "detached: the crash is not seen yet");
    let crashed = crashed.stdout.trim().to_owned();
    let failed = admin.run(&["jobs", "watch", &crashed]).await;
    assert_eq!(failed.code, 2, "{}", failed.stderr);
    assert!(failed.stderr.contains("SIGSEGV"), "{}", failed.stderr);
    let got = admin.json(&["jobs", "get", &crashed]).await;
    assert_eq!(got["state"], "failed");
    assert!(text(&got["error"]).contains("SIGSEGV"), "{got}");

    let listed = server.as_key(READER_KEY).json(&["jobs", "list"]).await;
    let ids: Vec<String> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|job| text(&job["id"]))
        .collect();
    assert_eq!(ids, [crashed.clone(), imported.clone()], "newest first");
    let newest = admin.json(&["jobs", "list", "--limit", "1"]).await;
    assert_eq!(newest.as_array().unwrap().len(), 1);
    let table = admin.ok(&["jobs", "list"]).await;
    for needle in [&imported, &crashed, "succeeded", "failed", "STATE"] {
        assert!(table.contains(needle), "{needle:?} missing from\n{table}");
    }

    // A running job can be cancelled once; a finished one cannot.
    let hanging = admin
        .ok(&[
            "import",
            "test-crash",
            anything,
            "-o",
            "mode=hang",
            "--detach",
        ])
        .await
        .trim()
        .to_owned();
    let cancelled = admin.json(&["jobs", "cancel", &hanging]).await;
    assert_eq!(cancelled["id"], hanging.as_str());
    let ended = admin.run(&["jobs", "watch", &hanging]).await;
    assert_eq!(ended.code, 2, "{}\n{}", ended.stdout, ended.stderr);
    assert!(
        ended
            .stderr
            .starts_with(&format!("error: job {hanging} was cancelled")),
        "{}",
        ended.stderr
    );
    admin
        .run(&["jobs", "cancel", &imported])
        .await
        .assert_failed(2, "error: FAILED_PRECONDITION: ");
    admin
        .run(&["jobs", "get", UNKNOWN_ID])
        .await
        .assert_failed(2, "error: NOT_FOUND: ");
}

async fn purchases_interactions_and_metrics_round_trip(backend: Backend) {
    let server = CliServer::start(backend).await;
    let writer = server.as_key(WRITER_KEY);
    let zhang = writer.json(&["customers", "create", "张伟"]).await;
    let id = text(&zhang["id"]);
    let order = |order_id: &str, time: &str, quantity: i64| {
        format!(
            r#"{{"customer_id": "{id}", "channel": "shop", "order_id": "{order_id}", "time": "{time}", "items": [{{"name": "奶粉", "category": "母婴", "quantity": {quantity}, "unit_price": "99.50"}}]}}"#
        )
    };
    let orders = server.file(
        "orders.jsonl",
        &[
            order("E1", "2026-10-01T10:00:00+08:00", 2),
            order("E2", "2026-11-01", 1),
            order("E3", "2026-09-01T00:00:00Z", 1),
        ]
        .join("\n"),
    );
    let record = [
        "purchases",
        "record",
        "--file",
        orders.to_str().unwrap(),
        "--chunk-size",
        "2",
    ];
    let first = writer.json(&record).await;
    assert_eq!(
        (first["created"].as_u64(), first["calls"].as_u64()),
        (Some(3), Some(2))
    );
    let again = writer.ok(&record).await;
    assert!(
        again.contains("recorded 3 orders in 2 calls: 0 created, 3 unchanged"),
        "{again}"
    );
    let listed = writer.json(&["purchases", "list", &id]).await;
    let order_ids: Vec<String> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|p| text(&p["order_id"]))
        .collect();
    assert_eq!(order_ids, ["E2", "E1", "E3"], "newest first");
    assert_eq!(listed[1]["total"], "199.00");
    let table = writer.ok(&["purchases", "list", &id, "--limit", "1"]).await;
    assert!(table.contains("E2") && !table.contains("E1"), "{table}");
    assert!(
        table.contains("99.50 CNY") && table.contains("奶粉 ×1"),
        "{table}"
    );

    let bad = server.file(
        "bad.jsonl",
        &[order("E4", "2026-11-02", 1), order("E5", "2026-11-02", 0)].join("\n"),
    );
    let bad_path = bad.to_str().unwrap();
    let refused = writer
        .run(&["purchases", "record", "--file", bad_path])
        .await;
    refused.assert_failed(
        2,
        "error: INVALID_ARGUMENT: purchases[1].items[0].quantity: must be positive",
    );
    assert!(
        refused.stderr.contains(&format!(
            "the failing record is {bad_path}:2; nothing was applied"
        )),
        "{}",
        refused.stderr
    );
    server
        .as_key(READER_KEY)
        .run(&["purchases", "record", "--file", orders.to_str().unwrap()])
        .await
        .assert_failed(3, "error: PERMISSION_DENIED: ");

    let contact = [
        "interactions",
        "record",
        &id,
        "--channel",
        "phone",
        "--direction",
        "outbound",
        "--summary",
        "介绍新品",
        "--staff",
        "王芳",
        "--time",
        "2026-11-03T10:00:00Z",
        "--follow-up",
        "2026-11-20",
    ];
    let recorded = writer.json(&contact).await;
    assert_eq!(recorded["created"], true);
    assert_eq!(recorded["interaction"]["channel"], "phone");
    assert_eq!(recorded["interaction"]["direction"], "outbound");
    let repeated = writer.ok(&contact).await;
    assert!(repeated.contains("already recorded"), "{repeated}");
    let contacts = writer.ok(&["interactions", "list", &id]).await;
    assert!(
        contacts.contains("介绍新品") && contacts.contains("2026-11-20"),
        "{contacts}"
    );
    let due = writer
        .json(&["interactions", "due", "--before", "2026-12-01"])
        .await;
    assert_eq!(due.as_array().unwrap().len(), 1);
    assert_eq!(due[0]["customer_id"], Value::from(id.clone()));
    writer
        .run(&["interactions", "record", &id, "--channel", "fax"])
        .await
        .assert_failed(1, "error: invalid value 'fax'");

    let metrics = writer.json(&["customers", "metrics", &id]).await;
    assert_eq!(metrics["lifetime_order_count"], 3);
    assert_eq!(metrics["lifetime_amounts"][0]["amount"], "398.00");
    assert_eq!(metrics["categories"][0]["category"], "母婴");
    assert_eq!(metrics["windows"].as_array().unwrap().len(), 3);
    let card = writer.ok(&["customers", "metrics", &id]).await;
    assert!(
        record_field(&card, "lifetime").contains("3 orders, 398.00 CNY"),
        "{card}"
    );
    assert!(
        record_field(&card, "categories").contains("母婴 (3)"),
        "{card}"
    );
    writer
        .run(&["customers", "metrics", UNKNOWN_ID])
        .await
        .assert_failed(2, "error: NOT_FOUND: ");
}

/// `tagctl cleanse run` (dry run, then for real) with its summary, `tagctl cleanse
/// report` as a table and as JSON, `tagctl customers field-history`; a scenario of
/// the `cleanse` module.
pub(crate) async fn cleanse_from_the_cli(backend: Backend) {
    let server = CliServer::start(backend).await;
    let admin = server.as_key(ADMIN_KEY);
    let beijing = admin
        .json(&["customers", "create", "张伟", "--province", "北京市"])
        .await;
    let beijing_id = text(&beijing["id"]);
    let mars = admin
        .json(&["customers", "create", "王芳", "--province", "火星"])
        .await;
    let mars_id = text(&mars["id"]);

    let dry = admin.json(&["cleanse", "run", "--dry-run"]).await;
    assert_eq!(
        (&dry["kind"], &dry["state"], &dry["dry_run"]),
        (
            &Value::from("cleanse"),
            &Value::from("succeeded"),
            &Value::from(true)
        )
    );
    assert_eq!(dry["progress"]["updated"], 1);
    assert_eq!(dry["progress"]["rejected"], 1);
    let unchanged = admin.json(&["customers", "get", &beijing_id]).await;
    assert_eq!(unchanged["address"]["province"], "北京市");

    let summary = admin.ok(&["cleanse", "run"]).await;
    for needle in [
        "customers scanned",
        "unfixable values",
        "Per field:",
        "address.province",
        "火星",
        "tagctl cleanse report",
    ] {
        assert!(
            summary.contains(needle),
            "{needle:?} missing from\n{summary}"
        );
    }
    let job_id = record_field(&summary, "job");
    let cleansed = admin.json(&["customers", "get", &beijing_id]).await;
    assert_eq!(cleansed["address"]["province"], "北京");

    let report = admin.json(&["cleanse", "report", &job_id]).await;
    assert_eq!(report["job"]["id"], Value::from(job_id.as_str()));
    let province = report["fields"]
        .as_array()
        .unwrap()
        .iter()
        .find(|count| count["field"] == "address.province")
        .unwrap();
    assert_eq!(
        (&province["changed"], &province["unfixable"]),
        (&Value::from(1), &Value::from(1))
    );
    assert_eq!(
        report["unfixable"][0]["customer_id"],
        Value::from(mars_id.as_str())
    );
    assert_eq!(report["unfixable"][0]["value"], "火星");
    let table = admin.ok(&["cleanse", "report", &job_id]).await;
    for needle in ["FIELD", "CHANGED", "UNFIXABLE", "火星", &mars_id] {
        assert!(table.contains(needle), "{needle:?} missing from\n{table}");
    }

    let history = admin.ok(&["customers", "field-history", &beijing_id]).await;
    for needle in [
        "address.province",
        "北京市",
        "北京",
        &format!("cleanse ({job_id})"),
        "ops",
    ] {
        assert!(
            history.contains(needle),
            "{needle:?} missing from\n{history}"
        );
    }
    let entries = admin
        .json(&["customers", "field-history", &beijing_id])
        .await;
    assert_eq!(entries[0]["source"], "cleanse");
    assert_eq!(entries[0]["old_value"], "北京市");

    server
        .as_key(READER_KEY)
        .run(&["cleanse", "run"])
        .await
        .assert_failed(3, "error: PERMISSION_DENIED: ");
    admin
        .run(&["cleanse", "report", UNKNOWN_ID])
        .await
        .assert_failed(2, "error: NOT_FOUND: ");
    admin
        .run(&["cleanse", "run", "--field", "gender"])
        .await
        .assert_failed(2, "error: INVALID_ARGUMENT: fields[0]");
}

/// A `tagd` with the three role keys whose address tagctl can be pointed at.
///
/// `TestServer` keeps its address to itself, so this starts `tagd` the same way.
struct CliServer {
    url: String,
    dir: tempfile::TempDir,
    _server: TestServer,
}

impl CliServer {
    async fn start(backend: Backend) -> CliServer {
        Self::start_with(backend, |_| String::new()).await
    }

    /// A server that imports from `imports()` with the workspace's plugins; a job
    /// without progress for `stall_secs` fails.
    async fn start_importing(backend: Backend, stall_secs: u32) -> CliServer {
        build_plugins();
        Self::start_with(backend, |dir| {
            let folder = dir.join("imports");
            std::fs::create_dir_all(&folder).unwrap();
            format!(
                "import_dirs = [\"{}\"]\nimport_stall_secs = {stall_secs}\n",
                folder.display()
            )
        })
        .await
    }

    /// `extra_config` gets the test's temporary folder and returns TOML lines.
    async fn start_with(backend: Backend, extra_config: impl FnOnce(&Path) -> String) -> CliServer {
        let binary = tagctl_binary();
        assert!(binary.exists(), "{} is missing", binary.display());
        let dir = tempfile::tempdir().unwrap();
        let options = Options {
            extra_config: extra_config(dir.path()),
            ..Options::default()
        };
        let server = TestServer::start_with(backend, options).await;
        CliServer {
            url: server.url.clone(),
            dir,
            _server: server,
        }
    }

    fn as_key<'a>(&'a self, key: &'a str) -> Caller<'a> {
        Caller { server: self, key }
    }

    /// The folder a server from [`CliServer::start_importing`] imports from.
    fn imports(&self) -> PathBuf {
        self.dir.path().join("imports")
    }

    fn file(&self, name: &str, contents: &str) -> PathBuf {
        let path = self.dir.path().join(name);
        std::fs::write(&path, contents).unwrap();
        path
    }

    /// Runs tagctl with only the given environment: no inherited `TAGCTL_*`, no
    /// developer's `~/.config/tagctl`. The server comes from `TAGCTL_SERVER`
    /// unless `env` sets it.
    async fn run_with(&self, env: &[(&str, &str)], args: &[&str]) -> Run {
        self.run_in(self.dir.path(), env, args).await
    }

    /// [`CliServer::run_with`] in the directory `cwd`.
    async fn run_in(&self, cwd: &Path, env: &[(&str, &str)], args: &[&str]) -> Run {
        let mut command = tokio::process::Command::new(tagctl_binary());
        command
            .current_dir(cwd)
            .env_clear()
            .env("HOME", self.dir.path())
            .env("TAGCTL_SERVER", &self.url);
        for (name, value) in env {
            command.env(name, value);
        }
        let output = tokio::time::timeout(Duration::from_secs(60), command.args(args).output())
            .await
            .expect("tagctl did not finish within 60 s")
            .expect("run tagctl");
        Run {
            code: output.status.code().expect("tagctl exited by a signal"),
            stdout: String::from_utf8(output.stdout).unwrap(),
            stderr: String::from_utf8(output.stderr).unwrap(),
        }
    }
}

async fn duplicates_are_found_merged_reviewed_and_undone(backend: Backend) {
    let server = CliServer::start(backend).await;
    let admin = server.as_key(ADMIN_KEY);
    let person =
        |name: &'static str, phone: &'static str, email: &'static str, birthday: &'static str| {
            vec![
                "customers",
                "create",
                name,
                "--phone",
                phone,
                "--email",
                email,
                "--birthday",
                birthday,
            ]
        };
    let zhang = admin
        .json(&person(
            "张伟",
            "138-0013-8000",
            "zw@example.com",
            "1990-01-02",
        ))
        .await;
    admin
        .json(&person(
            "Zhang Wei",
            "+86 13800138000",
            "ZW@example.com",
            "1990-01-02",
        ))
        .await;
    admin
        .json(&person(
            "李娜",
            "13900139000",
            "ln@example.com",
            "1985-07-01",
        ))
        .await;
    admin
        .json(&person(
            "李娜",
            "13900139000",
            "ln@example.com",
            "1962-03-15",
        ))
        .await;

    let found = admin
        .json(&[
            "dedupe",
            "find",
            "--name",
            "张 伟",
            "--phone",
            "13800138000",
        ])
        .await;
    assert_eq!(found.as_array().unwrap().len(), 2, "{found}");

    let job = admin.json(&["dedupe", "run"]).await;
    assert_eq!(job["kind"], "dedupe");
    assert_eq!(job["state"], "succeeded");
    assert_eq!(job["progress"]["merged"], 1, "{job}");
    let merges = admin.json(&["dedupe", "merges"]).await;
    assert_eq!(merges.as_array().unwrap().len(), 1);
    let merge_id = text(&merges[0]["id"]);

    // Interactive review: the namesakes are shown side by side; "n" keeps them apart.
    let mut review = tokio::process::Command::new(tagctl_binary())
        .current_dir(server.dir.path())
        .env_clear()
        .env("HOME", server.dir.path())
        .env("TAGCTL_SERVER", &server.url)
        .env("TAGCTL_KEY", ADMIN_KEY)
        .args(["dedupe", "review"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    {
        use tokio::io::AsyncWriteExt as _;
        let mut stdin = review.stdin.take().unwrap();
        stdin.write_all(b"n\n").await.unwrap();
    }
    let reviewed = tokio::time::timeout(Duration::from_secs(60), review.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    let stdout = String::from_utf8(reviewed.stdout).unwrap();
    assert!(reviewed.status.success(), "{stdout}");
    assert!(
        stdout.contains("李娜") && stdout.contains("+8613900139000"),
        "{stdout}"
    );
    assert!(stdout.contains("0 merged, 1 kept apart"), "{stdout}");
    let settled = admin
        .json(&["dedupe", "candidates", "--state", "not-duplicate"])
        .await;
    assert_eq!(settled.as_array().unwrap().len(), 1, "{settled}");

    let undone = admin.json(&["dedupe", "unmerge", &merge_id]).await;
    assert!(undone["undone_at"].is_string(), "{undone}");
    let found = admin
        .json(&["dedupe", "find", "--customer", &text(&zhang["id"])])
        .await;
    assert_eq!(
        found.as_array().unwrap().len(),
        1,
        "the twin is back: {found}"
    );
    server
        .as_key(READER_KEY)
        .run(&["dedupe", "merge", &text(&zhang["id"]), UNKNOWN_ID])
        .await
        .assert_failed(3, "error: PERMISSION_DENIED");
}

struct Caller<'a> {
    server: &'a CliServer,
    key: &'a str,
}

impl Caller<'_> {
    async fn run(&self, args: &[&str]) -> Run {
        self.server
            .run_with(&[("TAGCTL_KEY", self.key)], args)
            .await
    }

    async fn run_in(&self, cwd: &Path, args: &[&str]) -> Run {
        self.server
            .run_in(cwd, &[("TAGCTL_KEY", self.key)], args)
            .await
    }

    /// Runs a command that must succeed; returns its stdout.
    async fn ok(&self, args: &[&str]) -> String {
        let run = self.run(args).await;
        assert_eq!(run.code, 0, "tagctl {args:?} failed: {}", run.stderr);
        run.stdout
    }

    /// Runs a command with `--json` that must succeed; returns the parsed output.
    async fn json(&self, args: &[&str]) -> Value {
        let stdout = self.ok(&[&["--json"], args].concat()).await;
        serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e} in {stdout}"))
    }
}

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Run {
    #[track_caller]
    fn assert_failed(&self, code: i32, stderr_prefix: &str) {
        assert_eq!(
            self.code, code,
            "stdout: {}\nstderr: {}",
            self.stdout, self.stderr
        );
        assert!(
            self.stderr.starts_with(stderr_prefix),
            "stderr {:?} should start with {stderr_prefix:?}",
            self.stderr
        );
        assert!(self.stdout.is_empty(), "nothing on stdout: {}", self.stdout);
    }
}

fn text(value: &Value) -> String {
    value
        .as_str()
        .unwrap_or_else(|| panic!("{value} is not a string"))
        .to_owned()
}

/// The value of `field` in a single record's table (`│ field ┆ value │`).
#[track_caller]
fn record_field(table: &str, field: &str) -> String {
    table
        .lines()
        .find_map(|line| {
            let (name, value) = line.strip_prefix('│')?.split_once('┆')?;
            (name.trim() == field).then(|| value.trim().trim_end_matches('│').trim().to_owned())
        })
        .unwrap_or_else(|| panic!("no {field:?} in\n{table}"))
}

/// Every line of a table is equally wide on screen (CJK characters take two columns).
#[track_caller]
fn assert_aligned(table: &str) {
    let width = |line: &str| -> usize {
        line.chars()
            .map(|c| {
                if ('\u{4e00}'..='\u{9fff}').contains(&c) {
                    2
                } else {
                    1
                }
            })
            .sum()
    };
    let widths: Vec<usize> = table.lines().map(width).collect();
    assert!(
        widths.windows(2).all(|w| w[0] == w[1]),
        "misaligned:\n{table}"
    );
}

/// The `tagctl` binary in this test's target directory, built first: `cargo test -p
/// tagd` builds only tagd's own binaries, and a stale tagctl would test old code.
fn tagctl_binary() -> &'static Path {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY.get_or_init(|| {
        // Next to `tagd`: target/<profile>/.
        let profile_dir = Path::new(tagd_binary()).parent().unwrap();
        let binary = profile_dir.join(format!("tagctl{}", std::env::consts::EXE_SUFFIX));
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| env!("CARGO").to_owned());
        let mut build = std::process::Command::new(cargo);
        build
            .args(["build", "--quiet", "-p", "tagctl", "--target-dir"])
            .arg(profile_dir.parent().unwrap())
            .current_dir(env!("CARGO_MANIFEST_DIR"));
        if profile_dir
            .file_name()
            .is_some_and(|name| name == "release")
        {
            build.arg("--release");
        }
        let built = build.status().is_ok_and(|status| status.success());
        // A workspace member mid-edit by someone else can break the build; an
        // existing binary is still worth testing.
        assert!(
            built || binary.exists(),
            "cannot build tagctl (`cargo build -p tagctl`) and {} does not exist",
            binary.display()
        );
        if !built {
            eprintln!(
                "warning: `cargo build -p tagctl` failed; testing the existing {}",
                binary.display()
            );
        }
        binary
    })
}
