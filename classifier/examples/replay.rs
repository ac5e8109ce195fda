//! Reference wiring of `gateway replay TRACE.jsonl [--out FILE]`: what the
//! gateway's CLI does with this crate, in a dozen lines.
//!
//! ```text
//! cargo run -p classifier --release --example replay -- TRACE.jsonl [--out FILE]
//! ```
//! Exit 0 on success; exit 2 with `line N: ...` on stderr for a broken trace.

use std::fs::File;
use std::io::{BufReader, BufWriter, Write};
use std::process::ExitCode;

use classifier::{Config, Model, replay};

fn run() -> Result<(), String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let trace = args
        .first()
        .ok_or("usage: replay TRACE.jsonl [--out FILE]")?;
    let out = args
        .iter()
        .position(|a| a == "--out")
        .and_then(|i| args.get(i + 1));
    let model = Model::default_model().map_err(|e| e.to_string())?;
    let file = File::open(trace).map_err(|e| format!("{trace}: {e}"))?;
    let verdicts = replay::run(BufReader::new(file), &model, &Config::default())
        .map_err(|e| format!("{trace}: {e}"))?;
    let sink: Box<dyn Write> = match out {
        Some(path) => Box::new(BufWriter::new(
            File::create(path).map_err(|e| format!("{path}: {e}"))?,
        )),
        None => Box::new(BufWriter::new(std::io::stdout().lock())),
    };
    replay::write_verdicts(sink, &verdicts).map_err(|e| e.to_string())
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}
