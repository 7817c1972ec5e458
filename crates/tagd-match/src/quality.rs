//! Pairwise precision, recall and F1 of a clustering against ground truth.

use std::collections::HashMap;
use std::hash::Hash;

use crate::record::RecordId;

/// Pairwise quality: a pair counts when both records sit in one cluster.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Quality {
    pub true_positives: u64,
    pub false_positives: u64,
    pub false_negatives: u64,
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
}

fn pairs(n: u64) -> u64 {
    n * n.saturating_sub(1) / 2
}

/// Compares `clusters` with `truth` (each record's id and its true entity);
/// records missing from `truth` count as entities of their own.
pub fn pairwise_quality<E: Eq + Hash + Clone>(
    clusters: &[Vec<RecordId>],
    truth: &[(RecordId, E)],
) -> Quality {
    let entity_of: HashMap<RecordId, &E> = truth.iter().map(|(id, e)| (*id, e)).collect();
    let mut sizes: HashMap<&E, u64> = HashMap::new();
    for (_, entity) in truth {
        *sizes.entry(entity).or_default() += 1;
    }
    let actual: u64 = sizes.values().map(|&n| pairs(n)).sum();
    let mut predicted = 0;
    let mut true_positives = 0;
    for cluster in clusters {
        predicted += pairs(cluster.len() as u64);
        let mut within: HashMap<&E, u64> = HashMap::new();
        for id in cluster {
            if let Some(entity) = entity_of.get(id) {
                *within.entry(*entity).or_default() += 1;
            }
        }
        true_positives += within.values().map(|&n| pairs(n)).sum::<u64>();
    }
    let ratio = |x: u64, y: u64| if y == 0 { 1.0 } else { x as f64 / y as f64 };
    let precision = ratio(true_positives, predicted);
    let recall = ratio(true_positives, actual);
    let f1 = if precision + recall == 0.0 {
        0.0
    } else {
        2.0 * precision * recall / (precision + recall)
    };
    Quality {
        true_positives,
        false_positives: predicted - true_positives,
        false_negatives: actual - true_positives,
        precision,
        recall,
        f1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_pairs() {
        let truth = vec![(1, 'a'), (2, 'a'), (3, 'a'), (4, 'b'), (5, 'c')];
        let q = pairwise_quality(&[vec![1, 2], vec![3, 4]], &truth);
        assert_eq!(
            (q.true_positives, q.false_positives, q.false_negatives),
            (1, 1, 2)
        );
        assert!((q.precision - 0.5).abs() < 1e-12);
        assert!((q.recall - 1.0 / 3.0).abs() < 1e-12);
        let perfect = pairwise_quality(&[vec![1, 2, 3]], &truth);
        assert!((perfect.f1 - 1.0).abs() < 1e-12);
    }
}
