//! The dedupe measurement: generated customers with known duplicates (tagd-datagen) are
//! cleansed as an import would, upserted over gRPC, merged by a `StartDedupe` job, and
//! the merges the job made are scored against the truth (pairwise precision, recall, F1),
//! beside the job's time, its comparisons per second and the server's peak memory.

use std::collections::HashMap;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use tagd_cleanse::{CleanseOptions, Cleanser};
use tagd_core::customers::{self as domain, ContactRules, CustomerFields};
use tagd_datagen::{CustomerRecord, Generator, GeneratorConfig};
use tagd_match::{RecordId, pairwise_quality};
use tagd_proto::v1 as pb;
use tagd_proto::v1::customer_service_client::CustomerServiceClient;
use tagd_proto::v1::dedupe_service_client::DedupeServiceClient;
use tagd_proto::v1::job_service_client::JobServiceClient;
use tonic::transport::Channel;

use crate::report::{Report, thousands};

/// Customers per UpsertCustomers call (the server's limit).
const UPSERT_BATCH: usize = 1_000;
/// The channel the generated records are keyed by.
const CHANNEL: &str = "bench-dedupe";

pub struct DedupeOn {
    pub channel: Channel,
    pub server_pid: Option<u32>,
    /// The server's log, where the job notes how long reading and matching took.
    pub log_path: std::path::PathBuf,
}

/// The `seconds=` of the job's "dedupe matched" log line: reading everyone plus matching.
fn matched_seconds(log_path: &std::path::Path, job_id: &str) -> Option<f64> {
    let log = std::fs::read_to_string(log_path).ok()?;
    let line = log
        .lines()
        .map(crate::strip_ansi)
        .find(|line| line.contains("dedupe matched") && line.contains(job_id))?;
    let value = line.split("seconds=").nth(1)?.split_whitespace().next()?;
    value.parse().ok()
}

/// A generated record as the server should receive it: cleansed, with only values the API accepts.
fn customer(
    record: &CustomerRecord,
    index: usize,
    cleanser: &Cleanser,
    rules: &ContactRules,
) -> pb::Customer {
    let birthday = cleanser.birthday(&record.birthday).into_value().flatten();
    let gender = tagd_cleanse::gender(&record.gender)
        .into_value()
        .unwrap_or_default();
    let raw = CustomerFields {
        name: record.name.clone(),
        gender,
        birthday,
        phones: record.phones.clone(),
        emails: record.emails.clone(),
        address: domain::Address {
            province: record.province.clone(),
            city: record.city.clone(),
            district: record.district.clone(),
            detail: record.detail.clone(),
        },
        company: record.company.clone(),
        ..CustomerFields::default()
    };
    let clean = cleanser.cleanse(raw).fields;
    // What cleansing could not fix stays raw; the API would refuse it, so it is left out here.
    let phones = clean
        .phones
        .iter()
        .filter(|p| rules.phone("phone", p).is_ok())
        .cloned()
        .collect();
    let emails = clean
        .emails
        .iter()
        .filter(|e| domain::email("email", e).is_ok())
        .cloned()
        .collect();
    pb::Customer {
        name: if clean.name.is_empty() {
            format!("客户{index}")
        } else {
            clean.name
        },
        gender: match clean.gender {
            domain::Gender::Male => pb::Gender::Male,
            domain::Gender::Female => pb::Gender::Female,
            domain::Gender::Other => pb::Gender::Other,
            domain::Gender::Unspecified => pb::Gender::Unspecified,
        }
        .into(),
        birthday: clean.birthday.map(|d| d.to_string()).unwrap_or_default(),
        phones,
        emails,
        address: Some(pb::Address {
            province: clean.address.province,
            city: clean.address.city,
            district: clean.address.district,
            detail: clean.address.detail,
        }),
        company: clean.company,
        ..pb::Customer::default()
    }
}

