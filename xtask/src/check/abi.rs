//! The ABI audit: compiled files must be built for the target CPU and glibc, and wheel
//! tags must fit the target Python, glibc and architecture.

use std::io::Read;
use std::path::Path;

use anyhow::{Context, Result};
use goblin::elf::header::{machine_to_str, EI_CLASS, ELFCLASS32, EM_AARCH64, EM_X86_64};
use goblin::elf::{Elf, Header};

use crate::check::{Finding, Kind};
use crate::runtime::{Arch, Runtime};

/// Audits the tree `root` (a folder holding `python/`, as a layer zip unpacks) for `runtime` and `arch`.
pub fn audit(root: &Path, runtime: Runtime, arch: Arch) -> Result<Vec<Finding>> {
    let mut findings = Vec::new();
    for entry in walkdir::WalkDir::new(root.join("python")).follow_links(false) {
        let entry = entry.with_context(|| format!("cannot walk {}", root.display()))?;
        if !entry.file_type().is_file() {
            continue; // Symlinks and folders.
        }
        let path = entry.path();
        let message = if is_wheel_file(path) {
            let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
            wheel_problem(&text, runtime, arch)
        } else if is_elf(path)? {
            let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
            elf_problem(&bytes, runtime, arch)
        } else {
            None
        };
        if let Some(message) = message {
            findings.push(Finding::new(Kind::Abi, relative(root, path), message));
        }
    }
    findings.sort_by(|a, b| a.subject.cmp(&b.subject));
    Ok(findings)
}

/// `path` relative to `root`, with `/` separators as inside a zip.
fn relative(root: &Path, path: &Path) -> String {
    let rel = path.strip_prefix(root).unwrap_or(path);
    rel.components().map(|c| c.as_os_str().to_string_lossy()).collect::<Vec<_>>().join("/")
}

fn is_wheel_file(path: &Path) -> bool {
    path.file_name().is_some_and(|n| n == "WHEEL")
        && path.parent().and_then(|p| p.file_name()).is_some_and(|n| n.to_string_lossy().ends_with(".dist-info"))
}

/// Whether the file starts with the ELF magic; reads only its first four bytes.
fn is_elf(path: &Path) -> Result<bool> {
    let mut file = std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let mut magic = [0u8; 4];
    Ok(file.read_exact(&mut magic).is_ok() && &magic == b"\x7fELF")
}

/// What is wrong with an ELF file for the target, if anything.
fn elf_problem(bytes: &[u8], runtime: Runtime, arch: Arch) -> Option<String> {
    let header = match Elf::parse_header(bytes) {
        Ok(h) => h,
        Err(e) => return Some(format!("not a valid ELF file ({e}), the target is {arch}")),
    };
    if let Some(problem) = header_problem(&header, arch) {
        return Some(problem);
    }
    let elf = match Elf::parse(bytes) {
        Ok(elf) => elf,
        Err(e) => return Some(format!("cannot parse ELF file ({e}), the target is {arch}")),
    };
    let (version, name, via) = highest_glibc(&elf)?;
    if (version[0], version.get(1).copied().unwrap_or(0)) <= runtime.glibc {
        return None;
    }
    let via = via.map(|s| format!(" (via {s})")).unwrap_or_default();
    let (major, minor) = runtime.glibc;
    Some(format!("needs {name}{via}, {runtime} runs on {} with glibc {major}.{minor}", runtime.os))
}

/// A 32-bit class or a machine other than `arch`.
fn header_problem(header: &Header, arch: Arch) -> Option<String> {
    let expected = match arch {
        Arch::X86_64 => EM_X86_64,
        Arch::Arm64 => EM_AARCH64,
    };
    let machine = match header.e_machine {
        EM_X86_64 => Arch::X86_64.machine().to_string(),
        EM_AARCH64 => format!("arm64 ({})", Arch::Arm64.machine()),
        other => machine_to_str(other).to_lowercase(),
    };
    if header.e_ident[EI_CLASS] == ELFCLASS32 {
        Some(format!("32-bit ELF built for {machine}, the target is 64-bit {arch}"))
    } else if header.e_machine != expected {
        Some(format!("built for {machine}, the target is {arch}"))
    } else {
        None
    }
}

