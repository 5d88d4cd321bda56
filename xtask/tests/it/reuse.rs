//! Rebuilds copy unchanged entries from the unit's previous zip (package/reuse.rs): the
//! real binary and docker engine, checking the zip is byte for byte the one a build in a
//! clean dist/ makes, with reuse, after a pin bump, and over a damaged previous zip.

use crate::common;

use common::Fixture;

const ZIP: &str = "dist/two/two-py313-x86_64.zip";

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

/// `(copied, files)` from the `-v` line `... N of M files copied from the previous zip`.
fn copied(stderr: &str) -> (u64, u64) {
    let line = stderr
        .lines()
        .find(|l| l.contains("files copied from the previous zip"))
        .unwrap_or_else(|| panic!("no reuse line in:\n{stderr}"));
    let words: Vec<&str> = line.split_whitespace().collect();
    let at = words.iter().position(|w| *w == "of").unwrap();
    (words[at - 1].parse().unwrap(), words[at + 1].parse().unwrap())
}

/// The zip a build of `reqs` makes in a dist/ of its own (no previous zip).
fn clean_build(env: &common::TestEnv, reqs: &str) -> Vec<u8> {
    let f = Fixture::new(env, &[("two", reqs)]);
    let run = f.run(&["layer", "two", "-v"]).ok();
    assert_eq!(copied(&run.stderr).0, 0, "nothing to copy from in a clean dist/");
    std::fs::read(f.path(ZIP)).unwrap()
}

#[test]
fn rebuilds_copy_unchanged_entries_and_give_the_clean_build_bytes() {
    let env = require_docker!("rebuilds_copy_unchanged_entries");
    let f = Fixture::new(&env, &[("two", "six==1.16.0\nidna==3.10\n")]);
    let zip = f.path(ZIP);
    let stamp = f.path(&format!("{ZIP}.packer"));

    // First build: nothing to copy; the stamp names the zip.
    let run = f.run(&["layer", "two", "-v"]).ok();
    let (n, files) = copied(&run.stderr);
    assert_eq!(n, 0);
    let first = std::fs::read(&zip).unwrap();
    let sha = sha256_hex(&first);
    assert!(std::fs::read_to_string(&stamp).unwrap().contains(&sha));

    // Forced rebuild: every file copied, the same bytes.
    let run = f.run(&["layer", "two", "--force", "-v"]).ok();
    assert_eq!(copied(&run.stderr), (files, files), "{}", run.stderr);
    assert!(std::fs::read(&zip).unwrap() == first, "a rebuild that copies entries must give the same zip");

    // One pin bumped: six's files are compressed, idna's copied; the zip is the one a
    // clean dist/ gives.
    f.write("layers/two/requirements.txt", "six==1.17.0\nidna==3.10\n");
    let run = f.run(&["layer", "two", "-v"]).ok();
    let (n, files) = copied(&run.stderr);
    assert!(n > 0 && n < files, "{n} of {files} copied:\n{}", run.stderr);
    let bumped = std::fs::read(&zip).unwrap();
    assert!(bumped != first);
    assert!(
        bumped == clean_build(&env, "six==1.17.0\nidna==3.10\n"),
        "a bump with copied entries differs from a clean build"
    );

    // A damaged previous zip (its stamp made to match) is not copied from and fails nothing.
    let mut damaged = bumped.clone();
    let mid = damaged.len() / 2;
    damaged.truncate(mid);
    std::fs::write(&zip, &damaged).unwrap();
    let damaged_sha = sha256_hex(&damaged);
    let text = std::fs::read_to_string(&stamp).unwrap();
    let old_sha = sha256_hex(&bumped);
    std::fs::write(&stamp, text.replace(&old_sha, &damaged_sha)).unwrap();
    let run = f.run(&["layer", "two", "--force", "-v"]).ok();
    assert_eq!(copied(&run.stderr).0, 0, "{}", run.stderr);
    assert!(std::fs::read(&zip).unwrap() == bumped);

    // Nothing temporary is left behind.
    let work: Vec<_> = std::fs::read_dir(f.path("dist/.work")).unwrap().collect();
    assert!(work.is_empty(), "{work:?}");
}

/// `previous` rewritten by another writer: every entry compressed anew at deflate level 1,
/// and given a file comment and an extra field.
fn rewritten_by_another_packer(previous: &[u8]) -> Vec<u8> {
    use std::io::{Cursor, Read, Write};
    use zip::CompressionMethod;
    let mut old = zip::ZipArchive::new(Cursor::new(previous)).unwrap();
    let mut out = zip::ZipWriter::new(Cursor::new(Vec::new()));
    for i in 0..old.len() {
        let mut f = old.by_index(i).unwrap();
        let name = f.name().unwrap().to_string();
        let mut options = zip::write::FullFileOptions::default()
            .compression_method(f.compression())
            .compression_level((f.compression() == CompressionMethod::Deflated).then_some(1))
            .last_modified_time(zip::DateTime::default())
            .unix_permissions(f.unix_mode().unwrap() & 0o777)
            .with_file_comment("planted");
        options.add_extra_field(0x6a6a, *b"planted", false).unwrap();
        if f.is_dir() {
            out.add_directory(name, options).unwrap();
        } else {
            let mut data = Vec::new();
            f.read_to_end(&mut data).unwrap();
            out.start_file(name, options).unwrap();
            out.write_all(&data).unwrap();
        }
    }
    out.finish().unwrap().into_inner()
}

