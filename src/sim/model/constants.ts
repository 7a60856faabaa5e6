// Defaults of the model engine. Gossip parameters are the agent's own (gossipsub 14.1.2
// defaults, see node_modules/@chainsafe/libp2p-gossipsub/dist/src/constants.js, and the
// options in src/net/libp2p.ts); the rest are physical assumptions, each with its reason.

import { DEFAULT_SYNC_INTERVAL_MS } from '../../sync/constants.js'
import { DEFAULT_TARGET_PEERS, PEER_MAINTENANCE_INTERVAL_MS } from '../../node/constants.js'

/** Gossipsub mesh degree D, and the bounds the heartbeat keeps it within (GossipsubD, Dlo, Dhi). */
export const MESH_D = 6
export const MESH_D_LO = 4
export const MESH_D_HI = 12

/** IHAVE gossip goes to at least D_lazy non-mesh peers, or gossipFactor of them if more (GossipsubDlazy, GossipsubGossipFactor). */
export const D_LAZY = 6
export const GOSSIP_FACTOR = 0.25

/** Heartbeats a message id is advertised in IHAVE after it arrives (GossipsubHistoryGossip). */
export const HISTORY_GOSSIP = 3

/** GossipsubHeartbeatInterval. */
export const HEARTBEAT_MS = 1000

/** The agent sends on every topic peer when it publishes (floodPublish: true in src/net/libp2p.ts). */
export const FLOOD_PUBLISH = true

/** Anti-entropy: one random peer every interval × U(0.5, 1.5) (src/sync/service.ts), and one round per new connection. */
export const SYNC_INTERVAL_MS = DEFAULT_SYNC_INTERVAL_MS

/** Connections each agent keeps by dialling (src/node/constants.ts). */
export const TARGET_PEERS = DEFAULT_TARGET_PEERS

/** How often an agent tops up lost connections and may rotate one (PEER_ROTATION_CHANCE): the pace at which a healed partition reconnects. */
export const RECONNECT_MS = PEER_MAINTENANCE_INTERVAL_MS

/**
 * Round trips to open a connection: TCP (1) and noise XX (1.5), rounded up with multistream
 * negotiation of the muxer (0.5): 3. A sync round on it then costs two more (digests, wants).
 */
export const CONNECT_RTTS = 3
export const SYNC_RTTS = 2

/** Bytes a gossipsub RPC adds around a message: protobuf fields, topic string, length prefix, yamux and noise framing. */
export const RPC_OVERHEAD_BYTES = 96
/** A message id is a sha256 (32 bytes) plus protobuf framing, in IHAVE and IWANT. */
export const MSG_ID_BYTES = 34
/** One digest entry on the sync protocol: name, version, hash and id as JSON. */
export const DIGEST_ENTRY_BYTES = 200
/** A signed receipt, routed back to the publisher (node, policy, version, hash, outcome, changes, signature). */
export const RECEIPT_BYTES = 520
/** The signed header alone (announce-and-fetch): format, name, version, hash, signer, issuedAt, signature as JSON. */
export const HEADER_BYTES = 420
/** What a header's chain fields add (src/envelope/envelope.ts): `,"prev":"<64 hex digits>"`, and `,"force":"<reason>"` but the reason. */
export const PREV_FIELD_BYTES = 74
export const FORCE_FIELD_BYTES = 11
/** `,"staged":true`: a version published with a staged rollout (src/envelope/envelope.ts). */
export const STAGED_FIELD_BYTES = 14
/**
 * A rollout record's body as JSON, besides its stages: kind, name, policy, target and previous
 * (version and 64-hex id each), state, max-failures, bake, timeout, flags, stageStartedAt.
 */
export const RECORD_BODY_BYTES = 420
/** One resolved stage in a record: its text and a 64-hex rank cutoff. */
export const RECORD_STAGE_BYTES = 100
/** How often a staged publish's evaluator (publish --wait, rollout resume) reads its fleet view and decides the gate. */
export const EVALUATE_EVERY_MS = 250

/**
 * Per-node upload bandwidth, bytes/s: 100 Mbit/s, a modest data-centre or cloud VM uplink.
 * Loopback (calibration against one host) is effectively unbounded: 10 GB/s.
 */
export const DEFAULT_UPLINK_BYTES_PER_S = 100e6 / 8
export const LOOPBACK_UPLINK_BYTES_PER_S = 10e9

/**
 * CPU per message on a host that runs one agent (the deployment case): decode, sha256 and
 * Ed25519 verify of a small envelope take well under a millisecond natively; 1 ms covers the
 * schema check and bookkeeping. Duplicates are dropped by id before any of that.
 */
