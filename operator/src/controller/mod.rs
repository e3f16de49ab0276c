//! Reconcile drivers: read the cluster and storage, plan with the engine, apply the plan
//! through the storage layer, and report status, events and metrics.