/// A dist/ restored from elsewhere (a poisoned CI cache): the previous zip rewritten by
/// another compressor with a comment and an extra field on every entry, its stamp's
/// sha256 rewritten to match. A forced rebuild copies nothing from it and gives exactly
/// the bytes of a build in a clean dist/; with no key to check a stamp with, the same.
#[test]
fn a_rewritten_previous_zip_behind_a_rewritten_stamp_is_not_copied_from() {
    let env = require_docker!("a_rewritten_previous_zip_behind_a_rewritten_stamp_is_not_copied_from");
    let f = Fixture::new(&env, &[("two", "six==1.16.0\nidna==3.10\n")]);
    let state = f.path("state");
    let state_env = [("XDG_STATE_HOME", state.to_str().unwrap())];
    let zip = f.path(ZIP);
    let stamp = f.path(&format!("{ZIP}.packer"));

    let run = f.run_with(&["layer", "two", "-v"], &state_env).ok();
    assert_eq!(copied(&run.stderr).0, 0);
    let clean = std::fs::read(&zip).unwrap();

    // A genuine rebuild copies every file.
    let run = f.run_with(&["layer", "two", "--force", "-v"], &state_env).ok();
    let (n, files) = copied(&run.stderr);
    assert_eq!(n, files, "{}", run.stderr);
    assert!(std::fs::read(&zip).unwrap() == clean);

    let planted = rewritten_by_another_packer(&clean);
    assert!(planted != clean);
    std::fs::write(&zip, &planted).unwrap();
    let text = std::fs::read_to_string(&stamp).unwrap();
    assert!(text.contains(&sha256_hex(&clean)), "{text}");
    std::fs::write(&stamp, text.replace(&sha256_hex(&clean), &sha256_hex(&planted))).unwrap();

    let run = f.run_with(&["layer", "two", "--force", "-v"], &state_env).ok();
    assert_eq!(copied(&run.stderr).0, 0, "{}", run.stderr);
    let rebuilt = std::fs::read(&zip).unwrap();
    assert_eq!(sha256_hex(&rebuilt), sha256_hex(&clean), "a rebuild over a planted zip differs from a clean build");

    // No key (its folder cannot be made): nothing copied, the same bytes, no failure.
    let blocked = f.path("state-is-a-file");
    std::fs::write(&blocked, "").unwrap();
    let no_key = [("XDG_STATE_HOME", blocked.to_str().unwrap())];
    let run = f.run_with(&["layer", "two", "--force", "-v"], &no_key).ok();
    assert_eq!(copied(&run.stderr).0, 0, "{}", run.stderr);
    assert_eq!(sha256_hex(&std::fs::read(&zip).unwrap()), sha256_hex(&clean));
}

/// What a killed run left (it could not clean up after SIGKILL) is removed by a later
/// build once it is a day old, in `dist/.work` and in uv's staging folder; a recent one,
/// which may belong to a build running elsewhere, is left alone.
#[test]
fn a_later_build_removes_work_folders_a_killed_run_left_a_day_ago() {
    let env = require_docker!("a_later_build_removes_work_folders_a_killed_run_left_a_day_ago");
    let f = Fixture::new(&env, &[("six", "six==1.17.0\n")]);
    let cache = tempfile::Builder::new().prefix("xtask-it-uv-cache-").tempdir().unwrap();
    let left = |dir: &std::path::Path, name: &str, age_s: u64| {
        let d = dir.join(name);
        std::fs::create_dir_all(d.join("python/pkg")).unwrap();
        std::fs::write(d.join("python/pkg/x.py"), "x = 1\n").unwrap();
        let t = std::time::SystemTime::now() - std::time::Duration::from_secs(age_s);
        std::fs::File::open(&d).unwrap().set_modified(t).unwrap();
        d
    };
    let work = f.path("dist/.work");
    let staging = cache.path().join(".xtask-staging");
    let old_work = left(&work, "six-py313-x86_64-4000001", 2 * 86400);
    let new_work = left(&work, "six-py313-x86_64-4000002", 3600);
    let old_stage = left(&staging, "six-py313-x86_64-4000001-abcdef", 2 * 86400);
    let new_stage = left(&staging, "six-py313-x86_64-4000002-ghijkl", 3600);
    let mut c = f.cmd(&["layer", "six"]);
    c.env("XTASK_UV_CACHE", cache.path());
    common::Run::from(c.output().unwrap(), &["layer", "six"]).ok();
    assert!(!old_work.exists() && !old_stage.exists(), "a day-old leftover is removed");
    assert!(new_work.exists() && new_stage.exists(), "a recent one is left alone");
}
