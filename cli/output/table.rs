//! Tables for people. Each column says what it holds: identifiers (names, versions,
//! timestamps, numbers, flags) are never wrapped or cut; descriptive text wraps at word
//! boundaries, narrows, and is dropped first when a terminal is too narrow; when even the
//! identifiers do not fit side by side, every row becomes a `key: value` block. Pipes get
//! the Markdown table at its natural width, byte for byte what earlier versions printed.

use super::{escape_controls, Tone};
use unicode_width::{UnicodeWidthChar, UnicodeWidthStr};

/// What a column holds, which decides how it may be laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Never wrapped, cut or dropped.
    Id,
    /// Wrapped at word boundaries, narrowed, dropped first.
    Text,
}

/// One column of a table: its header and what it holds.
#[derive(Debug, Clone, Copy)]
pub struct Column {
    pub header: &'static str,
    pub kind: Kind,
}

impl Column {
    /// Identifiers, versions, timestamps, numbers and short flags: always whole.
    pub const fn id(header: &'static str) -> Column {
        Column {
            header,
            kind: Kind::Id,
        }
    }

    /// Descriptive text: may wrap, narrow, or be left out on a narrow terminal.
    pub const fn text(header: &'static str) -> Column {
        Column {
            header,
            kind: Kind::Text,
        }
    }
}

pub type Row = Vec<(String, Tone)>;

/// A descriptive column narrower than this is not worth showing: it is dropped instead.
const TEXT_MIN: usize = 16;
/// In a record block, descriptive text goes on lines of its own when less than this
/// remains beside the label.
const VALUE_MIN: usize = 20;

fn width(s: &str) -> usize {
    UnicodeWidthStr::width(s)
}

fn max_line_width(s: &str) -> usize {
    s.split('\n').map(width).max().unwrap_or(0)
}

fn longest_word(s: &str) -> usize {
    s.split_whitespace().map(width).max().unwrap_or(0)
}

/// The Markdown table (`| a | b |`), every column at its natural width.
pub fn markdown(columns: &[Column], rows: &[Row]) -> String {
    // A `|` inside a cell (a database or file name) would end the cell.
    let escaped: Vec<Row> = rows
        .iter()
        .map(|r| {
            r.iter()
                .map(|(t, tone)| (t.replace('|', "\\|"), *tone))
                .collect()
        })
        .collect();
    let rows = &escaped;
    let mut widths: Vec<usize> = columns.iter().map(|c| width(c.header)).collect();
    for row in rows {
        for (i, (text, _)) in row.iter().enumerate().take(widths.len()) {
            widths[i] = widths[i].max(max_line_width(text));
        }
    }
    let mut lines = Vec::new();
    let header: Vec<&str> = columns.iter().map(|c| c.header).collect();
    push_markdown_row(&mut lines, &header, &widths);
    let mut sep = String::from("|");
    for w in &widths {
        sep.push_str(&"-".repeat(w + 2));
        sep.push('|');
    }
    lines.push(sep);
    for row in rows {
        let cells: Vec<&str> = row.iter().map(|(t, _)| t.as_str()).collect();
        push_markdown_row(&mut lines, &cells, &widths);
    }
    lines.join("\n")
}

fn push_markdown_row(lines: &mut Vec<String>, cells: &[&str], widths: &[usize]) {
    let split: Vec<Vec<&str>> = widths
        .iter()
        .enumerate()
        .map(|(i, _)| cells.get(i).copied().unwrap_or("").split('\n').collect())
        .collect();
    let height = split.iter().map(Vec::len).max().unwrap_or(1);
    for l in 0..height {
        let mut line = String::from("|");
        for (i, w) in widths.iter().enumerate() {
            let text = split[i].get(l).copied().unwrap_or("");
            line.push(' ');
            line.push_str(text);
            line.push_str(&" ".repeat(w.saturating_sub(width(text))));
            line.push_str(" |");
        }
        lines.push(line);
    }
}

/// What a terminal rendering left out.
pub struct Rendered {
    pub text: String,
    /// Descriptive columns dropped to fit (empty when every column is shown).
    pub hidden: Vec<&'static str>,
}

