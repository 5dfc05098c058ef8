//! Alert intake: webhooks from Alertmanager and Grafana become incidents, one per alert
//! group, each with one root message and a thread, and trigger one triage per cause.
//!
//! `payload` parses the bodies (pure); `auth` checks credentials (pure); `incident` applies
//! snapshots idempotently (pure); `trigger` decides when to triage (pure); `service` is the
//! I/O: the endpoints, the journaled store, and the worker that talks to chat.

pub mod auth;
pub mod incident;
pub mod labels;
pub mod payload;
pub mod render;
pub mod service;
pub mod trigger;
