//! Every file nest writes goes through here (reports, `nest.yaml`, the git hook), so that a reader never sees half
//! a file and a planted link or a device never turns one write into the overwrite of something else.
//!
//! A path is first *classified* ([`check`]), before any load: `-` is standard output; a name for an open file
//! descriptor (`/dev/stdout`, `/dev/stderr`, `/dev/fd/N`, `/proc/self/fd/N`) is written to that descriptor itself,
//! whatever it is (a pipe, a terminal, a file opened with `>>`: its offset and append mode are kept, nothing is
//! truncated or renamed); a character device (`/dev/null`) is written directly; a regular file, or a path that does not exist yet in an existing
//! folder, is replaced atomically; a directory, a FIFO, a socket or a block device is refused. A symbolic link is
//! followed to the file it names, and that file is replaced (the link stays a link); a link to nothing is refused.
//! An atomic write creates a temporary file with a random name and `O_EXCL` in the target's own folder (the
//! `tempfile` crate), writes and syncs it, then renames it over the target: a link planted under a guessable name
//! cannot redirect the write, and the rename replaces a directory entry, never what it pointed to.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// Where the bytes for one path will go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// `-`: standard output.
    Stdout,
    /// An open file descriptor named by `/dev/stdout`, `/dev/fd/N` or the like, written where it stands.
    Fd(i32),
    /// A character device, opened and written in place.
    Device(PathBuf),
    /// A regular file (existing or not), replaced atomically; links already resolved.
    File(PathBuf),
}

/// Classifies `path` and checks that it can be written, without writing it.
pub fn check(path: &Path) -> io::Result<Target> {
    if path.as_os_str() == "-" {
        return Ok(Target::Stdout);
    }
    if let Some(fd) = fd_name(path) {
        return if fd_is_open(fd) {
            Ok(Target::Fd(fd))
        } else {
            Err(refused("names a file descriptor that is not open"))
        };
    }
    let resolved = resolve(path)?;
    match fs::metadata(&resolved) {
        Ok(meta) if meta.is_file() => {
            probe_folder(&resolved)?;
            Ok(Target::File(resolved))
        }
        Ok(meta) if meta.is_dir() => Err(refused("is a directory: give a file name inside it")),
        Ok(meta) if is_char_device(&meta) => {
            fs::OpenOptions::new().write(true).open(&resolved)?;
            Ok(Target::Device(resolved))
        }
        Ok(_) => Err(refused("is not a regular file (a FIFO, socket or block device): nest writes only files")),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            probe_folder(&resolved)?;
            Ok(Target::File(resolved))
        }
        Err(e) => Err(e),
    }
}

/// Writes `bytes` to `path` (see the module docs); a new file gets the usual mode (0666 less the umask), a
/// replaced one keeps its own.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    write_with_mode(path, bytes, None)
}

/// Writes `bytes` to `path` like [`write_atomic`], and gives the file `mode` (Unix permission bits) before it
/// appears under its name, so no reader sees it with other permissions.
pub fn write_with_mode(path: &Path, bytes: &[u8], mode: Option<u32>) -> io::Result<()> {
    match check(path)? {
        Target::Stdout => {
            let mut out = io::stdout().lock();
            out.write_all(bytes)?;
            out.flush()
        }
        Target::Fd(fd) => write_fd(fd, bytes),
        Target::Device(device) => fs::OpenOptions::new().write(true).open(device)?.write_all(bytes),
        Target::File(file) => replace(&file, bytes, mode),
    }
}

/// The descriptor a path names: `/dev/stdout`, `/dev/stderr`, `/dev/fd/N`, `/proc/self/fd/N`.
pub fn fd_name(path: &Path) -> Option<i32> {
    let text = path.to_str()?;
    match text {
        "/dev/stdout" => Some(1),
        "/dev/stderr" => Some(2),
        _ => text.strip_prefix("/dev/fd/").or_else(|| text.strip_prefix("/proc/self/fd/"))?.parse().ok(),
    }
}

/// Whether `fd` is open in this process (its entry is in the descriptor folder).
fn fd_is_open(fd: i32) -> bool {
    match fd {
        1 | 2 => true,
        _ if fd < 0 => false,
        _ => fs::symlink_metadata(format!("/proc/self/fd/{fd}"))
            .or_else(|_| fs::symlink_metadata(format!("/dev/fd/{fd}")))
            .is_ok(),
    }
}

