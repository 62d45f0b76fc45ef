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
