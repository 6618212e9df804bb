use thiserror::Error;

/// A rule that does not parse, with the byte offset of the problem.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("invalid rule `{rule}`: {message} at position {position}")]
pub struct RuleError {
    pub rule: String,
    /// Byte offset into `rule`.
    pub position: usize,
    pub message: String,
}

impl RuleError {
    pub(super) fn new(rule: &str, position: usize, message: impl Into<String>) -> Self {
        RuleError {
            rule: rule.to_string(),
            position: position.min(rule.len()),
            message: message.into(),
        }
    }

    /// The rule on one line and a `^` under the offending character on the next.
    pub fn caret(&self) -> String {
        // Control characters (newlines, tabs) would break the alignment; show them as spaces.
        let shown: String = self
            .rule
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect();
        // Columns count characters, not bytes, so the marker lines up under non-ASCII text.
        let column = self
            .rule
            .char_indices()
            .take_while(|(i, _)| *i < self.position)
            .count();
        format!("{shown}\n{}^", " ".repeat(column))
    }
}

/// The candidate closest to `name`, if it is close enough to be a plausible typo.
pub(super) fn did_you_mean<'a>(name: &str, candidates: &[&'a str]) -> Option<&'a str> {
    let lower = name.to_ascii_lowercase();
    if let Some(same) = candidates.iter().find(|c| c.eq_ignore_ascii_case(name)) {
        return Some(same);
    }
    candidates
        .iter()
        .map(|c| {
            let distance = strsim::damerau_levenshtein(&lower, &c.to_ascii_lowercase());
            (distance, *c)
        })
        .filter(|(distance, c)| *distance <= 2 || *distance * 10 <= c.len() * 3)
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, c)| c)
}