/// Writes to the descriptor itself, not to a new opening of what it names: a file opened with `>>` is appended
/// to, one opened with `>` is written at its offset, after what nest already printed there.
fn write_fd(fd: i32, bytes: &[u8]) -> io::Result<()> {
    match fd {
        1 => {
            let mut out = io::stdout().lock();
            out.write_all(bytes)?;
            out.flush()
        }
        2 => io::stderr().lock().write_all(bytes),
        _ => write_other_fd(fd, bytes),
    }
}

#[cfg(unix)]
fn write_other_fd(fd: i32, bytes: &[u8]) -> io::Result<()> {
    use std::os::fd::BorrowedFd;
    if !fd_is_open(fd) {
        return Err(refused("names a file descriptor that is not open"));
    }
    // SAFETY: `fd` is open (checked just above) and nest never closes descriptors it did not open, so it stays
    // open while borrowed; the borrow is only duplicated, and the duplicate is closed when dropped.
    let mut file = fs::File::from(unsafe { BorrowedFd::borrow_raw(fd) }.try_clone_to_owned()?);
    file.write_all(bytes)?;
    file.flush()
}

#[cfg(not(unix))]
fn write_other_fd(_fd: i32, _bytes: &[u8]) -> io::Result<()> {
    Err(refused("names a file descriptor, which nest writes only on Unix"))
}

/// Whether the bytes for `target` go to this process's standard output.
pub fn is_stdout(target: &Target) -> bool {
    matches!(target, Target::Stdout | Target::Fd(1))
}

fn replace(path: &Path, bytes: &[u8], mode: Option<u32>) -> io::Result<()> {
    let mut builder = tempfile::Builder::new();
    builder.prefix(".nest-").suffix(".tmp");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        // What `File::create` would give a new file: 0666 less the umask (tempfile's default is 0600).
        builder.permissions(fs::Permissions::from_mode(0o666));
    }
    let mut tmp = builder.tempfile_in(folder(path))?;
    tmp.write_all(bytes)?;
    keep_mode(tmp.as_file(), path, mode)?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

/// Gives the new file `mode`, or else the mode of the file it replaces.
#[cfg(unix)]
fn keep_mode(file: &fs::File, path: &Path, mode: Option<u32>) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    match mode.or_else(|| fs::metadata(path).ok().map(|m| m.permissions().mode() & 0o7777)) {
        Some(mode) => file.set_permissions(fs::Permissions::from_mode(mode)),
        None => Ok(()),
    }
}

#[cfg(not(unix))]
fn keep_mode(_file: &fs::File, _path: &Path, _mode: Option<u32>) -> io::Result<()> {
    Ok(())
}

fn is_char_device(meta: &fs::Metadata) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        meta.file_type().is_char_device()
    }
    #[cfg(not(unix))]
    {
        let _ = meta;
        false
    }
}

/// Follows symbolic links to the path they finally name; a link to nothing is refused.
fn resolve(path: &Path) -> io::Result<PathBuf> {
    match fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_symlink() => fs::canonicalize(path).map_err(|e| match e.kind() {
            io::ErrorKind::NotFound => refused("is a symbolic link to a file that does not exist"),
            _ => e,
        }),
        _ => Ok(path.to_path_buf()),
    }
}

/// Creates (and removes) a randomly named file in the target's folder: the check that the final write can work.
fn probe_folder(path: &Path) -> io::Result<()> {
    let dir = folder(path);
    match fs::metadata(dir) {
        Ok(meta) if !meta.is_dir() => return Err(refused("is inside something that is not a folder")),
        Err(e) => return Err(e),
        Ok(_) => {}
    }
    tempfile::Builder::new().prefix(".nest-write-check-").tempfile_in(dir).map(drop)
}

