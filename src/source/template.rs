//! Path templates: `{name}` captures in a source's file path fill ids.
//!
//! `/var/log/app/builds/{date}/{buildId}.log` matches
//! `/var/log/app/builds/2026-01-02/b-17.log` and yields `buildId = "b-17"`.
//! A capture never spans a `/`; `*` matches within one component. Captures
//! whose names are not ids (like `date`) only constrain the match.

use regex::Regex;

/// Why a path template does not parse.
#[derive(Debug, Clone, thiserror::Error)]
pub enum TemplateError {
    #[error("unclosed '{{' in path template {0:?}")]
    Unclosed(String),
    #[error(
        "invalid capture {{{name}}} in path template {template:?}; use names like {{buildId}}"
    )]
    BadCapture { name: String, template: String },
    #[error("capture {{{name}}} appears twice in {template:?}")]
    Repeated { name: String, template: String },
    #[error("path template {template:?}: {source}")]
    Regex {
        template: String,
        source: regex::Error,
    },
}

#[derive(Clone, Debug)]
pub struct PathTemplate {
    re: Regex,
    names: Vec<String>,
}

impl PathTemplate {
    pub fn parse(template: &str) -> Result<PathTemplate, TemplateError> {
        let mut pattern = String::from("^");
        let mut names = Vec::new();
        let mut rest = template;
        while let Some(open) = rest.find(['{', '*']) {
            pattern.push_str(&regex::escape(&rest[..open]));
            if rest.as_bytes()[open] == b'*' {
                pattern.push_str("[^/]*");
                rest = &rest[open + 1..];
                continue;
            }
            let close = rest[open..]
                .find('}')
                .ok_or_else(|| TemplateError::Unclosed(template.to_string()))?;
            let name = &rest[open + 1..open + close];
            if name.is_empty()
                || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
                || name.as_bytes()[0].is_ascii_digit()
            {
                return Err(TemplateError::BadCapture {
                    name: name.to_string(),
                    template: template.to_string(),
                });
            }
            if names.iter().any(|n| n == name) {
                return Err(TemplateError::Repeated {
                    name: name.to_string(),
                    template: template.to_string(),
                });
            }
            pattern.push_str(&format!("(?P<{name}>[^/]+?)"));
            names.push(name.to_string());
            rest = &rest[open + close + 1..];
        }
        pattern.push_str(&regex::escape(rest));
        pattern.push('$');
        let re = Regex::new(&pattern).map_err(|source| TemplateError::Regex {
            template: template.to_string(),
            source,
        })?;
        Ok(PathTemplate { re, names })
    }

    /// The captures of `path`, or `None` when it does not match.
    pub fn captures<'p>(&self, path: &'p str) -> Option<Vec<(&str, &'p str)>> {
        let caps = self.re.captures(path)?;
        Some(
            self.names
                .iter()
                .filter_map(|n| caps.name(n).map(|m| (n.as_str(), m.as_str())))
                .collect(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn captures_ids() {
        let t = PathTemplate::parse("/var/log/app/builds/{date}/{buildId}.log").unwrap();
        let c = t
            .captures("/var/log/app/builds/2026-01-02/b-17.log")
            .unwrap();
        assert_eq!(c, vec![("date", "2026-01-02"), ("buildId", "b-17")]);
        assert!(t.captures("/var/log/app/builds/x/y/z.log").is_none());
        assert!(t.captures("/var/log/app/builds/2026/b.txt").is_none());
    }

    #[test]
    fn stars_and_errors() {
        let t = PathTemplate::parse("/l/*/{projectId}-*.log").unwrap();
        assert_eq!(
            t.captures("/l/a/p1-x.log").unwrap(),
            vec![("projectId", "p1")]
        );
        assert!(PathTemplate::parse("/x/{a").is_err());
        assert!(PathTemplate::parse("/x/{a b}").is_err());
        assert!(PathTemplate::parse("/x/{a}/{a}").is_err());
    }
}
