//! Where the clip's bytes go: [`Output`] (a file, stdout, nowhere) and the open [`Sink`] that
//! writes them (a file atomically: beside its destination, renamed into place on success).

use std::io::Write;
use std::path::PathBuf;

use super::error::PlayError;

/// Bytes read from the stream at a time, and the file's write buffer.
pub(crate) const CHUNK: usize = 256 * 1024;

/// Where the clip goes.
pub enum Output {
    /// A file, written atomically (temporary file beside it, renamed on success).
    File(PathBuf),
    /// Standard output (to pipe into a player).
    Stdout,
    /// Nowhere: bytes are counted (benchmarks).
    Discard,
}

/// An open output.
pub(crate) enum Sink {
    File(crate::output::AtomicFile, std::io::BufWriter<std::fs::File>),
    Stdout(std::io::Stdout),
    Discard,
}

impl Sink {
    /// Opens `output` (a file is created beside its destination).
    pub(crate) fn open(output: &Output) -> Result<Sink, PlayError> {
        Ok(match output {
            Output::File(p) => {
                let mut f = crate::output::AtomicFile::create(p)
                    .map_err(|e| PlayError::Output(format!("{e:#}")))?;
                let w = f
                    .file()
                    .try_clone()
                    .map_err(|e| PlayError::Output(e.to_string()))?;
                Sink::File(f, std::io::BufWriter::with_capacity(CHUNK, w))
            }
            Output::Stdout => Sink::Stdout(std::io::stdout()),
            Output::Discard => Sink::Discard,
        })
    }

    /// Writes the next bytes.
    pub(crate) fn write(&mut self, b: &[u8]) -> Result<(), PlayError> {
        let r = match self {
            Sink::File(_, w) => w.write_all(b),
            Sink::Stdout(s) => s.write_all(b),
            Sink::Discard => Ok(()),
        };
        r.map_err(|e| PlayError::Output(e.to_string()))
    }

    /// Flushes; a file is renamed into place. A sink dropped unfinished leaves no file.
    pub(crate) fn finish(self) -> Result<(), PlayError> {
        match self {
            Sink::File(f, mut w) => {
                w.flush().map_err(|e| PlayError::Output(e.to_string()))?;
                drop(w);
                f.commit().map_err(|e| PlayError::Output(format!("{e:#}")))
            }
            Sink::Stdout(mut s) => s.flush().map_err(|e| PlayError::Output(e.to_string())),
            Sink::Discard => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_appears_whole_on_finish_only() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("clip.mp4");
        let mut sink = Sink::open(&Output::File(path.clone())).unwrap();
        sink.write(b"abc").unwrap();
        sink.write(b"def").unwrap();
        assert!(!path.exists(), "written before it is finished");
        sink.finish().unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"abcdef");
    }

    #[test]
    fn an_unfinished_file_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("clip.mp4");
        let mut sink = Sink::open(&Output::File(path.clone())).unwrap();
        sink.write(b"partial").unwrap();
        drop(sink);
        assert!(!path.exists());
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            0,
            "a temporary file was left"
        );
    }

    #[test]
    fn discard_takes_everything() {
        let mut sink = Sink::open(&Output::Discard).unwrap();
        sink.write(&[0u8; 1024]).unwrap();
        sink.finish().unwrap();
    }

    #[test]
    fn an_unwritable_directory_is_an_output_error() {
        let path = PathBuf::from("/nonexistent-guardian-dir/clip.mp4");
        assert!(matches!(
            Sink::open(&Output::File(path)),
            Err(PlayError::Output(_))
        ));
    }
}
