//! A statement's text names its parameters (`:code_id`); the drivers bind by position. The names
//! become positions once per process, when a backend builds its table of texts, by the order in
//! which the statement declares them, the order its arguments are bound in.

/// A run of SQL, or the name of a parameter it refers to.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Piece<'t> {
    Sql(&'t str),
    Param(&'t str),
}

/// `text` cut at its named parameters. A `:` starts a name only when it is not part of a `::`
/// cast (PostgreSQL's `$1::bigint`) and not inside a quoted literal.
pub(crate) fn pieces(text: &str) -> Vec<Piece<'_>> {
    let bytes = text.as_bytes();
    let starts_name = |b: &u8| b.is_ascii_alphabetic() || *b == b'_';
    let (mut out, mut from, mut quoted, mut i) = (Vec::new(), 0, false, 0);
    while i < bytes.len() {
        match bytes[i] {
            b'\'' => quoted = !quoted,
            b':' if !quoted && (i == 0 || bytes[i - 1] != b':') && bytes.get(i + 1).is_some_and(starts_name) => {
                let len = bytes[i + 1..]
                    .iter()
                    .take_while(|b| b.is_ascii_alphanumeric() || **b == b'_')
                    .count();
                out.push(Piece::Sql(&text[from..i]));
                out.push(Piece::Param(&text[i + 1..i + 1 + len]));
                from = i + 1 + len;
                i = from;
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    out.push(Piece::Sql(&text[from..]));
    out
}

/// `text` with each `:name` as `?N`, N the name's place among `params` (from 1). A name not among
/// them is left as written, for the test of every statement's text to find.
pub(crate) fn positional(text: &str, params: &[&str]) -> String {
    let mut out = String::with_capacity(text.len());
    for piece in pieces(text) {
        match piece {
            Piece::Sql(sql) => out.push_str(sql),
            Piece::Param(name) => match params.iter().position(|p| *p == name) {
                Some(i) => out.push_str(&format!("?{}", i + 1)),
                None => out.push_str(&format!(":{name}")),
            },
        }
    }
    out
}

/// `?N` placeholders as PostgreSQL's `$N`.
pub(crate) fn dollar_placeholders(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len());
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '?' && chars.peek().is_some_and(char::is_ascii_digit) {
            out.push('$');
        } else {
            out.push(c);
        }
    }
    out
}
