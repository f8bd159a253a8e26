//! The integration tests on real clusters (`raftcart up` on loopback
//! ports), one module per subject, in one test binary so that the project
//! is linked into a test once. Each module names its own ports (see
//! `common::Cluster::start`), so modules run side by side.
//!
//! One module: `cargo test --test cluster failover::`.

mod common;

mod api_contract;
mod backup_restore;
mod cluster_cli;
mod consistency;
mod crash_points;
mod exactly_once;
mod failover;
mod gateway_batch;
mod hostile_network;
mod live_page;
mod membership_steps;
mod observability;
