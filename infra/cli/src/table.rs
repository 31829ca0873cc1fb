//! Plain-text tables: left-aligned columns two spaces apart, no trailing spaces.

use std::io::{self, Write};

pub fn write_table<const N: usize>(
    out: &mut impl Write,
    headers: [&str; N],
    rows: &[[String; N]],
) -> io::Result<()> {
    write_indented_table(out, "", headers, rows)
}

/// A table with every line, the header's too, starting with `indent`.
pub fn write_indented_table<const N: usize>(
    out: &mut impl Write,
    indent: &str,
    headers: [&str; N],
    rows: &[[String; N]],
) -> io::Result<()> {
    let mut widths = headers.map(|h| h.chars().count());
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut line = |cells: [&str; N]| -> io::Result<()> {
        let mut text = String::from(indent);
        for (i, (cell, w)) in cells.iter().zip(widths).enumerate() {
            if i > 0 {
                text.push_str("  ");
            }
            text.push_str(cell);
            text.extend(std::iter::repeat_n(' ', w - cell.chars().count()));
        }
        writeln!(out, "{}", text.trim_end())
    };
    line(headers)?;
    for row in rows {
        line(row.each_ref().map(String::as_str))?;
    }
    Ok(())
}

/// "1 row", "2 rows".
pub fn plural(n: usize, what: &str) -> String {
    if n == 1 {
        format!("1 {what}")
    } else {
        format!("{n} {what}s")
    }
}

/// A buffer as people say it: "2 units + 10%".
pub fn buffer_text(units: i64, percent: f64) -> String {
    match (units, percent == 0.0) {
        (0, true) => "none".into(),
        (u, true) => format!("{u} units"),
        (0, false) => format!("{percent}%"),
        (u, false) => format!("{u} units + {percent}%"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_line_up() {
        let mut out = Vec::new();
        write_table(
            &mut out,
            ["NAME", "ON"],
            &[["shopify".into(), "yes".into()], ["ebay".into(), "".into()]],
        )
        .unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "NAME     ON\nshopify  yes\nebay\n"
        );
    }

    #[test]
    fn an_indented_table_indents_every_line() {
        let mut out = Vec::new();
        write_indented_table(&mut out, "  ", ["A", "B"], &[["x".into(), "yy".into()]]).unwrap();
        assert_eq!(String::from_utf8(out).unwrap(), "  A  B\n  x  yy\n");
    }

    #[test]
    fn buffers_read_naturally() {
        assert_eq!(buffer_text(0, 0.0), "none");
        assert_eq!(buffer_text(2, 0.0), "2 units");
        assert_eq!(buffer_text(0, 12.5), "12.5%");
        assert_eq!(buffer_text(2, 10.0), "2 units + 10%");
    }
}
