//! `make bench-seal`: `guardian seal` (age encryption + CID in one pass) against stock
//! `age -r` on the same file, in the same run, as whole commands the way a user runs them.
//!
//! Prints each tool's median wall time over several alternating runs and the ratio
//! `age time / guardian time` (≥ 1.0 means guardian is at least as fast while also computing
//! the CID). Size and runs: `GUARDIAN_BENCH_SEAL_MIB` (default 256), `GUARDIAN_BENCH_RUNS`
//! (default 5).

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn time(cmd: &mut Command) -> Duration {
    let start = Instant::now();
    let out = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .expect("spawn");
    let took = start.elapsed();
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    took
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn write_input(path: &Path, mib: u64) {
    // Pseudo-random so nothing along the way can compress it.
    let mut f = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    let mut block = vec![0u8; 1 << 20];
    for _ in 0..mib {
        for chunk in block.chunks_mut(8) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            chunk.copy_from_slice(&x.to_le_bytes());
        }
        f.write_all(&block).unwrap();
    }
    f.flush().unwrap();
}

fn main() {
    // `cargo bench` passes `--bench`; there is nothing to filter.
    let mib = env_or("GUARDIAN_BENCH_SEAL_MIB", 256);
    let runs = env_or("GUARDIAN_BENCH_RUNS", 5).max(1) as usize;
    // On tmpfs where there is one: the comparison is of the tools' work, not of this
    // machine's noisy disk (guardian also fsyncs its output, a no-op on tmpfs).
    let shm = Path::new("/dev/shm");
    let dir = if shm.is_dir() {
        tempfile::tempdir_in(shm).unwrap()
    } else {
        tempfile::tempdir().unwrap()
    };
    let input = dir.path().join("clip.bin");
    write_input(&input, mib);

    let id = dir.path().join("id.txt");
    let keygen = Command::new("age-keygen")
        .arg("-o")
        .arg(&id)
        .stderr(Stdio::null())
        .status()
        .expect("age-keygen is installed (scripts/setup.sh)");
    assert!(keygen.success());
    let recipient = String::from_utf8(
        Command::new("age-keygen")
            .arg("-y")
            .arg(&id)
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    let recipient = recipient.trim();
    let guardian = env!("CARGO_BIN_EXE_guardian");
    let out_age = dir.path().join("by-age.age");
    let out_guardian = dir.path().join("by-guardian.age");

    // One warm-up of each (page cache, binaries), then alternate so drift hits both alike.
    let mut age_times = Vec::new();
    let mut guardian_times = Vec::new();
    for i in 0..=runs {
        let a = time(
            Command::new("age")
                .args(["-r", recipient, "-o"])
                .arg(&out_age)
                .arg(&input),
        );
        let g = time(
            Command::new(guardian)
                .args(["seal", "-r", recipient])
                .arg(&input)
                .arg("-o")
                .arg(&out_guardian),
        );
        if i > 0 {
            age_times.push(a);
            guardian_times.push(g);
        }
    }
    // Sanity: the sealed output opens with stock age and is the right size.
    let size = std::fs::metadata(&out_guardian).unwrap().len();
    assert!(size > mib << 20);
    let check = Command::new("age")
        .arg("-d")
        .arg("-i")
        .arg(&id)
        .arg(&out_guardian)
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(check.success(), "stock age cannot open guardian's output");

    let (a, g) = (median(age_times), median(guardian_times));
    let mb = (mib << 20) as f64 / 1e6;
    println!(
        "bench-seal: {mib} MiB in {}, median of {runs} runs each",
        dir.path().parent().unwrap().display()
    );
    println!(
        "  age -r          {:>8.3} s  {:>7.1} MB/s",
        a.as_secs_f64(),
        mb / a.as_secs_f64()
    );
    println!(
        "  guardian seal   {:>8.3} s  {:>7.1} MB/s  (age + CID in one pass)",
        g.as_secs_f64(),
        mb / g.as_secs_f64()
    );
    let ratio = a.as_secs_f64() / g.as_secs_f64();
    println!("  ratio (age time / guardian time): {ratio:.2}x  (goal >= 1.0x)");
}
