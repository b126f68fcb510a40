//! CRD YAML generated from the types (what `sluice crds` prints and `crds/yaml/` holds).

use kube::CustomResourceExt;

use crate::analysis::AnalysisTemplate;
use crate::rollout::Rollout;

#[derive(Debug, thiserror::Error)]
#[error("cannot render CRD YAML: {0}")]
pub struct CrdError(String);

fn render<K: CustomResourceExt>() -> Result<String, CrdError> {
    serde_saphyr::to_string(&K::crd()).map_err(|e| CrdError(e.to_string()))
}

/// The Rollout CRD as YAML.
pub fn rollout_crd_yaml() -> Result<String, CrdError> {
    render::<Rollout>()
}

/// The AnalysisTemplate CRD as YAML.
pub fn analysis_template_crd_yaml() -> Result<String, CrdError> {
    render::<AnalysisTemplate>()
}

/// Both CRDs as one multi-document YAML stream.
pub fn all_crds_yaml() -> Result<String, CrdError> {
    Ok(format!(
        "---\n{}---\n{}",
        rollout_crd_yaml()?,
        analysis_template_crd_yaml()?
    ))
}
