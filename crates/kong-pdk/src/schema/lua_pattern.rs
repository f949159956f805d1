//! Lua 5.1 patterns, as Kong's `match` and `not_match` field validators use them
//! (`value:match(pattern)` in LuaJIT).
//!
//! Patterns work on bytes, like Lua: `.` is one byte, classes (`%a`, `%d`, `%s`, …) follow
//! the C locale, and non-ASCII bytes belong to no class. Supported: single-byte classes,
//! `[sets]` with ranges and classes, `^`/`$` anchors, the quantifiers `* + - ?`, captures
//! `( )` and position captures `()`, back-references `%1`–`%9`, `%bxy` and `%f[set]`.
//!
//! ```
//! use kong_pdk::schema::lua_pattern;
//!
//! assert!(lua_pattern::is_match("x-request-id", "^[%w-]+$").unwrap());
//! assert!(!lua_pattern::is_match("bad header", "^[%w-]+$").unwrap());
//! assert!(lua_pattern::check("[a-z").is_err()); // malformed pattern (missing ']')
//! ```

use std::fmt;
use std::ops::Range;

/// A malformed pattern, with Lua's message (e.g. `malformed pattern (missing ']')`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PatternError(String);

impl PatternError {
    fn new(message: impl Into<String>) -> PatternError {
        PatternError(message.into())
    }

