//! The encrypted internal format: a clear, authenticated header and a body
//! sealed with HPKE (RFC 9180 base mode, DHKEM(X25519, HKDF-SHA256),
//! HKDF-SHA256, ChaCha20-Poly1305).
//!
//! The wire form is specified in `docs/envelope.md`; the worked example there
//! is checked byte for byte by a test in this module. The header bytes are the
//! AEAD associated data exactly as transmitted, so a receiver never has to
//! re-serialise JSON to verify it, and any changed header byte makes opening fail.
//! The plaintext is padded to a size class so ciphertext length reveals only the
//! class, never the exact length of the text.

pub mod content;
pub mod epoch;
pub mod keys;
pub mod share;

use base64::Engine;
use hpke::{Deserializable, OpModeR, OpModeS, Serializable};
use rand_core::{CryptoRng, RngCore};
use serde::{Deserialize, Serialize};

pub use content::{Content, MediaRef};
use keys::{Kem, PrivateKey, PublicKey};

use crate::core::error::{Error, Result};

type Aead = hpke::aead::ChaCha20Poly1305;
type Kdf = hpke::kdf::HkdfSha256;

/// Magic bytes that start every envelope.
pub const MAGIC: &[u8; 4] = b"GWEV";
/// Wire format version.
pub const VERSION: u8 = 1;
/// HPKE `info`: binds every key schedule to this format and version.
pub const HPKE_INFO: &[u8] = b"sms-gateway envelope v1";
/// Length of the encapsulated key (an X25519 public key).
pub const ENC_LEN: usize = 32;
/// Largest header accepted, in bytes.
pub const MAX_HEADER_LEN: usize = 8 * 1024;
/// Smallest padded plaintext size.
pub const MIN_SIZE_CLASS: u32 = 256;
/// Largest padded plaintext size (1 MiB).
pub const MAX_SIZE_CLASS: u32 = 1 << 20;
const TAG_LEN: usize = 16;

/// Channel a message travels on outside the gateway.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Channel {
    /// SMS (including MMS).
    Sms,
    /// RCS.
    Rcs,
}

/// Which way a message flows.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// From the phone network to the private side.
    Inbound,
    /// From the private side to the phone network.
    Outbound,
}

impl Direction {
    /// The lowercase name used in the store and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Inbound => "inbound",
            Self::Outbound => "outbound",
        }
    }
}

/// How the body key was obtained.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum SealMode {
    /// One HPKE single-shot seal per envelope (its own key agreement).
    #[default]
    Base,
    /// An HPKE context shared by many envelopes to the same key (one key
    /// agreement per epoch); each envelope's AEAD key is the context's
    /// exported secret for `"sms-gateway envelope key " || id`.
    Export,
}

impl SealMode {
    fn is_base(&self) -> bool {
        *self == Self::Base
    }
}

/// The clear header. Nothing here may reveal content: only routing and sizing
/// metadata that the store, queue and classifier need anyway.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Header {
    /// Format version, always 1 here.
    pub v: u8,
    /// Message id (UUIDv7).
    pub id: String,
    /// When the gateway created the envelope (RFC 3339).
    pub created_at: String,
    /// Outside channel.
    pub channel: Channel,
    /// Flow direction.
    pub direction: Direction,
    /// Sender address (E.164, short code or alphanumeric id).
    pub from: String,
    /// Recipient address.
    pub to: String,
    /// SMS segments the text needs (1 for RCS).
    pub segments: u32,
    /// `gsm7`, `ucs2`, `8bit` or `utf8` (RCS).
    pub encoding: String,
    /// Padded plaintext length in bytes (a power of two).
    pub size_class: u32,
    /// When the sealed body must be erased (RFC 3339), if ephemeral.
    #[serde(default)]
    pub expires_at: Option<String>,
    /// Key id of the recipient key the body is sealed to.
    pub kid: String,
    /// Carrier correlation ids, by adapter name.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub carrier_ids: std::collections::BTreeMap<String, String>,
    /// Sealing mode; absent means `base`.
    #[serde(default, skip_serializing_if = "SealMode::is_base")]
    pub seal: SealMode,
}

