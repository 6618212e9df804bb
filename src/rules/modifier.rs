use crate::config::dynamic::{
    AddPrefix, Middleware, ReplacePath, ReplacePathRegex, StripPrefix, StripPrefixRegex,
};

/// A path rewrite carried by a v1 rule (`PathPrefixStrip`, `AddPrefix`, ...).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Modifier {
    /// Prefixes to strip, longest first; the first one that matches is stripped.
    StripPrefix(Vec<String>),
    /// Regexes (already compiled from v1 templates, anchored with `^`), longest template first.
    StripPrefixRegex(Vec<String>),
    AddPrefix(String),
    ReplacePath(String),
    ReplacePathRegex {
        regex: String,
        replacement: String,
    },
}

impl Modifier {
    /// The Traefik v3 middleware doing the same rewrite.
    pub fn to_middleware(&self) -> Middleware {
        match self {
            Modifier::StripPrefix(prefixes) => Middleware {
                strip_prefix: Some(StripPrefix {
                    prefixes: prefixes.clone(),
                    force_slash: None,
                }),
                ..Middleware::default()
            },
            Modifier::StripPrefixRegex(regex) => Middleware {
                strip_prefix_regex: Some(StripPrefixRegex {
                    regex: regex.clone(),
                }),
                ..Middleware::default()
            },
            Modifier::AddPrefix(prefix) => Middleware {
                add_prefix: Some(AddPrefix {
                    prefix: prefix.clone(),
                }),
                ..Middleware::default()
            },
            Modifier::ReplacePath(path) => Middleware {
                replace_path: Some(ReplacePath { path: path.clone() }),
                ..Middleware::default()
            },
            Modifier::ReplacePathRegex { regex, replacement } => Middleware {
                replace_path_regex: Some(ReplacePathRegex {
                    regex: regex.clone(),
                    replacement: replacement.clone(),
                }),
                ..Middleware::default()
            },
        }
    }
}
