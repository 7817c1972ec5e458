//! Paths naming a node of a condition tree in errors, e.g.
//! `condition.and[1].not.in_segment("北京高价值").or[0]`.

use std::fmt;

/// One step from a node to one of its children.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    And(usize),
    Or(usize),
    Not,
    /// Into the condition of a referenced segment.
    Segment(String),
}

/// The steps from the root to a node; the root itself is the empty path.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NodePath(pub Vec<Step>);

impl NodePath {
    #[must_use]
    pub fn child(&self, step: Step) -> NodePath {
        let mut steps = self.0.clone();
        steps.push(step);
        NodePath(steps)
    }
}

impl fmt::Display for NodePath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("condition")?;
        for step in &self.0 {
            match step {
                Step::And(index) => write!(f, ".and[{index}]")?,
                Step::Or(index) => write!(f, ".or[{index}]")?,
                Step::Not => f.write_str(".not")?,
                Step::Segment(name) => write!(f, ".in_segment({name:?})")?,
            }
        }
        Ok(())
    }
}
