//! Reuse of the previous zip's compressed entries: a file whose bytes equal those of the
//! same-named entry in the unit's previous zip has that entry's compressed data copied
//! instead of being deflated again. Only the compressed data stream is taken: the entry's
//! headers are written fresh, exactly as a fresh build writes them (no comment, no extra
//! field, our timestamp, attributes and flags), from a clean one-entry zip made here
//! around those bytes. The new zip is exactly the one a fresh compress gives because:
//!
//! - only a zip this same packer made is used: a stamp beside it (`<zip>.packer`) names
//!   the packer and the zip's sha256, authenticated by an HMAC-SHA256 under a per-user
//!   key kept outside dist/ and outside what CI caches
//!   (`$XDG_STATE_HOME/lambda-layers/packer.key`, default
//!   `~/.local/state/lambda-layers/packer.key`: 32 random bytes, mode 0600, made on first
//!   use). A dist/ restored from elsewhere (a CI cache) or a rewritten stamp does not
//!   verify, so another compressor's bytes are never copied;
//! - an old entry is used only after it was inflated and compared byte for byte.
//!
//! Anything unexpected (no stamp, a stamp of the older unsigned format, another packer or
//! key, no key to be had, a changed, truncated or corrupt zip) means no reuse: a fresh
//! build, the same bytes, and a `-v` detail saying why.

use std::io::{Cursor, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use anyhow::{anyhow, bail, Context, Result};
use sha2::{Digest, Sha256};
use zip::{CompressionMethod, ZipArchive};

use crate::failure::Failure;

/// What makes the compressed bytes of an entry: the method rule and level of
/// `package::options`/`compress` and the crate versions that implement them (Cargo.lock).
/// Bump it with any change to them: `packer_names_the_locked_crates` and
/// `packer_output_is_pinned` fail until it is.
pub const PACKER: &str = "deflate-6-or-stored-if-not-smaller zip-9.8.2 flate2-1.1.11 zlib-rs-0.6.8";

/// The stamp beside a zip: `<zip>.packer`.
pub fn stamp_path(zip: &Path) -> PathBuf {
    let mut name = zip.file_name().unwrap_or_default().to_os_string();
    name.push(".packer");
    zip.with_file_name(name)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The stamp's text for a zip this packer made with digest `sha256`: the packer, the
/// digest, and the HMAC of both lines under `key`.
pub fn stamp(key: &Key, sha256: &[u8; 32]) -> String {
    let body = format!("{PACKER}\n{}\n", hex(sha256));
    let mac = hmac_sha256(&key.0, body.as_bytes());
    format!("{body}hmac-sha256 {}\n", hex(&mac))
}

/// HMAC-SHA256 (RFC 2104) over the `sha2` crate.
fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
    let mut block = [0u8; 64];
    if key.len() > block.len() {
        block[..32].copy_from_slice(Sha256::digest(key).as_slice());
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    let inner = Sha256::new().chain_update(block.map(|b| b ^ 0x36)).chain_update(message).finalize();
    Sha256::new().chain_update(block.map(|b| b ^ 0x5c)).chain_update(inner).finalize().into()
}

/// Equal bytes, in a time that does not depend on where they differ.
fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The per-user key stamps are authenticated with.
pub struct Key([u8; 32]);

impl Key {
    /// This user's key, read (or made) once per run; `Err` says why there is none.
    pub fn for_user() -> Result<&'static Key> {
        static KEY: OnceLock<std::result::Result<Key, Failure>> = OnceLock::new();
        KEY.get_or_init(|| key_path().and_then(|p| Key::load_or_create(&p)).map_err(Failure::new))
            .as_ref()
            .map_err(|e| e.clone().into())
    }

    /// The key at `path`, made there first when there is none: 32 bytes of /dev/urandom
    /// written to a temporary file of mode 0600 and linked into place, so a reader never
    /// sees a part of one and two runs making it at once agree on the first.
    pub fn load_or_create(path: &Path) -> Result<Key> {
        if let Some(key) = Key::read(path)? {
            return Ok(key);
        }
        let dir = path.parent().context("the key has no folder")?;
        let cannot = |what: &str, e: std::io::Error| anyhow!("cannot {what} {}: {e}", dir.display());
        {
            use std::os::unix::fs::DirBuilderExt;
            std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir).map_err(|e| cannot("create", e))?;
        }
        let mut bytes = [0u8; 32];
        std::fs::File::open("/dev/urandom")
            .and_then(|mut r| r.read_exact(&mut bytes))
            .map_err(|e| cannot("fill a key for", e))?;
        let tmp = crate::interrupt::TempPath::new(dir.join(format!(".packer.key.tmp-{}", std::process::id())));
        let written = (|| {
            use std::os::unix::fs::OpenOptionsExt;
            let mut f = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(tmp.path())?;
            f.write_all(&bytes)?;
            f.sync_all()?;
            match std::fs::hard_link(tmp.path(), path) {
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
                other => other,
            }
        })();
        drop(tmp);
        written.map_err(|e| cannot("write a key in", e))?;
        Key::read(path)?.with_context(|| format!("{} vanished as it was made", path.display()))
    }

    /// The key at `path`; `None` when there is none. One that is not a regular file of 32
    /// bytes only its owner can read is refused.
    fn read(path: &Path) -> Result<Option<Key>> {
        use std::os::unix::fs::PermissionsExt;
        let meta = match std::fs::symlink_metadata(path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => bail!("cannot read {}: {e}", path.display()),
            Ok(m) => m,
        };
        if !meta.is_file() || meta.len() != 32 || meta.permissions().mode() & 0o077 != 0 {
            bail!("{} is not a 32-byte file of mode 0600", path.display());
        }
        let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
        Ok(Some(Key(bytes.try_into().map_err(|_| anyhow!("{} changed as it was read", path.display()))?)))
    }
}

