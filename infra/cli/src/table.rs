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

/// A duration as a table cell: "850ms", "1.5s", "5s", "2m30s", "15m", "1h05m".
pub fn duration_text(ms: i64) -> String {
    const MINUTE: i64 = 60_000;
    const HOUR: i64 = 60 * MINUTE;
    match ms {
        i64::MIN..1_000 => format!("{ms}ms"),
        1_000..MINUTE => {
            if ms % 1_000 == 0 {
                format!("{}s", ms / 1_000)
            } else {
                format!("{:.1}s", ms as f64 / 1_000.0)
            }
        }
        MINUTE..HOUR => {
            let (m, s) = (ms / MINUTE, ms % MINUTE / 1_000);
            if s == 0 {
                format!("{m}m")
            } else {
                format!("{m}m{s:02}s")
            }
        }
        _ => {
            let (h, m) = (ms / HOUR, ms % HOUR / MINUTE);
            if m == 0 {
                format!("{h}h")
            } else {
                format!("{h}h{m:02}m")
            }
        }
    }
}

/// A measured quantity to three significant digits, without trailing zeros: "0", "0.25",
/// "0.00417", "12.5", "1234".
pub fn decimal(x: f64) -> String {
    if !x.is_finite() {
        return x.to_string();
    }
    if x == 0.0 {
        return "0".into();
    }
    let magnitude = x.abs().log10().floor() as i64;
    let places = (2 - magnitude).clamp(0, 9) as usize;
    let text = format!("{x:.places$}");
    let text = if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.')
    } else {
        &text
    };
    // Below the last place shown, say so rather than print 0.
    if text == "0" || text == "-0" {
        format!("<{}", 10f64.powi(-9))
    } else {
        text.to_owned()
    }
}

/// A multiplying factor: "x1", "x4", "x1.25", "x0.8".
pub fn factor_text(x: f64) -> String {
    let rounded = (x * 100.0).round() / 100.0;
    format!("x{rounded}")
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

    #[test]
    fn durations_are_short() {
        assert_eq!(duration_text(0), "0ms");
        assert_eq!(duration_text(850), "850ms");
        assert_eq!(duration_text(1_000), "1s");
        assert_eq!(duration_text(1_500), "1.5s");
        assert_eq!(duration_text(60_000), "1m");
        assert_eq!(duration_text(150_000), "2m30s");
        assert_eq!(duration_text(15 * 60_000), "15m");
        assert_eq!(duration_text(3_600_000), "1h");
        assert_eq!(duration_text(3_900_000), "1h05m");
    }

    #[test]
    fn decimals_keep_three_significant_digits() {
        assert_eq!(decimal(0.0), "0");
        assert_eq!(decimal(0.25), "0.25");
        assert_eq!(decimal(1.0 / 240.0), "0.00417");
        assert_eq!(decimal(12.5), "12.5");
        assert_eq!(decimal(2.0), "2");
        assert_eq!(decimal(1234.4), "1234");
        assert_eq!(decimal(-0.5), "-0.5");
        assert_eq!(factor_text(1.0), "x1");
        assert_eq!(factor_text(4.0), "x4");
        assert_eq!(factor_text(1.254), "x1.25");
    }
}
