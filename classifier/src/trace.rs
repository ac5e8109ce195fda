//! Reading and writing metadata traces (JSON lines, time-ordered).
//!
//! The reader streams: it holds one line at a time, so a trace of any size
//! can be replayed in constant memory. A line that does not parse is an error
//! that names its 1-based line number (`line 5: ...`), because an operator
//! backtesting a week of exported traffic needs to find the bad line. Blank
//! lines are skipped (but still counted).

use std::io::{BufRead, Write};

use crate::Error;
use crate::event::{EventView, MetadataEvent, parse_line};

/// Streams [`MetadataEvent`]s from a trace.
pub struct TraceReader<R> {
    input: R,
    buf: Vec<u8>,
    line: u64,
}

impl<R: BufRead> TraceReader<R> {
    /// Wraps a buffered reader.
    pub fn new(input: R) -> Self {
        TraceReader {
            input,
            buf: Vec::with_capacity(256),
            line: 0,
        }
    }

    /// The number of the last line read (1-based; 0 before the first).
    pub fn line(&self) -> u64 {
        self.line
    }

    /// Reads the next non-blank line and hands its borrowed view to `f`.
    /// Returns `Ok(false)` at end of input. This is replay's allocation-free
    /// path; the [`Iterator`] impl builds owned events on top of it.
    pub fn next_view<T>(
        &mut self,
        mut f: impl FnMut(EventView<'_>) -> T,
    ) -> Result<Option<T>, Error> {
        loop {
            self.buf.clear();
            let n = self.input.read_until(b'\n', &mut self.buf)?;
            if n == 0 {
                return Ok(None);
            }
            self.line += 1;
            let line = self.line;
            let text = std::str::from_utf8(&self.buf).map_err(|_| Error::Parse {
                line,
                message: "not valid UTF-8".into(),
            })?;
            let text = text.trim();
            if text.is_empty() {
                continue;
            }
            let parsed = parse_line(text).map_err(|message| Error::Parse { line, message })?;
            return Ok(Some(f(parsed.view())));
        }
    }
}

impl<R: BufRead> Iterator for TraceReader<R> {
    type Item = Result<MetadataEvent, Error>;

    fn next(&mut self) -> Option<Self::Item> {
        self.next_view(|v| v.to_owned_event()).transpose()
    }
}

/// Writes events as trace lines. The gateway uses this to export its own
/// traffic (metadata only) so operators can backtest.
pub struct TraceWriter<W> {
    out: W,
}

impl<W: Write> TraceWriter<W> {
    /// Wraps a writer; wrap files in a `BufWriter`.
    pub fn new(out: W) -> Self {
        TraceWriter { out }
    }

    /// Appends one event as one line.
    pub fn write(&mut self, event: &MetadataEvent) -> Result<(), Error> {
        serde_json::to_writer(&mut self.out, event)?;
        self.out.write_all(b"\n")?;
        Ok(())
    }

    /// Flushes and returns the inner writer.
    pub fn finish(mut self) -> Result<W, Error> {
        self.out.flush()?;
        Ok(self.out)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::event::{Channel, Encoding, MessageMeta};
    use crate::timestamp::Timestamp;

    fn sample() -> MetadataEvent {
        MetadataEvent::Message(MessageMeta {
            at: Timestamp::parse("2026-03-01T12:00:00Z").unwrap(),
            id: "m-1".into(),
            from: "+14155550100".into(),
            to: "+14155550101".into(),
            channel: Channel::Sms,
            segments: 2,
            encoding: Encoding::Ucs2,
            bytes: 140,
            sender_type: None,
            route: None,
        })
    }

    #[test]
    fn writer_output_reads_back() {
        let mut w = TraceWriter::new(Vec::new());
        w.write(&sample()).unwrap();
        w.write(&sample()).unwrap();
        let bytes = w.finish().unwrap();
        let events: Vec<_> = TraceReader::new(&bytes[..])
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(events, vec![sample(), sample()]);
    }

    #[test]
    fn broken_line_is_reported_with_its_number() {
        let good = serde_json::to_string(&sample()).unwrap();
        let text = format!("{good}\n\n{good}\n{good}\n{{not json\n{good}\n");
        let mut reader = TraceReader::new(text.as_bytes());
        let mut ok = 0;
        let err = loop {
            match reader.next() {
                Some(Ok(_)) => ok += 1,
                Some(Err(e)) => break e,
                None => panic!("no error"),
            }
        };
        assert_eq!(ok, 3);
        let msg = err.to_string();
        assert!(msg.starts_with("line 5: "), "{msg}");
        assert!(matches!(err, Error::Parse { line: 5, .. }));
    }

    #[test]
    fn invalid_utf8_and_bad_timestamp_name_the_line() {
        let text = b"\xff\xfe\n".to_vec();
        let err = TraceReader::new(&text[..]).next().unwrap().unwrap_err();
        assert!(err.to_string().starts_with("line 1: "), "{err}");
        let text = r#"{"at":"noon","event":"status","id":"m","status":"failed"}"#;
        let err = TraceReader::new(text.as_bytes())
            .next()
            .unwrap()
            .unwrap_err();
        assert!(
            err.to_string().starts_with("line 1: invalid timestamp"),
            "{err}"
        );
    }
}
