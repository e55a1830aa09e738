//! The layers of `docs/architecture.md`, checked: every path into the crate
//! (`use crate::…` lines, and `crate::x::…` or `super::…` written inline) in
//! a file of `src/` must go to its own top-level module or to one the layer
//! table below allows; and SQL (sqlx, or SQL in a string literal) appears
//! only under `src/store/`.
//!
//! Run it alone with `cargo test --test layers`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Each top-level module and the modules it may import. `app`, `cli`, the
/// crate root and `main.rs` wire everything and may import anything.
const LAYERS: &[(&str, &[&str])] = &[
    ("domain", &[]),
    // Pure feature models written as top-level folders (the duty board and
    // shifts, `src/duty/`) belong to the domain layer: they import only the
    // domain, and every layer above may import them.
    ("duty", &["domain"]),
    ("config", &["domain", "duty"]),
    ("telemetry", &["domain", "duty", "config"]),
    ("store", &["domain", "duty", "config", "telemetry"]),
    ("ingest", &["domain", "duty", "config", "telemetry", "store"]),
    (
        "http",
        &["domain", "duty", "config", "telemetry", "store", "ingest"],
    ),
    ("delivery", &["domain", "duty", "config", "telemetry", "store"]),
    (
        "control",
        &[
            "domain",
            "duty",
            "config",
            "telemetry",
            "store",
            "ingest",
            "delivery",
        ],
    ),
    (
        "bot",
        &["domain", "duty", "config", "telemetry", "delivery", "control"],
    ),
];

/// Modules that may import any other.
const WIRING: &[&str] = &["app", "cli", "lib", "main"];

/// A breach of the rules: file, line, what.
#[derive(Debug, PartialEq, Eq)]
struct Breach {
    file: String,
    line: usize,
    what: String,
}

/// The module path of a file under `src/`: `src/delivery/relay/worker.rs`
/// is `[delivery, relay, worker]`, `src/store/mod.rs` is `[store]`,
/// `src/lib.rs` is `[]`.
fn module_path(relative: &Path) -> Vec<String> {
    let mut parts: Vec<String> = relative
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    let last = parts.pop().unwrap_or_default();
    let stem = last.trim_end_matches(".rs");
    if stem != "mod" && !(parts.is_empty() && (stem == "lib" || stem == "main")) {
        parts.push(stem.to_string());
    }
    parts
}

/// The code of a line without its comment (a `//` outside a string).
fn code_of(line: &str) -> &str {
    let mut in_str = false;
    let bytes = line.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' if in_str => i += 1,
            b'"' => in_str = !in_str,
            b'/' if !in_str && bytes.get(i + 1) == Some(&b'/') => return &line[..i],
            _ => {}
        }
        i += 1;
    }
    line
}

/// The string literals of a line of code.
fn literals(code: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current: Option<String> = None;
    let mut chars = code.chars();
    while let Some(c) = chars.next() {
        match (&mut current, c) {
            (Some(s), '\\') => {
                if let Some(n) = chars.next() {
                    s.push(n);
                }
            }
            (Some(_), '"') => out.push(current.take().unwrap_or_default()),
            (Some(s), c) => s.push(c),
            (None, '"') => current = Some(String::new()),
            (None, _) => {}
        }
    }
    // A literal that goes on over the next lines.
    out.extend(current);
    out
}

