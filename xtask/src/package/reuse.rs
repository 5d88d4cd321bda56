//! Reuse of the previous zip's compressed entries: a file whose bytes equal those of the
//! same-named entry in the unit's previous zip is copied from it raw instead of deflated
//! again. Only a zip this same packer made is used (a stamp beside it names the packer and
//! the zip's sha256), and only after the old entry was inflated and compared byte for
//! byte, so the new zip is exactly the one a fresh compress gives. Anything unexpected
//! (no stamp, another packer, a changed, truncated or corrupt zip) means no reuse.

use std::io::Cursor;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use sha2::{Digest, Sha256};
use zip::{CompressionMethod, ZipArchive};

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

/// The stamp's text for a zip this packer made with digest `sha256`.
pub fn stamp(sha256: &[u8; 32]) -> String {
    let hex: String = sha256.iter().map(|b| format!("{b:02x}")).collect();
    format!("{PACKER}\n{hex}\n")
}

/// The previous zip of a unit, read into memory, when this packer made it.
pub struct Previous {
    archive: ZipArchive<Cursor<Arc<[u8]>>>,
    bytes: Arc<[u8]>,
}

impl Previous {
    /// The zip at `zip` when its stamp names this packer and its sha256; else `None`.
    pub fn load(zip: &Path) -> Option<Previous> {
        let stamp_text = std::fs::read_to_string(stamp_path(zip)).ok()?;
        let bytes: Arc<[u8]> = std::fs::read(zip).ok()?.into();
        if stamp_text != stamp(&Sha256::digest(&bytes).into()) {
            return None;
        }
        Some(Previous { archive: ZipArchive::new(Cursor::new(bytes.clone())).ok()?, bytes })
    }

    /// An archive reader of its own for one thread.
    pub(super) fn reader(&self) -> Reader {
        Reader { archive: self.archive.clone(), bytes: self.bytes.clone() }
    }
}

/// One thread's reader of the previous zip.
pub(super) struct Reader {
    archive: ZipArchive<Cursor<Arc<[u8]>>>,
    bytes: Arc<[u8]>,
}

impl Reader {
    /// The index of the previous entry named `name` holding exactly `data` as a regular
    /// file: same size and CRC-32, then its bytes (inflated when deflated) compared with
    /// `data`, the compressed ones all used. Anything else is no match.
    pub(super) fn matching(&mut self, name: &str, data: &[u8]) -> Option<usize> {
        let index = self.archive.index_for_name(name)?;
        let (method, start, len) = {
            let f = self.archive.by_index_raw(index).ok()?;
            let regular = f.unix_mode().is_some_and(|m| m & 0o170000 == 0o100000);
            if !regular || f.encrypted() || f.size() != data.len() as u64 {
                return None;
            }
            let mut crc = flate2::Crc::new();
            crc.update(data);
            if f.crc32() != crc.sum() {
                return None;
            }
            (f.compression(), usize::try_from(f.data_start()?).ok()?, usize::try_from(f.compressed_size()).ok()?)
        };
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
        same.then_some(index)
    }

    /// The previous entry `index`, for a raw copy.
    pub(super) fn raw(&mut self, index: usize) -> zip::result::ZipResult<zip::read::ZipFile<'_, Cursor<Arc<[u8]>>>> {
        self.archive.by_index_raw(index)
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

    /// Packs `root` as the build does: the zip and its stamp into `dist`, reusing the
    /// previous zip there.
    fn build(root: &Path, dist: &Path) -> Packaged {
        let zip = dist.join("l.zip");
        let previous = Previous::load(&zip);
        let p = package_reusing(root, previous.as_ref()).unwrap();
        std::fs::write(&zip, &p.bytes).unwrap();
        std::fs::write(stamp_path(&zip), stamp(&p.sha256)).unwrap();
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
        std::fs::write(stamp_path(&zip), stamp(&Sha256::digest(&bytes).into())).unwrap();
        let again = build_equals_fresh(d.path(), dist.path());
        assert_eq!(again.reused_files, again.file_count - 2);
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
        let stamped = |bytes: &[u8]| Some(stamp(&Sha256::digest(bytes).into()));
        let cases: Vec<(&str, Vec<u8>, Option<String>)> = vec![
            ("garbage", b"not a zip at all".repeat(100), stamped(&b"not a zip at all".repeat(100))),
            ("truncated", good.bytes[..good.bytes.len() / 2].to_vec(), stamped(&good.bytes[..good.bytes.len() / 2])),
            ("no stamp", good.bytes.clone(), None),
            ("another packer", good.bytes.clone(), Some(stamp(&good.sha256).replace("zip-", "zip-0.0.0-"))),
            ("stamp of another zip", good.bytes.clone(), Some(stamp(&[0; 32]))),
        ];
        for (what, bytes, stamp_text) in cases {
            write(&bytes, stamp_text);
            let p = package_reusing(d.path(), Previous::load(&zip).as_ref()).unwrap();
            assert_eq!(p.bytes, good.bytes, "{what}");
            assert_eq!(p.reused_files, 0, "{what}");
        }
        std::fs::remove_file(&zip).unwrap();
        assert!(Previous::load(&zip).is_none());
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
