//! scripts/demo.sh's output helpers (scripts/lib/demo-output.sh) with the demo's output sent to
//! a file, as `scripts/demo.sh > demo.log 2>&1` does: every line kept once, no NUL bytes (the
//! old `tee /dev/stderr` re-opened the log with O_TRUNC), no ANSI codes off a terminal.

use std::process::Command;

#[test]
fn demo_output_to_a_file_keeps_every_line_and_no_colour() {
    let root = sluice_tests::workspace_root();
    let lib = root.join("scripts/lib/demo-output.sh");
    assert!(lib.is_file(), "{} missing", lib.display());
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("demo.log");
    let script = format!(
        r#". '{lib}'
say "scenario a"
out="$(printf 'watch 1\nwatch 2\nRESULT Succeeded 12\n' | mirror_last_line)"
say "scenario b"
out2="$(printf 'watch 3\nRESULT Failed 7' | mirror_last_line)"
echo "a=$out"
echo "b=$out2"
"#,
        lib = lib.display()
    );
    let status = Command::new("bash")
        .arg("-c")
        .arg(format!("{{ {script} }} > '{}' 2>&1", log.display()))
        .env_remove("NO_COLOR")
        .status()
        .unwrap();
    assert!(status.success());
    let bytes = std::fs::read(&log).unwrap();
    assert!(!bytes.contains(&0), "NUL bytes in the log: {bytes:?}");
    let text = String::from_utf8(bytes).unwrap();
    assert!(!text.contains('\u{1b}'), "ANSI codes in a file: {text:?}");
    for line in [
        "== scenario a",
        "watch 1",
        "watch 2",
        "RESULT Succeeded 12",
        "== scenario b",
        "watch 3",
        "a=RESULT Succeeded 12",
        "b=RESULT Failed 7",
    ] {
        let n = text.lines().filter(|l| *l == line).count();
        assert_eq!(n, 1, "{line:?} in:\n{text}");
    }
    // The order is the order things happened in.
    let a = text.find("== scenario a").unwrap();
    let b = text.find("== scenario b").unwrap();
    assert!(
        a < text.find("watch 1").unwrap() && text.find("watch 2").unwrap() < b,
        "{text}"
    );
}
