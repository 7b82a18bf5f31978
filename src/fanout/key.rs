//! The Redis key an event is published under: `streams.key`, a template
//! with `{tier}` and `{projectId}`.
//!
//! Ids become part of the key the same way they become part of paths and
//! object keys (SPEC §2): through [`crate::event::path_component`], so an
//! absent `projectId` is `_none` and an unsafe one `_invalid-<hash>` —
//! never the raw value. The template is parsed once (config validation
//! calls [`StreamKey::parse`], the publisher uses what it returns).

use crate::event::{path_component, Event};

/// One piece of a parsed template.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Part {
    Literal(String),
    Tier,
    ProjectId,
}

/// A parsed `streams.key`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StreamKey {
    parts: Vec<Part>,
}

/// Why a key template cannot be used.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("streams.key is empty; write e.g. \"logship:{{tier}}\"")]
    Empty,
    #[error("streams.key has an unknown placeholder {{{0}}}; only {{tier}} and {{projectId}} may appear")]
    Unknown(String),
    #[error("streams.key has an unclosed `{{`; placeholders are {{tier}} and {{projectId}}")]
    Unclosed,
}

impl StreamKey {
    pub fn parse(template: &str) -> Result<StreamKey, KeyError> {
        if template.is_empty() {
            return Err(KeyError::Empty);
        }
        let mut parts = Vec::new();
        let mut rest = template;
        while let Some(open) = rest.find('{') {
            if open > 0 {
                parts.push(Part::Literal(rest[..open].to_string()));
            }
            let after = &rest[open + 1..];
            let close = after.find('}').ok_or(KeyError::Unclosed)?;
            parts.push(match &after[..close] {
                "tier" => Part::Tier,
                "projectId" => Part::ProjectId,
                other => return Err(KeyError::Unknown(other.to_string())),
            });
            rest = &after[close + 1..];
        }
        if !rest.is_empty() {
            parts.push(Part::Literal(rest.to_string()));
        }
        Ok(StreamKey { parts })
    }

    /// Whether the key is the same for every event of a tier (no
    /// `{projectId}`).
    pub fn per_tier_only(&self) -> bool {
        !self.parts.contains(&Part::ProjectId)
    }

    /// The key for `ev`, written into `out` (cleared first).
    pub fn render(&self, ev: &Event, out: &mut String) {
        out.clear();
        for p in &self.parts {
            match p {
                Part::Literal(s) => out.push_str(s),
                Part::Tier => out.push_str(ev.tier.as_str()),
                Part::ProjectId => out.push_str(&path_component(ev.project_id.as_deref())),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Tier;

    fn key(t: &str, ev: &Event) -> String {
        let mut s = String::new();
        StreamKey::parse(t).unwrap().render(ev, &mut s);
        s
    }

    #[test]
    fn placeholders_are_filled_with_safe_ids() {
        let mut ev = Event::empty(Tier::Deploy);
        assert_eq!(key("logship:{tier}", &ev), "logship:deploy");
        assert_eq!(key("s:{tier}:{projectId}", &ev), "s:deploy:_none");
        ev.project_id = Some("p-1".into());
        assert_eq!(key("s:{tier}:{projectId}", &ev), "s:deploy:p-1");
        ev.project_id = Some("../../etc\r\nDEL x".into());
        let k = key("{projectId}", &ev);
        assert!(k.starts_with("_invalid-") && k.len() == 25, "{k}");
        assert!(StreamKey::parse("a{tier}").unwrap().per_tier_only());
        assert!(!StreamKey::parse("{projectId}").unwrap().per_tier_only());
    }

    #[test]
    fn bad_templates_are_refused() {
        assert_eq!(StreamKey::parse(""), Err(KeyError::Empty));
        assert_eq!(
            StreamKey::parse("x:{buildId}"),
            Err(KeyError::Unknown("buildId".into()))
        );
        assert_eq!(StreamKey::parse("x:{tier"), Err(KeyError::Unclosed));
    }
}
