/**
 * The admin client: how `publish`, `rollback`, `retire` and `fleet` reach the mesh (as a
 * short-lived peer or through an agent's API), sign and deliver a policy, and follow the
 * fleet's receipts for it. It stores and applies nothing; the agent is src/node/.
 */
export { connectMesh, publishPolicy, preparePublish, deliverPrepared, waitForFleet, type Delivery, type MeshClient, type MeshTarget, type PublishOptions, type PublishResult, type WaitOptions, type WaitResult } from './publisher.js'
export { isComplete, progressOf, reportedCount, NODE_STALE_AFTER_MS, type Liveness, type NodeOutcome, type Progress } from './watch.js'
export { fleetSummary, type PolicySummary } from './fleet-summary.js'
export { PolicyUnchangedError, PublishError, UnknownPolicyError, RolloutNotFoundError, RolloutConflictError } from './errors.js'
export { startRollout, driveRollout, actOnRollout, readRecord, readTarget, haltReason, ROLLOUT_POLL_MS, type StartOptions, type Started, type DriveEnd, type DriveResult, type DriveOptions, type HeldRecord } from './rollout.js'
export { stageView, targetedNodes, GateReports, type StageView, type StageNode } from './rollout-view.js'
export { sealToFleet, sealForMesh, sealedEnvelopeEstimate, withoutSealed, type SealRequest, type SealedPolicy } from './seal.js'