/// A parsed envelope: header (and its exact bytes), encapsulated key, ciphertext.
#[derive(Clone, PartialEq, Eq)]
pub struct Envelope {
    /// The parsed header.
    pub header: Header,
    header_bytes: Vec<u8>,
    enc: [u8; ENC_LEN],
    ciphertext: Vec<u8>,
}

impl std::fmt::Debug for Envelope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Envelope")
            .field("header", &self.header)
            .field("ciphertext_len", &self.ciphertext.len())
            .finish()
    }
}

/// The padded size class for a plaintext body of `len` bytes (4-byte length prefix included).
pub fn size_class_for(len: usize) -> Result<u32> {
    let need = len
        .checked_add(4)
        .and_then(|n| u32::try_from(n).ok())
        .ok_or_else(|| Error::invalid("content", "too large"))?;
    let class = need.next_power_of_two().max(MIN_SIZE_CLASS);
    if class > MAX_SIZE_CLASS {
        return Err(Error::invalid("content", "larger than 1 MiB"));
    }
    Ok(class)
}

fn pad(content: &[u8], class: u32) -> Vec<u8> {
    let mut out = Vec::with_capacity(class as usize);
    out.extend_from_slice(&(content.len() as u32).to_be_bytes());
    out.extend_from_slice(content);
    out.resize(class as usize, 0);
    out
}

fn unpad(plain: &[u8]) -> Result<&[u8]> {
    let bad = || Error::Envelope("padding is malformed".into());
    let len_bytes: [u8; 4] = plain
        .get(..4)
        .and_then(|s| s.try_into().ok())
        .ok_or_else(bad)?;
    let len = u32::from_be_bytes(len_bytes) as usize;
    let body = plain.get(4..4 + len).ok_or_else(bad)?;
    if plain[4 + len..].iter().any(|&b| b != 0) {
        return Err(bad());
    }
    Ok(body)
}

impl Envelope {
    /// Seals `content` to `recipient`. `header.size_class` and `header.kid` are
    /// filled in here so they always match what was sealed.
    pub fn seal<R: RngCore + CryptoRng>(
        mut header: Header,
        content: &Content,
        recipient: &PublicKey,
        rng: &mut R,
    ) -> Result<Self> {
        let body = serde_json::to_vec(content).map_err(|e| Error::Envelope(e.to_string()))?;
        header.size_class = size_class_for(body.len())?;
        header.kid = keys::kid_of(recipient);
        header.v = VERSION;
        let plain = pad(&body, header.size_class);
        Self::seal_padded(header, plain, recipient, rng)
    }

    /// Seals `plain` as it is, as the padded plaintext `header` describes.
    /// [`Envelope::seal`] pads real content; the `envelope` fuzz target
    /// seals any bytes, as anyone holding the edge key's public half can,
    /// to reach what [`Envelope::open`] parses once a body authenticates.
    pub(crate) fn seal_padded<R: RngCore + CryptoRng>(
        header: Header,
        mut plain: Vec<u8>,
        recipient: &PublicKey,
        rng: &mut R,
    ) -> Result<Self> {
        let header_bytes =
            serde_json::to_vec(&header).map_err(|e| Error::Envelope(e.to_string()))?;
        if header_bytes.len() > MAX_HEADER_LEN {
            return Err(Error::invalid("header", "longer than 8 KiB"));
        }
        let (enc, tag) = hpke::single_shot_seal_in_place_detached::<Aead, Kdf, Kem, _>(
            &OpModeS::Base,
            recipient,
            HPKE_INFO,
            &mut plain,
            &header_bytes,
            rng,
        )
        .map_err(|e| Error::Envelope(format!("seal: {e}")))?;
        plain.extend_from_slice(&tag.to_bytes());
        let mut enc_bytes = [0u8; ENC_LEN];
        enc_bytes.copy_from_slice(&enc.to_bytes());
        Ok(Self {
            header,
            header_bytes,
            enc: enc_bytes,
            ciphertext: plain,
        })
    }