    /// Lua's error message.
    pub fn message(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for PatternError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for PatternError {}

/// Whether `pattern` matches anywhere in `subject` (Lua's `subject:match(pattern) ~= nil`).
pub fn is_match(subject: &str, pattern: &str) -> Result<bool, PatternError> {
    Ok(find(subject, pattern)?.is_some())
}

/// The byte range of the first match of `pattern` in `subject`, like Lua's `string.find`.
pub fn find(subject: &str, pattern: &str) -> Result<Option<Range<usize>>, PatternError> {
    let src = subject.as_bytes();
    let pat = pattern.as_bytes();
    let anchored = pat.first() == Some(&b'^');
    let start_p = usize::from(anchored);
    let mut matcher = Matcher {
        src,
        pat,
        captures: Vec::new(),
        depth: 0,
    };
    let mut s = 0;
    loop {
        matcher.captures.clear();
        if let Some(end) = matcher.do_match(s, start_p)? {
            if matcher
                .captures
                .iter()
                .any(|c| matches!(c.len, CaptureLen::Unfinished))
            {
                return Err(PatternError::new("unfinished capture"));
            }
            return Ok(Some(s..end));
        }
        s += 1;
        if anchored || s > src.len() {
            return Ok(None);
        }
    }
}

/// Checks the syntax of a whole pattern without matching it.
///
/// Lua reports a malformed pattern only when matching reaches the bad part; this checks
/// every part, so a pattern that passes never raises an error in Kong.
pub fn check(pattern: &str) -> Result<(), PatternError> {
    let pat = pattern.as_bytes();
    let mut p = usize::from(pat.first() == Some(&b'^'));
    // For each capture opened so far: whether it has been closed.
    let mut captures: Vec<bool> = Vec::new();
    while p < pat.len() {
        match pat[p] {
            b'(' => {
                if pat.get(p + 1) == Some(&b')') {
                    captures.push(true);
                    p += 2;
                } else {
                    captures.push(false);
                    p += 1;
                }
                continue;
            }
            b')' => {
                match captures.iter().rposition(|closed| !closed) {
                    Some(open) => captures[open] = true,
                    None => return Err(PatternError::new("invalid pattern capture")),
                }
                p += 1;
                continue;
            }
            b'$' if p + 1 == pat.len() => {
                p += 1;
                continue;
            }
            b'%' => match pat.get(p + 1) {
                Some(b'b') => {
                    if p + 3 >= pat.len() {
                        return Err(PatternError::new(
                            "malformed pattern (missing arguments to '%b')",
                        ));
                    }
                    p += 4;
                    continue;
                }
                Some(b'f') => {
                    if pat.get(p + 2) != Some(&b'[') {
                        return Err(PatternError::new("missing '[' after '%f' in pattern"));
                    }
                    p = class_end(pat, p + 2)?;
                    continue;
                }
                Some(&d @ b'0'..=b'9') => {
                    let index = usize::from(d.wrapping_sub(b'1'));
                    if d == b'0' || !captures.get(index).copied().unwrap_or(false) {
                        return Err(PatternError::new("invalid capture index"));
                    }
                    p += 2;
                    continue;
                }
                _ => {}
            },
            _ => {}
        }
        let ep = class_end(pat, p)?;
        p = match pat.get(ep) {
            Some(b'?' | b'*' | b'+' | b'-') => ep + 1,
            _ => ep,
        };
    }
    if captures.iter().any(|closed| !closed) {
        return Err(PatternError::new("unfinished capture"));
    }
    Ok(())
}

/// Deeper than this, a match gives up (Lua would overflow its C stack much later).
const MAX_DEPTH: usize = 2_000;

#[derive(Debug, Clone, Copy)]
enum CaptureLen {
    Unfinished,
    Position,
    Len(usize),
}

#[derive(Debug, Clone, Copy)]
struct Capture {
    start: usize,
    len: CaptureLen,
}

struct Matcher<'a> {
    src: &'a [u8],
    pat: &'a [u8],
    captures: Vec<Capture>,
    depth: usize,
}

impl Matcher<'_> {
    /// Matches `pat[p..]` at `src[s..]`; the end of the match, if any.
    fn do_match(&mut self, s: usize, p: usize) -> Result<Option<usize>, PatternError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(PatternError::new("pattern too complex"));
        }
        let result = self.do_match_inner(s, p);
        self.depth -= 1;
        result
    }

    fn do_match_inner(
        &mut self,
        mut s: usize,
        mut p: usize,
    ) -> Result<Option<usize>, PatternError> {
        let (src, pat) = (self.src, self.pat);
        loop {
            let Some(&pc) = pat.get(p) else {
                return Ok(Some(s));
            };
            match pc {
                b'(' => {
                    return if pat.get(p + 1) == Some(&b')') {
                        self.start_capture(s, p + 2, CaptureLen::Position)
                    } else {
                        self.start_capture(s, p + 1, CaptureLen::Unfinished)
                    };
                }
                b')' => return self.end_capture(s, p + 1),
                b'$' if p + 1 == pat.len() => {
                    return Ok((s == src.len()).then_some(s));
                }
                b'%' if pat.get(p + 1) == Some(&b'b') => match self.match_balance(s, p + 2)? {
                    Some(end) => {
                        s = end;
                        p += 4;
                        continue;
                    }
                    None => return Ok(None),
                },
                b'%' if pat.get(p + 1) == Some(&b'f') => {
                    p += 2;
                    if pat.get(p) != Some(&b'[') {
                        return Err(PatternError::new("missing '[' after '%f' in pattern"));
                    }
                    let ep = class_end(pat, p)?;
                    let previous = if s == 0 { 0 } else { src[s - 1] };
                    let current = src.get(s).copied().unwrap_or(0);
                    if !match_bracket_class(pat, previous, p, ep - 1)
                        && match_bracket_class(pat, current, p, ep - 1)
                    {
                        p = ep;
                        continue;
                    }
                    return Ok(None);
                }
                b'%' if pat.get(p + 1).is_some_and(u8::is_ascii_digit) => {
                    match self.match_capture(s, pat[p + 1])? {
                        Some(end) => {
                            s = end;
                            p += 2;
                            continue;
                        }
                        None => return Ok(None),
                    }
                }
                _ => {}
            }
            let ep = class_end(pat, p)?;
            let matches = src.get(s).is_some_and(|&c| single_match(pat, c, p, ep));
            match pat.get(ep) {
                Some(b'?') => {
                    if matches {
                        if let Some(end) = self.do_match(s + 1, ep + 1)? {
                            return Ok(Some(end));
                        }
                    }
                    p = ep + 1;
                }
                Some(b'*') => return self.max_expand(s, p, ep),
                Some(b'+') => {
                    return if matches {
                        self.max_expand(s + 1, p, ep)
                    } else {
                        Ok(None)
                    };
                }
                Some(b'-') => return self.min_expand(s, p, ep),
                _ => {
                    if !matches {
                        return Ok(None);
                    }
                    s += 1;
                    p = ep;
                }
            }
        }
    }

    fn max_expand(&mut self, s: usize, p: usize, ep: usize) -> Result<Option<usize>, PatternError> {
        let mut count = 0;
        while self
            .src
            .get(s + count)
            .is_some_and(|&c| single_match(self.pat, c, p, ep))
        {
            count += 1;
        }
        loop {
            if let Some(end) = self.do_match(s + count, ep + 1)? {
                return Ok(Some(end));
            }
            if count == 0 {
                return Ok(None);
            }
            count -= 1;
        }
    }

    fn min_expand(
        &mut self,
        mut s: usize,
        p: usize,
        ep: usize,
    ) -> Result<Option<usize>, PatternError> {
        loop {
            if let Some(end) = self.do_match(s, ep + 1)? {
                return Ok(Some(end));
            }
            if self
                .src
                .get(s)
                .is_some_and(|&c| single_match(self.pat, c, p, ep))
            {
                s += 1;
            } else {
                return Ok(None);
            }
        }
    }

    fn start_capture(
        &mut self,
        s: usize,
        p: usize,
        len: CaptureLen,
    ) -> Result<Option<usize>, PatternError> {
        self.captures.push(Capture { start: s, len });
        let result = self.do_match(s, p)?;
        if result.is_none() {
            self.captures.pop();
        }
        Ok(result)
    }

    fn end_capture(&mut self, s: usize, p: usize) -> Result<Option<usize>, PatternError> {
        let Some(open) = self
            .captures
            .iter()
            .rposition(|c| matches!(c.len, CaptureLen::Unfinished))
        else {
            return Err(PatternError::new("invalid pattern capture"));
        };
        self.captures[open].len = CaptureLen::Len(s - self.captures[open].start);
        let result = self.do_match(s, p)?;
        if result.is_none() {
            self.captures[open].len = CaptureLen::Unfinished;
        }
        Ok(result)
    }

    fn match_balance(&self, s: usize, p: usize) -> Result<Option<usize>, PatternError> {
        if p + 1 >= self.pat.len() {
            return Err(PatternError::new(
                "malformed pattern (missing arguments to '%b')",
            ));
        }
        let (open, close) = (self.pat[p], self.pat[p + 1]);
        if self.src.get(s) != Some(&open) {
            return Ok(None);
        }
        let mut depth = 1;
        for (i, &c) in self.src.iter().enumerate().skip(s + 1) {
            if c == close {
                depth -= 1;
                if depth == 0 {
                    return Ok(Some(i + 1));
                }
            } else if c == open {
                depth += 1;
            }
        }
        Ok(None)
    }

    fn match_capture(&self, s: usize, digit: u8) -> Result<Option<usize>, PatternError> {
        let index = usize::from(digit.wrapping_sub(b'1'));
        let captured = match self.captures.get(index) {
            Some(Capture {
                start,
                len: CaptureLen::Len(len),
            }) => &self.src[*start..*start + *len],
            Some(Capture {
                len: CaptureLen::Position,
                ..
            }) => &[][..],
            _ => return Err(PatternError::new("invalid capture index")),
        };
        Ok(self.src[s..]
            .starts_with(captured)
            .then_some(s + captured.len()))
    }
}

