//! docs/cli.md and examples/standalone/README.md match the binary: every `sluice SUBCOMMAND
//! --flag` they show exists in the clap definition, and every subcommand is documented.

use clap::CommandFactory;
use sluice_controller::cli::Cli;

fn read(rel: &str) -> String {
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(rel);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// Lines of fenced blocks and inline code spans: where commands are shown.
fn code_snippets(md: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut fenced = false;
    for line in md.lines() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
            continue;
        }
        if fenced {
            out.push(line.to_string());
        } else {
            out.extend(line.split('`').skip(1).step_by(2).map(str::to_string));
        }
    }
    out
}

/// `(subcommand, flags)` of each `sluice …` invocation in a snippet.
fn invocations(snippet: &str) -> Vec<(String, Vec<String>)> {
    let mut found = Vec::new();
    let words: Vec<&str> = snippet.split_whitespace().collect();
    for (i, w) in words.iter().enumerate() {
        let w = w.trim_start_matches(['(', '"', '$']);
        if w != "sluice" {
            continue;
        }
        let mut rest = words[i + 1..]
            .iter()
            .take_while(|t| !matches!(**t, "#" | "|" | "||" | "&&" | ";") && !t.starts_with('#'));
        let Some(sub) = rest.next() else { continue };
        let sub = sub.trim_end_matches([')', '"', ';']);
        if sub.starts_with('-') || sub.is_empty() || sub.starts_with('`') {
            continue;
        }
        let flags = rest
            .map(|t| {
                t.trim_start_matches(['[', '('])
                    .trim_end_matches([']', ')', ',', '"'])
            })
            .filter(|t| t.starts_with('-') && t.len() > 1 && *t != "--")
            .map(|t| t.split('=').next().unwrap_or(t).to_string())
            .collect();
        found.push((sub.to_string(), flags));
    }
    found
}

fn has_flag(cmd: &clap::Command, flag: &str) -> bool {
    if matches!(flag, "-h" | "--help") {
        return true;
    }
    cmd.get_arguments().any(|a| {
        flag.strip_prefix("--")
            .map(|l| a.get_long() == Some(l))
            .unwrap_or_else(|| {
                let mut c = flag.trim_start_matches('-').chars();
                matches!((c.next(), c.next()), (Some(s), None) if a.get_short() == Some(s))
            })
    })
}

#[test]
fn documented_subcommands_and_flags_exist() {
    let root = Cli::command();
    let mut checked = 0;
    let mut problems = Vec::new();
    for doc in ["docs/cli.md", "examples/standalone/README.md"] {
        for snippet in code_snippets(&read(doc)) {
            for (sub, flags) in invocations(&snippet) {
                let Some(cmd) = root.find_subcommand(&sub) else {
                    problems.push(format!(
                        "{doc}: `sluice {sub}` is no subcommand ({snippet})"
                    ));
                    continue;
                };
                for f in flags {
                    if !has_flag(cmd, &f) && !has_flag(&root, &f) {
                        problems.push(format!("{doc}: `sluice {sub}` has no {f} ({snippet})"));
                    }
                    checked += 1;
                }
            }
        }
    }
    assert!(problems.is_empty(), "{problems:#?}");
    assert!(
        checked > 30,
        "only {checked} flags found: is the parser still right?"
    );
}

#[test]
fn every_subcommand_is_documented() {
    let md = read("docs/cli.md");
    let documented: Vec<String> = code_snippets(&md)
        .iter()
        .flat_map(|s| invocations(s))
        .map(|(s, _)| s)
        .collect();
    for sub in Cli::command().get_subcommands() {
        let name = sub.get_name();
        assert!(
            documented.iter().any(|d| d == name),
            "docs/cli.md never shows `sluice {name}`"
        );
    }
}

#[test]
fn the_parser_sees_a_wrong_flag() {
    // The check above can fail: a made-up flag is reported.
    let (sub, flags) = invocations("sluice wait web --no-such-flag [-o json]").remove(0);
    let cmd = Cli::command();
    let wait = cmd.find_subcommand(&sub).unwrap();
    assert_eq!(flags, ["--no-such-flag", "-o"]);
    assert!(!has_flag(wait, "--no-such-flag"));
    assert!(has_flag(wait, "-o"));
}
