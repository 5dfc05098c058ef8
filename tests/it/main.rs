//! The integration tests, linked as one binary (`cargo test --test it`).
//!
//! `support` is the one harness: a real OpenBao, the lab, fake Slack and Discord APIs on
//! loopback, and the app started through its real composition root. Each other module is
//! one area, its tests named as sentences.

mod support;

mod alertmanager;
mod alerts_intake;
mod announcements;
mod approval_store;
mod audit_cli;
mod bot_token;
mod chat_bot;
mod consumers;
mod crypto_provider;
mod demo_cli;
mod deploy_manifests;
mod discord_commands;
mod discord_e2e;
mod discord_gateway;
mod discord_rest;
mod discord_verify;
mod faults;
mod fixes;
mod fuzz_parsers;
mod lab_fleet;
mod lab_kube;
mod lab_openbao;
mod lab_vault;
mod leader;
mod logs;
mod openbao;
mod pods;
mod probe_cli;
mod probe_deadline;
mod probe_fleet;
mod readme_paths;
mod remediation;
mod resync;
mod secrets_hygiene;
mod security_approvals;
mod serve_cli;
mod serve_fleet;
mod slack_e2e;
mod slack_manifest;
mod slack_socket_mode;
mod snapshots;
mod state_restart;