/// The index just past the single-byte class starting at `pat[p]`.
fn class_end(pat: &[u8], mut p: usize) -> Result<usize, PatternError> {
    let c = pat[p];
    p += 1;
    match c {
        b'%' => {
            if p >= pat.len() {
                return Err(PatternError::new("malformed pattern (ends with '%')"));
            }
            Ok(p + 1)
        }
        b'[' => {
            if pat.get(p) == Some(&b'^') {
                p += 1;
            }
            // The first byte of a set is always a member, even `]`.
            loop {
                let Some(&c) = pat.get(p) else {
                    return Err(PatternError::new("malformed pattern (missing ']')"));
                };
                p += 1;
                if c == b'%' {
                    if p >= pat.len() {
                        return Err(PatternError::new("malformed pattern (missing ']')"));
                    }
                    p += 1;
                }
                match pat.get(p) {
                    Some(b']') => return Ok(p + 1),
                    Some(_) => {}
                    None => return Err(PatternError::new("malformed pattern (missing ']')")),
                }
            }
        }
        _ => Ok(p),
    }
}

fn single_match(pat: &[u8], c: u8, p: usize, ep: usize) -> bool {
    match pat[p] {
        b'.' => true,
        b'%' => match_class(c, pat[p + 1]),
        b'[' => match_bracket_class(pat, c, p, ep - 1),
        literal => literal == c,
    }
}

/// Whether `c` is in the set `pat[p..=end]` (`pat[p]` is `[`, `pat[end]` is `]`).
fn match_bracket_class(pat: &[u8], c: u8, mut p: usize, end: usize) -> bool {
    let mut member = true;
    p += 1;
    if pat[p] == b'^' {
        member = false;
        p += 1;
    }
    while p < end {
        if pat[p] == b'%' && p + 1 < end {
            if match_class(c, pat[p + 1]) {
                return member;
            }
            p += 2;
        } else if pat[p + 1] == b'-' && p + 2 < end {
            if pat[p] <= c && c <= pat[p + 2] {
                return member;
            }
            p += 3;
        } else {
            if pat[p] == c {
                return member;
            }
            p += 1;
        }
    }
    !member
}

