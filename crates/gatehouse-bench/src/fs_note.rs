//! What the file system under the bench's directories does to a run with the file outbox.
//!
//! On ext4 without a journal the kernel passes over free inodes deleted in the last 5 s (300 s while their
//! inode-table block is dirty), one buffer-cache lookup each, before it reuses one. A run that starts within
//! minutes of another bench run's cleanup (tens of thousands of mail files) bills that walk to the server's file
//! outbox: a quarter of the server's CPU in the seventeenth session's perf (docs/benchmarks.md).

use std::path::Path;

/// The mount that holds `path`, from the text of `/proc/self/mountinfo`: (mount point, file system type, source).
fn mount_of<'m>(mountinfo: &'m str, path: &str) -> Option<(&'m str, &'m str, &'m str)> {
    mountinfo
        .lines()
        .filter_map(|line| {
            let (mount, fs) = line.split_once(" - ")?;
            let point = mount.split(' ').nth(4)?;
            let mut fs = fs.split(' ');
            Some((point, fs.next()?, fs.next()?))
        })
        .filter(|(point, ..)| *point == "/" || path == *point || path.starts_with(&format!("{point}/")))
        .max_by_key(|(point, ..)| point.len())
}

/// A line for the report when `dir` is on ext4 without a journal (no `/proc/fs/jbd2/<device>-*`).
pub fn file_outbox_warning(dir: &Path) -> Option<String> {
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    let path = dir.canonicalize().ok()?;
    let (point, fs_type, source) = mount_of(&mountinfo, path.to_str()?)?;
    if fs_type != "ext4" {
        return None;
    }
    let device = source.rsplit('/').next()?;
    let journals = std::fs::read_dir("/proc/fs/jbd2").ok();
    let journaled = journals.is_some_and(|entries| {
        entries.flatten().any(|e| e.file_name().to_string_lossy().starts_with(&format!("{device}-")))
    });
    (!journaled).then(|| {
        format!(
            "the bench's directory ({}) is on ext4 without a journal ({source} on {point}): a run that starts within \
             about 5 minutes of another bench run's cleanup pays for the kernel's walk past the deleted mail files' \
             inodes (space the runs, or set TMPDIR to a tmpfs and say so)",
            dir.display()
        )
    })
}

#[cfg(test)]
mod tests {
    use super::mount_of;

    const MOUNTINFO: &str = "\
22 27 0:21 / /proc rw,relatime - proc proc rw
27 1 254:0 / / rw,relatime - ext4 /dev/vda rw,discard
25 24 0:23 / /dev/shm rw,relatime - tmpfs tmpfs rw,size=24684092k
30 27 0:30 / /tmpfoo rw,relatime - tmpfs none rw
";

    /// The longest mount point that holds the path wins; a mount point that is only a prefix of a name does not.
    #[test]
    fn the_mount_that_holds_a_path() {
        assert_eq!(mount_of(MOUNTINFO, "/tmp/gatehouse-bench-x"), Some(("/", "ext4", "/dev/vda")));
        assert_eq!(mount_of(MOUNTINFO, "/dev/shm/gatehouse-bench-x"), Some(("/dev/shm", "tmpfs", "tmpfs")));
        assert_eq!(mount_of(MOUNTINFO, "/tmpfoo"), Some(("/tmpfoo", "tmpfs", "none")));
        assert_eq!(mount_of(MOUNTINFO, "/tmpfoobar/x"), Some(("/", "ext4", "/dev/vda")));
        assert_eq!(mount_of("", "/tmp"), None);
    }
}