/// The top-level modules a file's code (comments removed) reaches into,
/// each with the offset where it is named, from a file whose module path is
/// `module`: `crate::x`, `crate::{x, y::z}` (over several lines too) and
/// `super::…` climbing to the crate root.
fn targets(code: &str, module: &[String]) -> Vec<(usize, String)> {
    let mut found = Vec::new();
    let ident = |s: &str| -> String {
        s.chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect()
    };
    let starts_path = |i: usize| {
        code[..i]
            .chars()
            .last()
            .is_none_or(|c| !(c.is_alphanumeric() || c == '_' || c == '$' || c == ':'))
    };
    for (i, _) in code.match_indices("crate::") {
        if !starts_path(i) {
            continue;
        }
        let at = i + "crate::".len();
        let rest = &code[at..];
        if rest.starts_with('{') {
            // The names at the group's first level.
            let mut depth = 0;
            let mut expect_name = false;
            for (j, c) in rest.char_indices() {
                match c {
                    '{' => {
                        depth += 1;
                        expect_name = depth == 1;
                    }
                    '}' => {
                        depth -= 1;
                        if depth == 0 {
                            break;
                        }
                    }
                    ',' if depth == 1 => expect_name = true,
                    c if expect_name && !c.is_whitespace() => {
                        expect_name = false;
                        found.push((at + j, ident(&rest[j..])));
                    }
                    _ => {}
                }
            }
        } else {
            found.push((at, ident(rest)));
        }
    }
    // `super::` as the file's module climbs: enough of them reach the root.
    for (i, _) in code.match_indices("super::") {
        if !starts_path(i) {
            continue;
        }
        let mut depth = module.len();
        let mut tail = &code[i..];
        while let Some(t) = tail.strip_prefix("super::") {
            depth = depth.saturating_sub(1);
            tail = t;
        }
        if depth == 0 {
            found.push((i, ident(tail)));
        }
    }
    found.retain(|(_, t)| !t.is_empty() && t != "self");
    found
}

/// Whether a string literal holds SQL.
fn is_sql(literal: &str) -> bool {
    let upper = literal.trim_start();
    [
        "SELECT ",
        "INSERT INTO",
        "INSERT OR ",
        "UPDATE ",
        "DELETE FROM",
        "CREATE TABLE",
        "CREATE INDEX",
        "CREATE TRIGGER",
        "DROP TRIGGER",
        "DROP TABLE",
        "PRAGMA ",
        "WITH ",
    ]
    .iter()
    .any(|k| upper.starts_with(k))
        || literal.contains(" FROM ") && literal.contains("SELECT")
        || literal.contains(" WHERE ") && (literal.contains("UPDATE") || literal.contains("DELETE"))
}

/// Checks one file's text; `relative` is its path under `src/`.
fn check_file(relative: &Path, text: &str, allowed: &BTreeMap<&str, BTreeSet<&str>>) -> Vec<Breach> {
    let module = module_path(relative);
    let top = module.first().cloned().unwrap_or_else(|| "lib".into());
    let file = format!("src/{}", relative.display());
    let in_store = top == "store";
    let mut breaches = Vec::new();
    // The code without comments, line for line.
    let code: String = text.lines().map(|l| format!("{}\n", code_of(l))).collect();
    if !WIRING.contains(&top.as_str()) {
        let may = allowed
            .get(top.as_str())
            .unwrap_or_else(|| panic!("{file}: top-level module `{top}` is not in the layer table"));
        for (at, target) in targets(&code, &module) {
            let other_layer =
                target != top && !may.contains(target.as_str()) && allowed.contains_key(target.as_str());
            let wiring = WIRING.contains(&target.as_str()) && target != "lib";
            if other_layer || wiring {
                breaches.push(Breach {
                    file: file.clone(),
                    line: code[..at].matches('\n').count() + 1,
                    what: format!("`{top}` may not import `{target}`"),
                });
            }
        }
    }
    if !in_store {
        for (n, line) in code.lines().enumerate() {
            let uses_sqlx = ["sqlx::", "QueryBuilder", "query_as", "query_scalar"]
                .iter()
                .any(|k| line.contains(k));
            if uses_sqlx || literals(line).iter().any(|l| is_sql(l)) {
                breaches.push(Breach {
                    file: file.clone(),
                    line: n + 1,
                    what: "SQL outside src/store/".into(),
                });
            }
        }
    }
    breaches
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("readable src/") {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

fn table() -> BTreeMap<&'static str, BTreeSet<&'static str>> {
    LAYERS
        .iter()
        .map(|(m, deps)| (*m, deps.iter().copied().collect()))
        .collect()
}

#[test]
fn the_layer_table_has_no_cycle() {
    // Each module may import only modules listed before it.
    let mut seen = BTreeSet::new();
    for (module, deps) in LAYERS {
        for dep in *deps {
            assert!(
                seen.contains(dep),
                "`{module}` may import `{dep}`, which is not below it"
            );
        }
        seen.insert(*module);
    }
}

#[test]
fn no_module_imports_from_a_layer_above_it_and_sql_stays_in_the_store() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    files.sort();
    assert!(files.len() > 20, "found the sources");
    let allowed = table();
    let tops: BTreeSet<String> = files
        .iter()
        .filter_map(|f| module_path(f.strip_prefix(&src).unwrap()).first().cloned())
        .collect();
    for top in &tops {
        assert!(
            allowed.contains_key(top.as_str()) || WIRING.contains(&top.as_str()),
            "top-level module `{top}` is not in the layer table: add it to tests/layers.rs and docs/architecture.md"
        );
    }
    let mut breaches = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file).expect("readable source");
        breaches.extend(check_file(file.strip_prefix(&src).unwrap(), &text, &allowed));
    }
    let report: Vec<String> = breaches
        .iter()
        .map(|b| format!("{}:{}: {}", b.file, b.line, b.what))
        .collect();
    assert!(report.is_empty(), "layer breaches:\n{}", report.join("\n"));
}

