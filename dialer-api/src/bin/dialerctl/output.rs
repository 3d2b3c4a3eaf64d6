//! What a command prints: one JSON object tagged `"status": "success"` for `--json`, text
//! otherwise, and the fixed-width tables of the list commands.

use std::fmt::Display;

use serde::Serialize;
use serde_json::Value;

/// The result of a command: JSON for `--json`, text otherwise (either may be empty).
pub struct Output {
    pub json: Value,
    pub text: String,
}

impl Output {
    /// `value` (a JSON object) with `"status": "success"` added, or `text`.
    pub fn success(value: impl Serialize, text: String) -> anyhow::Result<Output> {
        Ok(Output {
            json: tagged(value)?,
            text,
        })
    }

    /// Only text (`--json` already printed, or nothing to print).
    pub fn text(text: String) -> Output {
        Output {
            json: Value::Null,
            text,
        }
    }

    /// Prints it the way `--json` asks; nothing when that side is empty.
    pub fn print(&self, as_json: bool) {
        if as_json && !self.json.is_null() {
            println!("{}", self.json);
        } else if !as_json && !self.text.is_empty() {
            println!("{}", self.text);
        }
    }
}

/// `value` as JSON with `"status": "success"` added when it is an object.
pub fn tagged(value: impl Serialize) -> anyhow::Result<Value> {
    let mut json = serde_json::to_value(value)?;
    if let Value::Object(map) = &mut json {
        map.insert("status".into(), "success".into());
    }
    Ok(json)
}

/// A column of a text table: padded on the right or the left to a width, or as it is (the
/// last column).
#[derive(Clone, Copy)]
pub enum Col {
    Left(usize),
    Right(usize),
    Rest,
}

/// A text table: a header line and a line per row, columns one space apart.
pub struct Table {
    cols: &'static [Col],
    text: String,
}

impl Table {
    pub fn new(cols: &'static [Col], header: &[&str]) -> Table {
        let cells: Vec<&dyn Display> = header.iter().map(|h| h as &dyn Display).collect();
        Table {
            cols,
            text: line(cols, &cells),
        }
    }

    pub fn row(&mut self, cells: &[&dyn Display]) {
        self.text.push('\n');
        self.text.push_str(&line(self.cols, cells));
    }

    pub fn into_text(self) -> String {
        self.text
    }
}

fn line(cols: &[Col], cells: &[&dyn Display]) -> String {
    cols.iter()
        .zip(cells)
        .map(|(col, cell)| match *col {
            Col::Left(w) => format!("{cell:<w$}"),
            Col::Right(w) => format!("{cell:>w$}"),
            Col::Rest => cell.to_string(),
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// An optional number, `-` when absent.
pub fn or_dash(value: Option<impl Display>) -> String {
    value.map_or_else(|| "-".to_owned(), |v| v.to_string())
}
