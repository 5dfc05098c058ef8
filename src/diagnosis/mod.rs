//! Diagnosis: a pure function from evidence to a verdict. No I/O, no clock reads.
//!
//! `verdict` holds the output types and the contract's verdict codes; `report` packages a
//! verdict with its evidence; `rules` decides the
//! code, confidence and scope from the evidence; `chain` lays out the evidence chain an
//! on-call engineer reads (what was checked, what it showed, in order); `text` writes the
//! headline, summary, remediations and reminders; `fleet` orders several clusters' reports; `consumers`
//! reads the consumers' own signs of a failed login.

mod chain;
mod consumers;
mod fleet;
mod report;
mod rules;
mod text;
mod verdict;
pub(crate) mod words;

pub use chain::evidence_chain;
pub use fleet::{ClusterReport, FleetLine, FleetReport};
pub use report::Report;
pub use rules::diagnose;
pub use text::workload_count;
pub use verdict::*;

#[cfg(test)]
mod tests;
