//! The OpenAPI schemas of the strings the domain checks: codes, code patterns, user ids, texts that
//! are trimmed, cursors. Each says exactly what `coupon_core` accepts, so that a client (or a
//! fuzzer) reading the document is never refused a request the document allows, and never has
//! one accepted that it forbids. Patterns are ECMA-262, as JSON Schema reads them.

use coupon_core::code::MAX_CODE_LEN;
use coupon_core::user::MAX_USER_ID;
use utoipa::openapi::schema::{Array, ArrayBuilder, Object, ObjectBuilder, SchemaType, Type};

/// What `str::trim` removes: Unicode `White_Space`, spelled out (ECMA's `\s` differs by two).
const SPACE: &str = r"\t-\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000";
/// What `char::is_control` is: Unicode `Cc`.
const CONTROL: &str = r"\u0000-\u001f\u007f-\u009f";
/// The code alphabet, both cases (codes are matched case-insensitively).
const CODE: &str = "A-Za-z0-9_-";
/// The fewest placeholders the document asks of a code pattern; see [`code_pattern`].
pub const PATTERN_PLACEHOLDERS: usize = 12;

fn string(nullable: bool) -> ObjectBuilder {
    let kind = if nullable {
        SchemaType::from_iter([Type::String, Type::Null])
    } else {
        SchemaType::Type(Type::String)
    };
    ObjectBuilder::new().schema_type(kind)
}

/// A code as a request names it: 1 to 64 letters, digits, `-` and `_` once trimmed.
pub fn code_builder(nullable: bool) -> ObjectBuilder {
    string(nullable).pattern(Some(format!("^[{SPACE}]*[{CODE}]{{1,{MAX_CODE_LEN}}}[{SPACE}]*$")))
}

pub fn code() -> Object {
    code_builder(false).build()
}

/// The codes of an upload or a removal: 1 to 100,000.
pub fn codes() -> Array {
    ArrayBuilder::new()
        .items(code())
        .min_items(Some(1))
        .max_items(Some(100_000))
        .build()
}

/// A file of codes to import: a code a line. (The server reads CSV, takes the first field of
/// each line, skips blank lines and a `code` header; the document promises the plain form.)
pub fn code_file() -> Object {
    string(false)
        .pattern(Some(format!(
            "^[{CODE}]{{1,{MAX_CODE_LEN}}}(?:\\r?\\n[{CODE}]{{1,{MAX_CODE_LEN}}})*(?:\\r?\\n)?$"
        )))
        .build()
}

/// The states a held code can be in: not `available`, which nobody holds.
pub fn held_state() -> Object {
    string(false)
        .enum_values(Some(["active", "locked", "redeemed", "expired"]))
        .build()
}

/// A code in a path: trimmed already, as every code this service gives out is.
pub fn code_in_path() -> Object {
    string(false)
        .pattern(Some(format!("^[{CODE}]{{1,{MAX_CODE_LEN}}}$")))
        .build()
}

/// A code pattern (`#` digit, `?` letter, `*` either, the rest literal code characters).
///
/// The server takes any pattern whose space holds 1000 times the codes drawn from it; that rule
/// ties two fields together, which a schema cannot. The document asks for what always suffices:
/// 12 placeholders hold at least 8^12 > 6.8 * 10^10 codes, over 1000 times the most a book holds.
pub fn code_pattern() -> Object {
    string(true)
        .pattern(Some(format!(
            "^(?:[{CODE}]*[#?*]){{{PATTERN_PLACEHOLDERS}}}[#?*{CODE}]*$"
        )))
        .max_length(Some(MAX_CODE_LEN))
        .description(Some(
            "`#` a digit, `?` a letter, `*` either, anything else a literal letter, digit, `-` or `_`. \
             At least 12 placeholders: the service refuses a pattern whose space is under 1000 times \
             the codes drawn from it.",
        ))
        .build()
}

fn user_id_builder(nullable: bool) -> ObjectBuilder {
    string(nullable)
        .pattern(Some(format!("^[^{CONTROL}]*$")))
        .min_length(Some(1))
        .max_length(Some(MAX_USER_ID))
}

/// A user id in a body: 1 to 200 characters, none of them a control character.
pub fn user_id() -> Object {
    user_id_builder(true)
        .description(Some(
            "Whom to act for (admins and services only); the caller by default.",
        ))
        .build()
}

/// A user id in a path, or `me`.
pub fn user_in_path() -> Object {
    user_id_builder(false)
        .description(Some("A user id, or `me` for the caller."))
        .build()
}

/// A user id in a query.
pub fn user_in_query() -> Object {
    user_id_builder(false).build()
}

