//! Checks that are not Prometheus queries. `web`: a number from an HTTP endpoint's JSON answer,
//! judged like a threshold metric (one request per analysis run, in both shells). `command`
//! (standalone only): a program run at every analysis run, judged by its exit status.

pub mod command;
pub mod web;
