//! One integration-test binary: every test runs the real `ganger` on real processes.

#![allow(
    clippy::pedantic,
    reason = "test code favours directness over the pedantic lints"
)]

mod support;

mod check;
mod container;
mod control;
mod control_limits;
mod dotenv;
mod export;
mod export_order;
mod export_safety;
mod export_settings;
mod export_tools;
mod export_unordered;
mod foreman;
mod help;
mod init;
mod orchestration;
mod ownership;
mod pid1;
mod relay;
mod restart;
mod run;
mod settings;
mod shell;
mod start;
mod tty;
