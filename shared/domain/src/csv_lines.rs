//! 1-based line numbers of CSV records, for errors a person can find in their file.

/// Line numbers from the csv reader's byte offsets. Its own line count is one short after each
/// CRLF (the ending Excel and Shopify write), and its record offsets there point at the `\n` that
/// ends the previous line, so lines are counted here from the text. A quoted cell with line breaks
/// makes a record span lines: it is numbered by the line it starts on.
pub struct CsvLines<'a> {
    text: &'a [u8],
    counted_to: usize,
    line: u64,
}

impl<'a> CsvLines<'a> {
    pub fn new(text: &'a str) -> Self {
        Self {
            text: text.as_bytes(),
            counted_to: 0,
            line: 1,
        }
    }

    /// The line a record starting at `position` begins on; 0 without a position. Records are
    /// expected in file order.
    pub fn of(&mut self, position: Option<&csv::Position>) -> u64 {
        let Some(position) = position else { return 0 };
        let mut at = (position.byte() as usize).min(self.text.len());
        while at < self.text.len() && matches!(self.text[at], b'\r' | b'\n') {
            at += 1;
        }
        if at < self.counted_to {
            // Not expected; recount from the start rather than count backwards.
            self.counted_to = 0;
            self.line = 1;
        }
        // A line ends at `\n`, `\r\n` or a lone `\r` (old Mac files), as the csv reader's
        // records do: counting only `\n` numbered every row of a CR-only file line 1.
        let span = &self.text[self.counted_to..at];
        self.line += span
            .iter()
            .enumerate()
            .filter(|&(i, &b)| b == b'\n' || (b == b'\r' && span.get(i + 1) != Some(&b'\n')))
            .count() as u64;
        self.counted_to = at;
        self.line
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_counted_alike_for_lf_and_crlf_endings() {
        let lf = "a,b\n1,\"two\nlines\"\n\n3,4\n";
        let crlf = lf.replace('\n', "\r\n");
        for text in [lf, crlf.as_str()] {
            let mut lines = CsvLines::new(text);
            let mut reader = csv::Reader::from_reader(text.as_bytes());
            let found: Vec<u64> = reader
                .records()
                .map(|r| lines.of(r.unwrap().position()))
                .collect();
            assert_eq!(found, vec![2, 5], "{text:?}");
        }
    }

    #[test]
    fn a_lone_carriage_return_ends_a_line_as_it_ends_a_record() {
        let cr = "a,b\r1,2\r3,4\r\n5,6";
        let mut lines = CsvLines::new(cr);
        let mut reader = csv::Reader::from_reader(cr.as_bytes());
        let found: Vec<u64> = reader
            .records()
            .map(|r| lines.of(r.unwrap().position()))
            .collect();
        assert_eq!(found, vec![2, 3, 4]);
    }
}
