//! One folder per channel to the phone network: its own configuration
//! section (and that section's checks). A channel's config never imports
//! the aggregate configuration; the aggregate (`Config`) imports
//! the channels' sections.

pub mod android;
pub mod generic;
pub mod modem;
pub mod rbm;
pub mod smpp;
pub mod telnyx;
pub mod twilio;
