//! openraft's network over the peer channel: each Raft RPC is one bincode POST to
//! `/peer/v1/raft/...` on the target's peer address; the remote answers with the `Result` its
//! `Raft` returned, so remote Raft errors come back as `RemoteError`. An answer, even a Raft
//! error, shows the member is there (`liveness.rs`).

use super::liveness::Liveness;
use crate::peer::transport::{PeerClient, PeerError};
use crate::peer::wire::path;
use coordinator::raft::TypeConfig;
use coordinator::shard_map::MemberId;
use openraft::BasicNode;
use openraft::error::{InstallSnapshotError, NetworkError, RPCError, RaftError, RemoteError, Unreachable};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse, VoteRequest,
    VoteResponse,
};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::sync::Arc;

pub struct Network {
    pub client: PeerClient,
    /// Told of every member that answered a Raft RPC.
    pub liveness: Arc<Liveness>,
}

pub struct Connection {
    client: PeerClient,
    liveness: Arc<Liveness>,
    target: u64,
    node: BasicNode,
}

impl RaftNetworkFactory<TypeConfig> for Network {
    type Network = Connection;

    async fn new_client(&mut self, target: u64, node: &BasicNode) -> Connection {
        Connection {
            client: self.client.clone(),
            liveness: self.liveness.clone(),
            target,
            node: node.clone(),
        }
    }
}

type Rpc<T, E> = Result<T, RPCError<u64, BasicNode, RaftError<u64, E>>>;

impl Connection {
    async fn call<Req, Resp, E>(&self, path: &str, request: &Req, option: &RPCOption) -> Rpc<Resp, E>
    where
        Req: Serialize,
        Resp: DeserializeOwned,
        E: std::error::Error + DeserializeOwned,
    {
        // The target's member id rides in the path: a new incarnation at the same address
        // refuses RPCs meant for the old one (its log would look reverted to the leader).
        let path = format!("{path}/{}", self.target);
        let answer: Result<Result<Resp, RaftError<u64, E>>, PeerError> = self
            .client
            .call(&self.node.addr, &path, request, option.hard_ttl())
            .await;
        match &answer {
            Ok(_) => self.liveness.heard_from(MemberId(self.target)),
            Err(PeerError::Connect(_)) => self.liveness.record_refused(MemberId(self.target)),
            Err(_) => {}
        }
        match answer {
            Ok(Ok(resp)) => Ok(resp),
            Ok(Err(remote)) => Err(RPCError::RemoteError(RemoteError::new_with_node(
                self.target,
                self.node.clone(),
                remote,
            ))),
            Err(e @ PeerError::Connect(_)) => Err(RPCError::Unreachable(Unreachable::new(&e))),
            Err(e) => Err(RPCError::Network(NetworkError::new(&e))),
        }
    }
}

impl RaftNetwork<TypeConfig> for Connection {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<u64>, RPCError<u64, BasicNode, RaftError<u64>>> {
        self.call(path::RAFT_APPEND, &rpc, &option).await
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<InstallSnapshotResponse<u64>, RPCError<u64, BasicNode, RaftError<u64, InstallSnapshotError>>> {
        self.call(path::RAFT_SNAPSHOT, &rpc, &option).await
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<u64>,
        option: RPCOption,
    ) -> Result<VoteResponse<u64>, RPCError<u64, BasicNode, RaftError<u64>>> {
        self.call(path::RAFT_VOTE, &rpc, &option).await
    }
}
