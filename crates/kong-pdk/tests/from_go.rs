//! Keeps `docs/FROM-GO.md` (the go-pdk → kong-pdk guide) in step with the
//! PDK's source.
//!
//! The Kong PDK methods kong-pdk calls are read from `src/pdk/*.rs`: the
//! `"kong.x.y"` string literals in code (comments and `#[cfg(test)]` items
//! are skipped), plus the names some functions get through a helper of the
//! call layer (`self.kong.single_lookup(TableKind::Query, …)`), resolved
//! through the enum's `const fn … -> &'static str` in `src/calls/`. There
//! must be exactly Kong's 74, and the guide's tables must have one row for
//! each, whose kong-pdk calls exist and call that method.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

/// Methods of `service Kong` in Kong's `pluginsocket.proto` (ProtoBuf:1).
const KONG_METHODS: usize = 74;

fn crate_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn guide_path() -> PathBuf {
    crate_dir().join("../../docs/FROM-GO.md")
}

fn read(path: &Path) -> String {
    fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

// ---------------------------------------------------------------------------
// A small Rust lexer: enough to tell code from comments and strings.

#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok {
    Ident(String),
    Str(String),
    Punct(char),
    /// Numbers, char literals, lifetimes.
    Other,
}

fn lex(src: &str) -> Vec<Tok> {
    let c: Vec<char> = src.chars().collect();
    let at = |i: usize| c.get(i).copied().unwrap_or('\0');
    let mut out = Vec::new();
    let mut i = 0;
    while i < c.len() {
        let ch = c[i];
        if ch.is_whitespace() {
            i += 1;
        } else if ch == '/' && at(i + 1) == '/' {
            while i < c.len() && c[i] != '\n' {
                i += 1;
            }
        } else if ch == '/' && at(i + 1) == '*' {
            let mut depth = 0;
            while i < c.len() {
                if c[i] == '/' && at(i + 1) == '*' {
                    depth += 1;
                    i += 2;
                } else if c[i] == '*' && at(i + 1) == '/' {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    i += 1;
                }
            }
        } else if ch == '"' {
            let (s, next) = quoted(&c, i + 1);
            out.push(Tok::Str(s));
            i = next;
        } else if ch == '\'' {
            // 'x' and '\n' are chars; 'a (no closing quote) is a lifetime.
            if at(i + 1) == '\\' {
                i += 2;
                while i < c.len() && c[i] != '\'' {
                    i += 1;
                }
                i += 1;
            } else if at(i + 2) == '\'' {
                i += 3;
            } else {
                i += 1;
                while i < c.len() && (c[i].is_alphanumeric() || c[i] == '_') {
                    i += 1;
                }
            }
            out.push(Tok::Other);
        } else if ch.is_alphabetic() || ch == '_' {
            let start = i;
            while i < c.len() && (c[i].is_alphanumeric() || c[i] == '_') {
                i += 1;
            }
            let ident: String = c[start..i].iter().collect();
            match (ident.as_str(), at(i)) {
                // A raw identifier: `r#type`.
                ("r", '#') if at(i + 1).is_alphabetic() || at(i + 1) == '_' => {
                    let start = i + 1;
                    i = start;
                    while i < c.len() && (c[i].is_alphanumeric() || c[i] == '_') {
                        i += 1;
                    }
                    out.push(Tok::Ident(c[start..i].iter().collect()));
                }
                ("b", '"') => {
                    let (s, next) = quoted(&c, i + 1);
                    out.push(Tok::Str(s));
                    i = next;
                }
                ("r" | "br", '"' | '#') => {
                    let hashes = c[i..].iter().take_while(|&&h| h == '#').count();
                    let open = i + hashes;
                    assert_eq!(at(open), '"', "unexpected raw string start");
                    let mut j = open + 1;
                    loop {
                        assert!(j < c.len(), "unterminated raw string");
                        if c[j] == '"' && c[j + 1..].iter().take(hashes).all(|&h| h == '#') {
                            break;
                        }
                        j += 1;
                    }
                    out.push(Tok::Str(c[open + 1..j].iter().collect()));
                    i = j + 1 + hashes;
                }
                ("b", '\'') => {
                    i += 1;
                    while i < c.len() && c[i] != '\'' {
                        i += if c[i] == '\\' { 2 } else { 1 };
                    }
                    i += 1;
                    out.push(Tok::Other);
                }
                _ => out.push(Tok::Ident(ident)),
            }
        } else if ch.is_ascii_digit() {
            while i < c.len() && (c[i].is_alphanumeric() || c[i] == '_') {
                i += 1;
            }
            out.push(Tok::Other);
        } else {
            out.push(Tok::Punct(ch));
            i += 1;
        }
    }
    strip_test_items(out)
}

