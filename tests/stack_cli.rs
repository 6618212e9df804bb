//! `escale stack` arguments and offline behaviour, without a Docker engine:
//! the engine address points at a socket that does not exist.

use std::process::Command;

fn stack(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_escale"))
        .arg("stack")
        .args(args)
        .env("DOCKER_HOST", "unix:///nonexistent/escale-stack-test.sock")
        .output()
        .expect("run escale");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn bad_arguments_exit_2() {
    let (code, _, err) = stack(&["deploy", "x.toml"]);
    assert_eq!(code, 2, "{err}");
    let (code, _, err) = stack(&["scale", "x.toml"]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("SERVICE=REPLICAS") || err.contains("<PAIRS>"),
        "{err}"
    );
    let (code, _, err) = stack(&["up", "x.toml", "--timeout", "soon"]);
    assert_eq!(code, 2, "{err}");
}

#[test]
fn help_lists_the_commands() {
    let (code, out, _) = stack(&["--help"]);
    assert_eq!(code, 0);
    for c in ["plan", "up", "ps", "scale", "down"] {
        assert!(out.contains(&format!("  {c} ")), "{out}");
    }
}

#[test]
fn a_missing_file_is_invalid() {
    let (code, _, err) = stack(&["plan", "/nonexistent/stack.toml"]);
    assert_eq!(code, 1);
    assert!(err.contains("/nonexistent/stack.toml"), "{err}");
}

#[test]
fn file_problems_are_shown_even_without_the_engine() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.toml");
    std::fs::write(&path, "[stack]\nname = \"x\"\n[services.a]\nimge = \"x\"\n").unwrap();
    let p = path.to_str().unwrap();
    for cmd in ["plan", "up"] {
        let (code, out, err) = stack(&[cmd, p]);
        assert_eq!(code, 3, "{err}");
        assert!(out.is_empty(), "{out}");
        assert!(err.contains("cannot reach the Docker engine"), "{err}");
        assert!(
            err.contains(&format!(
                "{p}:4: unknown key `imge` in [services.a]; did you mean `image`?"
            )),
            "{err}"
        );
    }
}
