//! Sluice API types (group `sluice.dev`, version `v1alpha1`): `Rollout` and `AnalysisTemplate`,
//! their defaults and validation, the command annotation, and CRD YAML generation.

pub mod analysis;
pub mod command;
pub mod crd;
pub mod duration;
pub mod gates;
pub mod load;
pub mod notification;
pub mod rollout;
pub mod schema;
pub mod status;
pub mod steps;
pub mod validate;

pub use analysis::*;
pub use command::{Command, CommandAction, COMMAND_ANNOTATION};
pub use duration::{format_duration, parse_duration, DurationError};
pub use gates::*;
pub use load::LoadSpec;
pub use notification::*;
pub use rollout::*;
pub use status::*;
pub use steps::{effective_steps, Step};
pub use validate::{validate, FieldError, ValidationError};

/// Label Sluice puts on the objects it creates.
pub const MANAGED_BY_LABEL: &str = "app.kubernetes.io/managed-by";
/// Value of [`MANAGED_BY_LABEL`].
pub const MANAGED_BY: &str = "sluice";
/// Finalizer on Rollouts: traffic back to primary and clean-up before deletion.
pub const FINALIZER: &str = "sluice.dev/cleanup";
