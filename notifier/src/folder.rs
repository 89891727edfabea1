//! The mailbox folder: mails written as `.eml` files by one thread of their own.
//!
//! Creating a file takes its directory's lock in the kernel, so files created in one
//! directory by many threads at once are created one at a time anyway, and the waiting
//! threads spin on that lock (a fifth of all CPU time in a 30,000-message burst, with a
//! blocking thread per mail). One writer creates them at the rate the file system allows,
//! and each mail costs one hand-off to it and one back.

use std::io;
use std::path::Path;
use std::sync::mpsc;

use tokio::sync::oneshot;

/// A file to write, and where to say it was.
struct Job {
    name: String,
    bytes: Vec<u8>,
    done: oneshot::Sender<io::Result<()>>,
}

/// The writer of one mailbox folder. Clones share the writer thread, which ends when the
/// last clone is dropped.
#[derive(Clone)]
pub struct Folder {
    jobs: mpsc::Sender<Job>,
}

impl Folder {
    /// Starts the writer of `dir` (which must exist).
    pub fn start(dir: &Path) -> io::Result<Folder> {
        let (jobs, queue) = mpsc::channel::<Job>();
        let dir = dir.to_path_buf();
        std::thread::Builder::new()
            .name("mailbox-folder".into())
            .spawn(move || write_all(&dir, queue))?;
        Ok(Folder { jobs })
    }

    /// Writes `bytes` as a new file `<random>.eml`, and returns once it is written.
    pub async fn write(&self, bytes: Vec<u8>) -> io::Result<()> {
        let name = format!("{}.eml", uuid::Uuid::new_v4());
        let (done, written) = oneshot::channel();
        self.jobs
            .send(Job { name, bytes, done })
            .map_err(|_| stopped())?;
        written.await.map_err(|_| stopped())?
    }
}

fn stopped() -> io::Error {
    io::Error::other("the mailbox folder's writer has stopped")
}

/// Writes each file as it comes, until every [`Folder`] is dropped. A file that cannot be
/// written (a full disk, say) is reported to its sender, which retries later; the writer
/// goes on with the next.
fn write_all(dir: &Path, queue: mpsc::Receiver<Job>) {
    while let Ok(job) = queue.recv() {
        let written = std::fs::write(dir.join(&job.name), &job.bytes);
        // The sender may have given up waiting (its timeout): nothing to tell then.
        let _ = job.done.send(written);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn writes_each_mail_as_a_new_file_and_reports_failures() {
        let dir = std::env::temp_dir().join(format!("tidings-folder-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{e}"));
        let folder = Folder::start(&dir).unwrap_or_else(|e| panic!("{e}"));
        for i in 0..3 {
            let written = folder.write(format!("mail {i}").into_bytes()).await;
            assert!(written.is_ok(), "{written:?}");
        }
        let mut found: Vec<String> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{e}"))
            .filter_map(|e| e.ok())
            .map(|e| std::fs::read_to_string(e.path()).unwrap_or_default())
            .collect();
        found.sort();
        assert_eq!(found, ["mail 0", "mail 1", "mail 2"]);
        // The folder is gone: the write fails with the reason, and the writer goes on.
        std::fs::remove_dir_all(&dir).unwrap_or_else(|e| panic!("{e}"));
        let err = folder.write(b"lost?".to_vec()).await;
        assert!(err.is_err(), "{err:?}");
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{e}"));
        assert!(folder.write(b"again".to_vec()).await.is_ok());
        std::fs::remove_dir_all(&dir).unwrap_or_else(|e| panic!("{e}"));
    }
}
