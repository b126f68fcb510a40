//! Gate header values from Secrets (`secretKeyRef`) in the Rollout's namespace, read when the
//! gate is asked (never cached, so a rotated Secret is used at the next ask). Needs `get` on
//! `secrets` in the namespace (the chart's Role; see docs/gates.md).

use std::future::Future;
use std::pin::Pin;

use k8s_openapi::api::core::v1::Secret;
use kube::api::Api;
use kube::Client;
use sluice_crds::GateHeader;

use crate::gates::HeaderValues;

pub struct SecretHeaders {
    pub client: Client,
    pub namespace: String,
}

impl HeaderValues for SecretHeaders {
    fn value<'a>(
        &'a self,
        header: &'a GateHeader,
    ) -> Pin<Box<dyn Future<Output = Result<String, String>> + Send + 'a>> {
        Box::pin(async move {
            if let Some(v) = &header.value {
                return Ok(v.clone());
            }
            let name = &header.name;
            let Some(r) = &header.secret_key_ref else {
                return Err(format!(
                    "header {name}: env works in standalone mode only; use secretKeyRef"
                ));
            };
            let api: Api<Secret> = Api::namespaced(self.client.clone(), &self.namespace);
            let secret = api.get_opt(&r.name).await.map_err(|e| {
                format!(
                    "header {name}: cannot read Secret {}/{}: {}",
                    self.namespace,
                    r.name,
                    sluice_analysis::causes(&e)
                )
            })?;
            let Some(secret) = secret else {
                return Err(format!(
                    "header {name}: Secret {}/{} not found",
                    self.namespace, r.name
                ));
            };
            // `data` holds the decoded bytes (the API's base64 is undone by k8s-openapi's
            // ByteString); `stringData` is write-only and never returned by the API server.
            let bytes = secret
                .data
                .as_ref()
                .and_then(|d| d.get(&r.key))
                .ok_or_else(|| {
                    format!(
                        "header {name}: Secret {}/{} has no key {}",
                        self.namespace, r.name, r.key
                    )
                })?;
            String::from_utf8(bytes.0.clone())
                .map(|s| s.trim_end_matches('\n').to_string())
                .map_err(|_| {
                    format!(
                        "header {name}: Secret {}/{} key {} is not UTF-8 text",
                        self.namespace, r.name, r.key
                    )
                })
        })
    }
}
