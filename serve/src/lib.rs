//! Weft as a service: registered functions over HTTP (`weft serve
//! --http`), with bounded admission, health and readiness probes, a drain
//! on SIGTERM, Prometheus metrics, and peers found by DNS.
//!
//! The policies are sans-IO and tested on their own: [`route`] (which
//! operation a request names), [`admission`] (slots, queue, refusals,
//! drain), [`reply`] (how a call's end becomes a status and a JSON body),
//! [`options`] (per-function options), [`metrics`] (Prometheus text).
//! [`server`] is the thin hyper and tokio layer over them.

pub mod admission;
pub mod dns;
pub mod metrics;
pub mod options;
pub mod reply;
pub mod route;
pub mod runtime_metrics;
pub mod server;

pub use server::{Front, FrontConfig, Probes, serve, terminated};