/// `$XDG_STATE_HOME/lambda-layers/packer.key`, else `~/.local/state/lambda-layers/packer.key`
/// (only absolute folders count, as the XDG spec says).
fn key_path() -> Result<PathBuf> {
    let absolute = |v: &str| crate::settings::var_os(v).map(PathBuf::from).filter(|p| p.is_absolute());
    let state = absolute("XDG_STATE_HOME")
        .or_else(|| absolute("HOME").map(|h| h.join(".local/state")))
        .context("neither XDG_STATE_HOME nor HOME names a folder")?;
    Ok(state.join("lambda-layers").join("packer.key"))
}

/// The previous zip of a unit, read into memory, when this packer made it.
pub struct Previous {
    archive: ZipArchive<Cursor<Arc<[u8]>>>,
    bytes: Arc<[u8]>,
}

impl Previous {
    /// The zip at `zip` when its stamp names this packer and its sha256 under `key`; else
    /// why not.
    pub fn load(zip: &Path, key: &Key) -> Result<Previous> {
        let stamp_text = std::fs::read_to_string(stamp_path(zip)).map_err(|_| anyhow!("it has no stamp"))?;
        let mut lines = stamp_text.lines();
        if lines.next() != Some(PACKER) {
            bail!("its stamp names another packer");
        }
        if lines.nth(1).is_none_or(|l| !l.starts_with("hmac-sha256 ")) {
            bail!("its stamp is of the older, unsigned format");
        }
        let bytes: Arc<[u8]> = std::fs::read(zip).context("cannot read it")?.into();
        if !same_bytes(stamp_text.as_bytes(), stamp(key, &Sha256::digest(&bytes).into()).as_bytes()) {
            bail!("its stamp does not verify under this user's packer key (made elsewhere, or rewritten)");
        }
        let archive = ZipArchive::new(Cursor::new(bytes.clone())).context("it is not a zip")?;
        Ok(Previous { archive, bytes })
    }

    /// [`Previous::load`] with this user's key.
    pub fn load_for_user(zip: &Path) -> Result<Previous> {
        Previous::load(zip, Key::for_user().context("no packer key")?)
    }

    /// An archive reader of its own for one thread.
    pub(super) fn reader(&self) -> Reader {
        Reader { archive: self.archive.clone(), bytes: self.bytes.clone() }
    }
}

