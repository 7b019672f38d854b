//! F5's own string formats and name rules, as AS3 3.56 applies them before it deploys
//! anything: the custom JSON-schema formats `f5ip`, `f5ipv4`, `f5ipv6`, `f5bigip` and
//! `f5pointer`, and the syntax a pointer must have. Written from the rules AS3 documents and
//! enforces (see docs/simulator.md for sources), including the places where AS3 is more
//! lenient than the address syntax it describes: a BIG-IP accepts what AS3 accepts.

use std::sync::OnceLock;

use regex::Regex;

/// A format check: whether a string has the format.
pub type FormatCheck = fn(&str) -> bool;

/// The custom formats AS3 registers with its schema validator, by name.
pub const FORMATS: [(&str, FormatCheck); 5] = [
    ("f5ip", is_f5ip),
    ("f5ipv4", is_f5ipv4),
    ("f5ipv6", is_f5ipv6),
    ("f5bigip", is_f5bigip),
    ("f5pointer", is_f5pointer),
];

/// An IPv4 or IPv6 address with optional `%<route domain>` and `/<prefix length>`, or `""`.
/// Host names and `any` are not addresses.
pub fn is_f5ip(text: &str) -> bool {
    text.is_empty() || ipv4(text) || ipv6(text)
}

pub fn is_f5ipv4(text: &str) -> bool {
    text.is_empty() || ipv4(text)
}

pub fn is_f5ipv6(text: &str) -> bool {
    text.is_empty() || ipv6(text)
}

/// A decimal without leading zeros no greater than `max`.
fn bounded_decimal(text: &str, max: u32) -> bool {
    !text.is_empty()
        && text.len() <= 5
        && text.bytes().all(|b| b.is_ascii_digit())
        && (text == "0" || !text.starts_with('0'))
        && text.parse::<u32>().is_ok_and(|value| value <= max)
}

/// The characters AS3 lets through before it looks at an address's shape.
fn address_characters(text: &str) -> Option<String> {
    let lower = text.to_ascii_lowercase();
    let allowed = |c: char| c.is_ascii_hexdigit() || matches!(c, ':' | '.' | '%' | '/');
    (!lower.is_empty() && lower.chars().all(allowed)).then_some(lower)
}

/// `a.b.c.d[%rd][/len]`: octets 0–255 without leading zeros, route domain 0–65535, length 0–32.
fn ipv4(text: &str) -> bool {
    let Some(text) = address_characters(text) else { return false };
    let (rest, length) = match text.split_once('/') {
        Some((rest, length)) => (rest, Some(length)),
        None => (text.as_str(), None),
    };
    if length.is_some_and(|length| !bounded_decimal(length, 32) || length.len() > 2) {
        return false;
    }
    let (address, route_domain) = match rest.split_once('%') {
        Some((address, route_domain)) => (address, Some(route_domain)),
        None => (rest, None),
    };
    if route_domain.is_some_and(|route_domain| !bounded_decimal(route_domain, 65535)) {
        return false;
    }
    dotted_quad(address)
}

fn dotted_quad(text: &str) -> bool {
    let octets: Vec<&str> = text.split('.').collect();
    octets.len() == 4 && octets.iter().all(|octet| octet.len() <= 3 && bounded_decimal(octet, 255))
}

fn hex_group(text: &str) -> bool {
    (1..=4).contains(&text.len()) && text.bytes().all(|b| b.is_ascii_hexdigit())
}

/// IPv6 as AS3 checks it. AS3's pattern anchors only its first alternative (text starting
/// with `::`) at the start and only its last (the full eight-group form with `%rd` and `/len`)
/// at the end, so any address-character text that starts with `::`, contains a hex digit
/// followed by `::`, or ends in eight groups passes.
fn ipv6(text: &str) -> bool {
    let Some(text) = address_characters(text) else { return false };
    if text.starts_with("::") {
        return true;
    }
    let bytes = text.as_bytes();
    if bytes.windows(3).any(|w| w[0].is_ascii_hexdigit() && w[1] == b':' && w[2] == b':') {
        return true;
    }
    ends_in_eight_groups(&text)
}

fn ends_in_eight_groups(text: &str) -> bool {
    let mut rest = text;
    if let Some((head, length)) = rest.rsplit_once('/') {
        if length.len() <= 3 && bounded_decimal(length, 128) {
            rest = head;
        }
    }
    if let Some((head, route_domain)) = rest.rsplit_once('%') {
        if bounded_decimal(route_domain, 65535) {
            rest = head;
        }
    }
    let groups: Vec<&str> = rest.split(':').collect();
    if groups.len() < 8 {
        return false;
    }
    let tail = &groups[groups.len() - 7..];
    let first = groups[groups.len() - 8];
    tail.iter().all(|group| hex_group(group)) && first.bytes().last().is_some_and(|b| b.is_ascii_hexdigit())
}

/// A BIG-IP object path: `/` and at least one more character, none of them a control
/// character or one of `"#'*<>?[\]{|}`.
pub fn is_f5bigip(text: &str) -> bool {
    let forbidden = |c: char| (c as u32) < 0x1a || c == '\x7f' || "\"#'*<>?[\\]{|}".contains(c);
    text.len() >= 2 && text.starts_with('/') && !text.chars().any(forbidden)
}

