//! Statistical judges: sequential canary-vs-stable ratio test, absolute SLO guard, latency
//! buckets. Pure functions over serializable state.

pub mod dispersion;
pub mod forecast;
pub mod grid;
pub mod latency;
pub mod ratio;
pub mod routes;
pub mod slo;
pub mod sprt;

pub use dispersion::Dispersion;
pub use forecast::{forecast, Forecast, Heading};
pub use latency::{choose_boundary, latency_counts, Histogram, HistogramError};
pub use ratio::{accumulate, evaluate, update, IntervalCounts, SequentialConfig, SequentialState};
pub use routes::{
    update_routes, RouteJudgement, RoutePromotion, RouteSlot, RouteSplit, RouteState,
};
pub use slo::{slo_update, SloConfig, SloState};

#[cfg(test)]
mod point_tests;
#[cfg(test)]
mod simulation_tests;
