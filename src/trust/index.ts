export { TrustStore, scopeMatches } from './trust.js'
export * from './errors.js'
