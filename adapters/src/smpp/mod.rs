//! SMPP 3.4 / 5.0 pieces that need no socket: delivery receipts, the
//! meaning of `command_status` values, and the mapping between text and
//! `submit_sm` / `deliver_sm` message fields (data coding, UDH, SAR TLVs,
//! `message_payload`).
//!
//! The PDU codec itself is the `rusmpp` crate's, used by the gateway's
//! transport (`gateway::smpp`); this module works on plain values (octets
//! and integers) so it stays independent of that crate's types, is easy to
//! fuzz, and could serve another codec.

pub mod concat;
pub mod receipt;
pub mod status;

pub use concat::{Concatenation, Incoming, Sar, SmPart};
pub use receipt::{Receipt, Stat};
