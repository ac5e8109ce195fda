//! Ground-truth labels for training and evaluation.
//!
//! A labels file is JSON lines, one sender per line:
//! ```text
//! {"sender":"+14155550100","label":"ham","category":"person"}
//! {"sender":"+14155550199","label":"spam","category":"hijacked","spam_from":"2026-03-03T09:00:00.000Z"}
//! ```
//! `category` is free text used to break metrics down (false positives per
//! legitimate category, recall per spam category). `spam_from`, when present,
//! says when a sender turned (a hijacked account): its earlier messages count
//! as legitimate for training, and detection delay is measured from it.

use std::io::{BufRead, Write};

use serde::{Deserialize, Serialize};

use crate::Error;
use crate::timestamp::Timestamp;

/// A binary ground-truth label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Label {
    /// Legitimate traffic.
    Ham,
    /// Unwanted or fraudulent traffic.
    Spam,
}

/// One labeled sender.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LabelRecord {
    /// Sender id as it appears in the trace's `from`.
    pub sender: String,
    /// Ground truth.
    pub label: Label,
    /// Finer category (e.g. `person`, `otp`, `snowshoe`).
    #[serde(default)]
    pub category: String,
    /// When a sender that was legitimate before began sending spam.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spam_from: Option<Timestamp>,
}

/// Reads a labels file; a bad line is an error naming its number.
pub fn read_labels(input: impl BufRead) -> Result<Vec<LabelRecord>, Error> {
    let mut out = Vec::new();
    for (i, line) in input.lines().enumerate() {
        let line = line?;
        let trimmed = line.trim();
        if trimmed.is_empty() {
            continue;
        }
        let rec: LabelRecord = serde_json::from_str(trimmed).map_err(|e| Error::Parse {
            line: i as u64 + 1,
            message: e.to_string(),
        })?;
        out.push(rec);
    }
    Ok(out)
}

/// Writes labels as JSON lines.
pub fn write_labels(mut out: impl Write, labels: &[LabelRecord]) -> Result<(), Error> {
    for rec in labels {
        serde_json::to_writer(&mut out, rec)?;
        out.write_all(b"\n")?;
    }
    out.flush()?;
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_line_numbers() {
        let recs = vec![
            LabelRecord {
                sender: "+1".into(),
                label: Label::Ham,
                category: "person".into(),
                spam_from: None,
            },
            LabelRecord {
                sender: "ACME".into(),
                label: Label::Spam,
                category: "hijacked".into(),
                spam_from: Some(Timestamp::from_unix_millis(1_000)),
            },
        ];
        let mut buf = Vec::new();
        write_labels(&mut buf, &recs).unwrap();
        assert_eq!(read_labels(&buf[..]).unwrap(), recs);
        buf.extend_from_slice(b"{\"sender\":\"x\",\"label\":\"maybe\"}\n");
        let err = read_labels(&buf[..]).unwrap_err();
        assert!(err.to_string().starts_with("line 3: "), "{err}");
    }
}
