//! Metadata-only spam defense.
//!
//! This crate defines its own metadata input type and depends on neither
//! `gateway` nor `adapters`, so no value that carries message text can reach it.
