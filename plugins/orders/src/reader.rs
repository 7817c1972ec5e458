//! Streams orders out of a JSON Lines file, one line at a time.

use std::io::BufRead;

use tagd_plugin_api::{
    BoxError, ImportRecord, Options, RowError,
    lines::{Line, Lines, strip_bom},
    truncate_raw,
};

use crate::order::Order;

/// One order line may not exceed this.
const MAX_LINE_BYTES: usize = 16 << 20;

/// An iterator of records (or row errors) from an order export.
pub struct OrdersReader<R: BufRead> {
    lines: std::iter::Peekable<Lines<R>>,
    id_channel: String,
    currency: String,
}

impl<R: BufRead> std::fmt::Debug for OrdersReader<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OrdersReader")
            .field("id_channel", &self.id_channel)
            .finish_non_exhaustive()
    }
}

impl<R: BufRead> OrdersReader<R> {
    pub fn new(reader: R, options: &Options) -> Result<Self, BoxError> {
        let mut lines = Lines::new(reader, MAX_LINE_BYTES).peekable();
        // Look at the first non-blank line to refuse what is plainly no JSON Lines.
        loop {
            match lines.peek() {
                None => return Err("the file is empty: no orders in it".into()),
                Some(Err(e)) => return Err(format!("cannot read the file: {e}").into()),
                Some(Ok((_, Line::Text(t)))) if t.trim_ascii().is_empty() => {
                    lines.next();
                }
                Some(Ok((_, Line::Text(t))))
                    if strip_bom(t).trim_ascii_start().starts_with(b"{") =>
                {
                    break;
                }
                Some(Ok((n, Line::Text(t)))) => {
                    let shown = truncate_raw(&String::from_utf8_lossy(t));
                    let hint = if strip_bom(t).trim_ascii_start().starts_with(b"[") {
                        " (a JSON array: write one order per line)"
                    } else {
                        ""
                    };
                    return Err(format!(
                        "not JSON Lines of orders: line {n} does not start with `{{`{hint}: {shown}"
                    )
                    .into());
                }
                Some(Ok((n, Line::TooLong { len }))) => {
                    return Err(
                        format!("not JSON Lines of orders: line {n} is {len} bytes long").into(),
                    );
                }
            }
        }
        Ok(Self {
            lines,
            id_channel: options.get_or("id_channel", "").to_owned(),
            currency: options.get_or("currency", "").to_owned(),
        })
    }
}

impl<R: BufRead> Iterator for OrdersReader<R> {
    type Item = Result<ImportRecord, RowError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let (n, line) = match self.lines.next()? {
                Ok(line) => line,
                Err(e) => {
                    // Nothing after a read error can be trusted: stop.
                    while self.lines.next().is_some() {}
                    return Some(Err(RowError::new(
                        0,
                        "",
                        format!("read error, import stopped: {e}"),
                        "",
                    )));
                }
            };
            let text = match line {
                Line::Text(t) if t.trim_ascii().is_empty() => continue,
                Line::Text(t) => t,
                Line::TooLong { len } => {
                    return Some(Err(RowError::new(
                        n,
                        "",
                        format!("line of {len} bytes exceeds the limit of {MAX_LINE_BYTES}"),
                        "",
                    )));
                }
            };
            let order: Order = match serde_json::from_slice(strip_bom(&text)) {
                Ok(order) => order,
                Err(e) => {
                    let raw = String::from_utf8_lossy(&text);
                    return Some(Err(RowError::new(
                        n,
                        "",
                        format!("not an order object: {e}"),
                        &raw,
                    )));
                }
            };
            return Some(order.record(n, &self.id_channel, &self.currency));
        }
    }
}
