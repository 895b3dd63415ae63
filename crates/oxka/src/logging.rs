//! Log output for every `oxka` command: one filter syntax, colour only for
//! a person at a terminal.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

/// Levels as operators coming from Kafka (log4j) or syslog spell them,
/// mapped to tracing's. Without this `warning` would be read as a target
/// name, and the filter would silently drop every log line.
const LEVEL_ALIASES: &[(&str, &str)] = &[
    ("warning", "warn"),
    ("fatal", "error"),
    ("critical", "error"),
    ("err", "error"),
    ("all", "trace"),
    ("none", "off"),
];

const LEVELS: &[&str] = &["trace", "debug", "info", "warn", "error", "off"];

/// A filter from `--log-level`: comma-separated `LEVEL` or `TARGET=LEVEL`
/// directives, levels case-insensitive with the aliases above. A bare word
/// that is no level is refused (a typo must not turn logging off); a
/// directive on a target always names its level.
pub fn parse_level(spec: &str) -> Result<EnvFilter, String> {
    let level = |l: &str| -> Result<&'static str, String> {
        let l = l.trim().to_ascii_lowercase();
        LEVELS
            .iter()
            .copied()
            .find(|x| *x == l)
            .or_else(|| LEVEL_ALIASES.iter().find(|(a, _)| *a == l).map(|(_, t)| *t))
            .ok_or_else(|| {
                format!(
                    "`{l}` is not a log level: use {} (or TARGET=LEVEL, e.g. oxka_broker=debug)",
                    LEVELS.join(", ")
                )
            })
    };
    let mut directives = Vec::new();
    for d in spec.split(',').map(str::trim).filter(|d| !d.is_empty()) {
        directives.push(match d.rsplit_once('=') {
            Some((target, l)) if !target.trim().is_empty() => {
                format!("{}={}", target.trim(), level(l)?)
            }
            Some(_) => return Err(format!("`{d}`: expected TARGET=LEVEL")),
            None => level(d)?.to_string(),
        });
    }
    if directives.is_empty() {
        return Err("empty log level".into());
    }
    EnvFilter::try_new(directives.join(",")).map_err(|e| format!("log level `{spec}`: {e}"))
}

/// Colour codes only for a terminal, and never when `NO_COLOR` is set to
/// anything non-empty (<https://no-color.org>): a log file or a pipe gets
/// plain text.
fn use_colour() -> bool {
    std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

/// Logs to stderr through `filter`. Does nothing if logging is already set
/// up (tests that call a command twice).
pub fn init(filter: EnvFilter) {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(use_colour())
        .with_writer(std::io::stderr)
        .try_init();
}

/// `RUST_LOG` when set (tracing's own syntax), else `default`.
pub fn filter_from_env(default: &str) -> Result<EnvFilter, String> {
    match std::env::var("RUST_LOG") {
        Ok(v) if !v.trim().is_empty() => {
            EnvFilter::try_new(&v).map_err(|e| format!("RUST_LOG `{v}`: {e}"))
        }
        _ => parse_level(default),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_and_aliases() {
        for (given, shown) in [
            ("warning", "warn"),
            ("WARN", "warn"),
            ("Info", "info"),
            ("fatal", "error"),
            ("off", "off"),
            ("oxka_broker=Warning,info", "oxka_broker=warn,info"),
        ] {
            let f = parse_level(given).unwrap_or_else(|e| panic!("{given}: {e}"));
            for part in shown.split(',') {
                assert!(f.to_string().contains(part), "{given}: {f}");
            }
        }
        for bad in ["warnings", "verbose", "", "=debug", "oxka=loud"] {
            assert!(parse_level(bad).is_err(), "{bad} accepted");
        }
    }
}