/// The table for a terminal `term` columns wide (natural width when unknown).
pub fn terminal(columns: &[Column], rows: &[Row], term: Option<usize>, color: bool) -> Rendered {
    // Control characters would move the cursor or recolour the terminal, and break widths.
    let rows: Vec<Row> = rows
        .iter()
        .map(|r| {
            r.iter()
                .map(|(t, tone)| {
                    let lines: Vec<String> = t
                        .split('\n')
                        .map(|l| escape_controls(l).into_owned())
                        .collect();
                    (lines.join("\n"), *tone)
                })
                .collect()
        })
        .collect();
    let natural: Vec<usize> = (0..columns.len())
        .map(|i| {
            rows.iter()
                .filter_map(|r| r.get(i))
                .map(|(t, _)| max_line_width(t))
                .max()
                .unwrap_or(0)
                .max(width(columns[i].header))
        })
        .collect();
    let all: Vec<usize> = (0..columns.len()).collect();
    let Some(term) = term else {
        return Rendered {
            text: boxed(columns, &rows, &all, &natural, &natural, color),
            hidden: Vec::new(),
        };
    };
    match plan(columns, &rows, &natural, term) {
        Some((visible, widths)) => {
            let hidden = (0..columns.len())
                .filter(|i| !visible.contains(i) && columns[*i].kind == Kind::Text)
                .filter(|i| {
                    rows.iter()
                        .any(|r| r.get(*i).is_some_and(|c| !c.0.is_empty()))
                })
                .map(|i| columns[i].header)
                .collect();
            let full: Vec<usize> = widths.clone();
            let mut w = vec![0; columns.len()];
            for (k, &i) in visible.iter().enumerate() {
                w[i] = full[k];
            }
            Rendered {
                text: boxed(columns, &rows, &visible, &w, &natural, color),
                hidden,
            }
        }
        None => Rendered {
            text: records(columns, &rows, term, color),
            hidden: Vec::new(),
        },
    }
}

/// Width taken by borders and padding: `│ a ┆ b │`.
fn overhead(n: usize) -> usize {
    3 * n + 1
}

/// Which columns to show and how wide, or None when only record blocks fit.
fn plan(
    columns: &[Column],
    rows: &[Row],
    natural: &[usize],
    term: usize,
) -> Option<(Vec<usize>, Vec<usize>)> {
    let all: Vec<usize> = (0..columns.len()).collect();
    if all.iter().map(|&i| natural[i]).sum::<usize>() + overhead(all.len()) <= term {
        return Some((all.clone(), all.iter().map(|&i| natural[i]).collect()));
    }
    // Columns with nothing in them go first: they only cost width.
    let mut visible: Vec<usize> = all
        .into_iter()
        .filter(|&i| {
            rows.is_empty()
                || rows
                    .iter()
                    .any(|r| r.get(i).is_some_and(|c| !c.0.is_empty()))
        })
        .collect();
    loop {
        if visible.is_empty() {
            return None;
        }
        // The least each column needs: identifiers whole, headers unbroken.
        let min: Vec<usize> = visible
            .iter()
            .map(|&i| {
                let header = longest_word(columns[i].header);
                let cells = rows
                    .iter()
                    .filter_map(|r| r.get(i))
                    .map(|(t, _)| max_line_width(t))
                    .max()
                    .unwrap_or(0);
                match columns[i].kind {
                    Kind::Id => cells.max(header),
                    Kind::Text => natural[i].min(TEXT_MIN).max(header),
                }
            })
            .collect();
        let needed = min.iter().sum::<usize>() + overhead(visible.len());
        if needed > term {
            let last_text = visible.iter().rposition(|&i| columns[i].kind == Kind::Text);
            match last_text {
                Some(k) => {
                    visible.remove(k);
                    continue;
                }
                None => return None,
            }
        }
        // Spare room: first unwrap identifier headers, then widen the text.
        let mut widths = min;
        let mut spare = term - needed;
        for kind in [Kind::Id, Kind::Text] {
            for (k, &i) in visible.iter().enumerate() {
                if columns[i].kind == kind && spare > 0 {
                    let more = (natural[i] - widths[k]).min(spare);
                    widths[k] += more;
                    spare -= more;
                }
            }
        }
        return Some((visible, widths));
    }
}

/// A line of prose fitted to a terminal `w` columns wide: wrapped at blanks, continuation
/// lines keeping the line's indentation. Words are never broken: one longer than the
/// terminal (a long identifier) stands alone on its line.
pub fn fit(text: &str, w: usize) -> String {
    let mut out = Vec::new();
    for line in text.split('\n') {
        if width(line) <= w {
            out.push(line.to_owned());
            continue;
        }
        let indent = &line[..line.len() - line.trim_start_matches(' ').len()];
        let mut cur = indent.to_owned();
        let mut cur_w = width(indent);
        let mut empty = true;
        for word in line.split_whitespace() {
            let ww = width(word);
            if !empty && cur_w + 1 + ww > w {
                out.push(std::mem::take(&mut cur));
                // The indentation goes where it would push a long word past the edge.
                let ind = if width(indent) + ww <= w { indent } else { "" };
                cur = ind.to_owned();
                cur_w = width(ind);
                empty = true;
            }
            if !empty {
                cur.push(' ');
                cur_w += 1;
            }
            cur.push_str(word);
            cur_w += ww;
            empty = false;
        }
        out.push(cur);
    }
    out.join("\n")
}

