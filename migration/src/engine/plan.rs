//! Plans: which migrations a command moves through, computed from an [`Overview`] without
//! any I/O. Targets resolve to positions (0 = base, n = head).

use super::error::TargetError;
use super::state::{DbState, Overview};
use super::target::Target;
use crate::StepInfo;
use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    Up,
    Down,
}

impl Direction {
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Up => "up",
            Direction::Down => "down",
        }
    }

    pub fn parse(s: &str) -> Option<Direction> {
        match s {
            "up" => Some(Direction::Up),
            "down" => Some(Direction::Down),
            _ => None,
        }
    }
}

/// The migrations a run will apply or roll back, in order.
#[derive(Debug, Clone)]
pub struct Plan {
    pub direction: Direction,
    pub steps: Vec<&'static StepInfo>,
    /// The position before and after (0 = base).
    pub from: usize,
    pub to: usize,
}

/// The tracking rows a stamp adds and removes.
#[derive(Debug, Clone)]
pub struct StampPlan {
    pub to: usize,
    pub insert: Vec<&'static StepInfo>,
    pub delete: Vec<&'static StepInfo>,
}

impl Overview {
    /// Resolves a target to a position (0 = base, n = head).
    pub fn resolve(&self, target: &Target) -> Result<usize, TargetError> {
        let n = self.steps.len();
        match target {
            Target::Head => Ok(n),
            Target::Base => Ok(0),
            Target::Relative(k) => {
                let p = self.position() as i64 + *k as i64;
                if p < 0 || p > n as i64 {
                    Err(TargetError::OutOfRange {
                        target: target.to_string(),
                        position: self.position(),
                        total: n,
                    })
                } else {
                    Ok(p as usize)
                }
            }
            Target::Name(name) => {
                let exact = self
                    .steps
                    .iter()
                    .position(|s| s.name == name || s.alias == Some(name.as_str()));
                if let Some(i) = exact {
                    return Ok(i + 1);
                }
                if name.chars().count() < 4 {
                    return Err(TargetError::Unknown {
                        target: name.clone(),
                        app: self.app,
                        short: true,
                    });
                }
                let hits: Vec<usize> = self
                    .steps
                    .iter()
                    .enumerate()
                    .filter(|(_, s)| {
                        s.name.starts_with(name.as_str())
                            || s.alias.is_some_and(|a| a.starts_with(name.as_str()))
                    })
                    .map(|(i, _)| i)
                    .collect();
                match hits.as_slice() {
                    [i] => Ok(i + 1),
                    [] => Err(TargetError::Unknown {
                        target: name.clone(),
                        app: self.app,
                        short: false,
                    }),
                    many => Err(TargetError::Ambiguous {
                        target: name.clone(),
                        candidates: many.iter().map(|i| self.steps[*i].name).collect(),
                    }),
                }
            }
        }
    }

    /// The steps that move the database up to `target` (pending ones before an applied one
    /// included: the caller decides whether that out-of-order case may run).
    pub fn plan_upgrade(&self, target: &Target) -> Result<Plan, TargetError> {
        let to = self.resolve(target)?;
        let from = self.position();
        let steps: Vec<&'static StepInfo> = (0..to)
            .filter(|i| !self.applied[*i])
            .map(|i| self.steps[i])
            .collect();
        // Below the position, a target is in the other direction unless something up to it
        // is still pending: then it is the out-of-order case the caller rules on.
        if to < from && steps.is_empty() {
            return Err(TargetError::WrongDirection {
                target: target.to_string(),
                command: "downgrade",
            });
        }
        Ok(Plan {
            direction: Direction::Up,
            steps,
            from,
            to: to.max(from),
        })
    }

    /// The steps that move the database down to `target`.
    pub fn plan_downgrade(&self, target: &Target) -> Result<Plan, TargetError> {
        let to = self.resolve(target)?;
        let from = self.position();
        if to > from {
            return Err(TargetError::WrongDirection {
                target: target.to_string(),
                command: "upgrade",
            });
        }
        let steps = (to..self.steps.len())
            .rev()
            .filter(|i| self.applied[*i])
            .map(|i| self.steps[i])
            .collect();
        Ok(Plan {
            direction: Direction::Down,
            steps,
            from,
            to,
        })
    }

    pub fn plan(&self, direction: Direction, target: &Target) -> Result<Plan, TargetError> {
        match direction {
            Direction::Up => self.plan_upgrade(target),
            Direction::Down => self.plan_downgrade(target),
        }
    }

    /// The bookkeeping changes that make exactly the first `target` migrations applied.
    pub fn plan_stamp(&self, target: &Target) -> Result<StampPlan, TargetError> {
        let to = self.resolve(target)?;
        let mut plan = StampPlan {
            to,
            insert: Vec::new(),
            delete: Vec::new(),
        };
        for (i, s) in self.steps.iter().enumerate() {
            match (i < to, self.recorded[i]) {
                (true, false) => plan.insert.push(*s),
                (false, true) => plan.delete.push(*s),
                _ => {}
            }
        }
        Ok(plan)
    }

    /// Tables the plan would create that exist already although the migration creating
    /// them is not recorded (a legacy database, or a failed run on a backend that cannot
    /// roll DDL back).
    pub fn conflicts(
        &self,
        plan: &Plan,
        state: &DbState,
    ) -> Vec<(&'static StepInfo, Vec<&'static str>)> {
        if plan.direction != Direction::Up {
            return Vec::new();
        }
        plan.steps
            .iter()
            .filter_map(|s| {
                let present: Vec<&'static str> = s
                    .creates_tables
                    .iter()
                    .copied()
                    .filter(|t| state.tables.contains(*t))
                    .collect();
                (!present.is_empty()).then_some((*s, present))
            })
            .collect()
    }

    /// The position a stamp should record for a database whose tables exist ahead of its
    /// records: the last migration whose tables all exist, following on from what is applied.
    /// None when no unrecorded migration's tables are all there.
    pub fn stamp_candidate(&self, state: &DbState) -> Option<&'static StepInfo> {
        let mut last = None;
        for (i, s) in self.steps.iter().enumerate() {
            if self.applied[i] {
                continue;
            }
            if !s.creates_tables.is_empty()
                && s.creates_tables.iter().all(|t| state.tables.contains(*t))
            {
                last = Some(*s);
            } else {
                break;
            }
        }
        last
    }
}
