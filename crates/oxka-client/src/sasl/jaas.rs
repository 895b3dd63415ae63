//! Kafka's `sasl.jaas.config` value: `LoginModuleClass flag key=value ...;`
//! (one or more entries), the format of JAAS configuration files. Clients
//! take their user name and password from it, the broker its PLAIN users
//! and OAUTHBEARER options: one parser for both.

use std::collections::BTreeMap;

/// One login module entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JaasEntry {
    pub login_module: String,
    /// `required`, `requisite`, `sufficient` or `optional`.
    pub flag: String,
    pub options: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Word(String),
    Quoted(String),
    Equals,
    Semicolon,
}

fn tokenize(s: &str) -> Result<Vec<Token>, String> {
    let mut out = Vec::new();
    let mut chars = s.chars().peekable();
    while let Some(&c) = chars.peek() {
        match c {
            c if c.is_whitespace() => {
                chars.next();
            }
            '=' => {
                chars.next();
                out.push(Token::Equals);
            }
            ';' => {
                chars.next();
                out.push(Token::Semicolon);
            }
            '"' | '\'' => {
                let quote = c;
                chars.next();
                let mut v = String::new();
                loop {
                    match chars.next() {
                        None => return Err("unterminated quoted value".into()),
                        Some('\\') => match chars.next() {
                            Some(e) => v.push(e),
                            None => return Err("unterminated quoted value".into()),
                        },
                        Some(q) if q == quote => break,
                        Some(o) => v.push(o),
                    }
                }
                out.push(Token::Quoted(v));
            }
            _ => {
                let mut w = String::new();
                while let Some(&c) = chars.peek() {
                    if c.is_whitespace() || matches!(c, '=' | ';' | '"' | '\'') {
                        break;
                    }
                    w.push(c);
                    chars.next();
                }
                out.push(Token::Word(w));
            }
        }
    }
    Ok(out)
}

/// Parses a `sasl.jaas.config` value. The error names what is wrong, never
/// a value (they may hold passwords).
pub fn parse(value: &str) -> Result<Vec<JaasEntry>, String> {
    let tokens = tokenize(value)?;
    let mut it = tokens.into_iter().peekable();
    let mut entries = Vec::new();
    while it.peek().is_some() {
        let Some(Token::Word(login_module)) = it.next() else {
            return Err("expected a login module class name".into());
        };
        let flag = match it.next() {
            Some(Token::Word(f))
                if matches!(
                    f.to_ascii_lowercase().as_str(),
                    "required" | "requisite" | "sufficient" | "optional"
                ) =>
            {
                f.to_ascii_lowercase()
            }
            _ => {
                return Err(format!(
                    "expected a control flag (required, requisite, sufficient, optional) after {login_module}"
                ))
            }
        };
        let mut options = BTreeMap::new();
        loop {
            match it.next() {
                Some(Token::Semicolon) => break,
                Some(Token::Word(key)) => {
                    if it.next() != Some(Token::Equals) {
                        return Err(format!("expected '=' after option {key}"));
                    }
                    let value = match it.next() {
                        Some(Token::Word(v)) | Some(Token::Quoted(v)) => v,
                        _ => return Err(format!("option {key} has no value")),
                    };
                    options.insert(key, value);
                }
                _ => return Err("an entry must end with ';'".into()),
            }
        }
        entries.push(JaasEntry {
            login_module,
            flag,
            options,
        });
    }
    if entries.is_empty() {
        return Err("no login module".into());
    }
    Ok(entries)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kafkas_plain_example() {
        let e = parse(
            r#"org.apache.kafka.common.security.plain.PlainLoginModule required
               username="admin" password="admin-secret"
               user_admin="admin-secret" user_alice="al\"ice;=x";"#,
        )
        .unwrap();
        assert_eq!(e.len(), 1);
        assert_eq!(
            e[0].login_module,
            "org.apache.kafka.common.security.plain.PlainLoginModule"
        );
        assert_eq!(e[0].flag, "required");
        assert_eq!(e[0].options["user_alice"], "al\"ice;=x");
        assert_eq!(e[0].options["username"], "admin");
        let e = parse("a.B required;").unwrap();
        assert!(e[0].options.is_empty());
    }

    #[test]
    fn malformed_values_are_errors() {
        for bad in [
            "",
            "a.B",
            "a.B required",
            "a.B maybe;",
            "a.B required user_x=;",
            "a.B required user_x \"y\";",
            "a.B required user_x=\"y;",
        ] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
    }
}