/// Wraps text to `w` columns at blanks; a word longer than `w` is broken.
fn wrap(text: &str, w: usize) -> Vec<String> {
    let w = w.max(1);
    let mut out = Vec::new();
    for para in text.split('\n') {
        if width(para) <= w {
            out.push(para.to_owned());
            continue;
        }
        let mut line = String::new();
        let mut lw = 0;
        for word in para.split_whitespace() {
            let ww = width(word);
            if lw > 0 && lw + 1 + ww <= w {
                line.push(' ');
                line.push_str(word);
                lw += 1 + ww;
                continue;
            }
            if lw > 0 {
                out.push(std::mem::take(&mut line));
                lw = 0;
            }
            if ww <= w {
                line.push_str(word);
                lw = ww;
                continue;
            }
            for c in word.chars() {
                let cw = c.width().unwrap_or(0);
                if lw + cw > w && lw > 0 {
                    out.push(std::mem::take(&mut line));
                    lw = 0;
                }
                line.push(c);
                lw += cw;
            }
        }
        out.push(line);
    }
    out
}

fn paint(text: &str, tone: Tone, color: bool) -> String {
    let code = match (color, tone) {
        (true, Tone::Good) => "32",
        (true, Tone::Warn) => "33",
        (true, Tone::Bad) => "31",
        _ => return text.to_owned(),
    };
    format!("\x1b[{code}m{text}\x1b[39m")
}

/// Box-drawn table of the `visible` columns at `widths` (indexed by column).
fn boxed(
    columns: &[Column],
    rows: &[Row],
    visible: &[usize],
    widths: &[usize],
    natural: &[usize],
    color: bool,
) -> String {
    let cell_lines = |i: usize, text: &str| -> Vec<String> {
        if columns[i].kind == Kind::Text && widths[i] < natural[i] {
            wrap(text, widths[i])
        } else {
            text.split('\n').map(str::to_owned).collect()
        }
    };
    let rule = |l: &str, fill: &str, mid: &str, r: &str| -> String {
        let parts: Vec<String> = visible
            .iter()
            .map(|&i| fill.repeat(widths[i] + 2))
            .collect();
        format!("{l}{}{r}", parts.join(mid))
    };
    let row_lines = |cells: Vec<(Vec<String>, Tone)>, out: &mut Vec<String>| {
        let height = cells.iter().map(|c| c.0.len()).max().unwrap_or(1);
        for l in 0..height {
            let mut line = String::from("│");
            for (k, &i) in visible.iter().enumerate() {
                let (lines, tone) = &cells[k];
                let text = lines.get(l).map(String::as_str).unwrap_or("");
                let pad = " ".repeat(widths[i].saturating_sub(width(text)));
                line.push(' ');
                line.push_str(&paint(text, *tone, color));
                line.push_str(&pad);
                line.push(' ');
                line.push(if k + 1 == visible.len() { '│' } else { '┆' });
            }
            out.push(line);
        }
        height
    };
    let mut out = vec![rule("┌", "─", "┬", "┐")];
    let header = visible
        .iter()
        .map(|&i| {
            let h = columns[i].header;
            let lines = if width(h) > widths[i] {
                wrap(h, widths[i])
            } else {
                vec![h.to_owned()]
            };
            (lines, Tone::Plain)
        })
        .collect();
    row_lines(header, &mut out);
    out.push(rule("╞", "═", "╪", "╡"));
    let body: Vec<Vec<(Vec<String>, Tone)>> = rows
        .iter()
        .map(|r| {
            visible
                .iter()
                .map(|&i| {
                    let (text, tone) = r.get(i).cloned().unwrap_or_default();
                    (cell_lines(i, &text), tone)
                })
                .collect()
        })
        .collect();
    // Rows of several lines are told apart by a rule between them.
    let separated = body
        .iter()
        .any(|r| r.iter().any(|(lines, _)| lines.len() > 1));
    let n = body.len();
    for (j, cells) in body.into_iter().enumerate() {
        row_lines(cells, &mut out);
        if separated && j + 1 < n {
            out.push(rule("├", "╌", "┼", "┤"));
        }
    }
    out.push(rule("└", "─", "┴", "┘"));
    out.join("\n")
}