/// A string literal's content (escapes kept as written) and the index after
/// its closing quote.
fn quoted(c: &[char], mut i: usize) -> (String, usize) {
    let start = i;
    while i < c.len() && c[i] != '"' {
        i += if c[i] == '\\' { 2 } else { 1 };
    }
    assert!(i < c.len(), "unterminated string literal");
    (c[start..i].iter().collect(), i + 1)
}

fn is_ident(t: Option<&Tok>, name: &str) -> bool {
    matches!(t, Some(Tok::Ident(s)) if s == name)
}

fn is_punct(t: Option<&Tok>, p: char) -> bool {
    t == Some(&Tok::Punct(p))
}

fn ident(t: Option<&Tok>) -> Option<&str> {
    match t {
        Some(Tok::Ident(s)) => Some(s),
        _ => None,
    }
}

/// One element of a token pattern.
#[derive(Debug, Clone, Copy)]
enum P<'w> {
    /// Any identifier (captured).
    Id,
    /// A string literal that is a Kong method name (captured).
    Lit,
    /// This punctuation.
    Is(char),
    /// This identifier.
    Word(&'w str),
}

/// The captures of `pattern` if it matches the tokens at `at`.
fn capture<'t>(toks: &'t [Tok], at: usize, pattern: &[P<'_>]) -> Option<Vec<&'t str>> {
    let mut out = Vec::new();
    for (k, p) in pattern.iter().enumerate() {
        let t = toks.get(at + k)?;
        match (p, t) {
            (P::Id, Tok::Ident(s)) => out.push(s.as_str()),
            (P::Lit, Tok::Str(s)) if is_method_name(s) => out.push(s.as_str()),
            (P::Is(c), Tok::Punct(d)) if c == d => {}
            (P::Word(w), Tok::Ident(s)) if s == w => {}
            _ => return None,
        }
    }
    Some(out)
}

/// The index of the token closing the bracket opened at `open`.
fn matching(toks: &[Tok], open: usize) -> usize {
    let (o, cl) = match toks[open] {
        Tok::Punct('{') => ('{', '}'),
        Tok::Punct('(') => ('(', ')'),
        Tok::Punct('[') => ('[', ']'),
        ref t => panic!("not an opening bracket: {t:?}"),
    };
    let mut depth = 0;
    for (i, t) in toks.iter().enumerate().skip(open) {
        if *t == Tok::Punct(o) {
            depth += 1;
        } else if *t == Tok::Punct(cl) {
            depth -= 1;
            if depth == 0 {
                return i;
            }
        }
    }
    panic!("unbalanced {o}");
}

/// Drops `#[cfg(test)]` items: test code may name methods it does not call.
fn strip_test_items(toks: Vec<Tok>) -> Vec<Tok> {
    let cfg_test: Vec<Tok> = ["#", "[", "cfg", "(", "test", ")", "]"]
        .iter()
        .map(|s| match *s {
            "cfg" | "test" => Tok::Ident((*s).to_owned()),
            p => Tok::Punct(p.chars().next().unwrap()),
        })
        .collect();
    let mut out = Vec::with_capacity(toks.len());
    let mut i = 0;
    while i < toks.len() {
        if toks[i..].starts_with(&cfg_test) {
            let mut j = i + cfg_test.len();
            while j < toks.len() && !is_punct(toks.get(j), '{') && !is_punct(toks.get(j), ';') {
                j += 1;
            }
            i = if is_punct(toks.get(j), '{') {
                matching(&toks, j) + 1
            } else {
                j + 1
            };
        } else {
            out.push(toks[i].clone());
            i += 1;
        }
    }
    out
}

/// `kong.<module…>.<function>`: what Kong's PDK method names look like.
fn is_method_name(s: &str) -> bool {
    let parts: Vec<&str> = s.split('.').collect();
    parts.len() >= 3
        && parts[0] == "kong"
        && parts.iter().all(|p| {
            p.starts_with(|c: char| c.is_ascii_lowercase())
                && p.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        })
}

fn method_literals(toks: &[Tok]) -> BTreeSet<String> {
    toks.iter()
        .filter_map(|t| match t {
            Tok::Str(s) if is_method_name(s) => Some(s.clone()),
            _ => None,
        })
        .collect()
}

/// A `fn` item: its name, whether it is `pub` (not `pub(crate)`), and the
/// token ranges of its parameters and body.
#[derive(Debug)]
struct FnItem {
    name: String,
    public: bool,
    params: (usize, usize),
    body: Option<(usize, usize)>,
}

fn fn_items(toks: &[Tok]) -> Vec<FnItem> {
    let mut out = Vec::new();
    for i in 0..toks.len() {
        if !is_ident(toks.get(i), "fn") {
            continue;
        }
        let Some(name) = ident(toks.get(i + 1)) else {
            continue; // `fn(` types, `fn $name` in macro_rules
        };
        let mut k = i;
        while k > 0
            && ["async", "const", "unsafe"]
                .iter()
                .any(|q| is_ident(toks.get(k - 1), q))
        {
            k -= 1;
        }
        let public = k > 0 && is_ident(toks.get(k - 1), "pub");
        let Some(open) = (i + 2..toks.len()).find(|&j| is_punct(toks.get(j), '(')) else {
            continue;
        };
        let close = matching(toks, open);
        let end = (close..toks.len())
            .find(|&j| is_punct(toks.get(j), '{') || is_punct(toks.get(j), ';'))
            .expect("fn without body or `;`");
        let body = is_punct(toks.get(end), '{').then(|| (end, matching(toks, end)));
        out.push(FnItem {
            name: name.to_owned(),
            public,
            params: (open, close),
            body,
        });
    }
    out
}

// ---------------------------------------------------------------------------
// Method names built by the call layer's enums.

/// `(enum, namer fn)` → variant → method, from
/// `const fn single(self) -> &'static str { match self { TableKind::Query => "kong.…", … } }`.
type Namers = BTreeMap<(String, String), BTreeMap<String, String>>;

/// `(helper fn, enum)` → the namers it calls on its parameter of that enum.
type Helpers = BTreeMap<(String, String), BTreeSet<String>>;

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

fn call_layer_names() -> (Namers, Helpers) {
    let src = crate_dir().join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let lexed: Vec<Vec<Tok>> = files
        .iter()
        .filter(|p| !p.starts_with(src.join("pdk")))
        .map(|p| lex(&read(p)))
        .collect();
    let mut namers = Namers::new();
    for toks in &lexed {
        for f in fn_items(toks) {
            let Some((b, e)) = f.body else { continue };
            for j in b..e {
                // `Enum :: Variant => "kong.…"`
                let arm = [
                    P::Id,
                    P::Is(':'),
                    P::Is(':'),
                    P::Id,
                    P::Is('='),
                    P::Is('>'),
                    P::Lit,
                ];
                if let Some(c) = capture(toks, j, &arm) {
                    namers
                        .entry((c[0].to_owned(), f.name.clone()))
                        .or_default()
                        .insert(c[1].to_owned(), c[2].to_owned());
                }
            }
        }
    }
    let enums: BTreeSet<&String> = namers.keys().map(|(e, _)| e).collect();
    let mut helpers = Helpers::new();
    for toks in &lexed {
        for f in fn_items(toks) {
            let Some((b, e)) = f.body else { continue };
            let (po, pc) = f.params;
            for j in po..pc {
                // `param: Enum`
                let Some(c) = capture(toks, j, &[P::Id, P::Is(':'), P::Id]) else {
                    continue;
                };
                let (param, en) = (c[0], c[1].to_owned());
                if !enums.contains(&en) {
                    continue;
                }
                for k in b..e {
                    // `param . namer (`
                    let call = [P::Word(param), P::Is('.'), P::Id, P::Is('(')];
                    if let Some(n) = capture(toks, k, &call) {
                        if namers.contains_key(&(en.clone(), n[0].to_owned())) {
                            helpers
                                .entry((f.name.clone(), en.clone()))
                                .or_default()
                                .insert(n[0].to_owned());
                        }
                    }
                }
            }
        }
    }
    (namers, helpers)
}

// ---------------------------------------------------------------------------
// The PDK: what each pub fn of src/pdk/<module>.rs calls.

#[derive(Debug, Default)]
struct PdkFile {
    /// Every method named in the file's code.
    methods: BTreeSet<String>,
    /// Every fn (pub or not) → the methods it names, following `self.other(…)`.
    fns: BTreeMap<String, BTreeSet<String>>,
    /// The fns a plugin can call.
    public: BTreeSet<String>,
}

fn scan_pdk_file(src: &str, namers: &Namers, helpers: &Helpers) -> Result<PdkFile, String> {
    let toks = lex(src);
    let mut file = PdkFile {
        methods: method_literals(&toks),
        ..PdkFile::default()
    };
    let mut self_calls: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut unresolved = Vec::new();
    for f in fn_items(&toks) {
        if f.public {
            file.public.insert(f.name.clone());
        }
        let Some((b, e)) = f.body else { continue };
        let body = &toks[b..e];
        let mut names = method_literals(body);
        for j in 0..body.len() {
            // `helper ( Enum :: Variant`
            let arg = [P::Id, P::Is('('), P::Id, P::Is(':'), P::Is(':'), P::Id];
            if let Some(c) = capture(body, j, &arg) {
                let (h, en, var) = (c[0], c[1], c[2]);
                if namers.keys().any(|(e, _)| e == en) {
                    match helpers.get(&(h.to_owned(), en.to_owned())) {
                        None => unresolved.push(format!("{}: {h}({en}::{var}, …)", f.name)),
                        Some(used) => {
                            for n in used {
                                match namers[&(en.to_owned(), n.clone())].get(var) {
                                    Some(m) => {
                                        names.insert(m.clone());
                                    }
                                    None => {
                                        unresolved.push(format!("{}: {en}::{var}.{n}()", f.name))
                                    }
                                }
                            }
                        }
                    }
                }
            }
            // `self . other (`
            let call = [P::Word("self"), P::Is('.'), P::Id, P::Is('(')];
            if let Some(c) = capture(body, j, &call) {
                self_calls
                    .entry(f.name.clone())
                    .or_default()
                    .insert(c[0].to_owned());
            }
        }
        file.methods.extend(names.iter().cloned());
        file.fns.entry(f.name).or_default().extend(names);
    }
    // Fns a macro generates from `name => "kong.…"` pairs (log.rs's levels).
    if toks.iter().any(|t| is_ident(Some(t), "macro_rules")) {
        for j in 0..toks.len() {
            if let Some(c) = capture(&toks, j, &[P::Id, P::Is('='), P::Is('>'), P::Lit]) {
                file.public.insert(c[0].to_owned());
                file.fns
                    .entry(c[0].to_owned())
                    .or_default()
                    .insert(c[1].to_owned());
            }
        }
    }
    // `exit_status` → `exit` → `exit_grouped` → "kong.response.exit".
    loop {
        let mut grew = false;
        for (f, callees) in &self_calls {
            let reached: BTreeSet<String> = callees
                .iter()
                .filter_map(|c| file.fns.get(c))
                .flatten()
                .cloned()
                .collect();
            let own = file.fns.entry(f.clone()).or_default();
            let before = own.len();
            own.extend(reached);
            grew |= own.len() > before;
        }
        if !grew {
            break;
        }
    }
    if unresolved.is_empty() {
        Ok(file)
    } else {
        Err(format!(
            "method names built in a way this scan cannot follow: {unresolved:?}"
        ))
    }
}

/// `src/pdk/<module>.rs` by file stem (`request`, `service_request`, …).
fn pdk() -> BTreeMap<String, PdkFile> {
    let (namers, helpers) = call_layer_names();
    let dir = crate_dir().join("src/pdk");
    let mut out = BTreeMap::new();
    for entry in fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "rs") {
            continue;
        }
        let stem = path.file_stem().unwrap().to_string_lossy().into_owned();
        let file = scan_pdk_file(&read(&path), &namers, &helpers)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        out.insert(stem, file);
    }
    out
}

