//! The file sink: appends each batch as JSON lines.

use std::fs::{File, OpenOptions};
use std::io::Write;

use super::writer::{SinkWriter, WriteError};
use crate::item::Item;

/// Opens a sink file for appending, creating it and its folder.
pub(super) fn append_at(path: &std::path::Path) -> std::io::Result<File> {
    if let Some(dir) = path.parent()
        && !dir.as_os_str().is_empty()
    {
        std::fs::create_dir_all(dir)?;
    }
    OpenOptions::new().create(true).append(true).open(path)
}
pub(super) struct FileWriter {
    pub(super) file: File,
    pub(super) buf: Vec<u8>,
}

impl SinkWriter for FileWriter {
    fn write(&mut self, items: &[Item]) -> Result<(), WriteError> {
        self.buf.clear();
        for item in items {
            self.buf
                .extend_from_slice(item.payload.to_line().as_bytes());
            self.buf.push(b'\n');
        }
        self.file
            .write_all(&self.buf)
            .and_then(|()| self.file.flush())
            .map_err(|e| WriteError::Outage(format!("write failed: {e}")))
    }
}