/// One `key: value` block per row, blocks separated by a blank line. An identifier that
/// does not fit beside its label goes on a line of its own (the only line that may be
/// wider than the terminal, when the identifier itself is).
fn records(columns: &[Column], rows: &[Row], term: usize, color: bool) -> String {
    let label_w = columns.iter().map(|c| width(c.header)).max().unwrap_or(0) + 1;
    let indent = label_w + 1;
    let mut blocks = Vec::new();
    for row in rows {
        let mut lines = Vec::new();
        for (i, c) in columns.iter().enumerate() {
            let Some((text, tone)) = row.get(i) else {
                continue;
            };
            if text.is_empty() {
                continue;
            }
            let label = format!("{}:", c.header);
            let label_pad = format!("{label}{}", " ".repeat(label_w - width(&label) + 1));
            let beside = term.saturating_sub(indent);
            match c.kind {
                Kind::Id => {
                    let value_lines: Vec<&str> = text.split('\n').collect();
                    if value_lines.iter().all(|l| width(l) <= beside) {
                        for (n, l) in value_lines.iter().enumerate() {
                            let head = if n == 0 {
                                label_pad.clone()
                            } else {
                                " ".repeat(indent)
                            };
                            lines.push(format!("{head}{}", paint(l, *tone, color)));
                        }
                    } else {
                        lines.push(label);
                        for l in value_lines {
                            // Several words wider than the terminal (a URL and a note) wrap
                            // between them; one identifier stands alone.
                            let l = if width(l) + 2 <= term {
                                format!("  {l}")
                            } else {
                                fit(l, term)
                            };
                            for part in l.split('\n') {
                                lines.push(paint(part, *tone, color));
                            }
                        }
                    }
                }
                Kind::Text => {
                    if beside >= VALUE_MIN {
                        for (n, l) in wrap(text, beside).into_iter().enumerate() {
                            let head = if n == 0 {
                                label_pad.clone()
                            } else {
                                " ".repeat(indent)
                            };
                            lines.push(format!("{head}{}", paint(&l, *tone, color)));
                        }
                    } else {
                        lines.push(label);
                        for l in wrap(text, term.saturating_sub(2)) {
                            lines.push(format!("  {}", paint(&l, *tone, color)));
                        }
                    }
                }
            }
        }
        blocks.push(lines.join("\n"));
    }
    blocks.join("\n\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(cells: &[&str]) -> Row {
        cells.iter().map(|c| (c.to_string(), Tone::Plain)).collect()
    }

    const STATUS: [Column; 4] = [
        Column::id("migration"),
        Column::id("alias"),
        Column::id("state"),
        Column::id("applied at"),
    ];

    fn status_rows() -> Vec<Row> {
        vec![
            row(&[
                "m20260130_093115_initial_migration",
                "25698f3f906f",
                "applied",
                "2026-01-30 09:31:15 UTC",
            ]),
            row(&[
                "m20260130_113328_create_settings_table",
                "d8cfd3cb4083",
                "pending",
                "",
            ]),
        ]
    }

    fn assert_fits(text: &str, term: usize) {
        for l in text.lines() {
            assert!(width(l) <= term, "line wider than {term}: {l:?}\n{text}");
        }
    }

    #[test]
    fn markdown_is_the_natural_width_table() {
        let t = markdown(
            &[Column::id("key"), Column::text("value")],
            &[row(&["a", "two\nlines"]), row(&["longer key", ""])],
        );
        assert_eq!(
            t,
            "| key        | value |\n\
             |------------|-------|\n\
             | a          | two   |\n\
             |            | lines |\n\
             | longer key |       |"
        );
    }

    #[test]
    fn wide_terminals_get_the_natural_table() {
        let r = terminal(&STATUS, &status_rows(), Some(200), false);
        assert!(r.text.starts_with('┌'), "{}", r.text);
        assert!(r
            .text
            .contains("│ m20260130_093115_initial_migration     ┆ 25698f3f906f ┆"));
        assert_fits(&r.text, 200);
    }

    #[test]
    fn identifiers_are_never_split() {
        for term in [30, 40, 60, 80, 90, 120] {
            let r = terminal(&STATUS, &status_rows(), Some(term), false);
            for id in [
                "m20260130_093115_initial_migration",
                "25698f3f906f",
                "2026-01-30 09:31:15 UTC",
            ] {
                assert!(r.text.contains(id), "{term}: {id} split:\n{}", r.text);
            }
            if term >= 40 {
                assert_fits(&r.text, term);
            }
        }
    }

    #[test]
    fn narrow_terminals_get_record_blocks() {
        let r = terminal(&STATUS, &status_rows(), Some(40), false);
        // An identifier longer than the space beside its label stands alone.
        assert!(
            r.text.starts_with(
                "migration:\n  m20260130_093115_initial_migration\nalias:      25698f3f906f\n"
            ),
            "{}",
            r.text
        );
        assert!(r.text.contains("\n\nmigration:"), "blocks: {}", r.text);
        let r = terminal(&STATUS, &status_rows(), Some(60), false);
        assert!(
            r.text
                .starts_with("migration:  m20260130_093115_initial_migration\n"),
            "{}",
            r.text
        );
        // Empty values are left out of a block.
        assert!(!r.text.contains("applied at: \n"), "{}", r.text);
    }

    #[test]
    fn descriptive_columns_wrap_then_go() {
        let cols = [
            Column::id("key"),
            Column::text("value"),
            Column::id("updated at"),
        ];
        let rows = vec![row(&[
            "bio_prompt_instagram",
            "Write the Instagram bio for the persona described below. Instagram…",
            "2026-01-30 11:33:28 UTC",
        ])];
        let r = terminal(&cols, &rows, Some(80), false);
        assert_fits(&r.text, 80);
        assert!(r.text.contains("Write the Instagram"), "{}", r.text);
        assert!(r.hidden.is_empty());
        // 20 + 23 + 10 of borders leave less than TEXT_MIN at 60: the value goes.
        let r = terminal(&cols, &rows, Some(60), false);
        assert_fits(&r.text, 60);
        assert_eq!(r.hidden, vec!["value"]);
        assert!(r
            .text
            .contains("bio_prompt_instagram ┆ 2026-01-30 11:33:28 UTC"));
        // ...and at 40 not even the identifiers fit: records, the value included.
        let r = terminal(&cols, &rows, Some(40), false);
        assert_fits(&r.text, 40);
        assert!(r
            .text
            .starts_with("key:        bio_prompt_instagram\nvalue:      Write the"));
    }

    #[test]
    fn a_value_of_several_words_wraps_in_a_block() {
        let cols = [Column::id("setting"), Column::id("value")];
        let rows = vec![row(&[
            "database_url",
            "sqlite://dbtool.db (no DATABASE_URL configured)",
        ])];
        let r = terminal(&cols, &rows, Some(40), false);
        assert_fits(&r.text, 40);
        assert!(
            r.text
                .contains("sqlite://dbtool.db (no DATABASE_URL\nconfigured)"),
            "{}",
            r.text
        );
    }

    #[test]
    fn headers_break_only_between_words() {
        let cols = [Column::id("id"), Column::text("a long description header")];
        let rows = vec![row(&["1", &"word ".repeat(30)])];
        let r = terminal(&cols, &rows, Some(30), false);
        assert_fits(&r.text, 30);
        for word in ["description", "header"] {
            assert!(r.text.contains(word), "{}", r.text);
        }
    }

    #[test]
    fn control_characters_are_shown_escaped() {
        let cols = [Column::id("name")];
        let r = terminal(&cols, &[row(&["a\x1b[31mb"])], Some(80), false);
        assert!(r.text.contains("a\\x1b[31mb"), "{}", r.text);
    }

    #[test]
    fn prose_wraps_between_words_only() {
        let line = "avatar: 0 pending, at m20260130_113328_create_settings_table (d8cfd3cb4083)";
        assert_eq!(
            fit(line, 40),
            "avatar: 0 pending, at\nm20260130_113328_create_settings_table\n(d8cfd3cb4083)"
        );
        // Longer than the terminal: alone on its line, and only that line overflows.
        assert_eq!(
            fit("at m20260130_113328_create_settings_table", 20),
            "at\nm20260130_113328_create_settings_table"
        );
        assert_eq!(fit("  1. aaaa bbbb cccc", 12), "  1. aaaa\n  bbbb cccc");
        // Indenting would push the long word past the edge: it starts the line instead.
        assert_eq!(fit("  2. abcdefghij", 10), "  2.\nabcdefghij");
        assert_eq!(fit("short", 40), "short");
    }

    #[test]
    fn wrapping_keeps_every_word() {
        assert_eq!(wrap("aaa bbb ccc", 7), vec!["aaa bbb", "ccc"]);
        assert_eq!(wrap("abcdefghij", 4), vec!["abcd", "efgh", "ij"]);
        assert_eq!(wrap("x\ny", 5), vec!["x", "y"]);
    }
}