fn pdk_methods(pdk: &BTreeMap<String, PdkFile>) -> BTreeSet<String> {
    pdk.values()
        .flat_map(|f| f.methods.iter().cloned())
        .collect()
}

/// The Lua functions only `Kong::call` reaches (MsgPack:1): literals passed
/// as `….call("kong.…", …)` and nowhere else.
fn msgpack_only_methods() -> BTreeSet<String> {
    let mut via_call = BTreeSet::new();
    let mut elsewhere = BTreeSet::new();
    for entry in fs::read_dir(crate_dir().join("src/pdk")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "rs") {
            continue;
        }
        let toks = strip_test_items(lex(&read(&path)));
        for (i, t) in toks.iter().enumerate() {
            let Tok::Str(name) = t else { continue };
            if !is_method_name(name) {
                continue;
            }
            let by_call =
                i >= 2 && is_punct(toks.get(i - 1), '(') && is_ident(toks.get(i - 2), "call");
            if by_call {
                via_call.insert(name.clone());
            } else {
                elsewhere.insert(name.clone());
            }
        }
    }
    via_call.difference(&elsewhere).cloned().collect()
}

/// Lua PDK functions kong-pdk rebuilds from other calls (ProtoBuf:1 has
/// none of them): their rows are in the guide's "rebuilt" table.
const REBUILT: [&str; 1] = ["kong.request.get_body"];