pub async fn measure_dedupe(
    backend: &str,
    on: &DedupeOn,
    records: usize,
    seed: u64,
    report: &mut Report,
) -> Result<()> {
    let generator = Generator::new(seed, GeneratorConfig::default())
        .map_err(|e| anyhow::anyhow!("datagen config: {e}"))?;
    let cleanser = Cleanser::new(CleanseOptions {
        lowercase_email_local_part: false,
        ..CleanseOptions::default()
    })
    .map_err(|e| anyhow::anyhow!("cleanse options: {e}"))?;
    let rules = ContactRules::for_region("CN").map_err(|e| anyhow::anyhow!(e))?;
    let generated: Vec<CustomerRecord> = generator.take(records).collect();

    // Load: index → customer id, through UpsertCustomers keyed by the record's index.
    let t0 = Instant::now();
    let mut customers = CustomerServiceClient::new(on.channel.clone())
        .max_encoding_message_size(64 << 20)
        .max_decoding_message_size(64 << 20);
    let mut record_of: HashMap<String, RecordId> = HashMap::with_capacity(records);
    for (chunk_index, chunk) in generated.chunks(UPSERT_BATCH).enumerate() {
        let entries = chunk
            .iter()
            .enumerate()
            .map(|(offset, record)| {
                let index = chunk_index * UPSERT_BATCH + offset;
                pb::UpsertCustomerEntry {
                    key: Some(pb::ExternalId {
                        channel: CHANNEL.to_owned(),
                        external_id: index.to_string(),
                    }),
                    customer: Some(customer(record, index, &cleanser, &rules)),
                }
            })
            .collect();
        let results = customers
            .upsert_customers(pb::UpsertCustomersRequest { entries })
            .await
            .with_context(|| format!("UpsertCustomers of chunk {chunk_index}"))?
            .into_inner()
            .results;
        for (offset, result) in results.into_iter().enumerate() {
            let index = RecordId::try_from(chunk_index * UPSERT_BATCH + offset)?;
            record_of.insert(result.customer_id, index);
        }
    }
    report.note(format!(
        "{backend}: dedupe set-up upserted {records} generated customers (seed {seed}) in {:.1} s",
        t0.elapsed().as_secs_f64()
    ));

    // First a dry run: finding and clustering the duplicates, what a linker such as Splink
    // does, with nothing written. Then the run that merges them.
    let mut dedupe =
        DedupeServiceClient::new(on.channel.clone()).max_decoding_message_size(64 << 20);
    let (dry, dry_seconds) = run_dedupe(on, &mut dedupe, true).await?;
    let dry_progress = dry.progress.unwrap_or_default();
    report.note(format!(
        "{backend}: StartDedupe dry run over {records} customers (read, block, score, cluster; nothing written): \
         {dry_seconds:.1} s; {} pairs compared ({} comparisons/s), {} clusters",
        dry_progress.comparisons,
        thousands(dry_progress.comparisons as f64 / dry_seconds),
        dry_progress.clusters,
    ));
    let (last, seconds) = run_dedupe(on, &mut dedupe, false).await?;
    let peak_mib = on.server_pid.and_then(peak_rss_mib);
    let progress = last.progress.unwrap_or_default();

    // What it merged, as clusters of record ids.
    let mut clusters: Vec<Vec<RecordId>> = Vec::new();
    let mut token = String::new();
    loop {
        let page = dedupe
            .list_merges(pb::ListMergesRequest {
                job_id: last.id.clone(),
                page_size: 1000,
                page_token: token,
                ..pb::ListMergesRequest::default()
            })
            .await
            .context("ListMerges")?
            .into_inner();
        for merge in page.merges {
            let cluster: Vec<RecordId> = std::iter::once(&merge.survivor_id)
                .chain(merge.merged_ids.iter())
                .filter_map(|id| record_of.get(id).copied())
                .collect();
            clusters.push(cluster);
        }
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    let truth: Vec<(RecordId, u64)> = generated
        .iter()
        .enumerate()
        .filter_map(|(index, record)| Some((RecordId::try_from(index).ok()?, record.entity_id)))
        .collect();
    let quality = pairwise_quality(&clusters, &truth);
    report.note(format!(
        "{backend}: StartDedupe over {records} customers: {:.1} s end to end; {} pairs compared ({} comparisons/s), \
         {} clusters, {} customers merged, {} pairs queued for review; server peak RSS {}",
        seconds,
        progress.comparisons,
        thousands(progress.comparisons as f64 / seconds),
        progress.clusters,
        progress.merged,
        progress.queued_for_review,
        peak_mib.map_or_else(|| "unknown".to_owned(), |mib| format!("{mib:.0} MiB")),
    ));
    report.note(format!(
        "{backend}: dedupe quality (pairwise, merges vs truth): precision {:.4}, recall {:.4}, F1 {:.4} \
         (TP {}, FP {}, FN {})",
        quality.precision,
        quality.recall,
        quality.f1,
        quality.true_positives,
        quality.false_positives,
        quality.false_negatives
    ));
    report.check(
        backend,
        &format!("StartDedupe F1 / precision at {records} customers"),
        "F1 ≥ 0.985, precision ≥ 0.995",
        format!("{:.4} / {:.4}", quality.f1, quality.precision),
        quality.f1 >= 0.985 && quality.precision >= 0.995,
    );
    let matched = matched_seconds(&on.log_path, &last.id);
    report.note(format!(
        "{backend}: of those {seconds:.1} s, reading every customer and matching took {}; the rest merged {} clusters ({} per second) and queued the review pairs",
        matched.map_or_else(|| "an unknown time".to_owned(), |m| format!("{m:.1} s")),
        progress.clusters,
        matched.map_or_else(
            || "?".to_owned(),
            |m| thousands(progress.clusters as f64 / (seconds - m).max(0.001))
        ),
    ));
    // The speed target is stated at a million customers; smaller runs are reported, not judged.
    if records >= 1_000_000 {
        report.check(
            backend,
            &format!("StartDedupe dry run (find and cluster) at {records} customers"),
            "≤ 60 s",
            format!("{dry_seconds:.1} s"),
            dry_seconds <= 60.0,
        );
        report.check(
            backend,
            &format!("StartDedupe applied (find, cluster and merge) at {records} customers"),
            "≤ 60 s, < 2 GB",
            format!(
                "{seconds:.1} s, {}",
                peak_mib.map_or_else(
                    || "memory unknown".to_owned(),
                    |mib| format!("{mib:.0} MiB")
                )
            ),
            seconds <= 60.0 && peak_mib.is_none_or(|m| m < 2048.0),
        );
    }
    Ok(())
}

/// Runs a full StartDedupe and follows it to its end: the job as it ended and the seconds it took.
async fn run_dedupe(
    on: &DedupeOn,
    dedupe: &mut DedupeServiceClient<Channel>,
    dry_run: bool,
) -> Result<(pb::Job, f64)> {
    let started = Instant::now();
    let job = dedupe
        .start_dedupe(pb::StartDedupeRequest {
            full: true,
            dry_run,
            ..pb::StartDedupeRequest::default()
        })
        .await
        .context("StartDedupe")?
        .into_inner();
    let mut watch = JobServiceClient::new(on.channel.clone())
        .watch_job(pb::WatchJobRequest {
            job_id: job.id.clone(),
        })
        .await
        .context("WatchJob")?
        .into_inner();
    let mut last = job;
    while let Some(update) = watch.message().await.context("WatchJob stream")? {
        last = update;
    }
    let seconds = started.elapsed().as_secs_f64();
    if last.state != i32::from(pb::JobState::Succeeded) {
        bail!(
            "the dedupe job (dry run: {dry_run}) ended {:?}: {}",
            last.state,
            last.error
        );
    }
    Ok((last, seconds))
}

/// The process's peak resident memory (VmHWM), in MiB.
fn peak_rss_mib(pid: u32) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}
