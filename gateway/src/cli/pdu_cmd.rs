//! `gateway pdu decode|encode`: the SMS codec on the command line, for
//! operators who debug modems in PDU mode (contract in DESIGN.md).

use clap::Subcommand;
use rand::Rng;

use super::CliError;
use crate::app::config::Config;

/// `gateway pdu`.
#[derive(Debug, Subcommand)]
pub enum PduCommand {
    /// Decode one PDU as a modem shows it in PDU mode (SMSC field first) and
    /// print it as one JSON object. Bad hex or a truncated PDU exits with 2
    /// and names the field and offset.
    Decode {
        /// The PDU in hex.
        hex: String,
    },
    /// Encode a text as SMS-SUBMIT PDUs, one hex line per part in order, ready
    /// for AT+CMGS (GSM-7 when every character fits, else UCS-2).
    Encode {
        /// Recipient number (`+` and digits for international).
        #[arg(long)]
        to: String,
        /// The text.
        #[arg(long)]
        text: String,
        /// SMSC number to put in front; without it `00` (the SIM's default).
        #[arg(long)]
        smsc: Option<String>,
        /// Ask for a status report (TP-SRR).
        #[arg(long)]
        request_report: bool,
        /// Concatenation reference for multipart messages (random when absent).
        #[arg(long)]
        reference: Option<u16>,
        /// Print one JSON object per part (hex and the AT+CMGS length) instead of bare hex.
        #[arg(long)]
        json: bool,
    },
}

/// Runs `gateway pdu …`.
pub fn run(cfg: &Config, cmd: &PduCommand) -> Result<(), CliError> {
    match cmd {
        PduCommand::Decode { hex } => {
            let decoded =
                adapters::sms::decode_modem_hex(hex).map_err(|e| CliError::input(e.to_string()))?;
            let json = serde_json::to_string_pretty(&decoded).map_err(|e| CliError {
                code: 1,
                message: e.to_string(),
            })?;
            println!("{json}");
        }
        PduCommand::Encode {
            to,
            text,
            smsc,
            request_report,
            reference,
            json,
        } => {
            let params = adapters::sms::SubmitParams {
                smsc: smsc.clone(),
                request_report: *request_report,
                concat_reference: reference.unwrap_or_else(|| rand::rng().random()),
                options: cfg.sms.clone(),
                ..Default::default()
            };
            let (_, parts) = adapters::sms::encode_submit(to, text, &params)
                .map_err(|e| CliError::input(e.to_string()))?;
            for p in parts {
                if *json {
                    let line = serde_json::json!({"hex": p.hex, "cmgs_length": p.tpdu_length});
                    println!("{line}");
                } else {
                    println!("{}", p.hex);
                }
            }
        }
    }
    Ok(())
}
