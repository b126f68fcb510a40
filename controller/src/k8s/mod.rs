//! Kubernetes controller: reconcile, workloads, Kubernetes routers, status, leader election.
