//! The replica's Raft node id, persisted next to its Raft storage.
//!
//! A node id names one incarnation: the vote and log in `raft.redb` belong to it. A replica whose
//! storage is wiped must not come back under its old id, or it could vote twice in a term it
//! already voted in (Raft paper §5.2). So the id is drawn at random the first time, kept in
//! `<dir>/node-id`, and lost together with the storage. Wipe the whole directory, never
//! `raft.redb` alone.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::Path;

/// The file holding the node id, in decimal.
pub const NODE_ID_FILE: &str = "node-id";

/// Returns this replica's node id and whether it was just created (`true`: a new incarnation
/// with empty storage). Reads `<dir>/node-id`; if it is missing, creates `dir`, draws a random
/// nonzero id and writes it atomically (temporary file, fsync, rename, fsync of `dir`).
///
/// Call it before [`open`](super::open), on the same directory.
pub fn node_identity(dir: &Path) -> io::Result<(u64, bool)> {
    let path = dir.join(NODE_ID_FILE);
    match fs::read_to_string(&path) {
        Ok(text) => parse(&text).map(|id| (id, false)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            fs::create_dir_all(dir)?;
            let id = random_id()?;
            write_atomically(dir, id)?;
            tracing::info!(node_id = id, dir = %dir.display(), "new replica incarnation");
            Ok((id, true))
        }
        Err(e) => Err(e),
    }
}

fn parse(text: &str) -> io::Result<u64> {
    match text.trim().parse::<u64>() {
        Ok(id) if id != 0 => Ok(id),
        _ => Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{NODE_ID_FILE} does not hold a nonzero u64: {:?}", text.trim()),
        )),
    }
}

fn random_id() -> io::Result<u64> {
    loop {
        let id = getrandom::u64().map_err(|e| io::Error::other(e.to_string()))?;
        if id != 0 {
            return Ok(id);
        }
    }
}

fn write_atomically(dir: &Path, id: u64) -> io::Result<()> {
    let tmp = dir.join(format!("{NODE_ID_FILE}.tmp"));
    let mut file = File::create(&tmp)?;
    writeln!(file, "{id}")?;
    file.sync_all()?;
    drop(file);
    fs::rename(&tmp, dir.join(NODE_ID_FILE))?;
    // The rename is durable only once the directory entry is.
    #[cfg(unix)]
    File::open(dir)?.sync_all()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_zero_and_garbage() {
        assert!(parse("0\n").is_err());
        assert!(parse("abc").is_err());
        assert_eq!(parse(" 42\n").unwrap(), 42);
    }
}