/// The methods of Kong's ProtoBuf service the PDK calls.
fn protobuf_methods(pdk: &BTreeMap<String, PdkFile>) -> BTreeSet<String> {
    let only = msgpack_only_methods();
    pdk_methods(pdk)
        .difference(&only)
        .filter(|m| !REBUILT.contains(&m.as_str()))
        .cloned()
        .collect()
}

/// The accessor, and file, of a Kong method's module:
/// `kong.service.request.set_header` → `service_request`,
/// `kong.ctx.shared.get` → `ctx` (no `ctx_shared.rs`).
fn accessor_of(method: &str, pdk: &BTreeMap<String, PdkFile>) -> Option<String> {
    let parts: Vec<&str> = method.split('.').collect();
    let module = &parts[1..parts.len() - 1];
    (1..=module.len())
        .rev()
        .map(|n| module[..n].join("_"))
        .find(|stem| pdk.contains_key(stem))
}

// ---------------------------------------------------------------------------
// The guide.

#[derive(Debug)]
struct Row {
    line: usize,
    method: String,
    rust: String,
    /// In a table of functions only MsgPack:1 reaches.
    msgpack_only: bool,
    /// In the table of functions kong-pdk rebuilds.
    rebuilt: bool,
}

fn cells(line: &str) -> Vec<String> {
    let inner = line.trim().trim_start_matches('|').trim_end_matches('|');
    let mut out = vec![String::new()];
    let mut chars = inner.chars().peekable();
    while let Some(ch) = chars.next() {
        if ch == '\\' && chars.peek() == Some(&'|') {
            out.last_mut().unwrap().push('|');
            chars.next();
        } else if ch == '|' {
            out.push(String::new());
        } else {
            out.last_mut().unwrap().push(ch);
        }
    }
    out.into_iter().map(|c| c.trim().to_owned()).collect()
}

