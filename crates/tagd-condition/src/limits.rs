//! The size limits every condition obeys, whether written as text or built
//! as a tree.

use crate::ast::Condition;
use crate::error::ConditionError;
use crate::path::{NodePath, Step};

/// The longest condition text, in bytes.
pub const MAX_INPUT_BYTES: usize = 64 * 1024;
/// The deepest nesting: of AND/OR/NOT nodes in a tree, and of parentheses
/// and NOTs in text.
pub const MAX_DEPTH: usize = 64;
/// The longest chain of segments referencing segments.
pub const MAX_SEGMENT_DEPTH: usize = 16;

/// Refuses a tree deeper than [`MAX_DEPTH`], naming the first node past the
/// limit. Walks without recursion, so any tree can be checked.
pub fn check_depth(condition: &Condition) -> Result<(), ConditionError> {
    let depth = condition.depth();
    if depth <= MAX_DEPTH {
        return Ok(());
    }
    let mut stack = vec![(condition, NodePath::default())];
    while let Some((node, path)) = stack.pop() {
        if path.0.len() + 1 > MAX_DEPTH {
            return Err(ConditionError::TooDeep {
                path,
                depth,
                limit: MAX_DEPTH,
            });
        }
        match node {
            Condition::And(items) => stack.extend(
                items
                    .iter()
                    .enumerate()
                    .map(|(index, item)| (item, path.child(Step::And(index)))),
            ),
            Condition::Or(items) => stack.extend(
                items
                    .iter()
                    .enumerate()
                    .map(|(index, item)| (item, path.child(Step::Or(index)))),
            ),
            Condition::Not(inner) => stack.push((inner, path.child(Step::Not))),
            Condition::Predicate(_) => {}
        }
    }
    Ok(())
}
