//! Helpers shared by the CLI tests: run `guardian` and stock `age` as a user would.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

pub const TENANT: &str = "tenant-test";
pub const SECRET: &str = "correct horse battery staple";

pub fn guardian() -> Command {
    Command::new(env!("CARGO_BIN_EXE_guardian"))
}

/// A stock tool from the machine (installed by scripts/setup.sh); fails loudly if missing.
pub fn tool(name: &str) -> Command {
    let found = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(name).is_file()))
        .unwrap_or(false);
    assert!(
        found,
        "`{name}` is not installed: run scripts/setup.sh (or `make test`, which does)"
    );
    Command::new(name)
}

pub fn run(cmd: &mut Command) -> Output {
    cmd.stdin(Stdio::null()).output().expect("spawn")
}

/// Runs and asserts success, returning stdout.
pub fn ok(cmd: &mut Command) -> String {
    let out = run(cmd);
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Runs and asserts failure with exactly one line on stderr, returning that line.
pub fn fails(cmd: &mut Command) -> String {
    let out = run(cmd);
    assert!(!out.status.success(), "{cmd:?} succeeded but should not");
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(
        err.trim_end().lines().count(),
        1,
        "stderr is not one line: {err:?}"
    );
    err.trim_end().to_owned()
}

pub struct Fixture {
    pub dir: tempfile::TempDir,
}

impl Fixture {
    pub fn new() -> Self {
        let f = Fixture {
            dir: tempfile::tempdir().unwrap(),
        };
        std::fs::write(f.path("secret"), format!("{SECRET}\n")).unwrap();
        f
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Writes `len` bytes of varied plaintext.
    pub fn plaintext(&self, name: &str, len: usize) -> PathBuf {
        let mut x = 0x2545_f491u32;
        let data: Vec<u8> = (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                x as u8
            })
            .collect();
        let p = self.path(name);
        std::fs::write(&p, data).unwrap();
        p
    }

    pub fn key_args<'a>(&'a self, cmd: &'a mut Command) -> &'a mut Command {
        cmd.args(["--tenant", TENANT, "--secret-file"])
            .arg(self.path("secret"))
    }

    /// `guardian keys init`: (recipient, key id).
    pub fn recipient(&self) -> (String, String) {
        let out = ok(self.key_args(guardian().args(["keys", "init"])));
        let field = |name: &str| {
            out.lines()
                .find_map(|l| l.strip_prefix(name))
                .unwrap_or_else(|| panic!("no {name} in {out:?}"))
                .trim()
                .to_owned()
        };
        (field("recipient:"), field("key id:"))
    }

    /// `guardian keys identity` into a file usable with `age -d -i`.
    pub fn identity_file(&self) -> PathBuf {
        let id = ok(self.key_args(guardian().args(["keys", "identity"])));
        let p = self.path("identity.txt");
        std::fs::write(&p, id).unwrap();
        p
    }
}

pub fn same_file(a: &Path, b: &Path) -> bool {
    std::fs::read(a).unwrap() == std::fs::read(b).unwrap()
}
