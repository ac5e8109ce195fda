//! Entry points for the cargo-fuzz targets in `fuzz/` (outside the
//! workspace). They panic only when an invariant breaks.

use crate::trace::{TraceReader, TraceWriter};
use crate::{Config, Model, replay::Replay};

/// Reads `data` as a metadata trace. Every event that parses must write
/// back to a line that parses to the same event, and the whole pipeline
/// (rate limits, features, model) must take any sequence of them, on any
/// clock, without panicking.
pub fn trace(data: &[u8]) {
    static MODEL: std::sync::OnceLock<Option<Model>> = std::sync::OnceLock::new();
    let Some(model) = MODEL.get_or_init(|| Model::default_model().ok()) else {
        return;
    };
    let Ok(mut replay) = Replay::new(model, &Config::default()) else {
        return;
    };
    let mut reader = TraceReader::new(data);
    loop {
        match reader.next_view(|v| {
            let owned = v.to_owned_event();
            let _ = replay.feed(v);
            owned
        }) {
            Ok(Some(event)) => {
                let mut line = Vec::new();
                let mut w = TraceWriter::new(&mut line);
                assert!(
                    w.write(&event).is_ok(),
                    "an event that parsed must serialise"
                );
                let again = TraceReader::new(line.as_slice()).next();
                match again {
                    Some(Ok(back)) => assert_eq!(back, event, "event changed through a write"),
                    other => panic!("a written event does not read back: {other:?}"),
                }
            }
            Ok(None) => break,
            // A bad line is an error naming it; the reader goes on after it.
            Err(_) => {}
        }
    }
    let _ = replay.finish();
}
