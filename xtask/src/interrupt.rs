//! Ctrl-C handling: whatever is half-made (temporary folders, partial zips, running build
//! containers) or held (publish locks) is registered here while it exists, and removed or
//! released if the user interrupts.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// Work to do on Ctrl-C, such as releasing a lock.
type Cleanup = Box<dyn FnOnce() + Send>;

#[derive(Default)]
struct Pending {
    paths: Vec<PathBuf>,
    containers: Vec<(String, String)>,
    cleanups: Vec<(u64, Cleanup)>,
}

static INTERRUPTED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

static PENDING: Mutex<Pending> =
    Mutex::new(Pending { paths: Vec::new(), containers: Vec::new(), cleanups: Vec::new() });

/// Installs the Ctrl-C (and SIGTERM) handler: it removes what is registered and exits 130.
pub fn install() {
    let _ = ctrlc::set_handler(|| {
        INTERRUPTED.store(true, std::sync::atomic::Ordering::SeqCst);
        let pending = std::mem::take(&mut *PENDING.lock().unwrap_or_else(|e| e.into_inner()));
        for (_, cleanup) in pending.cleanups {
            cleanup();
        }
        for (docker, name) in &pending.containers {
            let _ = std::process::Command::new(docker)
                .args(["rm", "--force", name])
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .status();
        }
        if let Some((docker, _)) = pending.containers.first() {
            sweep_containers(docker);
        }
        for p in &pending.paths {
            remove(p);
        }
        crate::output::error("interrupted; unfinished files and build containers were removed");
        std::process::exit(130);
    });
}

/// A `docker run` hit by Ctrl-C exits at once, but the daemon may still be creating its
/// container, which `--rm` never removes because it never starts: for a moment after the
/// removals above, every container this process named (`xtask-build-<pid>-N`) that
/// appears is removed too.
fn sweep_containers(docker: &str) {
    let filter = format!("name=xtask-build-{}-", std::process::id());
    for _ in 0..10 {
        std::thread::sleep(std::time::Duration::from_millis(150));
        let Ok(out) = std::process::Command::new(docker).args(["ps", "-aq", "--filter", &filter]).output() else {
            return;
        };
        let ids: Vec<String> = String::from_utf8_lossy(&out.stdout).split_whitespace().map(str::to_string).collect();
        if !ids.is_empty() {
            let _ = std::process::Command::new(docker)
                .args(["rm", "--force"])
                .args(&ids)
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .status();
        }
    }
}

/// When the user interrupted, waits for the handler to clean up and exit with 130, so a
/// child that died of the interrupt is not reported as an ordinary failure first.
pub fn wait_if_interrupted() {
    if INTERRUPTED.load(std::sync::atomic::Ordering::SeqCst) {
        loop {
            std::thread::park();
        }
    }
}

/// The list of what is half-made, to register something in. Once interrupted, the
/// handler has taken the list (it sets the flag first, and takes the list under this lock)
/// and is removing what it held: something registered now would outlive the run, so this
/// waits for the handler's exit instead.
fn pending() -> std::sync::MutexGuard<'static, Pending> {
    let guard = PENDING.lock().unwrap_or_else(|e| e.into_inner());
    if INTERRUPTED.load(std::sync::atomic::Ordering::SeqCst) {
        drop(guard);
        loop {
            std::thread::park();
        }
    }
    guard
}

fn remove(p: &Path) {
    if p.is_dir() {
        let _ = std::fs::remove_dir_all(p);
    } else {
        let _ = std::fs::remove_file(p);
    }
}

/// How old a folder left in a work folder must be before [`sweep_stale`] removes it.
pub const STALE_AFTER: std::time::Duration = std::time::Duration::from_secs(24 * 3600);

/// Removes what a killed run (SIGKILL, a power cut) could not: the folders in `dir` (a
/// `dist/.work`, uv's staging folder) untouched for [`STALE_AFTER`]. No build takes that
/// long, and age alone decides, because builds in other containers sharing the folder
/// have process ids this one cannot see.
pub fn sweep_stale(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for e in entries.flatten() {
        let Ok(meta) = e.path().symlink_metadata() else { continue };
        let age = meta.modified().ok().and_then(|t| t.elapsed().ok());
        if meta.is_dir() && age.is_some_and(|a| a > STALE_AFTER) {
            let _ = std::fs::remove_dir_all(e.path());
        }
    }
}

/// A file or folder that is removed when dropped, or when the user interrupts, unless
/// [`TempPath::keep`] was called.
pub struct TempPath {
    path: PathBuf,
    keep: bool,
}

impl TempPath {
    pub fn new(path: PathBuf) -> TempPath {
        pending().paths.push(path.clone());
        TempPath { path, keep: false }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The path was renamed into place: nothing to remove any more.
    pub fn keep(mut self) {
        self.keep = true;
    }
}

/// Keeps `paths` (as [`TempPath::keep`]) before a step Ctrl-C must not undo halfway, such as
/// renaming a zip into place beside a report waiting to follow it. Once interrupted, the
/// handler may be removing them already, so this waits for its exit instead: the step
/// after it runs only while none of them can be removed any more.
pub fn keep_all(paths: impl IntoIterator<Item = TempPath>) {
    let paths: Vec<TempPath> = paths.into_iter().collect();
    pending().paths.retain(|p| !paths.iter().any(|t| &t.path == p));
    for p in paths {
        p.keep();
    }
}

impl Drop for TempPath {
    fn drop(&mut self) {
        PENDING.lock().unwrap_or_else(|e| e.into_inner()).paths.retain(|p| p != &self.path);
        if !self.keep {
            remove(&self.path);
        }
    }
}

/// A running container that is force-removed if the user interrupts.
pub struct Container {
    entry: (String, String),
}

impl Container {
    pub fn new(docker: &str, name: &str) -> Container {
        let entry = (docker.to_string(), name.to_string());
        pending().containers.push(entry.clone());
        Container { entry }
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        PENDING.lock().unwrap_or_else(|e| e.into_inner()).containers.retain(|c| c != &self.entry);
    }
}

/// Work registered to run on Ctrl-C while this value lives.
pub struct OnInterrupt {
    id: u64,
}

/// Runs `f` if the user interrupts before the returned value is dropped.
pub fn on_interrupt(f: impl FnOnce() + Send + 'static) -> OnInterrupt {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let id = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    PENDING.lock().unwrap_or_else(|e| e.into_inner()).cleanups.push((id, Box::new(f)));
    OnInterrupt { id }
}

impl Drop for OnInterrupt {
    fn drop(&mut self) {
        PENDING.lock().unwrap_or_else(|e| e.into_inner()).cleanups.retain(|(id, _)| *id != self.id);
    }
}
