//! Starting over. When two of three voters lose their data dirs at once, the survivor's replica
//! set can never reach a quorum again; the fresh replicas form a new set. The survivor's Raft
//! log belongs to the old set and conflicts with the new one's, so it must not be replicated
//! into: the survivor deletes its Raft state and re-executes itself, coming back as a new
//! incarnation that joins the new set. Its shard data is soft state and is scraped again.

use super::Ha;
use crate::peer::wire::Info;
use coordinator::raft::{DB_FILE, NODE_ID_FILE};

impl Ha {
    /// Whether `answers` show a replica set with a leader that this replica's Raft membership
    /// does not know: another set formed while this one lost its quorum for good.
    pub(super) fn foreign_leader<'a>(&self, answers: &'a [Info]) -> Option<&'a Info> {
        answers.iter().find(|info| {
            info.initialized
                && info.quorum
                && info
                    .leader
                    .as_ref()
                    .is_some_and(|(leader, _)| !self.in_membership(*leader))
        })
    }

    /// Whether every shard this replica scrapes holds two points for each of its nodes' pods
    /// (servable) or no node at all.
    fn scraped_shards_servable(&self) -> bool {
        (0..self.shards.shards)
            .filter(|&s| self.shards.is_scraping(s))
            .all(|s| {
                let store = self.shards.stores[s as usize].read().expect("store lock");
                let (held, _) = store.held_counts();
                held == 0 || store.servable_counts().0 == held
            })
    }

    /// Deletes this replica's Raft state and re-executes the process with the same arguments
    /// (same pid, so a supervisor sees no exit); exits with 70 if that fails.
    pub(super) async fn start_over(&self, reason: &str) -> ! {
        tracing::warn!(
            reason,
            "this replica's Raft log belongs to a replica set that cannot recover: deleting it and \
             restarting as a new incarnation"
        );
        let dir = &self.config.data_dir;
        for file in [DB_FILE, NODE_ID_FILE] {
            if let Err(e) = std::fs::remove_file(dir.join(file))
                && e.kind() != std::io::ErrorKind::NotFound
            {
                tracing::error!(file, error = %e, "cannot delete Raft state; exiting");
                std::process::exit(70);
            }
        }
        crate::listeners::restart(std::env::args_os().skip(1).collect()).await
    }

    /// The replica set was formed with `shards` shards and this replica was started with
    /// another `--shards`: nodes would hash to other shards here than on the other replicas. It
    /// re-executes itself with the set's count (nothing is scraped before the map is known, so
    /// nothing is lost); an operator changes the count only by forming a new set.
    pub(super) async fn adopt_shard_count(&self, shards: u32) -> ! {
        tracing::warn!(
            flag = self.shards.shards,
            set = shards,
            "--shards differs from the shard count the replica set was formed with: restarting with the set's"
        );
        crate::listeners::restart(with_shards(std::env::args_os().skip(1), shards)).await
    }
}

/// This process's arguments with every `--shards` replaced by `--shards=<shards>`.
fn with_shards(args: impl Iterator<Item = std::ffi::OsString>, shards: u32) -> Vec<std::ffi::OsString> {
    let mut out = Vec::new();
    let mut skip_value = false;
    for arg in args {
        if std::mem::take(&mut skip_value) {
            continue;
        }
        match arg.to_str() {
            Some("--shards") => skip_value = true,
            Some(a) if a.starts_with("--shards=") => {}
            _ => out.push(arg),
        }
    }
    out.push(format!("--shards={shards}").into());
    out
}

/// How often a replica without a quorum looks for a replica set that formed without it.
pub const ORPHAN_CHECK_INTERVAL: std::time::Duration = std::time::Duration::from_secs(2);

/// While this replica has no quorum, asks its peers whether a replica set it does not know has
/// a leader; if so, its own set is gone and it starts over to join that one.
pub async fn orphan_watch(ha: std::sync::Arc<Ha>) {
    loop {
        tokio::time::sleep(ORPHAN_CHECK_INTERVAL).await;
        if !ha.is_degraded() || !ha.in_cluster() {
            continue;
        }
        let answers = super::formation::peer_infos(&ha, false).await;
        let Some(info) = ha.foreign_leader(&answers) else {
            continue;
        };
        if !info.map.is_initialized() {
            continue;
        }
        // Its points are the only current copy of shards the new set has not scraped twice yet:
        // once they give a rate (or after a few intervals), hand them over.
        let deadline = std::time::Instant::now() + 3 * ha.resolution;
        while !ha.scraped_shards_servable() && std::time::Instant::now() < deadline {
            tokio::time::sleep(super::CONTROL_INTERVAL).await;
        }
        ha.hand_over_all(&info.map).await;
        let reason = format!(
            "{} follows a leader this replica's Raft membership does not know",
            info.name
        );
        ha.start_over(&reason).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<std::ffi::OsString> {
        list.iter().map(|a| a.into()).collect()
    }

    #[test]
    fn every_shards_flag_is_replaced_by_the_sets_count() {
        let given = args(&["--peers=a=x:1", "--shards", "12", "--shards=7", "-v"]);
        assert_eq!(
            with_shards(given.into_iter(), 256),
            args(&["--peers=a=x:1", "-v", "--shards=256"])
        );
        assert_eq!(with_shards(args(&[]).into_iter(), 3), args(&["--shards=3"]));
    }
}