/// The rows of every table whose first column is headed "Kong method".
fn table_rows(md: &str) -> Result<Vec<Row>, Vec<String>> {
    let lines: Vec<&str> = md.lines().collect();
    let mut rows = Vec::new();
    let mut bad = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        if !lines[i].trim_start().starts_with('|') {
            i += 1;
            continue;
        }
        let start = i;
        while i < lines.len() && lines[i].trim_start().starts_with('|') {
            i += 1;
        }
        let header = cells(lines[start]);
        let Some(first_header) = header.first().filter(|h| h.starts_with("Kong method")) else {
            continue;
        };
        let msgpack_only = first_header.contains("MsgPack");
        let rebuilt = first_header.contains("rebuilt");
        let rust_col = header.iter().position(|h| h == "kong-pdk");
        for (n, line) in lines.iter().enumerate().take(i).skip(start + 2) {
            let row = cells(line);
            let first = row[0].trim_matches('`');
            let rust = rust_col.and_then(|c| row.get(c));
            match rust {
                Some(rust) if row[0].starts_with('`') && row[0].ends_with('`') => rows.push(Row {
                    line: n + 1,
                    method: first.to_owned(),
                    rust: rust.clone(),
                    msgpack_only,
                    rebuilt,
                }),
                _ => bad.push(format!(
                    "line {}: not `method` | go-pdk | kong-pdk: {line}",
                    n + 1
                )),
            }
        }
    }
    if bad.is_empty() { Ok(rows) } else { Err(bad) }
}

