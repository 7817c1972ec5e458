//! Clustering without chaining: strong pairs (at or above auto-merge) are
//! joined greedily, best first, but a record only joins a cluster if it is a
//! strong match of the cluster's core record (the record with the most strong
//! links when the cluster formed), and two clusters only merge if every
//! member of the smaller is a strong match of the larger's core. Every
//! member is thus one strong link from the core: a chain 1–2–3–4 yields
//! {1,2,3} and 4 alone. Members need not match each other strongly (records
//! with phone+email, phone only and email only are one person through the
//! first). Pairs not given count as not matching.

use std::collections::{HashMap, HashSet};

use crate::config::MatchConfig;
use crate::record::RecordId;
use crate::score::PairScore;

/// Clusters to merge and pairs for a human to review.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Clustering {
    /// Each cluster's ids ascending; clusters ordered by their first id.
    /// Records in no cluster are not listed.
    pub clusters: Vec<Vec<RecordId>>,
    /// Pairs between review and auto-merge, and auto-merge pairs the
    /// no-chaining rule kept apart; best first. Pairs whose records ended up
    /// in one cluster are left out.
    pub review: Vec<PairScore>,
}

struct Cluster {
    core: RecordId,
    members: Vec<RecordId>,
}

/// Clusters scored pairs.
pub fn cluster(pairs: Vec<PairScore>, config: &MatchConfig) -> Clustering {
    let merge = config.auto_merge_threshold;
    let (mut strong, mut review): (Vec<PairScore>, Vec<PairScore>) = pairs
        .into_iter()
        .filter(|p| p.total >= config.review_threshold && p.a != p.b)
        .partition(|p| p.total >= merge);
    let key = |a: RecordId, b: RecordId| if a < b { (a, b) } else { (b, a) };
    let strong_pairs: HashSet<(RecordId, RecordId)> =
        strong.iter().map(|p| key(p.a, p.b)).collect();
    let linked = |a: RecordId, b: RecordId| a == b || strong_pairs.contains(&key(a, b));
    let mut degree: HashMap<RecordId, usize> = HashMap::new();
    for p in &strong {
        *degree.entry(p.a).or_default() += 1;
        *degree.entry(p.b).or_default() += 1;
    }
    strong.sort_by(|x, y| {
        y.total
            .total_cmp(&x.total)
            .then(y.log2_odds.total_cmp(&x.log2_odds))
            .then((x.a, x.b).cmp(&(y.a, y.b)))
    });

    let mut clusters: Vec<Cluster> = Vec::new();
    let mut home: HashMap<RecordId, usize> = HashMap::new();
    let mut refused = Vec::new();
    for pair in strong {
        let joined = match (home.get(&pair.a).copied(), home.get(&pair.b).copied()) {
            (Some(x), Some(y)) if x == y => true,
            (None, None) => {
                let degree_of = |id| degree.get(&id).copied().unwrap_or(0);
                let core = if degree_of(pair.b) > degree_of(pair.a) {
                    pair.b
                } else {
                    pair.a
                };
                home.insert(pair.a, clusters.len());
                home.insert(pair.b, clusters.len());
                clusters.push(Cluster {
                    core,
                    members: vec![pair.a, pair.b],
                });
                true
            }
            (Some(c), None) | (None, Some(c)) => {
                let newcomer = if home.contains_key(&pair.a) {
                    pair.b
                } else {
                    pair.a
                };
                let joins = linked(newcomer, clusters[c].core);
                if joins {
                    clusters[c].members.push(newcomer);
                    home.insert(newcomer, c);
                }
                joins
            }
            (Some(x), Some(y)) => {
                let (large, small) = if (clusters[x].members.len(), clusters[y].core)
                    >= (clusters[y].members.len(), clusters[x].core)
                {
                    (x, y)
                } else {
                    (y, x)
                };
                let core = clusters[large].core;
                let joins = clusters[small].members.iter().all(|&m| linked(m, core));
                if joins {
                    let moved = std::mem::take(&mut clusters[small].members);
                    for &m in &moved {
                        home.insert(m, large);
                    }
                    clusters[large].members.extend(moved);
                }
                joins
            }
        };
        if !joined {
            refused.push(pair);
        }
    }

    review.extend(refused);
    review.retain(|p| match (home.get(&p.a), home.get(&p.b)) {
        (Some(x), Some(y)) => x != y,
        _ => true,
    });
    review.sort_by(|x, y| {
        y.total
            .total_cmp(&x.total)
            .then(y.log2_odds.total_cmp(&x.log2_odds))
            .then((x.a, x.b).cmp(&(y.a, y.b)))
    });
    let mut clusters: Vec<Vec<RecordId>> = clusters
        .into_iter()
        .map(|c| c.members)
        .filter(|members| members.len() > 1)
        .map(|mut members| {
            members.sort_unstable();
            members
        })
        .collect();
    clusters.sort_unstable();
    Clustering { clusters, review }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair(a: RecordId, b: RecordId, total: f64) -> PairScore {
        PairScore {
            a,
            b,
            total,
            log2_odds: 0.0,
            guard: None,
            fields: Vec::new(),
        }
    }

    #[test]
    fn strong_triangle_is_one_cluster() {
        let out = cluster(
            vec![pair(1, 2, 0.99), pair(2, 3, 0.98), pair(1, 3, 0.97)],
            &MatchConfig::default(),
        );
        assert_eq!(out.clusters, vec![vec![1, 2, 3]]);
        assert!(out.review.is_empty());
    }

    #[test]
    fn members_need_only_match_the_core() {
        // 1 has phone and email, 2 the phone, 3 the email: 2–3 share nothing
        // but both are strong matches of 1, the core.
        let out = cluster(
            vec![pair(1, 2, 0.99), pair(1, 3, 0.98), pair(2, 3, 0.6)],
            &MatchConfig::default(),
        );
        assert_eq!(out.clusters, vec![vec![1, 2, 3]]);
        assert!(out.review.is_empty());
    }

    #[test]
    fn chain_of_strong_links_is_cut() {
        // 1–2, 2–3, 3–4 strong; 1 and 4 are linked only through the chain.
        let out = cluster(
            vec![pair(1, 2, 0.99), pair(2, 3, 0.98), pair(3, 4, 0.97)],
            &MatchConfig::default(),
        );
        assert_eq!(out.clusters, vec![vec![1, 2, 3]]);
        let review: Vec<_> = out.review.iter().map(|p| (p.a, p.b)).collect();
        assert_eq!(review, vec![(3, 4)]);
    }

    #[test]
    fn clusters_merge_only_when_every_member_meets_the_core() {
        // Two pairs {1,2} and {3,4}, bridged by 2–3 only.
        let pairs = vec![pair(1, 2, 0.99), pair(3, 4, 0.99), pair(2, 3, 0.97)];
        let out = cluster(pairs, &MatchConfig::default());
        assert_eq!(out.clusters, vec![vec![1, 2], vec![3, 4]]);
        assert_eq!(out.review.len(), 1);
    }

    #[test]
    fn long_chain_of_strong_links_does_not_snowball() {
        let pairs: Vec<_> = (0..100).map(|i| pair(i, i + 1, 0.99)).collect();
        let out = cluster(pairs, &MatchConfig::default());
        assert!(
            out.clusters.iter().all(|c| c.len() <= 3),
            "{:?}",
            out.clusters
        );
    }

    #[test]
    fn output_is_deterministic_whatever_the_input_order() {
        let mut pairs = vec![
            pair(5, 9, 0.99),
            pair(1, 2, 0.96),
            pair(2, 7, 0.7),
            pair(9, 11, 0.99),
            pair(5, 11, 0.99),
        ];
        let first = cluster(pairs.clone(), &MatchConfig::default());
        pairs.reverse();
        assert_eq!(cluster(pairs, &MatchConfig::default()), first);
        assert_eq!(first.clusters, vec![vec![1, 2], vec![5, 9, 11]]);
    }

    #[test]
    fn below_review_is_dropped() {
        let out = cluster(vec![pair(1, 2, 0.1)], &MatchConfig::default());
        assert!(out.clusters.is_empty() && out.review.is_empty());
    }
}