/// The highest `GLIBC_*` version the file needs: its parts, its name and an undefined
/// symbol that needs it.
fn highest_glibc<'a>(elf: &'a Elf) -> Option<(Vec<u32>, &'a str, Option<&'a str>)> {
    let mut best: Option<(Vec<u32>, &str, u16)> = None;
    for need in elf.verneed.iter().flat_map(|v| v.iter()) {
        for aux in need.iter() {
            let Some(name) = elf.dynstrtab.get_at(aux.vna_name) else { continue };
            let Some(version) = glibc_version(name) else { continue };
            if best.as_ref().is_none_or(|(b, _, _)| version > *b) {
                best = Some((version, name, aux.vna_other));
            }
        }
    }
    let (version, name, index) = best?;
    Some((version, name, symbol_needing(elf, index)))
}

/// The parts of a glibc version name: `GLIBC_2.3.4` is `[2, 3, 4]`.
fn glibc_version(name: &str) -> Option<Vec<u32>> {
    if name == "GLIBC_ABI_DT_RELR" {
        return Some(vec![2, 36]); // Packed relative relocations, supported since glibc 2.36.
    }
    name.strip_prefix("GLIBC_")?.split('.').map(|p| p.parse().ok()).collect()
}

/// The first undefined dynamic symbol bound to version index `index`.
fn symbol_needing<'a>(elf: &'a Elf, index: u16) -> Option<&'a str> {
    let versym = elf.versym.as_ref()?;
    let (_, sym) = versym.iter().zip(elf.dynsyms.iter()).find(|(v, s)| v.version() == index && s.st_shndx == 0)?;
    elf.dynstrtab.get_at(sym.st_name)
}

/// Why no `Tag:` line of a WHEEL file fits the target; `None` when one does or there is none.
fn wheel_problem(text: &str, runtime: Runtime, arch: Arch) -> Option<String> {
    let tags: Vec<&str> = text.lines().filter_map(|l| l.strip_prefix("Tag:")).map(str::trim).collect();
    let problems: Vec<String> = tags.iter().map(|t| tag_problem(t, runtime, arch)).collect::<Option<_>>()?;
    (!problems.is_empty()).then(|| problems.join("; "))
}

/// Why the (possibly compressed) tag `python-abi-platform` does not fit the target.
fn tag_problem(tag: &str, runtime: Runtime, arch: Arch) -> Option<String> {
    let parts: Vec<&str> = tag.split('-').collect();
    let [py, abi, plat] = parts[..] else { return Some(format!("wheel tag {tag} is malformed")) };
    let (pys, abis, plats) = (py.split('.'), abi.split('.'), plat.split('.'));
    let fits = |p: &str, a: &str| python_ok(p, a, runtime) && abi_ok(a, runtime);
    let any_fits = pys.clone().any(|p| abis.clone().any(|a| fits(p, a)));
    let plat_fits = plats.clone().any(|pl| platform_ok(pl, runtime, arch));
    if any_fits && plat_fits {
        None
    } else if !plat_fits {
        let (major, minor) = runtime.glibc;
        let target = format!("manylinux_{major}_{minor}_{}", arch.machine());
        Some(format!("wheel tag {tag} is for {plat}, the target is {target} ({runtime} on {})", runtime.os))
    } else if !pys.clone().any(|p| abis.clone().any(|a| python_ok(p, a, runtime))) {
        let versions: Vec<String> = pys.map(python_version).collect();
        Some(format!("wheel tag {tag} is for Python {}, the target is {runtime}", versions.join(" or ")))
    } else {
        Some(format!("wheel tag {tag} has ABI {abi}, {runtime} takes cp3{}, abi3 or none", runtime.minor))
    }
}

/// `cp312` is `3.12`, `py3` is `3`; other interpreters keep their tag.
fn python_version(tag: &str) -> String {
    match tag.strip_prefix("cp").or_else(|| tag.strip_prefix("py")) {
        Some(d) if d.len() > 1 => format!("{}.{}", &d[..1], &d[1..]),
        Some(d) => d.to_string(),
        None => tag.to_string(),
    }
}

fn python_ok(py: &str, abi: &str, runtime: Runtime) -> bool {
    let minor = |rest: &str| rest.parse::<u32>().ok();
    if py == "py3" {
        true
    } else if let Some(x) = py.strip_prefix("py3").and_then(minor) {
        x <= runtime.minor
    } else if let Some(x) = py.strip_prefix("cp3").and_then(minor) {
        x == runtime.minor || (abi == "abi3" && x <= runtime.minor)
    } else {
        false
    }
}

fn abi_ok(abi: &str, runtime: Runtime) -> bool {
    abi == "none" || abi == "abi3" || abi == format!("cp3{}", runtime.minor)
}

