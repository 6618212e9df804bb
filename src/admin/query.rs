//! Query strings of the list endpoints, with Traefik's semantics: pagination
//! (`page`, `per_page`, `X-Next-Page`), filters (`search`, `status`,
//! `serviceName`, `middlewareName`) and sorting (`sortBy`, `direction`).

use std::cmp::Ordering;
use std::collections::HashMap;

const DEFAULT_PER_PAGE: usize = 100;

/// Decoded query parameters; the first value of a repeated key wins, as
/// Go's `url.Values.Get` does.
#[derive(Debug, Default, Clone)]
pub struct Query(HashMap<String, String>);

impl Query {
    pub fn parse(raw: Option<&str>) -> Query {
        let mut map = HashMap::new();
        for pair in raw.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let (Some(k), Some(v)) = (decode_query(k), decode_query(v)) else {
                continue;
            };
            map.entry(k).or_insert(v);
        }
        Query(map)
    }

    pub fn get(&self, key: &str) -> &str {
        self.0.get(key).map(String::as_str).unwrap_or("")
    }
}

/// `%XX` and `+` decoding of a query component.
fn decode_query(s: &str) -> Option<String> {
    percent_decode(&s.replace('+', " "))
}

/// `%XX` decoding; `None` on a malformed escape or invalid UTF-8.
pub fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3)?;
            let hex = std::str::from_utf8(hex).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// Traefik's search criterion; `None` when no filter is set.
#[derive(Debug, Clone, Default)]
pub struct Criterion {
    pub search: String,
    pub status: String,
    pub service_name: String,
    pub middleware_name: String,
}

impl Criterion {
    pub fn from_query(q: &Query) -> Option<Criterion> {
        let c = Criterion {
            search: q.get("search").to_string(),
            status: q.get("status").to_string(),
            service_name: q.get("serviceName").to_string(),
            middleware_name: q.get("middlewareName").to_string(),
        };
        let empty = c.search.is_empty()
            && c.status.is_empty()
            && c.service_name.is_empty()
            && c.middleware_name.is_empty();
        (!empty).then_some(c)
    }

    pub fn with_status(&self, status: &str) -> bool {
        self.status.is_empty() || status.eq_ignore_ascii_case(&self.status)
    }

    /// Case-insensitive substring match on any of the values.
    pub fn search_in(&self, values: &[&str]) -> bool {
        if self.search.is_empty() {
            return true;
        }
        let needle = self.search.to_lowercase();
        values.iter().any(|v| v.to_lowercase().contains(&needle))
    }

    /// A qualified filter must match exactly; an unqualified one matches the
    /// name part of the router's service.
    pub fn filter_service(&self, service: &str) -> bool {
        if self.service_name.is_empty() {
            return true;
        }
        if service.contains('@') {
            return self.service_name == service;
        }
        self.service_name.split('@').next() == Some(service)
    }

