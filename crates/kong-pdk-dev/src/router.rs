//! Route matching, a simplified form of Kong's `traditional` router.
//!
//! A route matches when every attribute it sets matches: one of its
//! `methods`, one of its `hosts` (exact, `*.suffix` or `prefix.*`, compared
//! without the port unless the route host has one), one of its `paths` as a
//! prefix of the normalized request path. Among matching routes Kong prefers
//! the one that sets more attribute kinds (hosts, then paths, then methods
//! break ties), then plain hosts over wildcards, then the longest matching
//! path, then the first declared.

use crate::declarative::Route;

/// The result of routing a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Match {
    /// The index of the route in the route list.
    pub route: usize,
    /// The path prefix that matched (`None` when the route has no paths).
    pub prefix: Option<String>,
}

/// Finds the route for a request. `path` must be normalized
/// ([`normalize_path`]); `host` is the `Host` header.
pub fn find(routes: &[Route], method: &str, host: &str, path: &str) -> Option<Match> {
    let mut best: Option<(Key, Match)> = None;
    for (i, route) in routes.iter().enumerate() {
        let Some((key, m)) = matches(route, i, method, host, path) else {
            continue;
        };
        if best.as_ref().is_none_or(|(k, _)| key > *k) {
            best = Some((key, m));
        }
    }
    best.map(|(_, m)| m)
}

/// Sort key: bigger is better.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Key {
    kinds: u8,
    mask: u8,
    plain_host: bool,
    path_len: usize,
    earlier: std::cmp::Reverse<usize>,
}

fn matches(
    route: &Route,
    index: usize,
    method: &str,
    host: &str,
    path: &str,
) -> Option<(Key, Match)> {
    let mut mask = 0u8;
    let mut plain_host = false;
    if !route.hosts.is_empty() {
        mask |= 4;
        plain_host = route.hosts.iter().find_map(|h| host_matches(h, host))?;
    }
    let mut prefix = None;
    if !route.paths.is_empty() {
        mask |= 2;
        let best = route
            .paths
            .iter()
            .filter(|p| path_matches(p, path))
            .max_by_key(|p| p.len())?;
        prefix = Some(best.clone());
    }
    if !route.methods.is_empty() {
        mask |= 1;
        if !route.methods.iter().any(|m| m.eq_ignore_ascii_case(method)) {
            return None;
        }
    }
    let key = Key {
        kinds: mask.count_ones() as u8,
        mask,
        plain_host,
        path_len: prefix.as_ref().map_or(0, String::len),
        earlier: std::cmp::Reverse(index),
    };
    Some((
        key,
        Match {
            route: index,
            prefix,
        },
    ))
}

/// `Some(plain)` when `pattern` matches the `Host` header value.
fn host_matches(pattern: &str, host_header: &str) -> Option<bool> {
    let host_header = host_header.to_ascii_lowercase();
    let host = if pattern.contains(':') {
        host_header.as_str()
    } else {
        strip_port(&host_header)
    };
    if let Some(suffix) = pattern.strip_prefix('*') {
        return (host.ends_with(suffix) && host.len() > suffix.len()).then_some(false);
    }
    if let Some(prefix) = pattern.strip_suffix('*') {
        return (host.starts_with(prefix) && host.len() > prefix.len()).then_some(false);
    }
    (host == pattern).then_some(true)
}

fn strip_port(host: &str) -> &str {
    if host.starts_with('[') {
        return host
            .split_once(']')
            .map_or(host, |(h, _)| &host[..=h.len()]);
    }
    host.rsplit_once(':')
        .filter(|(_, p)| p.bytes().all(|b| b.is_ascii_digit()))
        .map_or(host, |(h, _)| h)
}

/// A route path matches as a plain prefix (Kong does not require a `/`
/// boundary: `/hello` matches `/helloworld`).
fn path_matches(prefix: &str, path: &str) -> bool {
    path.starts_with(prefix)
}

/// Removes `.`/`..` segments and decodes percent-encoded unreserved
/// characters, as Kong does before routing.
pub fn normalize_path(path: &str) -> String {
    let decoded = decode_unreserved(path);
    let mut out: Vec<&str> = Vec::new();
    let segments: Vec<&str> = decoded.split('/').collect();
    let last = segments.len().saturating_sub(1);
    for (i, seg) in segments.iter().enumerate() {
        match *seg {
            "." => {
                if i == last {
                    out.push("");
                }
            }
            ".." => {
                if out.len() > 1 {
                    out.pop();
                }
                if i == last {
                    out.push("");
                }
            }
            s => out.push(s),
        }
    }
    let joined = out.join("/");
    if joined.starts_with('/') {
        joined
    } else {
        format!("/{joined}")
    }
}