fn folder(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

fn refused(why: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, why.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_the_file_and_leaves_no_temporary() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.json");
        fs::write(&path, "old").unwrap();
        write_atomic(&path, b"new").unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), "new");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
        assert!(write_atomic(&dir.path().join("missing/r.json"), b"x").is_err());
    }

    /// The names the old code used, planted as links to a victim: a write must never follow them.
    #[cfg(unix)]
    #[test]
    fn planted_links_under_the_old_temporary_names_are_not_followed() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim");
        fs::write(&victim, "precious").unwrap();
        let pid = std::process::id();
        for name in [format!(".r.json.{pid}.tmp"), format!(".nest-write-check.{pid}")] {
            std::os::unix::fs::symlink(&victim, dir.path().join(name)).unwrap();
        }
        let path = dir.path().join("r.json");
        check(&path).unwrap();
        write_atomic(&path, b"report").unwrap();
        assert_eq!(fs::read_to_string(&victim).unwrap(), "precious");
        assert_eq!(fs::read_to_string(&path).unwrap(), "report");
    }

    #[cfg(unix)]
    #[test]
    fn a_symlink_is_written_through_and_stays_a_link() {
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().join("real.json");
        fs::write(&real, "old").unwrap();
        let link = dir.path().join("r.json");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        write_atomic(&link, b"new").unwrap();
        assert!(fs::symlink_metadata(&link).unwrap().file_type().is_symlink());
        assert_eq!(fs::read_to_string(&real).unwrap(), "new");
        let dangling = dir.path().join("d.json");
        std::os::unix::fs::symlink(dir.path().join("nothing"), &dangling).unwrap();
        assert!(check(&dangling).unwrap_err().to_string().contains("does not exist"));
    }

    #[cfg(unix)]
    #[test]
    fn devices_are_written_in_place_and_other_special_files_refused() {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(check(Path::new("/dev/null")).unwrap(), Target::Device("/dev/null".into()));
        write_atomic(Path::new("/dev/null"), b"x").unwrap();
        assert!(fs::metadata("/dev/null").unwrap().permissions().mode() & 0o170000 == 0o020000, "still a device");
        assert_eq!(check(Path::new("-")).unwrap(), Target::Stdout);
        let dir = tempfile::tempdir().unwrap();
        assert!(check(dir.path()).unwrap_err().to_string().contains("is a directory"));
        let fifo = dir.path().join("fifo");
        assert!(std::process::Command::new("mkfifo").arg(&fifo).status().unwrap().success());
        assert!(check(&fifo).unwrap_err().to_string().contains("not a regular file"));
    }

    #[cfg(unix)]
    #[test]
    fn descriptor_names_are_written_to_the_descriptor() {
        assert_eq!(check(Path::new("/dev/stdout")).unwrap(), Target::Fd(1));
        assert_eq!(check(Path::new("/dev/stderr")).unwrap(), Target::Fd(2));
        assert_eq!(check(Path::new("/proc/self/fd/1")).unwrap(), Target::Fd(1));
        assert!(is_stdout(&Target::Fd(1)) && is_stdout(&Target::Stdout) && !is_stdout(&Target::Fd(2)));
        assert_eq!(fd_name(Path::new("/dev/fd/x")), None);
        assert!(check(Path::new("/dev/fd/987654")).unwrap_err().to_string().contains("not open"));
        // A descriptor of a file opened for appending: written after what the file holds, the file not replaced.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log");
        fs::write(&path, "before\n").unwrap();
        let file = fs::OpenOptions::new().append(true).open(&path).unwrap();
        let fd = std::os::fd::AsRawFd::as_raw_fd(&file);
        let name = PathBuf::from(format!("/dev/fd/{fd}"));
        assert_eq!(check(&name).unwrap(), Target::Fd(fd));
        write_atomic(&name, b"after\n").unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), "before\nafter\n");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[cfg(unix)]
    #[test]
    fn a_new_file_gets_the_umask_mode_and_a_replaced_one_keeps_its_own() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.json");
        write_atomic(&path, b"1").unwrap();
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
        let plain = dir.path().join("plain");
        fs::File::create(&plain).unwrap();
        assert_eq!(mode(&path), mode(&plain), "as File::create would make it");
        fs::set_permissions(&path, fs::Permissions::from_mode(0o640)).unwrap();
        write_atomic(&path, b"2").unwrap();
        assert_eq!(mode(&path), 0o640);
        write_with_mode(&path, b"3", Some(0o755)).unwrap();
        assert_eq!(mode(&path), 0o755);
    }
}