/// Whether `text` matches `pattern`, compiled once into `cell`. The patterns are constants
/// that unit tests compile; one that did not would match nothing.
fn matches(cell: &'static OnceLock<Option<Regex>>, pattern: &str, text: &str) -> bool {
    cell.get_or_init(|| Regex::new(pattern).ok()).as_ref().is_some_and(|regex| regex.is_match(text))
}

/// The `f5pointer` format (used by `Include`): names of letters, digits and `_` up to 64
/// characters, `@` or numbers for relative forms, an optional trailing `#`.
pub fn is_f5pointer(text: &str) -> bool {
    static PATTERN: OnceLock<Option<Regex>> = OnceLock::new();
    const NAME: &str = "[A-Za-z][0-9A-Za-z_]{0,63}";
    let pattern = format!("^((@|[0-9]+)|(([0-9]*/)?((@|[0-9]+|{NAME})/)*([0-9]+|{NAME})))?#?$");
    matches(&PATTERN, &pattern, text)
}

/// Whether `pointer` has the syntax AS3 requires of a pointer held by an object inside an
/// Application (`inside_application`) or elsewhere. Inside an Application the last name needs
/// at least two characters and may not end in `-`; elsewhere names may not contain `-`.
pub fn is_valid_pointer_syntax(pointer: &str, inside_application: bool) -> bool {
    static IN_APPLICATION: OnceLock<Option<Regex>> = OnceLock::new();
    static ELSEWHERE: OnceLock<Option<Regex>> = OnceLock::new();
    if pointer == "#" {
        return false;
    }
    let (cell, inner, last) = if inside_application {
        (&IN_APPLICATION, "[A-Za-z_][0-9A-Za-z_.-]{0,188}[0-9A-Za-z_.]*", "[A-Za-z_][0-9A-Za-z_.-]{0,188}[0-9A-Za-z_.]")
    } else {
        (&ELSEWHERE, "[A-Za-z_][0-9A-Za-z_.]{0,188}", "[A-Za-z_][0-9A-Za-z_.]{0,188}")
    };
    let pattern = format!("^((@|[0-9]+)|(([0-9]*/)?((@|[0-9]+|{inner})/)*([0-9]+|{last})))?#?$");
    matches(cell, &pattern, pointer)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv4_addresses_with_route_domains_and_lengths() {
        for good in ["10.0.0.1", "0.0.0.0", "255.255.255.255", "10.1.1.1%1", "10.1.1.1%0/24", "10.1.1.0/32", ""] {
            assert!(is_f5ip(good), "{good}");
        }
        for bad in [
            "10.1.1.1/33",
            "not-an-ip",
            "web.example",
            "any",
            "010.0.0.1",
            "256.0.0.1",
            "10.0.0",
            "10.0.0.1%01",
            "10.0.0.1%65536",
            "10.0.0.1/24%1",
            " 10.0.0.1",
        ] {
            assert!(!is_f5ip(bad), "{bad}");
        }
    }

    #[test]
    fn ipv6_as_lenient_as_as3() {
        for good in [
            "::",
            "::1",
            "fe80::1%1/64",
            "2001:db8::/32",
            "::ffff:10.0.0.1",
            "1:2:3:4:5:6:7:8",
            "1:2:3:4:5:6:7:8%3/128",
            "A::B",
        ] {
            assert!(is_f5ip(good), "{good}");
        }
        // AS3's pattern lets these through too.
        assert!(is_f5ipv6("::1%99999/999"));
        assert!(is_f5ipv6("a::b::c"));
        for bad in ["1:2", "1:2:3:4:5:6:7:8/129", "1:2:3:4:5:6:7", "gg::1", ":"] {
            assert!(!is_f5ipv6(bad), "{bad}");
        }
        assert!(!is_f5ipv4("::1"));
    }

    #[test]
    fn bigip_paths() {
        assert!(is_f5bigip("/Common/http"));
        assert!(is_f5bigip("/Common/10.1.100.1%1"));
        assert!(is_f5bigip("/Common/with space"));
        for bad in ["Common/http", "/", "/Common/a*b", "/Common/a\"b", "/Common/a#b", "/Common/a\tb", ""] {
            assert!(!is_f5bigip(bad), "{bad}");
        }
    }

    #[test]
    fn pointer_syntax_inside_applications() {
        for good in ["web_pool", "web-pool", "pp", "/T/A/web_pool", "/Common/Shared/pool1", "A2/x1", "@/x1", "1/x1", ""]
        {
            assert!(is_valid_pointer_syntax(good, true), "{good}");
        }
        for bad in ["p", "/T/A/p", "web-", "a b", "/T/A/x~1", "pool/", "#", "x#"] {
            assert!(!is_valid_pointer_syntax(bad, true), "{bad}");
        }
        assert!(is_valid_pointer_syntax("p", false));
        assert!(!is_valid_pointer_syntax("web-pool", false));
    }

    #[test]
    fn f5pointer_names() {
        assert!(is_f5pointer("/Common/Shared/x"));
        assert!(is_f5pointer("@/x#"));
        assert!(!is_f5pointer("/Common/Shared/web-pool"));
    }
}
