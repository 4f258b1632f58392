//! The openraft type configuration and the names of the messages the Raft network carries.
//!
//! The log carries [`Command`]s; applying one yields a [`CommandOutcome`]. Node ids are the
//! [`MemberId`](crate::shard_map::MemberId) numbers (`u64`), and nodes carry their peer address
//! in a [`BasicNode`]. Every request, response and error below derives serde (openraft's `serde`
//! feature), so the network layer can send them with `bincode::serialize` as they are.

use std::io::Cursor;

use openraft::BasicNode;
use serde::{Deserialize, Serialize};

use crate::shard_map::{ApplyError, Command, Response};

openraft::declare_raft_types!(
    /// The openraft type configuration of the coordinator.
    pub TypeConfig:
        D = Command,
        R = CommandOutcome,
        NodeId = NodeId,
        Node = BasicNode,
        Entry = openraft::Entry<TypeConfig>,
        SnapshotData = Cursor<Vec<u8>>,
        AsyncRuntime = openraft::TokioRuntime,
);

/// A Raft node id; the same number as the member's [`MemberId`](crate::shard_map::MemberId).
pub type NodeId = u64;

/// What applying one log entry produced, returned to the `client_write` caller.
///
/// `Default` is [`CommandOutcome::NoOp`], what blank and membership entries produce.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum CommandOutcome {
    /// The entry carried no command (a leader's blank entry or a membership change).
    #[default]
    NoOp,
    /// The command was applied; [`Response::changed`] says whether the map changed.
    Applied(Response),
    /// The command was rejected and the map is unchanged. Committed all the same: every replica
    /// rejects it identically.
    Rejected(ApplyError),
}

impl CommandOutcome {
    /// The command's result; `None` for an entry that carried no command.
    pub fn result(&self) -> Option<Result<Response, ApplyError>> {
        match self {
            Self::NoOp => None,
            Self::Applied(response) => Some(Ok(*response)),
            Self::Rejected(error) => Some(Err(error.clone())),
        }
    }
}

impl From<Result<Response, ApplyError>> for CommandOutcome {
    fn from(result: Result<Response, ApplyError>) -> Self {
        match result {
            Ok(response) => Self::Applied(response),
            Err(error) => Self::Rejected(error),
        }
    }
}

/// A running Raft node of the coordinator.
pub type Raft = openraft::Raft<TypeConfig>;
/// A log entry.
pub type Entry = openraft::Entry<TypeConfig>;
/// A vote (term and candidate), as persisted by the log store.
pub type Vote = openraft::Vote<NodeId>;
/// A log id (leader and index).
pub type LogId = openraft::LogId<NodeId>;
/// Membership with the log id that introduced it, as kept by the state machine.
pub type StoredMembership = openraft::StoredMembership<NodeId, BasicNode>;
/// A snapshot's metadata.
pub type SnapshotMeta = openraft::SnapshotMeta<NodeId, BasicNode>;
/// A storage failure as openraft reports it.
pub type StorageError = openraft::StorageError<NodeId>;

/// Replicates log entries; also the leader's heartbeat.
pub type AppendEntriesRequest = openraft::raft::AppendEntriesRequest<TypeConfig>;
/// The follower's answer to [`AppendEntriesRequest`].
pub type AppendEntriesResponse = openraft::raft::AppendEntriesResponse<NodeId>;
/// Asks for a vote in an election.
pub type VoteRequest = openraft::raft::VoteRequest<NodeId>;
/// The answer to a [`VoteRequest`].
pub type VoteResponse = openraft::raft::VoteResponse<NodeId>;
/// One chunk of a snapshot sent to a lagging follower.
pub type InstallSnapshotRequest = openraft::raft::InstallSnapshotRequest<TypeConfig>;
/// The answer to an [`InstallSnapshotRequest`].
pub type InstallSnapshotResponse = openraft::raft::InstallSnapshotResponse<NodeId>;
/// The result of a `client_write`: the entry's log id and its [`CommandOutcome`].
pub type ClientWriteResponse = openraft::raft::ClientWriteResponse<TypeConfig>;

/// A failure of the remote Raft node while handling append-entries or vote
/// (`APIError | Fatal`); what the receiving side sends back.
pub type RaftError<E = openraft::error::Infallible> = openraft::error::RaftError<NodeId, E>;
/// The remote failure of an install-snapshot request.
pub type InstallSnapshotError = RaftError<openraft::error::InstallSnapshotError>;
/// An RPC failure as the sending side reports it to openraft (timeout, unreachable, network or
/// remote error).
pub type RpcError<E = openraft::error::Infallible> = openraft::error::RPCError<NodeId, BasicNode, RaftError<E>>;
/// Why a `client_write` failed: not the leader (forward to it), or the node is shutting down.
pub type ClientWriteError = RaftError<openraft::error::ClientWriteError<NodeId, BasicNode>>;

#[cfg(test)]
mod tests {
    use openraft::testing::log_id;

    use super::*;
    use crate::shard_map::MemberId;

    /// The network layer sends these with bincode 1; they must come back equal.
    #[test]
    fn network_messages_round_trip_through_bincode() {
        let request = AppendEntriesRequest {
            vote: Vote::new(2, 1),
            prev_log_id: Some(log_id(1, 1, 4)),
            entries: vec![Entry {
                log_id: log_id(2, 1, 5),
                payload: openraft::EntryPayload::Normal(Command::RemoveMember(MemberId(3))),
            }],
            leader_commit: Some(log_id(1, 1, 4)),
        };
        let bytes = bincode::serialize(&request).unwrap();
        let back: AppendEntriesRequest = bincode::deserialize(&bytes).unwrap();
        assert_eq!(back.entries, request.entries);
        assert_eq!(back.vote, request.vote);

        let reply: Result<AppendEntriesResponse, RaftError> = Ok(AppendEntriesResponse::Success);
        let bytes = bincode::serialize(&reply).unwrap();
        let back: Result<AppendEntriesResponse, RaftError> = bincode::deserialize(&bytes).unwrap();
        assert_eq!(back.unwrap(), AppendEntriesResponse::Success);

        let outcome = CommandOutcome::Rejected(ApplyError::UnknownMember(MemberId(3)));
        let bytes = bincode::serialize(&outcome).unwrap();
        assert_eq!(bincode::deserialize::<CommandOutcome>(&bytes).unwrap(), outcome);
    }
}
