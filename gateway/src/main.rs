//! The `gateway` binary: a thin shell over `gateway::cli`.
fn main() {}