/// The compressed data of a previous entry that holds a file's exact bytes.
pub(super) struct Reused {
    method: CompressionMethod,
    start: usize,
    len: usize,
    crc32: u32,
    size: u32,
}

/// One thread's reader of the previous zip.
pub(super) struct Reader {
    archive: ZipArchive<Cursor<Arc<[u8]>>>,
    bytes: Arc<[u8]>,
}

impl Reader {
    /// The compressed data of the previous entry named `name` holding exactly `data` as a
    /// regular file: same size and CRC-32, then its bytes (inflated when deflated) compared
    /// with `data`, the compressed ones all used. Anything else is no match.
    pub(super) fn matching(&mut self, name: &str, data: &[u8]) -> Option<Reused> {
        let index = self.archive.index_for_name(name)?;
        let size = u32::try_from(data.len()).ok().filter(|&s| s < u32::MAX)?;
        let mut crc = flate2::Crc::new();
        crc.update(data);
        let (method, start, len) = {
            let f = self.archive.by_index_raw(index).ok()?;
            let regular = f.unix_mode().is_some_and(|m| m & 0o170000 == 0o100000);
            if !regular || f.encrypted() || f.size() != data.len() as u64 || f.crc32() != crc.sum() {
                return None;
            }
            (f.compression(), usize::try_from(f.data_start()?).ok()?, usize::try_from(f.compressed_size()).ok()?)
        };
        u32::try_from(len).ok().filter(|&l| l < u32::MAX)?;
        let raw = self.bytes.get(start..start.checked_add(len)?)?;
        let same = match method {
            CompressionMethod::Stored => raw == data,
            CompressionMethod::Deflated => {
                // Inflated into room for exactly the file: more output is no match.
                let mut old = Vec::with_capacity(data.len());
                let mut inflate = flate2::Decompress::new(false);
                let end = inflate.decompress_vec(raw, &mut old, flate2::FlushDecompress::Finish);
                matches!(end, Ok(flate2::Status::StreamEnd)) && inflate.total_in() == len as u64 && old == data
            }
            _ => false,
        };
        same.then_some(Reused { method, start, len, crc32: crc.sum(), size })
    }

