//! How a command's report is written: as text for people, or with `--json` as one JSON document
//! holding what the text shows, with numbers as numbers and `null` where the text shows `-`.

use std::io::Write;

use anyhow::Result;
use serde::Serialize;

use crate::Terminal;

/// What a command found or did.
pub trait Report: Serialize {
    /// The text a person reads: tables and sentences.
    fn write_text(&self, out: &mut impl Write) -> std::io::Result<()>;
}

/// Writes `report` to `out` as text, or as JSON when `terminal.json`.
pub fn emit<R: Report>(out: &mut impl Write, terminal: Terminal, report: &R) -> Result<()> {
    if terminal.json {
        serde_json::to_writer_pretty(&mut *out, report)?;
        writeln!(out)?;
    } else {
        report.write_text(out)?;
    }
    out.flush()?;
    Ok(())
}
