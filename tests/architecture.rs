//! The CLI's shape (issue 9): a newcomer finds any command's code from its name alone, and no
//! command's module imports another command's module or the grammar.

use std::collections::BTreeSet;
use std::fs;

use crate::common::{ok, root};

/// The command names `ocistow --help` (or `ocistow GROUP --help`) lists, without clap's `help`.
fn listed_commands(args: &[&str]) -> Vec<String> {
    let mut all = args.to_vec();
    all.push("--help");
    let help = ok(&all).stdout;
    help.lines()
        .skip_while(|l| *l != "Commands:")
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .filter_map(|l| l.split_whitespace().next().map(str::to_string))
        .filter(|name| name != "help")
        .collect()
}

#[test]
fn every_command_has_a_file_named_after_it() {
    let commands = listed_commands(&[]);
    assert!(commands.len() >= 18, "{commands:?}");
    let dir = root().join("crates/cli/src/commands");
    for name in &commands {
        let file = dir.join(format!("{name}.rs"));
        assert!(file.is_file(), "`ocistow {name}` has no {}", file.display());
        let text = fs::read_to_string(&file).unwrap();
        assert!(
            text.contains("pub fn run("),
            "{} does not hold the command's run",
            file.display()
        );
    }
    // A group's subcommands are in the group's file.
    for group in ["manifest", "blob", "referrers"] {
        let text = fs::read_to_string(dir.join(format!("{group}.rs"))).unwrap();
        for sub in listed_commands(&[group]) {
            let variant: String = sub[..1].to_uppercase() + &sub[1..];
            assert!(
                text.contains(&format!("    {variant} {{"))
                    || text.contains(&format!("    {variant} ")),
                "`ocistow {group} {sub}` is not declared in commands/{group}.rs"
            );
        }
    }
}

#[test]
fn no_command_imports_another_command_or_the_grammar() {
    let dir = root().join("crates/cli/src/commands");
    let names: BTreeSet<String> = fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "rs"))
        .map(|p| p.file_stem().unwrap().to_string_lossy().into_owned())
        .filter(|n| n != "mod")
        .collect();
    for name in &names {
        let text = fs::read_to_string(dir.join(format!("{name}.rs"))).unwrap();
        // A unit-test module's `use super::*` is the command itself.
        let code = text.split("#[cfg(test)]").next().unwrap_or_default();
        for line in code
            .lines()
            .filter(|l| l.contains("crate::") || l.contains("super::"))
        {
            assert!(
                !line.contains("crate::commands") && !line.contains("super::"),
                "commands/{name}.rs imports another command: {line}"
            );
            assert!(
                !line.contains("crate::cli"),
                "commands/{name}.rs imports the grammar (a cycle): {line}"
            );
        }
    }
    // The shared modules import no command either.
    for shared in ["context.rs", "output.rs", "exit.rs", "progress.rs"] {
        let text = fs::read_to_string(root().join("crates/cli/src").join(shared)).unwrap();
        assert!(
            !text.contains("crate::commands") && !text.contains("crate::cli"),
            "{shared} imports a command or the grammar"
        );
    }
}

/// The library's own code (its unit-test modules cut off), as `(path from the crate, text)`.
fn library_sources() -> Vec<(String, String)> {
    fn walk(dir: &std::path::Path, base: &std::path::Path, out: &mut Vec<(String, String)>) {
        for entry in fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, base, out);
            } else if path.extension().is_some_and(|x| x == "rs") {
                let text = fs::read_to_string(&path).unwrap();
                let code = text.split("#[cfg(test)]").next().unwrap_or_default();
                let rel = path
                    .strip_prefix(base)
                    .unwrap()
                    .to_string_lossy()
                    .into_owned();
                out.push((rel, code.to_string()));
            }
        }
    }
    let base = root().join("crates/store/src");
    let mut out = Vec::new();
    walk(&base, &base, &mut out);
    out.sort();
    out
}

