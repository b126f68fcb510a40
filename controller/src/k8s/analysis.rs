//! How the Kubernetes shell runs an analysis when the state machine asks for one: the shared
//! analysis bridge with the Rollout's metrics and AnalysisTemplates, queried from Prometheus
//! (the Rollout's address, else the controller's `--prometheus`), or from an injected source.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use kube::api::{Api, ListParams};
use kube::{Client, ResourceExt};
use sluice_analysis::{MetricsSource, PrometheusClient, PrometheusConfig, Provider};
use sluice_crds::{AnalysisSpec, AnalysisTemplate, Rollout};
use tracing::warn;

use super::jobs::run_job_check;
use super::names::Names;
use crate::analysis_bridge::{promql_interval, resolve_jobs, run_analysis, RunInput, StepVars};
use crate::core::{AnalysisRun, MetricOutcome, VerdictKind};

/// Runs one analysis of `revision` for a Rollout (its spec names the metrics, its status holds
/// the sequential-test state).
pub trait AnalysisRunner: Send + Sync {
    fn run<'a>(
        &'a self,
        rollout: &'a Rollout,
        revision: &'a str,
        now: DateTime<Utc>,
    ) -> BoxFuture<'a, AnalysisRun>;
}

/// The analysis bridge on Kubernetes.
pub struct BridgeAnalysis {
    client: Client,
    default_prometheus: Option<String>,
    /// Fixed metrics source (tests); otherwise a Prometheus client per run.
    source: Option<Arc<dyn MetricsSource>>,
}

impl BridgeAnalysis {
    pub fn new(client: Client, default_prometheus: Option<String>) -> Self {
        Self {
            client,
            default_prometheus,
            source: None,
        }
    }

    pub fn with_source(mut self, source: Arc<dyn MetricsSource>) -> Self {
        self.source = Some(source);
        self
    }

    fn prometheus(&self, spec: &AnalysisSpec) -> Result<Arc<dyn MetricsSource>, String> {
        if let Some(s) = &self.source {
            return Ok(s.clone());
        }
        let p = spec.prometheus.as_ref();
        if p.is_some_and(|p| p.bearer_token_secret.is_some()) {
            // Reading Secrets would widen the controller's RBAC; not supported yet.
            return Err(
                "prometheus.bearerTokenSecret is not supported by the Kubernetes controller".into(),
            );
        }
        let address = p
            .map(|p| p.address.clone())
            .or_else(|| self.default_prometheus.clone())
            .ok_or("no Prometheus address: set spec.analysis.prometheus.address or --prometheus")?;
        let mut config = PrometheusConfig::new(address);
        if let Some(t) = p.and_then(|p| p.timeout.as_deref()) {
            config.timeout = sluice_crds::parse_duration(t).map_err(|e| e.to_string())?;
        }
        let client = PrometheusClient::new(config).map_err(|e| e.to_string())?;
        Ok(Arc::new(client))
    }

    async fn templates(&self, rollout: &Rollout, spec: &AnalysisSpec) -> Vec<AnalysisTemplate> {
        if spec.templates.is_empty() {
            return Vec::new();
        }
        let ns = rollout.namespace().unwrap_or_default();
        let api: Api<AnalysisTemplate> = Api::namespaced(self.client.clone(), &ns);
        match api.list(&ListParams::default()).await {
            Ok(l) => l.items,
            Err(e) => {
                // The bridge reports each missing template as an Error verdict.
                warn!(error = %e, "cannot list AnalysisTemplates");
                Vec::new()
            }
        }
    }
}

/// Built-in metric flavour implied by the Rollout's router.
pub fn provider_of(rollout: &Rollout) -> Provider {
    if rollout.spec.router.nginx.is_some() {
        Provider::NginxIngress
    } else {
        // Traefik CRD, and Gateway API as served by Traefik.
        Provider::Traefik
    }
}

/// Template variables of one Rollout.
pub fn step_vars(rollout: &Rollout, spec: &AnalysisSpec) -> StepVars {
    let names = Names::of(rollout);
    StepVars {
        namespace: names.namespace.clone(),
        name: names.rollout.clone(),
        primary: names.primary_service.clone(),
        canary: names.canary_service.clone(),
        interval: promql_interval(spec),
        ingress: rollout
            .spec
            .router
            .nginx
            .as_ref()
            .map(|n| n.ingress_ref.clone())
            .unwrap_or_default(),
        service: rollout
            .spec
            .service
            .name
            .clone()
            .unwrap_or_else(|| names.target.clone()),
        port: names.port.to_string(),
    }
}

fn all_error(rollout: &Rollout, revision: &str, now: DateTime<Utc>, reason: &str) -> AnalysisRun {
    let mut names: Vec<String> = rollout
        .spec
        .analysis
        .iter()
        .flat_map(|a| a.metrics.iter().map(|m| m.name.clone()))
        .collect();
    if names.is_empty() {
        names.push("analysis".to_string());
    }
    AnalysisRun {
        at: now,
        revision: revision.to_string(),
        metrics: names
            .into_iter()
            .map(|name| MetricOutcome {
                name,
                verdict: VerdictKind::Error,
                value: None,
                reason: reason.to_string(),
                sequential_state: None,
                forecast: None,
            })
            .collect(),
    }
}

impl AnalysisRunner for BridgeAnalysis {
    fn run<'a>(
        &'a self,
        rollout: &'a Rollout,
        revision: &'a str,
        now: DateTime<Utc>,
    ) -> BoxFuture<'a, AnalysisRun> {
        Box::pin(async move {
            let spec = rollout.spec.analysis.clone().unwrap_or_default();
            let source = match self.prometheus(&spec) {
                Ok(s) => s,
                Err(reason) => return all_error(rollout, revision, now, &reason),
            };
            let templates = self.templates(rollout, &spec).await;
            let status = rollout.status.clone().unwrap_or_default();
            let vars = step_vars(rollout, &spec);
            let input = RunInput {
                spec: &spec,
                templates: &templates,
                status: &status,
                vars: &vars,
                provider: provider_of(rollout),
                revision,
                now,
            };
            let mut run = run_analysis(input, source.as_ref()).await;
            let names = Names::of(rollout);
            for (metric, check) in resolve_jobs(&spec, &templates) {
                let saved = status
                    .analysis
                    .metrics
                    .iter()
                    .find(|m| m.name == metric)
                    .and_then(|m| m.sequential_state.as_ref());
                let outcome =
                    run_job_check(&self.client, &names, &metric, &check, revision, saved).await;
                run.metrics.push(outcome);
            }
            run
        })
    }
}
