//! The top of the service: the aggregate configuration ([`config`]: every
//! section, and the checks across sections), the registry that builds each
//! configured channel and wires the pipeline and the delivery worker
//! ([`registry`]), and `gateway serve` ([`serve`]: task start and shutdown
//! order). Nothing below imports this module.

pub mod cluster;
pub mod config;
pub mod reference;
pub mod registry;
pub mod serve;
