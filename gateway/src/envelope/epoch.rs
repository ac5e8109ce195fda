//! Export-mode sealing: one HPKE key agreement per epoch instead of per message.
//!
//! Sealing every message with its own single-shot HPKE costs two X25519
//! scalar multiplications (and opening two more); at tens of thousands of
//! messages a second that is most of the CPU. In export mode the sender sets
//! up one HPKE base-mode context per recipient key and epoch (at most
//! [`EPOCH_USES`] envelopes or [`EPOCH_AGE`], whichever comes first), and
//! derives each envelope's AEAD key with the context's secret exporter
//! (RFC 9180 §5.3) over `"sms-gateway envelope key " || id`. Message ids are
//! UUIDv7s the gateway never reuses, so each key encrypts exactly one
//! plaintext and the all-zero nonce is safe. Receivers cache the context per
//! `enc`, so opening is one HKDF-Expand and one AEAD call.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use hpke::{Deserializable, OpModeR, OpModeS, Serializable};

use super::keys::{Kem, PrivateKey, PublicKey, kid_of};
use super::{Content, ENC_LEN, Envelope, HPKE_INFO, Header};
use crate::core::error::{Error, Result};

type Aead = hpke::aead::ChaCha20Poly1305;
type Kdf = hpke::kdf::HkdfSha256;
type SenderCtx = hpke::aead::AeadCtxS<Aead, Kdf, Kem>;
/// A receiver's HPKE context for one epoch.
pub type ReceiverCtx = hpke::aead::AeadCtxR<Aead, Kdf, Kem>;

/// Envelopes sealed under one epoch context at most.
pub const EPOCH_USES: u32 = 65_536;
/// Age after which a new epoch starts.
pub const EPOCH_AGE: Duration = Duration::from_secs(300);
/// Exporter context prefix; the message id follows.
pub const KEY_LABEL: &[u8] = b"sms-gateway envelope key ";
/// Epoch contexts kept at most (one per recipient key).
const MAX_EPOCHS: usize = 4096;
/// Receiver contexts cached at most.
const MAX_RECEIVERS: usize = 1024;

/// One envelope's AEAD key; zeroised on drop is not needed beyond Rust's
/// own: it lives for one seal or open.
pub(crate) struct MessageKey(pub(crate) [u8; 32]);

fn exporter_input(id: &str) -> Vec<u8> {
    let mut v = Vec::with_capacity(KEY_LABEL.len() + id.len());
    v.extend_from_slice(KEY_LABEL);
    v.extend_from_slice(id.as_bytes());
    v
}

pub(crate) fn message_key_r(ctx: &ReceiverCtx, id: &str) -> Result<MessageKey> {
    let mut k = [0u8; 32];
    ctx.export(&exporter_input(id), &mut k)
        .map_err(|_| Error::Envelope("exporter failed".into()))?;
    Ok(MessageKey(k))
}

/// Sets up the receiver context for `enc`.
pub fn receiver(sk: &PrivateKey, enc: &[u8; ENC_LEN]) -> Result<ReceiverCtx> {
    let enc = <Kem as hpke::Kem>::EncappedKey::from_bytes(enc)
        .map_err(|_| Error::Envelope("bad encapsulated key".into()))?;
    hpke::setup_receiver::<Aead, Kdf, Kem>(&OpModeR::Base, sk, &enc, HPKE_INFO)
        .map_err(|_| Error::Envelope("cannot open: wrong key or tampered envelope".into()))
}

struct Epoch {
    enc: [u8; ENC_LEN],
    ctx: SenderCtx,
    uses: u32,
    started: Instant,
}

/// Seals envelopes in export mode, keeping one live epoch per recipient key.
#[derive(Default)]
pub struct Sealer {
    epochs: Mutex<HashMap<String, Epoch>>,
}

impl Sealer {
    /// Seals `content` to `recipient` under the current epoch for that key.
    pub fn seal(
        &self,
        header: Header,
        content: &Content,
        recipient: &PublicKey,
    ) -> Result<Envelope> {
        let kid = kid_of(recipient);
        let (enc, key) = {
            let mut epochs = self
                .epochs
                .lock()
                .map_err(|_| Error::Envelope("sealer lock poisoned".into()))?;
            let fresh = match epochs.get(&kid) {
                Some(e) => e.uses >= EPOCH_USES || e.started.elapsed() >= EPOCH_AGE,
                None => true,
            };
            if fresh {
                if epochs.len() >= MAX_EPOCHS {
                    epochs.clear();
                }
                let (enc, ctx) = hpke::setup_sender::<Aead, Kdf, Kem, _>(
                    &OpModeS::Base,
                    recipient,
                    HPKE_INFO,
                    &mut rand::rng(),
                )
                .map_err(|e| Error::Envelope(format!("seal: {e}")))?;
                let mut enc_bytes = [0u8; ENC_LEN];
                enc_bytes.copy_from_slice(&enc.to_bytes());
                epochs.insert(
                    kid.clone(),
                    Epoch {
                        enc: enc_bytes,
                        ctx,
                        uses: 0,
                        started: Instant::now(),
                    },
                );
            }
            let Some(epoch) = epochs.get_mut(&kid) else {
                return Err(Error::Envelope("epoch vanished".into()));
            };
            epoch.uses += 1;
            let mut k = [0u8; 32];
            epoch
                .ctx
                .export(&exporter_input(&header.id), &mut k)
                .map_err(|_| Error::Envelope("exporter failed".into()))?;
            (epoch.enc, MessageKey(k))
        };
        Envelope::seal_export(header, content, kid, enc, &key)
    }
}

/// Opens envelopes, caching export-mode receiver contexts by `enc`.
#[derive(Default)]
pub struct Opener {
    contexts: Mutex<HashMap<[u8; ENC_LEN], ReceiverCtx>>,
}

impl Opener {
    /// Opens `env` with `sk`, reusing the epoch context when one is cached.
    pub fn open(&self, env: &Envelope, sk: &PrivateKey) -> Result<Content> {
        if env.header.seal != super::SealMode::Export {
            return env.open(sk);
        }
        let mut cache = self
            .contexts
            .lock()
            .map_err(|_| Error::Envelope("opener lock poisoned".into()))?;
        if !cache.contains_key(env.enc()) {
            if cache.len() >= MAX_RECEIVERS {
                cache.clear();
            }
            cache.insert(*env.enc(), receiver(sk, env.enc())?);
        }
        match cache.get(env.enc()) {
            Some(ctx) => env.open_export(ctx),
            None => Err(Error::Envelope("receiver context vanished".into())),
        }
    }
}
