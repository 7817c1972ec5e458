//! Dedupe benchmark on generated data: (a) pairwise quality at 10,000
//! records, (c) the all-pairs baseline on the same records, (b) speed and
//! peak memory at 1,000,000 records.
//!
//! `cargo bench -p tagd-match` runs all three. Options (after `--`):
//! `--records N` (speed run, default 1,000,000; also `TAGD_BENCH_RECORDS`),
//! `--quality-records N` (default 10,000), `--seed S` (default 42),
//! `--no-baseline`, `--no-learned` (skip (d), weights learned from labelled
//! pairs), `--auto-merge T`, `--prior P` (log2), `--explain` (print missed and wrong pairs with their scores).
#![expect(clippy::print_stdout, reason = "a benchmark reports on stdout")]

use std::collections::{HashMap, HashSet};
use std::time::Instant;

use tagd_datagen::{CustomerRecord, Generator, GeneratorConfig};
use tagd_match::{
    Labelled, MatchConfig, MatchRecord, Matcher, Quality, RawCustomer, learn_weights,
    pairwise_quality, prepare,
};

struct Options {
    records: usize,
    quality_records: usize,
    seed: u64,
    baseline: bool,
    learned: bool,
    explain: bool,
    auto_merge: Option<f64>,
    prior: Option<f64>,
}

fn options() -> Options {
    let mut o = Options {
        records: std::env::var("TAGD_BENCH_RECORDS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(1_000_000),
        quality_records: 10_000,
        seed: 42,
        baseline: true,
        learned: true,
        explain: false,
        auto_merge: None,
        prior: None,
    };
    let args: Vec<String> = std::env::args().collect();
    let value = |i: usize| {
        args.get(i + 1)
            .and_then(|v| v.replace('_', "").parse().ok())
    };
    for (i, arg) in args.iter().enumerate() {
        match arg.as_str() {
            "--records" => o.records = value(i).unwrap_or(o.records),
            "--quality-records" => o.quality_records = value(i).unwrap_or(o.quality_records),
            "--seed" => o.seed = value(i).map_or(o.seed, |v: usize| v as u64),
            "--no-baseline" => o.baseline = false,
            "--no-learned" => o.learned = false,
            "--auto-merge" => o.auto_merge = args.get(i + 1).and_then(|v| v.parse().ok()),
            "--prior" => o.prior = args.get(i + 1).and_then(|v| v.parse().ok()),
            "--explain" => o.explain = true,
            _ => {}
        }
    }
    o
}

fn raw(id: u32, r: CustomerRecord) -> RawCustomer {
    RawCustomer {
        id,
        name: r.name,
        gender: r.gender,
        birthday: r.birthday,
        phones: r.phones,
        emails: r.emails,
        province: r.province,
        city: r.city,
        district: r.district,
        detail: r.detail,
    }
}

/// Prepared records with their ground truth.
struct Generated {
    records: Vec<MatchRecord>,
    /// (record id, entity id)
    truth: Vec<(u32, u64)>,
    households: Vec<Option<u64>>,
}

/// Generates `n` records, prepared, with their truth.
fn generate(seed: u64, n: usize) -> Generated {
    let generator = Generator::new(seed, GeneratorConfig::default()).expect("default config");
    let mut records = Vec::with_capacity(n);
    let mut truth = Vec::with_capacity(n);
    let mut households = Vec::with_capacity(n);
    for (id, record) in (0u32..).zip(generator.take(n)) {
        truth.push((id, record.entity_id));
        households.push(record.household_id);
        records.push(prepare(&raw(id, record)));
    }
    Generated {
        records,
        truth,
        households,
    }
}

fn learned_run(matcher: &Matcher, o: &Options, records: &[MatchRecord], truth: &[(u32, u64)]) {
    let learned = learned_config(matcher, o.seed + 1, o.quality_records);
    let learned_matcher = Matcher::new(learned).expect("learned weights are finite");
    let out = learned_matcher.dedupe(records).expect("unique ids");
    println!(
        "\n(d) Fellegi-Sunter m/u learned on seed {} ({} records)",
        o.seed + 1,
        o.quality_records
    );
    show("learned weights", &pairwise_quality(&out.clusters, truth));
    println!("{:?}", learned_matcher.config().weights);
}

/// Weights learned from every true pair and a million random non-matching
/// pairs of a training set; the prior is that set's log2(true pairs / all pairs).
fn learned_config(matcher: &Matcher, seed: u64, n: usize) -> MatchConfig {
    let training = generate(seed, n);
    let profiles = matcher.profiles(&training.records);
    let mut by_entity: HashMap<u64, Vec<u32>> = HashMap::new();
    for &(id, entity) in &training.truth {
        by_entity.entry(entity).or_default().push(id);
    }
    let mut matches = Vec::new();
    for ids in by_entity.values() {
        for (i, &a) in ids.iter().enumerate() {
            matches.extend(ids[i + 1..].iter().map(|&b| (a, b)));
        }
    }
    let mut state = seed | 1;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state % n as u64) as u32
    };
    let non_matches: Vec<(u32, u32)> = std::iter::repeat_with(|| (next(), next()))
        .filter(|&(a, b)| training.truth[a as usize].1 != training.truth[b as usize].1)
        .take(1_000_000)
        .collect();
    let all_pairs = (n as f64) * (n as f64 - 1.0) / 2.0;
    let prior = (matches.len() as f64 / all_pairs).log2();
    let weights = learn_weights(
        &profiles,
        Labelled {
            matches: &matches,
            non_matches: &non_matches,
        },
        &matcher.config().weights,
        prior,
    );
    MatchConfig {
        weights,
        ..matcher.config().clone()
    }
}

fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

fn show(label: &str, q: &Quality) {
    println!(
        "{label}: precision {:.5}  recall {:.5}  F1 {:.5}  (TP {}, FP {}, FN {})",
        q.precision, q.recall, q.f1, q.true_positives, q.false_positives, q.false_negatives
    );
}

fn main() {
    let o = options();
    let mut config = MatchConfig::default();
    if let Some(threshold) = o.auto_merge {
        config.auto_merge_threshold = threshold;
    }
    if let Some(prior) = o.prior {
        config.weights.prior = prior;
    }
    let matcher = Matcher::new(config).expect("a valid config");
    println!(
        "seed {}, 2 threads, default MatchConfig and GeneratorConfig",
        o.seed
    );

    // (a) quality
    let Generated {
        records,
        truth,
        households,
    } = generate(o.seed, o.quality_records);
    let started = Instant::now();
    let profiles = matcher.profiles(&records);
    let profile_secs = started.elapsed().as_secs_f64();
    let index = matcher.index(&profiles);
    let pairs = index.candidate_pairs(matcher.config().threads);
    let blocking_secs = started.elapsed().as_secs_f64() - profile_secs;
    let scoring = Instant::now();
    let scored = matcher.score_pairs(&profiles, &pairs);
    let blocked_scoring_secs = scoring.elapsed().as_secs_f64();
    let blocked = matcher.finish(records.len(), index.stats(), pairs.len() as u64, scored);
    let blocked_secs = started.elapsed().as_secs_f64();
    let blocked_q = pairwise_quality(&blocked.clusters, &truth);
    println!("\n(a) quality, {} records", records.len());
    show("blocked", &blocked_q);
    let entity: HashMap<u32, u64> = truth.iter().copied().collect();
    let mut household_merges = 0;
    let mut namesake_merges = 0;
    for cluster in &blocked.clusters {
        for (i, &a) in cluster.iter().enumerate() {
            for &b in &cluster[i + 1..] {
                if entity[&a] != entity[&b] {
                    let (ha, hb) = (households[a as usize], households[b as usize]);
                    if ha.is_some() && ha == hb {
                        household_merges += 1;
                    }
                    if records[a as usize].name == records[b as usize].name {
                        namesake_merges += 1;
                    }
                }
            }
        }
    }
    let guarded = blocked.review.iter().filter(|p| p.guard.is_some()).count();
    println!(
        "hard negatives merged: household pairs {household_merges}, same-name pairs {namesake_merges}; \
         review queue {} pairs ({guarded} held by a guard)",
        blocked.review.len(),
    );
    println!(
        "{} comparisons; profiles {profile_secs:.3}s, blocking {blocking_secs:.3}s, scoring \
         {blocked_scoring_secs:.3}s ({:.0} comparisons/s), total {blocked_secs:.3}s; {:?}",
        blocked.stats.comparisons,
        blocked.stats.comparisons as f64 / blocked_scoring_secs,
        blocked.stats.blocks,
    );
    if o.explain {
        explain(&matcher, &records, &truth, &blocked.clusters);
    }

    // (c) all-pairs baseline on the same records and profiles
    if o.baseline {
        let started = Instant::now();
        let scored = matcher.score_all_pairs(&profiles);
        let all_scoring_secs = started.elapsed().as_secs_f64();
        let n = records.len() as u64;
        let all = matcher.finish(records.len(), Default::default(), n * (n - 1) / 2, scored);
        let all_secs = profile_secs + started.elapsed().as_secs_f64();
        let all_q = pairwise_quality(&all.clusters, &truth);
        let blocked_rate = blocked.stats.comparisons as f64 / blocked_scoring_secs;
        let all_rate = all.stats.comparisons as f64 / all_scoring_secs;
        println!("\n(c) all-pairs baseline, {} records", records.len());
        show("all-pairs", &all_q);
        println!(
            "{} comparisons, scoring {all_scoring_secs:.2}s ({all_rate:.0} comparisons/s), total {all_secs:.2}s",
            all.stats.comparisons,
        );
        println!(
            "blocked vs all-pairs: {:.0}x fewer comparisons, {:.1}x less wall time, \
             comparisons/s ratio {:.3}, F1 ratio {:.4}, precision ratio {:.4}, recall ratio {:.4}",
            all.stats.comparisons as f64 / blocked.stats.comparisons as f64,
            all_secs / blocked_secs,
            blocked_rate / all_rate,
            blocked_q.f1 / all_q.f1,
            blocked_q.precision / all_q.precision,
            blocked_q.recall / all_q.recall,
        );
    }

    // (d) weights learned from labelled pairs of a different seed
    if o.learned {
        learned_run(&matcher, &o, &records, &truth);
    }
    drop(records);

    // (b) speed = learned_config(&matcher, o.seed + 1, o.quality_records);
    // (b) speed
    if o.records == 0 {
        return;
    }
    println!("\n(b) speed, {} records", o.records);
    let started = Instant::now();
    let Generated { records, truth, .. } = generate(o.seed, o.records);
    println!(
        "generated and prepared in {:.2}s",
        started.elapsed().as_secs_f64()
    );
    let started = Instant::now();
    let profiles = matcher.profiles(&records);
    let t_profiles = started.elapsed().as_secs_f64();
    let index = matcher.index(&profiles);
    let t_index = started.elapsed().as_secs_f64();
    let pairs = index.candidate_pairs(matcher.config().threads);
    let t_pairs = started.elapsed().as_secs_f64();
    let scored = matcher.score_pairs(&profiles, &pairs);
    let t_scored = started.elapsed().as_secs_f64();
    let clustering = tagd_match::cluster(scored, matcher.config());
    let total = started.elapsed().as_secs_f64();
    let stats = index.stats();
    println!(
        "profiles {:.2}s, index {:.2}s, candidate pairs {:.2}s, scoring {:.2}s, clustering {:.2}s: total {:.2}s",
        t_profiles,
        t_index - t_profiles,
        t_pairs - t_index,
        t_scored - t_pairs,
        total - t_scored,
        total
    );
    println!(
        "{} comparisons ({:.2} per record); {:.0} comparisons/s overall, {:.0}/s in scoring; \
         {} blocks, {} oversize, largest {}",
        pairs.len(),
        pairs.len() as f64 / records.len() as f64,
        pairs.len() as f64 / total,
        pairs.len() as f64 / (t_scored - t_pairs),
        stats.blocks,
        stats.oversize_blocks,
        stats.largest_block,
    );
    show("quality", &pairwise_quality(&clustering.clusters, &truth));
    println!("review queue {} pairs", clustering.review.len());
    match peak_rss_mib() {
        Some(mib) => println!("peak RSS (VmHWM) {mib:.0} MiB"),
        None => println!("peak RSS unavailable"),
    }
}

