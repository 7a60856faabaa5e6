export { atomicWrite, appendLine } from './fs.js'
export { writeFileAtomic, syncDir, tempPathFor, tempOwner, removeStaleTemps, type AtomicWriteOptions } from './atomic.js'
export { StateStore, type StateWriter, MAX_REMEMBERED_PEERS, DEFAULT_HISTORY_LIMIT, type HistoryEntry, type AppliedRecord, type KnownPeer, type SealedRecord } from './state.js'