#[test]
fn library_errors_carry_typed_reasons() {
    let text = fs::read_to_string(root().join("crates/store/src/error.rs")).unwrap();
    for (line_no, line) in text.lines().enumerate() {
        let line = line.trim();
        assert!(
            !line.contains("InvalidInput(String)"),
            "error.rs:{}: InvalidInput is a typed InputProblem, not a String: {line}",
            line_no + 1
        );
        for field in ["reason", "problem"] {
            assert!(
                !line.starts_with(&format!("{field}: String"))
                    && !line.starts_with(&format!("{field}: Box<String>")),
                "error.rs:{}: a {field} is a typed enum, not free text: {line}",
                line_no + 1
            );
        }
    }
}

/// Mutations of a list of entries: each is a hand edit when done to `index.json`'s entries.
const EDITS: &[&str] = &[
    "push",
    "retain",
    "insert",
    "remove",
    "splice",
    "extend",
    "truncate",
    "drain",
    "clear",
    "sort",
    "sort_by",
    "sort_by_key",
    "dedup",
    "dedup_by",
    "swap",
    "append",
    "resize",
    "iter_mut",
    "get_mut",
    "first_mut",
    "last_mut",
];

#[test]
fn index_entries_are_edited_only_in_entries_rs() {
    // `export` builds a new index and installs the entry list it made with entries.rs's
    // functions; `model.rs` defines the accessor.
    let installs_a_built_list = ["transfer/export.rs"];
    let mut found = Vec::new();
    for (file, code) in library_sources() {
        if file == "entries.rs" || file == "model.rs" || file.starts_with("model/") {
            continue;
        }
        let flat: String = code.split_whitespace().collect::<Vec<_>>().join(" ");
        // Function by function, so that a name is looked for where it is bound.
        for body in flat.split(" fn ") {
            for shape in hand_edits(body, installs_a_built_list.contains(&file.as_str())) {
                found.push(format!("{file}: `{shape}`"));
            }
        }
    }
    assert!(
        found.is_empty(),
        "index.json's entries are edited by hand outside entries.rs (add a pure function \
         there): {found:#?}"
    );
}

/// The hand edits of `index.json`'s entry list in one function's text (whitespace collapsed).
fn hand_edits(body: &str, may_install_a_list: bool) -> Vec<String> {
    // Names that hold the entry list: bindings of `manifests_mut()` and `&mut Vec<Descriptor>`
    // parameters.
    let mut names: BTreeSet<String> = BTreeSet::new();
    for (i, _) in body.match_indices(".manifests_mut();") {
        // `let [mut] NAME = EXPR.manifests_mut();`
        let head = &body[..i];
        let Some(eq) = head.rfind(" = ") else {
            continue;
        };
        let words: Vec<&str> = head[..eq].rsplit(' ').take(3).collect();
        match words.as_slice() {
            [name, "let", ..] | [name, "mut", "let"] => {
                names.insert((*name).to_string());
            }
            _ => {}
        }
    }
    for (i, _) in body.match_indices(": &mut Vec<Descriptor>") {
        if let Some(name) = body[..i].rsplit([' ', '(']).next() {
            names.insert(name.to_string());
        }
    }
    let mut shapes: Vec<String> = EDITS
        .iter()
        .map(|m| format!(".manifests_mut().{m}("))
        .collect();
    shapes.push("in index.manifests_mut()".into());
    shapes.push("std::mem::take(index.manifests_mut())".into());
    if !may_install_a_list {
        shapes.push("*index.manifests_mut() =".into());
    }
    for name in &names {
        shapes.extend(EDITS.iter().map(|m| format!(" {name}.{m}(")));
        shapes.push(format!("*{name} ="));
        shapes.push(format!("std::mem::take({name})"));
        shapes.push(format!(" {name}["));
    }
    shapes
        .into_iter()
        .filter(|shape| body.contains(shape.as_str()))
        .map(|shape| shape.trim().to_string())
        .collect()
}