/// The `kong.<accessor>().<fn>` calls written in `text`.
fn rust_calls(text: &str) -> Vec<(String, String)> {
    let word = |s: &str| -> usize {
        s.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(s.len())
    };
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(at) = rest.find("kong.") {
        let preceded = rest[..at]
            .chars()
            .next_back()
            .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.');
        rest = &rest[at + "kong.".len()..];
        let acc_len = word(rest);
        if preceded || acc_len == 0 || !rest[acc_len..].starts_with("().") {
            continue;
        }
        let mut acc = rest[..acc_len].to_owned();
        let mut after = &rest[acc_len + 3..];
        // `kong.client().tls()` is the `client_tls` module.
        if acc == "client" && after.starts_with("tls().") {
            acc = "client_tls".to_owned();
            after = &after["tls().".len()..];
        }
        let fn_len = word(after);
        if fn_len > 0 {
            out.push((acc, after[..fn_len].to_owned()));
        }
    }
    out
}

// ---------------------------------------------------------------------------

#[test]
fn the_pdk_calls_exactly_kongs_74_methods() {
    let pdk = pdk();
    let methods = protobuf_methods(&pdk);
    assert_eq!(
        methods.len(),
        KONG_METHODS,
        "src/pdk/*.rs names {} distinct Kong methods, Kong has {KONG_METHODS}: {methods:#?}",
        methods.len()
    );
    // Each method lives in its module's file.
    for (stem, file) in &pdk {
        for m in &file.methods {
            assert_eq!(
                accessor_of(m, &pdk).as_deref(),
                Some(stem.as_str()),
                "{m} is called from src/pdk/{stem}.rs"
            );
        }
    }
}