    pub fn filter_middleware(&self, middlewares: &[String]) -> bool {
        self.middleware_name.is_empty() || middlewares.contains(&self.middleware_name)
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PageError {
    #[error("invalid request: {0}: {1}")]
    Param(&'static str, i64),
    #[error("invalid request: page: {page}, per_page: {per_page}")]
    OutOfRange { page: usize, per_page: usize },
}

/// One page of a list: `start..end`, and the `X-Next-Page` value (1 when
/// this is the last page, as Traefik sends).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Page {
    pub start: usize,
    pub end: usize,
    pub next: usize,
}

pub fn paginate(q: &Query, total: usize) -> Result<Page, PageError> {
    let per_page = int_param(q, "per_page", DEFAULT_PER_PAGE)?;
    let page = int_param(q, "page", 1)?;
    let start = (page - 1).saturating_mul(per_page);
    if start != 0 && start >= total {
        return Err(PageError::OutOfRange { page, per_page });
    }
    let end = start.saturating_add(per_page).min(total);
    let next = if page.saturating_mul(per_page) < total {
        page + 1
    } else {
        1
    };
    Ok(Page { start, end, next })
}

fn int_param(q: &Query, key: &'static str, default: usize) -> Result<usize, PageError> {
    let raw = q.get(key);
    if raw.is_empty() {
        return Ok(default);
    }
    // Go's Atoi failure reports 0, as Traefik's message does.
    match raw.parse::<i64>() {
        Ok(v) if v > 0 => usize::try_from(v).map_err(|_| PageError::Param(key, v)),
        Ok(v) => Err(PageError::Param(key, v)),
        Err(_) => Err(PageError::Param(key, 0)),
    }
}

/// A sort key extracted from an item.
#[derive(Debug, Clone, PartialEq, PartialOrd)]
pub enum SortKey {
    Str(String),
    Int(i64),
}

/// Sorts by `key`, ties broken by name; descending when `direction=desc`.
pub fn sort_by<T>(
    q: &Query,
    items: &mut [T],
    name: impl Fn(&T) -> &str,
    key: impl Fn(&T, &str) -> Option<SortKey>,
) {
    let sort_by = q.get("sortBy");
    let desc = q.get("direction") == "desc";
    items.sort_by(|a, b| {
        let by_key = match (key(a, sort_by), key(b, sort_by)) {
            (Some(x), Some(y)) => x.partial_cmp(&y).unwrap_or(Ordering::Equal),
            _ => Ordering::Equal,
        };
        let ord = by_key.then_with(|| name(a).cmp(name(b)));
        if desc { ord.reverse() } else { ord }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(s: &str) -> Query {
        Query::parse(Some(s))
    }

    #[test]
    fn parses_and_decodes() {
        let query = q("search=a%40b+c&status=enabled&status=disabled&x");
        assert_eq!(query.get("search"), "a@b c");
        assert_eq!(query.get("status"), "enabled");
        assert_eq!(query.get("x"), "");
        assert_eq!(query.get("missing"), "");
        assert_eq!(
            percent_decode("foo%2Fbar@file").as_deref(),
            Some("foo/bar@file")
        );
        assert_eq!(percent_decode("bad%zz"), None);
        assert_eq!(percent_decode("cut%4"), None);
    }

    #[test]
    fn pagination_matches_traefik() {
        assert_eq!(
            paginate(&q(""), 3),
            Ok(Page {
                start: 0,
                end: 3,
                next: 1
            })
        );
        assert_eq!(
            paginate(&q("per_page=2"), 5),
            Ok(Page {
                start: 0,
                end: 2,
                next: 2
            })
        );
        assert_eq!(
            paginate(&q("per_page=2&page=3"), 5),
            Ok(Page {
                start: 4,
                end: 5,
                next: 1
            })
        );
        assert_eq!(
            paginate(&q("per_page=2&page=4"), 5),
            Err(PageError::OutOfRange {
                page: 4,
                per_page: 2
            })
        );
        assert_eq!(paginate(&q("page=0"), 5), Err(PageError::Param("page", 0)));
        assert_eq!(
            paginate(&q("per_page=abc"), 5),
            Err(PageError::Param("per_page", 0))
        );
        // An empty list still has a first page.
        assert_eq!(
            paginate(&q(""), 0),
            Ok(Page {
                start: 0,
                end: 0,
                next: 1
            })
        );
        assert_eq!(
            PageError::OutOfRange {
                page: 4,
                per_page: 2
            }
            .to_string(),
            "invalid request: page: 4, per_page: 2"
        );
    }

    #[test]
    fn criterion_filters() {
        assert!(Criterion::from_query(&q("page=2")).is_none());
        let c = Criterion::from_query(&q("search=FOO&status=Enabled")).unwrap();
        assert!(c.with_status("enabled"));
        assert!(!c.with_status("disabled"));
        assert!(c.search_in(&["Host(`x`)", "myfoo@file"]));
        assert!(!c.search_in(&["bar@file"]));

        let c = Criterion::from_query(&q("serviceName=web@docker")).unwrap();
        assert!(c.filter_service("web@docker"));
        assert!(c.filter_service("web"), "unqualified router service");
        assert!(!c.filter_service("web@file"));
        let c = Criterion::from_query(&q("serviceName=web")).unwrap();
        assert!(!c.filter_service("web@file"), "qualified needs exact match");

        let c = Criterion::from_query(&q("middlewareName=auth@file")).unwrap();
        assert!(c.filter_middleware(&["x@file".into(), "auth@file".into()]));
        assert!(!c.filter_middleware(&["auth".into()]));
    }

    #[test]
    fn sorts_with_name_tie_break() {
        let mut items = vec![("b", 1), ("a", 2), ("c", 1)];
        let key = |i: &(&str, i64), by: &str| (by == "priority").then_some(SortKey::Int(i.1));
        sort_by(&q("sortBy=priority"), &mut items, |i| i.0, key);
        assert_eq!(items, vec![("b", 1), ("c", 1), ("a", 2)]);
        sort_by(
            &q("sortBy=priority&direction=desc"),
            &mut items,
            |i| i.0,
            key,
        );
        assert_eq!(items, vec![("a", 2), ("c", 1), ("b", 1)]);
        sort_by(&q(""), &mut items, |i| i.0, key);
        assert_eq!(items, vec![("a", 2), ("b", 1), ("c", 1)]);
    }
}
