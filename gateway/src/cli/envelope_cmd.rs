//! `gateway envelope …`: seal and open envelopes by hand, for operators and
//! for developers of the private side who need test vectors.

use std::io::Read;
use std::path::PathBuf;

use clap::Subcommand;
use hpke::Serializable;

use super::CliError;
use crate::app::config::Config;
use crate::core::address::{self, Address};
use crate::core::clock;
use crate::envelope::keys::{self, Keyring};
use crate::envelope::{Channel, Content, Direction, Envelope, Header};

/// `gateway envelope`.
#[derive(Debug, Subcommand)]
pub enum EnvelopeCommand {
    /// Seal a text into an envelope and print it (base64 wire form).
    ///
    /// By default the envelope is an outbound one sealed to this gateway's
    /// current edge key, ready for `POST /v1/messages {"envelope": …}`.
    Seal {
        /// Recipient number.
        #[arg(long)]
        to: String,
        /// Sender (number, short code or alphanumeric id).
        #[arg(long, default_value = "")]
        from: String,
        /// The text to seal.
        #[arg(long)]
        text: String,
        /// Seal to this base64 public key instead of the edge key.
        #[arg(long)]
        recipient_key: Option<String>,
        /// Direction written in the header.
        #[arg(long, value_parser = ["outbound", "inbound"], default_value = "outbound")]
        direction: String,
        /// Seconds until the body must be erased.
        #[arg(long)]
        ttl_seconds: Option<u64>,
        /// Print `{"id", "envelope"}` instead of the bare base64.
        #[arg(long)]
        json: bool,
    },
    /// Open an envelope and print its header and content as JSON.
    Open {
        /// The envelope (base64); `-` or nothing reads standard input.
        envelope: Option<String>,
        /// File with the recipient's private key (hex or base64; `-` reads
        /// standard input when the envelope is an argument). Without it, the
        /// gateway's edge keys are tried.
        #[arg(long)]
        key: Option<PathBuf>,
    },
    /// Print the clear header of an envelope without opening it.
    Inspect {
        /// The envelope (base64); `-` or nothing reads standard input.
        envelope: Option<String>,
    },
    /// Generate a recipient key pair (for a private-side identity) as JSON.
    Keygen,
}

fn read_envelope(arg: &Option<String>) -> Result<Envelope, CliError> {
    let text = match arg.as_deref() {
        Some(s) if s != "-" => s.to_string(),
        _ => {
            let mut s = String::new();
            std::io::stdin()
                .read_to_string(&mut s)
                .map_err(|e| CliError::input(format!("reading standard input: {e}")))?;
            s
        }
    };
    // Accept either the bare base64 or the JSON the gateway delivers.
    let b64 = match serde_json::from_str::<serde_json::Value>(text.trim()) {
        Ok(v) => v
            .get("envelope")
            .and_then(|e| e.as_str())
            .map(str::to_string)
            .unwrap_or_default(),
        Err(_) => text.trim().to_string(),
    };
    Envelope::from_base64(&b64).map_err(|e| CliError::input(e.to_string()))
}

fn print(v: &serde_json::Value) -> Result<(), CliError> {
    let s = serde_json::to_string_pretty(v).map_err(|e| CliError {
        code: 1,
        message: e.to_string(),
    })?;
    println!("{s}");
    Ok(())
}

/// Runs `gateway envelope …`.
// Long on purpose: one arm per `envelope` subcommand (keygen, seal, open,
// inspect), each reading its input, calling the envelope code and printing.
pub fn run(cfg: &Config, cmd: &EnvelopeCommand) -> Result<(), CliError> {
    let region = address::region(&cfg.default_region);
    match cmd {
        EnvelopeCommand::Seal {
            to,
            from,
            text,
            recipient_key,
            direction,
            ttl_seconds,
            json,
        } => {
            let to = Address::sender(to, region, "to")?;
            let from = if from.is_empty() {
                String::new()
            } else {
                Address::sender(from, region, "from")?.to_string()
            };
            let pk = match recipient_key {
                Some(k) => keys::parse_public_key(k)?,
                None => Keyring::open(&cfg.data_dir)?.current().public.clone(),
            };
            let (segments, encoding) = crate::pipeline::plan::plan(text, &cfg.sms);
            let now = clock::now_ms();
            let header = Header {
                v: crate::envelope::VERSION,
                id: uuid::Uuid::now_v7().to_string(),
                created_at: clock::rfc3339_ms(now),
                channel: Channel::Sms,
                direction: if direction == "inbound" {
                    Direction::Inbound
                } else {
                    Direction::Outbound
                },
                from,
                to: to.to_string(),
                segments,
                encoding: encoding.to_string(),
                size_class: 0,
                expires_at: ttl_seconds.map(|t| clock::rfc3339_ms(now + t as i64 * 1000)),
                kid: String::new(),
                carrier_ids: Default::default(),
                seal: Default::default(),
            };
            let env = Envelope::seal(header, &Content::text(text.clone()), &pk, &mut rand::rng())?;
            let b64 = env.to_base64();
            super::keys_cmd::emit(
                *json,
                serde_json::json!({"id": env.header.id, "envelope": b64}),
                &b64,
            )?;
        }
        EnvelopeCommand::Open { envelope, key } => {
            let envelope_on_stdin = envelope.as_deref().is_none_or(|e| e == "-");
            if envelope_on_stdin && key.as_deref().is_some_and(super::input::is_stdin) {
                return Err(CliError::input(
                    "the envelope and --key cannot both be standard input (-)",
                ));
            }
            let env = read_envelope(envelope)?;
            let content = match key {
                Some(path) => {
                    let text = super::input::read_to_string(path)?;
                    env.open(&keys::parse_private_key(&text)?)?
                }
                None => {
                    let ring = Keyring::open(&cfg.data_dir)?;
                    let edge = ring.get(&env.header.kid).ok_or_else(|| {
                        CliError::input(format!(
                            "sealed to key {} which is not an edge key here; pass --key",
                            env.header.kid
                        ))
                    })?;
                    env.open(&edge.private)?
                }
            };
            print(&serde_json::json!({"header": env.header, "content": content}))?;
        }
        EnvelopeCommand::Inspect { envelope } => {
            let env = read_envelope(envelope)?;
            print(
                &serde_json::json!({"header": env.header, "sealed_bytes": env.sealed_bytes().len()}),
            )?;
        }
        EnvelopeCommand::Keygen => {
            let (sk, pk) = keys::generate();
            print(&serde_json::json!({
                "private_key": hex::encode(sk.to_bytes()),
                "public_key": keys::public_key_b64(&pk),
                "kid": keys::kid_of(&pk),
            }))?;
        }
    }
    Ok(())
}
