//! Columns padded to their widest cell, as `kubectl get` prints them.

use std::io::Write;

pub struct Table {
    rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new(header: &[&str]) -> Self {
        Table {
            rows: vec![
                header
                    .iter()
                    .map(std::string::ToString::to_string)
                    .collect(),
            ],
        }
    }

    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    /// Each row after `indent`, two spaces between columns, no trailing blanks.
    pub fn write(&self, out: &mut impl Write, indent: &str) -> std::io::Result<()> {
        let columns = self.rows.iter().map(Vec::len).max().unwrap_or(0);
        let widths: Vec<usize> = (0..columns)
            .map(|i| {
                self.rows
                    .iter()
                    .filter_map(|r| r.get(i))
                    .map(|c| c.chars().count())
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        for row in &self.rows {
            let line: Vec<String> = row
                .iter()
                .zip(&widths)
                .map(|(cell, width)| format!("{cell:<width$}"))
                .collect();
            writeln!(out, "{indent}{}", line.join("  ").trim_end())?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_line_up() {
        let mut table = Table::new(&["POD", "RESULT"]);
        table.row(vec!["web-0".into(), "ok".into()]);
        let mut out = Vec::new();
        table.write(&mut out, "  ").expect("write");
        assert_eq!(
            String::from_utf8(out).expect("utf-8"),
            "  POD    RESULT\n  web-0  ok\n"
        );
    }
}
