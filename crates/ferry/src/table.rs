//! Plain-text tables for the admin commands: left-aligned columns separated
//! by two spaces, widths fitted to the widest cell.

/// Renders `header` and `rows` (each as long as `header`) as lines of text.
pub(crate) fn render(header: Vec<String>, rows: impl IntoIterator<Item = Vec<String>>) -> String {
    let rows: Vec<Vec<String>> = std::iter::once(header).chain(rows).collect();
    let columns = rows.first().map_or(0, Vec::len);
    let widths: Vec<usize> =
        (0..columns).map(|i| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0)).collect();
    let mut out = String::new();
    for row in &rows {
        let mut line = String::new();
        for (i, cell) in row.iter().enumerate() {
            if i > 0 {
                line.push_str("  ");
            }
            line.push_str(cell);
            if i + 1 < row.len() {
                line.extend(std::iter::repeat_n(' ', widths[i] - cell.chars().count()));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn columns_are_aligned() {
        let header = vec!["A".to_owned(), "BB".to_owned()];
        let rows = vec![vec!["long".to_owned(), "x".to_owned()]];
        assert_eq!(super::render(header, rows), "A     BB\nlong  x\n");
    }
}
