//! Files named on the command line, where `-` means standard input (the
//! Unix convention: `gateway export-trace | gateway replay -`).

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;

use super::CliError;

/// True when `path` is `-`.
pub fn is_stdin(path: &Path) -> bool {
    path.as_os_str() == "-"
}

/// Opens `path` for buffered reading, or standard input for `-`.
pub fn open(path: &Path) -> Result<Box<dyn BufRead>, CliError> {
    if is_stdin(path) {
        return Ok(Box::new(BufReader::new(std::io::stdin())));
    }
    File::open(path)
        .map(|f| Box::new(BufReader::new(f)) as Box<dyn BufRead>)
        .map_err(|e| CliError::input(format!("{}: {e}", path.display())))
}

/// Reads `path` (or standard input for `-`) to a string.
pub fn read_to_string(path: &Path) -> Result<String, CliError> {
    let mut s = String::new();
    open(path)?
        .read_to_string(&mut s)
        .map_err(|e| CliError::input(format!("{}: {e}", name(path))))?;
    Ok(s)
}

/// How to name `path` in a message.
pub fn name(path: &Path) -> String {
    if is_stdin(path) {
        "standard input".into()
    } else {
        path.display().to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dash_is_stdin_and_missing_files_name_themselves() {
        assert!(is_stdin(Path::new("-")));
        assert!(!is_stdin(Path::new("./-")));
        assert_eq!(name(Path::new("-")), "standard input");
        let e = open(Path::new("/nonexistent/trace.jsonl"))
            .err()
            .map(|e| e.message);
        assert!(
            e.unwrap_or_default()
                .starts_with("/nonexistent/trace.jsonl")
        );
    }
}
