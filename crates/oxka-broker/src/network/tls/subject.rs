//! A client certificate's subject as Kafka names it, and
//! `ssl.principal.mapping.rules` (Kafka's `SslPrincipalMapper`).
//!
//! The name is Java's `X500Principal.getName()` (RFC 2253): relative
//! distinguished names from the most specific (`CN=...`) to the least,
//! `,` between them, `+` inside a multi-valued one, the special
//! characters escaped; attributes without an RFC 2253 keyword as
//! `OID=#hex` of their DER encoding.

use regex::Regex;

/// RFC 2253's keywords, by OID.
fn keyword(oid: &str) -> Option<&'static str> {
    Some(match oid {
        "2.5.4.3" => "CN",
        "2.5.4.6" => "C",
        "2.5.4.7" => "L",
        "2.5.4.8" => "ST",
        "2.5.4.9" => "STREET",
        "2.5.4.10" => "O",
        "2.5.4.11" => "OU",
        "0.9.2342.19200300.100.1.25" => "DC",
        "0.9.2342.19200300.100.1.1" => "UID",
        _ => return None,
    })
}

fn escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let last = value.chars().count().saturating_sub(1);
    for (i, c) in value.chars().enumerate() {
        let special = matches!(c, ',' | '+' | '"' | '\\' | '<' | '>' | ';')
            || (i == 0 && (c == '#' || c == ' '))
            || (i == last && c == ' ');
        if special {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

fn der_hex(tag: u32, data: &[u8]) -> String {
    let mut der = vec![tag as u8];
    let len = data.len();
    if len < 0x80 {
        der.push(len as u8);
    } else {
        let bytes: Vec<u8> = len
            .to_be_bytes()
            .into_iter()
            .skip_while(|b| *b == 0)
            .collect();
        der.push(0x80 | bytes.len() as u8);
        der.extend(bytes);
    }
    der.extend_from_slice(data);
    der.iter().map(|b| format!("{b:02x}")).collect()
}

/// The subject of a DER certificate in RFC 2253 form; `None` when the
/// certificate does not parse (rustls already verified it, so only a
/// certificate oxka cannot read gets here).
pub fn subject_name(cert_der: &[u8]) -> Option<String> {
    let (_, cert) = x509_parser::parse_x509_certificate(cert_der).ok()?;
    let rdns: Vec<String> = cert
        .subject()
        .iter()
        .map(|rdn| {
            rdn.iter()
                .map(|attr| {
                    let oid = attr.attr_type().to_id_string();
                    match (keyword(&oid), attr.as_str()) {
                        (Some(k), Ok(v)) => format!("{k}={}", escape(v)),
                        _ => format!(
                            "{oid}=#{}",
                            der_hex(attr.attr_value().tag().0, attr.attr_value().data)
                        ),
                    }
                })
                .collect::<Vec<_>>()
                .join("+")
        })
        .collect();
    Some(rdns.into_iter().rev().collect::<Vec<_>>().join(","))
}

#[derive(Debug, Clone)]
enum Rule {
    Default,
    Replace {
        pattern: Regex,
        replacement: String,
        case: Option<char>,
    },
}

/// `ssl.principal.mapping.rules`: `DEFAULT` and `RULE:pattern/replacement/[LU]`
/// entries, comma or newline separated, the first that matches the whole
/// name wins; none matching fails the authentication, as in Kafka.
#[derive(Debug, Clone)]
pub struct PrincipalMapper {
    rules: Vec<Rule>,
}

/// Java's replacement syntax (`$1`, `\$`) in the `regex` crate's (`${1}`, `$$`).
fn replacement(java: &str) -> String {
    let mut out = String::new();
    let mut chars = java.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some('$') => out.push_str("$$"),
                Some(o) => out.push(o),
                None => {}
            },
            '$' => {
                let mut n = String::new();
                while let Some(d) = chars.peek().filter(|d| d.is_ascii_digit()) {
                    n.push(*d);
                    chars.next();
                }
                if n.is_empty() {
                    out.push_str("$$");
                } else {
                    out.push_str(&format!("${{{n}}}"));
                }
            }
            o => out.push(o),
        }
    }
    out
}

