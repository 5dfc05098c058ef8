//! The approval engine of design §2 flow 3 and §7: who may approve which remediation
//! ([`policy`]), one request's state machine ([`request`], pure), and the live, journaled set of
//! requests ([`store`]).
//!
//! A button carries only a [`RequestId`]; the server-side request and the policy decide. A
//! request is bound to the plan fingerprint it showed, needs a quorum of distinct people other
//! than the requester, expires, and starts executing at most once.

pub mod policy;
pub mod request;
pub mod store;

pub use policy::{Actor, PersonKey, Platform, Policy, PolicyError, Rule};
pub use request::{
    Approval, ApprovalRequest, ApprovalState, Decision, NewRequest, Refusal, RequestId, Requester,
};
pub use store::{ApprovalStore, INTERRUPTED_OUTCOME, Proposal, RestoreReport};
