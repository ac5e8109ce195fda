//! Google RCS Business Messaging (`[rbm]`).

pub mod config;
