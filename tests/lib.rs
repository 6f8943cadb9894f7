//! One integration-test binary: every test runs the real `ganger` on real processes.

mod support;

mod check;
mod export;
mod help;
mod pid1;
mod run;
mod start;
