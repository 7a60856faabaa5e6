export * from './constants.js'
export { signReport, validateReport, factsWithinBounds, boundFailures, foldApply, versionOutcome, type VersionApplies, InvalidReceiptError, RECEIPT_OUTCOMES, type Receipt, type Presence, type NodeReport, type ReceiptOutcome } from './receipt.js'
export { FleetView, type FleetNode, type FleetPolicyState, type FleetAdmission, type AdmissionJudge } from './fleet.js'
