//! Checks that are not Prometheus queries. `web`: a number from an HTTP endpoint's JSON answer,
//! judged like a threshold metric (one request per analysis run, in both shells).

pub mod web;