/// A metadata key: 1 to 40 characters, none of them a control character.
pub fn metadata_key() -> Object {
    string(false)
        .pattern(Some(format!("^[^{CONTROL}]*$")))
        .min_length(Some(1))
        .max_length(Some(coupon_core::metadata::MAX_KEY))
        .build()
}

/// A text that is trimmed and then must not be empty: up to `max` characters as sent, one of them
/// not white space.
pub fn filled_builder(nullable: bool, max: usize) -> ObjectBuilder {
    string(nullable)
        .pattern(Some(format!("[^{SPACE}]")))
        .min_length(Some(1))
        .max_length(Some(max))
}

/// A book's name.
pub fn name() -> Object {
    filled_builder(false, 200).build()
}

/// A book's new name, if it changes.
pub fn new_name() -> Object {
    filled_builder(true, 200).build()
}

/// A book's category.
pub fn category() -> Object {
    filled_builder(true, 100).build()
}

/// A book's tags: at most 32, each of 1 to 50 characters once trimmed.
pub fn tags() -> Array {
    ArrayBuilder::new()
        .items(filled_builder(false, 50))
        .max_items(Some(32))
        .build()
}

/// The shared code of a shared book.
pub fn shared_code() -> Object {
    code_builder(true).build()
}

/// The `next_cursor` of a page of a list newest first: `<millis>_<uuid>`.
pub fn page_cursor() -> Object {
    string(false)
        .pattern(Some("^-?[0-9]{1,18}_[0-9a-fA-F]{32}$".to_owned()))
        .description(Some("`next_cursor` of the previous page."))
        .build()
}

/// A place in the event feed: the `next_cursor` of a page of events.
pub fn event_cursor() -> Object {
    event_cursor_builder(false).build()
}

/// A page's `next_cursor`, null on an empty feed read from its start.
pub fn next_event_cursor() -> Object {
    event_cursor_builder(true).build()
}

fn event_cursor_builder(nullable: bool) -> ObjectBuilder {
    string(nullable)
        .pattern(Some("^[0-9]{1,18}-[0-9]{1,18}$".to_owned()))
        .description(Some("`next_cursor` of the previous page of events."))
}

/// The events a webhook endpoint is sent: event types, or `["*"]`.
pub fn webhook_events() -> Array {
    let mut names: Vec<&str> = crate::EventType::ALL.iter().map(|t| t.as_str()).collect();
    names.push("*");
    ArrayBuilder::new()
        .items(string(false).enum_values(Some(names)))
        .min_items(Some(1))
        .max_items(Some(12))
        .build()
}

/// One event type.
pub fn event_type() -> Object {
    let names = crate::EventType::ALL.iter().map(|t| t.as_str());
    string(false).enum_values(Some(names)).build()
}

/// The event types a feed or a webhook is asked for, comma-separated.
pub fn event_types() -> Object {
    let names: Vec<&str> = crate::EventType::ALL.iter().map(|t| t.as_str()).collect();
    let one = format!("({})", names.join("|").replace('.', "[.]"));
    string(false)
        .pattern(Some(format!("^{one}(,{one})*$")))
        .description(Some("Comma-separated event types; every type when absent."))
        .build()
}

/// The `next_cursor` of a page of a book's codes: the decimal id of its last code.
pub fn code_cursor() -> Object {
    string(false)
        .pattern(Some("^[1-9][0-9]{0,17}$".to_owned()))
        .description(Some("`next_cursor` of the previous page. JSON only."))
        .build()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `SPACE` is exactly what `trim` removes, and `CONTROL` exactly the control characters.
    #[test]
    fn the_classes_are_the_domains() {
        let class = |spec: &str| -> Vec<char> {
            let mut out = Vec::new();
            let mut rest = spec.replace(r"\t", "\t").replace(r"\r", "\r");
            while let Some(at) = rest.find(r"\u") {
                let c = char::from_u32(u32::from_str_radix(&rest[at + 2..at + 6], 16).unwrap()).unwrap();
                rest.replace_range(at..at + 6, &c.to_string());
            }
            let chars: Vec<char> = rest.chars().collect();
            let mut i = 0;
            while i < chars.len() {
                if i + 2 < chars.len() && chars[i + 1] == '-' {
                    out.extend(chars[i]..=chars[i + 2]);
                    i += 3;
                } else {
                    out.push(chars[i]);
                    i += 1;
                }
            }
            out
        };
        let all = (0..=0x10ffff_u32).filter_map(char::from_u32);
        let spaces: Vec<char> = all.clone().filter(|c| c.is_whitespace()).collect();
        assert_eq!(class(SPACE), spaces);
        let controls: Vec<char> = all.filter(|c| c.is_control()).collect();
        assert_eq!(class(CONTROL), controls);
    }
}
