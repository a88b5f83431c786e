//! Aligned text tables for people: a header row, columns padded to their widest cell, numbers
//! right-aligned. Scripts use `--json` instead.

use std::fmt::Write as _;

use serde_json::Value;

pub struct Table {
    header: Vec<&'static str>,
    rows: Vec<Vec<String>>,
    right: Vec<bool>,
}

impl Table {
    pub fn new(header: &[&'static str]) -> Table {
        Table {
            header: header.to_vec(),
            rows: Vec::new(),
            right: vec![false; header.len()],
        }
    }

    /// Right-aligns the named columns (counts and amounts).
    pub fn right(mut self, columns: &[&str]) -> Table {
        for (i, h) in self.header.iter().enumerate() {
            if columns.contains(h) {
                self.right[i] = true;
            }
        }
        self
    }

    pub fn row(&mut self, cells: Vec<String>) {
        debug_assert_eq!(cells.len(), self.header.len());
        self.rows.push(cells);
    }

    pub fn render(&self) -> String {
        let mut widths: Vec<usize> = self.header.iter().map(|h| h.chars().count()).collect();
        for row in &self.rows {
            for (w, cell) in widths.iter_mut().zip(row) {
                *w = (*w).max(cell.chars().count());
            }
        }
        let mut out = String::new();
        let header: Vec<String> = self.header.iter().map(|h| h.to_string()).collect();
        for row in std::iter::once(&header).chain(&self.rows) {
            let mut line = String::new();
            for (i, cell) in row.iter().enumerate() {
                let pad = widths[i] - cell.chars().count();
                let last = i + 1 == row.len();
                if i > 0 {
                    line.push_str("  ");
                }
                if self.right[i] {
                    line.extend(std::iter::repeat_n(' ', pad));
                    line.push_str(cell);
                } else {
                    line.push_str(cell);
                    if !last {
                        line.extend(std::iter::repeat_n(' ', pad));
                    }
                }
            }
            let _ = writeln!(out, "{}", line.trim_end());
        }
        out
    }
}

/// Two columns, field and value, for one record.
pub fn record(fields: &[(&str, String)]) -> String {
    let width = fields.iter().map(|(k, _)| k.chars().count()).max().unwrap_or(0);
    fields
        .iter()
        .map(|(k, v)| format!("{}\n", format!("{k:<width$}  {v}").trim_end()))
        .collect()
}

/// A JSON value as a cell: strings bare, null as `-`, lists joined with commas.
pub fn cell(value: Option<&Value>) -> String {
    match value {
        None | Some(Value::Null) => "-".into(),
        Some(Value::String(s)) if s.is_empty() => "-".into(),
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(items)) if items.is_empty() => "-".into(),
        Some(Value::Array(items)) => items.iter().map(|v| cell(Some(v))).collect::<Vec<_>>().join(","),
        Some(other) => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn pads_columns_and_right_aligns_numbers() {
        let mut t = Table::new(&["ID", "NAME", "CODES"]).right(&["CODES"]);
        t.row(vec!["a".into(), "Summer sale".into(), "1000".into()]);
        t.row(vec!["bb".into(), "Ünïcode".into(), "7".into()]);
        assert_eq!(
            t.render(),
            "ID  NAME         CODES\n\
             a   Summer sale   1000\n\
             bb  Ünïcode          7\n"
        );
    }

    #[test]
    fn cells_show_nothing_as_a_dash() {
        assert_eq!(cell(None), "-");
        assert_eq!(cell(Some(&json!(null))), "-");
        assert_eq!(cell(Some(&json!(["a", "b"]))), "a,b");
        assert_eq!(cell(Some(&json!(12))), "12");
        assert_eq!(cell(Some(&json!("x"))), "x");
    }

    #[test]
    fn records_align_their_values() {
        assert_eq!(
            record(&[("id", "1".into()), ("status", "active".into())]),
            "id      1\nstatus  active\n"
        );
    }
}
