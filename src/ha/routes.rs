//! What this replica does with each peer request: the routes of the peer channel's listener
//! (`crate::peer::transport::server`). Peer requests carry no user identity: the replica that
//! received a Metrics API request has already authenticated and authorised it.

use super::Ha;
use crate::peer::transport::{Bincode, MAX_PEER_BODY_BYTES, codec, server};
use crate::peer::wire::{
    Info, InfoRequest, JoinRequest, LeaveRequest, Ping, Pong, PullRequest, PullResponse, PushAck, QueryRequest,
    ShardPush, path,
};
use crate::query::Reader;
use actix_web::{HttpResponse, web};
use coordinator::raft::TypeConfig;
use openraft::raft::{AppendEntriesRequest, InstallSnapshotRequest, VoteRequest};
use std::sync::Arc;

struct PeerState {
    ha: Arc<Ha>,
    /// Reads this replica's own stores only (no fan-out from a fan-out).
    reader: Reader,
}

type State = web::Data<PeerState>;

/// Binds the peer listener with this replica's routes; the returned server runs when awaited
/// or spawned.
pub fn serve(
    ha: Arc<Ha>,
    mut reader: Reader,
    tls: rustls::ServerConfig,
    workers: usize,
) -> anyhow::Result<actix_web::dev::Server> {
    reader.fanout = None;
    let listen = server::Listen {
        bind: ha.config.peer_bind_address.clone(),
        port: ha.config.peer_port,
        tls,
        workers,
    };
    let state = web::Data::new(PeerState { ha, reader });
    server::serve(listen, move |config| routes(config, state.clone()))
}

/// What each peer path does to this replica.
fn routes(config: &mut web::ServiceConfig, state: State) {
    config
        .app_data(state)
        .route(path::INFO, web::post().to(info))
        .route(path::PING, web::post().to(ping))
        .route(path::JOIN, web::post().to(join))
        .route(path::LEAVE, web::post().to(leave))
        .route(path::QUERY, web::post().to(query))
        .route(path::REPLICATE, web::post().to(replicate))
        .route(path::HANDOFF, web::post().to(handoff))
        .route(path::PULL, web::post().to(pull))
        .route(&format!("{}/{{to}}", path::RAFT_APPEND), web::post().to(raft_append))
        .route(&format!("{}/{{to}}", path::RAFT_VOTE), web::post().to(raft_vote))
        .route(
            &format!("{}/{{to}}", path::RAFT_SNAPSHOT),
            web::post().to(raft_snapshot),
        );
}

async fn info(state: State, request: Bincode<InfoRequest>) -> Bincode<Info> {
    Bincode(state.ha.answer_info(&request.0))
}

async fn ping(state: State, ping: Bincode<Ping>) -> Bincode<Pong> {
    let ha = &state.ha;
    Bincode(Pong {
        member: ha.me().0,
        leaving: ha.is_leaving(),
        settling: ha.unsettled(),
        grants: ha.grant_leases(coordinator::shard_map::MemberId(ping.from)),
        writing: ha.writing_shards(),
    })
}

async fn leave(state: State, request: Bincode<LeaveRequest>) -> Bincode<bool> {
    Bincode(state.ha.mark_left(request.0.member).await)
}

async fn join(state: State, request: Bincode<JoinRequest>) -> Bincode<crate::peer::wire::JoinResponse> {
    Bincode(state.ha.admit(request.0).await)
}

/// Bulk answers are built and encoded on the blocking pool: a large one must not hold up the
/// pings and Raft messages this worker also serves.
async fn query(state: State, request: Bincode<QueryRequest>) -> HttpResponse {
    let ha = state.ha.clone();
    let reader = state.reader.clone();
    let stale = ha.stale_shards(&request.0).await;
    let answer = web::block(move || {
        let answer = crate::query::shard_answer(&reader, &request.0, &stale)?;
        codec::encode(&answer, MAX_PEER_BODY_BYTES).map_err(|e| e.to_string())
    });
    match answer.await {
        Ok(Ok(body)) => bincode_response(body),
        Ok(Err(e)) => HttpResponse::BadRequest().body(e),
        Err(e) => HttpResponse::InternalServerError().body(e.to_string()),
    }
}

