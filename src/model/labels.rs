//! Kubernetes label selectors in their string form (`zone=a,tier in (web,api),!excluded`),
//! parsed into typed requirements and matched against an object's labels.
//!
//! kube-core's `Selector` matches but cannot parse the string form, so the operator parses it
//! here, with the grammar and the key/value rules of `k8s.io/apimachinery/pkg/labels`: equality
//! (`k=v`, `k==v`), inequality (`k!=v`), set membership (`k in (a,b)`, `k notin (a,b)`) and
//! existence (`k`, `!k`). The numeric `gt`/`lt` operators are refused.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

/// A parsed label selector: every requirement must hold. The empty selector matches everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Selector {
    requirements: Vec<Requirement>,
}

/// One requirement on one label key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Requirement {
    pub key: String,
    pub operator: Operator,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Operator {
    /// `k=v` or `k==v`.
    Equals(String),
    /// `k!=v`: also true when the label is absent, as in Kubernetes.
    NotEquals(String),
    /// `k in (a,b)`.
    In(Vec<String>),
    /// `k notin (a,b)`: also true when the label is absent, as in Kubernetes.
    NotIn(Vec<String>),
    /// `k`.
    Exists,
    /// `!k`.
    DoesNotExist,
}

/// Why a label selector string does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SelectorError {
    #[error("{found} where a label key was expected")]
    MissingKey { found: String },
    #[error("label key {key:?} is invalid: {reason}")]
    Key { key: String, reason: &'static str },
    #[error("label value {value:?} of key {key:?} is invalid: {reason}")]
    Value { key: String, value: String, reason: &'static str },
    #[error("{found} after label key {key:?}; expected =, ==, !=, in, notin, ',' or the end")]
    MissingOperator { key: String, found: String },
    #[error("operator {operator:?} of key {key:?} is not supported; use =, ==, !=, in, notin, key or !key")]
    UnsupportedOperator { key: String, operator: String },
    #[error("after \"{key} {operator}\" expected a parenthesised, comma-separated list of values such as (a,b); found {found}")]
    ValueSet { key: String, operator: &'static str, found: String },
    #[error("{found} after the requirement on {key:?}; requirements are separated by ','")]
    MissingComma { key: String, found: String },
}

impl Selector {
    /// The requirements, in the order written.
    pub fn requirements(&self) -> &[Requirement] {
        &self.requirements
    }

    /// Whether labels (`None`: an object without labels) satisfy every requirement.
    pub fn matches(&self, labels: Option<&BTreeMap<String, String>>) -> bool {
        self.requirements.iter().all(|r| r.matches(labels.and_then(|l| l.get(&r.key)).map(String::as_str)))
    }
}

impl Requirement {
    /// Whether the requirement holds for the label's value (`None`: the label is absent).
    pub fn matches(&self, value: Option<&str>) -> bool {
        match (&self.operator, value) {
            (Operator::Equals(wanted), Some(value)) => value == wanted,
            (Operator::NotEquals(unwanted), Some(value)) => value != unwanted,
            (Operator::In(set), Some(value)) => set.iter().any(|v| v == value),
            (Operator::NotIn(set), Some(value)) => !set.iter().any(|v| v == value),
            (Operator::Exists, Some(_))
            | (Operator::NotEquals(_) | Operator::NotIn(_) | Operator::DoesNotExist, None) => true,
            (Operator::DoesNotExist, Some(_)) | (Operator::Equals(_) | Operator::In(_) | Operator::Exists, None) => {
                false
            }
        }
    }
}

impl FromStr for Selector {
    type Err = SelectorError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let mut tokens = lex(text).into_iter().peekable();
        let mut requirements = Vec::new();
        if tokens.peek().is_none() {
            return Ok(Self { requirements });
        }
        loop {
            let requirement = parse_requirement(&mut tokens)?;
            match tokens.next() {
                None => {
                    requirements.push(requirement);
                    return Ok(Self { requirements });
                }
                Some(Token::Comma) => requirements.push(requirement),
                Some(other) => {
                    return Err(SelectorError::MissingComma { key: requirement.key, found: other.describe() })
                }
            }
        }
    }
}

impl fmt::Display for Selector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (index, requirement) in self.requirements.iter().enumerate() {
            if index > 0 {
                f.write_str(",")?;
            }
            write!(f, "{requirement}")?;
        }
        Ok(())
    }
}