/// Reads up to an unescaped '/', returning it and the rest after the '/'.
fn until_slash(s: &str) -> Option<(String, &str)> {
    let mut out = String::new();
    let mut it = s.char_indices();
    while let Some((i, c)) = it.next() {
        match c {
            '\\' => {
                out.push('\\');
                if let Some((_, e)) = it.next() {
                    out.push(e);
                }
            }
            '/' => return Some((out, &s[i + 1..])),
            o => out.push(o),
        }
    }
    None
}

impl PrincipalMapper {
    pub fn parse(rules: &str) -> Result<PrincipalMapper, String> {
        let mut out = Vec::new();
        let mut rest = rules.trim();
        while !rest.is_empty() {
            if let Some(r) = rest.strip_prefix("DEFAULT") {
                out.push(Rule::Default);
                rest = r;
            } else if let Some(r) = rest.strip_prefix("RULE:") {
                let (pattern, r) = until_slash(r).ok_or("a RULE needs pattern/replacement/")?;
                let (repl, r) = until_slash(r).ok_or("a RULE needs pattern/replacement/")?;
                let (case, r) = match r.chars().next() {
                    Some(c @ ('L' | 'U')) => (Some(c), &r[1..]),
                    _ => (None, r),
                };
                let pattern = Regex::new(&format!("^(?:{pattern})$"))
                    .map_err(|e| format!("invalid pattern in rule: {e}"))?;
                out.push(Rule::Replace {
                    pattern,
                    replacement: replacement(&repl),
                    case,
                });
                rest = r;
            } else {
                return Err(format!("invalid rule: {rest}"));
            }
            rest = rest.trim_start();
            rest = rest
                .strip_prefix(',')
                .or_else(|| rest.strip_prefix('\n'))
                .unwrap_or(rest)
                .trim_start();
            if !rest.is_empty() && !rest.starts_with("DEFAULT") && !rest.starts_with("RULE:") {
                return Err(format!("invalid rule: {rest}"));
            }
        }
        if out.is_empty() {
            out.push(Rule::Default);
        }
        Ok(PrincipalMapper { rules: out })
    }

    /// The user name for a subject, or `None` when no rule applies.
    pub fn name(&self, subject: &str) -> Option<String> {
        self.rules.iter().find_map(|r| match r {
            Rule::Default => Some(subject.to_string()),
            Rule::Replace {
                pattern,
                replacement,
                case,
            } => {
                if !pattern.is_match(subject) {
                    return None;
                }
                let v = pattern.replace(subject, replacement.as_str()).into_owned();
                Some(match case {
                    Some('L') => v.to_lowercase(),
                    Some('U') => v.to_uppercase(),
                    _ => v,
                })
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kafkas_documented_rules() {
        let m = PrincipalMapper::parse(
            "RULE:^CN=(.*?),OU=ServiceUsers.*$/$1/,RULE:^CN=(.*?),OU=(.*?),O=(.*?),L=(.*?),ST=(.*?),C=(.*?)$/$1@$2/L,RULE:^.*[Cc][Nn]=([a-zA-Z0-9.]*).*$/$1/L,DEFAULT",
        )
        .unwrap();
        assert_eq!(
            m.name("CN=serviceuser,OU=ServiceUsers,O=Unknown,L=Unknown,ST=Unknown,C=Unknown")
                .as_deref(),
            Some("serviceuser")
        );
        assert_eq!(
            m.name("CN=adminUser,OU=Admin,O=Unknown,L=Unknown,ST=Unknown,C=Unknown")
                .as_deref(),
            Some("adminuser@admin")
        );
        assert_eq!(m.name("cn=Alice.B,O=x").as_deref(), Some("alice.b"));
        assert_eq!(m.name("O=none").as_deref(), Some("O=none"));
        let strict = PrincipalMapper::parse("RULE:^CN=([a-z]+)$/$1/U").unwrap();
        assert_eq!(strict.name("CN=bob").as_deref(), Some("BOB"));
        assert_eq!(strict.name("CN=bob,O=x"), None);
        assert_eq!(
            PrincipalMapper::parse("DEFAULT")
                .unwrap()
                .name("CN=a")
                .as_deref(),
            Some("CN=a")
        );
        for bad in ["RULE:abc", "NOPE", "RULE:(/x/", "DEFAULT junk"] {
            assert!(PrincipalMapper::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn escaping() {
        assert_eq!(escape("a,b"), "a\\,b");
        assert_eq!(escape("#x "), "\\#x\\ ");
        assert_eq!(replacement("$1-\\$"), "${1}-$$");
    }
}
