//! A built-in floor (e.g. success rate >= 0.95) judged against stable too: when the canary
//! fails it and stable fails the same threshold over the same window, the cause is shared (a
//! dependency outage, a traffic spike), not the canary: the verdict is Inconclusive
//! (`StableFailsToo`), so `inconclusiveLimit` / `onInconclusive` decide instead of a rollback.

use super::{Ctx, Step};
use crate::builtin::{value_query, Arm, BuiltinMetric, Provider};
use crate::template::Variables;
use crate::verdict::{judge_threshold, InconclusiveCause, Threshold, Verdict, VerdictKind};

pub(crate) async fn judge(
    ctx: &mut Ctx<'_>,
    provider: Provider,
    metric: BuiltinMetric,
    threshold: &Threshold,
    vars: &Variables,
) -> Step<Verdict> {
    let query = |arm| {
        value_query(provider, metric, arm).ok_or_else(|| {
            Verdict::error(format!(
                "{} is a comparison metric, not a threshold metric",
                metric.name()
            ))
        })
    };
    let canary = judge_threshold(&ctx.run(&query(Arm::Canary)?, vars).await?, threshold);
    if canary.kind != VerdictKind::Fail {
        return Ok(canary);
    }
    let stable = judge_threshold(&ctx.run(&query(Arm::Stable)?, vars).await?, threshold);
    if stable.kind != VerdictKind::Fail {
        return Ok(canary);
    }
    let show = |v: Option<f64>| v.map_or("-".to_string(), |x| format!("{:.4}", x));
    Ok(Verdict::inconclusive(
        InconclusiveCause::StableFailsToo,
        canary.value,
        format!(
            "canary {} and stable {} both fail the threshold over the same window: a shared cause, not the canary",
            show(canary.value),
            show(stable.value)
        ),
    ))
}
