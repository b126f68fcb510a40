//! PromQL templates with `{{variable}}` placeholders, rendered safely.
//!
//! Inside a double-quoted PromQL string a value is escaped (backslash, quote, newline...), so it
//! cannot close the string. Outside quotes only durations (`5m`, `1h30m`) and plain numbers are
//! accepted, because there escaping cannot help (e.g. `rate(x[{{interval}}])`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Variable name → value.
pub type Variables = BTreeMap<String, String>;

#[derive(Debug, Clone, PartialEq, thiserror::Error, Serialize, Deserialize)]
pub enum TemplateError {
    #[error("unknown template variable {0:?}")]
    UnknownVariable(String),
    #[error("invalid template variable name {0:?} (use letters, digits and _)")]
    InvalidName(String),
    #[error("unclosed '{{{{' at byte {0}")]
    Unclosed(usize),
    #[error("variable {name:?} is used outside a quoted string, so its value must be a duration or number, got {value:?}")]
    UnsafeValue { name: String, value: String },
}

/// Whether `name` is a valid variable name: `[A-Za-z_][A-Za-z0-9_]*`.
pub fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Escapes a value for use inside a PromQL double-quoted string.
pub fn escape_label_value(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c => out.push(c),
        }
    }
    out
}

/// A Prometheus duration (`30s`, `1h30m`, `500ms`) or a plain non-negative number.
pub fn is_duration_or_number(value: &str) -> bool {
    if !value.is_empty()
        && value.chars().all(|c| c.is_ascii_digit() || c == '.')
        && value.parse::<f64>().is_ok()
    {
        return true;
    }
    duration_total_ms(value).is_some()
}

/// Parses a Prometheus duration (`500ms`, `10s`, `1m`, `1h30m`, `1d`, `2w`, `1y`; a week is 7
/// days and a year 365, as Prometheus' `model.ParseDuration` has them) into milliseconds;
/// `None` for anything else or a value beyond `i64`.
pub fn duration_ms(value: &str) -> Option<i64> {
    i64::try_from(duration_total_ms(value.trim())?).ok()
}

/// The duration grammar, once: digits then a unit, one or more times. Saturating, so a syntax
/// check does not depend on the size of the numbers.
fn duration_total_ms(value: &str) -> Option<u128> {
    let b = value.as_bytes();
    let mut i = 0;
    let mut total: u128 = 0;
    while i < b.len() {
        let start = i;
        let mut n: u128 = 0;
        while i < b.len() && b[i].is_ascii_digit() {
            n = n.saturating_mul(10).saturating_add(u128::from(b[i] - b'0'));
            i += 1;
        }
        if i == start {
            return None;
        }
        let (len, factor) = match (b.get(i), b.get(i + 1)) {
            (Some(b'm'), Some(b's')) => (2, 1),
            (Some(b's'), _) => (1, 1000),
            (Some(b'm'), _) => (1, 60_000),
            (Some(b'h'), _) => (1, 3_600_000),
            (Some(b'd'), _) => (1, 86_400_000),
            (Some(b'w'), _) => (1, 7 * 86_400_000),
            (Some(b'y'), _) => (1, 365 * 86_400_000),
            _ => return None,
        };
        i += len;
        total = total.saturating_add(n.saturating_mul(factor));
    }
    (!b.is_empty()).then_some(total)
}

/// Renders `template`, replacing each `{{ name }}` by its value from `vars`.
pub fn render(template: &str, vars: &Variables) -> Result<String, TemplateError> {
    let mut out = String::with_capacity(template.len() + 32);
    let mut quote: Option<char> = None; // the quote char of the string we are in, if any
    let mut escaped = false;
    let mut rest = template;
    let mut offset = 0;
    while !rest.is_empty() {
        if rest.starts_with("{{") {
            let end = rest.find("}}").ok_or(TemplateError::Unclosed(offset))?;
            let name = rest[2..end].trim();
            if !valid_name(name) {
                return Err(TemplateError::InvalidName(name.to_string()));
            }
            let value = vars
                .get(name)
                .ok_or_else(|| TemplateError::UnknownVariable(name.to_string()))?;
            match quote {
                Some('"') => out.push_str(&escape_label_value(value)),
                _ if is_duration_or_number(value) => out.push_str(value),
                _ => {
                    return Err(TemplateError::UnsafeValue {
                        name: name.into(),
                        value: value.clone(),
                    })
                }
            }
            rest = &rest[end + 2..];
            offset += end + 2;
            continue;
        }
        let Some(c) = rest.chars().next() else { break };
        match (quote, c) {
            (Some(_), _) if escaped => escaped = false,
            (Some(_), '\\') => escaped = true,
            (Some(q), c) if c == q => quote = None,
            (None, '"' | '\'' | '`') => quote = Some(c),
            _ => {}
        }
        out.push(c);
        rest = &rest[c.len_utf8()..];
        offset += c.len_utf8();
    }
    Ok(out)
}

/// Renders a template that is not PromQL (a web check's URL, body or header): each
/// `{{ name }}` becomes `encode(value)` (percent-encoding in a URL, JSON string escaping in a
/// body), with the same placeholder grammar and errors as [`render`].
pub fn render_with(
    template: &str,
    vars: &Variables,
    encode: &dyn Fn(&str) -> String,
) -> Result<String, TemplateError> {
    let mut out = String::with_capacity(template.len() + 32);
    let rest = scan(template, |text, name| {
        out.push_str(text);
        let value = vars
            .get(name)
            .ok_or_else(|| TemplateError::UnknownVariable(name.to_string()))?;
        out.push_str(&encode(value));
        Ok(())
    })?;
    out.push_str(rest);
    Ok(out)
}

