//! `repair`: what it takes to make the record true again without running a migration.
//! - A stuck in-progress marker (golang-migrate's `force`, done safely): the live schema
//!   decides. Every object of the step there: it is recorded as applied; none: as not
//!   applied; some: refused with the list, unless forced (then only the marker goes).
//! - Changed checksums (Flyway's `repair`): the current rendering of each applied migration
//!   whose statements changed is recorded as its new baseline.
//!
//! The plan is computed here from the state and the live schema; the run applies it under
//! the migration lock (see `run`).

use super::plan::Direction;
use super::record::Settle;
use super::state::Overview;
use super::verify::StepObjects;
use crate::StepInfo;
use serde::Serialize;

/// What a repair does (or would do).
#[derive(Debug, Clone, Default, Serialize)]
pub struct RepairPlan {
    /// The stuck marker, what the schema shows and how it is settled.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub marker: Option<MarkerRepair>,
    /// Applied migrations whose checksum is re-recorded.
    pub checksums: Vec<ChecksumRepair>,
}

impl RepairPlan {
    pub fn is_empty(&self) -> bool {
        self.marker.is_none() && self.checksums.is_empty()
    }
}

/// A step left half-done, and what repair records for it.
#[derive(Debug, Clone, Serialize)]
pub struct MarkerRepair {
    #[serde(serialize_with = "ser_name")]
    pub step: &'static StepInfo,
    /// The direction the interrupted run was going.
    pub direction: Direction,
    /// Whether the tracking table records it now.
    pub recorded: bool,
    /// Which of its objects the schema has and lacks.
    pub objects: StepObjects,
    /// How it is settled; None when the schema is partial and the repair is not forced.
    pub settle: Option<Settle>,
    /// False when only tables could be checked (no snapshot fits the server).
    pub thorough: bool,
}

impl MarkerRepair {
    /// Decides from the live objects: all there (or nothing to look for and the step was
    /// going up) means applied, none there means not applied, some means partial.
    pub fn new(
        step: &'static StepInfo,
        direction: Direction,
        recorded: bool,
        objects: StepObjects,
        thorough: bool,
        force: bool,
    ) -> MarkerRepair {
        let settle = if objects.present.is_empty() && objects.missing.is_empty() {
            Some(match direction {
                Direction::Up => Settle::Applied,
                Direction::Down => Settle::NotApplied,
            })
        } else if objects.missing.is_empty() {
            Some(Settle::Applied)
        } else if objects.present.is_empty() {
            Some(Settle::NotApplied)
        } else if force {
            Some(Settle::KeepRecord)
        } else {
            None
        };
        MarkerRepair {
            step,
            direction,
            recorded,
            objects,
            settle,
            thorough,
        }
    }
}

/// An applied migration whose statements changed since.
#[derive(Debug, Clone, Serialize)]
pub struct ChecksumRepair {
    #[serde(serialize_with = "ser_name")]
    pub step: &'static StepInfo,
    pub stored: String,
    pub current: String,
}

fn ser_name<S: serde::Serializer>(s: &&'static StepInfo, ser: S) -> Result<S::Ok, S::Error> {
    ser.serialize_str(s.name)
}

/// The marker's step in the overview, if there is one.
pub(crate) fn marked(ov: &Overview) -> Option<(usize, &'static StepInfo, Direction)> {
    ov.half_done.map(|(i, d)| (i, ov.steps[i], d))
}