fn bincode_response(body: Vec<u8>) -> HttpResponse {
    HttpResponse::Ok().content_type(codec::CONTENT_TYPE).body(body)
}

/// A writer's pushes to this standby, applied in order on the blocking pool (a batch of whole
/// shards can take milliseconds, which pings and Raft messages must not wait for).
async fn replicate(state: State, pushes: Bincode<Vec<ShardPush>>) -> HttpResponse {
    let ha = state.ha.clone();
    let acks = web::block(move || {
        let acks: Vec<PushAck> = pushes.0.into_iter().map(|push| ha.receive_push(push)).collect();
        codec::encode(&acks, MAX_PEER_BODY_BYTES).map_err(|e| e.to_string())
    });
    match acks.await {
        Ok(Ok(body)) => bincode_response(body),
        Ok(Err(e)) => HttpResponse::InternalServerError().body(e),
        Err(e) => HttpResponse::InternalServerError().body(e.to_string()),
    }
}

async fn handoff(state: State, push: Bincode<ShardPush>) -> Bincode<PushAck> {
    Bincode(state.ha.receive_handoff(push.0).await)
}

async fn pull(state: State, request: Bincode<PullRequest>) -> HttpResponse {
    let answer: PullResponse = state.ha.answer_pull(request.0).await;
    let body = web::block(move || codec::encode(&answer, MAX_PEER_BODY_BYTES));
    match body.await {
        Ok(Ok(body)) => bincode_response(body),
        Ok(Err(e)) => HttpResponse::InternalServerError().body(e.to_string()),
        Err(e) => HttpResponse::InternalServerError().body(e.to_string()),
    }
}

/// A Raft RPC addressed to another member id (an earlier incarnation of this replica) is
/// refused with 409, so the sender treats it as a network error and never mixes the two logs.
fn wrong_member(state: &State, to: u64) -> Option<HttpResponse> {
    (to != state.ha.me().0)
        .then(|| HttpResponse::Conflict().body(format!("this is member {}, not {to}", state.ha.me().0)))
}

type RaftAnswer<T> = actix_web::Either<HttpResponse, Bincode<T>>;

async fn raft_append(
    state: State,
    to: web::Path<u64>,
    rpc: Bincode<AppendEntriesRequest<TypeConfig>>,
) -> RaftAnswer<impl serde::Serialize> {
    if let Some(refusal) = wrong_member(&state, *to) {
        return actix_web::Either::Left(refusal);
    }
    if let Some(leader) = rpc.0.vote.leader_id().voted_for() {
        // The leader's heartbeats show it is there as well as pings do.
        state.ha.heard_from(coordinator::shard_map::MemberId(leader));
    }
    actix_web::Either::Right(Bincode(state.ha.raft.append_entries(rpc.0).await))
}

async fn raft_vote(
    state: State,
    to: web::Path<u64>,
    rpc: Bincode<VoteRequest<u64>>,
) -> RaftAnswer<impl serde::Serialize> {
    if let Some(refusal) = wrong_member(&state, *to) {
        return actix_web::Either::Left(refusal);
    }
    actix_web::Either::Right(Bincode(state.ha.raft.vote(rpc.0).await))
}

async fn raft_snapshot(
    state: State,
    to: web::Path<u64>,
    rpc: Bincode<InstallSnapshotRequest<TypeConfig>>,
) -> RaftAnswer<impl serde::Serialize> {
    if let Some(refusal) = wrong_member(&state, *to) {
        return actix_web::Either::Left(refusal);
    }
    actix_web::Either::Right(Bincode(state.ha.raft.install_snapshot(rpc.0).await))
}