fn decode_unreserved(path: &str) -> String {
    let bytes = path.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok();
            if let Some(b) = hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
                    out.push(b);
                } else {
                    out.push(b'%');
                    out.extend(bytes[i + 1..i + 3].iter().map(u8::to_ascii_uppercase));
                }
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The upstream path (Kong's `path_handling = v0`): the request path with
/// the matched prefix removed when `strip_path`, appended to the service
/// path.
pub fn upstream_path(
    request_path: &str,
    prefix: Option<&str>,
    strip: bool,
    service_path: Option<&str>,
) -> String {
    let rest = match (strip, prefix) {
        (true, Some(p)) => request_path.strip_prefix(p).unwrap_or(request_path),
        _ => request_path,
    };
    let service_path = service_path.unwrap_or("/");
    if rest.is_empty() {
        return service_path.to_owned();
    }
    if service_path == "/" {
        return if rest.starts_with('/') {
            rest.to_owned()
        } else {
            format!("/{rest}")
        };
    }
    match (service_path.ends_with('/'), rest.starts_with('/')) {
        (true, true) => format!("{service_path}{}", &rest[1..]),
        (false, false) => format!("{service_path}/{rest}"),
        _ => format!("{service_path}{rest}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(paths: &[&str], hosts: &[&str], methods: &[&str]) -> Route {
        Route {
            id: String::new(),
            name: String::new(),
            service: Some(0),
            protocols: vec![],
            methods: methods.iter().map(|s| s.to_string()).collect(),
            hosts: hosts.iter().map(|s| s.to_string()).collect(),
            paths: paths.iter().map(|s| s.to_string()).collect(),
            strip_path: true,
            preserve_host: false,
            regex_priority: 0,
            https_redirect_status_code: 426,
            tags: vec![],
        }
    }

    #[test]
    fn longest_prefix_and_more_attributes_win() {
        let routes = [
            route(&["/"], &[], &[]),
            route(&["/api"], &[], &[]),
            route(&["/api/v1"], &[], &[]),
            route(&["/api"], &["api.example.com"], &[]),
            route(&["/api"], &["*.example.com"], &[]),
        ];
        let r = |m, h, p| find(&routes, m, h, p).map(|m| m.route);
        assert_eq!(r("GET", "localhost", "/x"), Some(0));
        assert_eq!(r("GET", "localhost", "/api/x"), Some(1));
        assert_eq!(r("GET", "localhost:8000", "/api/v1/x"), Some(2));
        assert_eq!(r("GET", "api.example.com:8000", "/api/v1/x"), Some(3));
        assert_eq!(r("GET", "www.example.com", "/api"), Some(4));
        let methods = [route(&["/a"], &[], &["POST"])];
        assert_eq!(find(&methods, "GET", "h", "/a"), None);
        assert_eq!(
            find(&methods, "POST", "h", "/a/b")
                .unwrap()
                .prefix
                .as_deref(),
            Some("/a")
        );
    }

    #[test]
    fn upstream_paths_like_kong_v0() {
        assert_eq!(upstream_path("/hello/x", Some("/hello"), true, None), "/x");
        assert_eq!(upstream_path("/hello", Some("/hello"), true, None), "/");
        assert_eq!(
            upstream_path("/hello", Some("/hello"), true, Some("/svc")),
            "/svc"
        );
        assert_eq!(
            upstream_path("/hello/x", Some("/hello"), true, Some("/svc")),
            "/svc/x"
        );
        assert_eq!(
            upstream_path("/hello/x", Some("/hello"), true, Some("/svc/")),
            "/svc/x"
        );
        assert_eq!(
            upstream_path("/hello/x", Some("/hello"), false, Some("/svc")),
            "/svc/hello/x"
        );
        assert_eq!(
            upstream_path("/hellox", Some("/hello"), true, Some("/svc")),
            "/svc/x"
        );
    }

    #[test]
    fn paths_are_normalized() {
        assert_eq!(normalize_path("/a/./b/../c"), "/a/c");
        assert_eq!(normalize_path("/%61b%2Fc"), "/ab%2Fc");
        assert_eq!(normalize_path("/../x"), "/x");
        assert_eq!(normalize_path("/a/.."), "/");
    }
}
