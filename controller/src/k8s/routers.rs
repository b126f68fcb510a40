//! Picks the Kubernetes traffic router a Rollout asks for.

use kube::Client;
use sluice_crds::Rollout;

use super::discovery::Served;
use super::names::Names;
use crate::router::gateway::GatewayRouter;
use crate::router::ingress_nginx::IngressNginxRouter;
use crate::router::traefik_crd::TraefikCrdRouter;
use crate::router::TrafficRouter;

/// The router of `rollout` (None when the spec names none; validation reports that), on the
/// resource versions the cluster serves.
pub fn router_for(
    client: &Client,
    rollout: &Rollout,
    names: &Names,
    served: &Served,
) -> Option<Box<dyn TrafficRouter>> {
    let r = &rollout.spec.router;
    if let Some(n) = &r.nginx {
        return Some(Box::new(IngressNginxRouter::new(
            client.clone(),
            names.clone(),
            n.clone(),
        )));
    }
    if let Some(t) = &r.traefik {
        return Some(Box::new(TraefikCrdRouter::new(
            client.clone(),
            names.clone(),
            t,
        )));
    }
    if let Some(g) = &r.gateway_api {
        return Some(Box::new(GatewayRouter::new(
            client.clone(),
            names.clone(),
            g.http_route_ref.clone(),
            served.httproute.as_ref(),
        )));
    }
    None
}
