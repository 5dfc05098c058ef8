//! The approval engine of design §2 flow 3 and §7, pure: who may approve which remediation
//! ([`policy`]) and one request's state machine ([`request`]). The live, journaled set of
//! requests is a service (`crate::services::approvals`).
//!
//! A button carries only a [`RequestId`]; the server-side request and the policy decide. A
//! request is bound to the plan fingerprint it showed, needs a quorum of distinct people other
//! than the requester, expires, and starts executing at most once.

pub mod policy;
pub mod request;

pub use policy::{Actor, PersonKey, Policy, PolicyError, Rule, Via};
pub use request::{
    Approval, ApprovalRequest, ApprovalState, Decision, NewRequest, Refusal, RequestId, Requester,
};