#[test]
fn the_guide_has_one_row_per_method_and_no_other() {
    let pdk = pdk();
    let rows = table_rows(&read(&guide_path())).unwrap_or_else(|bad| panic!("{bad:#?}"));
    // ProtoBuf's 74 in the function tables, the MsgPack-only ones and the
    // rebuilt ones in theirs.
    let mut problems = Vec::new();
    let rebuilt: BTreeSet<String> = REBUILT.iter().map(|m| (*m).to_owned()).collect();
    for (kind, methods) in [
        ((false, false), protobuf_methods(&pdk)),
        ((true, false), msgpack_only_methods()),
        ((false, true), rebuilt),
    ] {
        let table = match kind {
            (true, _) => "MsgPack:1-only table",
            (_, true) => "rebuilt table",
            _ => "function tables",
        };
        let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
        for row in rows.iter().filter(|r| (r.msgpack_only, r.rebuilt) == kind) {
            if let Some(first) = seen.insert(&row.method, row.line) {
                problems.push(format!(
                    "line {}: second row for {} (first on line {first})",
                    row.line, row.method
                ));
            }
            if !methods.contains(&row.method) {
                problems.push(format!(
                    "line {}: {} is not a method kong-pdk calls ({table})",
                    row.line, row.method
                ));
            }
        }
        let missing: Vec<&String> = methods
            .iter()
            .filter(|m| !seen.contains_key(m.as_str()))
            .collect();
        if !missing.is_empty() {
            problems.push(format!(
                "no row in docs/FROM-GO.md's {table} for {} method(s): {}",
                missing.len(),
                missing
                    .iter()
                    .map(|m| m.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    assert_eq!(
        rows.iter()
            .filter(|r| !r.msgpack_only && !r.rebuilt)
            .count(),
        KONG_METHODS
    );
}

#[test]
fn each_rows_rust_calls_exist_and_call_its_method() {
    let pdk = pdk();
    let rows = table_rows(&read(&guide_path())).unwrap_or_else(|bad| panic!("{bad:#?}"));
    let mut problems = Vec::new();
    for row in &rows {
        let calls = rust_calls(&row.rust);
        if calls.is_empty() {
            problems.push(format!(
                "line {}: no `kong.<module>().<fn>` call for {}",
                row.line, row.method
            ));
        }
        let Some(want) = accessor_of(&row.method, &pdk) else {
            problems.push(format!(
                "line {}: no src/pdk file for {}",
                row.line, row.method
            ));
            continue;
        };
        for (acc, f) in calls {
            let call = format!("kong.{acc}().{f}");
            if acc != want {
                problems.push(format!(
                    "line {}: {call} for {}: expected kong.{want}()",
                    row.line, row.method
                ));
                continue;
            }
            let file = &pdk[&acc];
            if !file.public.contains(&f) {
                problems.push(format!(
                    "line {}: {call}: no `pub fn {f}` in src/pdk/{acc}.rs",
                    row.line
                ));
            } else if !file.fns.get(&f).is_some_and(|m| m.contains(&row.method)) {
                problems.push(format!(
                    "line {}: {call} does not call {} (it calls {:?})",
                    row.line, row.method, file.fns[&f]
                ));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn every_rust_call_in_the_guide_exists() {
    let pdk = pdk();
    let md = read(&guide_path());
    let mut problems = Vec::new();
    for (n, line) in md.lines().enumerate() {
        for (acc, f) in rust_calls(line) {
            match pdk.get(&acc) {
                Some(file) if file.public.contains(&f) => {}
                Some(_) => problems.push(format!(
                    "line {}: kong.{acc}().{f}: no `pub fn {f}` in src/pdk/{acc}.rs",
                    n + 1
                )),
                None => problems.push(format!("line {}: kong.{acc}(): no src/pdk/{acc}.rs", n + 1)),
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn the_scan_reads_code_not_comments_and_follows_helpers() {
    let mut namers = Namers::new();
    namers.insert(
        ("Kind".into(), "single".into()),
        [("A".to_owned(), "kong.m.get_a".to_owned())].into(),
    );
    let mut helpers = Helpers::new();
    helpers.insert(
        ("lookup".into(), "Kind".into()),
        ["single".to_owned()].into(),
    );
    let src = r##"
        /// `"kong.m.in_doc"` is a doc comment.
        // "kong.m.in_comment"
        /* "kong.m.in_block" /* nested */ */
        impl<'a> M<'a> {
            pub(crate) fn new() {}
            pub async fn a(self) -> Result<String> {
                let _c = '"';
                let _text = "kong.m.get_a() is prose, not a name";
                self.kong.lookup(Kind::A, "x").await
            }
            pub async fn b(self) { self.other().await }
            async fn other(self) { call(r#"kong.m.other"#).await }
        }
        #[cfg(test)]
        mod tests { const X: &str = "kong.m.in_test"; }
    "##;
    let file = scan_pdk_file(src, &namers, &helpers).unwrap();
    let names = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<BTreeSet<_>>();
    assert_eq!(file.methods, names(&["kong.m.get_a", "kong.m.other"]));
    assert_eq!(file.public, names(&["a", "b"]));
    assert_eq!(file.fns["b"], names(&["kong.m.other"]));
    let unknown = "fn c(self) { self.kong.fetch(Kind::A).await }";
    assert!(scan_pdk_file(unknown, &namers, &helpers).is_err());

    assert_eq!(
        rust_calls("`kong.ctx().get_shared::<T>(key)`, `kong.service_request().set_header(k, v)`"),
        [
            ("ctx".to_owned(), "get_shared".to_owned()),
            ("service_request".to_owned(), "set_header".to_owned())
        ]
    );
    assert!(rust_calls("kong.request.get_header and Kong.Request().GetHeader()").is_empty());
}