export const DEDICATED_CPU = { verifyMs: 1, receiptVerifyMs: 0.5, duplicateMs: 0.05, sendMs: 0.05, applyMs: 5, perKiBMs: 0.01, applyIoMs: 20, backgroundMsPerS: 0 } as const

/**
 * Fitted (least squares on log time, grid search; T50/T90/T99 of acceptance at N = 50, 100 and
 * 200, three meshes each) to the live engine (`grapevine sim simulations/scale-calibration.yaml`,
 * 2 worker processes) on this 2-core machine: see docs/scale.md, "Calibration". Per-message
 * costs include libp2p's stream handling, noise, yamux and protobuf in JavaScript; receipts
 * travel back to the publisher, one verify per hop. Each agent also burns a few ms of CPU per
 * second in the background (heartbeats, scoring, timers, pings; 4 ms/s measured from the
 * workers' CPU time with 200 idle agents), so 100 agents take a third of the two cores before
 * any message moves. These are far above DEDICATED_CPU: a real host runs one agent.
 * applyIoMs (8 ms per apply, on the one shared disk) is not in that fit: it was fitted to the
 * applies of live runs of simulations/netns-calibration.yaml at N = 30 and 60, 0-50 ms and 0-5%
 * loss (h29's runs, simulations/netns-calibration-live.json; docs/scale.md "The model against a
 * real network"): T100 applied within 25% in 6 of 8 settings (-51% to +10%), T50 33-70% early
 * (live applies start late and land together, which one disk queue does not shape). There is no
 * separate save cost (saveIoMs): the apply's 2 ms of CPU stays at acceptance time, where the
 * acceptance fit had it (deferring it behind a save made acceptance 20-45% faster than live).
 * 8 ms replaces an applyIoMs of 240 ms from an old bench:mesh fit, with which 30 agents took
 * 7.2 s per publish where the live engine takes 0.3-0.7 s.
 */
export const SHARED_HOST_CPU = { verifyMs: 1.25, receiptVerifyMs: 1, duplicateMs: 0.05, sendMs: 0.1, applyMs: 2, perKiBMs: 0.01, applyIoMs: 8, backgroundMsPerS: 7 } as const

/**
 * The shared host in the netns engine's shape (`grapevine sim --engine netns`: one worker process
 * per simulated host, nodes.perHost agents in it, every host on this 2-core machine). Fitted by
 * grid search (`npm run sim:calibrate -- --fit`, 384 combinations) on log T50/T90/T100 applied
 * and all-held at N = 30 and 60, 0-50 ms and 0-5% loss, to the netns engine's figures in
 * simulations/netns-calibration-netns.json (4 passes at N = 30, 3 at N = 60; docs/scale.md,
 * "The model against a real network"): 31 of the 32 figures within 25%. The message path is the
 * live fit's (SHARED_HOST_CPU). Applies are what the live fit never saw: each accepted envelope
 * is first stored durably (saveIoMs, on the one disk every agent shares), then applied: 20 ms of
 * CPU in its host's worker process (planning, writing, the state and history files; the records'
 * apply durationMs has a median of 97 ms at N = 30, 192 ms at N = 60, mostly queueing), then
 * applyIoMs on the disk. That CPU is what slows gossip once a delay spreads it over the time the
 * first agents apply: a worker applying for one agent forwards late for the other two.
 */
export const NETNS_SHARED_CPU = { ...SHARED_HOST_CPU, applyMs: 20, applyIoMs: 4, saveIoMs: 8 } as const

/**
 * What the netns engine's delayed links add to the scenario's delay, per message between hosts:
 * fitted with NETNS_SHARED_CPU, loosely (with 0 the best fit, 4 ms save and 12 ms apply disk,
 * also has 31 of 32 figures within 25%, worst -29% against +25.1%; squared log error 0.59
 * against 0.38, and "held" at N = 10 is further off). Not measured directly; the
 * candidates are the NFQUEUE delayer (one user-space process per host on the same 2 cores as
 * every agent, woken for every packet, ACKs included) and TCP under per-packet delay. At N = 10,
 * one agent per host, the second hop lands 45-70 ms after the first at 25 ms of delay. 0 on a real
 * network, and without delay (no delayer then).
 */
export const NETNS_SHARED_NET = { shapedHopMs: 40 } as const

/** The time past the last event a run keeps going when the scenario gives no duration and has no check. */
export const DEFAULT_TAIL_MS = 120_000