    /// A zip of one entry, `name` of mode `mode` holding `reused`'s compressed data, with
    /// the headers a fresh build writes and nothing else from the previous zip: for a raw
    /// copy (`ZipWriter::raw_copy_file_touch`), which takes every header field from it.
    pub(super) fn fresh_entry(&self, name: &str, mode: u32, reused: &Reused) -> Vec<u8> {
        let data = &self.bytes[reused.start..reused.start + reused.len];
        let name = name.as_bytes();
        // UTF-8 flag on a non-ASCII name, as the zip crate sets it on a new entry.
        let flags: u16 = if name.is_ascii() { 0 } else { 1 << 11 };
        let method: u16 = if reused.method == CompressionMethod::Stored { 0 } else { 8 };
        // Version 2.0, 1980-01-01 00:00, CRC-32, sizes, name length, no extra field.
        let common = |out: &mut Vec<u8>| {
            for v in [20u16, flags, method, 0, (1 << 5) | 1] {
                out.extend_from_slice(&v.to_le_bytes());
            }
            for v in [reused.crc32, reused.len as u32, reused.size] {
                out.extend_from_slice(&v.to_le_bytes());
            }
            out.extend_from_slice(&(name.len() as u16).to_le_bytes());
            out.extend_from_slice(&0u16.to_le_bytes());
        };
        let mut out = Vec::with_capacity(data.len() + 2 * name.len() + 128);
        out.extend_from_slice(&0x04034b50u32.to_le_bytes());
        common(&mut out);
        out.extend_from_slice(name);
        out.extend_from_slice(data);
        let central = out.len() as u32;
        out.extend_from_slice(&0x02014b50u32.to_le_bytes());
        // Made by Unix (3), version 2.0.
        out.extend_from_slice(&((3u16 << 8) | 20).to_le_bytes());
        common(&mut out);
        // No comment, disk 0, no internal attributes, a regular file of `mode`, at offset 0.
        for v in [0u16, 0, 0] {
            out.extend_from_slice(&v.to_le_bytes());
        }
        out.extend_from_slice(&((0o100000 | mode) << 16).to_le_bytes());
        out.extend_from_slice(&0u32.to_le_bytes());
        out.extend_from_slice(name);
        let central_len = out.len() as u32 - central;
        out.extend_from_slice(&0x06054b50u32.to_le_bytes());
        for v in [0u16, 0, 1, 1] {
            out.extend_from_slice(&v.to_le_bytes());
        }
        for v in [central_len, central] {
            out.extend_from_slice(&v.to_le_bytes());
        }
        out.extend_from_slice(&0u16.to_le_bytes());
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::package::{package, package_reusing, Packaged};
    use std::os::unix::fs::PermissionsExt;

    /// A tree with what the packer treats differently: deflated and stored (incompressible)
    /// files, an empty file, an executable, a non-ASCII name, a symlink, nesting.
    fn tree() -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("python/pkg");
        std::fs::create_dir_all(p.join("sub/deeper")).unwrap();
        std::fs::write(p.join("a.py"), "x = 1\n").unwrap();
        std::fs::write(p.join("b.py"), "print('b')\n".repeat(1000)).unwrap();
        let mut noise = Vec::new();
        let mut x: u64 = 0x9e3779b97f4a7c15;
        for _ in 0..200_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            noise.push(x as u8);
        }
        std::fs::write(p.join("sub/noise.so"), &noise).unwrap();
        std::fs::write(p.join("sub/empty.txt"), "").unwrap();
        std::fs::write(p.join("sub/deeper/données.txt"), "é".repeat(300)).unwrap();
        std::fs::write(p.join("tool"), "#!/bin/sh\necho hi\n").unwrap();
        std::fs::set_permissions(p.join("tool"), std::fs::Permissions::from_mode(0o700)).unwrap();
        std::os::unix::fs::symlink("a.py", p.join("link.py")).unwrap();
        d
    }

    /// The key of the tests' stamps.
    const KEY: Key = Key([7; 32]);

    /// Packs `root` as the build does: the zip and its stamp into `dist`, reusing the
    /// previous zip there.
    fn build(root: &Path, dist: &Path) -> Packaged {
        let zip = dist.join("l.zip");
        let previous = Previous::load(&zip, &KEY).ok();
        let p = package_reusing(root, previous.as_ref()).unwrap();
        std::fs::write(&zip, &p.bytes).unwrap();
        std::fs::write(stamp_path(&zip), stamp(&KEY, &p.sha256)).unwrap();
        p
    }

    /// The build of `root` equals a fresh package of it, byte for byte; returns it.
    fn build_equals_fresh(root: &Path, dist: &Path) -> Packaged {
        let p = build(root, dist);
        let fresh = package(root).unwrap();
        assert_eq!(p.sha256, fresh.sha256, "the zip made with reuse differs from a fresh one");
        assert!(p.bytes == fresh.bytes);
        assert_eq!((p.file_count, p.unzipped_bytes), (fresh.file_count, fresh.unzipped_bytes));
        assert_eq!(fresh.reused_files, 0);
        p
    }

    #[test]
    fn rebuild_reuses_every_file_and_gives_the_fresh_bytes() {
        let d = tree();
        let dist = tempfile::tempdir().unwrap();
        assert_eq!(build_equals_fresh(d.path(), dist.path()).reused_files, 0);
        let again = build_equals_fresh(d.path(), dist.path());
        // Every regular file (not the symlink, which is never compressed).
        assert_eq!(again.reused_files, again.file_count - 1);
    }

    #[test]
    fn changed_files_are_compressed_again_and_the_rest_reused() {
        let d = tree();
        let dist = tempfile::tempdir().unwrap();
        build_equals_fresh(d.path(), dist.path());
        let p = d.path().join("python/pkg");
        // Same length, different bytes: same size, so only the CRC and the bytes tell.
        std::fs::write(p.join("a.py"), "x = 2\n").unwrap();
        // Now executable: the entry's mode changes, its bytes may be reused.
        std::fs::set_permissions(p.join("b.py"), std::fs::Permissions::from_mode(0o755)).unwrap();
        // Was a symlink whose target text is these very bytes: now a regular file.
        std::fs::remove_file(p.join("link.py")).unwrap();
        std::fs::write(p.join("link.py"), "a.py").unwrap();
        std::fs::write(p.join("new.py"), "new\n").unwrap();
        std::fs::remove_file(p.join("tool")).unwrap();
        let again = build_equals_fresh(d.path(), dist.path());
        // b.py, noise.so, empty.txt, données.txt.
        assert_eq!(again.reused_files, 4);
    }

    fn crc(data: &[u8]) -> u32 {
        let mut c = flate2::Crc::new();
        c.update(data);
        c.sum()
    }

    /// `data` with its first bit flipped and its last 4 bytes changed so the CRC-32 stays
    /// the same: the CRC is affine in the bits, and the last 32 bits reach every value.
    fn crc_collision(data: &[u8]) -> Vec<u8> {
        let n = data.len();
        let effect = |flip: &dyn Fn(&mut Vec<u8>)| {
            let mut v = data.to_vec();
            flip(&mut v);
            crc(&v) ^ crc(data)
        };
        // Columns: the CRC change of each bit of the last 4 bytes; solve for the change of
        // the first bit by Gaussian elimination over GF(2).
        let mut rows: Vec<(u32, u32)> =
            (0..32).map(|b| (effect(&|v| v[n - 4 + b / 8] ^= 1 << (b % 8)), 1u32 << b)).collect();
        let mut target = (effect(&|v| v[0] ^= 1), 0u32);
        for bit in 0..32 {
            let Some(p) = (bit..32).find(|&r| rows[r].0 >> bit & 1 == 1) else { continue };
            rows.swap(bit, p);
            let pivot = rows[bit];
            for (r, row) in rows.iter_mut().enumerate() {
                if r != bit && row.0 >> bit & 1 == 1 {
                    *row = (row.0 ^ pivot.0, row.1 ^ pivot.1);
                }
            }
            if target.0 >> bit & 1 == 1 {
                target = (target.0 ^ pivot.0, target.1 ^ pivot.1);
            }
        }
        assert_eq!(target.0, 0);
        let mut v = data.to_vec();
        v[0] ^= 1;
        for b in 0..32 {
            if target.1 >> b & 1 == 1 {
                v[n - 4 + b / 8] ^= 1 << (b % 8);
            }
        }
        v
    }

    #[test]
    fn same_size_same_crc_different_bytes_is_not_reused() {
        let d = tree();
        let dist = tempfile::tempdir().unwrap();
        build(d.path(), dist.path());
        // One deflated file, one stored (incompressible) file.
        for f in ["python/pkg/b.py", "python/pkg/sub/noise.so"] {
            let f = d.path().join(f);
            let old = std::fs::read(&f).unwrap();
            let new = crc_collision(&old);
            assert!(new != old && new.len() == old.len() && crc(&new) == crc(&old));
            std::fs::write(&f, &new).unwrap();
        }
        let again = build_equals_fresh(d.path(), dist.path());
        assert_eq!(again.reused_files, again.file_count - 3);
    }

    #[test]
    fn a_damaged_previous_entry_is_not_reused() {
        // The old entry's compressed bytes altered behind a stamp that matches the zip:
        // the size and recorded CRC agree with the file, what inflates does not.
        let d = tree();
        let dist = tempfile::tempdir().unwrap();
        let first = build(d.path(), dist.path());
        let zip = dist.path().join("l.zip");
        let mut bytes = first.bytes.clone();
        // b.py is deflated: change one byte of its compressed data (after its local header).
        let at = find(&bytes, b"python/pkg/b.py").unwrap() + "python/pkg/b.py".len() + 10;
        bytes[at] ^= 0x55;
        std::fs::write(&zip, &bytes).unwrap();
        std::fs::write(stamp_path(&zip), stamp(&KEY, &Sha256::digest(&bytes).into())).unwrap();
        let again = build_equals_fresh(d.path(), dist.path());
        assert_eq!(again.reused_files, again.file_count - 2);
    }

    /// The previous zip rewritten by another writer: every entry deflated anew at `level`,
    /// with a file comment and an extra field of its own.
    fn rewritten(previous: &[u8], level: i64) -> Vec<u8> {
        use std::io::{Read, Write};
        let mut old = ZipArchive::new(Cursor::new(previous)).unwrap();
        let mut out = zip::ZipWriter::new(Cursor::new(Vec::new()));
        for i in 0..old.len() {
            let mut f = old.by_index(i).unwrap();
            let name = f.name().unwrap().to_string();
            let mode = f.unix_mode().unwrap();
            let mut options = zip::write::FullFileOptions::default()
                .compression_method(f.compression())
                .compression_level((f.compression() == CompressionMethod::Deflated).then_some(level))
                .last_modified_time(zip::DateTime::default())
                .unix_permissions(mode & 0o777)
                .with_file_comment("planted");
            options.add_extra_field(0x6a6a, *b"planted", false).unwrap();
            if f.is_dir() {
                out.add_directory(name, options).unwrap();
            } else if f.is_symlink() {
                let mut target = String::new();
                f.read_to_string(&mut target).unwrap();
                out.add_symlink(name, target, options).unwrap();
            } else {
                let mut data = Vec::new();
                f.read_to_end(&mut data).unwrap();
                out.start_file(name, options).unwrap();
                out.write_all(&data).unwrap();
            }
        }
        out.finish().unwrap().into_inner()
    }

    /// No entry of `zip` has a file comment or an extra field.
    fn assert_clean_headers(zip: &[u8]) {
        let mut z = ZipArchive::new(Cursor::new(zip)).unwrap();
        for i in 0..z.len() {
            let f = z.by_index_raw(i).unwrap();
            assert_eq!(f.comment(), "", "{}: a comment", f.name().unwrap());
            assert!(f.extra_data().is_none_or(|e| e.is_empty()), "{}: an extra field", f.name().unwrap());
        }
    }

    #[test]
    fn reused_entries_get_fresh_headers_whatever_the_previous_zip_held() {
        // A previous zip whose entries hold exactly this packer's compressed bytes but
        // carry a comment and an extra field, behind a stamp that verifies: only the
        // compressed data is taken, the headers are the fresh ones.
        let d = tree();
        let dist = tempfile::tempdir().unwrap();
        let first = build_equals_fresh(d.path(), dist.path());
        assert_clean_headers(&first.bytes);
        let planted = rewritten(&first.bytes, 6);
        assert!(planted != first.bytes);
        let zip = dist.path().join("l.zip");
        std::fs::write(&zip, &planted).unwrap();
        std::fs::write(stamp_path(&zip), stamp(&KEY, &Sha256::digest(&planted).into())).unwrap();
        let again = build_equals_fresh(d.path(), dist.path());
        assert_eq!(again.reused_files, again.file_count - 1, "the compressed bytes are this packer's: reused");
        assert_clean_headers(&again.bytes);
    }

    fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
        hay.windows(needle.len()).position(|w| w == needle)
    }

    #[test]
    fn garbage_truncated_missing_or_foreign_previous_zips_are_ignored() {
        let d = tree();
        let dist = tempfile::tempdir().unwrap();
        let zip = dist.path().join("l.zip");
        let good = build(d.path(), dist.path());
        let write = |bytes: &[u8], stamp_text: Option<String>| {
            std::fs::write(&zip, bytes).unwrap();
            match stamp_text {
                Some(s) => std::fs::write(stamp_path(&zip), s).unwrap(),
                None => {
                    let _ = std::fs::remove_file(stamp_path(&zip));
                }
            }
        };
        let stamped = |bytes: &[u8]| Some(stamp(&KEY, &Sha256::digest(bytes).into()));
        let good_stamp = stamp(&KEY, &good.sha256);
        let unsigned = good_stamp.lines().take(2).map(|l| format!("{l}\n")).collect::<String>();
        let other_zip = good_stamp.replace(&hex(&good.sha256), &hex(&[0; 32]));
        let cases: Vec<(&str, Vec<u8>, Option<String>)> = vec![
            ("garbage", b"not a zip at all".repeat(100), stamped(&b"not a zip at all".repeat(100))),
            ("truncated", good.bytes[..good.bytes.len() / 2].to_vec(), stamped(&good.bytes[..good.bytes.len() / 2])),
            ("no stamp", good.bytes.clone(), None),
            ("another packer", good.bytes.clone(), Some(good_stamp.replace("zip-", "zip-0.0.0-"))),
            ("stamp of another zip", good.bytes.clone(), Some(stamp(&KEY, &[0; 32]))),
            ("stamp of another zip, its digest rewritten", good.bytes.clone(), Some(other_zip)),
            ("another user's key", good.bytes.clone(), Some(stamp(&Key([8; 32]), &good.sha256))),
            ("the older, unsigned stamp", good.bytes.clone(), Some(unsigned)),
        ];
        for (what, bytes, stamp_text) in cases {
            write(&bytes, stamp_text);
            let p = package_reusing(d.path(), Previous::load(&zip, &KEY).ok().as_ref()).unwrap();
            assert_eq!(p.bytes, good.bytes, "{what}");
            assert_eq!(p.reused_files, 0, "{what}");
        }
        std::fs::remove_file(&zip).unwrap();
        assert!(Previous::load(&zip, &KEY).is_err());
    }

    #[test]
    fn hmac_sha256_gives_rfc_4231_vectors() {
        let cases: [(Vec<u8>, &[u8], &str); 3] = [
            // Test cases 1, 2 and 6 (a key longer than a block is hashed first).
            (vec![0x0b; 20], b"Hi There", "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"),
            (
                b"Jefe".to_vec(),
                b"what do ya want for nothing?",
                "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843",
            ),
            (
                vec![0xaa; 131],
                b"Test Using Larger Than Block-Size Key - Hash Key First",
                "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54",
            ),
        ];
        for (key, data, mac) in cases {
            assert_eq!(hex(&hmac_sha256(&key, data)), mac);
        }
    }

    #[test]
    fn the_key_is_made_once_private_and_refused_when_others_can_read_it() {
        use std::os::unix::fs::PermissionsExt;
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("state/lambda-layers/packer.key");
        let made = Key::load_or_create(&path).unwrap();
        let meta = std::fs::metadata(&path).unwrap();
        assert_eq!((meta.len(), meta.permissions().mode() & 0o777), (32, 0o600));
        assert_eq!(Key::load_or_create(&path).unwrap().0, made.0, "the second use reads the same key");
        assert_eq!(std::fs::read_dir(path.parent().unwrap()).unwrap().count(), 1, "no temporary file is left");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(Key::load_or_create(&path).is_err());
        // A folder that cannot be made: no key, an error saying why.
        std::fs::write(d.path().join("file"), "").unwrap();
        let err = format!("{:#}", Key::load_or_create(&d.path().join("file/lambda-layers/packer.key")).err().unwrap());
        assert!(err.contains("file/lambda-layers"), "{err}");
    }

    #[test]
    fn packer_names_the_locked_crates() {
        let lock = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../Cargo.lock")).unwrap();
        for name in ["zip", "flate2", "zlib-rs"] {
            let header = format!("name = \"{name}\"\nversion = \"");
            let at = lock.find(&header).unwrap_or_else(|| panic!("{name} is not in Cargo.lock")) + header.len();
            let version = &lock[at..at + lock[at..].find('"').unwrap()];
            assert!(
                PACKER.split(' ').any(|w| w == format!("{name}-{version}")),
                "Cargo.lock has {name} {version}: compressed bytes may differ, so bump reuse::PACKER (now {PACKER:?})"
            );
        }
    }

    #[test]
    fn packer_output_is_pinned() {
        // The packer's bytes for a fixed tree: a change here means entries compressed by
        // the previous packer must not be reused, so bump PACKER with this digest.
        let d = tree();
        let hex: String = package(d.path()).unwrap().sha256.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(
            (PACKER, hex.as_str()),
            (PACKER, "3a0ae1a75e13395006c5cd8ff7caf75dd64db1e00db680c7177f816910463393"),
            "the packer's output changed: bump reuse::PACKER and this digest"
        );
    }
}
