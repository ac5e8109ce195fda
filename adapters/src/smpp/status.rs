//! `command_status` values and what a sender should do about each.
//!
//! The delivery queue needs one decision per failed `submit_sm`: retry
//! later, slow the bind down and retry, or give up. SMPP 3.4 §5.1.3 lists
//! the codes; which are worth a retry is practice, not specification
//! (Jasmin retries `ESME_RTHROTTLED` and `ESME_RMSGQFUL`, Kannel treats
//! `ESME_RSYSERR` as temporary). Unknown and vendor-specific codes
//! (0x400–0x4FF) are retried: the queue's attempt limit bounds that, and
//! dead-lettering a message on a code we do not understand would lose it.

/// `ESME_ROK`.
pub const ROK: u32 = 0x00;
/// `ESME_RINVMSGLEN`: message length is invalid.
pub const RINVMSGLEN: u32 = 0x01;
/// `ESME_RINVCMDLEN`: command length is invalid.
pub const RINVCMDLEN: u32 = 0x02;
/// `ESME_RINVCMDID`: invalid command id.
pub const RINVCMDID: u32 = 0x03;
/// `ESME_RINVBNDSTS`: incorrect bind status for the command.
pub const RINVBNDSTS: u32 = 0x04;
/// `ESME_RALYBND`: already bound.
pub const RALYBND: u32 = 0x05;
/// `ESME_RSYSERR`: system error.
pub const RSYSERR: u32 = 0x08;
/// `ESME_RINVSRCADR`: invalid source address.
pub const RINVSRCADR: u32 = 0x0A;
/// `ESME_RINVDSTADR`: invalid destination address.
pub const RINVDSTADR: u32 = 0x0B;
/// `ESME_RBINDFAIL`: bind failed.
pub const RBINDFAIL: u32 = 0x0D;
/// `ESME_RINVPASWD`: invalid password.
pub const RINVPASWD: u32 = 0x0E;
/// `ESME_RINVSYSID`: invalid system id.
pub const RINVSYSID: u32 = 0x0F;
/// `ESME_RMSGQFUL`: message queue full.
pub const RMSGQFUL: u32 = 0x14;
/// `ESME_RSUBMITFAIL`: submit_sm failed.
pub const RSUBMITFAIL: u32 = 0x45;
/// `ESME_RTHROTTLED`: throughput exceeded.
pub const RTHROTTLED: u32 = 0x58;
/// `ESME_RX_T_APPN`: temporary application error (the SMSC should retry).
pub const RX_T_APPN: u32 = 0x64;
/// `ESME_RX_P_APPN`: permanent application error.
pub const RX_P_APPN: u32 = 0x65;
/// `ESME_RX_R_APPN`: application rejected the message.
pub const RX_R_APPN: u32 = 0x66;
/// `ESME_RINVOPTPARSTREAM`: error in the optional part of the PDU body.
pub const RINVOPTPARSTREAM: u32 = 0xC0;
/// `ESME_RUNKNOWNERR`: unknown error.
pub const RUNKNOWNERR: u32 = 0xFF;

/// What a failed request calls for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// Success.
    Ok,
    /// `ESME_RTHROTTLED`: too fast; slow the bind down, then retry.
    Throttled,
    /// `ESME_RMSGQFUL`: the SMSC's queue (for this destination) is full;
    /// slow down and retry much later.
    QueueFull,
    /// Retry later; the same request may succeed.
    Transient,
    /// Retrying the same request cannot succeed.
    Permanent,
}

impl Class {
    /// True when the message should be retried (with backoff).
    pub const fn is_retryable(self) -> bool {
        matches!(self, Self::Throttled | Self::QueueFull | Self::Transient)
    }
}

/// Classifies a `command_status` of a `submit_sm_resp` (or `deliver_sm_resp`).
pub const fn classify(status: u32) -> Class {
    match status {
        ROK => Class::Ok,
        RTHROTTLED => Class::Throttled,
        RMSGQFUL => Class::QueueFull,
        // The SMSC's own trouble, or our bind in the wrong state.
        RSYSERR | RINVBNDSTS | RALYBND | RSUBMITFAIL | RX_T_APPN | RUNKNOWNERR | 0xFE => {
            Class::Transient
        }
        // The request itself is wrong (SMPP 3.4 table 5-2): length, ids,
        // flags, addresses, data coding, TLVs, the application refused it.
        0x01..=0x03
        | 0x06
        | 0x07
        | 0x0A..=0x0C
        | 0x11
        | 0x13
        | 0x15
        | 0x33
        | 0x34
        | 0x40
        | 0x42
        | 0x43
        | 0x44
        | 0x48..=0x51
        | 0x53
        | 0x54
        | 0x55
        | 0x61
        | 0x62
        | RX_P_APPN
        | RX_R_APPN
        | 0xC0..=0xC4 => Class::Permanent,
        _ => Class::Transient,
    }
}

/// The specification's name of a status, for errors and logs
/// (`ESME_RTHROTTLED`), or `0x…` for others.
pub fn name(status: u32) -> String {
    let n = match status {
        ROK => "ESME_ROK",
        RINVMSGLEN => "ESME_RINVMSGLEN",
        RINVCMDLEN => "ESME_RINVCMDLEN",
        RINVCMDID => "ESME_RINVCMDID",
        RINVBNDSTS => "ESME_RINVBNDSTS",
        RALYBND => "ESME_RALYBND",
        RSYSERR => "ESME_RSYSERR",
        RINVSRCADR => "ESME_RINVSRCADR",
        RINVDSTADR => "ESME_RINVDSTADR",
        RBINDFAIL => "ESME_RBINDFAIL",
        RINVPASWD => "ESME_RINVPASWD",
        RINVSYSID => "ESME_RINVSYSID",
        RMSGQFUL => "ESME_RMSGQFUL",
        RSUBMITFAIL => "ESME_RSUBMITFAIL",
        RTHROTTLED => "ESME_RTHROTTLED",
        RX_T_APPN => "ESME_RX_T_APPN",
        RX_P_APPN => "ESME_RX_P_APPN",
        RX_R_APPN => "ESME_RX_R_APPN",
        RINVOPTPARSTREAM => "ESME_RINVOPTPARSTREAM",
        RUNKNOWNERR => "ESME_RUNKNOWNERR",
        _ => return format!("command_status 0x{status:08X}"),
    };
    n.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes_of_the_codes_that_matter() {
        assert_eq!(classify(ROK), Class::Ok);
        assert_eq!(classify(RTHROTTLED), Class::Throttled);
        assert_eq!(classify(RMSGQFUL), Class::QueueFull);
        assert_eq!(classify(RSYSERR), Class::Transient);
        assert_eq!(classify(RX_T_APPN), Class::Transient);
        for permanent in [
            RINVDSTADR, RINVSRCADR, RINVMSGLEN, RX_P_APPN, RX_R_APPN, 0x43,
        ] {
            assert_eq!(classify(permanent), Class::Permanent, "{permanent:#x}");
            assert!(!classify(permanent).is_retryable());
        }
        // Vendor-specific and unknown codes are retried, bounded by the queue.
        assert_eq!(classify(0x400), Class::Transient);
        assert!(classify(0x4FF).is_retryable());
        assert!(!classify(ROK).is_retryable());
    }

    #[test]
    fn names() {
        assert_eq!(name(RTHROTTLED), "ESME_RTHROTTLED");
        assert_eq!(name(0x401), "command_status 0x00000401");
    }
}