#[test]
fn a_planted_upward_import_is_caught_in_every_form() {
    let allowed = table();
    let check = |path: &str, text: &str| check_file(Path::new(path), text, &allowed);
    // A `use` line, a grouped `use`, an inline path, and `super::` to the root.
    assert_eq!(check("ingest/mod.rs", "use crate::http::router;\n").len(), 1);
    assert_eq!(
        check("store/mod.rs", "use crate::{domain, delivery::relay};\n").len(),
        1
    );
    assert_eq!(
        check(
            "delivery/relay/worker.rs",
            "    let x = crate::control::Control::new();\n"
        )
        .len(),
        1
    );
    assert_eq!(check("domain/mod.rs", "use super::store::Store;\n").len(), 1);
    assert_eq!(
        check("domain/event/mod.rs", "use super::super::store::Store;\n").len(),
        1
    );
    assert_eq!(
        check(
            "http/mod.rs",
            "use crate::{\n    domain::event,\n    bot::{BotData, Error},\n};\n"
        ),
        vec![Breach {
            file: "src/http/mod.rs".into(),
            line: 3,
            what: "`http` may not import `bot`".into()
        }]
    );
    assert_eq!(
        check("bot/commands/status.rs", "use crate::store::now_ms;\n").len(),
        1
    );
    assert_eq!(check("bot/mod.rs", "use crate::app::Application;\n").len(), 1);
    // Allowed: downwards, within a module, in comments, and in the wiring.
    assert!(check("ingest/mod.rs", "use crate::store::Writer;\nuse super::key;\n").is_empty());
    assert!(check("delivery/relay/worker.rs", "use super::super::retry::backoff;\n").is_empty());
    assert!(
        check(
            "domain/mod.rs",
            "// see crate::store::Store\n/// [`crate::http`]\n"
        )
        .is_empty()
    );
    assert!(check("app.rs", "use crate::bot::run;\n").is_empty());
}

#[test]
fn planted_sql_outside_the_store_is_caught() {
    let allowed = table();
    let check = |path: &str, text: &str| check_file(Path::new(path), text, &allowed);
    assert_eq!(
        check("delivery/relay/mod.rs", "let q = sqlx::query(x);\n").len(),
        1
    );
    assert_eq!(
        check("telemetry.rs", "let q = run(\"SELECT COUNT(*) FROM outbox\");\n").len(),
        1
    );
    assert_eq!(
        check(
            "delivery/relay/mod.rs",
            "    \"UPDATE outbox SET state = 'pending'\",\n"
        )
        .len(),
        1
    );
    assert!(
        check(
            "store/outbox.rs",
            "let q = sqlx::query(\"SELECT 1 FROM outbox\");\n"
        )
        .is_empty()
    );
    assert!(check("delivery/relay/mod.rs", "tracing::info!(\"select a channel\");\n").is_empty());
}