    /// Opens the body with the recipient's private key. Fails when any byte of
    /// the header, the encapsulated key or the ciphertext was changed.
    pub fn open(&self, recipient: &PrivateKey) -> Result<Content> {
        if self.header.seal == SealMode::Export {
            let ctx = epoch::receiver(recipient, &self.enc)?;
            return self.open_export(&ctx);
        }
        let enc = <Kem as hpke::Kem>::EncappedKey::from_bytes(&self.enc)
            .map_err(|_| Error::Envelope("bad encapsulated key".into()))?;
        let split = self
            .ciphertext
            .len()
            .checked_sub(TAG_LEN)
            .ok_or_else(|| Error::Envelope("ciphertext shorter than its tag".into()))?;
        let mut buf = self.ciphertext[..split].to_vec();
        let tag = hpke::aead::AeadTag::<Aead>::from_bytes(&self.ciphertext[split..])
            .map_err(|_| Error::Envelope("bad tag".into()))?;
        hpke::single_shot_open_in_place_detached::<Aead, Kdf, Kem>(
            &OpModeR::Base,
            recipient,
            &enc,
            HPKE_INFO,
            &mut buf,
            &self.header_bytes,
            &tag,
        )
        .map_err(|_| Error::Envelope("cannot open: wrong key or tampered envelope".into()))?;
        self.decode_plaintext(&buf)
    }

    fn decode_plaintext(&self, buf: &[u8]) -> Result<Content> {
        if buf.len() != self.header.size_class as usize {
            return Err(Error::Envelope(
                "plaintext does not match its size class".into(),
            ));
        }
        let body = unpad(buf)?;
        serde_json::from_slice(body)
            .map_err(|_| Error::Envelope("sealed content is not valid".into()))
    }

    /// Seals under an epoch context (`seal: export`): no key agreement here.
    pub(crate) fn seal_export(
        mut header: Header,
        content: &Content,
        recipient_kid: String,
        enc: [u8; ENC_LEN],
        key: &epoch::MessageKey,
    ) -> Result<Self> {
        use chacha20poly1305::aead::{AeadInPlace, KeyInit};
        let body = serde_json::to_vec(content).map_err(|e| Error::Envelope(e.to_string()))?;
        header.size_class = size_class_for(body.len())?;
        header.kid = recipient_kid;
        header.v = VERSION;
        header.seal = SealMode::Export;
        let header_bytes =
            serde_json::to_vec(&header).map_err(|e| Error::Envelope(e.to_string()))?;
        if header_bytes.len() > MAX_HEADER_LEN {
            return Err(Error::invalid("header", "longer than 8 KiB"));
        }
        let mut plain = pad(&body, header.size_class);
        let cipher = chacha20poly1305::ChaCha20Poly1305::new(&key.0.into());
        let tag = cipher
            .encrypt_in_place_detached(&[0u8; 12].into(), &header_bytes, &mut plain)
            .map_err(|_| Error::Envelope("seal failed".into()))?;
        plain.extend_from_slice(&tag);
        Ok(Self {
            header,
            header_bytes,
            enc,
            ciphertext: plain,
        })
    }

    /// Opens an export-mode envelope with an already set-up receiver context.
    pub(crate) fn open_export(&self, ctx: &epoch::ReceiverCtx) -> Result<Content> {
        use chacha20poly1305::aead::{AeadInPlace, KeyInit};
        if self.header.seal != SealMode::Export {
            return Err(Error::Envelope("not an export-mode envelope".into()));
        }
        let key = epoch::message_key_r(ctx, &self.header.id)?;
        let split = self
            .ciphertext
            .len()
            .checked_sub(TAG_LEN)
            .ok_or_else(|| Error::Envelope("ciphertext shorter than its tag".into()))?;
        let mut buf = self.ciphertext[..split].to_vec();
        let tag = chacha20poly1305::Tag::from_slice(&self.ciphertext[split..]);
        chacha20poly1305::ChaCha20Poly1305::new(&key.0.into())
            .decrypt_in_place_detached(&[0u8; 12].into(), &self.header_bytes, &mut buf, tag)
            .map_err(|_| Error::Envelope("cannot open: wrong key or tampered envelope".into()))?;
        self.decode_plaintext(&buf)
    }

