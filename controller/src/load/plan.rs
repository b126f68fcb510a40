//! Whether a rollout's built-in load should run now, and with what. Pure: no I/O, no clock.

use std::time::Duration;

use chrono::{DateTime, Utc};
use sluice_crds::{LoadSpec, Phase, RolloutStatus};

/// Load for one rollout's canary, as the generator sends it.
#[derive(Debug, Clone, PartialEq)]
pub struct LoadPlan {
    pub namespace: String,
    pub name: String,
    /// The canary revision the requests are counted under.
    pub revision: String,
    /// `http://host:port` of the canary itself (never user-chosen).
    pub base: String,
    /// Requested in turn.
    pub paths: Vec<String>,
    pub headers: Vec<(String, String)>,
    /// Requests per second.
    pub rate: f64,
    /// Most requests in flight.
    pub concurrency: usize,
    pub timeout: Duration,
    /// No request is sent at or after this moment.
    pub until: DateTime<Utc>,
}

/// What the shell knows about one rollout at the end of a reconcile.
#[derive(Debug, Clone, Copy)]
pub struct LoadInput<'a> {
    pub namespace: &'a str,
    pub name: &'a str,
    pub spec: Option<&'a LoadSpec>,
    pub status: &'a RolloutStatus,
    /// The canary's readiness as observed in this reconcile.
    pub canary_ready: bool,
    /// `host:port` of the canary (its Service on Kubernetes, `canary.address` standalone).
    pub canary_address: &'a str,
    pub now: DateTime<Utc>,
}

/// The load that should run now, or `None`: no `load` in the spec, the rollout is not
/// `Progressing` (so paused, promoting, rolling back, finished), it was aborted, the canary is
/// not ready (its errors would be the start-up's, not the revision's), or `durationSeconds`
/// since the rollout started have passed.
pub fn desired(input: LoadInput<'_>) -> Option<LoadPlan> {
    let spec = input.spec?;
    let st = input.status;
    if st.phase != Phase::Progressing || st.abort.is_some() || !input.canary_ready {
        return None;
    }
    if !spec.problems().is_empty() {
        return None;
    }
    let revision = st.canary_revision.clone()?;
    let started = st.started_at?;
    let until = started + chrono::Duration::seconds(spec.duration_seconds());
    if input.now >= until {
        return None;
    }
    Some(LoadPlan {
        namespace: input.namespace.to_string(),
        name: input.name.to_string(),
        revision,
        base: format!("http://{}", input.canary_address),
        paths: spec.paths(),
        headers: spec
            .headers
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        rate: spec.rate,
        concurrency: usize::try_from(spec.concurrency()).unwrap_or(1).max(1),
        timeout: Duration::from_secs(u64::try_from(spec.timeout_seconds()).unwrap_or(5)),
        until,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_crds::AbortInfo;

    fn at(s: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_700_000_000 + s, 0).unwrap()
    }

    fn status(phase: Phase) -> RolloutStatus {
        RolloutStatus {
            phase,
            canary_revision: Some("v2".into()),
            stable_revision: Some("v1".into()),
            started_at: Some(at(0)),
            ..RolloutStatus::default()
        }
    }

    fn spec() -> LoadSpec {
        LoadSpec {
            rate: 20.0,
            paths: vec!["/a".into(), "/b".into()],
            headers: [("Host".to_string(), "shop".to_string())].into(),
            duration_seconds: Some(600),
            ..LoadSpec::default()
        }
    }

    fn input<'a>(spec: Option<&'a LoadSpec>, st: &'a RolloutStatus, now: i64) -> LoadInput<'a> {
        LoadInput {
            namespace: "shop",
            name: "web",
            spec,
            status: st,
            canary_ready: true,
            canary_address: "web-canary.shop.svc:80",
            now: at(now),
        }
    }

    #[test]
    fn progressing_with_a_ready_canary_gets_the_spec_load_to_the_canary() {
        let (sp, st) = (spec(), status(Phase::Progressing));
        let plan = desired(input(Some(&sp), &st, 10)).expect("load");
        assert_eq!(plan.base, "http://web-canary.shop.svc:80");
        assert_eq!(plan.revision, "v2");
        assert_eq!(plan.paths, vec!["/a", "/b"]);
        assert_eq!(plan.headers, vec![("Host".into(), "shop".into())]);
        assert_eq!(plan.rate, 20.0);
        assert_eq!(plan.concurrency, 8);
        assert_eq!(plan.timeout, Duration::from_secs(5));
        assert_eq!(plan.until, at(600));
    }

    #[test]
    fn every_other_phase_has_no_load() {
        let sp = spec();
        for phase in [
            Phase::Initializing,
            Phase::Idle,
            Phase::Paused,
            Phase::Promoting,
            Phase::Succeeded,
            Phase::RollingBack,
            Phase::Failed,
        ] {
            let st = status(phase);
            assert_eq!(desired(input(Some(&sp), &st, 10)), None, "{phase}");
        }
    }

    #[test]
    fn an_abort_a_canary_not_ready_the_deadline_or_no_spec_stop_it() {
        let sp = spec();
        let mut aborted = status(Phase::Progressing);
        aborted.abort = Some(AbortInfo::default());
        assert_eq!(desired(input(Some(&sp), &aborted, 10)), None);
        let st = status(Phase::Progressing);
        let not_ready = LoadInput {
            canary_ready: false,
            ..input(Some(&sp), &st, 10)
        };
        assert_eq!(desired(not_ready), None);
        assert!(desired(input(Some(&sp), &st, 599)).is_some());
        assert_eq!(desired(input(Some(&sp), &st, 600)), None);
        assert_eq!(desired(input(None, &st, 10)), None);
        let mut no_start = status(Phase::Progressing);
        no_start.started_at = None;
        assert_eq!(desired(input(Some(&sp), &no_start, 10)), None);
    }

    #[test]
    fn an_invalid_spec_sends_nothing() {
        let sp = LoadSpec {
            rate: f64::NAN,
            ..spec()
        };
        let st = status(Phase::Progressing);
        assert_eq!(desired(input(Some(&sp), &st, 10)), None);
    }
}