fn match_class(c: u8, class: u8) -> bool {
    let matches = match class.to_ascii_lowercase() {
        b'a' => c.is_ascii_alphabetic(),
        b'c' => c.is_ascii_control(),
        b'd' => c.is_ascii_digit(),
        b'l' => c.is_ascii_lowercase(),
        b'p' => c.is_ascii_punctuation(),
        b's' => matches!(c, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r'),
        b'u' => c.is_ascii_uppercase(),
        b'w' => c.is_ascii_alphanumeric(),
        b'x' => c.is_ascii_hexdigit(),
        b'z' => c == 0,
        _ => return class == c,
    };
    if class.is_ascii_uppercase() {
        !matches
    } else {
        matches
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(subject: &str, pattern: &str) -> Option<Range<usize>> {
        find(subject, pattern).unwrap()
    }

    #[test]
    fn literals_and_anchors() {
        assert_eq!(m("hello world", "world"), Some(6..11));
        assert_eq!(m("hello", "^hello$"), Some(0..5));
        assert_eq!(m("hello!", "^hello$"), None);
        assert_eq!(m("say hello", "^hello"), None);
        assert_eq!(m("", ""), Some(0..0));
        assert_eq!(m("abc", "$"), Some(3..3));
        assert_eq!(m("a$b", "a$b"), Some(0..3), "`$` is literal unless last");
    }

    #[test]
    fn classes_and_sets() {
        assert_eq!(m("abc123", "%d+"), Some(3..6));
        assert_eq!(m("abc123", "%D+"), Some(0..3));
        assert_eq!(m("  x", "%S"), Some(2..3));
        assert_eq!(m("a.b", "%."), Some(1..2));
        assert_eq!(m("x-y_z", "^[%w_-]+$"), Some(0..5));
        assert_eq!(m("x y", "^[%w_-]+$"), None);
        assert_eq!(m("]", "[]]"), Some(0..1));
        assert_eq!(m("b", "[^abc]"), None);
        assert_eq!(m("d", "[^abc]"), Some(0..1));
        assert_eq!(m("F", "[a-fA-F]"), Some(0..1));
        assert_eq!(m("-", "[a-]"), Some(0..1));
        assert_eq!(m("é", "%a"), None, "non-ASCII bytes are in no class");
        assert_eq!(m("%", "%%"), Some(0..1));
    }

    #[test]
    fn quantifiers() {
        assert_eq!(m("aaab", "a*"), Some(0..3));
        assert_eq!(m("baaa", "a*"), Some(0..0));
        assert_eq!(m("baaa", "a+"), Some(1..4));
        assert_eq!(m("<a><b>", "<.->"), Some(0..3));
        assert_eq!(m("<a><b>", "<.*>"), Some(0..6));
        assert_eq!(m("color colour", "colou?r"), Some(0..5));
        assert_eq!(m("1.5", "^%d+%.?%d*$"), Some(0..3));
    }

    #[test]
    fn captures_balance_frontier() {
        assert_eq!(m("abab", "(ab)%1"), Some(0..4));
        assert_eq!(m("abac", "^(ab)%1"), None);
        assert_eq!(m("x(a(b)c)y", "%b()"), Some(1..8));
        assert_eq!(m("THE (quick) fox", "%f[%a]%a+"), Some(0..3));
        assert_eq!(m("hello", "()ll()"), Some(2..4));
    }

    #[test]
    fn malformed_patterns() {
        for (pattern, message) in [
            ("[a-z", "malformed pattern (missing ']')"),
            ("abc%", "malformed pattern (ends with '%')"),
            ("%b(", "malformed pattern (missing arguments to '%b')"),
            ("%fa", "missing '[' after '%f' in pattern"),
            ("(a", "unfinished capture"),
            ("a)", "invalid pattern capture"),
            ("%1", "invalid capture index"),
            ("(a%1)", "invalid capture index"),
        ] {
            assert_eq!(
                check(pattern).map_err(|e| e.to_string()),
                Err(message.to_owned()),
                "{pattern}"
            );
        }
        for good in [
            "^[%w-]+$", "%d%d?", "(a)%1", "[]]", "%bxy", "%f[%w]", "a$", "^$", "()",
        ] {
            assert_eq!(check(good), Ok(()), "{good}");
        }
        assert!(find("abc", "[a").is_err());
        assert!(find("a", "(a").is_err());
    }
}
