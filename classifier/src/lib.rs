//! Metadata-only spam defense.
//!
//! This crate defines its own metadata input type ([`MetadataEvent`]) and
//! depends on neither `gateway` nor `adapters`, so no value that carries
//! message text can reach it. It is a pure pipeline in the style of a spam
//! filter that maps input to tags to a score:
//!
//! ```text
//! MetadataEvent ─▶ rate limiter (governor, manual clock) ─┐
//!               └▶ per-sender features (fixed-size state) ─▶ model score ─┐
//!                                     behavioural evidence ───────────────┤
//!                  deployment calibration (hold budget, reviews) ─────────┴▶ lines + lists ─▶ Verdict {score, verdict, reasons, tags}
//! ```
//!
//! A score alone never holds a sender: `suspect` needs a score above the
//! calibrated line *and* behavioural evidence, `spam` a score above the spam
//! line *and* strong evidence ([`evidence`], [`calibration`]).
//!
//! Where I/O happens: only in the entry points that take readers and writers
//! ([`replay::run`], [`train::train`], [`eval::evaluate`] and the trace and
//! labels readers). The [`Engine`] and everything under it take time as an
//! argument and touch no clock, file or socket, so replaying a trace gives the
//! same answers as running live did.
//!
//! Entry points for the gateway:
//! - live: [`Engine::observe`] per message, status and complaint;
//! - `gateway replay`: [`replay::run`] then [`replay::write_verdicts`];
//! - `gateway model train`: [`train::train`] / [`train::train_files`];
//! - `gateway model eval`: [`eval::evaluate`] and [`eval::EvalReport::write_svgs`].

pub mod calibration;
pub mod cluster;
pub mod confusion;
pub mod countries;
pub mod crossworld;
pub mod engine;
mod error;
pub mod eval;
pub mod event;
pub mod evidence;
pub mod features;
pub mod labels;
pub mod model;
pub mod policy;
pub mod ratelimit;
pub mod replay;
pub mod sender;
pub mod sketch;
mod svg;
pub mod timestamp;
pub mod trace;

#[doc(hidden)]
pub mod fuzzing;
pub mod train;

pub use calibration::{CalibrationConfig, CalibrationState};
pub use engine::{Detector, Engine};
pub use error::Error;
pub use event::{
    Channel, DeliveryStatus, Encoding, EventView, MessageMeta, MetadataEvent, ReportMeta,
    StatusMeta,
};
pub use evidence::Evidence;
pub use labels::{Label, LabelRecord};
pub use model::Model;
pub use policy::{
    Config, Decision, Mode, Reason, RuleTag, Thresholds, TrackingConfig, Verdict, VerdictKind,
};
pub use ratelimit::{RateDecision, RateLimitConfig};
pub use sender::SenderKind;
pub use timestamp::Timestamp;