/// Prints the wrong and missed pairs with their explanations (a sample).
fn explain(
    matcher: &Matcher,
    records: &[MatchRecord],
    truth: &[(u32, u64)],
    clusters: &[Vec<u32>],
) {
    let profiles = matcher.profiles(records);
    let mut cluster_of: HashMap<u32, usize> = HashMap::new();
    for (c, members) in clusters.iter().enumerate() {
        for &m in members {
            cluster_of.insert(m, c);
        }
    }
    let index = matcher.index(&profiles);
    let candidates: HashSet<(u32, u32)> = index
        .candidate_pairs(matcher.config().threads)
        .into_iter()
        .collect();
    let mut by_entity: HashMap<u64, Vec<u32>> = HashMap::new();
    for &(id, e) in truth {
        by_entity.entry(e).or_default().push(id);
    }
    let mut missed = 0;
    let mut not_blocked = 0;
    let mut reasons: HashMap<String, usize> = HashMap::new();
    for ids in by_entity.values() {
        for (i, &a) in ids.iter().enumerate() {
            for &b in &ids[i + 1..] {
                let together =
                    cluster_of.contains_key(&a) && cluster_of.get(&a) == cluster_of.get(&b);
                if together {
                    continue;
                }
                missed += 1;
                if !candidates.contains(&(a.min(b), a.max(b))) {
                    not_blocked += 1;
                }
                let s = matcher.score(&profiles[a as usize], &profiles[b as usize]);
                let reason = s.guard.map_or_else(
                    || {
                        if s.total >= 0.95 {
                            "strong, kept apart".to_owned()
                        } else {
                            "low score".to_owned()
                        }
                    },
                    |g| g.to_string(),
                );
                *reasons.entry(reason).or_default() += 1;
                if missed <= 12 {
                    println!(
                        "MISSED {:?}\n     {:?}\n  {s}",
                        records[a as usize], records[b as usize]
                    );
                }
            }
        }
    }
    println!("missed pairs {missed}, of which not candidates {not_blocked}; by reason {reasons:?}");
    let entity: HashMap<u32, u64> = truth.iter().copied().collect();
    let mut wrong = 0;
    for members in clusters {
        for (i, &a) in members.iter().enumerate() {
            for &b in &members[i + 1..] {
                if entity[&a] != entity[&b] {
                    wrong += 1;
                    if wrong <= 12 {
                        let s = matcher.score(&profiles[a as usize], &profiles[b as usize]);
                        println!(
                            "WRONG {:?}\n     {:?}\n  {s}",
                            records[a as usize], records[b as usize]
                        );
                    }
                }
            }
        }
    }
}
