export { atomicWrite, appendLine, fsyncDir } from './fs.js'
export { StateStore, MAX_REMEMBERED_PEERS, DEFAULT_HISTORY_LIMIT, type HistoryEntry, type AppliedRecord, type KnownPeer } from './state.js'