impl fmt::Display for Requirement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let key = &self.key;
        match &self.operator {
            Operator::Equals(value) => write!(f, "{key}={value}"),
            Operator::NotEquals(value) => write!(f, "{key}!={value}"),
            Operator::In(set) => write!(f, "{key} in ({})", set.join(",")),
            Operator::NotIn(set) => write!(f, "{key} notin ({})", set.join(",")),
            Operator::Exists => write!(f, "{key}"),
            Operator::DoesNotExist => write!(f, "!{key}"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    /// A run of characters other than whitespace and `,()=!<>`: a key, a value, `in` or `notin`.
    Word(String),
    Comma,
    Open,
    Close,
    /// `=`, `==`, `!=`, `!`, `<` or `>`.
    Symbol(&'static str),
}

impl Token {
    fn describe(&self) -> String {
        match self {
            Self::Word(word) => format!("{word:?}"),
            Self::Comma => "','".into(),
            Self::Open => "'('".into(),
            Self::Close => "')'".into(),
            Self::Symbol(symbol) => format!("'{symbol}'"),
        }
    }
}

fn describe(token: Option<&Token>) -> String {
    token.map_or_else(|| "the end of the selector".into(), Token::describe)
}

fn lex(text: &str) -> Vec<Token> {
    let mut tokens = Vec::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        let token = match c {
            c if c.is_whitespace() => continue,
            ',' => Token::Comma,
            '(' => Token::Open,
            ')' => Token::Close,
            '<' => Token::Symbol("<"),
            '>' => Token::Symbol(">"),
            '=' if chars.next_if_eq(&'=').is_some() => Token::Symbol("=="),
            '=' => Token::Symbol("="),
            '!' if chars.next_if_eq(&'=').is_some() => Token::Symbol("!="),
            '!' => Token::Symbol("!"),
            first => {
                let mut word = String::from(first);
                while let Some(next) = chars.next_if(|n| !n.is_whitespace() && !",()=!<>".contains(*n)) {
                    word.push(next);
                }
                Token::Word(word)
            }
        };
        tokens.push(token);
    }
    tokens
}

type Tokens = std::iter::Peekable<std::vec::IntoIter<Token>>;

fn parse_requirement(tokens: &mut Tokens) -> Result<Requirement, SelectorError> {
    if tokens.next_if_eq(&Token::Symbol("!")).is_some() {
        let key = parse_key(tokens)?;
        return Ok(Requirement { key, operator: Operator::DoesNotExist });
    }
    let key = parse_key(tokens)?;
    let operator = match tokens.peek() {
        None | Some(Token::Comma) => Operator::Exists,
        Some(Token::Symbol("=" | "==")) => {
            tokens.next();
            Operator::Equals(parse_value(tokens, &key)?)
        }
        Some(Token::Symbol("!=")) => {
            tokens.next();
            Operator::NotEquals(parse_value(tokens, &key)?)
        }
        Some(Token::Word(word)) if word == "in" => {
            tokens.next();
            Operator::In(parse_value_set(tokens, &key, "in")?)
        }
        Some(Token::Word(word)) if word == "notin" => {
            tokens.next();
            Operator::NotIn(parse_value_set(tokens, &key, "notin")?)
        }
        Some(Token::Symbol(symbol @ ("<" | ">"))) => {
            return Err(SelectorError::UnsupportedOperator { key, operator: (*symbol).into() })
        }
        other => return Err(SelectorError::MissingOperator { found: describe(other), key }),
    };
    Ok(Requirement { key, operator })
}

fn parse_key(tokens: &mut Tokens) -> Result<String, SelectorError> {
    match tokens.next() {
        Some(Token::Word(key)) => {
            validate_key(&key).map_err(|reason| SelectorError::Key { key: key.clone(), reason })?;
            Ok(key)
        }
        other => Err(SelectorError::MissingKey { found: describe(other.as_ref()) }),
    }
}

/// A value after `=`, `==`, `!=` or in a set; nothing before a `,`, a `)` or the end is the
/// empty value.
fn parse_value(tokens: &mut Tokens, key: &str) -> Result<String, SelectorError> {
    let value = match tokens.peek() {
        None | Some(Token::Comma | Token::Close) => String::new(),
        Some(Token::Word(_)) => match tokens.next() {
            Some(Token::Word(word)) => word,
            _ => String::new(),
        },
        Some(other) => {
            return Err(SelectorError::Value { key: key.into(), value: other.describe(), reason: "expected a value" })
        }
    };
    validate_value(&value).map_err(|reason| SelectorError::Value { key: key.into(), value: value.clone(), reason })?;
    Ok(value)
}

/// `(a, b, c)`; an empty entry (`(a,)`) is the empty value, as in Kubernetes.
fn parse_value_set(tokens: &mut Tokens, key: &str, operator: &'static str) -> Result<Vec<String>, SelectorError> {
    let set_error =
        |found: Option<&Token>| SelectorError::ValueSet { key: key.into(), operator, found: describe(found) };
    match tokens.next() {
        Some(Token::Open) => {}
        other => return Err(set_error(other.as_ref())),
    }
    if let Some(Token::Close) = tokens.peek() {
        return Err(set_error(tokens.peek()));
    }
    let mut values = Vec::new();
    loop {
        values.push(parse_value(tokens, key)?);
        match tokens.next() {
            Some(Token::Comma) => {}
            Some(Token::Close) => break,
            other => return Err(set_error(other.as_ref())),
        }
    }
    values.sort();
    values.dedup();
    Ok(values)
}

/// A qualified name with an optional DNS-subdomain prefix: `[prefix/]name`.
fn validate_key(key: &str) -> Result<(), &'static str> {
    let name = match key.split_once('/') {
        Some((prefix, name)) => {
            validate_prefix(prefix)?;
            name
        }
        None => key,
    };
    if name.is_empty() {
        return Err("the name part must not be empty");
    }
    validate_name_chars(name)
}