fn platform_ok(plat: &str, runtime: Runtime, arch: Arch) -> bool {
    if plat == "any" {
        return true;
    }
    let Some(family) = plat.strip_suffix(arch.machine()).and_then(|p| p.strip_suffix('_')) else { return false };
    let needs = match family {
        "linux" => return true,
        "manylinux1" => (2, 5),
        "manylinux2010" => (2, 12),
        "manylinux2014" => (2, 17),
        _ => match family.strip_prefix("manylinux_").and_then(|v| v.split_once('_')) {
            Some((a, b)) => match (a.parse(), b.parse()) {
                (Ok(a), Ok(b)) => (a, b),
                _ => return false,
            },
            None => return false,
        },
    };
    needs <= runtime.glibc
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rt(id: &str) -> Runtime {
        Runtime::parse(id).unwrap()
    }

    fn tree(files: &[(&str, &[u8])]) -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        for (path, bytes) in files {
            let path = d.path().join(path);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, bytes).unwrap();
        }
        d
    }

    fn messages(files: &[(&str, &[u8])], runtime: Runtime, arch: Arch) -> Vec<(String, String)> {
        let d = tree(files);
        audit(d.path(), runtime, arch).unwrap().into_iter().map(|f| (f.subject, f.message)).collect()
    }

    fn subjects(d: &tempfile::TempDir) -> Vec<String> {
        audit(d.path(), rt("python3.13"), Arch::X86_64).unwrap().into_iter().map(|f| f.subject).collect()
    }

    /// A header-only little-endian ELF: no program or section headers.
    fn elf_header(class64: bool, machine: u16) -> Vec<u8> {
        let mut h = vec![0x7f, b'E', b'L', b'F', if class64 { 2 } else { 1 }, 1, 1];
        h.resize(16, 0);
        h.extend_from_slice(&3u16.to_le_bytes()); // e_type: ET_DYN
        h.extend_from_slice(&machine.to_le_bytes());
        h.extend_from_slice(&1u32.to_le_bytes()); // e_version
        let (size, rest) = if class64 { (64u16, 24) } else { (52u16, 12) }; // Entry, phoff, shoff.
        h.resize(h.len() + rest + 4, 0); // Those, then e_flags.
        h.extend_from_slice(&size.to_le_bytes()); // e_ehsize
        h.resize(size as usize, 0); // Zero entries of each header table.
        h
    }

    fn wheel(tags: &[&str], runtime: &str, arch: Arch) -> Option<String> {
        let text: String = tags.iter().map(|t| format!("Tag: {t}\n")).collect();
        wheel_problem(&format!("Wheel-Version: 1.0\nRoot-Is-Purelib: false\n{text}"), rt(runtime), arch)
    }

    #[test]
    fn real_x86_64_binary_passes_with_enough_glibc_and_fails_on_arm64() {
        let ls = std::fs::read("/usr/bin/ls").unwrap();
        let files: &[(&str, &[u8])] = &[("python/pkg/data.bin", &ls)];
        let rich = Runtime { glibc: (2, 99), ..rt("python3.13") };
        assert_eq!(messages(files, rich, Arch::X86_64), vec![]);
        let found = messages(files, rich, Arch::Arm64);
        assert_eq!(found, vec![("python/pkg/data.bin".into(), "built for x86_64, the target is arm64".into())]);
    }

    #[test]
    fn names_the_highest_glibc_version_above_the_runtime() {
        // Debian 12's bash needs GLIBC_2.36 (as `readelf -V /bin/bash` shows).
        let bash = std::fs::read("/bin/bash").unwrap();
        let found = messages(&[("python/pkg/_x.so", &bash)], rt("python3.11"), Arch::X86_64);
        assert_eq!(found.len(), 1, "{found:?}");
        let message = &found[0].1;
        assert!(message.starts_with("needs GLIBC_2.36 (via "), "{message}");
        assert!(message.ends_with("python3.11 runs on Amazon Linux 2 with glibc 2.26"), "{message}");
        assert_eq!(elf_problem(&bash, Runtime { glibc: (2, 36), ..rt("python3.13") }, Arch::X86_64), None);
        assert!(elf_problem(&bash, rt("python3.13"), Arch::X86_64).unwrap().contains("glibc 2.34"));
    }

    #[test]
    fn hand_made_headers_are_checked_by_machine_and_class() {
        let arm = elf_header(true, EM_AARCH64);
        assert_eq!(elf_problem(&arm, rt("python3.13"), Arch::Arm64), None);
        assert_eq!(elf_problem(&elf_header(true, EM_X86_64), rt("python3.10"), Arch::X86_64), None);
        let found = elf_problem(&arm, rt("python3.13"), Arch::X86_64).unwrap();
        assert_eq!(found, "built for arm64 (aarch64), the target is x86_64");
        let i386 = elf_problem(&elf_header(false, 3), rt("python3.13"), Arch::X86_64).unwrap();
        assert_eq!(i386, "32-bit ELF built for 386, the target is 64-bit x86_64");
        let broken = elf_problem(b"\x7fELF\x02\x01", rt("python3.13"), Arch::X86_64).unwrap();
        assert!(broken.starts_with("not a valid ELF file"), "{broken}");
    }

    #[test]
    fn detects_elf_by_content_skips_symlinks_and_sorts() {
        let arm = elf_header(true, EM_AARCH64);
        let d = tree(&[("python/b/x.so", b"not an elf"), ("python/z/data.bin", &arm), ("python/a/tiny", b"\x7f")]);
        std::os::unix::fs::symlink("/usr/bin/ls", d.path().join("python/a/link.so")).unwrap();
        assert_eq!(subjects(&d), vec!["python/z/data.bin"]);
        let wheel = b"Tag: cp313-cp313-musllinux_1_1_x86_64\n";
        let d = tree(&[("python/z/m.so", &arm), ("python/a-1.0.dist-info/WHEEL", wheel), ("python/m/n.so", &arm)]);
        assert_eq!(subjects(&d), vec!["python/a-1.0.dist-info/WHEEL", "python/m/n.so", "python/z/m.so"]);
    }

    #[test]
    fn pure_and_compressed_wheel_tags_fit_every_target() {
        assert_eq!(wheel(&["py3-none-any"], "python3.10", Arch::Arm64), None);
        assert_eq!(wheel(&["py2.py3-none-any"], "python3.14", Arch::X86_64), None);
        assert_eq!(wheel(&["py2-none-any", "py3-none-any"], "python3.12", Arch::X86_64), None);
        assert!(wheel(&["py2-none-any"], "python3.12", Arch::X86_64).unwrap().contains("is for Python 2"));
        assert_eq!(wheel(&[], "python3.12", Arch::X86_64), None);
    }

    #[test]
    fn manylinux_wheel_tags_match_python_glibc_and_arch() {
        let numpy = ["cp313-cp313-manylinux_2_17_x86_64.manylinux2014_x86_64"];
        assert_eq!(wheel(&numpy, "python3.13", Arch::X86_64), None);
        let old = wheel(&["cp312-cp312-manylinux_2_17_x86_64"], "python3.13", Arch::X86_64).unwrap();
        assert_eq!(old, "wheel tag cp312-cp312-manylinux_2_17_x86_64 is for Python 3.12, the target is python3.13");
        assert!(wheel(&numpy, "python3.12", Arch::X86_64).unwrap().contains("is for Python 3.13"));
        let arm = wheel(&numpy, "python3.13", Arch::Arm64).unwrap();
        assert!(arm.contains("the target is manylinux_2_34_aarch64"), "{arm}");
        assert_eq!(wheel(&["cp39-abi3-manylinux_2_28_aarch64"], "python3.13", Arch::Arm64), None);
        assert!(wheel(&["cp39-abi3-manylinux_2_28_aarch64"], "python3.11", Arch::Arm64).is_some());
        let new = wheel(&["cp313-cp313-manylinux_2_35_x86_64"], "python3.13", Arch::X86_64).unwrap();
        assert!(new.contains("is for manylinux_2_35_x86_64, the target is manylinux_2_34_x86_64"), "{new}");
        assert_eq!(wheel(&["cp313-cp313-linux_x86_64"], "python3.13", Arch::X86_64), None);
        assert_eq!(wheel(&["cp310-cp310-manylinux1_x86_64"], "python3.10", Arch::X86_64), None);
    }

    #[test]
    fn other_platforms_and_abis_are_rejected() {
        for tag in ["cp313-cp313-musllinux_1_1_x86_64", "cp313-cp313-macosx_11_0_arm64", "cp313-cp313-win_amd64"] {
            assert!(wheel(&[tag], "python3.13", Arch::X86_64).unwrap().contains(" is for "), "{tag}");
        }
        let t = wheel(&["cp313-cp313t-manylinux_2_17_x86_64"], "python3.13", Arch::X86_64).unwrap();
        assert!(t.contains("has ABI cp313t"), "{t}");
        let both = wheel(&["cp312-cp312-linux_x86_64", "cp313-cp313-macosx_11_0_arm64"], "python3.13", Arch::X86_64);
        assert_eq!(both.unwrap().matches("wheel tag").count(), 2);
    }
}