/// Names of all placeholders in `template`, in order of first use (for validation up front).
pub fn placeholders(template: &str) -> Result<Vec<String>, TemplateError> {
    let mut names: Vec<String> = Vec::new();
    scan(template, |_, name| {
        if !names.iter().any(|n| n == name) {
            names.push(name.to_string());
        }
        Ok(())
    })?;
    Ok(names)
}

/// Walks the `{{ name }}` placeholders of `template`: `each(text before, name)` for each valid
/// one; returns the text after the last.
fn scan<'t>(
    template: &'t str,
    mut each: impl FnMut(&'t str, &'t str) -> Result<(), TemplateError>,
) -> Result<&'t str, TemplateError> {
    let mut rest = template;
    let mut offset = 0;
    while let Some(start) = rest.find("{{") {
        let end = rest[start..]
            .find("}}")
            .ok_or(TemplateError::Unclosed(offset + start))?
            + start;
        let name = rest[start + 2..end].trim();
        if !valid_name(name) {
            return Err(TemplateError::InvalidName(name.to_string()));
        }
        each(&rest[..start], name)?;
        rest = &rest[end + 2..];
        offset += end + 2;
    }
    Ok(rest)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> Variables {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn substitutes_with_and_without_spaces() {
        let v = vars(&[
            ("namespace", "shop"),
            ("ingress", "web"),
            ("interval", "1m"),
        ]);
        let q = r#"sum(rate(x{namespace="{{namespace}}",ingress="{{ ingress }}"}[{{interval}}]))"#;
        assert_eq!(
            render(q, &v).unwrap(),
            r#"sum(rate(x{namespace="shop",ingress="web"}[1m]))"#
        );
    }

    #[test]
    fn unknown_variable_is_named() {
        let e = render(r#"x{a="{{nope}}"}"#, &Variables::new()).unwrap_err();
        assert_eq!(e, TemplateError::UnknownVariable("nope".into()));
        assert!(e.to_string().contains("nope"));
    }

    #[test]
    fn invalid_names_and_unclosed() {
        assert!(matches!(
            render("{{a-b}}", &vars(&[("a-b", "1")])),
            Err(TemplateError::InvalidName(_))
        ));
        assert!(matches!(
            render("{{}}", &Variables::new()),
            Err(TemplateError::InvalidName(_))
        ));
        assert_eq!(
            render("x{{a", &Variables::new()),
            Err(TemplateError::Unclosed(1))
        );
        assert_eq!(placeholders("{{a}} {{b}} {{a}}").unwrap(), vec!["a", "b"]);
        assert!(valid_name("_x9") && !valid_name("9x") && !valid_name(""));
    }

    #[test]
    fn value_cannot_break_out_of_quotes() {
        let evil = "x\"} or vector(1) or x{a=\"\\";
        let q = render(r#"up{job="{{job}}"}"#, &vars(&[("job", evil)])).unwrap();
        assert_eq!(q, r#"up{job="x\"} or vector(1) or x{a=\"\\"}"#);
        let q = render(r#"up{job="{{job}}"}"#, &vars(&[("job", "a\nb")])).unwrap();
        assert_eq!(q, r#"up{job="a\nb"}"#);
    }

    #[test]
    fn unquoted_positions_accept_only_durations_and_numbers() {
        let q = "rate(x[{{interval}}]) > {{limit}}";
        assert_eq!(
            render(q, &vars(&[("interval", "1h30m"), ("limit", "0.5")])).unwrap(),
            "rate(x[1h30m]) > 0.5"
        );
        assert_eq!(
            render(q, &vars(&[("interval", "500ms"), ("limit", "2")])).unwrap(),
            "rate(x[500ms]) > 2"
        );
        let e = render(
            q,
            &vars(&[("interval", "5m]) or vector(1"), ("limit", "1")]),
        )
        .unwrap_err();
        assert!(matches!(e, TemplateError::UnsafeValue { ref name, .. } if name == "interval"));
        // A variable after a closed string is outside quotes again; escaped quotes do not close.
        let e = render(r#"x{a="\"q"} + {{v}}"#, &vars(&[("v", "name")])).unwrap_err();
        assert!(matches!(e, TemplateError::UnsafeValue { .. }));
    }

    #[test]
    fn duration_syntax() {
        for ok in ["5m", "30s", "1h30m", "250ms", "1d", "2w", "1y", "10", "0.5"] {
            assert!(is_duration_or_number(ok), "{ok}");
        }
        for bad in ["", "m", "5x", "-1", "5m ", "1e3", "5 m", "m5"] {
            assert!(!is_duration_or_number(bad), "{bad}");
        }
        // Syntax does not depend on size.
        assert!(is_duration_or_number("99999999999999999999999s"));
    }

    #[test]
    fn durations_in_milliseconds() {
        assert_eq!(duration_ms("10s"), Some(10_000));
        assert_eq!(duration_ms("1m30s"), Some(90_000));
        assert_eq!(duration_ms("250ms"), Some(250));
        assert_eq!(duration_ms("2h"), Some(7_200_000));
        assert_eq!(duration_ms("1w"), Some(7 * 86_400_000));
        for bad in [
            "",
            "s",
            "10",
            "10x",
            "1.5m",
            "-1s",
            "99999999999999999999999s",
        ] {
            assert_eq!(duration_ms(bad), None, "{bad}");
        }
    }
}
