//! # nest-scale
#![deny(missing_docs)]

pub mod usl;
