//! # nest-launch: a coordinated run's segments on engines that already exist
//!
//! nest does not manage a cluster: OpenSSH reaches the user's machines and Kubernetes runs pods; this crate only
//! drives them, so that N copies of `nest run --coordinator URL --segment I/N` make one test with `nest
//! coordinate` (the `nest-coord` crate):
//!
//! - [`bundle`]: the files a segment elsewhere needs (tasksets, `nest.yaml`, its data files), under the project
//!   folder, and the run flags rewritten relative to it.
//! - [`ssh`]: `nest launch ssh`: per host, a private temporary folder, the binary when the host lacks this
//!   version, the files, one segment with the token on ssh's standard input, its output prefixed with the host
//!   name, the stop channel, the clean-up.
//! - [`k8s`]: `nest launch k8s`: a ConfigMap, the coordinator's Job and Service, the segments' Indexed Job and the
//!   token's Secret, as typed Kubernetes objects written to YAML.

#![deny(missing_docs)]

pub mod bundle;
pub mod k8s;
pub mod ssh;