    /// The encapsulated key (shared by every envelope of an export epoch).
    pub fn enc(&self) -> &[u8; ENC_LEN] {
        &self.enc
    }

    /// The exact header bytes (the AEAD associated data).
    pub fn header_bytes(&self) -> &[u8] {
        &self.header_bytes
    }

    /// The sealed part: encapsulated key followed by ciphertext and tag. This is
    /// what the store keeps in its `sealed` column and erases on expiry.
    pub fn sealed_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(ENC_LEN + self.ciphertext.len());
        out.extend_from_slice(&self.enc);
        out.extend_from_slice(&self.ciphertext);
        out
    }

    /// Rebuilds an envelope from the store's header and sealed columns.
    pub fn from_parts(header_bytes: &[u8], sealed: &[u8]) -> Result<Self> {
        let mut wire = Vec::with_capacity(7 + header_bytes.len() + sealed.len());
        write_prefix(&mut wire, header_bytes)?;
        wire.extend_from_slice(sealed);
        Self::from_bytes(&wire)
    }

    /// The wire form: `MAGIC | VERSION | u16 header length | header | enc | ciphertext`.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out =
            Vec::with_capacity(7 + self.header_bytes.len() + ENC_LEN + self.ciphertext.len());
        // The header length was checked when sealing or parsing.
        let _ = write_prefix(&mut out, &self.header_bytes);
        out.extend_from_slice(&self.enc);
        out.extend_from_slice(&self.ciphertext);
        out
    }

    /// Parses the wire form, checking every length before use.
    pub fn from_bytes(b: &[u8]) -> Result<Self> {
        let err = |what: &str| Error::Envelope(what.to_string());
        if b.len() < 7 {
            return Err(err("truncated: shorter than the fixed prefix"));
        }
        if &b[..4] != MAGIC {
            return Err(err("not an envelope (bad magic)"));
        }
        if b[4] != VERSION {
            return Err(Error::Envelope(format!("unsupported version {}", b[4])));
        }
        let hlen = u16::from_be_bytes([b[5], b[6]]) as usize;
        if hlen > MAX_HEADER_LEN {
            return Err(err("header longer than 8 KiB"));
        }
        let header_bytes = b.get(7..7 + hlen).ok_or_else(|| err("truncated header"))?;
        let rest = &b[7 + hlen..];
        if rest.len() < ENC_LEN + TAG_LEN {
            return Err(err("truncated sealed body"));
        }
        let header: Header = serde_json::from_slice(header_bytes)
            .map_err(|e| Error::Envelope(format!("header: {e}")))?;
        if header.v != VERSION {
            return Err(err("header version does not match"));
        }
        if rest.len() - ENC_LEN != header.size_class as usize + TAG_LEN {
            return Err(err("ciphertext length does not match the size class"));
        }
        let mut enc = [0u8; ENC_LEN];
        enc.copy_from_slice(&rest[..ENC_LEN]);
        Ok(Self {
            header,
            header_bytes: header_bytes.to_vec(),
            enc,
            ciphertext: rest[ENC_LEN..].to_vec(),
        })
    }

    /// Base64 (standard alphabet, padded) of the wire form, as carried in JSON.
    pub fn to_base64(&self) -> String {
        base64::engine::general_purpose::STANDARD.encode(self.to_bytes())
    }

    /// Parses the base64 wire form.
    pub fn from_base64(s: &str) -> Result<Self> {
        let raw = base64::engine::general_purpose::STANDARD
            .decode(s.trim())
            .map_err(|_| Error::Envelope("not base64".into()))?;
        Self::from_bytes(&raw)
    }
}

fn write_prefix(out: &mut Vec<u8>, header_bytes: &[u8]) -> Result<()> {
    let hlen = u16::try_from(header_bytes.len())
        .ok()
        .filter(|&n| (n as usize) <= MAX_HEADER_LEN)
        .ok_or_else(|| Error::Envelope("header longer than 8 KiB".into()))?;
    out.extend_from_slice(MAGIC);
    out.push(VERSION);
    out.extend_from_slice(&hlen.to_be_bytes());
    out.extend_from_slice(header_bytes);
    Ok(())
}

#[cfg(test)]
mod tests;