fn validate_prefix(prefix: &str) -> Result<(), &'static str> {
    let dns_label_ok = |label: &str| {
        !label.is_empty()
            && label.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
            && !label.starts_with('-')
            && !label.ends_with('-')
    };
    if prefix.is_empty() || prefix.len() > 253 || !prefix.split('.').all(dns_label_ok) {
        return Err("the prefix before '/' must be a DNS subdomain (lower-case, at most 253 characters)");
    }
    Ok(())
}

/// A label value: empty, or at most 63 characters of `[A-Za-z0-9_.-]`, alphanumeric at both ends.
fn validate_value(value: &str) -> Result<(), &'static str> {
    if value.is_empty() {
        return Ok(());
    }
    validate_name_chars(value)
}

fn validate_name_chars(text: &str) -> Result<(), &'static str> {
    if text.len() > 63 {
        return Err("longer than 63 characters");
    }
    if !text.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')) {
        return Err("only letters, digits, '-', '_' and '.' are allowed");
    }
    if !text.starts_with(|c: char| c.is_ascii_alphanumeric()) || !text.ends_with(|c: char| c.is_ascii_alphanumeric()) {
        return Err("must start and end with a letter or digit");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Selector {
        text.parse().unwrap_or_else(|e| panic!("{text:?}: {e}"))
    }

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn each_operator_parses_into_its_requirement() {
        let selector = parse(" zone = a , tier==web,env!=dev, team in (b, a,a), os notin (windows) ,gpu,!spot ");
        let ops: Vec<(&str, &Operator)> =
            selector.requirements().iter().map(|r| (r.key.as_str(), &r.operator)).collect();
        assert_eq!(
            ops,
            [
                ("zone", &Operator::Equals("a".into())),
                ("tier", &Operator::Equals("web".into())),
                ("env", &Operator::NotEquals("dev".into())),
                ("team", &Operator::In(vec!["a".into(), "b".into()])),
                ("os", &Operator::NotIn(vec!["windows".into()])),
                ("gpu", &Operator::Exists),
                ("spot", &Operator::DoesNotExist),
            ]
        );
        assert_eq!(selector.to_string(), "zone=a,tier=web,env!=dev,team in (a,b),os notin (windows),gpu,!spot");
        assert_eq!(parse(&selector.to_string()), selector, "the printed form parses back");
    }

    #[test]
    fn each_operator_matches_as_in_kubernetes() {
        let node = labels(&[("zone", "a"), ("node-role.kubernetes.io/lb", ""), ("tier", "edge")]);
        let cases = [
            ("zone=a", true),
            ("zone==b", false),
            ("missing=a", false),
            ("zone!=b", true),
            ("zone!=a", false),
            ("missing!=a", true),
            ("zone in (a,b)", true),
            ("zone in (b,c)", false),
            ("missing in (a)", false),
            ("zone notin (b)", true),
            ("zone notin (a)", false),
            ("missing notin (a)", true),
            ("node-role.kubernetes.io/lb", true),
            ("missing", false),
            ("!missing", true),
            ("!zone", false),
            ("node-role.kubernetes.io/lb=", true),
            ("zone in (a,)", true),
            ("zone=a,tier=edge", true),
            ("zone=a,tier=core", false),
            ("", true),
        ];
        for (text, expected) in cases {
            assert_eq!(parse(text).matches(Some(&node)), expected, "{text:?}");
        }
        assert!(parse("!zone,zone notin (a)").matches(None), "an object without labels");
        assert!(!parse("zone").matches(None));
        assert!(parse("  ").matches(None), "the empty selector matches everything");
    }

    #[test]
    fn malformed_selectors_say_what_is_wrong() {
        let err = |text: &str| text.parse::<Selector>().expect_err(text);
        assert!(matches!(err("zone=a,"), SelectorError::MissingKey { .. }), "trailing comma");
        assert!(matches!(err(",zone"), SelectorError::MissingKey { .. }));
        assert!(matches!(err("!"), SelectorError::MissingKey { .. }));
        assert!(matches!(err("=a"), SelectorError::MissingKey { .. }));
        assert!(matches!(err("zone=a b"), SelectorError::MissingComma { .. }));
        assert!(matches!(err("zone a"), SelectorError::MissingOperator { .. }));
        assert!(matches!(err("zone in a"), SelectorError::ValueSet { operator: "in", .. }));
        assert!(matches!(err("zone in ()"), SelectorError::ValueSet { .. }));
        assert!(matches!(err("zone notin (a"), SelectorError::ValueSet { operator: "notin", .. }));
        assert!(matches!(err("zone in (a b)"), SelectorError::ValueSet { .. }));
        assert!(matches!(err("zone=(a)"), SelectorError::Value { .. }));
        assert!(matches!(err("cpu>4"), SelectorError::UnsupportedOperator { .. }));
        assert!(matches!(err("cpu < 4"), SelectorError::UnsupportedOperator { .. }));
        assert!(matches!(err("-zone=a"), SelectorError::Key { .. }));
        assert!(matches!(err("Example.com/zone"), SelectorError::Key { .. }), "upper-case prefix");
        assert!(matches!(err("example.com/"), SelectorError::Key { .. }));
        assert!(matches!(err(&"k".repeat(64)), SelectorError::Key { .. }));
        assert!(matches!(err("zone=a*"), SelectorError::Value { .. }));
        assert!(matches!(err(&format!("zone={}", "v".repeat(64))), SelectorError::Value { .. }));

        let message = err("zone in a").to_string();
        assert!(
            message.contains("\"zone in\"") && message.contains("(a,b)") && message.contains("found \"a\""),
            "{message}"
        );
        let message = err("cpu>4").to_string();
        assert!(message.contains("'>'") || message.contains("\">\""), "{message}");
        assert!(err("zone=a,").to_string().contains("the end of the selector"));
    }
}
