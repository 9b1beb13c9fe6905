//! A column aligner with the semantics of Go's `text/tabwriter` (flags 0,
//! padding with spaces), which Docker's tables are printed through.
//!
//! Cells are tab-terminated; the text after a line's last tab is not part of
//! a column and is never padded. A column block is a run of consecutive lines
//! that all have a cell in that column; its width is the widest cell plus
//! `padding`, at least `min_width`.

pub struct TabWriter {
    min_width: usize,
    padding: usize,
    text: String,
}

impl TabWriter {
    /// Docker's table writer: `tabwriter.NewWriter(out, 10, 1, 3, ' ', 0)`.
    pub fn docker_table() -> Self {
        TabWriter::new(10, 3)
    }

    pub fn new(min_width: usize, padding: usize) -> Self {
        TabWriter {
            min_width,
            padding,
            text: String::new(),
        }
    }

    pub fn push_str(&mut self, s: &str) {
        self.text.push_str(s);
    }

    /// Aligns everything written so far.
    pub fn finish(self) -> String {
        let trailing_newline = self.text.ends_with('\n');
        let body = self.text.strip_suffix('\n').unwrap_or(&self.text);
        if body.is_empty() && !trailing_newline {
            return String::new();
        }
        let lines: Vec<Vec<&str>> = body.split('\n').map(|l| l.split('\t').collect()).collect();
        let mut out = String::new();
        let mut widths = Vec::new();
        self.format(&lines, 0, lines.len(), &mut widths, &mut out);
        // `format` wrote a newline after every line; drop the last if the input lacked it.
        if !trailing_newline {
            out.pop();
        }
        out
    }

    fn format(
        &self,
        lines: &[Vec<&str>],
        mut line0: usize,
        line1: usize,
        widths: &mut Vec<usize>,
        out: &mut String,
    ) {
        let column = widths.len();
        let mut this = line0;
        while this < line1 {
            if column + 1 >= lines[this].len() {
                this += 1;
                continue;
            }
            // This line has a cell in `column`: a block starts here.
            self.write_lines(lines, line0, this, widths, out);
            line0 = this;
            let mut width = self.min_width;
            while this < line1 && column + 1 < lines[this].len() {
                let w = cell_width(lines[this][column]) + self.padding;
                width = width.max(w);
                this += 1;
            }
            widths.push(width);
            self.format(lines, line0, this, widths, out);
            widths.pop();
            line0 = this;
        }
        self.write_lines(lines, line0, line1, widths, out);
    }

    fn write_lines(
        &self,
        lines: &[Vec<&str>],
        from: usize,
        to: usize,
        widths: &[usize],
        out: &mut String,
    ) {
        for line in &lines[from..to] {
            for (j, cell) in line.iter().enumerate() {
                out.push_str(cell);
                if j < widths.len() && j + 1 < line.len() {
                    let pad = widths[j].saturating_sub(cell_width(cell));
                    out.push_str(&" ".repeat(pad));
                }
            }
            out.push('\n');
        }
    }
}

fn cell_width(s: &str) -> usize {
    s.chars().count()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn align(s: &str) -> String {
        let mut t = TabWriter::docker_table();
        t.push_str(s);
        t.finish()
    }

    #[test]
    fn docker_images_header() {
        let out = align(
            "REPOSITORY\tTAG\tIMAGE ID\tCREATED\tSIZE\nbusybox\tlatest\t0123456789ab\t2 hours ago\t4.26MB\n",
        );
        assert_eq!(
            out,
            "REPOSITORY   TAG       IMAGE ID       CREATED       SIZE\n\
             busybox      latest    0123456789ab   2 hours ago   4.26MB\n"
        );
    }

    #[test]
    fn min_width_and_unterminated_last_cell() {
        assert_eq!(align("a\tb\n"), "a         b\n");
        assert_eq!(align("no tabs\n"), "no tabs\n");
        assert_eq!(align(""), "");
    }

    #[test]
    fn blocks_end_at_lines_without_the_column() {
        let mut t = TabWriter::new(0, 1);
        t.push_str("Client:\n Version:\t1\n API version:\t1.47\nServer:\n Version:\t2\n");
        assert_eq!(
            t.finish(),
            "Client:\n Version:     1\n API version: 1.47\nServer:\n Version: 2\n"
        );
    }

    #[test]
    fn counts_characters_not_bytes() {
        assert_eq!(
            align("ab…\tx\nabcdefghijk\ty\n"),
            "ab…           x\nabcdefghijk   y\n"
        );
    }
}
