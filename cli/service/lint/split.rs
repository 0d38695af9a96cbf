//! Splits an SQL script into statements at top-level semicolons, so that each statement is
//! parsed on its own: one statement the parser does not understand is reported and the rest
//! are still checked. Knows the quoting of the three dialects (strings, quoted identifiers,
//! PostgreSQL's `E'…'` and dollar quoting, MySQL's backslash escapes and `#` comments) and
//! skips psql meta-commands (lines starting with a backslash).

use sea_orm::DbBackend;

/// One statement of a script: the line it starts on (1-based) and its text, without the
/// comments before it and without the closing semicolon.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Piece {
    pub line: usize,
    pub sql: String,
}

pub fn split(text: &str, dialect: DbBackend) -> Vec<Piece> {
    let b = text.as_bytes();
    let mysql = dialect == DbBackend::MySql;
    let pg = dialect == DbBackend::Postgres;
    let mut out = Vec::new();
    let mut i = 0;
    let mut line = 1;
    // Where the current statement's first token is (byte offset, line), once one was seen.
    let mut start: Option<(usize, usize)> = None;
    let newlines = |s: &[u8]| s.iter().filter(|c| **c == b'\n').count();
    while i < b.len() {
        let c = b[i];
        // Comments and whitespace before a statement are not part of it.
        if c == b'-' && b.get(i + 1) == Some(&b'-') || mysql && c == b'#' {
            while i < b.len() && b[i] != b'\n' {
                i += 1;
            }
            continue;
        }
        if c == b'/' && b.get(i + 1) == Some(&b'*') {
            let end = block_comment_end(b, i, pg);
            line += newlines(&b[i..end]);
            i = end;
            continue;
        }
        if c.is_ascii_whitespace() {
            if c == b'\n' {
                line += 1;
            }
            i += 1;
            continue;
        }
        if start.is_none() && c == b'\\' {
            // A psql meta-command (`\set`, `\connect`, …) runs to the end of its line.
            while i < b.len() && b[i] != b'\n' {
                i += 1;
            }
            continue;
        }
        if c == b';' {
            if let Some((s, l)) = start.take() {
                push(&mut out, &text[s..i], l);
            }
            i += 1;
            continue;
        }
        if start.is_none() {
            start = Some((i, line));
        }
        let end = match c {
            b'\'' => {
                let escapes = mysql || pg && i > 0 && matches!(b[i - 1], b'E' | b'e');
                quoted_end(b, i, b'\'', escapes)
            }
            b'"' => quoted_end(b, i, b'"', mysql),
            b'`' => quoted_end(b, i, b'`', false),
            b'$' if pg => dollar_end(b, i).unwrap_or(i + 1),
            _ => i + 1,
        };
        line += newlines(&b[i..end]);
        i = end;
    }
    if let Some((s, l)) = start {
        push(&mut out, &text[s..], l);
    }
    out
}

fn push(out: &mut Vec<Piece>, sql: &str, line: usize) {
    let sql = sql.trim_end();
    if !sql.is_empty() {
        out.push(Piece {
            line,
            sql: sql.to_owned(),
        });
    }
}

/// The end of a `/* … */` comment starting at `i` (PostgreSQL nests them).
fn block_comment_end(b: &[u8], i: usize, nested: bool) -> usize {
    let mut depth = 0usize;
    let mut j = i;
    while j < b.len() {
        if b[j] == b'/' && b.get(j + 1) == Some(&b'*') {
            if depth == 0 || nested {
                depth += 1;
            }
            j += 2;
        } else if b[j] == b'*' && b.get(j + 1) == Some(&b'/') {
            depth -= 1;
            j += 2;
            if depth == 0 {
                return j;
            }
        } else {
            j += 1;
        }
    }
    b.len()
}

/// The end (exclusive) of a quoted string or identifier starting at `i`: the quote doubled
/// stands for itself; with `escapes` a backslash escapes the next byte.
fn quoted_end(b: &[u8], i: usize, q: u8, escapes: bool) -> usize {
    let mut j = i + 1;
    while j < b.len() {
        if escapes && b[j] == b'\\' {
            j += 2;
            continue;
        }
        if b[j] == q {
            if b.get(j + 1) == Some(&q) {
                j += 2;
                continue;
            }
            return j + 1;
        }
        j += 1;
    }
    b.len()
}

/// The end of a PostgreSQL dollar-quoted string `$tag$ … $tag$` starting at `i`, or None
/// when the `$` does not open one (a parameter such as `$1`).
fn dollar_end(b: &[u8], i: usize) -> Option<usize> {
    let mut j = i + 1;
    while j < b.len() && (b[j].is_ascii_alphanumeric() || b[j] == b'_') {
        j += 1;
    }
    if b.get(j) != Some(&b'$') || b.get(i + 1).is_some_and(|c| c.is_ascii_digit()) {
        return None;
    }
    let tag = &b[i..=j];
    let body = j + 1;
    let close = b[body..].windows(tag.len()).position(|w| w == tag)?;
    Some(body + close + tag.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sqls(text: &str, d: DbBackend) -> Vec<(usize, String)> {
        split(text, d)
            .into_iter()
            .map(|p| (p.line, p.sql))
            .collect()
    }

    #[test]
    fn splits_at_top_level_semicolons_with_lines() {
        let text = "-- header\nSET lock_timeout = '5s';\n\n/* a; b */ CREATE INDEX i ON t (a);\nSELECT 'x;y', \"q;\"\"\" FROM t";
        assert_eq!(
            sqls(text, DbBackend::Postgres),
            vec![
                (2, "SET lock_timeout = '5s'".to_owned()),
                (4, "CREATE INDEX i ON t (a)".to_owned()),
                (5, "SELECT 'x;y', \"q;\"\"\" FROM t".to_owned()),
            ]
        );
    }

    #[test]
    fn knows_dialect_quoting() {
        let pg =
            "DO $body$ BEGIN PERFORM 1; END $body$;\nSELECT E'it\\'s; fine', $1;\nSELECT 'a\\';";
        let got = sqls(pg, DbBackend::Postgres);
        assert_eq!(got.len(), 3, "{got:?}");
        assert!(got[0].1.ends_with("$body$"));
        assert_eq!(got[1].0, 2);
        assert_eq!(got[2].1, "SELECT 'a\\'");
        // MySQL: backslash escapes, `#` comments, backquoted identifiers.
        let my = "# note; here\nINSERT INTO `a;b` VALUES ('x\\';y');\nSELECT 1";
        assert_eq!(
            sqls(my, DbBackend::MySql),
            vec![
                (2, "INSERT INTO `a;b` VALUES ('x\\';y')".to_owned()),
                (3, "SELECT 1".to_owned())
            ]
        );
    }

    #[test]
    fn skips_meta_commands_comments_and_empty_statements() {
        let text = "\\set ON_ERROR_STOP on\n;;\n/* outer /* inner; */ still; */\nBEGIN;\n  COMMIT ;\n-- trailing";
        assert_eq!(
            sqls(text, DbBackend::Postgres),
            vec![(4, "BEGIN".to_owned()), (5, "COMMIT".to_owned())]
        );
    }
}
